"""Taylor family: all seven channel criteria in one pass (gbar given), float32; single-shot
scores + global top-k masks over 100M parameters."""
import pytest
import torch

import pyprune_ext as pp
from pyprune_ext import reference as ref

from conftest import OURS, QUICK, needs_cuda, run, scaled
from peers import channel_scores_torch, channel_scores_torch_chunked, topk_masks_torch

FEATURE_SHAPES = scaled([(128, 64, 32, 32), (256, 256, 16, 16), (64, 128, 56, 56)], axis=0)
_cache = {}


def feature_data(shape):
    if shape not in _cache:
        _cache.clear()
        g = torch.Generator().manual_seed(0)
        x = torch.randn(shape, generator=g)
        grad = torch.randn(shape, generator=g)
        gbar = grad.double().mean(0)
        _cache[shape] = (x, grad, gbar)
    return _cache[shape]


@pytest.mark.parametrize("impl", ["reference", "torch bmm", "torch chunked", *OURS])
@pytest.mark.parametrize("shape", FEATURE_SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_channel_scores(benchmark, shape, impl):
    x, g, gbar = feature_data(shape)
    benchmark.group = f"taylor 7 criteria x,g={tuple(shape)} ({2 * x.numel() * 4 / 2**20:.0f} MiB)"
    benchmark.extra_info["bytes"] = 2 * x.numel() * 4
    if impl == "reference":
        out = run(benchmark, lambda: ref.channel_scores(x.numpy(), g.numpy(), gbar.numpy()), slow=True)
    elif impl == "torch bmm":
        out = run(benchmark, channel_scores_torch, x, g, gbar)
    elif impl == "torch chunked":
        out = run(benchmark, channel_scores_torch_chunked, x, g, gbar)
    else:
        out = run(benchmark, lambda: pp.channel_scores(x, g, pp.CRITERIA, gbar=gbar))
    assert len(out) == 7


TOTAL = 100_000_000 // (50 if QUICK else 1)
_params = {}


def param_data():
    if not _params:
        g = torch.Generator().manual_seed(1)
        sizes = [TOTAL // 4] * 3 + [TOTAL - 3 * (TOTAL // 4)]
        _params["p"] = [torch.randn(n, generator=g) for n in sizes]
        _params["g"] = [torch.randn(n, generator=g) for n in sizes]
    return _params["p"], _params["g"]


@pytest.mark.parametrize("impl", ["torch.topk", "torch.kthvalue", *OURS])
def test_global_topk(benchmark, impl):
    params, grads = param_data()
    benchmark.group = f"single-shot scores + global top-k, {TOTAL / 1e6:.0f}M params, sparsity 0.9"
    benchmark.extra_info["bytes"] = 2 * TOTAL * 4
    # extra memory beyond the bool masks: our 2048-bin histograms vs the concatenated scores
    # (+ topk's values and int64 indices of the kept 10%)
    if impl.startswith("ours"):
        benchmark.extra_info["extra_bytes"] = 2048 * 8 * torch.get_num_threads()
        masks = run(benchmark, lambda: pp.global_topk_masks(params, grads, sparsity=0.9, alpha=0.01))
    else:
        use_kth = impl == "torch.kthvalue"
        benchmark.extra_info["extra_bytes"] = TOTAL * 4 + (0 if use_kth else TOTAL // 10 * 12)
        masks = run(benchmark, topk_masks_torch, params, grads, 0.9, 0.01, use_kth)
    check_kept(masks, impl)


def check_kept(masks, impl):
    kept = sum(int(m.sum()) for m in masks)
    if impl == "torch.kthvalue":  # a threshold keeps every tie at it: float32 scores do tie
        assert kept >= TOTAL - round(0.9 * TOTAL)
    else:
        assert kept == TOTAL - round(0.9 * TOTAL)


@needs_cuda
@pytest.mark.parametrize("impl", ["torch", "ours"])
@pytest.mark.parametrize("shape", FEATURE_SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_channel_scores_cuda(benchmark, shape, impl):
    x, g, gbar = (t.cuda() for t in feature_data(shape))
    benchmark.group = f"taylor 7 criteria x,g={tuple(shape)} ({2 * x.numel() * 4 / 2**20:.0f} MiB) [cuda]"
    benchmark.extra_info["bytes"] = 2 * x.numel() * 4
    if impl == "torch":
        out = run(benchmark, channel_scores_torch, x, g, gbar, cuda=True)
    else:
        out = run(benchmark, lambda: pp.channel_scores(x, g, pp.CRITERIA, gbar=gbar), cuda=True)
    assert len(out) == 7


@needs_cuda
@pytest.mark.parametrize("impl", ["torch.topk", "torch.kthvalue", "ours"])
def test_global_topk_cuda(benchmark, impl):
    params, grads = ([t.cuda() for t in ts] for ts in param_data())
    benchmark.group = f"single-shot scores + global top-k, {TOTAL / 1e6:.0f}M params, sparsity 0.9 [cuda]"
    benchmark.extra_info["bytes"] = 2 * TOTAL * 4
    if impl == "ours":
        masks = run(benchmark, lambda: pp.global_topk_masks(params, grads, sparsity=0.9, alpha=0.01),
                    cuda=True)
    else:
        masks = run(benchmark, topk_masks_torch, params, grads, 0.9, 0.01,
                    impl == "torch.kthvalue", cuda=True)
    check_kept(masks, impl)
