"""Region pruning (Takehana & Ozaki): after magnitude pruning of an MLP's first layer, each hidden
neuron's surviving weights, seen as a 28x28 image, fall into connected regions; regions are scored
by their mean |w| and the weakest share of all regions of the layer is removed, then the network
is retrained. Paper: MLP 784-100-50-10 on MNIST, SGD lr 0.1, batch 100, 15 epochs, magnitude rate
0.5, region rate 0.4: 94.5% -> 94.1%, neurons split into >= 90% and <= 40% of weights pruned."""
import dataclasses
from typing import Tuple

import torch

from ..regions import label_regions, prune_regions
from ..data import DIGITS_CHOICES
from .claims import POINTS, Claim
from .workflow import Workflow
from . import common as limits
from .common import (RunSettings, accuracy, magnitude_layer_masks, progress, pyplot, save_figure, set_mask,
                     train, weight_mask,
                     write_results)
from .models import trained_mlp

__all__ = ["RegionConfig", "run_region"]


@dataclasses.dataclass
class RegionConfig(RunSettings):
    data: str = "mnist"                         # or "subset"
    hidden: Tuple[int, ...] = (100, 50)
    epochs: int = 15
    lr: float = 0.1
    batch_size: int = 100
    magnitude_rate: float = 0.5
    region_rate: float = 0.4
    rounds: int = 5                  # label -> prune regions -> retrain, repeated
    retrain_epochs: int = 5
    connectivity: int = 4
    figure_neurons: int = 12

    LIMITS = {"hidden": limits.INTEGER_AT_LEAST_1, "epochs": limits.INTEGER_AT_LEAST_1, "lr": limits.POSITIVE,
              "batch_size": limits.INTEGER_AT_LEAST_1, "magnitude_rate": limits.FRACTION_OR_0,
              "region_rate": limits.FRACTION_OR_0, "rounds": limits.INTEGER_AT_LEAST_1,
              "retrain_epochs": limits.INTEGER_AT_LEAST_0, "figure_neurons": limits.INTEGER_AT_LEAST_1}
    CHOICES = {"data": DIGITS_CHOICES, "connectivity": (4, 8)}

    HELP = {**limits.COMMON_HELP,
            "hidden": "hidden layer widths of the MLP 784-...-10, comma-separated",
            "magnitude_rate": "share of the first layer's weights pruned by magnitude first",
            "region_rate": "share of all connected regions removed per round (weakest mean |w| first)",
            "rounds": "label -> prune regions -> retrain rounds",
            "retrain_epochs": "retraining epochs after each pruning stage",
            "connectivity": "pixel neighbourhood of a region: 4 (edges) or 8 (edges and corners)",
            "figure_neurons": "receptive fields drawn in the figure"}
    QUICK = {"data": "subset", "epochs": 5, "retrain_epochs": 2}


def _first_layer_fields(layer):
    """The first layer's weights and mask as ``[neurons, 28, 28]`` receptive fields."""
    return layer.weight.detach().view(-1, 28, 28), weight_mask(layer).view(-1, 28, 28)


def _pruned_share_split(first):
    """Shares of the hidden neurons with >= 90 % and <= 40 % of their first-layer weights pruned
    (the paper's split of the neurons by their reduction rate)."""
    pruned_share = 1 - weight_mask(first).float().mean(dim=1)
    return {"share_neurons_pruned_ge_90": float((pruned_share >= 0.9).float().mean()),
            "share_neurons_pruned_le_40": float((pruned_share <= 0.4).float().mean())}


def run_region(config: RegionConfig):
    model, train_data, test_data, fit, data_note = trained_mlp(config, config.epochs)
    first = model[0]
    results = {"data": data_note, "accuracy_trained": accuracy(model, test_data)}

    set_mask(first, magnitude_layer_masks([first], config.magnitude_rate)[0])
    train(model, train_data, epochs=config.retrain_epochs, desc="retrain (magnitude)", **fit)
    results["accuracy_magnitude"] = accuracy(model, test_data)
    after_magnitude = _first_layer_fields(first)
    snapshots = {"magnitude": after_magnitude}

    rounds = []
    for round_index in progress(range(config.rounds), "region rounds", config):
        weights, mask = _first_layer_fields(first)
        regions_before = int(label_regions(mask, config.connectivity)[1].sum())
        new_mask = prune_regions(mask, weights, config.region_rate, connectivity=config.connectivity)
        set_mask(first, new_mask.view(first.weight.shape))
        pruned_acc = accuracy(model, test_data)
        train(model, train_data, epochs=config.retrain_epochs, desc=f"retrain (round {round_index + 1})", **fit)
        shares = _pruned_share_split(first)
        rounds.append({**shares, "regions_before": regions_before,
                       "regions_after": int(label_regions(new_mask, config.connectivity)[1].sum()),
                       "weights_kept": int(new_mask.sum()), "accuracy_pruned": pruned_acc,
                       "accuracy": accuracy(model, test_data)})
    snapshots["regions"] = _first_layer_fields(first)
    results["rounds"] = rounds
    results["accuracy_final"] = rounds[-1]["accuracy"] if rounds else results["accuracy_magnitude"]

    pruned_share = 1 - weight_mask(first).float().mean(dim=1)
    results["neuron_pruned_share"] = pruned_share
    results.update(_pruned_share_split(first))
    results["first_layer_sparsity"] = float(1 - weight_mask(first).float().mean())
    results["summary"] = [
        f"accuracy {results['accuracy_trained']:.2%} trained -> {results['accuracy_magnitude']:.2%} "
        f"after magnitude {config.magnitude_rate:g} -> "
        + ", ".join(f"{r['accuracy']:.2%}" for r in rounds)
        + f" after each of {config.rounds} region round(s) at {config.region_rate:g} (paper: 94.5% -> 94.1% "
        "after one)",
        f"first layer {results['first_layer_sparsity']:.1%} pruned; neurons with >= 90% of weights "
        f"pruned: {results['share_neurons_pruned_ge_90']:.0%}, <= 40%: "
        f"{results['share_neurons_pruned_le_40']:.0%} (paper: 54% / 46%)"]
    results["figures"] = [_plot(snapshots, pruned_share, config)]
    write_results(config, "region", config, results)
    results["model"] = model
    return results


def _plot(snapshots, pruned_share, config):
    """Receptive fields as in the paper's figs 3-5: weights after magnitude pruning (red +, blue -,
    black pruned), their connected regions, and the weights left after region pruning. The neurons
    shown span the range of pruned shares."""
    plt = pyplot()
    count = min(config.figure_neurons, len(pruned_share))
    order = torch.argsort(pruned_share, stable=True)
    picks = order[torch.linspace(0, len(order) - 1, count).round().long()]
    weights_mag, mask_mag = snapshots["magnitude"]
    weights_reg, mask_reg = snapshots["regions"]
    labels = label_regions(mask_mag[picks], config.connectivity)[0]
    fig, axes = plt.subplots(3, count, figsize=(1.2 * count, 4.0), squeeze=False)
    weight_image = None
    limit = float(weights_mag.abs().max())
    rows = [("magnitude", lambda k: weights_mag[k] * mask_mag[k], "bwr"),
            ("regions", None, "tab20"),
            ("region-pruned", lambda k: weights_reg[k] * mask_reg[k], "bwr")]
    for col, neuron in enumerate(picks.tolist()):
        for row, (name, image_of, cmap) in enumerate(rows):
            ax = axes[row][col]
            if image_of is None:
                image = labels[col].float().masked_fill(labels[col] == 0, float("nan"))
                ax.imshow(image.numpy(), cmap=cmap, interpolation="nearest")
                ax.set_facecolor("black")
            else:
                image = image_of(neuron)
                shown = image.masked_fill(image == 0, float("nan"))
                weight_image = ax.imshow(shown.numpy(), cmap=cmap, vmin=-limit, vmax=limit,
                                         interpolation="nearest")
                ax.set_facecolor("black")
            ax.set_xticks([])
            ax.set_yticks([])
            if col == 0:
                ax.set_ylabel(name, fontsize=7)
        axes[0][col].set_title(f"#{neuron} {pruned_share[neuron]:.0%}", fontsize=7)
    fig.suptitle("First-layer receptive fields (title: neuron, share of its weights pruned)", fontsize=9)
    # The legend of the colours: a weight scale for rows 1 and 3, words for the rest.
    fig.subplots_adjust(right=0.92)
    bar = fig.colorbar(weight_image, cax=fig.add_axes([0.935, 0.15, 0.008, 0.7]))
    bar.set_label("weight (red +, blue -)", fontsize=6)
    bar.ax.tick_params(labelsize=5)
    fig.text(0.5, -0.02, "black: pruned weight; row 'regions': one colour per connected region "
             f"({config.connectivity}-connected)", ha="center", fontsize=7)
    return save_figure(fig, config, "region_fields")


# ---------------------------------------------------------------- how the report reads it

def _round_accuracy(index):
    def pair(results):
        rounds = results["rounds"]
        return (rounds[index]["accuracy"], results["accuracy_trained"]) if len(rounds) > index else None
    return pair


def _round_split(index):
    def pair(results):
        rounds = results["rounds"]
        if len(rounds) <= index:
            return None
        r = rounds[index]
        return r["share_neurons_pruned_ge_90"] + r["share_neurons_pruned_le_40"], 0.0
    return pair


def _report_claims(task, most_rounds=5):
    return [Claim(task, "Region grouping: one region round keeps accuracy (bound: at most 0.5 points below the "
                  "trained net)", "94.5 % -> 94.1 %", _round_accuracy(0), -0.5 * POINTS, "after 1 region round",
                  "trained"),
            *[Claim(task, f"Region grouping: the neurons split into >= 90 % and <= 40 % pruned after {r + 1} "
                    "round(s) (bound: at least 90 % of the neurons in the two groups)", "54 % / 46 % of the neurons",
                    _round_split(r), 0.9, "share in the two groups", "-") for r in range(most_rounds)]]


def _report_table(r):
    rows = [("trained", r["accuracy_trained"]), ("after magnitude 0.5 + retraining", r["accuracy_magnitude"])]
    for i, rnd in enumerate(r["rounds"]):
        rows += [(f"round {i + 1}: accuracy", rnd["accuracy"]),
                 (f"round {i + 1}: neurons >= 90 % pruned", rnd["share_neurons_pruned_ge_90"]),
                 (f"round {i + 1}: neurons <= 40 % pruned", rnd["share_neurons_pruned_le_40"])]
    return rows


def _report_figure(per_seed):
    xs = list(range(len(per_seed[0]["rounds"]) + 1))
    return ({"accuracy": (xs, [[r["accuracy_magnitude"]] + [x["accuracy"] for x in r["rounds"]] for r in per_seed], "o-"),
             "neurons >= 90 % pruned": (xs[1:], [[x["share_neurons_pruned_ge_90"] for x in r["rounds"]]
                                                 for r in per_seed], "s--"),
             "neurons <= 40 % pruned": (xs[1:], [[x["share_neurons_pruned_le_40"] for x in r["rounds"]]
                                                 for r in per_seed], "^--")},
            ("region rounds (0: magnitude only)", "%"))


WORKFLOW = Workflow("region", RegionConfig, run_region, "connected-region pruning of an MLP's first layer",
                    "MLP 784-100-50-10, magnitude 0.5 + region 0.4: 94.5% -> 94.1%; neurons >= 90% / <= 40% pruned: "
                    "54% / 46%", _report_claims, _report_table, _report_figure)
