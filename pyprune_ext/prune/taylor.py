"""Taylor channel pruning (thesis chapter 4): train a LeNet5-like CNN (thesis table 4.1), then
repeatedly remove the least important channel by a criterion and fine-tune, tracking FLOPs; the
accuracy at 0/50/70/90% FLOPs reduction per criterion gives a table shaped like thesis table 4.4a.
At the end the pruned channels are cut out of the conv, BatchNorm and linear layers: a physically
smaller model with the same outputs."""
import copy
import dataclasses
import math
from typing import Tuple

import torch
from torch import nn

from ..taylor import NEED_MEANS, ScoreCollector, l1_stdv_scores, normalize_scores, ranking_magnitude
from ..data import DIGITS_CHOICES, digits
from .claims import POINTS, Claim
from .workflow import Workflow
from . import common as limits
from .common import RunSettings, accuracy, batches, progress, pyplot, save_figure, train, write_results

__all__ = ["TaylorConfig", "ChannelGate", "LeNet5Like", "multiply_adds", "shrink", "channel_importance",
           "run_taylor"]

# Criteria of thesis table 4.4a; "+norm" applies the layer normalisation of eq. 4.13 (p = 1).
VARIANTS = ("l1_stdv", "simple", "fisher", "oracle", "meanprod", "trace",
            "simple+norm", "fisher+norm", "oracle+norm", "meanprod+norm", "trace+norm")


@dataclasses.dataclass
class TaylorConfig(RunSettings):
    data: str = "mnist"                         # or "subset"
    widths: Tuple[int, int] = (32, 64)       # conv1, conv2 channels (thesis table 4.1)
    fc_width: int = 1024
    train_size: int = 60000
    epochs: int = 2
    channels_per_step: int = 4               # channels removed between two scorings
    lr: float = 0.01
    momentum: float = 0.9
    batch_size: int = 100
    criteria: Tuple[str, ...] = ("l1_stdv", "simple", "fisher", "oracle", "meanprod", "trace")   # table 4.4a
    score_batches: int = 5                   # batches of training data scored per removal
    finetune_steps: int = 10                 # SGD steps after each removal
    targets: Tuple[float, ...] = (0.5, 0.7, 0.9)

    LIMITS = {"widths": limits.INTEGER_AT_LEAST_1, "fc_width": limits.INTEGER_AT_LEAST_1,
              "train_size": limits.INTEGER_AT_LEAST_1, "channels_per_step": limits.INTEGER_AT_LEAST_1, "epochs": limits.INTEGER_AT_LEAST_1, "lr": limits.POSITIVE,
              "momentum": limits.MOMENTUM, "batch_size": limits.INTEGER_AT_LEAST_1,
              "score_batches": limits.INTEGER_AT_LEAST_1, "finetune_steps": limits.INTEGER_AT_LEAST_0,
              "targets": limits.FRACTION}
    CHOICES = {"data": DIGITS_CHOICES, "criteria": VARIANTS}

    def __post_init__(self):
        super().__post_init__()
        if len(self.widths) != 2:
            raise ValueError(f"'widths' must be two conv widths, got {self.widths}")

    HELP = {**limits.COMMON_HELP,
            "widths": "channels of conv1 and conv2, comma-separated",
            "fc_width": "units of the hidden fully connected layer",
            "train_size": "training images used (at most the training set's size)",
            "channels_per_step": "channels removed, least important first, after each scoring (the thesis: 1)",
            "criteria": "criteria to prune by, comma-separated; '+norm' adds the layer normalisation of eq. 4.13",
            "score_batches": "training batches scored before each channel removal",
            "finetune_steps": "SGD steps after each channel removal",
            "targets": "shares of the FLOPs removed at which accuracy is reported, comma-separated"}
    QUICK = {"data": "subset", "widths": (8, 16), "fc_width": 128, "train_size": 2000, "epochs": 3,
             "criteria": ("l1_stdv", "fisher", "meanprod", "trace+norm"), "score_batches": 2, "finetune_steps": 5}


class ChannelGate(nn.Module):
    """Multiplies each channel by its 0/1 entry of the ``mask`` buffer: a removed channel's
    feature map is exactly zero, as if the channel were gone."""

    def __init__(self, channels):
        super().__init__()
        self.register_buffer("mask", torch.ones(channels))

    def forward(self, x):
        return x * self.mask.view(1, -1, *([1] * (x.dim() - 2)))


class LeNet5Like(nn.Module):
    """Thesis table 4.1: conv 5x5 (pad 2) + BN + ReLU, max-pool 2, twice; FC + dropout 0.5; FC 10.
    Each conv block ends in a :class:`ChannelGate`, the feature map the criteria score."""

    def __init__(self, widths=(32, 64), fc_width=1024, classes=10):
        super().__init__()
        c1, c2 = widths
        self.conv1, self.bn1, self.gate1 = nn.Conv2d(1, c1, 5, padding=2), nn.BatchNorm2d(c1), ChannelGate(c1)
        self.conv2, self.bn2, self.gate2 = nn.Conv2d(c1, c2, 5, padding=2), nn.BatchNorm2d(c2), ChannelGate(c2)
        self.fc1 = nn.Linear(c2 * 7 * 7, fc_width)
        self.dropout = nn.Dropout(0.5)
        self.fc2 = nn.Linear(fc_width, classes)
        self.pool = nn.MaxPool2d(2)

    def forward(self, x):
        x = x.view(-1, 1, 28, 28)
        x = self.pool(self.gate1(torch.relu(self.bn1(self.conv1(x)))))
        x = self.pool(self.gate2(torch.relu(self.bn2(self.conv2(x)))))
        return self.fc2(self.dropout(torch.relu(self.fc1(x.flatten(1)))))

    def blocks(self):
        """(name, conv, gate) of the prunable layers."""
        return [("conv1", self.conv1, self.gate1), ("conv2", self.conv2, self.gate2)]


def multiply_adds(model):
    """Multiply-adds of one 28x28 image through the conv and linear layers of a LeNet5Like,
    counting only live channels (a gated channel costs nothing in the layer that makes it or the
    one that reads it)."""
    live1, live2 = int(model.gate1.mask.sum()), int(model.gate2.mask.sum())
    k1, k2 = model.conv1.kernel_size, model.conv2.kernel_size
    conv1 = 28 * 28 * live1 * 1 * k1[0] * k1[1]
    conv2 = 14 * 14 * live2 * live1 * k2[0] * k2[1]
    fc1 = live2 * 7 * 7 * model.fc1.out_features
    fc2 = model.fc2.in_features * model.fc2.out_features
    return conv1 + conv2 + fc1 + fc2


def shrink(model):
    """A new LeNet5Like holding only the live channels: rows of conv1/bn1, rows and input
    channels of conv2/bn2, and the matching input columns of fc1. Same outputs in eval mode."""
    keep1 = model.gate1.mask.nonzero().squeeze(1)
    keep2 = model.gate2.mask.nonzero().squeeze(1)
    small = LeNet5Like((len(keep1), len(keep2)), model.fc1.out_features, model.fc2.out_features)
    with torch.no_grad():
        small.conv1.weight.copy_(model.conv1.weight[keep1])
        small.conv1.bias.copy_(model.conv1.bias[keep1])
        small.conv2.weight.copy_(model.conv2.weight[keep2][:, keep1])
        small.conv2.bias.copy_(model.conv2.bias[keep2])
        for big_bn, small_bn, keep in ((model.bn1, small.bn1, keep1), (model.bn2, small.bn2, keep2)):
            for name in ("weight", "bias", "running_mean", "running_var"):
                getattr(small_bn, name).copy_(getattr(big_bn, name)[keep])
            small_bn.num_batches_tracked.copy_(big_bn.num_batches_tracked)
        fc1 = model.fc1.weight.view(model.fc1.out_features, -1, 7 * 7)[:, keep2]
        small.fc1.weight.copy_(fc1.reshape(model.fc1.out_features, -1))
        small.fc1.bias.copy_(model.fc1.bias)
        small.fc2.load_state_dict(model.fc2.state_dict())
    return small


def channel_importance(model, data, variant, *, score_batches, batch_size, generator):
    """Per-block channel scores of ``variant`` (a criterion name, ``+norm`` for eq. 4.13, or
    ``l1_stdv`` from the filters' weights), gathered over ``score_batches`` training batches by a
    ScoreCollector hooked on the gates (``trace`` takes a second pass with gbar)."""
    blocks = model.blocks()
    if variant == "l1_stdv":
        return {name: l1_stdv_scores(conv.weight).double() for name, conv, _ in blocks}
    criterion, normalise = variant.removesuffix("+norm"), variant.endswith("+norm")
    collector = ScoreCollector({name: gate for name, _, gate in blocks},
                               loss_reduction="mean", with_means=criterion in NEED_MEANS)
    x, y = data
    picked = torch.randperm(len(x), generator=generator)[:score_batches * batch_size]
    model.eval()  # statistics of the trained network as it stands: no dropout noise in the scores

    def step(batch):
        model.zero_grad(set_to_none=True)
        nn.functional.cross_entropy(model(batch[0]), batch[1]).backward()
    collector.gather(list(batches(x[picked], y[picked], batch_size)), step, trace=criterion == "trace")
    collector.remove()
    model.zero_grad(set_to_none=True)
    scores = {name: s[criterion] for name, s in collector.scores([criterion]).items()}
    if normalise:
        scores = {name: normalize_scores(ranking_magnitude(s, criterion)) for name, s in scores.items()}
    return scores


def _least_important(model, scores):
    """(block, channel) with the smallest score among live channels, never a block's last one."""
    best = None
    for name, _, gate in model.blocks():
        live = gate.mask.bool()
        if int(live.sum()) <= 1:
            continue
        masked = scores[name].masked_fill(~live, float("inf"))
        channel = int(torch.argmin(masked))
        value = float(masked[channel])
        if best is None or value < best[2]:
            best = (name, channel, value)
    return best


def prune_by(pretrained, train_data, test_data, variant, config):
    """Removes channels one by one by ``variant`` until the last FLOPs target is reached; returns
    the accuracy at each target, the curve and the pruned (gated) model."""
    model = copy.deepcopy(pretrained)
    generator = torch.Generator().manual_seed(config.seed)
    optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum)
    full = multiply_adds(model)
    gates = {name: gate for name, _, gate in model.blocks()}
    at_target = {0.0: accuracy(model, test_data)}
    curve = [(0.0, at_target[0.0])]
    removed = []
    pending = sorted(config.targets)
    total = sum(int(g.mask.numel()) for g in gates.values())
    bar = progress(range(total), variant, config)
    while pending:
        scores = channel_importance(model, train_data, variant, score_batches=config.score_batches,
                                    batch_size=config.batch_size, generator=generator)
        picks = []
        for _ in range(config.channels_per_step):
            pick = _least_important(model, scores)
            if pick is None:
                break
            name, channel, _ = pick
            gates[name].mask[channel] = 0
            removed.append(name)
            picks.append(pick)
        if not picks:
            break
        train(model, train_data, epochs=1, lr=config.lr, batch_size=config.batch_size, settings=config,
              optimizer=optimizer, generator=generator, max_steps=config.finetune_steps, desc=None)
        reduction = 1 - multiply_adds(model) / full
        bar.update(len(picks))
        if reduction >= pending[0]:
            acc = accuracy(model, test_data)
            curve.append((reduction, acc))
            while pending and reduction >= pending[0]:
                at_target[pending.pop(0)] = acc
    bar.close()
    return {"accuracy_at": at_target, "curve": curve, "removed_from": removed,
            "live_channels": {name: int(g.mask.sum()) for name, g in gates.items()},
            "flops_reduction": 1 - multiply_adds(model) / full}, model


def run_taylor(config: TaylorConfig):
    torch.manual_seed(config.seed)
    (x_train, y_train), test_data, data_note = digits(config.data)
    train_data = (x_train[:config.train_size], y_train[:config.train_size])
    pretrained = LeNet5Like(config.widths, config.fc_width)
    optimizer = torch.optim.SGD(pretrained.parameters(), lr=config.lr, momentum=config.momentum)
    train(pretrained, train_data, epochs=config.epochs, lr=config.lr, batch_size=config.batch_size,
          settings=config, optimizer=optimizer, desc="train LeNet5-like")
    base = accuracy(pretrained, test_data)
    runs, last_model = {}, None
    for variant in progress(config.criteria, "criteria", config):
        runs[variant], last_model = prune_by(pretrained, train_data, test_data, variant, config)

    small = shrink(last_model)
    last_model.eval()
    small.eval()
    with torch.no_grad():
        probe = test_data[0][:256]
        max_diff = float((small(probe) - last_model(probe)).abs().max())
    results = {"data": data_note, "accuracy": base, "flops": multiply_adds(pretrained), "runs": runs,
               "smaller_model": {"criterion": config.criteria[-1],
                                 "channels": list(small.bn1.weight.shape + small.bn2.weight.shape),
                                 "parameters": sum(p.numel() for p in small.parameters()),
                                 "parameters_full": sum(p.numel() for p in pretrained.parameters()),
                                 "max_output_difference": max_diff}}
    results["table"] = _table(runs, config)
    results["summary"] = [f"LeNet5-like {config.widths}/{config.fc_width}: {base:.2%}, "
                          f"{results['flops'] / 1e6:.2f} M multiply-adds per image", *results["table"],
                          f"smaller model ({config.criteria[-1]}): channels {results['smaller_model']['channels']}, "
                          f"{results['smaller_model']['parameters']} of {results['smaller_model']['parameters_full']} "
                          f"parameters, max |output difference| {max_diff:.2e}"]
    results["figures"] = [_plot(runs, config)]
    write_results(config, "taylor", config, results)
    results["model"], results["small_model"] = last_model, small
    return results


def _table(runs, config):
    targets = [0.0, *sorted(config.targets)]
    header = f"{'criterion':<16}" + "".join(f"{f'{t:.0%}':>9}" for t in targets)
    lines = ["test accuracy (%) at FLOPs reduction (thesis table 4.4a layout)", header]
    for variant, run in runs.items():
        cells = [run["accuracy_at"].get(t) for t in targets]
        lines.append(f"{variant:<16}" + "".join(f"{100 * c:>9.2f}" if c is not None else f"{'-':>9}"
                                                 for c in cells))
    return lines


def _plot(runs, config):
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 3.8))
    for variant, run in runs.items():
        xs, ys = zip(*run["curve"])
        ax.plot([100 * x for x in xs], [100 * y for y in ys], "o-", ms=3, label=variant)
    ax.set_xlabel("FLOPs reduction (%)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("Taylor channel pruning, LeNet5-like")
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5), title="criterion",
              title_fontsize=8, frameon=False)
    return save_figure(fig, config, "taylor_flops")


# ---------------------------------------------------------------- how the report reads it

def _kept(criterion):
    def pair(results):
        run = results["runs"].get(criterion)
        at = run and run["accuracy_at"].get("0.9")
        return None if at is None else (at, results["accuracy"])
    return pair


def _above(criterion, other="l1_stdv"):
    def pair(results):
        a, b = results["runs"].get(criterion), results["runs"].get(other)
        if not a or not b or "0.9" not in a["accuracy_at"] or "0.9" not in b["accuracy_at"]:
            return None
        return a["accuracy_at"]["0.9"], b["accuracy_at"]["0.9"]
    return pair


def _report_claims(task):
    return [*[Claim(task, f"Taylor thesis: {c} keeps accuracy at 90 % FLOPs removed (bound: within 0.3 points of "
                    "unpruned)", f"99.29 % -> {figure}", _kept(c), -0.3 * POINTS, f"{c}, 90 % off", "unpruned")
              for c, figure in (("meanprod", "99.13 %"), ("trace", "99.19 %"))],
            *[Claim(task, f"Taylor thesis, table 4.4a order: {c} above L1+stdv at 90 % FLOPs removed",
                    f"{figure} vs 98.91 %", _above(c), 0.0, c, "l1_stdv")
              for c, figure in (("simple", "99.15 %"), ("fisher", "99.13 %"), ("oracle", "99.19 %"),
                                ("meanprod", "99.13 %"), ("trace", "99.19 %"))]]


def _report_table(r):
    rows = [("unpruned", r["accuracy"])]
    for criterion, run in r["runs"].items():
        rows += [(f"{criterion} at {float(t):.0%} FLOPs off", v) for t, v in run["accuracy_at"].items() if float(t) > 0]
    return rows


def _report_figure(per_seed):
    first = per_seed[0]
    keys = sorted(first["runs"][next(iter(first["runs"]))]["accuracy_at"], key=float)
    xs = [100 * float(k) for k in keys]
    return ({c: (xs, [[r["runs"][c]["accuracy_at"].get(k, math.nan) for k in keys] for r in per_seed], "o-")
             for c in first["runs"]}, ("FLOPs removed, target (%)", "test accuracy (%)"))


WORKFLOW = Workflow("taylor", TaylorConfig, run_taylor, "Taylor channel pruning of a LeNet5-like CNN, FLOPs tracked",
                    "LeNet5-like, MNIST, 90% FLOPs removed: 99.29% -> 99.13% (meanprod), 99.19% (trace)",
                    _report_claims, _report_table, _report_figure)
