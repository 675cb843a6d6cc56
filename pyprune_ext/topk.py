"""Single-shot parameter scores and one global top-k mask over many tensors (report 4(3)).

The score of a weight is ``|grad * theta| + alpha * theta^2``; :func:`global_topk_masks` keeps the
largest scores over all tensors together by radix histograms of the score bits (never a sort, no
copy of the scores). Magnitude pruning is the same selection with the score ``theta^2``.
"""
from typing import List, Optional, Sequence

import torch

from ._ops import ops
from ._validation import check_choice, check_float, check_real, check_tensor

__all__ = ["param_scores", "global_topk_masks", "magnitude_masks"]


def param_scores(theta: torch.Tensor, grad: torch.Tensor, alpha: float = 0.0) -> torch.Tensor:
    """Single-shot score ``|grad * theta| + alpha * theta^2`` of every parameter (report 4(3))."""
    check_float(theta, "theta")
    check_tensor(grad, "grad", dtypes=(theta.dtype,))
    if grad.shape != theta.shape:
        raise ValueError(f"'grad' must have the shape of 'theta' {tuple(theta.shape)}, got {tuple(grad.shape)}")
    alpha = check_real(alpha, "alpha", low=0)
    return ops.param_scores(theta.detach(), grad.detach(), alpha).view(theta.shape)


def global_topk_masks(params: Sequence[torch.Tensor], grads: Optional[Sequence[torch.Tensor]] = None, *,
                      sparsity: float, alpha: float = 0.0) -> List[torch.Tensor]:
    """One global mask over all ``params``: keeps the ``round((1 - sparsity) * total)`` largest
    single-shot scores, prunes the rest. Selection by radix histograms, never a sort, and no copy of
    the scores. Ties are kept in order (tensor by tensor, then flat index).

    Args:
        params: parameter tensors (same float dtype and device); ``grads`` default to their ``.grad``.
        sparsity: fraction pruned, in [0, 1).

    Returns:
        bool masks shaped like ``params`` (True = kept), ready for
        ``torch.nn.utils.prune.custom_from_mask``.
    """
    sparsity = check_real(sparsity, "sparsity", low=0, high=1, high_open=True)
    alpha = check_real(alpha, "alpha", low=0)
    if isinstance(params, torch.Tensor) or not isinstance(params, Sequence):
        raise TypeError(f"'params' must be a sequence of tensors, got {type(params).__name__}")
    params = list(params)
    if not params:
        raise ValueError("'params' is empty")
    if grads is None:
        grads = [p.grad for p in params]
        if any(g is None for g in grads):
            raise ValueError("'grads' not given and some parameter has no .grad")
    grads = list(grads)
    if len(grads) != len(params):
        raise ValueError(f"'grads' must have one tensor per parameter ({len(params)}), got {len(grads)}")
    for i, (p, g) in enumerate(zip(params, grads)):
        check_float(p, f"params[{i}]")
        check_tensor(g, f"grads[{i}]", dtypes=(p.dtype,))
        if g.shape != p.shape:
            raise ValueError(f"'grads[{i}]' must have the shape of 'params[{i}]' {tuple(p.shape)}")
        if p.dtype != params[0].dtype or p.device != params[0].device:
            raise ValueError("every tensor of 'params' must share one dtype and device")
    total = sum(p.numel() for p in params)
    keep = total - int(round(sparsity * total))
    masks = ops.global_topk_masks([p.detach() for p in params], [g.detach() for g in grads],
                                  alpha, keep)
    return [m.view(p.shape) for m, p in zip(masks, params)]


def magnitude_masks(weights: Sequence[torch.Tensor], sparsity: float, *, scope: str = "layerwise"
                    ) -> List[torch.Tensor]:
    """Bool masks keeping the largest ``|w|``: of each tensor (``scope="layerwise"``) or of all
    together (``"global"``); ``sparsity`` is the pruned share. Weights already zero score lowest."""
    check_choice(scope, "scope", ("layerwise", "global"))
    if isinstance(weights, torch.Tensor) or not isinstance(weights, Sequence):
        raise TypeError(f"'weights' must be a sequence of tensors, got {type(weights).__name__}")
    weights = [w.detach() if isinstance(w, torch.Tensor) else w for w in weights]
    # |w * w| + 0 * w^2 = w^2: the score op with the weights as their own "gradient".
    if scope == "global":
        return global_topk_masks(weights, weights, sparsity=sparsity)
    return [global_topk_masks([w], [w], sparsity=sparsity)[0] for w in weights]
