"""The seed statistics against scipy.stats on fixed inputs, and the verdict logic of the claims on
synthetic per-seed results: a clear effect holds, a clear reverse effect does not, noise is
inconclusive."""
import math

import pytest

from pyprune_ext.prune import WORKFLOWS
from pyprune_ext.prune.claims import evaluate, first_region_round_that_holds
from pyprune_ext.prune.stats import (FAILS, HOLDS, one_sample_t_test, paired_t_test, summarize, t_cdf,
                                     t_quantile, verdict)

scipy_stats = pytest.importorskip("scipy.stats")


@pytest.mark.parametrize("df", [1, 2, 3, 4, 7, 30, 200])
@pytest.mark.parametrize("t", [-12.0, -2.5, -0.3, 0.0, 0.7, 1.96, 4.1, 50.0])
def test_t_cdf_matches_scipy(t, df):
    assert t_cdf(t, df) == pytest.approx(scipy_stats.t.cdf(t, df), rel=1e-10, abs=1e-14)


@pytest.mark.parametrize("df", [1, 2, 4, 9, 60])
@pytest.mark.parametrize("q", [0.001, 0.025, 0.5, 0.9, 0.975, 0.9999])
def test_t_quantile_matches_scipy(q, df):
    assert t_quantile(q, df) == pytest.approx(scipy_stats.t.ppf(q, df), rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("values", [[0.91, 0.93, 0.92], [1.0, 2.0], [0.5, 0.1, 0.9, 0.3, 0.7, 0.2]])
def test_interval_matches_scipy(values):
    s = summarize(values)
    low, high = scipy_stats.t.interval(0.95, len(values) - 1, loc=scipy_stats.tmean(values),
                                       scale=scipy_stats.sem(values))
    assert (s.n, s.mean, s.std) == (len(values), pytest.approx(sum(values) / len(values)),
                                    pytest.approx(scipy_stats.tstd(values)))
    assert (s.low, s.high) == (pytest.approx(low), pytest.approx(high))


def test_paired_test_matches_scipy():
    a, b = [0.95, 0.96, 0.94, 0.97, 0.955], [0.93, 0.95, 0.94, 0.94, 0.93]
    test = paired_t_test(a, b)
    reference = scipy_stats.ttest_rel(a, b)
    assert test.t == pytest.approx(reference.statistic) and test.p == pytest.approx(reference.pvalue)
    against = one_sample_t_test([x - y for x, y in zip(a, b)], against=0.01)
    assert against.p == pytest.approx(scipy_stats.ttest_1samp([x - y for x, y in zip(a, b)], 0.01).pvalue)


def test_edge_cases_one_value_and_no_spread():
    one = summarize([0.7])
    assert one.n == 1 and math.isnan(one.std) and math.isnan(one.low)
    assert verdict(one, above=0.0) == "inconclusive at 1 seeds"
    flat = paired_t_test([0.9, 0.9, 0.9], [0.8, 0.8, 0.8])
    assert flat.p == 0.0 and verdict(flat.difference, above=0.0) == HOLDS
    with pytest.raises(ValueError, match="same length"):
        paired_t_test([1.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="at least one"):
        summarize([])


def _sparse_results(dense, sparse):
    return {"rows": {"1": {"accuracy": dense}, "0.04": {"accuracy": sparse}}}


def _single_shot_results(ours, random):
    return {"table": {"0.9": {"ours": {"accuracy": ours, "accuracy_pruned": ours},
                              "random": {"accuracy": random, "accuracy_pruned": random}}}}


def _claim(task, text):
    return next(c for c in WORKFLOWS[task].claims(task) if text in c.claim)


def test_clear_effect_holds_none_is_inconclusive_reverse_does_not_hold():
    above_random = _claim("single-shot", "above random at 90 % sparsity, fine-tuned")
    clear = [_single_shot_results(0.95 + d, 0.30 + d) for d in (0.0, 0.01, -0.01, 0.005)]
    noise = [_single_shot_results(o, r) for o, r in ((0.90, 0.91), (0.92, 0.90), (0.89, 0.90))]
    reverse = [_single_shot_results(0.30 + d, 0.95 - d) for d in (0.0, 0.01, -0.01)]
    assert evaluate(above_random, clear).verdict == HOLDS
    assert evaluate(above_random, noise).verdict == "inconclusive at 3 seeds"
    assert evaluate(above_random, reverse).verdict == FAILS
    assert evaluate(above_random, clear).p < 0.001


def test_margin_claims_read_the_bound():
    sparse = _claim("sparse", "gamma 0.04")
    within = [_sparse_results(0.980 + d, 0.978 + d) for d in (0.0, 0.001, -0.001, 0.0005)]   # -0.2 points
    beyond = [_sparse_results(0.980 + d, 0.960 + d) for d in (0.0, 0.001, -0.001)]            # -2 points
    assert evaluate(sparse, within).verdict == HOLDS          # -0.2 points is above the -0.5 bound
    assert evaluate(sparse, beyond).verdict == FAILS
    row = evaluate(sparse, within)
    assert row.difference.mean == pytest.approx(-0.002) and row.claim.bound == pytest.approx(-0.005)


def test_a_seed_without_the_numbers_is_left_out_and_none_gives_no_row():
    sparse = _claim("sparse", "gamma 0.04")
    assert evaluate(sparse, [{"rows": {"1": {"accuracy": 0.9}}}]) is None
    row = evaluate(sparse, [_sparse_results(0.9, 0.9), {"rows": {}}, _sparse_results(0.9, 0.89)])
    assert row.ours.n == 2


def test_region_split_reports_the_first_round_that_holds():
    def results(shares):
        return {"accuracy_trained": 0.95, "rounds": [
            {"accuracy": 0.94, "share_neurons_pruned_ge_90": ge, "share_neurons_pruned_le_40": le} for ge, le in shares]}
    per_seed = [results([(0.3, 0.3), (0.5 + d, 0.45), (0.6, 0.39)]) for d in (0.0, 0.01, 0.02)]
    rows = [r for c in WORKFLOWS["region"].claims("region") if (r := evaluate(c, per_seed))]
    kept = first_region_round_that_holds(rows)
    split = [r for r in kept if "split" in r.claim.claim]
    assert len(split) == 1 and "after 2 round(s)" in split[0].claim.claim and split[0].verdict == HOLDS
