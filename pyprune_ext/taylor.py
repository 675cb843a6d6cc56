r"""Taylor importance of channels and parameters (docs/taylor.md, thesis chapter 4).

For a layer's feature map ``x`` ``[Nb, C, *spatial]`` and ``g = dL/dx`` of the **summed** loss,
with :math:`x_n \cdot g_n` the dot product over one channel's spatial elements of sample n and
:math:`E_n` the mean over samples:

============================  ========================================  ===========
criterion                     score of channel c                         thesis eq.
============================  ========================================  ===========
``simple``                    :math:`E_n \|x_n\|^2`                     4.30
``first_order``               :math:`E_n[-x_n \cdot g_n]`               4.5
``fisher``                    :math:`\tfrac12 E_n (x_n \cdot g_n)^2`    4.31
``first_plus_second``         :math:`E_n[-x_n \cdot g_n + (x_n \cdot g_n)^2]`  4.5
``oracle``                    :math:`|E_n (x_n \cdot g_n)|`             4.32
``meanprod``                  :math:`(\bar x \cdot \bar g)^2`           4.10
``trace``                     :math:`E_n (x_n \cdot \bar g)^2`          4.12
============================  ========================================  ===========

All requested criteria come from one fused pass over ``x`` and ``g`` (``trace`` needs
:math:`\bar g` first: pass ``gbar`` or pay a second pass).
"""
from collections.abc import Iterable
from typing import Callable, Dict, NamedTuple, Optional

import torch
from torch import Tensor

from ._ops import ops
from ._validation import check_choice, check_float, check_real, check_tensor

__all__ = ["CRITERIA", "NEED_MEANS", "SIGNED", "ChannelSums", "ChannelStats", "channel_scores", "normalize_scores",
           "ranking_magnitude", "l1_stdv_scores", "ScoreCollector"]

CRITERIA = ("simple", "first_order", "fisher", "first_plus_second", "oracle", "meanprod", "trace")
NEED_MEANS = {"meanprod", "trace"}   # need the per-position sums of x and g (means)
SIGNED = {"first_order", "first_plus_second"}   # can be negative: they rank channels by magnitude


def ranking_magnitude(scores: Tensor, criterion: str) -> Tensor:
    """What a channel ranking (and the layer normalisation of eq. 4.13) reads of a criterion's
    scores: the scores themselves, or their magnitude for the signed criteria."""
    return scores.abs() if criterion in SIGNED else scores


def _check_criteria(criteria):
    if isinstance(criteria, str):
        criteria = (criteria,)
    if not isinstance(criteria, Iterable) or isinstance(criteria, dict):
        raise TypeError(f"'criteria' must be a criterion name or a sequence of names, got {type(criteria).__name__}")
    criteria = tuple(criteria)
    if not criteria:
        raise ValueError("'criteria' must name at least one criterion")
    for name in criteria:
        check_choice(name, "criteria", CRITERIA)
    return criteria


def _check_feature_map(x, g):
    check_float(x, "x")
    check_tensor(g, "g")
    if x.dim() < 2:
        raise ValueError(f"'x' must be [Nb, C, *spatial], got shape {tuple(x.shape)}")
    if g.shape != x.shape:
        raise ValueError(f"'g' must have the shape of 'x' {tuple(x.shape)}, got {tuple(g.shape)}")
    if g.dtype != x.dtype:
        raise TypeError(f"'g' must have the dtype of 'x' ({x.dtype}), got {g.dtype}")
    if g.device != x.device:
        raise ValueError(f"'g' is on {g.device} but 'x' is on {x.device}")
    if x.shape[0] == 0:
        raise ValueError(f"'x' has no samples (shape {tuple(x.shape)})")
    if x[0].numel() == 0:
        raise ValueError(f"'x' has no channels or an empty spatial size (shape {tuple(x.shape)})")


def _check_finite(t, name):
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"'{name}' contains NaN or Inf")


def _check_gbar(gbar, x):
    """gbar as [C, P]: given [C, *spatial] (like one sample of x) or already flattened [C, P]."""
    check_float(gbar, "gbar")
    c, spatial = x.shape[1], tuple(x.shape[2:])
    p = x[0, 0].numel()
    if tuple(gbar.shape) not in ((c, *spatial), (c, p)):
        raise ValueError(f"'gbar' must be [C, *spatial] = {(c, *spatial)} (or [C, P] = {(c, p)}), "
                         f"got {tuple(gbar.shape)}")
    _check_finite(gbar, "gbar")
    return gbar.reshape(c, p)


class ChannelSums(NamedTuple):
    """The float64 sums over samples that every criterion follows from (the op's outputs)."""
    sq: Tensor      # [C]     sum_n ||x_n||^2
    dot: Tensor     # [C]     sum_n x_n . g_n
    dot2: Tensor    # [C]     sum_n (x_n . g_n)^2
    sum_x: Tensor   # [C, P]  sum_n x_n (P = 0 without means)
    sum_g: Tensor   # [C, P]  sum_n g_n
    trace: Tensor   # [C]     sum_n (x_n . gbar)^2 (zeros without gbar)


class ChannelStats:
    """Per-channel sums over samples from which every criterion follows; they add across batches
    (:meth:`update`), across accumulators (:meth:`merge`) and across processes (:meth:`all_reduce`).
    """

    def __init__(self):
        self.count = 0
        self.sums: Optional[ChannelSums] = None
        self.gbar = None

    def update(self, x: Tensor, g: Tensor, *, with_means: bool = True, gbar: Optional[Tensor] = None,
               grad_scale: float = 1.0) -> "ChannelStats":
        """Adds a batch. ``grad_scale`` multiplies ``g`` first (the batch size for a mean-reduced
        loss, so every batch contributes in the summed-loss convention)."""
        _check_feature_map(x, g)
        if gbar is not None:
            gbar = _check_gbar(gbar, x).to(device=x.device, dtype=torch.float64).contiguous()
        sums = ChannelSums(*ops.taylor_channel_stats(x, g, gbar, with_means=bool(with_means)))
        if grad_scale != 1.0:  # scale the sums, not g: no copy of the gradient per batch
            sums.dot.mul_(grad_scale)
            sums.dot2.mul_(grad_scale ** 2)
            if with_means:
                sums.sum_g.mul_(grad_scale)   # trace reads gbar, not g
        if self.sums is None:
            self.sums = sums
        else:
            if sums.sq.shape != self.sums.sq.shape or sums.sum_x.shape != self.sums.sum_x.shape:
                raise ValueError("'x' has other channels or spatial size than earlier batches")
            for acc, new in zip(self.sums, sums):
                if new.numel():   # the means and trace are empty or zero when not asked for
                    acc += new
        self.count += x.shape[0]
        self.gbar = gbar
        return self

    def merge(self, other: "ChannelStats") -> "ChannelStats":
        if not isinstance(other, ChannelStats):
            raise TypeError(f"'other' must be ChannelStats, got {type(other).__name__}")
        if other.sums is None:
            return self
        if self.sums is None:
            self.sums = ChannelSums(*(s.clone() for s in other.sums))
        else:
            for acc, new in zip(self.sums, other.sums):
                acc += new.to(acc.device)
        self.count += other.count
        return self

    def all_reduce(self, group=None) -> "ChannelStats":
        """Sums the statistics and sample counts over the processes of ``group``."""
        import torch.distributed as dist
        flat = torch.cat([s.reshape(-1) for s in self.sums] +
                         [torch.tensor([float(self.count)], dtype=torch.float64,
                                       device=self.sums.sq.device)])
        dist.all_reduce(flat, op=dist.ReduceOp.SUM, group=group)
        offset = 0
        for s in self.sums:
            s.copy_(flat[offset:offset + s.numel()].view_as(s))
            offset += s.numel()
        self.count = int(round(flat[-1].item()))
        return self

    def mean_grad(self) -> Tensor:
        """:math:`\\bar g` ``[C, P]`` (float64), the input of the ``trace`` criterion."""
        if self.sums is None or self.sums.sum_g.shape[1] == 0:
            raise ValueError("no gradient means were accumulated (with_means=False)")
        return self.sums.sum_g / self.count

    def scores(self, criteria=CRITERIA) -> Dict[str, torch.Tensor]:
        """``{criterion: [C] float64}``. ``trace`` needs statistics gathered with ``gbar``."""
        criteria = _check_criteria(criteria)
        if self.sums is None or self.count == 0:
            raise ValueError("no samples accumulated yet")
        sq, dot, dot2, sum_x, sum_g, trace = self.sums
        n = self.count
        out = {}
        for name in criteria:
            if name == "simple":
                out[name] = sq / n
            elif name == "first_order":
                out[name] = -dot / n
            elif name == "fisher":
                out[name] = 0.5 * dot2 / n
            elif name == "first_plus_second":
                out[name] = (dot2 - dot) / n
            elif name == "oracle":
                out[name] = (dot / n).abs()
            elif name == "meanprod":
                if sum_x.shape[1] == 0:
                    raise ValueError("'meanprod' needs statistics gathered with_means=True")
                out[name] = (torch.linalg.vecdot(sum_x, sum_g) / n**2).square()
            elif name == "trace":
                if self.gbar is None:
                    raise ValueError("'trace' needs statistics gathered with gbar")
                out[name] = trace / n
        return out


def channel_scores(x, g, criteria=CRITERIA, *, gbar=None) -> Dict[str, torch.Tensor]:
    """Every requested criterion for every channel of one layer, from one pass over ``x`` and ``g``.

    Args:
        x: feature map ``[Nb, C, *spatial]`` float32/float64 (``[Nb, C]`` for a linear layer).
        g: ``dL/dx`` of the summed loss, same shape and dtype.
        criteria: names from :data:`CRITERIA` (default: all).
        gbar: ``[C, *spatial]`` mean gradient for ``trace``; if omitted and ``trace`` is asked
            for, a first pass computes it (two passes in all).

    Returns:
        ``{criterion: [C]}`` in ``x``'s dtype.

    Example:
        >>> x, g = torch.randn(8, 16, 5, 5), torch.randn(8, 16, 5, 5)
        >>> s = channel_scores(x, g, ["fisher", "meanprod"])
        >>> s["meanprod"].shape
        torch.Size([16])
    """
    criteria = _check_criteria(criteria)
    _check_feature_map(x, g)
    with_means = bool(NEED_MEANS & set(criteria))
    if "trace" in criteria and gbar is None:
        stats = ChannelStats().update(x, g, with_means=True)
        gbar = stats.mean_grad()
    if gbar is not None:
        _check_gbar(gbar, x)
    stats = ChannelStats().update(x, g, with_means=with_means,
                                  gbar=gbar if "trace" in criteria else None)
    return {k: v.to(x.dtype) for k, v in stats.scores(criteria).items()}


def normalize_scores(scores: Tensor, p: float = 1.0) -> Tensor:
    r"""Layer normalisation of eq. 4.13: :math:`\sqrt{S_c} / (\sum_{c'} \sqrt{S_{c'}}^p)^{1/p}`.

    ``p`` in (0, inf); the thesis uses 1, 2/3, 1/2 and 2. Scores must be >= 0 (``first_order`` and
    ``first_plus_second`` can be negative: take their absolute value or clamp first).
    """
    check_float(scores, "scores", ndims=(1,))
    _check_finite(scores, "scores")
    p = check_real(p, "p", low=0, low_open=True)
    if bool((scores < 0).any()):
        raise ValueError("'scores' must be >= 0 to be normalised")
    root = scores.sqrt()
    norm = root.pow(p).sum().pow(1.0 / p)
    return root / norm if norm > 0 else root


def l1_stdv_scores(weight: Tensor, lam: float = 0.5) -> Tensor:
    r"""Weight-level L1+stdv criterion (eq. 4.33) of the filters ``weight`` ``[C, ...]``:
    :math:`\lambda \sigma_c / \sqrt{\sum_{c'} \sigma_{c'}^2} + (1 - \lambda) \|w_c\|_1`, with
    :math:`\sigma_c` the (population) standard deviation of filter c's weights."""
    check_float(weight, "weight")
    if weight.dim() < 1 or weight.shape[0] == 0:
        raise ValueError(f"'weight' must be [C, ...] with C >= 1, got shape {tuple(weight.shape)}")
    lam = check_real(lam, "lam", low=0, high=1)
    _check_finite(weight.detach(), "weight")
    flat = weight.detach().reshape(weight.shape[0], -1)
    sigma = flat.std(dim=1, correction=0)
    total = sigma.square().sum().sqrt()
    spread = sigma / total if total > 0 else torch.zeros_like(sigma)
    return lam * spread + (1 - lam) * flat.abs().sum(1)


class ScoreCollector:
    """Collects per-channel Taylor statistics of chosen modules' outputs over a dataset.

    A forward hook keeps each module's output and a tensor hook on it receives ``dL/d output`` in
    the backward pass; both go to the fused statistics op batch by batch. Works for ``Conv*d``
    (``[Nb, C, *spatial]``), ``Linear`` (``[Nb, C]``) and ``BatchNorm`` outputs.

    The criteria assume the gradient of the **summed** loss. With ``loss_reduction="mean"`` (the
    PyTorch default of the loss modules) every batch's gradient is multiplied by its batch size.

    Example::

        collector = ScoreCollector({"conv1": model.conv1, "conv2": model.conv2})
        for images, labels in loader:
            model.zero_grad()
            F.cross_entropy(model(images), labels).backward()
        collector.remove()
        scores = collector.scores(["fisher", "meanprod"])   # {"conv1": {"fisher": [C], ...}, ...}

    For ``trace``, run a second pass with ``collector.with_gbar()`` (it fixes gbar from the first).
    """

    def __init__(self, modules, *, loss_reduction="sum", with_means=True):
        if isinstance(modules, torch.nn.Module):
            modules = {"": modules}
        if not isinstance(modules, dict):
            raise TypeError(f"'modules' must be an nn.Module or a dict of them, got {type(modules).__name__}")
        for name, module in modules.items():
            if not isinstance(module, torch.nn.Module):
                raise TypeError(f"'modules[{name!r}]' must be an nn.Module, got {type(module).__name__}")
        self.loss_reduction = check_choice(loss_reduction, "loss_reduction", ("sum", "mean"))
        self.with_means = bool(with_means)
        self.modules = dict(modules)
        self.stats = {name: ChannelStats() for name in modules}
        self._gbar = {}
        self._handles = []
        self.attach()

    def attach(self) -> "ScoreCollector":
        """Hooks the modules (done by the constructor; again after :meth:`remove` to go on
        collecting)."""
        if not self._handles:
            self._handles = [module.register_forward_hook(self._forward_hook(name))
                             for name, module in self.modules.items()]
        return self

    def _forward_hook(self, name):
        def hook(_module, _inputs, output):
            if not (torch.is_grad_enabled() and isinstance(output, torch.Tensor) and output.requires_grad):
                return
            x = output.detach()
            channels_last = isinstance(_module, torch.nn.Linear) and x.dim() > 2

            def on_grad(grad):
                scale = grad.shape[0] if self.loss_reduction == "mean" else 1.0
                g = grad.detach()
                if channels_last:  # [Nb, *, C] -> [Nb, C, *]: a linear layer's positions are its "spatial"
                    x_c, g_c = x.movedim(-1, 1), g.movedim(-1, 1)
                else:
                    x_c, g_c = x, g
                self.stats[name].update(x_c, g_c, with_means=self.with_means,
                                        gbar=self._gbar.get(name), grad_scale=scale)

            output.register_hook(on_grad)
        return hook

    def gather(self, batches: Iterable, step: Callable, *, trace: bool = False) -> "ScoreCollector":
        """Runs ``step(batch)`` (a forward and a backward pass of the hooked model) for every batch;
        with ``trace``, a second pass with gbar from the first, the statistics ``trace`` needs. A
        one-shot iterator is kept for the second pass."""
        if trace and iter(batches) is batches:
            batches = list(batches)
        for batch in batches:
            step(batch)
        if trace:
            self.with_gbar()
            for batch in batches:
                step(batch)
        return self

    def with_gbar(self) -> "ScoreCollector":
        """Starts a second pass whose statistics include ``trace``, with gbar from the first pass."""
        self._gbar = {name: stats.mean_grad() for name, stats in self.stats.items()}
        self.stats = {name: ChannelStats() for name in self.stats}
        return self

    def all_reduce(self, group=None) -> "ScoreCollector":
        """Sums every layer's statistics over the processes of ``group``."""
        for stats in self.stats.values():
            stats.all_reduce(group)
        return self

    def scores(self, criteria=CRITERIA) -> Dict[str, Dict[str, Tensor]]:
        """``{module name: {criterion: [C] float64}}``; ``trace`` only after a :meth:`with_gbar` pass."""
        criteria = _check_criteria(criteria)
        if not self._gbar:
            criteria = tuple(c for c in criteria if c != "trace") or criteria
        return {name: stats.scores(criteria) for name, stats in self.stats.items()}

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []
