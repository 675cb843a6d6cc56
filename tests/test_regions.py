"""Connected regions: labels against scipy.ndimage.label (numbered in raster order), statistics
against NumPy, region pruning, opcheck and bad input."""
import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import pyprune_ext as pp
from pyprune_ext import ops
from pyprune_ext import reference as ref

from conftest import DEVICES

# every test of this module runs once per CPU kernel capability this machine supports
pytestmark = pytest.mark.usefixtures("each_cpu_capability")


def spiral(n):
    m = np.zeros((n, n), dtype=bool)
    top, left, bottom, right = 0, 0, n - 1, n - 1
    while top <= bottom and left <= right:
        m[top, left:right + 1] = True
        m[top:bottom + 1, right] = True
        m[bottom, left:right + 1] = True
        m[top + 2:bottom + 1, left] = True
        top, left, bottom, right = top + 2, left + 2, bottom - 2, right - 2
    return m


def u_shapes(h, w):
    # many Us whose arms only join at the very bottom row: merges happen late
    m = np.zeros((h, w), dtype=bool)
    m[:, ::2] = True
    m[-1, :] = True
    m[-1, 3::4] = False
    return m


def across_words():
    # the CPU kernel packs rows into 64-pixel words: strokes and runs crossing columns 63|64 and
    # 127|128, touching straight or only diagonally across the word boundary
    m = np.zeros((8, 140), dtype=bool)
    for edge in (64, 128):
        for r in range(4):
            m[r, edge - 3 + r] = m[r, edge + 2 - r] = True
        m[5, edge - 1] = m[6, edge] = True
        m[4, edge - 5:edge + 5] = True
    m[7, :] = True
    m[7, 64] = False
    return m[None]


SPECIAL = {
    "all_true": np.ones((3, 28, 28), dtype=bool),
    "all_false": np.zeros((3, 28, 28), dtype=bool),
    "checkerboard": (np.indices((28, 28)).sum(0) % 2 == 0)[None].repeat(2, 0),
    "spiral": spiral(40)[None],
    "u_shapes": u_shapes(30, 77)[None],
    "wide_u": u_shapes(5, 200)[None],
    "one_pixel": np.ones((4, 1, 1), dtype=bool),
    "diagonal": np.eye(64, dtype=bool)[None],
    "across_words": across_words(),
}


@pytest.mark.parametrize("name", sorted(SPECIAL))
@pytest.mark.parametrize("connectivity", [4, 8])
def test_special_masks_match_scipy(name, connectivity, device):
    mask = SPECIAL[name]
    labels, counts = pp.label_regions(torch.from_numpy(mask).to(device), connectivity)
    want_labels, want_counts = ref.label_regions(mask, connectivity)
    np.testing.assert_array_equal(labels.cpu().numpy(), want_labels)
    np.testing.assert_array_equal(counts.cpu().numpy(), want_counts)


# (130, 150) is past the CUDA kernel's one-block-per-mask size: the grid-wide path
@given(st.sampled_from([(1, 1), (1, 40), (40, 1), (28, 28), (30, 7), (20, 21), (13, 64), (9, 65), (50, 130), (5, 129),
                        (130, 150)]),
       st.integers(1, 5), st.sampled_from([0.05, 0.3, 0.5, 0.6, 0.9]), st.sampled_from([4, 8]),
       st.integers(0, 2**31 - 1))
def test_random_masks_match_scipy_and_stats_match_numpy(hw, k, density, connectivity, seed):
    gen = torch.Generator().manual_seed(seed)
    mask = torch.rand(k, *hw, generator=gen) < density
    weights = torch.randn(k, *hw, generator=gen, dtype=torch.float64)
    want_labels, want_counts = ref.label_regions(mask.numpy(), connectivity)
    sizes, sums, means = ref.region_stats(mask.numpy(), weights.numpy(), connectivity)
    for device in DEVICES:
        got = pp.region_stats(mask.to(device), weights.to(device), connectivity)
        np.testing.assert_array_equal(got.labels.cpu().numpy(), want_labels)
        np.testing.assert_array_equal(got.counts.cpu().numpy(), want_counts)
        np.testing.assert_array_equal(got.sizes.cpu().numpy(), sizes)
        np.testing.assert_allclose(got.sum_abs.cpu().numpy(), sums, rtol=1e-12)
        np.testing.assert_allclose(got.mean_abs.cpu().numpy(), means, rtol=1e-12)
        assert got.offsets[-1].item() == len(sizes)


@pytest.mark.parametrize("connectivity", [4, 8])
def test_large_masks_match_scipy(connectivity, device):
    gen = torch.Generator().manual_seed(1)
    mask = torch.rand(2, 700, 900, generator=gen) < torch.tensor([0.55, 0.3]).view(2, 1, 1)
    labels, counts = pp.label_regions(mask.to(device), connectivity)
    want_labels, want_counts = ref.label_regions(mask.numpy(), connectivity)
    np.testing.assert_array_equal(labels.cpu().numpy(), want_labels)
    np.testing.assert_array_equal(counts.cpu().numpy(), want_counts)
    # many regions; at 8-connectivity the 55% mask has fewer, some spanning the whole mask
    assert (counts > (1000 if connectivity == 4 else 900)).all()


def test_numbering_is_raster_order_by_hand():
    mask = torch.tensor([[[0, 0, 1, 0],
                          [1, 0, 1, 0],
                          [1, 0, 0, 1],
                          [0, 1, 1, 1]]], dtype=torch.bool)
    labels, counts = pp.label_regions(mask, 4)
    assert labels[0].tolist() == [[0, 0, 1, 0], [2, 0, 1, 0], [2, 0, 0, 3], [0, 3, 3, 3]]
    labels8, counts8 = pp.label_regions(mask, 8)
    # diagonals (1,2)-(2,3) and (2,0)-(3,1) join all three 4-regions into one
    assert counts8.item() == 1 and torch.equal(labels8, mask.int())


@pytest.mark.parametrize("shape", [(40, 28, 28), (40, 9, 70)])  # the 28x28 kernel and the general one
def test_results_identical_for_any_thread_count(shape):
    # one thread hands its records over as the outputs, several concatenate theirs
    gen = torch.Generator().manual_seed(11)
    mask = torch.rand(*shape, generator=gen) < 0.5
    weights = torch.randn(*shape, generator=gen, dtype=torch.float64)
    previous = torch.get_num_threads()
    try:
        results = []
        for threads in (1, 2, 3):
            torch.set_num_threads(threads)
            results.append(ops.label_regions(mask, weights, 8))
    finally:
        torch.set_num_threads(previous)
    for other in results[1:]:
        for a, b in zip(results[0], other):
            assert torch.equal(a, b)


# ---- region pruning ---------------------------------------------------------------------------

def test_prune_regions_removes_exactly_the_weakest():
    gen = torch.Generator().manual_seed(3)
    mask = torch.rand(20, 28, 28, generator=gen) < 0.4
    weights = torch.randn(20, 28, 28, generator=gen)
    stats = pp.region_stats(mask, weights)
    new = pp.prune_regions(mask, weights, 0.4)
    total = stats.sizes.numel()
    removed_regions = int(round(0.4 * total))
    threshold = stats.mean_abs.sort().values[removed_regions - 1]
    # every removed pixel belonged to a region at or below the threshold, every kept one above it
    flat = stats.labels.long() + stats.offsets[:-1].view(-1, 1, 1) - 1
    removed = mask & ~new
    assert (stats.mean_abs[flat[removed]] <= threshold).all()
    assert (stats.mean_abs[flat[new]] >= threshold).all()
    after = pp.region_stats(new, weights)
    assert after.sizes.numel() == total - removed_regions  # removing regions never merges others
    assert not (new & ~mask).any()


def test_prune_regions_ratio_bounds_ties_and_by_weights():
    mask = torch.zeros(2, 3, 5, dtype=torch.bool)
    mask[:, 0, ::2] = True                    # three single-pixel regions per mask
    weights = torch.ones(2, 3, 5)             # all tied
    assert torch.equal(pp.prune_regions(mask, weights, 0.0), mask)
    assert not pp.prune_regions(mask, weights, 1.0).any()
    half = pp.prune_regions(mask, weights, 0.5)  # 3 of 6 tied regions: the first three in order
    assert half[0].sum() == 0 and torch.equal(half[1], mask[1])
    weights[0, 0, 0] = 0.1                    # the weakest region holds 1 of 6 pixels
    by_weight = pp.prune_regions(mask, weights, 1 / 6, by="weights")
    assert not by_weight[0, 0, 0] and by_weight.sum() == 5


# ---- opcheck and bad input ---------------------------------------------------------------------

def test_opcheck(device):
    mask = (torch.rand(3, 6, 7) < 0.5).to(device)
    weights = torch.randn(3, 6, 7, device=device)
    torch.library.opcheck(ops.label_regions.default, (mask, weights, 4))
    torch.library.opcheck(ops.label_regions.default, (mask, None, 8))


@pytest.mark.parametrize("bad, error, match", [
    ("float_mask", TypeError, "'mask' must have dtype bool"),
    ("two_d", ValueError, "'mask' must be 3-D"),
    ("shape", ValueError, "'weights' must have the shape of 'mask'"),
    ("connectivity", ValueError, "'connectivity' must be 4 or 8"),
    ("ratio", ValueError, "'ratio' must lie in"),
    ("by", ValueError, "'by' must be one of"),
    ("nan", ValueError, "'weights' contains NaN"),
])
def test_bad_input(bad, error, match):
    mask, weights = torch.ones(2, 4, 4, dtype=torch.bool), torch.randn(2, 4, 4)
    with pytest.raises(error, match=match):
        if bad == "float_mask":
            pp.label_regions(mask.float())
        elif bad == "two_d":
            pp.label_regions(mask[0])
        elif bad == "shape":
            pp.region_stats(mask, weights[:, :3])
        elif bad == "connectivity":
            pp.label_regions(mask, 6)
        elif bad == "ratio":
            pp.prune_regions(mask, weights, 1.5)
        elif bad == "by":
            pp.prune_regions(mask, weights, 0.5, by="pixels")
        elif bad == "nan":
            weights[0, 0, 0] = float("nan")
            pp.region_stats(mask, weights)


def test_weights_checked_only_under_the_mask_and_huge_finite_sums_pass():
    mask = torch.tensor([[[1, 0, 1]]], dtype=torch.bool)
    weights = torch.tensor([[[1.5e308, float("nan"), -1.5e308]]], dtype=torch.float64)
    stats = pp.region_stats(mask, weights)  # NaN off the mask; the sums' total overflows
    assert stats.sum_abs.tolist() == [1.5e308, 1.5e308]
