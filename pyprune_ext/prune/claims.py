"""The papers' claims, each a computed verdict over seeds, and the per-setting summaries of the
report. Each workflow module declares its claims and its table (its ``WORKFLOW`` record); every
number is read from the per-seed ``results`` dicts (as stored in ``results.json``); accuracies
are fractions, shown in percent and percentage points.

A claim compares, seed by seed, our number with a reference number of the same run (dense,
unpruned, another ordering or method on the same seed) and states the bound the difference must
clear: 0 for "better than", minus a margin for "no worse than, within the margin". The verdict
reads the Student-t 95 % interval of the mean paired difference: "holds" when it lies wholly above
the bound, "does not hold" when wholly below, else "inconclusive at n seeds"; the p-value is the
paired t-test of the mean difference against the bound (two-sided)."""
import math
from typing import Callable, List, NamedTuple, Optional, Sequence

from .stats import HOLDS, Summary, one_sample_t_test, summarize, verdict

__all__ = ["POINTS", "Claim", "ClaimRow", "evaluate", "first_region_round_that_holds", "table_rows"]


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


POINTS = 0.01   # one percentage point, as a fraction


def first_region_round_that_holds(rows: List[ClaimRow]) -> List[ClaimRow]:
    """Of the region-split rows (one per round), the first that holds, else the last one tried."""
    split = [r for r in rows if "split" in r.claim.claim]
    if not split:
        return rows
    keep = next((r for r in split if r.verdict == HOLDS), split[-1])
    return [r for r in rows if r not in split or r is keep]


def table_rows(workflow, per_seed):
    """[(label, Summary)] of a task's seeds from ``workflow.table``, in the order of the first
    seed's rows; a label that a seed lacks (a target it did not reach) is summarised over the seeds
    that have it."""
    values, order = {}, []
    for results in per_seed:
        for label, value in workflow.table(results):
            if label not in values:
                order.append(label)
            values.setdefault(label, []).append(float(value))
    return [(label, summarize(values[label])) for label in order if not any(math.isnan(v) for v in values[label])]
