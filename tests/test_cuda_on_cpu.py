"""The CUDA kernels (csrc/*/cuda/*.cu) executed on the CPU under CUDA's block and warp rules
(tests/cuda_on_cpu: cudasim), through the launch APIs the torch bindings call, on small, odd and
edge-case inputs, against pyprune_ext.reference: integers bit-identical, floats within 1e-9
relative (float64 accumulation of the same values in another order). Each check runs with one OS
thread and with four (atomics under real concurrency, the fibers in reverse order). A mutation
check plants typical kernel bugs one at a time and shows each is caught.

What this cannot see: data races between non-atomic accesses, the memory model, occupancy and
speed. A real GPU stays the final word (.ci/gpu_check.sh)."""
import os
import shutil
import sys

import numpy as np
import pytest

from pyprune_ext import reference

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "cuda_on_cpu"))
import sim_kernels  # noqa: E402

pytestmark = pytest.mark.skipif(shutil.which(os.environ.get("CXX", "g++")) is None,
                                reason="needs a C++20 compiler to build the kernels for the CPU")

SCHEDULES = {"1 thread": dict(os_threads=1), "4 threads, reverse": dict(os_threads=4, reverse=True)}
RTOL = 1e-9


@pytest.fixture(scope="session")
def clean_build(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("cuda_on_cpu"))
    return out, sim_kernels.build(out)


@pytest.fixture(params=list(SCHEDULES))
def kernels(request, clean_build):
    k = clean_build[1]
    k.configure(**SCHEDULES[request.param])
    yield k
    k.configure()


def rng(seed=0):
    return np.random.default_rng(seed)


# ---------------------------------------------------------------- taylor

def check_taylor(k):
    for dtype in (np.float32, np.float64):
        for shape in ((3, 5, 37), (1, 1, 1), (2, 3, 64), (4, 2, 5, 7), (0, 3, 4), (2, 33, 1)):
            x, g = rng(1).standard_normal(shape).astype(dtype), rng(2).standard_normal(shape).astype(dtype)
            n, c = shape[:2]
            p = int(np.prod(shape[2:]))
            xf, gf = x.reshape(n, c, p).astype(np.float64), g.reshape(n, c, p).astype(np.float64)
            gbar = rng(3).standard_normal((c, xf.shape[2]))
            out = k.channel_stats(x, g, gbar, with_means=True)
            dots = np.einsum("ncp,ncp->nc", xf, gf)
            np.testing.assert_allclose(out["sq"], (xf ** 2).sum((0, 2)), rtol=RTOL, atol=1e-12)
            np.testing.assert_allclose(out["dot"], dots.sum(0), rtol=RTOL, atol=1e-12)
            np.testing.assert_allclose(out["dot2"], (dots ** 2).sum(0), rtol=RTOL, atol=1e-12)
            np.testing.assert_allclose(out["sum_x"], xf.sum(0), rtol=RTOL, atol=1e-12)
            np.testing.assert_allclose(out["sum_g"], gf.sum(0), rtol=RTOL, atol=1e-12)
            np.testing.assert_allclose(out["trace"], (np.einsum("ncp,cp->nc", xf, gbar) ** 2).sum(0), rtol=RTOL,
                                       atol=1e-12)
            if n:   # the criteria of the reference from these sums
                ref = reference.channel_scores(x, g, gbar)
                np.testing.assert_allclose(0.5 * out["dot2"] / n, ref["fisher"], rtol=1e-7, atol=1e-12)
            plain = k.channel_stats(x, g)
            assert not plain["trace"].any() and not plain["sum_x"].any()   # asked for neither


def test_taylor_channel_stats(kernels):
    check_taylor(kernels)


# ---------------------------------------------------------------- sparse

def random_csr(rows, cols, lengths, seed):
    r = rng(seed)
    ptr, idx = [0], []
    for length in lengths:
        idx.extend(sorted(r.choice(cols, size=length, replace=False)))
        ptr.append(len(idx))
    return np.array(ptr, np.int32), np.array(idx, np.int32)


def transpose_csr(ptr, idx, cols):
    rows_of = np.repeat(np.arange(len(ptr) - 1), np.diff(ptr))
    order = np.lexsort((rows_of, idx))
    t_ptr = np.concatenate([[0], np.cumsum(np.bincount(idx, minlength=cols))]).astype(np.int32)
    return t_ptr, rows_of[order].astype(np.int32), order.astype(np.int32)


def check_sparse(k):
    cols = 300
    # unequal rows: empty, one, a warp's worth, more than the 128 staged at a time
    lengths = [0, 1, 7, 32, 33, 200, 0, 129, 5, 300, 2]
    ptr, idx = random_csr(len(lengths), cols, lengths, seed=4)
    for dtype in (np.float32, np.float64):
        values = rng(5).standard_normal(len(idx)).astype(dtype)
        dense = np.zeros((len(lengths), cols))
        dense[np.repeat(np.arange(len(lengths)), lengths), idx] = values
        for batch in (1, 31, 130):
            x = rng(6).standard_normal((batch, cols)).astype(dtype)
            bias = rng(7).standard_normal(len(lengths)).astype(dtype)
            out = k.spmm_rows(ptr, idx, None, values, np.ascontiguousarray(x.T), bias)
            np.testing.assert_allclose(out.T, reference.sparse_linear(x, dense, dense != 0, bias), rtol=1e-5 if dtype == np.float32 else RTOL, atol=1e-4 if dtype == np.float32 else 1e-11)
            # the backward's dx: the transposed structure, values read through its permutation
            t_ptr, t_idx, t_perm = transpose_csr(ptr, idx, cols)
            dy = rng(8).standard_normal((batch, len(lengths))).astype(dtype)
            dx_t = k.spmm_rows(t_ptr, t_idx, t_perm, values, np.ascontiguousarray(dy.T))
            ref_dx, ref_dw, _ = reference.sparse_linear_backward(x, dense, dense != 0, dy)
            tol = dict(rtol=1e-5, atol=1e-4) if dtype == np.float32 else dict(rtol=RTOL, atol=1e-11)
            np.testing.assert_allclose(dx_t.T, ref_dx, **tol)
            dw = k.sddmm_rows(ptr, idx, np.ascontiguousarray(dy.T), np.ascontiguousarray(x.T))
            np.testing.assert_allclose(dw, ref_dw[np.repeat(np.arange(len(lengths)), lengths), idx], **tol)


def test_sparse_spmm_and_sddmm_with_unequal_rows(kernels):
    check_sparse(kernels)


# ---------------------------------------------------------------- information

def fold_joint(transitions, side, history):
    """(x_t, y_t) counts as info_cuda.cpp folds them: transitions over the next bin and the older
    history digits, plus the side counts."""
    if history == 0:
        return side
    n, states, bins, classes = transitions.shape
    return side + transitions.reshape(n, states // bins, bins, bins, classes).sum((1, 3))


def info_case(seed, s, t, n, bins, classes, uniform=True, dtype=np.float64):
    r = rng(seed)
    x = r.standard_normal((s, t, n)).astype(dtype)
    labels = r.integers(0, classes, (s, t))
    if uniform:
        edges = reference.uniform_edges(x.reshape(-1, n), bins)
    else:
        edges = np.sort(r.standard_normal((n, bins + 1)), axis=1)
    return x, labels, np.ascontiguousarray(edges, dtype=np.float64)


def check_info(k, max_shared_bytes=227 * 1024):
    k.lib.sim_set_max_shared_bytes(max_shared_bytes)
    cases = [dict(seed=1, s=3, t=11, n=5, bins=4, classes=3), dict(seed=2, s=7, t=6, n=33, bins=3, classes=2),
             dict(seed=3, s=1, t=2, n=1, bins=2, classes=1), dict(seed=4, s=5, t=9, n=70, bins=5, classes=4, uniform=False),
             dict(seed=5, s=4, t=8, n=3, bins=8, classes=3, dtype=np.float32)]
    for case in cases:
        x, labels, edges = info_case(**case)
        uniform, classes, bins = case.get("uniform", True), case["classes"], case["bins"]
        for history in (0, 1, 2):
            if history >= x.shape[1]:
                continue
            transitions, side, flags = k.info_counts(x, labels, edges, uniform, classes, history)
            joint = fold_joint(transitions, side, history)
            ref_joint, ref_transitions = reference.info_counts(x, labels, classes, edges, uniform, history)
            assert not flags.any()
            np.testing.assert_array_equal(joint, ref_joint)
            np.testing.assert_array_equal(transitions, ref_transitions)
            h, mi, te = k.info_scores(np.ascontiguousarray(joint), np.ascontiguousarray(transitions), history,
                                      1 / np.log(2.0))
            ref_h, ref_mi, ref_te = reference.information_scores(x, labels, classes, bins=bins, history=history or 1,
                                                                 edges=edges, uniform=uniform)
            np.testing.assert_allclose(h, ref_h, rtol=RTOL, atol=1e-12)
            np.testing.assert_allclose(mi, ref_mi, rtol=RTOL, atol=1e-12)
            if history == 1:
                np.testing.assert_allclose(te, ref_te, rtol=RTOL, atol=1e-12)
                local = k.info_local_te(x, labels, edges, uniform, classes, 1, np.ascontiguousarray(transitions),
                                        1 / np.log(2.0))
                ref_local = reference.local_transfer_entropy(x, labels, classes, bins=bins, edges=edges, uniform=uniform)
                np.testing.assert_allclose(local, ref_local, rtol=1e-6 if x.dtype == np.float32 else RTOL, atol=1e-6)
        # per-sequence labels (step stride 0), no labels, and a permutation of the sequences' labels
        per_seq = np.ascontiguousarray(labels[:, 0])
        t1, s1, _ = k.info_counts(x, per_seq, edges, uniform, classes, 1)
        r_joint, r_trans = reference.info_counts(x, per_seq, classes, edges, uniform, 1)
        np.testing.assert_array_equal(fold_joint(t1, s1, 1), r_joint)
        t0, s0, _ = k.info_counts(x, None, edges, uniform, 1, 1)
        np.testing.assert_array_equal(fold_joint(t0, s0, 1), reference.info_counts(x, None, 1, edges, uniform, 1)[0])
        perm = rng(9).permutation(x.shape[0]).astype(np.int64)
        tp, sp, _ = k.info_counts(x, labels, edges, uniform, classes, 1, perm=perm)
        rp_joint, rp_trans = reference.info_counts(x, labels[perm], classes, edges, uniform, 1)
        np.testing.assert_array_equal(tp, rp_trans)
        np.testing.assert_array_equal(fold_joint(tp, sp, 1), rp_joint)
        # the permutation null's path: x binned once into codes, the codes counted with unit edges
        codes, flags = k.info_bin_codes(x, edges, uniform)
        assert not flags.any()
        np.testing.assert_array_equal(codes, reference.bin_values(x, edges, uniform))
        unit_edges = np.ascontiguousarray(np.broadcast_to(np.arange(bins + 1.0), (x.shape[2], bins + 1)))
        tc, sc, flags = k.info_counts(codes, labels, unit_edges, True, classes, 1, perm=perm)
        assert not flags.any()
        np.testing.assert_array_equal(tc, rp_trans)
        np.testing.assert_array_equal(fold_joint(tc, sc, 1), rp_joint)
    # bad input is flagged, not miscounted into another cell
    x, labels, edges = info_case(seed=6, s=2, t=5, n=4, bins=3, classes=2)
    x[1, 2, 3] = np.nan
    assert k.info_counts(x, labels, edges, True, 2, 1)[2].tolist() == [1, 0]
    assert k.info_bin_codes(x, edges, True)[1].tolist() == [1]
    x, labels, edges = info_case(seed=6, s=2, t=5, n=4, bins=3, classes=2)
    labels[0, 4] = 2
    assert k.info_counts(x, labels, edges, True, 2, 1)[2].tolist() == [0, 1]


def test_info_counts_scores_and_local_te_shared_memory_path(kernels):
    check_info(kernels)


def test_info_counts_few_lanes_per_block(kernels):
    check_info(kernels, max_shared_bytes=2000)   # a few neurons' histograms fit: blocks of 2-32 lanes


def test_info_counts_global_memory_path(kernels):
    check_info(kernels, max_shared_bytes=64)   # no neuron's histograms fit: counted in global memory


# ---------------------------------------------------------------- regions

def check_regions(k, shapes=((6, 28, 28), (3, 5, 7), (2, 1, 1), (2, 1, 9), (2, 130, 131))):
    for shape in shapes:
        for density in (0.3, 0.55, 0.9):
            mask = rng(int(density * 10) + shape[1]).random(shape) < density
            weights = rng(11).standard_normal(shape)
            for connectivity in (4, 8):
                labels, counts = k.label_regions(np.ascontiguousarray(mask), connectivity == 8)
                ref_labels, ref_counts = reference.label_regions(mask, connectivity)
                np.testing.assert_array_equal(labels, ref_labels)
                np.testing.assert_array_equal(counts, ref_counts)
                for dtype in (np.float32, np.float64):
                    w = weights.astype(dtype)
                    sizes, sums = k.region_sums(labels, w, counts)
                    ref_sizes, ref_sums, _ = reference.region_stats(mask, w, connectivity)
                    np.testing.assert_array_equal(sizes, ref_sizes)
                    np.testing.assert_allclose(sums, ref_sums, rtol=RTOL, atol=1e-12)


def test_regions_small_masks_one_block_each(kernels):
    check_regions(kernels, shapes=((6, 28, 28), (3, 5, 7), (2, 1, 1), (2, 1, 9)))


def test_regions_large_masks_grid_wide_path(kernels):
    check_regions(kernels, shapes=((2, 130, 131),))   # > 128 x 128 pixels: the device-wide scan


# ---------------------------------------------------------------- topk

def check_topk(k):
    for dtype in (np.float32, np.float64):
        for n in (1, 7, 2048, 5001):
            theta = rng(n).standard_normal(n).astype(dtype)
            grad = rng(n + 1).standard_normal(n).astype(dtype)
            np.testing.assert_allclose(k.param_scores(theta, grad, 0.5), reference.param_scores(theta, grad, 0.5),
                                       rtol=1e-6 if dtype == np.float32 else 1e-15)
            tied = np.round(theta * 2) / 2   # few distinct values: ties straddle the threshold, across blocks
            for t, g in ((theta, grad), (tied, np.zeros_like(tied))):
                for keep in (0, 1, n // 3, n - 1, n):
                    mask, bad = k.topk_mask(t, g, 0.5, keep)
                    ref = reference.global_topk_masks([t], [g], 1 - keep / n, 0.5)[0]
                    assert not bad and int(mask.sum()) == keep
                    np.testing.assert_array_equal(mask, ref)
    theta = rng(3).standard_normal(100)
    theta[57] = np.inf
    assert k.topk_mask(theta, np.zeros(100), 0.5, 10)[1]
    assert k.topk_mask(theta, np.zeros(100), 0.5, 0)[1]     # found even when nothing is kept


def test_topk_scores_and_masks_with_ties(kernels):
    check_topk(kernels)


# ---------------------------------------------------------------- the harness's own rules

def test_empty_launches_are_no_ops(kernels):
    out = kernels.channel_stats(np.zeros((0, 0, 3)), np.zeros((0, 0, 3)), with_means=True)
    assert out["sq"].shape == (0,)
    labels, counts = kernels.label_regions(np.zeros((0, 4, 4), dtype=bool), False)
    assert counts.shape == (0,)


def test_harness_reports_broken_rules_and_keeps_divergent_warps_apart(kernels):
    import ctypes
    run = kernels.lib.selftest_launch
    run.argtypes = [ctypes.c_int] + [ctypes.c_void_p] * 5
    out = np.zeros(128, dtype=np.int32)
    assert run(0, sim_kernels.ptr(out), None, None, None, None) == 1   # a barrier one thread never reaches
    assert run(1, sim_kernels.ptr(out), None, None, None, None) == 1   # a shuffle naming an exited lane
    out[:] = 0
    assert run(2, sim_kernels.ptr(out), None, None, None, None) == 0
    lane_sum = sum(range(32))
    assert out[:4].tolist() == [sum(lane_sum + 32 * r for r in range(w + 1)) for w in range(4)]
    counter, olds = np.zeros(1, np.int32), np.zeros(1024, np.int32)
    wide, real, low = np.zeros(1, np.uint64), np.zeros(1), np.full(1, 10 ** 6, np.int32)
    assert run(3, *map(sim_kernels.ptr, (counter, olds, wide, real, low))) == 0
    assert counter[0] == 1024 and sorted(olds.tolist()) == list(range(1024))   # atomics return the old value
    assert wide[0] == 1024 and real[0] == 512.0 and low[0] == 1000 - 1023


# A planted bug, the check that must catch it: off-by-one bounds, missing barriers, a wrong
# shuffle width, a wrong neighbour.
MUTATIONS = {
    "bound off by one (taylor positions)": ("taylor_kernels.cu", "s/p < s.positions; p += 32/p + 1 < s.positions; p += 32/", check_taylor),
    "shuffle width 16 instead of 32 (taylor warp sum)": ("taylor_kernels.cu", "s/int offset = 16/int offset = 8/", check_taylor),
    "missing __syncthreads after staging (spmm)": ("sparse_kernels.cu", "/vals\\[k\\] = values/,/if (b < batch)/ s/__syncthreads();//", check_sparse),
    "bound off by one (sddmm batch)": ("sparse_kernels.cu", "s/b < batch; b += 32/b + 1 < batch; b += 32/", check_sparse),
    "missing __syncthreads after zeroing (topk histogram)": ("topk_kernels.cu", "0,/__syncthreads();/ s/__syncthreads();//", check_topk),
    "missing __syncthreads before the flush (info counts)": ("info_kernels.cu", "/if (bad_label) atomicOr/,/for (int64_t i = threadIdx.x; i < lanes \\* cells/ s/__syncthreads();//", check_info),
    "left neighbour off by one (regions)": ("regions_kernels.cu", "s/if (c > 0 \\&\\& m\\[p - 1\\])/if (c > 1 \\&\\& m[p - 1])/", check_regions),
}


@pytest.mark.parametrize("name", list(MUTATIONS))
def test_planted_bug_is_caught(name, clean_build, tmp_path):
    file, expression, check = MUTATIONS[name]
    mutant = sim_kernels.build(str(tmp_path), mutate=f"{file}:{expression}", reuse=clean_build[0])
    caught = 0
    for schedule in SCHEDULES.values():
        mutant.configure(**schedule)
        try:
            check(mutant)
        except (AssertionError, sim_kernels.KernelError):
            caught += 1
    assert caught, f"the planted bug '{name}' went unnoticed"
