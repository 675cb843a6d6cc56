"""Whole-model conversion between ``nn.Linear`` and :class:`~pyprune_ext.SparseLinear`.

A model pruned with masks (torch.nn.utils.prune, our magnitude or single-shot masks) still stores
and multiplies every weight. :func:`sparsify` swaps each of its linear layers for a SparseLinear
that keeps only the unpruned weights, so inference and training touch ``density`` of the weights
and an optimizer can never bring a pruned one back; :func:`densify` swaps them back.
"""
from typing import Callable, Dict, Optional

import torch
from torch import nn

from ._validation import check_int, check_real, check_tensor
from .sparse import SparseLinear, live_weight_and_mask
from .topk import magnitude_masks

__all__ = ["sparsify", "densify"]


def sparsify(model: nn.Module, masks: Optional[Dict[str, torch.Tensor]] = None, density=None, *,
             min_features=1, include: Optional[Callable[[str, nn.Linear], bool]] = None) -> nn.Module:
    """Replaces the ``nn.Linear`` layers of ``model`` by :class:`SparseLinear`, in place; returns ``model``.

    Which weights each layer keeps, by priority:

    * ``masks``: ``{qualified layer name: bool [out, in]}`` (only the layers named are converted);
    * ``density``: the ``round(density * in * out)`` largest ``|w|`` of each layer;
    * otherwise the layer's torch.nn.utils.prune ``weight_mask`` if it has one, else its nonzero
      weights (a model pruned and then ``prune.remove``-d); a layer with nothing pruned stays dense.

    Args:
        min_features: only layers with ``in_features`` and ``out_features`` both at least this
            are converted (a 10-way classifier gains nothing from being sparse).
        include: ``include(name, layer) -> bool`` picks layers by hand.

    The kept weights, the bias, dtype, device and ``requires_grad`` carry over, so outputs equal
    the masked dense model's. A layer pruned through torch.nn.utils.prune loses its pruning
    hooks (the old layer object is left as it was): the structure of the SparseLinear is its mask
    from now on. To load a saved sparsified model, sparsify a fresh one at any density and call
    ``load_state_dict``: each SparseLinear takes the saved structure.

    Example:
        >>> model = nn.Sequential(nn.Linear(784, 500), nn.ReLU(), nn.Linear(500, 10))
        >>> _ = sparsify(model, density=0.04, min_features=100)
        >>> type(model[0]).__name__, type(model[2]).__name__
        ('SparseLinear', 'Linear')
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"'model' must be an nn.Module, got {type(model).__name__}")
    min_features = check_int(min_features, "min_features", minimum=0)
    if density is not None:
        density = check_real(density, "density", low=0, high=1, low_open=True)
    linears = {name: m for name, m in model.named_modules() if type(m) is nn.Linear}
    if masks is not None:
        if not isinstance(masks, dict):
            raise TypeError(f"'masks' must be a dict of layer name -> bool mask, got {type(masks).__name__}")
        unknown = sorted(set(masks) - set(linears))
        if unknown:
            raise ValueError(f"'masks' names layers that are not nn.Linear in 'model': {unknown}")
        chosen = {name: linears[name] for name in masks}
    else:
        chosen = {name: layer for name, layer in linears.items()
                  if min(layer.in_features, layer.out_features) >= min_features
                  and (include is None or include(name, layer))}
    for name, layer in chosen.items():
        weight, mask = live_weight_and_mask(layer)
        if masks is not None:
            mask = check_tensor(masks[name], f"masks[{name!r}]", dtypes=(torch.bool,), ndims=(2,))
            if mask.shape != weight.shape:
                raise ValueError(f"'masks[{name!r}]' must be [out, in] = {tuple(weight.shape)}, got {tuple(mask.shape)}")
        elif density is not None:
            mask = magnitude_masks([weight], 1 - density)[0]
        elif bool(mask.all()):
            continue   # nothing pruned: a SparseLinear would only be slower
        sparse = SparseLinear.from_dense(layer, mask)
        _replace(model, name, sparse)
    return model


def densify(model: nn.Module) -> nn.Module:
    """Replaces every :class:`SparseLinear` of ``model`` by the equivalent ``nn.Linear`` (zeros off
    the mask), in place; returns ``model``."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"'model' must be an nn.Module, got {type(model).__name__}")
    for name, layer in [(n, m) for n, m in model.named_modules() if isinstance(m, SparseLinear)]:
        _replace(model, name, layer.to_dense())
    return model


def _replace(model, name, new):
    if name == "":
        raise ValueError("'model' is itself a Linear: convert it with SparseLinear.from_dense")
    parent_name, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent_name), child, new)
