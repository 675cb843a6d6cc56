"""The report of a multi-seed reproduction: ``results.md`` (the claim table, one table per
workflow, the data, settings, machine and wall time) and one figure per workflow with the mean
over seeds, its 95 % band and every seed's point."""
import math
import os
import platform
import time

import torch

from .claims import claims_for, evaluate, first_region_round_that_holds, table_rows
from .common import pyplot
from .stats import summarize

__all__ = ["write_report", "claim_table", "workflow_table", "cpu_model"]


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def _pct(x):
    return f"{100 * x:.2f}"


def _interval(s, scale=100, digits=2):
    if math.isnan(s.low):
        return f"{scale * s.mean:.{digits}f} (one seed)"
    return f"{scale * s.mean:.{digits}f} [{scale * s.low:.{digits}f}, {scale * s.high:.{digits}f}]"


def claim_rows(per_task):
    """Every claim's computed row for the tasks that ran (``{task key: [results per seed]}``)."""
    rows = [row for claim in claims_for(per_task) if (row := evaluate(claim, per_task[claim.task]))]
    return first_region_round_that_holds(rows)


def claim_table(rows):
    """The claim table in Markdown: the paper's figure, ours and the reference (mean [95 % CI] in
    %), the paired difference in points, the test's p and the verdict."""
    lines = ["| claim | paper | ours | reference | difference (points) | paired t-test p | verdict |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for row in rows:
        c = row.claim
        reference = "-" if c.reference == "-" else f"{c.reference}: {_interval(row.reference)}"
        p = "-" if math.isnan(row.p) else (f"{row.p:.3f}" if row.p >= 0.001 else f"{row.p:.1e}")
        lines.append(f"| {c.claim} | {c.paper} | {c.ours}: {_interval(row.ours)} | {reference} | "
                     f"{_interval(row.difference)} (bound {100 * c.bound:+.1f}) | {p} | **{row.verdict}** |")
    return lines


def workflow_table(task, workflow, per_seed):
    lines = [f"| {task} (n = {len(per_seed)} seeds) | mean | sd | 95 % CI |", "| --- | --- | --- | --- |"]
    for label, s in table_rows(workflow, per_seed):
        percent = not label.startswith("Pearson") and "MSE" not in label
        scale = 100 if percent else 1
        digits = 2 if percent else 4
        sd = "-" if math.isnan(s.std) else f"{scale * s.std:.{digits}f}"
        ci = "-" if math.isnan(s.low) else f"[{scale * s.low:.{digits}f}, {scale * s.high:.{digits}f}]"
        lines.append(f"| {label}{' (%)' if percent else ''} | {scale * s.mean:.{digits}f} | {sd} | {ci} |")
    return lines


# ---------------------------------------------------------------- figures

def _series(workflow, per_seed):
    """{label: (x values, [y values of each seed], style)} of a workflow's figure, and axis names."""
    first = per_seed[0]
    if workflow == "magnitude":
        xs = [100 * s["target"] for s in first["steps"]]
        return {"retrained": (xs, [[s["accuracy"] for s in r["steps"]] for r in per_seed], "o-"),
                "just pruned": (xs, [[s["accuracy_pruned"] for s in r["steps"]] for r in per_seed], "o--")}, \
            ("weights pruned (%)", "test accuracy (%)")
    if workflow == "region":
        xs = list(range(len(first["rounds"]) + 1))
        return {"accuracy": (xs, [[r["accuracy_magnitude"]] + [x["accuracy"] for x in r["rounds"]] for r in per_seed], "o-"),
                "neurons >= 90 % pruned": (xs[1:], [[x["share_neurons_pruned_ge_90"] for x in r["rounds"]] for r in per_seed], "s--"),
                "neurons <= 40 % pruned": (xs[1:], [[x["share_neurons_pruned_le_40"] for x in r["rounds"]] for r in per_seed], "^--")}, \
            ("region rounds (0: magnitude only)", "%")
    if workflow == "information":
        xs = first["removed_counts"]
        return {name: (xs, [r["curves"][name] for r in per_seed], "k:" if name == "random" else "o-")
                for name in first["curves"]}, ("hidden units removed", "test accuracy (%)")
    if workflow == "taylor":
        keys = sorted(first["runs"][next(iter(first["runs"]))]["accuracy_at"], key=float)
        xs = [100 * float(k) for k in keys]
        return {c: (xs, [[r["runs"][c]["accuracy_at"].get(k, math.nan) for k in keys] for r in per_seed], "o-")
                for c in first["runs"]}, ("FLOPs removed, target (%)", "test accuracy (%)")
    if workflow == "single-shot":
        sparsities = list(first["table"])
        xs = [100 * float(s) for s in sparsities]
        series = {}
        for method in first["table"][sparsities[0]]:
            series[f"{method}, fine-tuned"] = (xs, [[r["table"][s][method]["accuracy"] for s in sparsities] for r in per_seed], "o-")
            series[f"{method}, just pruned"] = (xs, [[r["table"][s][method]["accuracy_pruned"] for s in sparsities]
                                                     for r in per_seed], "o:")
        return series, ("sparsity (%)", "test accuracy (%)")
    if workflow == "sparse":
        keys = list(first["rows"])
        return {"accuracy": ([float(k) for k in keys], [[r["rows"][k]["accuracy"] for k in keys] for r in per_seed], "o-")}, \
            ("density gamma", "test accuracy (%)")
    if workflow == "structured":
        targets = sorted({p["target"] for r in per_seed for run in r["runs"].values() for p in run["points"]})
        xs = [0.0] + [100 * t for t in targets]

        def curve(r, method):
            points = {p["target"]: p["accuracy"] for p in r["runs"][method]["points"]}
            return [r["unpruned"]["accuracy"]] + [points.get(t, math.nan) for t in targets]
        return {m: (xs, [curve(r, m) for r in per_seed], "s--" if m.startswith("tp_") else "o-")
                for m in first["runs"]}, ("FLOPs removed, target (%)", "test accuracy (%)")
    raise KeyError(workflow)


def _figure(task, workflow, per_seed, path):
    plt = pyplot()
    series, (xlabel, ylabel) = _series(workflow, per_seed)
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    for label, (xs, ys, style) in series.items():
        means, lows, highs = [], [], []
        for column in zip(*ys):
            values = [v for v in column if not math.isnan(v)]
            s = summarize(values) if values else None
            means.append(100 * s.mean if s else math.nan)
            lows.append(100 * (s.low if s and not math.isnan(s.low) else (s.mean if s else math.nan)))
            highs.append(100 * (s.high if s and not math.isnan(s.high) else (s.mean if s else math.nan)))
        line, = ax.plot(xs, means, style, ms=3, label=label)
        ax.fill_between(xs, lows, highs, color=line.get_color(), alpha=0.15, lw=0)
        for seed_values in ys:
            ax.plot(xs, [100 * v for v in seed_values], ".", color=line.get_color(), ms=2, alpha=0.6)
    if workflow == "sparse":
        ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(f"{task}: mean of {len(per_seed)} seeds, 95 % t-interval band, dots = seeds", fontsize=9)
    ax.legend(fontsize=6, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def write_report(path, per_task, tasks, *, settings, wall_seconds, seeds, quick, figures_dir):
    """Writes the report to ``path`` and its figures to ``figures_dir``; returns the claim rows.
    ``per_task``: ``{task key: [results of each seed]}``; ``settings``: ``{task key: settings line}``;
    ``wall_seconds``: ``{task key: [wall time of each seed]}``."""
    os.makedirs(figures_dir, exist_ok=True)
    rows = claim_rows(per_task)
    relative = os.path.relpath(figures_dir, os.path.dirname(os.path.abspath(path)))
    total = sum(sum(v) for v in wall_seconds.values())
    lines = [
        "# Results: the papers' claims on real data, over seeds",
        "",
        f"Written by `python -m pyprune_ext reproduce --seeds {len(seeds)}{' --quick' if quick else ''}` on "
        f"{time.strftime('%Y-%m-%d')}. Machine: {cpu_model()}, {os.cpu_count()} logical CPUs, torch "
        f"{torch.__version__}, Python {platform.python_version()}. Seeds {', '.join(map(str, seeds))}: each "
        "varies the initialisation, the batch order, the scored batches, the masks and the random baselines; "
        "the data split never changes. Wall time of the runs: "
        f"{total / 60:.1f} CPU-process minutes in all ({', '.join(f'{k} {sum(v) / 60:.1f}' for k, v in wall_seconds.items())}).",
        "",
        "Every interval is the Student-t 95 % interval of the mean over seeds; every comparison is paired over "
        "the same seeds (the paired t-test of the mean difference against the claim's bound, two-sided). A "
        "verdict is computed, never written by hand: **holds** when the whole interval of the difference lies "
        "above the bound, **does not hold** when it lies wholly below, otherwise **inconclusive** at that "
        "number of seeds.",
        "",
        "## Claims",
        "",
        *claim_table(rows),
        "",
        "What could not be run: the papers' CIFAR-10 rows (Taylor thesis VGG13-like, the single-shot report's "
        "ViT-B/16) need CIFAR-10 and a pre-trained ViT, which no installed package ships; the TE papers' UIUC "
        "texture videos likewise (the real smartwatch sequences and the generated clips stand in).",
        "",
    ]
    for task in tasks:
        if task.key not in per_task:
            continue
        per_seed = per_task[task.key]
        figure = _figure(task.key, task.workflow, per_seed, os.path.join(figures_dir, f"{task.key}.png"))
        lines += [f"## {task.key}", "", f"Data: {per_seed[0].get('data', '-')}. "
                  + (f"Model: {per_seed[0]['model']}. " if "model" in per_seed[0] else "")
                  + f"Settings: {settings[task.key]}. Wall time per seed: "
                  + ", ".join(f"{s:.0f} s" for s in wall_seconds.get(task.key, [])) + ".", "",
                  *workflow_table(task.key, task.workflow, per_seed), "",
                  f"![{task.key}]({relative}/{os.path.basename(figure)})", ""]
    with open(path, "w") as f:
        f.write("\n".join(lines))
    return rows
