"""Structured pruning of a residual network through Torch-Pruning: a ResNet for digits (residual
adds, BatchNorm) is trained, then its channels are removed step by step, by our Taylor criteria
(:class:`~pyprune_ext.integrations.torch_pruning.TaylorChannelImportance`) and by Torch-Pruning's
own ``GroupMagnitudeImportance`` and ``GroupTaylorImportance``, with fine-tuning after each step,
until 50/70/90% of the FLOPs are gone. Reports accuracy, FLOPs, parameters and measured CPU
latency at each target, and the time each criterion's scoring took over the same data. Needs
``pip install 'pyprune_ext[torch-pruning]'``."""
import copy
import dataclasses
import math
import time
from typing import Tuple

import torch

from ..taylor import CRITERIA
from ..data import DIGITS_CHOICES, digits
from .claims import Claim
from .workflow import Workflow
from . import common as limits
from .common import (RunSettings, accuracy, batches, classification_loss, median_seconds, progress, pyplot,
                     save_figure, train, write_results)
from .models import DigitsResNet, PretrainedNotInstalled, ccexam_mnistnet

__all__ = ["StructuredConfig", "run_structured", "PEERS", "METHODS"]

PEERS = ("tp_magnitude", "tp_taylor")   # Torch-Pruning's GroupMagnitudeImportance, GroupTaylorImportance
METHODS = CRITERIA + PEERS


@dataclasses.dataclass
class StructuredConfig(RunSettings):
    data: str = "mnist"                         # or "subset"
    model: str = "resnet"                         # or "ccexam": the MNIST CNN ccexam trained
    widths: Tuple[int, int, int] = (16, 32, 64)   # channels of the three stages
    epochs: int = 2
    lr: float = 3e-3                              # Adam, training
    finetune_lr: float = 1e-3                     # Adam, fine-tuning after each pruning step
    batch_size: int = 50
    methods: Tuple[str, ...] = ("fisher", "first_order", "trace", "tp_magnitude", "tp_taylor")
    targets: Tuple[float, ...] = (0.5, 0.7, 0.9)  # shares of the FLOPs removed
    pruning_steps: int = 18                       # steps to 90% of the channels removed
    score_batches: int = 10                       # training batches scored before each step
    finetune_steps: int = 30                      # Adam steps after each step
    ranking: str = "global"                       # one channel ranking over all layers, or per layer

    LIMITS = {"widths": limits.INTEGER_AT_LEAST_1, "epochs": limits.INTEGER_AT_LEAST_1, "lr": limits.POSITIVE,
              "finetune_lr": limits.POSITIVE, "batch_size": limits.INTEGER_AT_LEAST_1, "targets": limits.FRACTION,
              "pruning_steps": limits.INTEGER_AT_LEAST_1, "score_batches": limits.INTEGER_AT_LEAST_1,
              "finetune_steps": limits.INTEGER_AT_LEAST_0}
    CHOICES = {"data": DIGITS_CHOICES, "model": ("resnet", "ccexam"), "methods": METHODS, "ranking": ("global", "layerwise")}

    def __post_init__(self):
        super().__post_init__()
        if len(self.widths) != 3:
            raise ValueError(f"'widths' must be three stage widths, got {self.widths}")

    HELP = {**limits.COMMON_HELP,
            "model": "resnet: a DigitsResNet trained here; ccexam: the MNIST CNN that ccexam trained and ships "
                     "(pip install --no-deps ccexam), pruned without training it again",
            "widths": "channels of the ResNet's three stages (model resnet), comma-separated",
            "lr": "learning rate of the training (Adam)",
            "finetune_lr": "learning rate of the fine-tuning after each pruning step (Adam)",
            "methods": "our criteria (simple, first_order, fisher, first_plus_second, oracle, meanprod, "
                       "trace) and Torch-Pruning's (tp_magnitude, tp_taylor), comma-separated",
            "targets": "shares of the FLOPs removed at which accuracy and latency are reported, comma-separated",
            "pruning_steps": "pruning steps to 90% of the channels removed (each followed by fine-tuning)",
            "score_batches": "training batches scored before each pruning step",
            "finetune_steps": "Adam steps after each pruning step",
            "ranking": "global: one channel ranking over all layers; layerwise: the same share of every layer"}
    QUICK = {"data": "subset", "epochs": 2, "methods": ("fisher", "tp_magnitude", "tp_taylor"), "pruning_steps": 12,
             "score_batches": 2, "finetune_steps": 15}


def _torch_pruning():
    try:
        import torch_pruning
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError("the structured workflow needs Torch-Pruning: pip install 'pyprune_ext[torch-pruning]'") from error
    from ..integrations.torch_pruning import TaylorChannelImportance
    return torch_pruning, TaylorChannelImportance


def _importance(method):
    tp, TaylorChannelImportance = _torch_pruning()
    if method == "tp_magnitude":
        return tp.importance.GroupMagnitudeImportance()
    if method == "tp_taylor":
        return tp.importance.GroupTaylorImportance()
    return TaylorChannelImportance(method)


def _score(model, importance, method, data, config):
    """The data pass a criterion needs before a pruning step (none for magnitude)."""
    if method == "tp_magnitude":
        return
    x, y = data
    scored = [b for _, b in zip(range(config.score_batches), batches(x, y, config.batch_size))]
    model.eval()   # score the model as it will be used, BatchNorm statistics fixed
    if method == "tp_taylor":   # Torch-Pruning reads the weight gradients summed over the batches
        model.zero_grad(set_to_none=True)
        for xb, yb in scored:
            classification_loss(model(xb), yb).backward()
    else:
        importance.reset().accumulate(model, scored, classification_loss)


def prune_to_targets(pretrained, train_data, test_data, method, config):
    """One method's run: prune step by step, fine-tune, and record each FLOPs target reached."""
    tp, _ = _torch_pruning()
    model = copy.deepcopy(pretrained)
    example = train_data[0][:2]
    importance = _importance(method)
    model.eval()
    pruner = tp.pruner.MetaPruner(model, example, importance=importance, pruning_ratio=0.9,
                                  iterative_steps=config.pruning_steps,
                                  global_pruning=config.ranking == "global", ignored_layers=[_classifier(model)])
    base_macs, _ = tp.utils.count_ops_and_params(model, example[:1])
    generator = torch.Generator().manual_seed(config.seed)
    pending, reached = sorted(config.targets), []
    score_seconds = step_seconds = 0.0
    for _ in progress(range(config.pruning_steps), f"prune ({method})", config):
        start = time.perf_counter()
        _score(model, importance, method, train_data, config)
        middle = time.perf_counter()
        pruner.step()
        score_seconds += middle - start
        step_seconds += time.perf_counter() - middle
        model.zero_grad(set_to_none=True)
        _fit(model, train_data, config, lr=config.finetune_lr, epochs=1, max_steps=config.finetune_steps,
             generator=generator, desc=None)
        macs, params = tp.utils.count_ops_and_params(model, example[:1])
        while pending and 1 - macs / base_macs >= pending[0]:
            reached.append({"target": pending.pop(0), "flops_removed": 1 - macs / base_macs, "macs": macs,
                            "params": params, "accuracy": accuracy(model, test_data),
                            "latency_ms": _latency_ms(model, test_data)})
        if not pending:
            break
    return {"points": reached, "score_seconds": score_seconds, "prune_step_seconds": step_seconds,
            "unreached": pending}


def _classifier(model):
    """The last Linear layer: its outputs are the classes, never pruned."""
    return [m for m in model.modules() if isinstance(m, torch.nn.Linear)][-1]


def _pretrained(config, train_data):
    """(model, name): ccexam's CNN as shipped, or a DigitsResNet trained here (also when ccexam is
    not installed, with a note)."""
    if config.model == "ccexam":
        try:
            return ccexam_mnistnet(), "ccexam MNISTNet (trained by ccexam)"
        except PretrainedNotInstalled as error:
            print(f"{error}: pruning a DigitsResNet trained here instead")
    model = DigitsResNet(config.widths)
    _fit(model, train_data, config, lr=config.lr, epochs=config.epochs, desc="train ResNet")
    return model, f"DigitsResNet{tuple(config.widths)}"


def _fit(model, data, config, *, lr, **options):
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)  # a fresh one: the parameters change shape
    train(model, data, lr=lr, batch_size=config.batch_size, settings=config, optimizer=optimizer, **options)


def _latency_ms(model, data, batch_size=100):
    x = data[0][:batch_size]
    model.eval()
    with torch.inference_mode():
        return 1e3 * median_seconds(lambda: model(x), repeats=15)


def run_structured(config: StructuredConfig):
    tp, _ = _torch_pruning()
    torch.manual_seed(config.seed)
    train_data, test_data, data_note = digits(config.data)
    pretrained, model_name = _pretrained(config, train_data)
    macs, params = tp.utils.count_ops_and_params(pretrained, train_data[0][:1])
    base = {"accuracy": accuracy(pretrained, test_data), "macs": macs, "params": params,
            "latency_ms": _latency_ms(pretrained, test_data)}
    runs = {method: prune_to_targets(pretrained, train_data, test_data, method, config)
            for method in progress(config.methods, "methods", config)}
    results = {"data": data_note, "model": model_name, "unpruned": base, "runs": runs,
               "summary": _summary(base, runs, config, model_name)}
    results["figures"] = [_plot(base, runs, config, model_name)]
    write_results(config, "structured", config, results)
    return results


def _summary(base, runs, config, model_name):
    lines = [f"{model_name}: {base['accuracy']:.2%}, {base['macs'] / 1e6:.2f} MMACs, "
             f"{base['params'] / 1e3:.1f}k parameters, {base['latency_ms']:.2f} ms per batch of 100 "
             f"({torch.get_num_threads()} threads); pruned through Torch-Pruning ({config.ranking} ranking), "
             f"fine-tuned {config.finetune_steps} steps after each step:"]
    for method, run in runs.items():
        cells = ", ".join(f"{p['flops_removed']:.0%} FLOPs off: {p['accuracy']:.1%} in {p['latency_ms']:.2f} ms"
                          for p in run["points"])
        missed = f" (not reached: {', '.join(f'{t:.0%}' for t in run['unreached'])})" if run["unreached"] else ""
        lines.append(f"  {method:>17}: {cells}{missed}; scoring {run['score_seconds']:.2f} s, "
                     f"pruning steps {run['prune_step_seconds']:.2f} s")
    return lines


def _plot(base, runs, config, model_name):
    plt = pyplot()
    fig, (by_flops, by_latency) = plt.subplots(1, 2, figsize=(9, 3.6))
    for method, run in runs.items():
        style = "s--" if method in PEERS else "o-"
        label = f"Torch-Pruning {method[3:]}" if method in PEERS else f"ours: {method}"
        flops = [0.0] + [100 * p["flops_removed"] for p in run["points"]]
        acc = [100 * base["accuracy"]] + [100 * p["accuracy"] for p in run["points"]]
        by_flops.plot(flops, acc, style, label=label, ms=4)
        by_latency.plot([base["latency_ms"]] + [p["latency_ms"] for p in run["points"]], acc, style, label=label, ms=4)
    by_flops.set_xlabel("FLOPs removed (%)")
    by_flops.set_ylabel("test accuracy (%)")
    by_latency.set_xlabel("CPU latency per batch of 100 (ms)")
    by_latency.legend(fontsize=7)
    fig.suptitle(f"{model_name} channel pruning")
    return save_figure(fig, config, "structured")


# ---------------------------------------------------------------- how the report reads it

def _at_target(method, peer, target):
    def pair(results):
        def at(name):
            run = results["runs"].get(name)
            return next((p["accuracy"] for p in run["points"] if abs(p["target"] - target) < 1e-9), None) if run else None
        a, b = at(method), at(peer)
        return None if a is None or b is None else (a, b)
    return pair


def _report_claims(task):
    return [Claim(task, f"Structured ({task}): ours (fisher) against Torch-Pruning's {peer[3:]} at {target:.0%} FLOPs "
                  "removed", "no published figure", _at_target("fisher", peer, target), 0.0, "fisher", peer)
            for peer in PEERS for target in (0.5, 0.7, 0.9)]


def _report_table(r):
    rows = [("unpruned", r["unpruned"]["accuracy"])]
    for method, run in r["runs"].items():
        for p in run["points"]:
            rows += [(f"{method} at {p['target']:.0%} target: accuracy", p["accuracy"]),
                     (f"{method} at {p['target']:.0%} target: FLOPs removed", p["flops_removed"])]
    return rows


def _report_figure(per_seed):
    targets = sorted({p["target"] for r in per_seed for run in r["runs"].values() for p in run["points"]})
    xs = [0.0] + [100 * t for t in targets]

    def curve(r, method):
        points = {p["target"]: p["accuracy"] for p in r["runs"][method]["points"]}
        return [r["unpruned"]["accuracy"]] + [points.get(t, math.nan) for t in targets]
    return ({m: (xs, [curve(r, m) for r in per_seed], "s--" if m in PEERS else "o-") for m in per_seed[0]["runs"]},
            ("FLOPs removed, target (%)", "test accuracy (%)"))


WORKFLOW = Workflow("structured", StructuredConfig, run_structured,
                    "channel pruning through Torch-Pruning: our criteria vs its own (FLOPs, latency)",
                    "no published figure: the thesis criteria (table 4.4a) on a real net, beside Torch-Pruning's",
                    _report_claims, _report_table, _report_figure)
