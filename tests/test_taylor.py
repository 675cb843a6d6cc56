"""Taylor channel criteria, normalisation, L1+stdv, single-shot scores and global top-k masks:
reference comparisons, streaming, the thesis's toy argument, hooks, opcheck and bad input."""
import numpy as np
import pytest
import torch
import torch.nn.utils.prune
from hypothesis import given
from hypothesis import strategies as st

import pyprune_ext as pp
from pyprune_ext import ops
from pyprune_ext import reference as ref

from conftest import DEVICES

# every test of this module runs once per CPU kernel capability this machine supports
pytestmark = pytest.mark.usefixtures("each_cpu_capability")


@st.composite
def feature_maps(draw):
    nb = draw(st.sampled_from([1, 2, 3, 7, 16]))
    c = draw(st.sampled_from([1, 2, 5, 17]))
    spatial = draw(st.sampled_from([(), (1,), (9,), (1, 1), (3, 5), (2, 3, 4)]))
    dtype = draw(st.sampled_from([torch.float32, torch.float64]))
    layout = draw(st.sampled_from(["contiguous", "channels_last", "strided"]))
    seed = draw(st.integers(0, 2**31 - 1))
    return nb, c, spatial, dtype, layout, seed


def make_maps(case):
    nb, c, spatial, dtype, layout, seed = case
    gen = torch.Generator().manual_seed(seed)
    shape = (nb, c, *spatial)
    x = torch.randn(shape, generator=gen, dtype=torch.float64).to(dtype)
    g = torch.randn(shape, generator=gen, dtype=torch.float64).to(dtype)
    if layout == "channels_last" and len(spatial) == 2:
        x, g = x.to(memory_format=torch.channels_last), g.to(memory_format=torch.channels_last)
    elif layout == "strided":
        x, g = torch.cat([x, x], 0)[::2], torch.cat([g, g], 0)[::2]
    return x, g


@given(feature_maps())
def test_every_criterion_matches_reference(case):
    x, g = make_maps(case)
    want = ref.channel_scores(x.numpy(), g.numpy())
    tol = dict(rtol=2e-4, atol=1e-5) if x.dtype == torch.float32 else dict(rtol=1e-10, atol=1e-12)
    for device in DEVICES:
        got = pp.channel_scores(x.to(device), g.to(device))
        assert set(got) == set(pp.CRITERIA)
        for name, value in got.items():
            assert value.dtype == x.dtype and value.shape == (x.shape[1],)
            np.testing.assert_allclose(value.cpu().double().numpy(), want[name], err_msg=name, **tol)


def test_trace_with_given_gbar_and_subset_of_criteria(device):
    x = torch.randn(6, 4, 3, 3, dtype=torch.float64, device=device)
    g = torch.randn(6, 4, 3, 3, dtype=torch.float64, device=device)
    gbar = torch.randn(4, 3, 3, dtype=torch.float64)
    got = pp.channel_scores(x, g, ["trace", "fisher"], gbar=gbar)
    want = ref.channel_scores(x.cpu().numpy(), g.cpu().numpy(), gbar=gbar.numpy())
    assert set(got) == {"trace", "fisher"}
    np.testing.assert_allclose(got["trace"].cpu().numpy(), want["trace"], rtol=1e-12)


@pytest.mark.parametrize("spatial", [(3, 3), (6, 6), (16, 16)], ids=lambda s: f"{s[0]}x{s[1]}")
def test_maps_large_enough_for_threads_match_reference_and_any_thread_count(spatial):
    """Maps past the one-thread size (one thread per 32768 elements), below and above the
    positions where a sample's sums use SIMD: equal to the reference, and bit-identical for any
    thread count (threads own channels)."""
    gen = torch.Generator().manual_seed(5)
    x = torch.randn(16, 300, *spatial, generator=gen)
    g = torch.randn(16, 300, *spatial, generator=gen)
    gbar = torch.randn(300, *spatial, generator=gen, dtype=torch.float64)
    want = ref.channel_scores(x.double().numpy(), g.double().numpy(), gbar=gbar.numpy())
    previous = torch.get_num_threads()
    try:
        results = []
        for threads in (1, 2, 3):
            torch.set_num_threads(threads)
            results.append(pp.channel_scores(x, g, gbar=gbar))
    finally:
        torch.set_num_threads(previous)
    for name in pp.CRITERIA:
        np.testing.assert_allclose(results[0][name].double().numpy(), want[name], rtol=2e-4,
                                   atol=1e-6, err_msg=name)
        for other in results[1:]:
            assert torch.equal(other[name], results[0][name]), name


def test_streaming_in_batches_equals_one_call(device):
    x = torch.randn(30, 5, 4, 4, dtype=torch.float64, device=device)
    g = torch.randn(30, 5, 4, 4, dtype=torch.float64, device=device)
    stats = pp.ChannelStats()
    for chunk in (slice(0, 7), slice(7, 8), slice(8, 30)):
        stats.update(x[chunk], g[chunk])
    whole = pp.channel_scores(x, g, [c for c in pp.CRITERIA if c != "trace"])
    for name, value in stats.scores(whole.keys()).items():
        torch.testing.assert_close(value, whole[name], rtol=1e-12, atol=1e-12)
    # mean-reduced loss: gradients are 1/Nb of the summed loss's; grad_scale restores them
    scaled = pp.ChannelStats()
    for chunk in (slice(0, 10), slice(10, 30)):
        nb = x[chunk].shape[0]
        scaled.update(x[chunk], g[chunk] / nb, grad_scale=nb)
    torch.testing.assert_close(scaled.scores(["fisher"])["fisher"], whole["fisher"])


def test_thesis_toy_argument_fisher_fooled_meanprod_not():
    # Channel 0 matters for every sample; channel 1 is redundant but fires hard in one sample.
    n, p = 50, 4
    x = torch.zeros(n, 2, p, dtype=torch.float64)
    g = torch.zeros(n, 2, p, dtype=torch.float64)
    x[:, 0], g[:, 0] = 1.0, -0.25          # x_n . g_n = -1 for every n
    x[7, 1], g[7, 1] = 5.0, -0.5           # x_7 . g_7 = -10 once
    s = pp.channel_scores(x, g, ["fisher", "meanprod"])
    assert s["fisher"][1] > s["fisher"][0]
    assert s["meanprod"][0] > s["meanprod"][1]
    assert s["meanprod"][0].item() == pytest.approx(1.0)
    assert s["meanprod"][1].item() == pytest.approx((10 / n**2) ** 2)


@pytest.mark.parametrize("p", [1.0, 2 / 3, 0.5, 2.0])
def test_normalize_scores_matches_eq_4_13(p):
    scores = torch.rand(9, dtype=torch.float64) * 5
    got = pp.normalize_scores(scores, p)
    np.testing.assert_allclose(got.numpy(), ref.normalize_scores(scores.numpy(), p), rtol=1e-12)
    assert got.pow(p).sum().item() == pytest.approx(1.0)  # unit Lp norm


def test_l1_stdv_by_hand():
    w = torch.tensor([[1.0, -1.0, 1.0, -1.0], [2.0, 2.0, 2.0, 2.0]])
    # sigma = (1, 0); L1 = (4, 8)
    got = pp.l1_stdv_scores(w, lam=0.25)
    torch.testing.assert_close(got, torch.tensor([0.25 * 1 + 0.75 * 4, 0.75 * 8]))


# ---- single-shot scores and global top-k --------------------------------------------------------

def test_param_scores_match_reference(device):
    theta = torch.randn(7, 3, device=device, dtype=torch.float64)
    grad = torch.randn(7, 3, device=device, dtype=torch.float64)
    got = pp.param_scores(theta, grad, 0.3)
    np.testing.assert_allclose(got.cpu().numpy(), ref.param_scores(theta.cpu(), grad.cpu(), 0.3))
    strided = pp.param_scores(theta.T, grad.T, 0.3)
    torch.testing.assert_close(strided, got.T)


@given(st.lists(st.integers(0, 700), min_size=1, max_size=4), st.sampled_from([0.0, 0.5, 0.9, 0.95, 0.98]),
       st.sampled_from([0.0, 0.1]), st.booleans(), st.integers(0, 2**31 - 1))
def test_global_topk_matches_reference(sizes, sparsity, alpha, ties, seed):
    gen = torch.Generator().manual_seed(seed)
    params = [torch.randn(n, generator=gen, dtype=torch.float64) for n in sizes]
    grads = [torch.randn(n, generator=gen, dtype=torch.float64) for n in sizes]
    if ties:  # few distinct scores: ties at the threshold must be broken by index
        params = [p.round() for p in params]
        grads = [torch.ones_like(g) for g in grads]
    if sum(sizes) == 0:
        return
    want = ref.global_topk_masks([p.numpy() for p in params], [g.numpy() for g in grads], sparsity, alpha)
    for device in DEVICES:
        got = pp.global_topk_masks([p.to(device) for p in params], [g.to(device) for g in grads],
                                   sparsity=sparsity, alpha=alpha)
        for m, w in zip(got, want):
            assert m.dtype == torch.bool
            np.testing.assert_array_equal(m.cpu().numpy(), w)


def test_global_topk_float32_keeps_exactly_k_largest(device):
    params = [torch.randn(1000, 30, device=device), torch.randn(4321, device=device)]
    grads = [torch.randn_like(p) for p in params]
    for sparsity in (0.9, 0.95, 0.98):
        masks = pp.global_topk_masks(params, grads, sparsity=sparsity, alpha=0.01)
        scores = torch.cat([pp.param_scores(p, g, 0.01).reshape(-1) for p, g in zip(params, grads)])
        kept = torch.cat([m.reshape(-1) for m in masks])
        total = scores.numel()
        assert int(kept.sum()) == total - round(sparsity * total)
        assert scores[kept].min() >= scores[~kept].max()


def test_global_topk_uses_dot_grad_and_works_with_torch_prune():
    model = torch.nn.Sequential(torch.nn.Linear(10, 20), torch.nn.ReLU(), torch.nn.Linear(20, 3))
    torch.nn.functional.cross_entropy(model(torch.randn(8, 10)), torch.randint(0, 3, (8,)),
                                      reduction="sum").backward()
    weights = [model[0].weight, model[2].weight]
    masks = pp.global_topk_masks(weights, sparsity=0.9)
    for layer, mask in zip((model[0], model[2]), masks):
        torch.nn.utils.prune.custom_from_mask(layer, "weight", mask)
    zeros = sum(int((layer.weight == 0).sum()) for layer in (model[0], model[2]))
    assert zeros == round(0.9 * 260)


# ---- hooks ------------------------------------------------------------------------------------

class SmallCNN(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 4, 3)
        self.bn = torch.nn.BatchNorm2d(4)
        self.fc = torch.nn.Linear(4 * 6 * 6, 5)
        self.head = torch.nn.Linear(5, 3)

    def forward(self, x):
        h = self.bn(self.conv(x)).relu()
        return self.head(self.fc(h.flatten(1)).relu())


@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_collector_matches_manual_capture(reduction):
    torch.manual_seed(0)
    model = SmallCNN().double()
    batches = [(torch.randn(n, 1, 8, 8, dtype=torch.float64), torch.randint(0, 3, (n,))) for n in (5, 9)]
    collector = pp.ScoreCollector({"conv": model.conv, "bn": model.bn, "fc": model.fc},
                                  loss_reduction=reduction)
    captured = {"conv": [], "bn": [], "fc": []}
    for images, labels in batches:
        outputs = {}
        handles = [m.register_forward_hook(lambda mod, i, o, name=name: outputs.__setitem__(name, o))
                   for name, m in (("conv", model.conv), ("bn", model.bn), ("fc", model.fc))]
        model.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(images), labels, reduction="sum")
        for h in handles:
            h.remove()
        for o in outputs.values():
            o.retain_grad()
        (loss / len(images) if reduction == "mean" else loss).backward()
        for name, o in outputs.items():
            grad = o.grad * (len(images) if reduction == "mean" else 1)
            captured[name].append((o.detach(), grad))
    collector.remove()
    got = collector.scores(["fisher", "meanprod", "oracle"])
    for name, parts in captured.items():
        x = torch.cat([p[0] for p in parts])
        g = torch.cat([p[1] for p in parts])
        want = ref.channel_scores(x.numpy(), g.numpy())
        for crit in ("fisher", "meanprod", "oracle"):
            np.testing.assert_allclose(got[name][crit].numpy(), want[crit], rtol=1e-9, atol=1e-12)


def test_collector_second_pass_gives_trace():
    torch.manual_seed(1)
    model = SmallCNN().double()
    images, labels = torch.randn(6, 1, 8, 8, dtype=torch.float64), torch.randint(0, 3, (6,))
    collector = pp.ScoreCollector({"conv": model.conv})
    out = {}
    hook = model.conv.register_forward_hook(lambda m, i, o: out.__setitem__("x", o))
    for second in (False, True):
        if second:
            collector.with_gbar()
        model.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(images), labels, reduction="sum")
        out["x"].retain_grad()
        loss.backward()
    hook.remove()
    collector.remove()
    want = ref.channel_scores(out["x"].detach().numpy(), out["x"].grad.numpy())
    np.testing.assert_allclose(collector.scores(["trace"])["conv"]["trace"].numpy(), want["trace"], rtol=1e-9)


# ---- opcheck and bad input -------------------------------------------------------------------

def test_opcheck_taylor_ops(device):
    x = torch.randn(3, 4, 2, 2, device=device)
    g = torch.randn(3, 4, 2, 2, device=device)
    gbar = torch.randn(4, 4, dtype=torch.float64, device=device)
    params = [torch.randn(5, 3, device=device), torch.randn(7, device=device)]
    grads = [torch.randn_like(p) for p in params]
    for op, args in [
        (ops.taylor_channel_stats.default, (x, g, None, True)),
        (ops.taylor_channel_stats.default, (x, g, gbar, False)),
        (ops.taylor_channel_stats.default, (x.flatten(1), g.flatten(1), None, True)),
        (ops.param_scores.default, (params[0], grads[0], 0.5)),
        (ops.global_topk_masks.default, (params, grads, 0.1, 9)),
    ]:
        torch.library.opcheck(op, args)


@pytest.mark.parametrize("bad, error, match", [
    ("shape", ValueError, "'g' must have the shape of 'x'"),
    ("nan_x", ValueError, "NaN or Inf"),
    ("inf_g", ValueError, "NaN or Inf"),
    ("criterion", ValueError, "'criteria' must be one of"),
    ("dtype", TypeError, "'g' must have the dtype"),
    ("one_dim", ValueError, "'x' must be"),
    ("empty", ValueError, "'x' has no samples"),
    ("int_x", TypeError, "'x' must have dtype"),
])
def test_channel_scores_bad_input(bad, error, match):
    x, g, criteria = torch.randn(4, 3, 5), torch.randn(4, 3, 5), pp.CRITERIA
    if bad == "shape":
        g = g[:, :2]
    elif bad == "nan_x":
        x[1, 2, 3] = float("nan")
    elif bad == "inf_g":
        g[0, 0, 0] = float("inf")
    elif bad == "criterion":
        criteria = ["fisher", "taylor"]
    elif bad == "dtype":
        g = g.double()
    elif bad == "one_dim":
        x, g = x[0, 0], g[0, 0]
    elif bad == "empty":
        x, g = x[:0], g[:0]
    elif bad == "int_x":
        x = x.long()
    with pytest.raises(error, match=match):
        pp.channel_scores(x, g, criteria)


def test_other_bad_input():
    with pytest.raises(ValueError, match="'p' must lie in"):
        pp.normalize_scores(torch.rand(3), 0)
    with pytest.raises(ValueError, match="'p' must lie in"):
        pp.normalize_scores(torch.rand(3), -1)
    with pytest.raises(ValueError, match="must be >= 0"):
        pp.normalize_scores(torch.tensor([1.0, -1.0]), 1)
    params, grads = [torch.randn(10)], [torch.randn(10)]
    for sparsity in (1.0, -0.1, 1.5):
        with pytest.raises(ValueError, match="'sparsity' must lie in"):
            pp.global_topk_masks(params, grads, sparsity=sparsity)
    with pytest.raises(ValueError, match="NaN or Inf"):
        pp.global_topk_masks([torch.tensor([1.0, float("nan")])], [torch.ones(2)], sparsity=0.5)
    with pytest.raises(ValueError, match="'grads\\[0\\]' must have the shape"):
        pp.global_topk_masks([torch.randn(4)], [torch.randn(5)], sparsity=0.5)
    with pytest.raises(ValueError, match="'alpha' must lie in"):
        pp.param_scores(torch.randn(3), torch.randn(3), -1.0)
    with pytest.raises(ValueError, match="'keep' must lie in"):
        ops.global_topk_masks([torch.randn(4)], [torch.randn(4)], 0.0, 5)
