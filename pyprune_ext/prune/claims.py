"""The papers' claims, each a computed verdict over seeds, and the per-workflow tables of the
report. Every number is read from the per-seed ``results`` dicts of the workflows (as stored in
``results.json``); accuracies are fractions, shown in percent and percentage points.

A claim compares, seed by seed, our number with a reference number of the same run (dense,
unpruned, another ordering or method on the same seed) and states the bound the difference must
clear: 0 for "better than", minus a margin for "no worse than, within the margin". The verdict
reads the Student-t 95 % interval of the mean paired difference: "holds" when it lies wholly above
the bound, "does not hold" when wholly below, else "inconclusive at n seeds"; the p-value is the
paired t-test of the mean difference against the bound (two-sided)."""
import math
from typing import Callable, List, NamedTuple, Optional, Sequence

from .stats import HOLDS, Summary, one_sample_t_test, summarize, verdict

__all__ = ["Claim", "ClaimRow", "claims_for", "evaluate", "TABLES", "table_rows"]


class Claim(NamedTuple):
    task: str                  # the reproduce task whose seeds it reads
    claim: str                 # the paper's claim in words, with the bound we test
    paper: str                 # the paper's figure
    pair: Callable             # results -> (ours, reference) or None when the run lacks it
    bound: float               # ours - reference must exceed this (fraction)
    ours: str = "ours"         # what the two numbers are
    reference: str = "reference"


class ClaimRow(NamedTuple):
    claim: Claim
    ours: Summary
    reference: Summary
    difference: Summary
    p: float
    verdict: str


def evaluate(claim: Claim, per_seed: Sequence[dict]) -> Optional[ClaimRow]:
    """The claim's row over the seeds whose results hold both numbers (None when none do)."""
    pairs = [p for p in (claim.pair(r) for r in per_seed) if p is not None]
    if not pairs:
        return None
    ours, reference = zip(*pairs)
    test = one_sample_t_test([a - b for a, b in pairs], against=claim.bound)
    return ClaimRow(claim, summarize(ours), summarize(reference), test.difference, test.p,
                    verdict(test.difference, above=claim.bound))


def _step(results, target):
    return next((s for s in results["steps"] if abs(s["target"] - target) < 1e-9), None)


def _magnitude(results):
    step = _step(results, 0.9)
    return None if step is None else (step["accuracy"], results["dense_accuracy"])


def _region_round(index):
    def pair(results):
        rounds = results["rounds"]
        return (rounds[index]["accuracy"], results["accuracy_trained"]) if len(rounds) > index else None
    return pair


def _region_split(index):
    def pair(results):
        rounds = results["rounds"]
        if len(rounds) <= index:
            return None
        r = rounds[index]
        return r["share_neurons_pruned_ge_90"] + r["share_neurons_pruned_le_40"], 0.0
    return pair


def _sparse(results):
    rows = results["rows"]
    return (rows["0.04"]["accuracy"], rows["1"]["accuracy"]) if "0.04" in rows and "1" in rows else None


def _taylor_kept(criterion):
    def pair(results):
        run = results["runs"].get(criterion)
        at = run and run["accuracy_at"].get("0.9")
        return None if at is None else (at, results["accuracy"])
    return pair


def _taylor_above(criterion, other="l1_stdv"):
    def pair(results):
        a, b = results["runs"].get(criterion), results["runs"].get(other)
        if not a or not b or "0.9" not in a["accuracy_at"] or "0.9" not in b["accuracy_at"]:
            return None
        return a["accuracy_at"]["0.9"], b["accuracy_at"]["0.9"]
    return pair


def _information(direction):
    def pair(results):
        mean = results["mean_curve_accuracy"]
        return mean[f"TE {direction}"], mean[f"MI {direction}"]
    return pair


def _single_shot(method, other, sparsity="0.9"):
    def pair(results):
        row = results["table"].get(sparsity, {})
        return (row[method]["accuracy"], row[other]["accuracy"]) if method in row and other in row else None
    return pair


def _structured(method, peer, target):
    def pair(results):
        def at(name):
            run = results["runs"].get(name)
            return next((p["accuracy"] for p in run["points"] if abs(p["target"] - target) < 1e-9), None) if run else None
        a, b = at(method), at(peer)
        return None if a is None or b is None else (a, b)
    return pair


POINTS = 0.01   # one percentage point, as a fraction
REGION_ROUNDS = 5


def claims_for(tasks: Sequence[str]) -> List[Claim]:
    """Every claim whose task is among ``tasks``, in the report's order."""
    claims = [
        Claim("magnitude", "Han: 90 % of the weights pruned with retraining at no loss against dense "
              "(bound: at most 0.1 points below)", "LeNet-300-100: error 1.64 % -> 1.59 % at 12x fewer weights",
              _magnitude, -0.1 * POINTS, "90 % pruned, retrained", "dense"),
        Claim("region", "Region grouping: one region round keeps accuracy (bound: at most 0.5 points below "
              "the trained net)", "94.5 % -> 94.1 %", _region_round(0), -0.5 * POINTS,
              "after 1 region round", "trained"),
        *[Claim("region", f"Region grouping: the neurons split into >= 90 % and <= 40 % pruned after {r + 1} "
                "round(s) (bound: at least 90 % of the neurons in the two groups)", "54 % / 46 % of the neurons",
                _region_split(r), 0.9, "share in the two groups", "-") for r in range(REGION_ROUNDS)],
        Claim("sparse", "1/25 density: gamma 0.04 loses at most ~0.5 points against dense",
              "97.90 % vs 98.38 %", _sparse, -0.5 * POINTS, "gamma 0.04", "gamma 1 (dense)"),
        *[Claim("taylor", f"Taylor thesis: {c} keeps accuracy at 90 % FLOPs removed (bound: within 0.3 points "
                "of unpruned)", f"99.29 % -> {figure}", _taylor_kept(c), -0.3 * POINTS, f"{c}, 90 % off", "unpruned")
          for c, figure in (("meanprod", "99.13 %"), ("trace", "99.19 %"))],
        *[Claim("taylor", f"Taylor thesis, table 4.4a order: {c} above L1+stdv at 90 % FLOPs removed",
                f"{figure} vs 98.91 %", _taylor_above(c), 0.0, c, "l1_stdv")
          for c, figure in (("simple", "99.15 %"), ("fisher", "99.13 %"), ("oracle", "99.19 %"),
                            ("meanprod", "99.13 %"), ("trace", "99.19 %"))],
    ]
    for data, name in (("watch", "real smartwatch sequences"), ("clips", "moving-digit clips")):
        for direction in ("high-first", "low-first"):
            claims.append(Claim(
                f"information-{data}", f"TE papers: TE-ordered removal ({direction}) keeps accuracy above "
                f"MI-ordered, {name} (mean accuracy over the removal curve)",
                "TE above MI (figure 3, no numbers)", _information(direction), 0.0, f"TE {direction}",
                f"MI {direction}"))
    claims += [Claim("single-shot", f"Single-shot: ours above {other} at 90 % sparsity, fine-tuned", figure,
                     _single_shot("ours", other), 0.0, "ours", other)
               for other, figure in (("random", "95.92 % vs 85.70 % (ViT-B/16, CIFAR-10)"),
                                     ("snip", "not reported"), ("magnitude", "not reported"))]
    claims += [Claim("single-shot", "Single-shot: ours above random at 90 % sparsity, just pruned (no fine-tuning)",
                     "not reported", _just_pruned("ours", "random"), 0.0, "ours", "random")]
    for key in ("structured", "structured-resnet"):
        claims += [Claim(key, f"Structured ({key}): ours (fisher) against Torch-Pruning's {peer[3:]} at "
                         f"{target:.0%} FLOPs removed", "no published figure", _structured("fisher", peer, target),
                         0.0, "fisher", peer)
                   for peer in ("tp_taylor", "tp_magnitude") for target in (0.5, 0.7, 0.9)]
    return [c for c in claims if c.task in tasks]


def _just_pruned(method, other, sparsity="0.9"):
    def pair(results):
        row = results["table"].get(sparsity, {})
        if method not in row or other not in row:
            return None
        return row[method]["accuracy_pruned"], row[other]["accuracy_pruned"]
    return pair


def first_region_round_that_holds(rows: List[ClaimRow]) -> List[ClaimRow]:
    """Of the region-split rows (one per round), the first that holds, else the last one tried."""
    split = [r for r in rows if "split" in r.claim.claim]
    if not split:
        return rows
    keep = next((r for r in split if r.verdict == HOLDS), split[-1])
    return [r for r in rows if r not in split or r is keep]


# ---------------------------------------------------------------- per-workflow tables
# task -> function(results) -> [(row label, value)]: the table of the report lists each label's
# mean, standard deviation and 95 % interval over the seeds.

def _magnitude_table(r):
    rows = [("dense", r["dense_accuracy"])]
    for s in r["steps"][1:]:
        rows += [(f"{s['target']:.0%} pruned, just pruned", s["accuracy_pruned"]),
                 (f"{s['target']:.0%} pruned, retrained", s["accuracy"])]
    return rows


def _region_table(r):
    rows = [("trained", r["accuracy_trained"]), ("after magnitude 0.5 + retraining", r["accuracy_magnitude"])]
    for i, rnd in enumerate(r["rounds"]):
        rows += [(f"round {i + 1}: accuracy", rnd["accuracy"]),
                 (f"round {i + 1}: neurons >= 90 % pruned", rnd["share_neurons_pruned_ge_90"]),
                 (f"round {i + 1}: neurons <= 40 % pruned", rnd["share_neurons_pruned_le_40"])]
    return rows


def _information_table(r):
    rows = [("unpruned", r["accuracy"])]
    rows += [(f"mean over the removal curve: {k}", v) for k, v in r["mean_curve_accuracy"].items()]
    rows += [("Pearson r, TE vs single-unit ablation accuracy", r["correlation_te_ablation"]),
             ("Pearson r, MI vs single-unit ablation accuracy", r["correlation_mi_ablation"])]
    return rows


def _taylor_table(r):
    rows = [("unpruned", r["accuracy"])]
    for criterion, run in r["runs"].items():
        rows += [(f"{criterion} at {float(t):.0%} FLOPs off", v) for t, v in run["accuracy_at"].items() if float(t) > 0]
    return rows


def _single_shot_table(r):
    rows = [("pre-trained", r["accuracy"])]
    for sparsity, row in r["table"].items():
        for method, cell in row.items():
            rows += [(f"{float(sparsity):.0%} {method}, just pruned", cell["accuracy_pruned"]),
                     (f"{float(sparsity):.0%} {method}, fine-tuned", cell["accuracy"])]
    return rows


def _sparse_table(r):
    rows = []
    for gamma, row in r["rows"].items():
        rows += [(f"gamma {gamma}: accuracy", row["accuracy"]), (f"gamma {gamma}: autoencoder test MSE", row["pretrain_mse"])]
    return rows


def _structured_table(r):
    rows = [("unpruned", r["unpruned"]["accuracy"])]
    for method, run in r["runs"].items():
        for p in run["points"]:
            rows += [(f"{method} at {p['target']:.0%} target: accuracy", p["accuracy"]),
                     (f"{method} at {p['target']:.0%} target: FLOPs removed", p["flops_removed"])]
    return rows


TABLES = {"magnitude": _magnitude_table, "region": _region_table, "information": _information_table,
          "taylor": _taylor_table, "single-shot": _single_shot_table, "sparse": _sparse_table,
          "structured": _structured_table}


def table_rows(workflow, per_seed):
    """[(label, Summary)] of a task's seeds, in the order of the first seed's rows; a label that a
    seed lacks (a target it did not reach) is summarised over the seeds that have it."""
    values, order = {}, []
    for results in per_seed:
        for label, value in TABLES[workflow](results):
            if label not in values:
                order.append(label)
            values.setdefault(label, []).append(float(value))
    return [(label, summarize(values[label])) for label in order if not any(math.isnan(v) for v in values[label])]
