"""Information pruning of an LSTM's hidden units (TE papers): per-step features -> LSTM(128) -> FC,
trained to tell the class of every step of a sequence: the exercise in real smartwatch recordings
(``data="watch"``, seglearn's, split by subject; the sensor channels feed the LSTM directly) or
the motion of generated moving-digit clips (``data="clips"``, a conv(16 ch) per frame). Each unit's mutual
information with the labels and transfer entropy from the labels are counted by an
InfoAccumulator hooked on the LSTM; the ablation map (accuracy with one unit removed) is drawn
against them (papers' fig. 2), and units are removed in MI or TE order, highest or lowest first
(fig. 3). At the end the lowest-TE units are cut out physically (a smaller LSTM and classifier
with the masked model's accuracy), timed against the full model."""
import dataclasses
from typing import Tuple

import torch
from torch import nn

from ..data.sensors import EXERCISES, TEST_SUBJECTS, SensorsNotInstalled, exercise_sequences
from ..data.videos import MOTIONS, moving_digits
from ..info import InfoAccumulator
from ..recurrent import remove_recurrent_units
from .claims import Claim
from .workflow import Workflow
from . import common as limits
from .common import (RunSettings, accuracy, batches, median_seconds, progress, pyplot, save_figure, train,
                     write_results)

__all__ = ["InformationConfig", "SequenceLSTM", "VideoLSTM", "SensorLSTM", "remove_units", "run_information"]


@dataclasses.dataclass
class InformationConfig(RunSettings):
    data: str = "watch"              # or "clips"
    train_clips: int = 3000
    test_clips: int = 600
    steps: int = 24
    sensor_steps: int = 192
    motions_per_clip: int = 3
    channels: int = 16
    hidden: int = 128
    epochs: int = 12
    lr: float = 2e-3
    batch_size: int = 50
    bins: int = 8
    history: int = 1
    removal_steps: Tuple[int, ...] = (0, 8, 16, 32, 48, 64, 80, 96, 112, 120, 124, 128)

    LIMITS = {**{name: limits.INTEGER_AT_LEAST_1 for name in (
                 "train_clips", "test_clips", "motions_per_clip", "channels", "hidden", "epochs",
                 "batch_size", "history")},
              "steps": (2, None, False, False), "sensor_steps": (2, None, False, False), "bins": (2, None, False, False), "lr": limits.POSITIVE,
              "removal_steps": limits.INTEGER_AT_LEAST_0}

    CHOICES = {"data": ("watch", "clips")}

    def __post_init__(self):
        super().__post_init__()
        if self.sensor_steps < self.motions_per_clip:
            raise ValueError(f"'sensor_steps' must be at least 'motions_per_clip' = {self.motions_per_clip}, "
                             f"got {self.sensor_steps}")
        if min(self.steps, self.sensor_steps) <= self.history:
            raise ValueError(f"'steps' and 'sensor_steps' must be more than 'history' = {self.history}, got "
                             f"{self.steps} and {self.sensor_steps}")
        if max(self.removal_steps) > self.hidden:
            raise ValueError(f"'removal_steps' must be at most 'hidden' = {self.hidden}, got {self.removal_steps}")

    HELP = {**limits.COMMON_HELP,
            "data": f"watch: real smartwatch exercise recordings (seglearn; subjects {TEST_SUBJECTS} only in the "
                    "test sequences); clips: generated moving-digit clips",
            "train_clips": "training sequences (clips, or sequences cut from the training subjects' recordings)",
            "test_clips": "test sequences",
            "steps": "frames per clip (clips)",
            "sensor_steps": "steps per sensor sequence at 25 Hz (watch), cut into motions_per_clip windows",
            "motions_per_clip": "labelled segments per sequence (a motion of a clip, or one recording's window)",
            "channels": "conv channels of the per-frame feature extractor (clips)",
            "hidden": "LSTM hidden units",
            "lr": "learning rate (Adam)",
            "bins": "equal-width bins per unit over (-1, 1) for MI and TE",
            "history": "target history length k of the transfer entropy (steps)",
            "removal_steps": "numbers of units removed at the points of the removal curves, comma-separated"}
    QUICK = {"data": "clips", "train_clips": 500, "test_clips": 150, "steps": 16, "epochs": 4,
             "removal_steps": (0, 16, 32, 64, 96, 128)}


class SequenceLSTM(nn.Module):
    """Per-step ``features`` (``feature_size`` values a step) -> LSTM -> per-step class scores;
    input ``[S, T, ...]``."""

    def __init__(self, features, feature_size, hidden, classes):
        super().__init__()
        self.features = features
        self.lstm = nn.LSTM(feature_size, hidden, batch_first=True)
        self.fc = nn.Linear(hidden, classes)

    def forward(self, steps):
        s, t = steps.shape[:2]
        features = self.features(steps.flatten(0, 1)).view(s, t, -1)
        return self.fc(self.lstm(features)[0])


class VideoLSTM(SequenceLSTM):
    """Per-frame conv features -> LSTM -> per-step class scores; input ``[S, T, 1, 32, 32]``."""

    def __init__(self, channels=16, hidden=128, classes=len(MOTIONS), size=32):
        super().__init__(nn.Sequential(nn.Conv2d(1, channels, 5, stride=2, padding=2), nn.ReLU(),
                                       nn.MaxPool2d(2), nn.Flatten()), channels * (size // 4) ** 2, hidden, classes)


class SensorLSTM(SequenceLSTM):
    """Sensor channels straight into the LSTM -> per-step class scores; input ``[S, T, channels]``."""

    def __init__(self, channels=6, hidden=128, classes=len(EXERCISES)):
        super().__init__(nn.Identity(), channels, hidden, classes)


def remove_units(model, units):
    """Removes LSTM hidden units in place: their output no longer feeds the recurrence or the
    classifier (the columns of ``weight_hh`` and ``fc.weight`` are zeroed). Returns the old columns
    so :func:`restore_units` can put them back."""
    units = torch.as_tensor(units, dtype=torch.long)
    saved = (model.lstm.weight_hh_l0[:, units].clone(), model.fc.weight[:, units].clone())
    with torch.no_grad():
        model.lstm.weight_hh_l0[:, units] = 0
        model.fc.weight[:, units] = 0
    return units, saved


def restore_units(model, removed):
    units, (hh, fc) = removed
    with torch.no_grad():
        model.lstm.weight_hh_l0[:, units] = hh
        model.fc.weight[:, units] = fc


@torch.no_grad()
def information_of_units(model, data, config):
    """MI and TE of every hidden unit, counted over ``data`` by an accumulator fed by a forward
    hook on the LSTM. LSTM outputs lie in (-1, 1), so the equal-width bins span that range."""
    hidden = model.lstm.hidden_size
    accumulator = InfoAccumulator.from_range(torch.full((hidden,), -1.0), torch.ones(hidden),
                                             bins=config.bins, num_classes=model.fc.out_features,
                                             history=config.history)
    current = {}
    handle = accumulator.register_forward_hook(model.lstm, lambda: current["labels"])
    model.eval()
    x, y = data
    for xb, yb in progress(batches(x, y, 200), "information", config, total=-(-len(x) // 200)):
        current["labels"] = yb
        model(xb)
    handle.remove()
    return accumulator.finalize()


def sequences_and_model(config):
    """(train, test, model, classes, description) for ``config.data``; the sequences are the same
    for every seed (seed 0 draws the training ones, seed 1 the test ones), the model's init is
    seeded by ``config.seed``. The watch data fall back to the clips, with a note, when seglearn is
    not installed."""
    torch.manual_seed(config.seed)
    if config.data == "watch":
        try:
            cut = dict(segments=config.motions_per_clip, segment_steps=config.sensor_steps // config.motions_per_clip)
            train_set = exercise_sequences(config.train_clips, train=True, seed=0, **cut)
            test_set = exercise_sequences(config.test_clips, train=False, seed=1, **cut)
        except SensorsNotInstalled as error:
            print(f"{error}: using the moving-digit clips instead")
        else:
            return ((train_set.signals, train_set.labels), (test_set.signals, test_set.labels),
                    SensorLSTM(train_set.signals.shape[-1], config.hidden), EXERCISES,
                    f"smartwatch exercise recordings (seglearn watch), {config.train_clips}/{config.test_clips} "
                    f"sequences of {train_set.signals.shape[1]} steps, test subjects {TEST_SUBJECTS}")
    clips = dict(steps=config.steps, motions_per_clip=config.motions_per_clip)
    train_set = moving_digits(config.train_clips, train=True, seed=0, **clips)
    test_set = moving_digits(config.test_clips, train=False, seed=1, **clips)
    return ((train_set.frames, train_set.labels), (test_set.frames, test_set.labels),
            VideoLSTM(config.channels, config.hidden), MOTIONS,
            f"moving-digit clips, {config.train_clips}/{config.test_clips} clips of {config.steps} frames")


def run_information(config: InformationConfig):
    train_data, test_data, model, classes, data_note = sequences_and_model(config)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    losses = train(model, train_data, epochs=config.epochs, lr=config.lr, batch_size=config.batch_size,
                   settings=config, optimizer=optimizer, desc="train LSTM")
    base_acc = accuracy(model, test_data, batch_size=200)
    scores = information_of_units(model, train_data, config)
    mi, te = scores.mutual_information, scores.transfer_entropy

    # Evaluation reuses the conv features: only the LSTM and FC run per ablation.
    with torch.no_grad():
        s, t = test_data[0].shape[:2]
        features = model.features(test_data[0].flatten(0, 1)).view(s, t, -1)
    head = _Head(model.lstm, model.fc)
    feature_data = (features, test_data[1])

    ablation = torch.empty(config.hidden)
    for unit in progress(range(config.hidden), "ablation", config):
        removed = remove_units(model, [unit])
        ablation[unit] = accuracy(head, feature_data, batch_size=200)
        restore_units(model, removed)

    generator = torch.Generator().manual_seed(config.seed)
    orders = {"MI high-first": torch.argsort(mi, descending=True, stable=True),
              "MI low-first": torch.argsort(mi, stable=True),
              "TE high-first": torch.argsort(te, descending=True, stable=True),
              "TE low-first": torch.argsort(te, stable=True),
              "random": torch.randperm(config.hidden, generator=generator)}
    counts = [n for n in config.removal_steps if n <= config.hidden]
    curves = {}
    for name, order in progress(orders.items(), "removal curves", config):
        curve = []
        for n in counts:
            removed = remove_units(model, order[:n])
            curve.append(accuracy(head, feature_data, batch_size=200))
            restore_units(model, removed)
        curves[name] = curve

    half = counts[len(counts) // 2]
    physical = _remove_physically(model, order=orders["TE low-first"], count=half, data=feature_data)
    results = {"data": data_note, "physical_removal": physical, "accuracy": base_acc, "train_loss": losses, "mutual_information": mi,
               "transfer_entropy": te, "ablation_accuracy": ablation, "removed_counts": counts,
               "curves": curves,
               "mean_curve_accuracy": {name: sum(c) / len(c) for name, c in curves.items()},
               "correlation_te_ablation": _pearson(te, ablation),
               "correlation_mi_ablation": _pearson(mi, ablation)}
    mean = results["mean_curve_accuracy"]
    results["summary"] = [
        f"LSTM({config.hidden}) per-step accuracy {base_acc:.2%} on {data_note} "
        f"({len(classes)} classes); MI {float(mi.mean()):.3f} bits, TE {float(te.mean()):.3f} bits on average",
        f"single-unit ablation: accuracy {float(ablation.min()):.2%} .. {float(ablation.max()):.2%}; "
        f"with {half} units removed: " + ", ".join(f"{k} {curves[k][counts.index(half)]:.1%}" for k in curves),
        "mean accuracy over the removal curve, TE- vs MI-ordered: "
        f"high-first {mean['TE high-first']:.1%} vs {mean['MI high-first']:.1%}, "
        f"low-first {mean['TE low-first']:.1%} vs {mean['MI low-first']:.1%}, random {mean['random']:.1%} "
        "(paper: TE-ordered above MI-ordered)",
        f"{half} lowest-TE units cut out: LSTM({config.hidden}) -> LSTM({physical['kept_units']}), accuracy "
        f"{physical['accuracy']:.1%} (masked {curves['TE low-first'][counts.index(half)]:.1%}), "
        f"{physical['full_ms']:.1f} -> {physical['small_ms']:.1f} ms per batch of {physical['batch']} clips"]
    results["figures"] = [_plot_scatter(mi, te, ablation, config),
                          _plot_curves(counts, curves, base_acc, config)]
    write_results(config, "information", config, results)
    results["model"] = model
    return results


class _Head(nn.Module):
    """An LSTM + FC (a VideoLSTM's, or a smaller one), fed with precomputed conv features."""

    def __init__(self, lstm, fc):
        super().__init__()
        self.lstm, self.fc = lstm, fc

    def forward(self, features):
        return self.fc(self.lstm(features)[0])


def _remove_physically(model, *, order, count, data):
    """Cuts the first ``count`` units of ``order`` out of the LSTM and the classifier; the
    smaller head's test accuracy and its latency against the full head on one batch."""
    keep = order[count:] if count < len(order) else order[-1:]
    lstm, (fc,) = remove_recurrent_units(model.lstm, keep, [model.fc])
    small, full = _Head(lstm, fc).eval(), _Head(model.lstm, model.fc).eval()
    batch = data[0][:50]
    with torch.inference_mode():
        full_ms = 1e3 * median_seconds(lambda: full(batch), repeats=10)
        small_ms = 1e3 * median_seconds(lambda: small(batch), repeats=10)
    return {"kept_units": len(keep), "accuracy": accuracy(small, data, batch_size=200),
            "full_ms": full_ms, "small_ms": small_ms, "batch": len(batch)}


def _pearson(a, b):
    a, b = a.double() - a.double().mean(), b.double() - b.double().mean()
    denom = float(a.norm() * b.norm())
    return float((a * b).sum()) / denom if denom > 0 else 0.0


def _plot_scatter(mi, te, ablation, config):
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5, 4))
    points = ax.scatter(mi.tolist(), te.tolist(), c=(100 * ablation).tolist(), cmap="viridis", s=18)
    fig.colorbar(points, label="accuracy with the unit removed (%)")
    ax.set_xlabel("mutual information I(x; y) (bits)")
    ax.set_ylabel("transfer entropy T(y -> x) (bits)")
    ax.set_title(f"LSTM({config.hidden}) units: MI vs TE (papers' fig. 2)")
    return save_figure(fig, config, "information_scatter")


def _plot_curves(counts, curves, base_acc, config):
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for name, curve in curves.items():
        ax.plot(counts, [100 * a for a in curve], "o-" if name != "random" else "k:", label=name, ms=3)
    ax.axhline(100 * base_acc, color="grey", lw=0.5, label="no unit removed")
    ax.set_xlabel("hidden units removed")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("Accuracy vs units removed (papers' fig. 3)")
    ax.legend(fontsize=7)
    return save_figure(fig, config, "information_removal")


# ---------------------------------------------------------------- how the report reads it

def _orders(direction):
    def pair(results):
        mean = results["mean_curve_accuracy"]
        return mean[f"TE {direction}"], mean[f"MI {direction}"]
    return pair


def _report_claims(task):
    data = "real smartwatch sequences" if task.endswith("watch") else "moving-digit clips"
    return [Claim(task, f"TE papers: TE-ordered removal ({direction}) keeps accuracy above MI-ordered, {data} "
                  "(mean accuracy over the removal curve)", "TE above MI (figure 3, no numbers)", _orders(direction),
                  0.0, f"TE {direction}", f"MI {direction}") for direction in ("high-first", "low-first")]


def _report_table(r):
    rows = [("unpruned", r["accuracy"])]
    rows += [(f"mean over the removal curve: {k}", v) for k, v in r["mean_curve_accuracy"].items()]
    rows += [("Pearson r, TE vs single-unit ablation accuracy", r["correlation_te_ablation"]),
             ("Pearson r, MI vs single-unit ablation accuracy", r["correlation_mi_ablation"])]
    return rows


def _report_figure(per_seed):
    xs = per_seed[0]["removed_counts"]
    return ({name: (xs, [r["curves"][name] for r in per_seed], "k:" if name == "random" else "o-")
             for name in per_seed[0]["curves"]}, ("hidden units removed", "test accuracy (%)"))


WORKFLOW = Workflow("information", InformationConfig, run_information,
                    "LSTM unit pruning by MI / TE on real smartwatch recordings or moving digits",
                    "LSTM(128): TE-ordered removal keeps accuracy higher than MI-ordered", _report_claims, _report_table, _report_figure)
