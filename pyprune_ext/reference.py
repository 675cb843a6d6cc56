"""Pure NumPy reference of every op, written to be read, not to be fast.

Tests and the bench suite compare the compiled ops against these functions. They take and return
NumPy arrays (float64) and follow the definitions in docs/ literally: probabilities, not the count
identities the kernels use.
"""
import numpy as np

from ._info_shape import history_states

# ---- information scores (docs/information.md) -------------------------------------------------


def uniform_edges(x2d, bins):
    """Equal-width edges [N, B+1] over each column's [min, max]."""
    lo, hi = x2d.min(axis=0).astype(np.float64), x2d.max(axis=0).astype(np.float64)
    edges = lo[:, None] + (hi - lo)[:, None] * (np.arange(bins + 1) / bins)
    edges[:, -1] = hi
    return edges


def bin_values(x, edges, uniform):
    """Bin index of every value of x [..., N] with the per-neuron edges [N, B+1] (see binning.h)."""
    x = np.asarray(x, dtype=np.float64)
    bins = edges.shape[1] - 1
    if uniform:
        lo, hi = edges[:, 0], edges[:, -1]
        width = hi - lo
        scale = np.divide(bins, width, out=np.zeros_like(width), where=width > 0)
        return np.floor(np.clip((x - lo) * scale, 0, bins - 1)).astype(np.int64)
    out = np.empty(x.shape, dtype=np.int64)
    for n in range(edges.shape[0]):
        out[..., n] = np.searchsorted(edges[n, 1:-1], x[..., n], side="right")
    return out


def _entropy(p):
    p = p[p > 0]
    return -np.sum(p * np.log(p))


def _occupied(p):
    return np.count_nonzero(p)


def _as_sequences(x, labels):
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 2:
        x = x[:, None, :]
    s, t, _ = x.shape
    y = np.zeros((s, t), dtype=np.int64) if labels is None else np.asarray(labels, dtype=np.int64)
    if y.ndim == 1:
        y = np.repeat(y[:, None], t, axis=1)
    return x, y


def _sequences_and_edges(x, labels, bins, edges, uniform):
    """(x [S, T, N] float64, labels [S, T], edges [N, B+1], uniform): equal-width bins over each
    neuron's range unless edges are given."""
    x, y = _as_sequences(x, labels)
    if edges is None:
        edges, uniform = uniform_edges(x.reshape(-1, x.shape[2]), bins), True
    return x, y, edges, uniform


def _transitions(codes, labels, history, bins):
    """The transitions inside each sequence of one neuron's bins codes [S, T]: (state = the last
    `history` bins as base-B digits, newest lowest; next bin; label at the current step)."""
    t = codes.shape[1]
    state = np.zeros((codes.shape[0], t - history), dtype=np.int64)
    for lag in range(history):  # oldest first
        state = state * bins + codes[:, lag:t - history + lag]
    return state, codes[:, history:], labels[:, history - 1:t - 1]


def info_counts(x, labels, num_classes, edges, uniform, history):
    """int64 (joint counts [N, B, K] of (x_t, y_t), transition counts [N, B^history, B, K] of
    (state, next bin, label at the current step), [N, 0, B, K] when history is 0)."""
    x, y = _as_sequences(x, labels)
    codes, bins = bin_values(x, edges, uniform), edges.shape[1] - 1
    n = codes.shape[2]
    joint = np.zeros((n, bins, num_classes), dtype=np.int64)
    transitions = np.zeros((n, history_states(bins, history), bins, num_classes), dtype=np.int64)
    for i in range(n):
        np.add.at(joint[i], (codes[:, :, i].ravel(), y.ravel()), 1)
        if history:
            state, nxt, src = _transitions(codes[:, :, i], y, history, bins)
            np.add.at(transitions[i], (state.ravel(), nxt.ravel(), src.ravel()), 1)
    return joint, transitions


def information_scores(x, labels, num_classes, bins=8, history=1, base=2.0, miller_madow=False,
                       edges=None, uniform=True):
    """(entropy [N], MI [N], TE [N] or None) with the definitions of docs/information.md.

    x [S, T, N] or [M, N]; labels [S, T], [S] or None; edges [N, B+1] (default: equal-width).
    """
    x, y, edges, uniform = _sequences_and_edges(x, labels, bins, edges, uniform)
    s, t, n = x.shape
    joint, transitions = info_counts(x, y, num_classes, edges, uniform, history if t > history else 0)
    h_out, mi_out, te_out = np.zeros(n), np.zeros(n), np.zeros(n)
    unit = 1.0 / np.log(base)
    for i in range(n):
        # Entropy and MI from every (x_t, y_t).
        pxy = joint[i].astype(np.float64)
        total = pxy.sum()
        pxy /= total
        px, py = pxy.sum(1), pxy.sum(0)
        h = _entropy(px)
        mi = max(_entropy(px) + _entropy(py) - _entropy(pxy.ravel()), 0.0)
        if miller_madow:
            h += (_occupied(px) - 1) / (2 * total)
            mi += (_occupied(px) + _occupied(py) - _occupied(pxy) - 1) / (2 * total)
        h_out[i], mi_out[i] = h * unit, mi * unit
        if history == 0 or t <= history:
            continue
        p = transitions[i].astype(np.float64)
        total = p.sum()
        p /= total
        p_hy = p.sum(axis=1, keepdims=True)     # p(h, y)
        p_hx = p.sum(axis=2, keepdims=True)     # p(h, x')
        p_h = p.sum(axis=(1, 2), keepdims=True)  # p(h)
        mask = p > 0
        ratio = (p * p_h)[mask] / (p_hy * p_hx)[mask]
        te = max(np.sum(p[mask] * np.log(ratio)), 0.0)
        if miller_madow:
            te += (_occupied(p_hx) + _occupied(p_hy) - _occupied(p) - _occupied(p_h)) / (2 * total)
        te_out[i] = te * unit
    return h_out, mi_out, (te_out if history > 0 and t > history else None)


def local_transfer_entropy(x, labels, num_classes, bins=8, history=1, base=2.0, edges=None,
                           uniform=True):
    """Pointwise TE of every transition: [S, T - history, N]."""
    x, y, edges, uniform = _sequences_and_edges(x, labels, bins, edges, uniform)
    codes, bins = bin_values(x, edges, uniform), edges.shape[1] - 1
    s, t, n = codes.shape
    transitions = info_counts(x, y, num_classes, edges, uniform, history)[1]
    out = np.zeros((s, t - history, n))
    for i in range(n):
        state, nxt, src = _transitions(codes[:, :, i], y, history, bins)
        p = transitions[i].astype(np.float64)
        p_h, p_hx, p_hy = p.sum(axis=(1, 2)), p.sum(axis=2), p.sum(axis=1)
        cond_full = p[state, nxt, src] / p_hy[state, src]
        cond_own = p_hx[state, nxt] / p_h[state]
        out[:, :, i] = np.log(cond_full / cond_own) / np.log(base)
    return out


# ---- Taylor importance (docs/taylor.md) --------------------------------------------------

def channel_scores(x, g, gbar=None):
    """{criterion: [C]} for x, g [Nb, C, *spatial], literally as in docs/taylor.md's table."""
    x = np.asarray(x, dtype=np.float64)
    g = np.asarray(g, dtype=np.float64)
    nb, c = x.shape[:2]
    xf, gf = x.reshape(nb, c, -1), g.reshape(nb, c, -1)
    dots = np.einsum("ncp,ncp->nc", xf, gf)            # x_n . g_n
    xbar, g_mean = xf.mean(0), gf.mean(0)
    gb = g_mean if gbar is None else np.asarray(gbar, dtype=np.float64).reshape(c, -1)
    return {
        "simple": (xf ** 2).sum(2).mean(0),
        "first_order": (-dots).mean(0),
        "fisher": 0.5 * (dots ** 2).mean(0),
        "first_plus_second": (-dots + dots ** 2).mean(0),
        "oracle": np.abs(dots.mean(0)),
        "meanprod": np.einsum("cp,cp->c", xbar, g_mean) ** 2,
        "trace": (np.einsum("ncp,cp->nc", xf, gb) ** 2).mean(0),
    }


def normalize_scores(scores, p):
    root = np.sqrt(np.asarray(scores, dtype=np.float64))
    return root / (root ** p).sum() ** (1.0 / p)


def param_scores(theta, grad, alpha):
    theta, grad = np.asarray(theta, dtype=np.float64), np.asarray(grad, dtype=np.float64)
    return np.abs(grad * theta) + alpha * theta ** 2


def global_topk_masks(params, grads, sparsity, alpha):
    """Masks keeping the round((1 - sparsity) * total) largest scores; ties by global index."""
    scores = np.concatenate([param_scores(p, g, alpha).ravel() for p, g in zip(params, grads)])
    keep = scores.size - int(round(sparsity * scores.size))
    order = np.lexsort((np.arange(scores.size), -scores))  # score descending, index ascending
    flat = np.zeros(scores.size, dtype=bool)
    flat[order[:keep]] = True
    masks, start = [], 0
    for p in params:
        masks.append(flat[start:start + np.size(p)].reshape(np.shape(p)))
        start += np.size(p)
    return masks


# ---- sparse masked linear layer (docs/sparse.md) ----------------------------------------------

def sparse_linear(x, weight, mask, bias=None):
    """y = x (W * mask)^T + b: the layer as the dense product on the masked weight."""
    w = np.asarray(weight, dtype=np.float64) * np.asarray(mask, dtype=bool)
    y = np.asarray(x, dtype=np.float64) @ w.T
    return y if bias is None else y + np.asarray(bias, dtype=np.float64)


def sparse_linear_backward(x, weight, mask, grad_y):
    """(dX = dY (W * mask), dW = (dY^T X) at the mask and 0 elsewhere, db = sum_n dY)."""
    mask = np.asarray(mask, dtype=bool)
    x, grad_y = np.asarray(x, dtype=np.float64), np.asarray(grad_y, dtype=np.float64)
    w = np.asarray(weight, dtype=np.float64) * mask
    return grad_y @ w, (grad_y.T @ x) * mask, grad_y.sum(0)


# ---- connected regions (docs/regions.md) ----------------------------------------------------

def label_regions(mask, connectivity=4):
    """(labels [K, H, W] int32, counts [K]) with scipy.ndimage.label per mask, renumbered in
    raster order of each region's first pixel."""
    from scipy import ndimage
    mask = np.asarray(mask, dtype=bool)
    structure = ndimage.generate_binary_structure(2, 1 if connectivity == 4 else 2)
    labels = np.zeros(mask.shape, dtype=np.int32)
    counts = np.zeros(mask.shape[0], dtype=np.int64)
    for k in range(mask.shape[0]):
        raw, n = ndimage.label(mask[k], structure=structure)
        flat = raw.ravel()
        firsts = [np.flatnonzero(flat == lab)[0] for lab in range(1, n + 1)]
        renumber = np.zeros(n + 1, dtype=np.int32)
        renumber[1 + np.argsort(firsts)] = np.arange(1, n + 1)
        labels[k] = renumber[raw]
        counts[k] = n
    return labels, counts


def region_stats(mask, weights, connectivity=4):
    """(sizes, sum |w|, mean |w|) flat over (mask, label)."""
    labels, counts = label_regions(mask, connectivity)
    w = np.abs(np.asarray(weights, dtype=np.float64))
    sizes, sums = [], []
    for k in range(labels.shape[0]):
        n = counts[k]
        sizes.append(np.bincount(labels[k].ravel(), minlength=n + 1)[1:])
        sums.append(np.bincount(labels[k].ravel(), weights=w[k].ravel(), minlength=n + 1)[1:])
    sizes, sums = np.concatenate(sizes), np.concatenate(sums)
    return sizes, sums, sums / np.maximum(sizes, 1)
