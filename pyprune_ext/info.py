r"""Information scores of neurons: entropy, mutual information with the labels, and transfer
entropy from the labels, for every neuron of a layer in one call (docs/information.md).

Activations ``x`` are ``[S, T, N]`` (S sequences of T steps, N neurons) and labels ``[S, T]`` or
``[S]`` (one label per sequence); entropy and MI also take ``x`` ``[M, N]`` with labels ``[M]``.
Each neuron is discretised into ``bins`` bins: equal-width over its own [min, max] (default),
equal-frequency (``binning="quantile"``), or given ``edges``. Transfer entropy

.. math::
    TE_{Y \to X} = \sum p(x_{t+1}, x^{(k)}_t, y_t)
        \log \frac{p(x_{t+1} \mid x^{(k)}_t, y_t)}{p(x_{t+1} \mid x^{(k)}_t)}

counts the transitions inside each sequence only; :math:`x^{(k)}_t` is the neuron's own last
``history`` = k bins. Scores are in bits (``base=2``) unless asked otherwise.
"""
import math
import time
from typing import NamedTuple, Optional

import torch
from torch import Tensor

from ._info_shape import history_states
from ._ops import MAX_BINS, MAX_CELLS_LOG2, ops
from ._validation import (INTEGERS, check_choice, check_float, check_int, check_real,
                          check_same_device, check_tensor)

__all__ = ["InfoScores", "PermutationTest", "bin_edges", "entropy", "mutual_information",
           "transfer_entropy", "information_scores", "permutation_test", "InfoAccumulator"]

BINNINGS = ("uniform", "quantile")


class InfoScores(NamedTuple):
    """Per-neuron scores; ``transfer_entropy`` is None where no transitions were counted."""
    entropy: torch.Tensor
    mutual_information: torch.Tensor
    transfer_entropy: Optional[torch.Tensor]


class PermutationTest(NamedTuple):
    """Observed scores and their permutation p-values, one per neuron."""
    mutual_information: torch.Tensor
    transfer_entropy: torch.Tensor
    mi_pvalue: torch.Tensor
    te_pvalue: torch.Tensor


# ---- argument handling shared by every entry point ---------------------------------------

def _as_sequences(x, *, need_steps):
    """x as a contiguous [S, T, N] view; [M, N] becomes [M, 1, N] (no transitions)."""
    check_float(x, "x", ndims=(3,) if need_steps else (2, 3))
    if x.dim() == 2:
        x = x.unsqueeze(1)
    if x.shape[0] * x.shape[1] == 0:
        raise ValueError(f"'x' has no samples (shape {tuple(x.shape)})")
    return x.contiguous()


def _as_labels(labels, x):
    """Labels as int64 [S] or [S, T] on x's device; None stays None."""
    if labels is None:
        return None
    check_tensor(labels, "labels", dtypes=INTEGERS, ndims=(1, 2))
    check_same_device(labels, "labels", x, "x")
    s, t = x.shape[0], x.shape[1]
    if labels.shape[0] != s or (labels.dim() == 2 and labels.shape[1] != t):
        raise ValueError(f"'labels' must be [S] or [S, T] = [{s}] or [{s}, {t}], "
                         f"got {tuple(labels.shape)}")
    return labels.to(torch.int64).contiguous()


def _num_classes(num_classes, labels):
    if num_classes is None:
        if labels is None:
            return 1
        return max(int(labels.max()) + 1, 1)
    return check_int(num_classes, "num_classes", minimum=1)


def _quantile_edges(x2d, bins):
    """Equal-frequency edges [N, B+1]: linear-interpolated quantiles i/B of each column."""
    ordered = x2d.to(torch.float64).sort(dim=0).values
    m = ordered.shape[0]
    position = torch.linspace(0, m - 1, bins + 1, dtype=torch.float64, device=x2d.device)
    below = position.floor().long()
    above = torch.clamp(below + 1, max=m - 1)
    frac = (position - below).unsqueeze(1)
    return (ordered[below] * (1 - frac) + ordered[above] * frac).T.contiguous()


def bin_edges(x: Tensor, bins: int = 8, binning: str = "uniform") -> Tensor:
    """Per-neuron bin edges ``[N, bins + 1]`` (float64) of activations ``x`` ``[..., N]``.

    ``binning="uniform"``: equal width over each neuron's [min, max];
    ``"quantile"``: equal frequency. Raises ValueError on NaN/Inf.
    """
    check_float(x, "x")
    bins = check_int(bins, "bins", minimum=2)
    check_choice(binning, "binning", BINNINGS)
    return _edges_of(x, bins, binning)


def _edges_of(x, bins, binning):
    """bin_edges for arguments already checked."""
    if x.dim() == 0 or math.prod(x.shape[:-1]) == 0:
        raise ValueError(f"'x' has no samples (shape {tuple(x.shape)})")
    lo, hi = ops.neuron_range(x)  # also rejects NaN/Inf in one pass; zero neurons give [0] each
    if binning == "uniform":
        return _equal_width_edges(lo, hi, bins)
    return _quantile_edges(x.reshape(-1, x.shape[-1]), bins)


def _equal_width_edges(low, high, bins):
    """``[N, bins + 1]`` float64 edges splitting each ``[low, high]`` into equal steps."""
    low, high = low.to(torch.float64), high.to(torch.float64)
    edges = low.unsqueeze(1) + (high - low).unsqueeze(1) * _unit_steps(bins, low.device)
    edges[:, -1] = high  # exact top edge
    return edges


def _unit_steps(bins, device):
    return torch.arange(bins + 1, dtype=torch.float64, device=device) / bins


def _check_edge_values(edges):
    """Edges [N, B+1] finite and non-decreasing along each neuron's row: the binning relies on both."""
    if not bool(torch.isfinite(edges).all()):
        raise ValueError("'edges' contains NaN or Inf")
    if bool((edges.diff(dim=1) < 0).any()):
        raise ValueError("'edges' must be non-decreasing along each row")


def _check_equal_width(edges):
    """Each row's interior edges are the equal steps between its first and last (to 1e-9 of the span)."""
    low, span = edges[:, :1], edges[:, -1:] - edges[:, :1]
    if bool(((edges - (low + span * _unit_steps(edges.shape[1] - 1, edges.device))).abs() > span * 1e-9).any()):
        raise ValueError("'edges' must be equally spaced in each row for equal_width=True")


def _resolve_edges(x, bins, binning, edges, history, num_classes):
    """(edges [N, B+1] float64 on x's device, uniform flag) from the binning arguments, with the
    histogram size checked before anything is computed."""
    n = x.shape[-1]
    if edges is None:
        check_int(bins, "bins", minimum=2)
        _check_cells(bins, history, num_classes)
        check_choice(binning, "binning", BINNINGS)
        return _edges_of(x, bins, binning), binning == "uniform"
    check_float(edges, "edges", ndims=(1, 2))
    _check_cells(max(edges.shape[-1] - 1, 2), history, num_classes)
    if edges.shape[-1] < 3:
        raise ValueError(f"'edges' needs at least 3 values per neuron (bins >= 2), got {edges.shape[-1]}")
    edges = edges.to(device=x.device, dtype=torch.float64)
    if edges.dim() == 1:
        edges = edges.expand(n, -1)
    if edges.shape[0] != n:
        raise ValueError(f"'edges' must be [B+1] or [N, B+1] with N = {n}, got {tuple(edges.shape)}")
    _check_edge_values(edges)
    return edges.contiguous(), False


def _base(base):
    """A log base > 1 (2: bits, e: nats); below 1 every score would change sign."""
    return check_real(base, "base", low=1, low_open=True)




def _check_cells(bins, history, num_classes):
    """Rejects, before anything is allocated or counted, a binning whose per-neuron histograms
    would pass the kernels' limit (each neuron holds bins^(history + 1) * num_classes counts)."""
    if bins > MAX_BINS:
        raise ValueError(f"'bins' must be <= {MAX_BINS}, got {bins}")
    cells_log2 = math.log2(bins) * (history + 1) + math.log2(num_classes)
    if cells_log2 > MAX_CELLS_LOG2:
        raise ValueError(f"'bins' = {bins}, 'history' = {history} and 'num_classes' = {num_classes} give "
                         f"bins^(history + 1) * num_classes = 2^{cells_log2:.1f} histogram cells per neuron; "
                         f"the limit is 2^{MAX_CELLS_LOG2}: lower one of them")


def _prepare(x, labels, num_classes, bins, binning, edges, history, need_steps):
    x = _as_sequences(x, need_steps=need_steps)
    labels = _as_labels(labels, x)
    k = _num_classes(num_classes, labels)
    history = check_int(history, "history", minimum=0 if not need_steps else 1)
    if need_steps and x.shape[1] <= history:
        raise ValueError(f"'x' needs more than history = {history} steps per sequence, "
                         f"got T = {x.shape[1]}")
    edges, uniform = _resolve_edges(x, bins, binning, edges, history, k)
    return x, labels, k, history, edges, uniform


def _finalize(joint, transitions, base, miller_madow, dtype, with_te):
    h, mi, te = ops.info_scores(joint, transitions, base=_base(base), miller_madow=bool(miller_madow))
    return InfoScores(h.to(dtype), mi.to(dtype), te.to(dtype) if with_te else None)


# ---- public functions ----------------------------------------------------------------------

def information_scores(x: Tensor, labels: Optional[Tensor] = None, num_classes: Optional[int] = None, *,
                       bins: int = 8, binning: str = "uniform", edges: Optional[Tensor] = None,
                       history: int = 1, base: float = 2.0, miller_madow: bool = False) -> "InfoScores":
    """Entropy, MI and TE of every neuron from ONE pass over ``x``.

    Args:
        x: activations ``[S, T, N]`` float32/float64 (``[M, N]`` gives no TE).
        labels: int ``[S, T]`` or ``[S]`` in ``[0, num_classes)``; None means one class.
        num_classes: K; default ``labels.max() + 1``.
        bins, binning, edges: discretisation (see module doc).
        history: k >= 1, the neuron's own past used by TE (0: no TE).
        base: log base > 1 (2 = bits, ``math.e`` = nats).
        miller_madow: add the Miller-Madow bias correction to every entropy term.

    Returns:
        :class:`InfoScores` of ``[N]`` tensors in ``x``'s dtype and device.

    Example:
        >>> x = torch.randn(64, 20, 128); y = torch.randint(0, 10, (64, 20))
        >>> s = information_scores(x, y, 10)
        >>> s.transfer_entropy.shape
        torch.Size([128])
    """
    check_float(x, "x", ndims=(2, 3))
    with_te = x.dim() == 3 and history > 0
    x, labels, k, history, edges, uniform = _prepare(
        x, labels, num_classes, bins, binning, edges, history if with_te else 0, need_steps=with_te)
    joint, transitions = ops.info_counts(x, labels, edges, uniform=uniform, num_classes=k, history=history)
    return _finalize(joint, transitions, base, miller_madow, x.dtype, with_te)


def entropy(x: Tensor, *, bins: int = 8, binning: str = "uniform", edges: Optional[Tensor] = None,
            base: float = 2.0, miller_madow: bool = False) -> Tensor:
    """Entropy ``H(X_n)`` of every neuron of ``x`` ``[S, T, N]`` or ``[M, N]``: ``[N]``."""
    return information_scores(x, None, 1, bins=bins, binning=binning, edges=edges, history=0,
                              base=base, miller_madow=miller_madow).entropy


def mutual_information(x: Tensor, labels: Tensor, num_classes: Optional[int] = None, *, bins: int = 8,
                       binning: str = "uniform", edges: Optional[Tensor] = None, base: float = 2.0,
                       miller_madow: bool = False) -> Tensor:
    """``MI(X_n; Y)`` of every neuron with the labels: ``[N]``.

    Example:
        >>> x = torch.randn(1000, 16); y = torch.randint(0, 4, (1000,))
        >>> mutual_information(x, y, 4).shape
        torch.Size([16])
    """
    if labels is None:
        raise TypeError("'labels' is required for mutual_information")
    return information_scores(x, labels, num_classes, bins=bins, binning=binning, edges=edges,
                              history=0, base=base, miller_madow=miller_madow).mutual_information


def transfer_entropy(x: Tensor, labels: Tensor, num_classes: Optional[int] = None, *, bins: int = 8,
                     binning: str = "uniform", edges: Optional[Tensor] = None, history: int = 1,
                     base: float = 2.0, miller_madow: bool = False, local: bool = False) -> Tensor:
    """``TE(Y -> X_n)`` of every neuron: ``[N]``; with ``local=True`` the pointwise TE of every
    transition, ``[S, T - history, N]`` (its mean over all transitions is the TE).

    Example:
        >>> x = torch.randn(32, 50, 8); y = torch.randint(0, 3, (32, 50))
        >>> transfer_entropy(x, y, 3, bins=4, history=2).shape
        torch.Size([8])
    """
    if labels is None:
        raise TypeError("'labels' is required for transfer_entropy")
    check_float(x, "x")
    if x.dim() != 3:
        raise ValueError(f"'x' must be [S, T, N] sequences for transfer entropy, got shape {tuple(x.shape)}")
    check_int(history, "history", minimum=1)
    if not local:
        return information_scores(x, labels, num_classes, bins=bins, binning=binning, edges=edges,
                                  history=history, base=base,
                                  miller_madow=miller_madow).transfer_entropy
    if miller_madow:
        raise ValueError("'miller_madow' has no pointwise form; use local=False")
    x, labels, k, history, edges, uniform = _prepare(
        x, labels, num_classes, bins, binning, edges, history, need_steps=True)
    return ops.info_local_te(x, labels, edges, uniform=uniform, num_classes=k, history=history,
                             base=_base(base))


def permutation_test(x: Tensor, labels: Tensor, num_classes: Optional[int] = None, *,
                     num_permutations: int = 100, seed: int = 0, bins: int = 8, binning: str = "uniform",
                     edges: Optional[Tensor] = None, history: int = 1, base: float = 2.0,
                     miller_madow: bool = False, progress: bool = True) -> "PermutationTest":
    """Permutation p-values of MI and TE per neuron, labels shuffled across sequences (never in
    time), the permutations counted in batched kernel calls.

    p = (1 + #{null >= observed}) / (1 + num_permutations). Deterministic for a given ``seed``.

    The permutations run in chunks of about 0.8 s each (timed on the observed counts), so
    Ctrl-C stops a long call within about a second and nothing is left half-made; a progress bar
    shows when the whole will take more than a few seconds (``progress=False``: never).

    Returns:
        :class:`PermutationTest` of ``[N]`` tensors.
    """
    if labels is None:
        raise TypeError("'labels' is required for permutation_test")
    num_permutations = check_int(num_permutations, "num_permutations", minimum=1)
    x, labels, k, history, edges, uniform = _prepare(
        x, labels, num_classes, bins, binning, edges, history, need_steps=True)
    started = time.perf_counter()
    joint, transitions = ops.info_counts(x, labels, edges, uniform=uniform, num_classes=k,
                                         history=history)
    observed = _finalize(joint, transitions, base, miller_madow, torch.float64, True)
    seconds_per_permutation = time.perf_counter() - started
    generator = torch.Generator().manual_seed(check_int(seed, "seed", minimum=0, maximum=2**64 - 1))
    perms = torch.stack([torch.randperm(x.shape[0], generator=generator)
                         for _ in range(num_permutations)]).to(x.device)
    codes = ops.info_bin_codes(x, edges, uniform=uniform)   # x binned once, for every chunk
    chunk = max(1, int(_CHUNK_SECONDS / max(seconds_per_permutation, 1e-9)))
    show = progress and seconds_per_permutation * num_permutations > _PROGRESS_AFTER_SECONDS
    nulls = []
    with _progress_bar(num_permutations, "permutations", show) as bar:
        for start in range(0, num_permutations, chunk):
            nulls.append(ops.info_permutation_null(
                codes, labels, bins=edges.shape[1] - 1, num_classes=k, history=history,
                perms=perms[start:start + chunk], base=_base(base), miller_madow=bool(miller_madow)))
            bar.update(len(perms[start:start + chunk]))
    mi_null = torch.cat([mi for mi, _ in nulls])
    te_null = torch.cat([te for _, te in nulls])
    tol = 1e-12  # scores equal up to rounding count as "at least as large"

    def pvalue(null, obs):
        return ((null >= obs - tol).sum(0) + 1).to(torch.float64) / (num_permutations + 1)

    return PermutationTest(observed.mutual_information.to(x.dtype),
                           observed.transfer_entropy.to(x.dtype),
                           pvalue(mi_null, observed.mutual_information).to(x.dtype),
                           pvalue(te_null, observed.transfer_entropy).to(x.dtype))


# A chunk of permutations takes about this long, so Ctrl-C is answered within about a second;
# a call that will take longer than _PROGRESS_AFTER_SECONDS shows a progress bar.
_CHUNK_SECONDS = 0.8
_PROGRESS_AFTER_SECONDS = 3.0


def _progress_bar(total, desc, show):
    from tqdm.auto import tqdm
    return tqdm(total=total, desc=desc, disable=not show, leave=False, dynamic_ncols=True)


class InfoAccumulator:
    """Streaming joint counts for fixed bin edges: feed batches, merge, finalize.

    Counts are int64, so 32,000 sequences x 100 steps x 128 neurons never sit in memory at once and
    never overflow. Accumulators built with the same edges add up (``merge``), and a distributed run
    sums them across processes with :meth:`all_reduce`.

    Example:
        >>> acc = InfoAccumulator.from_range(torch.full((128,), -1.), torch.ones(128), bins=8,
        ...                                  num_classes=10)
        >>> for _ in range(3):
        ...     _ = acc.update(torch.rand(16, 20, 128) * 2 - 1, torch.randint(0, 10, (16, 20)))
        >>> acc.finalize().transfer_entropy.shape
        torch.Size([128])
    """

    def __init__(self, edges: Tensor, num_classes: int, *, history: int = 1, equal_width: bool = False):
        """``edges`` ``[N, B+1]``; ``equal_width=True`` bins by each row's first and last edge
        alone (faster), so the interior edges must be the equal steps between them."""
        check_float(edges, "edges", ndims=(2,))
        if edges.shape[1] < 3:
            raise ValueError(f"'edges' needs at least 3 values per neuron (bins >= 2), got {edges.shape[1]}")
        num_classes = check_int(num_classes, "num_classes", minimum=1)
        history = check_int(history, "history", minimum=0)
        _check_cells(edges.shape[1] - 1, history, num_classes)
        _check_edge_values(edges)
        self.edges = edges.to(torch.float64).contiguous()
        self.equal_width = bool(equal_width)
        if self.equal_width:
            _check_equal_width(self.edges)
        self.num_classes = num_classes
        self.history = history
        n, bins = self.edges.shape[0], self.edges.shape[1] - 1
        zeros = dict(dtype=torch.int64, device=self.edges.device)
        self.joint_counts = torch.zeros(n, bins, self.num_classes, **zeros)
        self.transition_counts = torch.zeros(n, history_states(bins, self.history), bins, self.num_classes,
                                             **zeros)

    @classmethod
    def from_range(cls, low: Tensor, high: Tensor, bins: int, num_classes: int, *,
                   history: int = 1) -> "InfoAccumulator":
        """Equal-width bins over per-neuron ``[low, high]`` (``[N]`` tensors); values outside
        fall into the end bins."""
        check_float(low, "low", ndims=(1,))
        check_float(high, "high", ndims=(1,))
        bins = check_int(bins, "bins", minimum=2)
        _check_cells(bins, check_int(history, "history", minimum=0), check_int(num_classes, "num_classes", minimum=1))
        if low.shape != high.shape:
            raise ValueError(f"'low' {tuple(low.shape)} and 'high' {tuple(high.shape)} differ")
        for name, bound in (("low", low), ("high", high)):
            if not bool(torch.isfinite(bound).all()):
                raise ValueError(f"'{name}' contains NaN or Inf")
        if bool((high < low).any()):
            raise ValueError("'high' must be >= 'low' for every neuron")
        return cls(_equal_width_edges(low, high, bins), num_classes, history=history, equal_width=True)

    @classmethod
    def from_data(cls, x: Tensor, num_classes: int, *, bins: int = 8, binning: str = "uniform",
                  history: int = 1) -> "InfoAccumulator":
        """Edges taken from a representative batch ``x`` ``[..., N]`` (not counted)."""
        _check_cells(check_int(bins, "bins", minimum=2), check_int(history, "history", minimum=0),
                     check_int(num_classes, "num_classes", minimum=1))
        return cls(bin_edges(x, bins, binning), num_classes, history=history,
                   equal_width=binning == "uniform")

    @property
    def num_neurons(self) -> int:
        return self.edges.shape[0]

    def update(self, x: Tensor, labels: Optional[Tensor] = None) -> "InfoAccumulator":
        """Counts one batch ``x`` ``[S, T, N]`` with labels ``[S, T]`` or ``[S]``; returns self.

        A batch with NaN/Inf or labels outside ``[0, num_classes)`` raises ValueError and leaves
        the counts as they were.
        """
        x = _as_sequences(x, need_steps=self.history > 0)
        check_same_device(x, "x", self.edges, "edges")
        if x.shape[2] != self.num_neurons:
            raise ValueError(f"'x' has {x.shape[2]} neurons, the accumulator {self.num_neurons}")
        labels = _as_labels(labels, x)
        ops.info_counts_add_(self.joint_counts, self.transition_counts, x, labels, self.edges,
                             uniform=self.equal_width, history=self.history)
        return self

    def merge(self, other: "InfoAccumulator") -> "InfoAccumulator":
        """Adds another accumulator's counts (same edges, classes and history); returns self."""
        if not isinstance(other, InfoAccumulator):
            raise TypeError(f"'other' must be an InfoAccumulator, got {type(other).__name__}")
        if (other.num_classes, other.history, other.equal_width) != (self.num_classes, self.history, self.equal_width) \
                or other.edges.shape != self.edges.shape \
                or not torch.equal(other.edges.to(self.edges.device), self.edges):
            raise ValueError("'other' was built with different edges, classes, history or binning")
        self.joint_counts += other.joint_counts.to(self.joint_counts.device)
        self.transition_counts += other.transition_counts.to(self.transition_counts.device)
        return self

    def all_reduce(self, group=None) -> "InfoAccumulator":
        """Sums the counts over the processes of ``group`` (torch.distributed); returns self."""
        import torch.distributed as dist
        dist.all_reduce(self.joint_counts, op=dist.ReduceOp.SUM, group=group)
        dist.all_reduce(self.transition_counts, op=dist.ReduceOp.SUM, group=group)
        return self

    def finalize(self, *, base: float = 2.0, miller_madow: bool = False,
                 dtype: torch.dtype = torch.float32) -> InfoScores:
        """:class:`InfoScores` of the counts so far (TE None when ``history == 0``)."""
        if dtype not in (torch.float32, torch.float64):
            raise TypeError(f"'dtype' must be torch.float32 or torch.float64, got {dtype}")
        if self.num_neurons and int(self.joint_counts[0].sum()) == 0:
            raise ValueError("the accumulator has no samples yet; call update() first")
        for name in ("joint_counts", "transition_counts"):
            if bool((getattr(self, name) < 0).any()):
                raise ValueError(f"'{name}' has negative counts")
        return _finalize(self.joint_counts, self.transition_counts, base, miller_madow, dtype,
                         self.history > 0)

    def register_forward_hook(self, module, get_labels, *, output_index=0, batch_first=True):
        """Feeds ``module``'s output to :meth:`update` on every forward pass.

        For an ``nn.LSTM`` the output is ``(out, (h, c))``: ``output_index=0`` picks ``out``;
        ``batch_first=False`` means ``out`` is ``[T, S, N]``. ``get_labels()`` returns the labels of
        the current batch. Returns the hook handle (``.remove()`` to stop).
        """
        def hook(_module, _inputs, output):
            out = output[output_index] if isinstance(output, (tuple, list)) else output
            out = out.detach()
            if not batch_first:
                out = out.transpose(0, 1)
            self.update(out, get_labels())

        return module.register_forward_hook(hook)
