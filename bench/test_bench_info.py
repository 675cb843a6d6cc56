"""Information scores, MI + TE together (history 1, float32), at the issue's two shapes, a
streaming accumulator's update with one batch, and a permutation test: its binning and its chunks."""
import pytest
import torch

import pyprune_ext as pp
from pyprune_ext import reference as ref

from conftest import OURS, needs_cuda, run, scaled
from peers import (bin_codes_torch, info_counts_torch, info_counts_torch_chunked, info_counts_torch_f32,
                   info_scores_pyinform, info_scores_torch)

SHAPES = scaled([  # (N, S, T, B, K)
    (128, 2000, 100, 8, 10),
    (1024, 1000, 100, 16, 10),
], axis=1)

_cache = {}


def data(shape):
    if shape not in _cache:
        _cache.clear()
        n, s, t, b, k = shape
        g = torch.Generator().manual_seed(0)
        x = torch.randn(s, t, n, generator=g)
        y = torch.randint(0, k, (s, t), generator=g)
        _cache[shape] = (x, y)
    return _cache[shape]


def group(shape):
    n, s, t, b, k = shape
    return f"info MI+TE N={n} S={s} T={t} B={b} K={k} ({s * t * n * 4 / 2**20:.0f} MiB)"


@pytest.mark.parametrize("impl", ["reference", "pyinform", "torch one bincount", "torch chunked int64",
                                  "torch chunked f32 index", *OURS])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"N{s[0]}")
def test_info_scores(benchmark, shape, impl):
    n, s, t, b, k = shape
    x, y = data(shape)
    benchmark.group = group(shape)
    benchmark.extra_info["bytes"] = x.numel() * 4
    if impl == "reference":
        result = run(benchmark, lambda: ref.information_scores(x.numpy(), y.numpy(), k, bins=b),
                     slow=True)
        mi, te = result[1], result[2]
    elif impl == "pyinform":
        pytest.importorskip("pyinform")
        mi, te = run(benchmark, info_scores_pyinform, x, y, k, b, slow=True)
    elif impl == "torch one bincount":
        mi, te = run(benchmark, info_scores_torch, x, y, k, b, info_counts_torch)
    elif impl == "torch chunked int64":
        mi, te = run(benchmark, info_scores_torch, x, y, k, b, info_counts_torch_chunked)
    elif impl == "torch chunked f32 index":
        mi, te = run(benchmark, info_scores_torch, x, y, k, b, info_counts_torch_f32)
    else:
        scores = run(benchmark, lambda: pp.information_scores(x, y, k, bins=b))
        mi, te = scores.mutual_information, scores.transfer_entropy
    assert len(mi) == n and len(te) == n


@needs_cuda
@pytest.mark.parametrize("impl", ["torch", "ours"])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"N{s[0]}")
def test_info_scores_cuda(benchmark, shape, impl):
    n, s, t, b, k = shape
    x, y = (v.cuda() for v in data(shape))
    benchmark.group = group(shape) + " [cuda]"
    benchmark.extra_info["bytes"] = x.numel() * 4
    if impl == "torch":
        mi, te = run(benchmark, info_scores_torch, x, y, k, b, cuda=True)
    else:
        scores = run(benchmark, lambda: pp.information_scores(x, y, k, bins=b), cuda=True)
        mi, te = scores.mutual_information, scores.transfer_entropy
    assert len(mi) == n and len(te) == n


@pytest.mark.parametrize("impl", ["reference", "torch", *OURS])
@pytest.mark.parametrize("shape", SHAPES[:1], ids=lambda s: f"N{s[0]}")
def test_bin_codes(benchmark, shape, impl):
    """The binning a permutation test does once (info_bin_codes): equal-width bins of every value."""
    n, s, t, b, k = shape
    x, _ = data(shape)
    edges = pp.bin_edges(x, b)
    benchmark.group = f"bin codes N={n} S={s} T={t} B={b} ({s * t * n * 4 / 2**20:.0f} MiB)"
    benchmark.extra_info["bytes"] = x.numel() * 4
    want = ref.bin_values(x[:2].numpy(), edges.numpy(), True)   # a slice: the check, not the bench
    if impl == "reference":
        codes = torch.from_numpy(run(benchmark, ref.bin_values, x.numpy(), edges.numpy(), True, slow=True))
    elif impl == "torch":
        lo, hi = edges[:, 0].float(), edges[:, -1].float()
        codes = run(benchmark, bin_codes_torch, x, lo, b / (hi - lo), b)
        assert (codes[:2].long().numpy() == want).mean() > 0.999   # float32: a value at an edge may move
        return
    else:
        codes = run(benchmark, pp.ops.info_bin_codes, x, edges, True)
    assert (codes[:2].long().numpy() == want).all()


UPDATE_SHAPES = [  # (N, S, T, B, K): one batch of 64 sequences of 35 steps
    (256, 64, 35, 8, 10),
    (1024, 64, 35, 16, 10),
]


@pytest.mark.parametrize("impl", ["reference", "torch", *OURS])
@pytest.mark.parametrize("shape", UPDATE_SHAPES, ids=lambda s: f"N{s[0]}B{s[3]}")
def test_accumulator_update(benchmark, shape, impl):
    n, s, t, b, k = shape
    g = torch.Generator().manual_seed(1)
    x = torch.rand(s, t, n, generator=g) * 2 - 1
    y = torch.randint(0, k, (s, t), generator=g)
    low, high = torch.full((n,), -1.0), torch.ones(n)
    acc = pp.InfoAccumulator.from_range(low, high, b, k)
    benchmark.group = f"info accumulator update N={n} batch S={s} T={t} B={b} K={k}"
    benchmark.extra_info["bytes"] = x.numel() * 4
    if impl == "reference":
        counts = [acc.joint_counts.numpy(), acc.transition_counts.numpy()]

        def update():
            for total, new in zip(counts, ref.info_counts(x.numpy(), y.numpy(), k,
                                                          acc.edges.numpy(), True, 1)):
                total += new
        run(benchmark, update, slow=True)
    elif impl == "torch":
        lo, hi = low.double(), high.double()

        def update():
            joint, transitions = info_counts_torch(x, y, k, lo, hi, b)
            acc.joint_counts += joint
            acc.transition_counts += transitions
        run(benchmark, update)
    else:
        run(benchmark, lambda: acc.update(x, y))
    assert int(acc.joint_counts[0].sum()) > 0


PERMUTATION_SHAPES = SHAPES[:1]


@pytest.mark.parametrize("impl", ["one chunk", "ours"])
@pytest.mark.parametrize("shape", PERMUTATION_SHAPES, ids=lambda s: f"N{s[0]}")
def test_permutation_chunks(benchmark, shape, impl, monkeypatch):
    """What splitting a permutation test into interruptible chunks of ~0.8 s costs: the same call
    with every permutation in one chunk against the default chunks."""
    import pyprune_ext.info as info
    n, s, t, b, k = shape
    x, y = data(shape)
    benchmark.group = f"permutation test, 200 permutations, N={n} S={s} T={t} B={b} K={k}"
    if impl == "one chunk":
        monkeypatch.setattr(info, "_CHUNK_SECONDS", 1e9)
    run(benchmark, lambda: pp.permutation_test(x, y, k, num_permutations=200, progress=False))
