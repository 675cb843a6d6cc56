"""Real sensor sequences with a label at every step, from seglearn's ``watch`` recordings: 140
smartwatch recordings (accelerometer + gyroscope, 6 channels, 947-2618 steps at 50 Hz) of 10
subjects doing 7 shoulder exercises, 14 recordings each.

Why this set for an LSTM pruned by MI/TE: it is the only shipped set with long recordings and subject
ids. A sequence strings together windows of several of one subject's recordings, so the exercise
label changes inside a sequence, as the motion does in the moving-digit clips: transfer entropy
from the labels to a unit then has transitions to measure. BasicMotions (100 steps, 4 classes) and
JapaneseVowels (7-29 steps) are too short for segments and carry no subject-wise split of this kind.

The split is by subject and fixed: subjects 8, 9 and 10 only ever appear in the test sequences.
The file is read through the arrays-only unpickler, never with ``allow_pickle=True``."""
import functools
import importlib.util
import os
from typing import NamedTuple

import numpy as np
import torch

from .safe_pickle import load_object_npy

__all__ = ["EXERCISES", "TEST_SUBJECTS", "SensorSequences", "SensorsNotInstalled", "watch_recordings",
           "exercise_sequences"]

EXERCISES = ("PEN", "ABD", "FEL", "IR", "ER", "TRAP", "ROW")
TEST_SUBJECTS = (8, 9, 10)
INSTALL_HINT = "pip install --no-deps seglearn==1.2.5"


class SensorsNotInstalled(ImportError):
    """seglearn, which ships the watch recordings, is not installed."""


class SensorSequences(NamedTuple):
    signals: torch.Tensor    # float32 [S, T, 6], standardised by the training recordings' statistics
    labels: torch.Tensor     # int64 [S, T]: index into EXERCISES at every step
    subjects: torch.Tensor   # int64 [S]: the subject every window of the sequence comes from


@functools.lru_cache(maxsize=1)
def watch_recordings():
    """The raw recordings: ``(list of float64 [n_i, 6], exercise [140], subject [140])``."""
    spec = importlib.util.find_spec("seglearn")
    path = None
    for root in (spec.submodule_search_locations or []) if spec else []:
        candidate = os.path.join(root, "data", "watch_dataset.npy")
        path = candidate if os.path.exists(candidate) else path
    if path is None:
        raise SensorsNotInstalled(f"the watch recordings need seglearn: {INSTALL_HINT}")
    data = load_object_npy(path)
    signals = [np.asarray(x, dtype=np.float64) for x in data["X"]]
    labels, subjects = np.asarray(data["y"], np.int64), np.asarray(data["subject"], np.int64)
    if len(signals) != 140 or tuple(data["y_labels"]) != EXERCISES or sorted(set(subjects)) != list(range(1, 11)):
        raise ValueError(f"{path} is not the expected watch data set (140 recordings, 10 subjects, 7 exercises)")
    return signals, labels, subjects


def exercise_sequences(num_sequences, *, train, segments=3, segment_steps=64, stride=2, seed=0):
    """``num_sequences`` sequences of ``segments`` windows, each ``segment_steps`` steps of one
    recording (every ``stride``-th sample: 25 Hz by default) of one subject, in random order; the
    subjects are those of the training side (1-7) or the test side (8-10). Deterministic in ``seed``."""
    if min(num_sequences, segments, segment_steps, stride) < 1:
        raise ValueError("'num_sequences', 'segments', 'segment_steps' and 'stride' must be >= 1")
    signals, labels, subjects = watch_recordings()
    is_test = np.isin(subjects, TEST_SUBJECTS)
    train_rows = np.concatenate([s for s, t in zip(signals, is_test) if not t])
    mean, std = train_rows.mean(0), train_rows.std(0)
    chosen = np.flatnonzero(is_test if not train else ~is_test)
    people = np.unique(subjects[chosen])
    span = segment_steps * stride
    rng = np.random.default_rng(seed)
    out = np.empty((num_sequences, segments * segment_steps, 6), np.float32)
    out_labels = np.empty((num_sequences, segments * segment_steps), np.int64)
    who = rng.choice(people, num_sequences)
    for i, person in enumerate(who):
        own = chosen[subjects[chosen] == person]
        for k, rec in enumerate(rng.choice(own, segments)):
            start = rng.integers(0, len(signals[rec]) - span + 1)
            window = signals[rec][start:start + span:stride]
            out[i, k * segment_steps:(k + 1) * segment_steps] = (window - mean) / std
            out_labels[i, k * segment_steps:(k + 1) * segment_steps] = labels[rec]
    return SensorSequences(torch.from_numpy(out), torch.from_numpy(out_labels), torch.from_numpy(who))
