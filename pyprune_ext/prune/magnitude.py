"""Magnitude pruning with retraining (Han et al. 2015): train, prune the smallest |w|, retrain,
repeat along a sparsity schedule. Layerwise (every layer to the same sparsity) or global (one
threshold over all layers). Masks live in torch.nn.utils.prune, so pruned weights stay zero
through retraining."""
import dataclasses
from typing import Sequence, Tuple

import torch
from torch import nn

from ..data import mnist_subset
from ..taylor import global_topk_masks
from . import common as limits
from .common import (RunSettings, accuracy, progress, pyplot, save_figure, set_mask, train, weight_mask,
                     write_results)

__all__ = ["MagnitudeConfig", "magnitude_masks", "prunable_layers", "sparsity_of", "mlp", "trained_mlp",
           "run_magnitude"]


@dataclasses.dataclass
class MagnitudeConfig(RunSettings):
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
    CHOICES = {"scope": ("layerwise", "global")}

    def __post_init__(self):
        super().__post_init__()
        if list(self.schedule) != sorted(self.schedule):
            raise ValueError(f"'schedule' must be increasing sparsities in [0, 1), got {self.schedule}")

    @classmethod
    def quick(cls, **overrides):
        return cls(**{"epochs": 4, "schedule": (0.5, 0.9), "retrain_epochs": 1, **overrides})


def mlp(sizes: Sequence[int]):
    """Linear-ReLU stack over flat 784-pixel digits, e.g. ``mlp((784, 300, 100, 10))``."""
    layers = []
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        if i:
            layers.append(nn.ReLU())
        layers.append(nn.Linear(fan_in, fan_out))
    return nn.Sequential(*layers)


def trained_mlp(config, epochs, desc="train"):
    """The digits MLP ``784-<config.hidden>-10`` trained by plain SGD (``config.lr``,
    ``config.batch_size``), seeded; returns ``(model, train_data, test_data, fit)`` with ``fit`` the
    keyword arguments for retraining it the same way."""
    torch.manual_seed(config.seed)
    train_data, test_data = mnist_subset(seed=config.seed)
    model = mlp((784, *config.hidden, 10))
    fit = {"lr": config.lr, "batch_size": config.batch_size, "settings": config}
    train(model, train_data, epochs=epochs, desc=desc, **fit)
    return model, train_data, test_data, fit


def prunable_layers(model):
    """The Linear and Conv layers of ``model`` whose weights are pruned, in module order."""
    return [m for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d))]


def magnitude_masks(layers, sparsity, scope="layerwise"):
    """Bool masks keeping the largest |w| of each layer (``layerwise``) or of all layers together
    (``global``), ``sparsity`` the pruned share. Scores come from the compiled top-k op with the
    gradient term off (score = w^2); weights already pruned score 0 and stay pruned."""
    if scope not in ("layerwise", "global"):
        raise ValueError(f"'scope' must be 'layerwise' or 'global', got {scope!r}")
    weights = [layer.weight.detach() for layer in layers]
    zeros = [torch.zeros_like(w) for w in weights]
    if scope == "global":
        masks = global_topk_masks(weights, zeros, sparsity=sparsity, alpha=1.0)
    else:
        masks = [global_topk_masks([w], [z], sparsity=sparsity, alpha=1.0)[0]
                 for w, z in zip(weights, zeros)]
    return [m & weight_mask(layer) for m, layer in zip(masks, layers)]


def sparsity_of(layers):
    """Pruned share of all weights of ``layers`` and of each one."""
    masks = [weight_mask(layer) for layer in layers]
    per_layer = [1 - int(m.sum()) / m.numel() for m in masks]
    total = sum(m.numel() for m in masks)
    kept = sum(int(m.sum()) for m in masks)
    return 1 - kept / total, per_layer


def run_magnitude(config: MagnitudeConfig):
    model, train_data, test_data, fit = trained_mlp(config, config.epochs)
    layers = prunable_layers(model)
    dense_acc = accuracy(model, test_data)
    steps = [{"target": 0.0, "sparsity": 0.0, "per_layer": [0.0] * len(layers),
              "accuracy_pruned": dense_acc, "accuracy": dense_acc}]
    for target in progress(config.schedule, "prune", config):
        for layer, mask in zip(layers, magnitude_masks(layers, target, config.scope)):
            set_mask(layer, mask)
        pruned_acc = accuracy(model, test_data)
        train(model, train_data, epochs=config.retrain_epochs, desc=f"retrain {target:.0%}", **fit)
        total, per_layer = sparsity_of(layers)
        steps.append({"target": target, "sparsity": total, "per_layer": per_layer,
                      "accuracy_pruned": pruned_acc, "accuracy": accuracy(model, test_data)})
    results = {"steps": steps, "dense_accuracy": steps[0]["accuracy"],
               "final_accuracy": steps[-1]["accuracy"], "final_sparsity": steps[-1]["sparsity"]}
    results["summary"] = [f"dense {steps[0]['accuracy']:.2%} -> {steps[-1]['sparsity']:.1%} "
                          f"sparse ({config.scope}) {steps[-1]['accuracy']:.2%} after retraining"]
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
