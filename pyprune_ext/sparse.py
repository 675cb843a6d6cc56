"""Sparse masked linear layer at a fixed mask (docs/sparse.md, paper: 1/25-density layers).

``y = x W^T + b`` where ``W`` ``[out, in]`` keeps only the nonzeros of a fixed mask, stored as CSR
(plus the transposed structure the backward needs, built once per mask). The trainable parameter
is the ``values`` vector of the nonzeros, so any torch optimizer works on it.
"""
import math
from typing import Optional, Sequence

import torch
from torch import nn

from ._ops import MAX_SPARSE_INDEX, ops
from ._validation import check_float, check_int, check_real, check_tensor

__all__ = ["SparseLinear", "sparse_linear", "random_mask"]

_STRUCTURE = ("row_ptr", "col_idx", "t_ptr", "t_idx", "t_perm")  # buffer names, in op order


def random_mask(out_features: int, in_features: int, density: float = 1 / 25, *, bernoulli: bool = False,
                generator: Optional[torch.Generator] = None,
                device=None) -> torch.Tensor:
    """Bool mask ``[out, in]``: the same number ``round(density * in)`` of random columns in every
    row (default), or independent Bernoulli(density) entries. Deterministic under ``generator``."""
    out_features = check_int(out_features, "out_features", minimum=0)
    in_features = check_int(in_features, "in_features", minimum=0)
    density = check_real(density, "density", low=0, high=1)
    if bernoulli:
        mask = torch.rand(out_features, in_features, generator=generator) < density
    else:
        per_row = int(round(density * in_features))
        order = torch.rand(out_features, in_features, generator=generator).argsort(dim=1)
        mask = torch.zeros(out_features, in_features, dtype=torch.bool)
        mask.scatter_(1, order[:, :per_row], True)
    return mask.to(device)


def _structure(mask):
    """CSR and transposed-CSR int32 index tensors of a bool mask [M, N]."""
    m, n = mask.shape
    if mask.numel() > MAX_SPARSE_INDEX or int(mask.sum()) > MAX_SPARSE_INDEX:
        raise ValueError(f"'mask' has too many entries for int32 indices ({mask.numel()})")
    rows, cols = mask.nonzero(as_tuple=True)           # row-major order = CSR order
    row_ptr = torch.zeros(m + 1, dtype=torch.int64, device=mask.device)
    row_ptr[1:] = torch.bincount(rows, minlength=m).cumsum(0)
    t_order = torch.argsort(cols * m + rows)           # column-major order of the same entries
    t_ptr = torch.zeros(n + 1, dtype=torch.int64, device=mask.device)
    t_ptr[1:] = torch.bincount(cols, minlength=n).cumsum(0)
    as32 = lambda t: t.to(torch.int32).contiguous()  # noqa: E731
    return (as32(row_ptr), as32(cols), as32(t_ptr), as32(rows[t_order]), as32(t_order))


def live_weight_and_mask(linear):
    """The weight ``linear``'s forward uses and the mask of the weights it keeps: for a layer pruned
    through torch.nn.utils.prune, ``weight_orig * weight_mask`` (recomputed: ``.weight`` is only
    refreshed by a forward) and ``weight_mask``; otherwise its weight and nonzeros."""
    if hasattr(linear, "weight_orig") and hasattr(linear, "weight_mask"):
        mask = linear.weight_mask.bool()
        return (linear.weight_orig * mask).detach(), mask
    weight = linear.weight.detach()
    return weight, weight != 0


def sparse_linear(x: torch.Tensor, values: torch.Tensor, bias: Optional[torch.Tensor],
                  structure: Sequence[torch.Tensor]) -> torch.Tensor:
    """Functional form: ``x`` ``[*, in]`` -> ``[*, out]``; ``structure`` as SparseLinear holds it
    (``row_ptr, col_idx, t_ptr, t_idx, t_perm``, int32). The op checks the structure: indices out
    of range, pointers that decrease and a transpose that does not match raise ``ValueError``."""
    if not isinstance(structure, (tuple, list)) or len(structure) != len(_STRUCTURE):
        raise TypeError(f"'structure' must be a tuple of the {len(_STRUCTURE)} tensors {', '.join(_STRUCTURE)}")
    for name, t in zip(_STRUCTURE, structure):
        check_tensor(t, name, dtypes=(torch.int32,), ndims=(1,))
    return _apply(x, values, bias, tuple(t.contiguous() for t in structure))  # the op reads flat arrays


def _apply(x, values, bias, structure):
    if x.dim() == 2:  # the common case skips two reshapes, a visible cost at small batches
        return ops.sparse_linear.default(x, values, bias, *structure)
    y = ops.sparse_linear.default(x.reshape(-1, x.shape[-1]), values, bias, *structure)
    return y.reshape(*x.shape[:-1], y.shape[-1])


class SparseLinear(nn.Module):
    """A linear layer that stores and computes only the nonzeros of a fixed mask.

    Args:
        in_features, out_features: as ``nn.Linear``.
        density: share of nonzeros (default 1/25, the paper's gamma = 0.04).
        bias: learn an additive bias.
        mask: bool ``[out, in]``; default: ``random_mask(..., density, bernoulli=bernoulli)``.
        bernoulli: draw the default mask entry by entry instead of equal counts per row.
        generator: ``torch.Generator`` for the mask and the init (deterministic under a seed).

    Init keeps a dense layer's output variance: each row's values ~ U(-1/sqrt(k), 1/sqrt(k)) with
    k nonzeros per row on average, like nn.Linear's U(-1/sqrt(in), 1/sqrt(in)) over all ``in``.

    Example:
        >>> layer = SparseLinear(784, 500)            # 4% of the weights
        >>> layer(torch.randn(100, 784)).shape
        torch.Size([100, 500])
        >>> layer.nnz
        15500
    """

    def __init__(self, in_features, out_features, density=1 / 25, bias=True, mask=None, *,
                 bernoulli=False, generator=None, device=None, dtype=None):
        super().__init__()
        self.in_features = check_int(in_features, "in_features", minimum=1)
        self.out_features = check_int(out_features, "out_features", minimum=1)
        if mask is None:
            mask = random_mask(out_features, in_features, density, bernoulli=bernoulli,
                               generator=generator)
        check_tensor(mask, "mask", dtypes=(torch.bool,), ndims=(2,))
        if tuple(mask.shape) != (out_features, in_features):
            raise ValueError(f"'mask' must be [out_features, in_features] = [{out_features}, "
                             f"{in_features}], got {tuple(mask.shape)}")
        for name, tensor in zip(_STRUCTURE, _structure(mask.to(device))):
            self.register_buffer(name, tensor)
        nnz = self.col_idx.numel()
        factory = dict(device=device, dtype=dtype)
        self.values = nn.Parameter(torch.empty(nnz, **factory))
        self.bias = nn.Parameter(torch.empty(out_features, **factory)) if bias else None
        fan_in = max(nnz / out_features, 1.0)
        with torch.no_grad():
            bound = 1 / math.sqrt(fan_in)
            self.values.copy_(torch.rand(nnz, generator=generator) * 2 * bound - bound)
            if self.bias is not None:
                bound = 1 / math.sqrt(in_features)
                self.bias.copy_(torch.rand(out_features, generator=generator) * 2 * bound - bound)

    @property
    def nnz(self) -> int:
        return self.values.numel()

    @property
    def density(self) -> float:
        return self.nnz / (self.in_features * self.out_features)

    @property
    def structure(self):
        # Straight from the buffer dict: five nn.Module.__getattr__ lookups are a visible cost a forward.
        buffers = self._buffers
        return tuple(buffers[name] for name in _STRUCTURE)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_float(x, "x")
        if x.dim() < 1 or x.shape[-1] != self.in_features:
            raise ValueError(f"'x' must end in in_features = {self.in_features}, got shape {tuple(x.shape)}")
        if x.dtype != self.values.dtype:
            raise TypeError(f"'x' is {x.dtype} but the layer is {self.values.dtype}")
        if x.device != self.values.device:
            raise ValueError(f"'x' is on {x.device} but the layer is on {self.values.device}")
        return _apply(x, self.values, self.bias, self.structure)

    def mask(self) -> torch.Tensor:
        """The bool mask ``[out, in]``."""
        mask = torch.zeros(self.out_features, self.in_features, dtype=torch.bool, device=self.values.device)
        mask[self._rows(), self.col_idx.long()] = True
        return mask

    def _rows(self):
        counts = (self.row_ptr[1:] - self.row_ptr[:-1]).long()
        return torch.repeat_interleave(torch.arange(self.out_features, device=counts.device), counts)

    def dense_weight(self) -> torch.Tensor:
        """``W`` ``[out, in]`` with zeros off the mask (differentiable in ``values``)."""
        weight = self.values.new_zeros(self.out_features, self.in_features)
        return weight.index_put((self._rows(), self.col_idx.long()), self.values)

    def to_dense(self) -> nn.Linear:
        """An ``nn.Linear`` with the same function."""
        linear = nn.Linear(self.in_features, self.out_features, bias=self.bias is not None,
                           device=self.values.device, dtype=self.values.dtype)
        with torch.no_grad():
            linear.weight.copy_(self.dense_weight())
            if self.bias is not None:
                linear.bias.copy_(self.bias)
        return linear

    @classmethod
    def from_dense(cls, linear: nn.Linear, mask: Optional[torch.Tensor] = None) -> "SparseLinear":
        """A SparseLinear holding ``linear``'s weights at ``mask`` (default: its
        torch.nn.utils.prune ``weight_mask`` if it has one, else its nonzero weights). Keeps the
        dtype, device and ``requires_grad`` of the weights."""
        if not isinstance(linear, nn.Linear):
            raise TypeError(f"'linear' must be nn.Linear, got {type(linear).__name__}")
        weight, kept = live_weight_and_mask(linear)
        mask = kept if mask is None else mask
        check_tensor(mask, "mask", dtypes=(torch.bool,), ndims=(2,))
        layer = cls(linear.in_features, linear.out_features, bias=linear.bias is not None,
                    mask=mask.cpu(), device=weight.device, dtype=weight.dtype)
        with torch.no_grad():
            layer.values.copy_(weight[layer._rows(), layer.col_idx.long()])
            if linear.bias is not None:
                layer.bias.copy_(linear.bias.detach())
        layer.values.requires_grad_(getattr(linear, "weight_orig", linear.weight).requires_grad)
        return layer

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # A saved layer may hold another mask than this one: take its sizes first, so a model
        # sparsified at any density loads any saved sparsified state. (The structure itself is
        # checked by the op at the next call; the values Parameter is new, so build optimizers after.)
        saved = [state_dict.get(prefix + name) for name in (*_STRUCTURE, "values")]
        if all(isinstance(t, torch.Tensor) for t in saved):
            *structure, values = saved
            for name, tensor in zip(_STRUCTURE, structure):
                if tensor.shape != self._buffers[name].shape:
                    self._buffers[name] = torch.empty_like(tensor, device=self.row_ptr.device)
            if values.shape != self.values.shape:
                self.values = nn.Parameter(self.values.new_empty(values.shape),
                                           requires_grad=self.values.requires_grad)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"nnz={self.nnz} (density {self.density:.4f}), bias={self.bias is not None}")
