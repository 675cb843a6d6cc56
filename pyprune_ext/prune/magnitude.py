"""Magnitude pruning with retraining (Han et al. 2015): train, prune the smallest |w|, retrain,
repeat along a sparsity schedule. Layerwise (every layer to the same sparsity) or global (one
threshold over all layers). Masks live in torch.nn.utils.prune, so pruned weights stay zero
through retraining."""
import dataclasses
from typing import Tuple

from ..data import DIGITS_CHOICES
from .claims import POINTS, Claim
from .workflow import Workflow
from . import common as limits
from .common import (RunSettings, accuracy, dense_vs_sparse_times, magnitude_layer_masks, progress,
                     prunable_layers, pyplot, save_figure, set_mask, sparsity_of, timing_line, train,
                     write_results)
from .models import dense_copy_and_masks, trained_mlp

__all__ = ["MagnitudeConfig",
           "run_magnitude"]


@dataclasses.dataclass
class MagnitudeConfig(RunSettings):
    data: str = "mnist"                         # or "subset"
    hidden: Tuple[int, ...] = (300, 100)        # LeNet-300-100, Han et al.'s MNIST MLP
    epochs: int = 15
    lr: float = 0.1
    batch_size: int = 100
    scope: str = "layerwise"                    # or "global"
    schedule: Tuple[float, ...] = (0.5, 0.75, 0.9, 0.95)
    retrain_epochs: int = 4

    LIMITS = {"hidden": limits.INTEGER_AT_LEAST_1, "epochs": limits.INTEGER_AT_LEAST_1, "lr": limits.POSITIVE,
              "batch_size": limits.INTEGER_AT_LEAST_1, "schedule": limits.FRACTION_OR_0,
              "retrain_epochs": limits.INTEGER_AT_LEAST_0}
    CHOICES = {"data": DIGITS_CHOICES, "scope": ("layerwise", "global")}

    def __post_init__(self):
        super().__post_init__()
        if list(self.schedule) != sorted(self.schedule):
            raise ValueError(f"'schedule' must be increasing sparsities in [0, 1), got {self.schedule}")

    HELP = {**limits.COMMON_HELP,
            "hidden": "hidden layer widths of the MLP 784-...-10, comma-separated",
            "scope": "layerwise: every layer to the same sparsity; global: one |w| threshold over all layers",
            "schedule": "sparsities (pruned shares of the weights) reached one after another, comma-separated",
            "retrain_epochs": "retraining epochs after each pruning step"}
    QUICK = {"data": "subset", "epochs": 4, "schedule": (0.5, 0.9), "retrain_epochs": 1}


def run_magnitude(config: MagnitudeConfig):
    model, train_data, test_data, fit, data_note = trained_mlp(config, config.epochs)
    layers = prunable_layers(model)
    dense_acc = accuracy(model, test_data)
    steps = [{"target": 0.0, "sparsity": 0.0, "per_layer": [0.0] * len(layers),
              "accuracy_pruned": dense_acc, "accuracy": dense_acc}]
    for target in progress(config.schedule, "prune", config):
        for layer, mask in zip(layers, magnitude_layer_masks(layers, target, config.scope)):
            set_mask(layer, mask)
        pruned_acc = accuracy(model, test_data)
        train(model, train_data, epochs=config.retrain_epochs, desc=f"retrain {target:.0%}", **fit)
        total, per_layer = sparsity_of(layers)
        steps.append({"target": target, "sparsity": total, "per_layer": per_layer,
                      "accuracy_pruned": pruned_acc, "accuracy": accuracy(model, test_data)})
    dense, masks = dense_copy_and_masks(model, (784, *config.hidden, 10))
    batch = (train_data[0][:config.batch_size], train_data[1][:config.batch_size])
    timing = dense_vs_sparse_times(dense, masks, batch, lr=config.lr)
    results = {"data": data_note, "steps": steps, "dense_accuracy": steps[0]["accuracy"],
               "final_accuracy": steps[-1]["accuracy"], "final_sparsity": steps[-1]["sparsity"],
               "sparse_timing": timing}
    results["summary"] = [f"dense {steps[0]['accuracy']:.2%} -> {steps[-1]['sparsity']:.1%} "
                          f"sparse ({config.scope}) {steps[-1]['accuracy']:.2%} after retraining",
                          timing_line(timing)]
    results["figures"] = [_plot(steps, config)]
    write_results(config, "magnitude", config, results)
    results["model"] = model
    return results


def _plot(steps, config):
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.5))
    sparsity = [100 * s["sparsity"] for s in steps]
    ax.plot(sparsity, [100 * s["accuracy_pruned"] for s in steps], "o--", label="just pruned")
    ax.plot(sparsity, [100 * s["accuracy"] for s in steps], "o-", label="after retraining")
    ax.set_xlabel("weights pruned (%)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"Magnitude pruning ({config.scope}), MLP 784-{'-'.join(map(str, config.hidden))}-10")
    ax.legend()
    return save_figure(fig, config, "magnitude")


# ---------------------------------------------------------------- how the report reads it

def _at_90(results):
    step = next((s for s in results["steps"] if abs(s["target"] - 0.9) < 1e-9), None)
    return None if step is None else (step["accuracy"], results["dense_accuracy"])


def _report_claims(task):
    return [Claim(task, "Han: 90 % of the weights pruned with retraining at no loss against dense "
                  "(bound: at most 0.1 points below)", "LeNet-300-100: error 1.64 % -> 1.59 % at 12x fewer weights",
                  _at_90, -0.1 * POINTS, "90 % pruned, retrained", "dense")]


def _report_table(r):
    rows = [("dense", r["dense_accuracy"])]
    for s in r["steps"][1:]:
        rows += [(f"{s['target']:.0%} pruned, just pruned", s["accuracy_pruned"]),
                 (f"{s['target']:.0%} pruned, retrained", s["accuracy"])]
    return rows


def _report_figure(per_seed):
    xs = [100 * s["target"] for s in per_seed[0]["steps"]]
    return ({"retrained": (xs, [[s["accuracy"] for s in r["steps"]] for r in per_seed], "o-"),
             "just pruned": (xs, [[s["accuracy_pruned"] for s in r["steps"]] for r in per_seed], "o--")},
            ("weights pruned (%)", "test accuracy (%)"))


WORKFLOW = Workflow("magnitude", MagnitudeConfig, run_magnitude, "magnitude pruning with retraining (Han et al.)",
                    "Han et al.: LeNet-300-100, 12x fewer weights, error 1.64% -> 1.59%", _report_claims, _report_table, _report_figure)
