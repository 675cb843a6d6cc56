"""Single-shot pruning of a pre-trained model (report, section 4(3)): every weight scores
``|g theta| + alpha theta^2`` (gradient of the loss over a few batches), one global threshold keeps
the top (1 - sparsity), then the pruned model is fine-tuned. Compared at the same sparsity with
random pruning (the report's table 1), SNIP (alpha = 0) and plain magnitude (theta^2 only), each
just pruned and after fine-tuning.

The model is, by default, a network trained by someone else, as in the report: ccexam's MNIST CNN
(``model="ccexam"``; the MLP below when ccexam is not installed, with a note), or an MLP that the
workflow pre-trains itself (``model="mlp"``)."""
import copy
import dataclasses
from typing import Tuple

import torch

from ..topk import global_topk_masks, magnitude_masks
from ..data import DIGITS_CHOICES, digits
from .claims import Claim
from .workflow import Workflow
from . import common as limits
from .common import (RunSettings, accuracy, batches, classification_loss, dense_vs_sparse_times, progress,
                     prunable_layers, pyplot, save_figure, set_mask, timing_line, train, write_results)
from .models import PretrainedNotInstalled, ccexam_mnistnet, dense_copy_and_masks, trained_mlp

__all__ = ["SingleShotConfig", "single_shot_masks", "run_single_shot"]

METHODS = ("ours", "snip", "magnitude", "random")


@dataclasses.dataclass
class SingleShotConfig(RunSettings):
    data: str = "mnist"                         # or "subset"
    model: str = "ccexam"                       # or "mlp"
    hidden: Tuple[int, ...] = (300, 100)        # of the mlp
    pretrain_epochs: int = 15
    lr: float = 0.1
    batch_size: int = 100
    alpha: float = 1.0
    grad_batches: int = 10
    sparsities: Tuple[float, ...] = (0.9, 0.95, 0.98)
    finetune_epochs: int = 1
    methods: Tuple[str, ...] = METHODS

    LIMITS = {"hidden": limits.INTEGER_AT_LEAST_1, "pretrain_epochs": limits.INTEGER_AT_LEAST_1,
              "lr": limits.POSITIVE, "batch_size": limits.INTEGER_AT_LEAST_1, "alpha": (0, None, False, False),
              "grad_batches": limits.INTEGER_AT_LEAST_1, "sparsities": limits.FRACTION_OR_0,
              "finetune_epochs": limits.INTEGER_AT_LEAST_0}
    CHOICES = {"data": DIGITS_CHOICES, "model": ("ccexam", "mlp"), "methods": METHODS}

    HELP = {**limits.COMMON_HELP,
            "model": "ccexam: the MNIST CNN ccexam trained and ships (pip install --no-deps ccexam); "
                     "mlp: an MLP pre-trained here",
            "hidden": "hidden layer widths of the MLP 784-...-10 (model mlp), comma-separated",
            "pretrain_epochs": "training epochs of the MLP before pruning (model mlp)",
            "alpha": "weight of the magnitude term in |g theta| + alpha theta^2",
            "grad_batches": "batches whose mean-loss gradient g enters the score",
            "sparsities": "pruned shares of all weights, comma-separated",
            "finetune_epochs": "fine-tuning epochs after pruning",
            "methods": "ours (alpha as given), snip (alpha 0), magnitude, random; comma-separated"}
    QUICK = {"data": "subset", "model": "mlp", "pretrain_epochs": 4, "grad_batches": 4, "finetune_epochs": 1}


def accumulated_gradients(model, data, *, batches_used, batch_size, generator=None):
    """Gradient of the mean loss over ``batches_used`` batches (drawn by ``generator``, else the
    first ones), per pruned layer (the per-sample scale keeps ``alpha`` meaningful whatever the
    number of batches)."""
    layers = prunable_layers(model)
    model.zero_grad(set_to_none=True)
    model.eval()
    x, y = data
    used = 0
    for xb, yb in batches(x, y, batch_size, generator=generator):
        if used == batches_used:
            break
        classification_loss(model(xb), yb).backward()
        used += 1
    grads = [layer.weight.grad.detach() / used for layer in layers]
    model.zero_grad(set_to_none=True)
    return grads


def single_shot_masks(layers, grads, sparsity, method, *, alpha, generator=None):
    """Global masks over ``layers``' weights for one ``method`` of :data:`METHODS`."""
    weights = [layer.weight.detach() for layer in layers]
    if method == "ours":
        return global_topk_masks(weights, grads, sparsity=sparsity, alpha=alpha)
    if method == "snip":
        return global_topk_masks(weights, grads, sparsity=sparsity, alpha=0.0)
    if method == "magnitude":
        return magnitude_masks(weights, sparsity, scope="global")
    if method == "random":  # random scores through the same selection: the same kept count
        noise = [torch.rand(w.shape, generator=generator) for w in weights]
        return magnitude_masks(noise, sparsity, scope="global")
    raise ValueError(f"'method' must be one of {METHODS}, got {method!r}")


def _pretrained(config):
    """(model, train, test, fit, data note, model name): ccexam's CNN, or the MLP trained here."""
    if config.model == "ccexam":
        try:
            net = ccexam_mnistnet()
        except PretrainedNotInstalled as error:
            print(f"{error}: pruning an MLP pre-trained here instead")
        else:
            train_data, test_data, data_note = digits(config.data)
            torch.manual_seed(config.seed)
            fit = {"lr": config.lr, "batch_size": config.batch_size, "settings": config}
            return net, train_data, test_data, fit, data_note, "ccexam MNISTNet (trained by ccexam)"
    model, train_data, test_data, fit, data_note = trained_mlp(config, config.pretrain_epochs, "pre-train")
    return model, train_data, test_data, fit, data_note, f"MLP 784-{'-'.join(map(str, config.hidden))}-10"


def run_single_shot(config: SingleShotConfig):
    pretrained, train_data, test_data, fit, data_note, model_name = _pretrained(config)
    base = accuracy(pretrained, test_data)
    grads = accumulated_gradients(pretrained, train_data, batches_used=config.grad_batches,
                                  batch_size=config.batch_size,
                                  generator=torch.Generator().manual_seed(config.seed))
    table = {}
    jobs = [(s, m) for s in config.sparsities for m in config.methods]
    # The model timed as SparseLinear layers at the end: the highest sparsity, by our score if run.
    timed_job = (max(config.sparsities), "ours" if "ours" in config.methods else config.methods[-1])
    for sparsity, method in progress(jobs, "prune + fine-tune", config):
        model = copy.deepcopy(pretrained)
        layers = prunable_layers(model)
        generator = torch.Generator().manual_seed(config.seed)
        masks = single_shot_masks(layers, grads, sparsity, method, alpha=config.alpha, generator=generator)
        for layer, mask in zip(layers, masks):
            set_mask(layer, mask)
        pruned = accuracy(model, test_data)
        train(model, train_data, epochs=config.finetune_epochs, desc=f"{method} {sparsity:.0%}", **fit)
        kept = sum(int(m.sum()) for m in masks)
        table.setdefault(f"{sparsity:g}", {})[method] = {
            "accuracy_pruned": pruned, "accuracy": accuracy(model, test_data), "kept_weights": kept}
        if (sparsity, method) == timed_job:
            timed_model = model
    total = sum(layer.weight.numel() for layer in prunable_layers(pretrained))
    timing = None
    if model_name.startswith("MLP"):   # the MLP's Linear layers are timed as SparseLinear
        dense, masks = dense_copy_and_masks(timed_model, (784, *config.hidden, 10))
        batch = (train_data[0][:config.batch_size], train_data[1][:config.batch_size])
        timing = dict(dense_vs_sparse_times(dense, masks, batch, lr=config.lr), sparsity=timed_job[0],
                      method=timed_job[1])
    results = {"data": data_note, "model": model_name, "accuracy": base, "weights": total, "table": table,
               "sparse_timing": timing}
    lines = [f"pre-trained {model_name}: {base:.2%}; after pruning "
             f"and {config.finetune_epochs} fine-tuning epoch(s), test accuracy (just pruned):"]
    for shown, row in table.items():
        cells = ", ".join(f"{m} {v['accuracy']:.2%} ({v['accuracy_pruned']:.2%})" for m, v in row.items())
        lines.append(f"  {float(shown):.0%} sparsity: {cells}")
    lines.append("paper (ViT-B/16, CIFAR-10, 90%): 95.92% vs random 85.70%")
    if timing:
        lines.append(f"{timing['method']} at {timing['sparsity']:.0%}: " + timing_line(timing))
    results["summary"] = lines
    results["figures"] = [_plot(table, config)]
    write_results(config, "single_shot", config, results)
    return results


def _plot(table, config):
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.5))
    sparsities = [float(s) for s in table]
    for method in config.methods:
        ax.plot([100 * s for s in sparsities], [100 * table[f"{s:g}"][method]["accuracy"] for s in sparsities],
                "o-", label=method)
    ax.set_xlabel("sparsity (%)")
    ax.set_ylabel("test accuracy after fine-tuning (%)")
    ax.set_title(f"Single-shot pruning, alpha = {config.alpha:g}")
    ax.legend()
    return save_figure(fig, config, "single_shot")


# ---------------------------------------------------------------- how the report reads it

def _versus(method, other, key="accuracy", sparsity="0.9"):
    def pair(results):
        row = results["table"].get(sparsity, {})
        return (row[method][key], row[other][key]) if method in row and other in row else None
    return pair


def _report_claims(task):
    return [*[Claim(task, f"Single-shot: ours above {other} at 90 % sparsity, fine-tuned", figure,
                    _versus("ours", other), 0.0, "ours", other)
              for other, figure in (("random", "95.92 % vs 85.70 % (ViT-B/16, CIFAR-10)"), ("snip", "not reported"),
                                    ("magnitude", "not reported"))],
            Claim(task, "Single-shot: ours above random at 90 % sparsity, just pruned (no fine-tuning)", "not reported",
                  _versus("ours", "random", "accuracy_pruned"), 0.0, "ours", "random")]


def _report_table(r):
    rows = [("pre-trained", r["accuracy"])]
    for sparsity, row in r["table"].items():
        for method, cell in row.items():
            rows += [(f"{float(sparsity):.0%} {method}, just pruned", cell["accuracy_pruned"]),
                     (f"{float(sparsity):.0%} {method}, fine-tuned", cell["accuracy"])]
    return rows


def _report_figure(per_seed):
    sparsities = list(per_seed[0]["table"])
    xs = [100 * float(s) for s in sparsities]
    series = {}
    for method in per_seed[0]["table"][sparsities[0]]:
        for key, label, style in (("accuracy", "fine-tuned", "o-"), ("accuracy_pruned", "just pruned", "o:")):
            series[f"{method}, {label}"] = (xs, [[r["table"][s][method][key] for s in sparsities] for r in per_seed], style)
    return series, ("sparsity (%)", "test accuracy (%)")


WORKFLOW = Workflow("single-shot", SingleShotConfig, run_single_shot, "single-shot |g theta| + alpha theta^2 pruning",
                    "ViT-B/16 (ImageNet-21k), CIFAR-10, 90% sparsity: 95.92% vs 85.70% random", _report_claims, _report_table, _report_figure)
