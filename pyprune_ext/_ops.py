"""Loads the compiled ops (torch.ops.pyprune.*) and registers their fake kernels.

Fake kernels describe output shapes and dtypes without computing, so the ops trace under
torch.compile and pass torch.library.opcheck. This module is the lowest Python floor: the family
wrappers call `ops.<name>` and nothing here imports from above.
"""
import torch

from . import _C  # importing runs the C++ op registrations
from ._info_shape import history_states

ops = torch.ops.pyprune


def cpu_capability():
    """The instruction-set capability of the CPU kernels in use: ``"default"``, ``"avx2"`` or ``"avx512"``.

    The best capability this CPU supports, unless the environment variable ``PYPRUNE_CPU_CAPABILITY``
    (read once, like ATen's ``ATEN_CPU_CAPABILITY``) or :func:`set_cpu_capability` chose another.
    """
    return ops.cpu_capability()


def supported_cpu_capabilities():
    """The capabilities this build has and this CPU runs, lowest first (``["default"]`` off x86-64)."""
    return ops.supported_cpu_capabilities().split(",")


def set_cpu_capability(name):
    """Runs the CPU kernels of capability ``name`` from now on, in every thread (for tests and
    benchmarks). Raises ``RuntimeError`` for a capability this CPU or this build lacks."""
    if not isinstance(name, str):
        raise TypeError(f"set_cpu_capability: 'name' must be a str, got {type(name).__name__}")
    ops.set_cpu_capability(name)


# The kernels' limits, defined once in csrc/common/limits.h.
MAX_BINS, MAX_CELLS_LOG2, MAX_SPARSE_INDEX = ops.limits()


# Resolve the capability at import, so that a PYPRUNE_CPU_CAPABILITY this CPU cannot run fails here,
# with its reason, rather than at the first op.
cpu_capability()


def _f64(like, *shape):
    return like.new_empty(shape, dtype=torch.float64)


def _i64(like, *shape):
    return like.new_empty(shape, dtype=torch.int64)


@torch.library.register_fake("pyprune::neuron_range")
def _(x):
    return _f64(x, x.shape[-1]), _f64(x, x.shape[-1])


@torch.library.register_fake("pyprune::info_counts")
def _(x, labels, edges, uniform, num_classes, history):
    _, _, n = x.shape
    bins = edges.shape[1] - 1
    return _i64(x, n, bins, num_classes), _i64(x, n, history_states(bins, history), bins, num_classes)


@torch.library.register_fake("pyprune::info_counts_add_")
def _(joint_counts, transition_counts, x, labels, edges, uniform, history):
    return None


@torch.library.register_fake("pyprune::info_scores")
def _(joint_counts, transition_counts, base, miller_madow):
    n = joint_counts.shape[0]
    return _f64(joint_counts, n), _f64(joint_counts, n), _f64(joint_counts, n)


@torch.library.register_fake("pyprune::info_local_te")
def _(x, labels, edges, uniform, num_classes, history, base):
    s, t, n = x.shape
    return x.new_empty((s, max(t - history, 0), n))


@torch.library.register_fake("pyprune::info_bin_codes")
def _(x, edges, uniform):
    return x.new_empty(x.shape, dtype=torch.uint16)


@torch.library.register_fake("pyprune::info_permutation_null")
def _(codes, labels, bins, num_classes, history, perms, base, miller_madow):
    p, n = perms.shape[0], codes.shape[2]
    return _f64(codes, p, n), _f64(codes, p, n)


@torch.library.register_fake("pyprune::taylor_channel_stats")
def _(x, g, gbar, with_means):
    c = x.shape[1]
    p = 1
    for size in x.shape[2:]:
        p *= size
    cols = p if with_means else 0
    return _f64(x, c), _f64(x, c), _f64(x, c), _f64(x, c, cols), _f64(x, c, cols), _f64(x, c)


@torch.library.register_fake("pyprune::param_scores")
def _(theta, grad, alpha):
    return torch.empty_like(theta, memory_format=torch.contiguous_format)


@torch.library.register_fake("pyprune::global_topk_masks")
def _(params, grads, alpha, keep):
    return [p.new_empty(p.shape, dtype=torch.bool) for p in params]


@torch.library.register_fake("pyprune::sparse_linear")
def _(x, values, bias, row_ptr, col_idx, t_ptr, t_idx, t_perm):
    return x.new_empty((x.shape[0], row_ptr.shape[0] - 1))


@torch.library.register_fake("pyprune::sparse_linear_backward")
def _(grad_y, x, values, row_ptr, col_idx, t_ptr, t_idx, t_perm, need_x, need_w, need_b):
    empty = x.new_empty((0,))
    return (x.new_empty(x.shape) if need_x else empty,
            values.new_empty(values.shape) if need_w else empty,
            grad_y.new_empty((grad_y.shape[1],)) if need_b else empty)


@torch.library.register_fake("pyprune::label_regions")
def _(mask, weights, connectivity):
    regions = torch.library.get_ctx().new_dynamic_size()  # data-dependent
    return (mask.new_empty(mask.shape, dtype=torch.int32), mask.new_empty(mask.shape[0], dtype=torch.int64),
            mask.new_empty(regions, dtype=torch.int64), mask.new_empty(regions, dtype=torch.float64),
            mask.new_empty(regions, dtype=torch.float64))
