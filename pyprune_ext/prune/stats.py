"""Seed statistics for the reports: the mean, standard deviation and Student-t 95 % interval of a
setting over seeds, the paired t-test of two methods over the same seeds, and the verdict on a
claim. Written here (the t distribution through the regularised incomplete beta function) so the
workflows need no SciPy; the tests check every number against ``scipy.stats``."""
import math
from typing import NamedTuple, Sequence

__all__ = ["Summary", "PairedTest", "summarize", "paired_t_test", "one_sample_t_test", "t_cdf", "t_quantile",
           "verdict", "HOLDS", "FAILS", "INCONCLUSIVE"]

HOLDS, FAILS = "holds", "does not hold"
INCONCLUSIVE = "inconclusive at {n} seeds"
CONFIDENCE = 0.95


def _incomplete_beta(a, b, x):
    """Regularised incomplete beta I_x(a, b) by its continued fraction (modified Lentz)."""
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    if x > (a + 1) / (a + b + 2):   # the fraction converges fast on this side only
        return 1.0 - _incomplete_beta(b, a, 1 - x)
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    fraction = d
    for m in range(1, 500):
        for numerator in (m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
                          -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            fraction *= c * d
        if abs(c * d - 1.0) < 1e-15:
            break
    return math.exp(log_front) * fraction / a


def t_cdf(t, df):
    """P(T <= t) of Student's t with ``df`` degrees of freedom."""
    if math.isinf(t):
        return 1.0 if t > 0 else 0.0
    # P(T < -|t|), through whichever incomplete beta keeps its argument away from 1
    tail = (0.5 * _incomplete_beta(df / 2, 0.5, df / (df + t * t)) if t * t > df
            else 0.5 - 0.5 * _incomplete_beta(0.5, df / 2, t * t / (df + t * t)))
    return 1.0 - tail if t > 0 else tail


def t_quantile(q, df):
    """The t with ``t_cdf(t, df) == q`` (bisection to machine precision)."""
    if not 0 < q < 1:
        raise ValueError(f"'q' must lie in (0, 1), got {q}")
    low, high = -1.0, 1.0
    while t_cdf(low, df) > q:
        low *= 2
    while t_cdf(high, df) < q:
        high *= 2
    for _ in range(200):
        middle = (low + high) / 2
        if middle in (low, high):
            break
        low, high = (middle, high) if t_cdf(middle, df) < q else (low, middle)
    return (low + high) / 2


class Summary(NamedTuple):
    n: int
    mean: float
    std: float        # sample standard deviation (n - 1); nan for one value
    low: float        # Student-t 95 % interval of the mean; nan below two values
    high: float


def summarize(values: Sequence[float]) -> Summary:
    """Mean, sample standard deviation and Student-t 95 % interval of the mean of ``values``."""
    values = [float(v) for v in values]
    n = len(values)
    if n == 0:
        raise ValueError("'values' must hold at least one value")
    mean = sum(values) / n
    if n == 1:
        return Summary(1, mean, math.nan, math.nan, math.nan)
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = t_quantile(0.5 + CONFIDENCE / 2, n - 1) * std / math.sqrt(n)
    return Summary(n, mean, std, mean - half, mean + half)


class PairedTest(NamedTuple):
    difference: Summary   # of a - b over the pairs, with its t interval
    t: float
    p: float              # two-sided, H0: the mean difference is 0; nan below two pairs


def one_sample_t_test(values, against=0.0) -> PairedTest:
    """Student's one-sample t-test of mean(values) == ``against`` (two-sided)."""
    summary = summarize(values)
    if summary.n < 2:
        return PairedTest(summary, math.nan, math.nan)
    if summary.std == 0:   # every value the same: no spread to test against
        same = summary.mean == against
        return PairedTest(summary, 0.0 if same else math.copysign(math.inf, summary.mean - against),
                          1.0 if same else 0.0)
    t = (summary.mean - against) / (summary.std / math.sqrt(summary.n))
    return PairedTest(summary, t, 2 * t_cdf(-abs(t), summary.n - 1))


def paired_t_test(a: Sequence[float], b: Sequence[float]) -> PairedTest:
    """Paired t-test of ``a`` against ``b`` (the same seeds, in the same order)."""
    if len(a) != len(b):
        raise ValueError(f"paired values must have the same length, got {len(a)} and {len(b)}")
    return one_sample_t_test([x - y for x, y in zip(a, b)])


def verdict(interval: Summary, *, above: float):
    """"holds" when the whole 95 % interval lies above ``above``, "does not hold" when it lies
    wholly below, else "inconclusive at n seeds" (also with one seed: no interval)."""
    if math.isnan(interval.low):
        return INCONCLUSIVE.format(n=interval.n)
    if interval.low > above:
        return HOLDS
    if interval.high < above:
        return FAILS
    return INCONCLUSIVE.format(n=interval.n)
