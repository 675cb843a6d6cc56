"""Connected regions of pruned weights (docs/regions.md, paper: region grouping pruning).

Each mask ``[H, W]`` of a stack ``[K, H, W]`` (e.g. the 28x28 receptive field of each first-layer
neuron of an MNIST MLP) is split into connected regions of set pixels, 4-connected by default.
Regions are numbered 1..n_k per mask in raster order of their first pixel; 0 marks unset pixels.
"""
from typing import NamedTuple, Tuple

import torch

from ._ops import ops
from ._validation import check_choice, check_float, check_real, check_tensor

__all__ = ["RegionStats", "label_regions", "region_stats", "prune_regions"]


class RegionStats(NamedTuple):
    """Labels and per-region statistics. Region ``j`` of mask ``k`` (label ``j + 1``) sits at flat
    index ``offsets[k] + j`` of ``sizes``, ``sum_abs`` and ``mean_abs``."""
    labels: torch.Tensor     # int32 [K, H, W]
    counts: torch.Tensor     # int64 [K]
    offsets: torch.Tensor    # int64 [K + 1]
    sizes: torch.Tensor      # int64 [R]
    sum_abs: torch.Tensor    # float64 [R]
    mean_abs: torch.Tensor   # float64 [R]


def _check_mask(mask, connectivity):
    check_tensor(mask, "mask", dtypes=(torch.bool,), ndims=(3,))
    if connectivity not in (4, 8) or isinstance(connectivity, bool):
        raise ValueError(f"'connectivity' must be 4 or 8, got {connectivity!r}")


def label_regions(mask: torch.Tensor, connectivity: int = 4) -> Tuple[torch.Tensor, torch.Tensor]:
    """Labels the connected regions of every mask.

    Args:
        mask: bool ``[K, H, W]``.
        connectivity: 4 (edges) or 8 (edges and corners).

    Returns:
        ``(labels int32 [K, H, W], counts int64 [K])``.

    Example:
        >>> m = torch.tensor([[[1, 1, 0], [0, 0, 1]]], dtype=torch.bool)
        >>> label_regions(m)[0].tolist(), label_regions(m, 8)[1].tolist()
        ([[[1, 1, 0], [0, 0, 2]]], [1])
    """
    _check_mask(mask, connectivity)
    labels, counts, *_ = ops.label_regions(mask, None, connectivity=connectivity)
    return labels, counts


def region_stats(mask: torch.Tensor, weights: torch.Tensor, connectivity: int = 4) -> "RegionStats":
    """Labels and, per region, its size, sum |w| and mean |w|, reading the weights once.

    Args:
        mask: bool ``[K, H, W]``; weights: float ``[K, H, W]`` (e.g. ``layer.weight.view(K, 28, 28)``).
    """
    _check_mask(mask, connectivity)
    check_float(weights, "weights")
    if weights.shape != mask.shape:
        raise ValueError(f"'weights' must have the shape of 'mask' {tuple(mask.shape)}, got {tuple(weights.shape)}")
    if weights.device != mask.device:
        raise ValueError(f"'weights' is on {weights.device} but 'mask' is on {mask.device}")
    labels, counts, sizes, sums, means = ops.label_regions(mask, weights.detach(), connectivity=connectivity)
    offsets = torch.cat((counts.new_zeros(1), counts.cumsum(0)))
    return RegionStats(labels, counts, offsets, sizes, sums, means)


def prune_regions(mask: torch.Tensor, weights: torch.Tensor, ratio: float, by: str = "regions",
                  connectivity: int = 4) -> torch.Tensor:
    """One layer-wide step of region pruning: removes the weakest regions (smallest mean |w|)
    across all masks and returns the new mask.

    Args:
        mask, weights: ``[K, H, W]`` (bool, float), in the order of :func:`region_stats`.
        ratio: in [0, 1]. ``by="regions"``: remove ``round(ratio * R)`` of the R regions;
            ``by="weights"``: remove weakest regions until at least ``ratio`` of the set pixels
            are gone.
    Ties in mean |w| go by mask index, then label: deterministic.
    """
    ratio = check_real(ratio, "ratio", low=0, high=1)
    check_choice(by, "by", ("regions", "weights"))
    stats = region_stats(mask, weights, connectivity)
    total = stats.sizes.numel()
    order = torch.argsort(stats.mean_abs, stable=True)  # flat order = (mask, label) order
    if by == "regions":
        removed_count = int(round(ratio * total))
    else:  # the fewest weakest regions that together hold at least ratio of the set pixels
        target = ratio * float(stats.sizes.sum())
        cumulative = stats.sizes[order].cumsum(0).double()
        needed = int((cumulative < target).sum()) + 1 if target > 0 else 0
        removed_count = min(total, needed)
    removed = torch.zeros(total + 1, dtype=torch.bool, device=mask.device)  # slot 0: background
    removed[1:][order[:removed_count]] = True
    # flat region index of every pixel: offsets[k] + label (label 0 -> slot 0 via the mask below)
    flat = stats.labels.long() + stats.offsets[:-1].view(-1, 1, 1)
    flat = torch.where(stats.labels > 0, flat, torch.zeros_like(flat))
    return mask & ~removed[flat]
