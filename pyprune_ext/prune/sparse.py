"""Sparse-from-scratch training (1/25-density paper): an MLP 784-500-10 whose 784->500 matrix W
holds only a fixed random share gamma of nonzeros (SparseLinear), for gamma = 1, .33, .16, .08,
.04 (paper's tables 1 and 2). As in the paper, W is first pre-trained as the encoder of an
autoencoder (reconstruction MSE, table 1), then the classifier is fine-tuned (accuracy, table 2).
Wall-clock per epoch of the sparse layer is compared with the dense twin (gamma = 1, nn.Linear)."""
import dataclasses
import time
from typing import Tuple

import torch
from torch import nn
import torch.nn.functional as F

from ..sparse import SparseLinear
from ..data import DIGITS_CHOICES, digits
from .claims import POINTS, Claim
from .workflow import Workflow
from . import common as limits
from .common import RunSettings, accuracy, progress, pyplot, save_figure, train, write_results

__all__ = ["SparseConfig", "sparse_mlp", "run_sparse"]


@dataclasses.dataclass
class SparseConfig(RunSettings):
    data: str = "mnist"                         # or "subset"
    hidden: int = 500
    densities: Tuple[float, ...] = (1.0, 0.33, 0.16, 0.08, 0.04)
    pretrain_epochs: int = 5
    epochs: int = 10
    lr: float = 0.1
    momentum: float = 0.9
    pretrain_lr: float = 1e-3                # Adam, for the autoencoder
    batch_size: int = 100

    LIMITS = {"hidden": limits.INTEGER_AT_LEAST_1, "densities": limits.DENSITY,
              "pretrain_epochs": limits.INTEGER_AT_LEAST_0, "epochs": limits.INTEGER_AT_LEAST_1,
              "lr": limits.POSITIVE, "momentum": limits.MOMENTUM, "pretrain_lr": limits.POSITIVE,
              "batch_size": limits.INTEGER_AT_LEAST_1}

    CHOICES = {"data": DIGITS_CHOICES}

    HELP = {**limits.COMMON_HELP,
            "hidden": "units of the SparseLinear hidden layer (784-hidden-10)",
            "densities": "densities gamma of the hidden layer's weights, comma-separated",
            "pretrain_epochs": "autoencoder pre-training epochs of the hidden layer",
            "epochs": "classifier training epochs",
            "pretrain_lr": "learning rate of the autoencoder pre-training (Adam)"}
    QUICK = {"data": "subset", "pretrain_epochs": 1, "epochs": 3}


def sparse_mlp(density, hidden=500, *, generator=None):
    """784 -> hidden (ReLU) -> 10; the first matrix is SparseLinear at ``density`` (< 1) or a
    dense nn.Linear (density 1, the dense twin)."""
    first = nn.Linear(784, hidden) if density >= 1 else SparseLinear(784, hidden, density, generator=generator)
    return nn.Sequential(first, nn.ReLU(), nn.Linear(hidden, 10))


def _timed_train(model, data, *, epochs, **fit):
    start = time.perf_counter()
    losses = train(model, data, epochs=epochs, **fit)
    return losses, (time.perf_counter() - start) / max(epochs, 1)


def run_sparse(config: SparseConfig):
    train_data, test_data, data_note = digits(config.data)
    x_train = train_data[0]
    rows = {}
    for density in progress(config.densities, "densities", config):
        torch.manual_seed(config.seed)
        generator = torch.Generator().manual_seed(config.seed)
        model = sparse_mlp(density, config.hidden, generator=generator)
        encoder = model[:2]
        # Autoencoder pre-training of W: x -> sigmoid(W x + b) -> decoder -> x, MSE.
        decoder = nn.Sequential(nn.Linear(config.hidden, 784), nn.Sigmoid())
        autoencoder = nn.Sequential(encoder, decoder)
        _, pretrain_time = _timed_train(
            autoencoder, (x_train, x_train), epochs=config.pretrain_epochs, lr=config.pretrain_lr,
            optimizer=torch.optim.Adam(autoencoder.parameters(), lr=config.pretrain_lr),
            batch_size=config.batch_size, settings=config, loss_fn=F.mse_loss, desc=f"pre-train {density:g}")
        with torch.no_grad():
            autoencoder.eval()
            mse = float(F.mse_loss(autoencoder(test_data[0]), test_data[0]))
        losses, epoch_time = _timed_train(model, train_data, epochs=config.epochs, lr=config.lr,
                                          momentum=config.momentum, batch_size=config.batch_size, settings=config,
                                          desc=f"fine-tune {density:g}")
        first = model[0]
        nnz = first.nnz if isinstance(first, SparseLinear) else first.weight.numel()
        rows[f"{density:g}"] = {"density": nnz / (784 * config.hidden), "nonzeros": nnz,
                                "pretrain_mse": mse, "accuracy": accuracy(model, test_data),
                                "seconds_per_epoch": epoch_time,
                                "pretrain_seconds_per_epoch": pretrain_time if config.pretrain_epochs else None,
                                "final_loss": losses[-1] if losses else None}
    dense = rows.get("1")
    lines = [f"MLP 784-{config.hidden}-10, {config.pretrain_epochs} autoencoder + {config.epochs} "
             f"classifier epochs on {data_note}:",
             f"{'gamma':>6} {'nonzeros':>9} {'test MSE':>9} {'accuracy':>9} {'s/epoch':>8}"]
    for key, row in rows.items():
        speed = f"  {dense['seconds_per_epoch'] / row['seconds_per_epoch']:.2f}x dense" if dense and key != "1" else ""
        lines.append(f"{key:>6} {row['nonzeros']:>9} {row['pretrain_mse']:>9.4f} {row['accuracy']:>9.2%} "
                     f"{row['seconds_per_epoch']:>8.3f}{speed}")
    lines.append("paper (60,000 images, 10,000 epochs): accuracy 98.38 / 98.34 / 98.13 / 98.17 / 97.90 %")
    results = {"data": data_note, "rows": rows, "summary": lines, "figures": [_plot(rows, config)]}
    write_results(config, "sparse", config, results)
    return results


def _plot(rows, config):
    plt = pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(8, 3.2))
    keys = list(rows)
    left.plot([rows[k]["density"] for k in keys], [100 * rows[k]["accuracy"] for k in keys], "o-")
    left.set_xscale("log")
    left.set_xlabel("density gamma")
    left.set_ylabel("test accuracy (%)")
    right.bar(keys, [rows[k]["seconds_per_epoch"] for k in keys])
    right.set_xlabel("density gamma")
    right.set_ylabel("seconds per epoch")
    fig.suptitle("Sparse-from-scratch MLP 784-500-10", fontsize=9)
    return save_figure(fig, config, "sparse")


# ---------------------------------------------------------------- how the report reads it

def _sparsest_vs_dense(results):
    rows = results["rows"]
    return (rows["0.04"]["accuracy"], rows["1"]["accuracy"]) if "0.04" in rows and "1" in rows else None


def _report_claims(task):
    return [Claim(task, "1/25 density: gamma 0.04 loses at most ~0.5 points against dense", "97.90 % vs 98.38 %",
                  _sparsest_vs_dense, -0.5 * POINTS, "gamma 0.04", "gamma 1 (dense)")]


def _report_table(r):
    rows = []
    for gamma, row in r["rows"].items():
        rows += [(f"gamma {gamma}: accuracy", row["accuracy"]), (f"gamma {gamma}: autoencoder test MSE", row["pretrain_mse"])]
    return rows


def _report_figure(per_seed):
    keys = list(per_seed[0]["rows"])
    return ({"accuracy": ([float(k) for k in keys], [[r["rows"][k]["accuracy"] for k in keys] for r in per_seed], "o-")},
            ("density gamma", "test accuracy (%)"))


WORKFLOW = Workflow("sparse", SparseConfig, run_sparse, "SparseLinear MLP trained from scratch at gamma 1 .. 1/25",
                    "784-500-10, MNIST, gamma 0.04 vs 1.0: 97.90% vs 98.38%", _report_claims, _report_table, _report_figure)
