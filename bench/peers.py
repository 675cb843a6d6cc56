"""The best composed-PyTorch versions of each op: what a user would write without this package.
Each is timed beside the reference and our op."""
import torch


def _sum_xlogx(counts, dims):
    c = counts.to(torch.float64)
    return torch.xlogy(c, c).sum(dims)


def info_counts_torch(x, labels, num_classes, lo, hi, bins):
    """Joint [N, B, K] and transition [N, B, B, K] counts (history 1) of equal-width bins over
    float64 [lo, hi] [N], with one bincount over all neurons each, the neuron index offset into
    the cell index."""
    s, t, n = x.shape
    width = hi - lo
    scale = torch.where(width > 0, bins / width, torch.zeros_like(width))
    codes = ((x.double() - lo) * scale).clamp_(0, bins - 1).long()
    y = labels if labels.dim() == 2 else labels[:, None].expand(s, t)
    neuron = torch.arange(n, device=x.device)
    joint_index = neuron * (bins * num_classes) + codes * num_classes + y[..., None]
    joint = torch.bincount(joint_index.reshape(-1), minlength=n * bins * num_classes)
    trans_index = (neuron * (bins * bins * num_classes)
                   + (codes[:, :-1] * bins + codes[:, 1:]) * num_classes + y[:, :-1, None])
    trans = torch.bincount(trans_index.reshape(-1), minlength=n * bins * bins * num_classes)
    return joint.view(n, bins, num_classes), trans.view(n, bins, bins, num_classes)


def info_counts_torch_chunked(x, labels, num_classes, lo, hi, bins, chunk_elements=1 << 22):
    """info_counts_torch over chunks of whole sequences of about `chunk_elements` values, the
    counts added up: the index tensors stay in cache, which makes it several times faster than
    one bincount over everything."""
    s, t, n = x.shape
    step = max(1, chunk_elements // (t * n))
    joint = trans = None
    for start in range(0, s, step):
        j, tr = info_counts_torch(x[start:start + step], labels[start:start + step], num_classes, lo, hi, bins)
        joint, trans = (j, tr) if joint is None else (joint.add_(j), trans.add_(tr))
    return joint, trans


def info_counts_torch_f32(x, labels, num_classes, lo, hi, bins, chunk_elements=1 << 22):
    """The fastest composed version we know: the cell index of every value computed in float32
    (exact while it stays below 2^24), in place, with one int32 cast per chunk of ~4M values
    before the bincount; chunks of whole sequences keep the temporaries in cache."""
    s, t, n = x.shape
    k = num_classes
    if n * bins * bins * k >= 1 << 24:
        raise ValueError("float32 index arithmetic is exact only below 2^24 cells")
    width = hi - lo
    scale = torch.where(width > 0, bins / width, torch.zeros_like(width)).float()
    low = lo.float()
    joint_base = torch.arange(n, device=x.device, dtype=torch.float32) * (bins * k)
    trans_base = torch.arange(n, device=x.device, dtype=torch.float32) * (bins * bins * k)
    joint = torch.zeros(n * bins * k, dtype=torch.int64, device=x.device)
    trans = torch.zeros(n * bins * bins * k, dtype=torch.int64, device=x.device)
    step = max(1, chunk_elements // (t * n))
    for start in range(0, s, step):
        xs = x[start:start + step]
        ys = labels[start:start + step]
        ys = (ys if ys.dim() == 2 else ys[:, None].expand(-1, t)).to(torch.float32)
        codes = (xs - low).mul_(scale).clamp_(0, bins - 1).floor_()
        cell = codes.mul(k).add_(ys[..., None]).add_(joint_base)
        joint += torch.bincount(cell.to(torch.int32).view(-1), minlength=joint.numel())
        cell = codes[:, :-1].mul(bins).add_(codes[:, 1:]).mul_(k).add_(ys[:, :-1, None]).add_(trans_base)
        trans += torch.bincount(cell.to(torch.int32).view(-1), minlength=trans.numel())
    return joint.view(n, bins, k), trans.view(n, bins, bins, k)


def bin_codes_torch(x, lo, scale, bins):
    """Equal-width bin codes of x [..., N] as composed PyTorch would make them: float32 arithmetic
    in place, truncation of the clamped (non-negative) value as the floor, one int16 cast."""
    u = x - lo
    u.mul_(scale).clamp_(0, bins - 1)
    return u.to(torch.int16)


def info_scores_torch(x, labels, num_classes, bins, counts=info_counts_torch_f32):
    """MI and TE (history 1, bits) of every neuron from `counts` over each neuron's range."""
    s, t, n = x.shape
    lo, hi = torch.aminmax(x.reshape(-1, n), dim=0)
    joint, trans = counts(x, labels, num_classes, lo.double(), hi.double(), bins)
    total = float(s * t)
    mi = (torch.log(torch.tensor(total, dtype=torch.float64))
          + (_sum_xlogx(joint, (1, 2)) - _sum_xlogx(joint.sum(2), 1) - _sum_xlogx(joint.sum(1), 1)) / total)
    transitions = float(s * (t - 1))
    te = (_sum_xlogx(trans, (1, 2, 3)) + _sum_xlogx(trans.sum((2, 3)), 1)
          - _sum_xlogx(trans.sum(3), (1, 2)) - _sum_xlogx(trans.sum(2), (1, 2))) / transitions
    ln2 = torch.log(torch.tensor(2.0, dtype=torch.float64))
    return mi / ln2, te / ln2


def info_scores_pyinform(x, labels, num_classes, bins):
    """MI and TE (history 1, bits) per neuron with pyinform (C, one neuron at a time) on the same
    equal-width bin codes: the information-theory library a user would reach for."""
    import numpy as np
    from pyinform import mutual_info, transfer_entropy
    s, t, n = x.shape
    lo, hi = torch.aminmax(x.reshape(-1, n), dim=0)
    lo, hi = lo.double(), hi.double()
    scale = torch.where(hi > lo, bins / (hi - lo), torch.zeros_like(hi))
    codes = ((x.double() - lo) * scale).clamp_(0, bins - 1).to(torch.int32).permute(2, 0, 1).numpy()
    y = (labels if labels.dim() == 2 else labels[:, None].expand(s, t)).numpy().astype(np.int32)
    mi = [mutual_info(codes[j].ravel(), y.ravel()) for j in range(n)]
    te = [transfer_entropy(y, codes[j], k=1) for j in range(n)]
    return torch.tensor(mi), torch.tensor(te)


def channel_scores_torch_chunked(x, g, gbar, chunk=8):
    """All seven criteria from elementwise products over chunks of samples, with running float64
    sums: per chunk (x * g).sum(-1), vector_norm, x.gbar and the per-channel sums."""
    nb, c = x.shape[:2]
    xf, gf = x.reshape(nb, c, -1), g.reshape(nb, c, -1)
    p = xf.shape[2]
    gb = gbar.reshape(1, c, p).to(x.dtype)
    f64 = dict(dtype=torch.float64, device=x.device)
    sq, dot, dot2, trace = (torch.zeros(c, **f64) for _ in range(4))
    sum_x, sum_g = torch.zeros(c, p, **f64), torch.zeros(c, p, **f64)
    for start in range(0, nb, chunk):
        xs, gs = xf[start:start + chunk], gf[start:start + chunk]
        d = (xs * gs).sum(-1).double()
        sq += torch.linalg.vector_norm(xs, dim=-1).double().square().sum(0)
        dot += d.sum(0)
        dot2 += d.square().sum(0)
        trace += (xs * gb).sum(-1).double().square().sum(0)
        sum_x += xs.sum(0)
        sum_g += gs.sum(0)
    return {"simple": sq / nb, "first_order": -dot / nb, "fisher": 0.5 * dot2 / nb,
            "first_plus_second": (dot2 - dot) / nb, "oracle": (dot / nb).abs(),
            "meanprod": ((sum_x / nb) * (sum_g / nb)).sum(1).square(), "trace": trace / nb}


def channel_scores_torch(x, g, gbar, chunk=16):
    """All seven criteria from sums gathered with bmm over chunks of samples (the composed-PyTorch
    way that does not materialise [Nb, C, P] float64 copies)."""
    nb, c = x.shape[:2]
    xf, gf = x.reshape(nb, c, -1), g.reshape(nb, c, -1)
    p = xf.shape[2]
    gb = gbar.reshape(c, p, 1).to(x.dtype)  # on x's device
    f64 = dict(dtype=torch.float64, device=x.device)
    sq, dot, dot2, trace = (torch.zeros(c, **f64) for _ in range(4))
    sum_x, sum_g = torch.zeros(c, p, **f64), torch.zeros(c, p, **f64)
    for start in range(0, nb, chunk):
        xs, gs = xf[start:start + chunk], gf[start:start + chunk]
        xb = xs.transpose(0, 1)  # [C, n, P]
        d = torch.bmm(xb, gs.transpose(0, 1).transpose(1, 2)).diagonal(dim1=1, dim2=2).double()
        sq += torch.bmm(xb, xb.transpose(1, 2)).diagonal(dim1=1, dim2=2).double().sum(1)
        dot += d.sum(1)
        dot2 += d.square().sum(1)
        trace += torch.bmm(xb, gb).squeeze(2).double().square().sum(1)
        sum_x += xs.sum(0).double()
        sum_g += gs.sum(0).double()
    return {"simple": sq / nb, "first_order": -dot / nb, "fisher": 0.5 * dot2 / nb,
            "first_plus_second": (dot2 - dot) / nb, "oracle": (dot / nb).abs(),
            "meanprod": ((sum_x / nb) * (sum_g / nb)).sum(1).square(), "trace": trace / nb}


def topk_masks_torch(params, grads, sparsity, alpha, use_kthvalue=False):
    """Global masks from the concatenated scores: torch.topk (or kthvalue for the threshold)."""
    scores = torch.cat([(g * p).abs_().add_(p * p, alpha=alpha).reshape(-1)
                        for p, g in zip(params, grads)])
    keep = scores.numel() - int(round(sparsity * scores.numel()))
    flat = torch.zeros(scores.numel(), dtype=torch.bool, device=scores.device)
    if use_kthvalue:
        threshold = torch.kthvalue(scores, scores.numel() - keep + 1).values
        flat = scores >= threshold
    else:
        flat[torch.topk(scores, keep, sorted=False).indices] = True
    return list(flat.split([p.numel() for p in params]))


class CsrLinear:
    """The composed torch.sparse CSR layer a user would write: forward with sparse.mm, dX with a
    precomputed transposed CSR, dW with sampled_addmm on the mask (autograd through CSR has gaps)."""

    def __init__(self, weight, bias):
        self.w = weight.to_sparse_csr()
        self.w_t = weight.t().contiguous().to_sparse_csr()
        self.bias = bias

    def forward(self, x):
        return torch.sparse.mm(self.w, x.t()).t() + self.bias

    def step(self, x, grad_y):
        y = self.forward(x)
        dx = torch.sparse.mm(self.w_t, grad_y.t()).t()
        dw = torch.sparse.sampled_addmm(self.w, grad_y.t().contiguous(), x, beta=0.0)
        return y, dx, dw, grad_y.sum(0)
