"""The report of a multi-seed reproduction: ``results.md`` (the claim table, one table per
workflow, the data, settings, machine and wall time) and one figure per workflow with the mean
over seeds, its 95 % band and every seed's point."""
import math
import os
import platform
import time

import torch

from .claims import evaluate, first_region_round_that_holds, table_rows
from .common import pyplot
from .stats import summarize

__all__ = ["write_report", "claim_table", "claims_at_a_glance", "replace_block", "workflow_table", "cpu_model"]


def cpu_model():
    """The CPU's model name with its family and model numbers (a VM often shows only a brand)."""
    try:
        with open("/proc/cpuinfo") as f:
            fields = dict(line.split(":", 1) for line in f.read().split("\n\n")[0].splitlines() if ":" in line)
        fields = {k.strip(): v.strip() for k, v in fields.items()}
        return f"{fields['model name']} (family {fields.get('cpu family', '?')} model {fields.get('model', '?')})"
    except (OSError, KeyError):
        return platform.processor() or platform.machine()


def _pct(x):
    return f"{100 * x:.2f}"


def _interval(s, scale=100, digits=2):
    if math.isnan(s.low):
        return f"{scale * s.mean:.{digits}f} (one seed)"
    return f"{scale * s.mean:.{digits}f} [{scale * s.low:.{digits}f}, {scale * s.high:.{digits}f}]"


def claim_rows(per_task, tasks):
    """Every claim's computed row for the tasks that ran (``{task key: [results per seed]}``)."""
    from . import WORKFLOWS
    claims = [c for task in tasks if task.key in per_task for c in WORKFLOWS[task.workflow].claims(task.key)]
    rows = [row for claim in claims if (row := evaluate(claim, per_task[claim.task]))]
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


def claims_at_a_glance(rows, seeds):
    """The compact claim table of the README: the claim, the paper's figure, our difference with
    its 95 % interval, and the verdict (between the <!-- claims --> markers of both files)."""
    lines = [CLAIMS_BEGIN, f"| claim ({len(seeds)} seeds) | paper | ours: difference, points [95 % CI] | verdict |",
             "| --- | --- | --- | --- |"]
    for row in rows:
        c = row.claim
        versus = f" vs {c.reference}" if c.reference != "-" else ""
        lines.append(f"| {c.claim} | {c.paper} | {c.ours}{versus}: {_interval(row.difference)} | **{row.verdict}** |")
    return lines + [CLAIMS_END]


CLAIMS_BEGIN, CLAIMS_END = "<!-- claims -->", "<!-- /claims -->"


def replace_block(text, lines):
    """``text`` with the block between the claim markers replaced by ``lines`` (markers included)."""
    start, end = text.index(CLAIMS_BEGIN), text.index(CLAIMS_END) + len(CLAIMS_END)
    return text[:start] + "\n".join(lines) + text[end:]


# ---------------------------------------------------------------- figures

def _figure(task, workflow, per_seed, path):
    plt = pyplot()
    series, (xlabel, ylabel) = workflow.figure(per_seed)
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
    if workflow.name == "sparse":
        ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(f"{task}: mean of {len(per_seed)} seeds, 95 % t-interval band, dots = seeds", fontsize=9)
    ax.legend(fontsize=6, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def write_report(path, per_task, tasks, *, settings, wall_seconds, seeds, quick, figures_dir, span_seconds=None):
    """Writes the report to ``path`` and its figures to ``figures_dir``; returns the claim rows.
    ``per_task``: ``{task key: [results of each seed]}``; ``settings``: ``{task key: settings line}``;
    ``wall_seconds``: ``{task key: [wall time of each seed]}``; ``span_seconds``: from the first
    run's start to the last one's end."""
    os.makedirs(figures_dir, exist_ok=True)
    from . import WORKFLOWS
    rows = claim_rows(per_task, tasks)
    relative = os.path.relpath(figures_dir, os.path.dirname(os.path.abspath(path)))
    total = sum(sum(v) for v in wall_seconds.values())
    lines = [
        "# Results: the papers' claims on real data, over seeds",
        "",
        f"Written by `python -m pyprune_ext reproduce --seeds {len(seeds)}{' --quick' if quick else ''}` on "
        f"{time.strftime('%Y-%m-%d')}. Machine: {cpu_model()}, {os.cpu_count()} logical CPUs, torch "
        f"{torch.__version__}, Python {platform.python_version()}. Seeds {', '.join(map(str, seeds))}: each "
        "varies the initialisation, the batch order, the scored batches, the masks and the random baselines; "
        "the data split never changes. Wall time: "
        + (f"{span_seconds / 60:.0f} minutes from the first run's start to the last one's end; " if span_seconds else "")
        + f"{total / 60:.1f} process-minutes in all, each process with its share of the threads "
        f"({', '.join(f'{k} {sum(v) / 60:.1f}' for k, v in wall_seconds.items())}).",
        "",
        "Every interval is the Student-t 95 % interval of the mean over seeds; every comparison is paired over "
        "the same seeds (the paired t-test of the mean difference against the claim's bound, two-sided). A "
        "verdict is computed, never written by hand: **holds** when the whole interval of the difference lies "
        "above the bound, **does not hold** when it lies wholly below, otherwise **inconclusive** at that "
        "number of seeds.",
        "",
        "## Claims",
        "",
        *claims_at_a_glance(rows, seeds),
        "",
        "In full: ours and the reference, each with its interval, and the test against the bound.",
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
        workflow = WORKFLOWS[task.workflow]
        figure = _figure(task.key, workflow, per_seed, os.path.join(figures_dir, f"{task.key}.png"))
        lines += [f"## {task.key}", "", f"Data: {per_seed[0].get('data', '-')}. "
                  + (f"Model: {per_seed[0]['model']}. " if "model" in per_seed[0] else "")
                  + f"Settings: {settings[task.key]}. Wall time per seed: "
                  + ", ".join(f"{s:.0f} s" for s in wall_seconds.get(task.key, [])) + ".", "",
                  *workflow_table(task.key, workflow, per_seed), "",
                  f"![{task.key}]({relative}/{os.path.basename(figure)})", ""]
    with open(path, "w") as f:
        f.write("\n".join(lines))
    return rows
