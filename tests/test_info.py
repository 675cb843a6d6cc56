"""Information ops: exact answers, random cases against the NumPy reference, streaming, the
permutation test, opcheck, thread invariance and bad input."""
import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

import pyprune_ext as pp
from pyprune_ext import ops
from pyprune_ext import reference as ref

from conftest import DEVICES

# every test of this module runs once per CPU kernel capability this machine supports
pytestmark = pytest.mark.usefixtures("each_cpu_capability")

LOG2 = math.log(2)


def uniform_ints(shape, high, seed):
    return torch.randint(0, high, shape, generator=torch.Generator().manual_seed(seed))


# ---- exact answers ---------------------------------------------------------------------------

def test_copy_of_uniform_source_has_te_log2_b(device):
    b, s, t = 4, 4000, 20
    y = uniform_ints((s, t), b, 0)
    x = torch.zeros(s, t, 1)
    x[:, 1:, 0] = y[:, :-1].float()  # x_{t+1} = y_t
    x[:, 0, 0] = uniform_ints((s,), b, 1).float()
    scores = pp.information_scores(x.to(device), y.to(device), b, bins=b)
    assert scores.transfer_entropy.item() == pytest.approx(math.log2(b), abs=0.01)


def test_sum_mod_b_has_te_log2_k_and_no_mi(device):
    b, s, t = 5, 3000, 30
    y = uniform_ints((s, t), b, 2)
    x = torch.zeros(s, t, dtype=torch.long)
    x[:, 0] = uniform_ints((s,), b, 3)
    for i in range(1, t):
        x[:, i] = (x[:, i - 1] + y[:, i - 1]) % b
    scores = pp.information_scores(x.double().unsqueeze(2).to(device), y.to(device), b, bins=b)
    assert scores.transfer_entropy.item() == pytest.approx(math.log2(b), abs=0.01)
    assert scores.mutual_information.item() < 0.01
    assert scores.entropy.item() == pytest.approx(math.log2(b), abs=0.01)


def test_constant_neuron_scores_zero(device):
    x = torch.randn(50, 12, 3)
    x[:, :, 1] = 0.25
    y = uniform_ints((50, 12), 3, 4)
    scores = pp.information_scores(x.to(device), y.to(device), 3, miller_madow=False)
    for field in scores:
        assert field[1].item() == 0.0


def test_independent_data_stay_under_chi_square_bound():
    # 2 n ln2 * MI ~ chi2((B-1)(K-1)) under independence; TE likewise with states*(B-1)(K-1).
    b, k, s, t, n = 6, 4, 400, 25, 32
    x = torch.rand(s, t, n, generator=torch.Generator().manual_seed(5))
    y = uniform_ints((s, t), k, 6)
    scores = pp.information_scores(x, y, k, bins=b)
    mi_bound = stats.chi2.ppf(1 - 1e-4, (b - 1) * (k - 1)) / (2 * s * t * LOG2)
    te_bound = stats.chi2.ppf(1 - 1e-4, b * (b - 1) * (k - 1)) / (2 * s * (t - 1) * LOG2)
    assert (scores.mutual_information < mi_bound).all()
    assert (scores.transfer_entropy < te_bound).all()
    assert (scores.transfer_entropy > 0).all()  # the plug-in bias is there, but bounded


def test_transitions_never_cross_sequence_boundaries(device):
    # Sequence s holds x = label of sequence s-1 throughout: inside a sequence x never changes, so
    # TE is exactly 0; concatenated, the boundary steps would make x_{t+1} depend on y_t.
    s, t, k = 300, 10, 4
    y = uniform_ints((s,), k, 7)
    x = torch.roll(y, 1).float()[:, None, None].expand(s, t, 1).contiguous()
    scores = pp.information_scores(x.to(device), y.to(device), k, bins=k)
    assert scores.transfer_entropy.item() == 0.0
    concatenated = pp.information_scores(x.reshape(1, s * t, 1).to(device),
                                         y.repeat_interleave(t).reshape(1, -1).to(device), k, bins=k)
    assert concatenated.transfer_entropy.item() > 0.01


def test_nats_and_bits_differ_by_ln2():
    x, y = torch.randn(40, 15, 4), uniform_ints((40, 15), 3, 8)
    bits = pp.information_scores(x, y, 3)
    nats = pp.information_scores(x, y, 3, base=math.e)
    for a, b in zip(bits, nats):
        torch.testing.assert_close(a * LOG2, b)


# ---- random cases against the reference ------------------------------------------------------

@st.composite
def info_cases(draw):
    history = draw(st.integers(1, 3))
    s = draw(st.integers(1, 12))
    t = draw(st.integers(history + 1, 12))
    n = draw(st.sampled_from([1, 2, 3, 7, 16, 65]))
    bins = draw(st.integers(2, 6))
    k = draw(st.integers(1, 5))
    dtype = draw(st.sampled_from([torch.float32, torch.float64]))
    per_sequence = draw(st.booleans())
    binning = draw(st.sampled_from(["uniform", "quantile", "edges"]))
    layout = draw(st.sampled_from(["contiguous", "transposed", "strided"]))
    seed = draw(st.integers(0, 2**31 - 1))
    return s, t, n, bins, k, history, dtype, per_sequence, binning, layout, seed


def make_case(case):
    s, t, n, bins, k, history, dtype, per_sequence, binning, layout, seed = case
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(s, t, n, generator=g, dtype=torch.float64).to(dtype)
    if seed % 3 == 0:
        x = x.round()  # many ties on bin edges
    if layout == "transposed":
        x = x.transpose(0, 1).contiguous().transpose(0, 1)
    elif layout == "strided":
        x = torch.cat([x, x], dim=2)[:, :, ::2]
    y = torch.randint(0, k, (s,) if per_sequence else (s, t), generator=g)
    edges = None
    if binning == "edges":
        edges = torch.sort(torch.randn(n, bins + 1, generator=g, dtype=torch.float64), dim=1).values
    return x, y, edges


@given(info_cases())
def test_information_scores_match_reference(case):
    s, t, n, bins, k, history, dtype, per_sequence, binning, layout, seed = case
    x, y, edges = make_case(case)
    kwargs = dict(bins=bins, history=history)
    if binning == "edges":
        kwargs["edges"] = edges
    elif binning == "quantile":
        kwargs["binning"] = "quantile"
    for device in DEVICES:
        got = pp.information_scores(x.to(device), y.to(device), k, miller_madow=seed % 2 == 1, **kwargs)
        used_edges = edges if edges is not None else pp.bin_edges(x, bins, kwargs.get("binning", "uniform"))
        want = ref.information_scores(x.numpy(), y.numpy(), k, history=history,
                                      miller_madow=seed % 2 == 1, edges=used_edges.numpy(),
                                      uniform=binning == "uniform")
        tol = dict(rtol=1e-5, atol=1e-6) if dtype == torch.float32 else dict(rtol=1e-9, atol=1e-11)
        for g, w in zip(got, want):
            np.testing.assert_allclose(g.cpu().double().numpy(), w, **tol)
            assert g.dtype == dtype and g.device.type == device


@given(info_cases())
def test_local_te_matches_reference_and_averages_to_te(case):
    s, t, n, bins, k, history, dtype, per_sequence, binning, layout, seed = case
    x, y, _ = make_case(case)
    for device in DEVICES:
        local = pp.transfer_entropy(x.to(device), y.to(device), k, bins=bins, history=history,
                                    local=True)
        want = ref.local_transfer_entropy(x.numpy(), y.numpy(), k, bins=bins, history=history)
        tol = 1e-5 if dtype == torch.float32 else 1e-10
        np.testing.assert_allclose(local.cpu().double().numpy(), want, rtol=tol, atol=tol)
        te = pp.transfer_entropy(x.to(device), y.to(device), k, bins=bins, history=history)
        np.testing.assert_allclose(local.double().mean(dim=(0, 1)).cpu().numpy(),
                                   te.cpu().double().numpy(), rtol=tol, atol=tol)


@pytest.mark.parametrize("s, t, n, bins, k, history", [
    (30, 40, 50, 16, 10, 1),  # neuron blocks of 16 and a last block of 2; full cell tiles
    (200, 50, 13, 5, 3, 2),   # 8 + 5 lanes; many tiles; each block's sequences split over tasks
    (600, 20, 50, 16, 10, 1),  # blocks of 16 whose sequences are split over tasks
    (10, 30, 3, 17, 2, 3),    # 17^4 * 2 cells per neuron: uint32 cell indices
])
def test_counts_match_reference_exactly(device, s, t, n, bins, k, history):
    g = torch.Generator().manual_seed(s * n)
    x = torch.randn(s, t, n, generator=g)
    y = torch.randint(0, k, (s, t), generator=g)
    edges = pp.bin_edges(x, bins)
    joint, transitions = ops.info_counts(x.to(device), y.to(device), edges.to(device), True, k,
                                         history)
    want_joint, want = ref.info_counts(x.numpy(), y.numpy(), k, edges.numpy(), True, history)
    np.testing.assert_array_equal(joint.cpu().numpy(), want_joint)
    np.testing.assert_array_equal(transitions.cpu().numpy(), want)


def assert_bins_as_in_float64(x, edges, device):
    """The op's per-neuron bin counts of float32 ``x`` ``[..., N]`` with equal-width ``edges``
    (one class, no history) on ``device`` equal the float64 reference's; returns them."""
    neurons, bins = x.shape[-1], edges.shape[1] - 1
    rows = x.reshape(-1, 1, neurons)
    joint, _ = ops.info_counts(rows.to(device), None, edges.to(device), True, 1, 0)
    codes = ref.bin_values(rows.numpy(), edges.numpy(), True).reshape(-1, neurons)
    want = np.stack([np.bincount(codes[:, n], minlength=bins) for n in range(neurons)])
    np.testing.assert_array_equal(joint[:, :, 0].cpu().numpy(), want)
    return want


def test_float32_values_near_bin_edges_bin_as_in_float64(device):
    # Range [0, 1], 10 bins: 0.7f is 0.69999998..., bin 6 in float64 but 7 if binned in float32
    # arithmetic, where (0.7f - 0) * 10 rounds up to 7.0. The CPU kernel bins float32 in float
    # and must redo such rows in double.
    values = torch.arange(11, dtype=torch.float64) / 10
    x = values.repeat(3, 40).reshape(4, 33, 10).to(torch.float32)  # every value in every neuron
    x[0, 0] = 0.0
    x[0, 1] = 1.0
    want = assert_bins_as_in_float64(x, pp.bin_edges(x, 10), device)
    assert want[:, 6].sum() > want[:, 7].sum()  # 0.7f and 0.6f both fall in bin 6


@pytest.mark.parametrize("bins", [2, 7, 16, 64, 1000])
@pytest.mark.parametrize("low, high, neurons", [
    (-3.0, 5.0, 1), (0.0008106823, 0.9341677, 17), (-0.05775291, 10.748868, 40),
    (4.1908183, 4.1929812, 17), (-1.2331408, -1.2307254, 33)])
def test_float32_next_to_every_edge_and_outside_the_range_bin_as_in_float64(low, high, neurons,
                                                                            bins, device):
    # Fixed equal-width edges (an accumulator's): values on every edge and one float32 step either
    # side, values far outside the range and huge ones; odd widths leave a partial last vector.
    # The ranges are ones where float32 arithmetic bins some of these values on the wrong side
    # of an edge, in either direction.
    rng = np.random.default_rng(bins + neurons)
    low, high = np.float32(low), np.float32(high)
    on_edges = (low + (high - low) * rng.integers(0, bins + 1, size=(200, neurons)) / bins)
    on_edges = on_edges.astype(np.float32)
    x = np.concatenate([
        on_edges,
        np.nextafter(on_edges, np.float32(np.inf)),
        np.nextafter(on_edges, np.float32(-np.inf)),
        (low + (high - low) * rng.uniform(-3, 4, size=(60, neurons))).astype(np.float32),
        (rng.normal(size=(4, neurons)) * 1e30).astype(np.float32),
    ])
    rng.shuffle(x)
    acc = pp.InfoAccumulator.from_range(torch.full((neurons,), float(low)),
                                        torch.full((neurons,), float(high)), bins, 1, history=0)
    assert_bins_as_in_float64(torch.from_numpy(x), acc.edges, device)


def test_two_dimensional_input_gives_entropy_and_mi(device):
    x = torch.randn(500, 9, dtype=torch.float64)
    y = uniform_ints((500,), 4, 9)
    x[:, 0] += y  # one informative neuron
    mi = pp.mutual_information(x.to(device), y.to(device), 4)
    h, want_mi, te = ref.information_scores(x.numpy(), y.numpy(), 4, history=0)
    np.testing.assert_allclose(mi.cpu().numpy(), want_mi, rtol=1e-10)
    np.testing.assert_allclose(pp.entropy(x.to(device)).cpu().numpy(), h, rtol=1e-10)
    assert mi.argmax().item() == 0 and te is None


def test_quantile_edges_match_numpy():
    x = torch.randn(1000, 5, dtype=torch.float64)
    edges = pp.bin_edges(x, 7, "quantile")
    want = np.quantile(x.numpy(), np.linspace(0, 1, 8), axis=0).T
    np.testing.assert_allclose(edges.numpy(), want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("sequences", [37, 400])  # 400: the sequences are split over tasks
def test_results_identical_for_any_thread_count(sequences):
    x = torch.randn(sequences, 29, 21)
    y = uniform_ints((sequences, 29), 5, 10)
    perms = torch.stack([torch.randperm(sequences, generator=torch.Generator().manual_seed(i))
                         for i in range(3)])
    previous = torch.get_num_threads()
    try:
        results = []
        for threads in (1, 2, 3):
            torch.set_num_threads(threads)
            counts = ops.info_counts(x, y, pp.bin_edges(x, 6), True, 5, 2)
            added = tuple(torch.ones_like(c) for c in counts)
            ops.info_counts_add_(*added, x, y, pp.bin_edges(x, 6), True, 2)
            codes = ops.info_bin_codes(x, pp.bin_edges(x, 6), True)
            null = ops.info_permutation_null(codes, y, 6, 5, 1, perms, 2.0, False)
            results.append(counts + added + (codes,) + null)
    finally:
        torch.set_num_threads(previous)
    for other in results[1:]:
        for a, b in zip(results[0], other):
            assert torch.equal(a, b)


# ---- streaming ---------------------------------------------------------------------------------

def test_accumulator_in_batches_equals_one_call(device):
    x = torch.randn(60, 14, 10, device=device)
    y = torch.randint(0, 4, (60, 14), device=device)
    edges = pp.bin_edges(x, 5)
    acc = pp.InfoAccumulator(edges, 4, history=2, equal_width=True)
    for chunk in range(0, 60, 17):
        acc.update(x[chunk:chunk + 17], y[chunk:chunk + 17])
    whole = pp.information_scores(x, y, 4, bins=5, history=2)
    got = acc.finalize(dtype=torch.float32)
    for a, b in zip(got, whole):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("history", [0, 2])
def test_counts_add_adds_to_the_counts_in_place(device, history):
    x = torch.randn(40, 9, 6, device=device)
    y = torch.randint(0, 3, (40, 9), device=device)
    edges = pp.bin_edges(x, 4)
    want = ops.info_counts(x, y, edges, True, 3, history)
    start = [torch.randint(0, 1000, c.shape, device=device) for c in want]
    joint, transitions = (c.clone() for c in start)
    ops.info_counts_add_(joint, transitions, x, y, edges, True, history)
    assert torch.equal(joint, start[0] + want[0])
    assert torch.equal(transitions, start[1] + want[1])
    ops.info_counts_add_(joint, transitions, x, y, edges, True, history)
    assert torch.equal(transitions, start[1] + 2 * want[1])


@pytest.mark.parametrize("bad, error, match", [
    ("int32", TypeError, "'joint_counts' must be Long"),
    ("shape", ValueError, r"'transition_counts' must be \[N, B\^history, B, K\] = \[3, 4, 4, 3\]"),
    ("neurons", ValueError, r"'joint_counts' must be \[N, B, K\] = \[3, 4, K\]"),
    ("strided", ValueError, "'transition_counts' must be contiguous"),
])
def test_counts_add_rejects_bad_count_tensors(bad, error, match):
    x, y = torch.randn(4, 6, 3), torch.randint(0, 3, (4, 6))
    edges = pp.bin_edges(x, 4)
    joint, transitions = ops.info_counts(x, y, edges, True, 3, 1)
    if bad == "int32":
        joint = joint.int()
    elif bad == "shape":
        transitions = transitions[:, :2].contiguous()
    elif bad == "neurons":
        joint = joint[:2].contiguous()
    elif bad == "strided":
        transitions = transitions.transpose(2, 3).contiguous().transpose(2, 3)
    before = [joint.clone(), transitions.clone()]
    with pytest.raises(error, match=match):
        ops.info_counts_add_(joint, transitions, x, y, edges, True, 1)
    assert torch.equal(joint, before[0]) and torch.equal(transitions, before[1])


def test_accumulators_merge_and_reject_other_edges():
    x, y = torch.randn(20, 8, 3), uniform_ints((20, 8), 3, 11)
    first = pp.InfoAccumulator.from_range(torch.full((3,), -2.0), torch.full((3,), 2.0), 4, 3)
    second = pp.InfoAccumulator.from_range(torch.full((3,), -2.0), torch.full((3,), 2.0), 4, 3)
    first.update(x[:10], y[:10])
    second.update(x[10:], y[10:])
    whole = pp.InfoAccumulator.from_range(torch.full((3,), -2.0), torch.full((3,), 2.0), 4, 3)
    whole.update(x, y)
    first.merge(second)
    assert torch.equal(first.transition_counts, whole.transition_counts)
    assert torch.equal(first.joint_counts, whole.joint_counts)
    other = pp.InfoAccumulator.from_range(torch.full((3,), -1.0), torch.full((3,), 2.0), 4, 3)
    with pytest.raises(ValueError, match="other"):
        first.merge(other)


def test_accumulator_counts_do_not_overflow_int32():
    acc = pp.InfoAccumulator.from_range(torch.zeros(1), torch.ones(1), 2, 1, history=0)
    acc.joint_counts.fill_(2**40)
    acc.update(torch.zeros(3, 1, 1))
    assert acc.joint_counts[0, 0, 0].item() == 2**40 + 3


def test_scores_do_not_change_when_every_count_is_scaled():
    # H, MI and TE depend on the counts' proportions only. Scaled by 3001, the counts pass the
    # CPU kernel's table of c log c (below 2^14) into computed logs.
    torch.manual_seed(0)
    x, y = torch.randn(40, 30, 5, dtype=torch.float64), uniform_ints((40, 30), 3, 16)
    acc = pp.InfoAccumulator.from_range(torch.full((5,), -2.0), torch.full((5,), 2.0), 6, 3)
    acc.update(x, y)
    small = acc.finalize()
    acc.joint_counts.mul_(3001)
    acc.transition_counts.mul_(3001)
    large = acc.finalize()
    assert acc.transition_counts.max() > 2**14 > acc.transition_counts[acc.transition_counts > 0].min()
    for name in ("entropy", "mutual_information", "transfer_entropy"):
        torch.testing.assert_close(getattr(large, name), getattr(small, name), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", ["joint_counts", "transition_counts"])
def test_accumulator_with_negative_counts_raises(name):
    acc = pp.InfoAccumulator.from_range(torch.zeros(2), torch.ones(2), 2, 2)
    acc.update(torch.rand(3, 4, 2), torch.zeros(3, dtype=torch.long))
    getattr(acc, name).view(-1)[1] = -5
    with pytest.raises(ValueError, match=f"'{name}' has negative counts"):
        acc.finalize()


def test_forward_hook_on_lstm_feeds_the_accumulator():
    torch.manual_seed(0)
    lstm = torch.nn.LSTM(3, 6, batch_first=True)
    acc = pp.InfoAccumulator.from_range(torch.full((6,), -1.0), torch.ones(6), 4, 2)
    batches = [(torch.randn(5, 7, 3), uniform_ints((5,), 2, i)) for i in range(3)]
    current = {}
    handle = acc.register_forward_hook(lstm, lambda: current["labels"])
    with torch.no_grad():
        for inputs, labels in batches:
            current["labels"] = labels
            lstm(inputs)
    handle.remove()
    with torch.no_grad():
        outputs = torch.cat([lstm(inputs)[0] for inputs, _ in batches])
    labels = torch.cat([labels for _, labels in batches])
    direct = pp.information_scores(outputs, labels, 2, edges=acc.edges)
    got = acc.finalize(dtype=outputs.dtype)
    # from_range bins arithmetically, explicit edges by search: compare the counts themselves
    want = ops.info_counts(outputs, labels, acc.edges, True, 2, 1)
    assert torch.equal(acc.joint_counts, want[0]) and torch.equal(acc.transition_counts, want[1])
    assert got.transfer_entropy.shape == direct.transfer_entropy.shape == (6,)


def _all_reduce_worker(rank, path, x, y, out):
    import torch.distributed as dist
    dist.init_process_group("gloo", init_method=f"file://{path}", rank=rank, world_size=2)
    acc = pp.InfoAccumulator.from_range(torch.full((4,), -3.0), torch.full((4,), 3.0), 5, 3)
    half = x.shape[0] // 2
    acc.update(x[rank * half:(rank + 1) * half], y[rank * half:(rank + 1) * half])
    acc.all_reduce()
    out[rank] = acc.transition_counts.clone()
    dist.destroy_process_group()


def test_all_reduce_sums_counts_across_processes(tmp_path):
    import torch.multiprocessing as mp
    x, y = torch.randn(20, 6, 4), uniform_ints((20, 6), 3, 12)
    manager = mp.Manager()
    out = manager.dict()
    mp.spawn(_all_reduce_worker, args=(str(tmp_path / "store"), x, y, out), nprocs=2)
    whole = pp.InfoAccumulator.from_range(torch.full((4,), -3.0), torch.full((4,), 3.0), 5, 3)
    whole.update(x, y)
    assert torch.equal(out[0], whole.transition_counts)
    assert torch.equal(out[1], whole.transition_counts)


# ---- permutation test --------------------------------------------------------------------------

def test_permutation_test_separates_signal_from_noise(device):
    s, t, k = 60, 20, 3
    y = uniform_ints((s,), k, 13)
    x = torch.randn(s, t, 4, generator=torch.Generator().manual_seed(14))
    x[:, 1:, 0] += 3 * y[:, None].float() * torch.linspace(0, 1, t - 1)  # drifts by label
    result = pp.permutation_test(x.to(device), y.to(device), k, num_permutations=99, seed=1)
    assert result.te_pvalue[0].item() == pytest.approx(0.01)
    assert result.mi_pvalue[0].item() == pytest.approx(0.01)
    assert (result.te_pvalue[1:] > 0.01).all()
    again = pp.permutation_test(x.to(device), y.to(device), k, num_permutations=99, seed=1)
    assert torch.equal(result.te_pvalue, again.te_pvalue)


def test_permutation_null_matches_reference_with_permuted_labels():
    x, y = torch.randn(9, 7, 3, dtype=torch.float64), uniform_ints((9, 7), 3, 15)
    perms = torch.stack([torch.randperm(9, generator=torch.Generator().manual_seed(i)) for i in range(4)])
    codes = ops.info_bin_codes(x, pp.bin_edges(x, 4), True)
    mi_null, te_null = ops.info_permutation_null(codes, y, 4, 3, 2, perms, 2.0, False)
    for p in range(4):
        _, mi, te = ref.information_scores(x.numpy(), y[perms[p]].numpy(), 3, bins=4, history=2)
        np.testing.assert_allclose(mi_null[p].numpy(), mi, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(te_null[p].numpy(), te, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("binning", ["uniform", "quantile"])
def test_bin_codes_are_the_reference_bins(binning, device):
    x = torch.randn(5, 13, 7, dtype=torch.float64)
    x[0, 0] = x[..., :].min(0).values.min(0).values   # the lowest edges themselves
    edges = pp.bin_edges(x, 6, binning)
    codes = ops.info_bin_codes(x.to(device), edges.to(device), binning == "uniform")
    assert codes.dtype == torch.uint16 and codes.shape == x.shape
    want = ref.bin_values(x.numpy().reshape(-1, 7), edges.numpy(), binning == "uniform").reshape(x.shape)
    np.testing.assert_array_equal(codes.cpu().to(torch.int32).numpy(), want)


def test_permutation_null_refuses_codes_out_of_range_and_x_itself(device):
    x, y = torch.randn(4, 5, 3, device=device), torch.randint(0, 2, (4, 5), device=device)
    codes = ops.info_bin_codes(x, pp.bin_edges(x, 4), True)
    perms = torch.tensor([[1, 0, 3, 2]], device=device)
    bad = codes.clone()
    bad[3, 4, 2] = 4   # bin 4 of 4 bins
    with pytest.raises(ValueError, match=r"'codes' must lie in \[0, bins\) = \[0, 4\)"):
        ops.info_permutation_null(bad, y, 4, 2, 1, perms, 2.0, False)
    with pytest.raises(TypeError, match="'codes' must be UInt16"):
        ops.info_permutation_null(x, y, 4, 2, 1, perms, 2.0, False)
    with pytest.raises(ValueError, match="'bins' must be >= 2"):
        ops.info_permutation_null(codes, y, 1, 2, 1, perms, 2.0, False)
    with pytest.raises(ValueError, match="'x' contains NaN or Inf"):
        ops.info_bin_codes(torch.full((2, 2, 2), float("nan"), device=device), torch.zeros(2, 5, device=device,
                                                                                          dtype=torch.float64), True)


# ---- opcheck -------------------------------------------------------------------------------------

def test_opcheck_every_info_op(device):
    x = torch.randn(6, 5, 3, device=device)
    y = torch.randint(0, 3, (6, 5), device=device)
    edges = pp.bin_edges(x, 4)
    joint, transitions = ops.info_counts(x, y, edges, True, 3, 1)
    perms = torch.stack([torch.randperm(6) for _ in range(2)]).to(device)
    cases = [
        (ops.neuron_range.default, (x,)),
        (ops.info_counts.default, (x, y, edges, True, 3, 1)),
        (ops.info_counts.default, (x, None, edges, False, 1, 0)),
        (ops.info_counts_add_.default, (joint.clone(), transitions.clone(), x, y, edges, True, 1)),
        (ops.info_scores.default, (joint, transitions, 2.0, True)),
        (ops.info_local_te.default, (x, y, edges, True, 3, 2, 2.0)),
        (ops.info_bin_codes.default, (x, edges, True)),
        (ops.info_bin_codes.default, (x.double(), pp.bin_edges(x, 4, "quantile"), False)),
        (ops.info_permutation_null.default, (ops.info_bin_codes(x, edges, True), y, 4, 3, 1, perms, 2.0, False)),
    ]
    for op, args in cases:
        torch.library.opcheck(op, args)


# ---- bad input -----------------------------------------------------------------------------------

@pytest.mark.parametrize("bad, match", [
    ("nan", "'x' contains NaN"),
    ("inf", "'x' contains NaN"),
    ("label_high", "'labels' must lie in"),
    ("label_negative", "'labels' must lie in"),
    ("bins_one", "'bins' must be >= 2"),
    ("history_zero", "'history' must be >= 1"),
    ("empty", "'x' has no samples"),
    ("short", "'x' needs more than history"),
    ("label_shape", "'labels' must be"),
    ("base_one", "'base'"),
    ("edges_shape", "'edges' must be"),
    ("edges_unsorted", "'edges' must be non-decreasing"),
    ("too_many_cells", "histogram cells per neuron"),
])
def test_bad_values_raise_value_error_naming_the_argument(bad, match):
    x, y = torch.randn(4, 6, 3), torch.randint(0, 3, (4, 6))
    kwargs = dict(bins=4, history=1)
    if bad == "nan":
        x[1, 2, 0] = float("nan")
    elif bad == "inf":
        x[3, 5, 2] = float("inf")
    elif bad == "label_high":
        y[0, 0] = 3
    elif bad == "label_negative":
        y[2, 1] = -1
    elif bad == "bins_one":
        kwargs["bins"] = 1
    elif bad == "history_zero":
        kwargs["history"] = 0
    elif bad == "empty":
        x, y = x[:0], y[:0]
    elif bad == "short":
        kwargs["history"] = 6
    elif bad == "label_shape":
        y = y[:, :5]
    elif bad == "base_one":
        kwargs["base"] = 1.0
    elif bad == "edges_shape":
        kwargs["edges"] = torch.zeros(2, 5)
    elif bad == "edges_unsorted":
        kwargs["edges"] = torch.tensor([0.0, 2.0, 1.0])
    elif bad == "too_many_cells":
        kwargs.update(bins=64, history=4)
    with pytest.raises(ValueError, match=match):
        pp.transfer_entropy(x, y, 3, **kwargs)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("neuron", [5, 37])  # of 40: in a whole vector; in the last, partial one
def test_nan_and_inf_raise_also_with_given_edges_and_in_the_accumulator(value, dtype, neuron):
    x = torch.randn(4, 6, 40, dtype=dtype)
    x[2, 3, neuron] = value
    with pytest.raises(ValueError, match="'x' contains NaN"):
        pp.mutual_information(x, torch.zeros(4, dtype=torch.long), 2, edges=torch.tensor([-1.0, 0, 1]))
    acc = pp.InfoAccumulator.from_range(torch.zeros(40), torch.ones(40), 2, 2)
    acc.update(torch.rand(5, 6, 40, dtype=dtype), uniform_ints((5,), 2, 3))
    before = acc.joint_counts.clone(), acc.transition_counts.clone()
    with pytest.raises(ValueError, match="'x' contains NaN"):
        acc.update(x, torch.zeros(4, dtype=torch.long))
    # the counts of the rows before and after the bad value were taken back
    assert torch.equal(acc.joint_counts, before[0]) and torch.equal(acc.transition_counts, before[1])


def test_failed_counts_add_leaves_the_counts_as_they_were():
    x, y = torch.randn(300, 20, 50), uniform_ints((300, 20), 3, 4)
    edges = pp.bin_edges(x, 16)
    joint, transitions = ops.info_counts(x, y, edges, True, 3, 1)
    before = joint.clone(), transitions.clone()
    y[150, 7] = 3
    with pytest.raises(ValueError, match="'labels' must lie in"):
        ops.info_counts_add_(joint, transitions, x, y, edges, True, 1)
    assert torch.equal(joint, before[0]) and torch.equal(transitions, before[1])


@pytest.mark.parametrize("bad, error, match", [
    ("int_x", TypeError, "'x' must have dtype"),
    ("half_x", TypeError, "'x' must have dtype"),
    ("float_labels", TypeError, "'labels' must have dtype"),
    ("list_x", TypeError, "'x' must be a torch.Tensor"),
    ("x_4d", ValueError, r"'x' must be \[S, T, N\]"),
    ("num_classes_zero", ValueError, "'num_classes' must be >= 1"),
    ("bins_float", TypeError, "'bins' must be an int"),
    ("binning", ValueError, "'binning' must be one of"),
])
def test_bad_types_and_shapes_raise(bad, error, match):
    x, y, k = torch.randn(4, 6, 3), torch.randint(0, 3, (4, 6)), 3
    kwargs = {}
    if bad == "int_x":
        x = x.long()
    elif bad == "half_x":
        x = x.half()
    elif bad == "float_labels":
        y = y.float()
    elif bad == "list_x":
        x = x.tolist()
    elif bad == "x_4d":
        x = x[None]
    elif bad == "num_classes_zero":
        k = 0
    elif bad == "bins_float":
        kwargs["bins"] = 4.0
    elif bad == "binning":
        kwargs["binning"] = "kmeans"
    with pytest.raises(error, match=match):
        pp.transfer_entropy(x, y, k, **kwargs)


def test_direct_op_calls_are_checked_in_cpp():
    x, y = torch.randn(4, 6, 3), torch.randint(0, 3, (4, 6))
    edges = pp.bin_edges(x, 4)
    with pytest.raises(ValueError, match="'labels' must lie in"):
        ops.info_counts(x, y + 5, edges, True, 3, 1)
    with pytest.raises(ValueError, match="'edges' must have one row per neuron"):
        ops.info_counts(x, y, edges[:2], True, 3, 1)
    with pytest.raises(TypeError, match="'labels' must be Long"):
        ops.info_counts(x, y.int(), edges, True, 3, 1)
    with pytest.raises(ValueError, match="'perms' entries"):
        ops.info_permutation_null(ops.info_bin_codes(x, edges, True), y, 4, 3, 1, torch.full((1, 4), 9), 2.0,
                                  False)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_mixed_devices_raise():
    x, y = torch.randn(4, 6, 3, device="cuda"), torch.randint(0, 3, (4, 6))
    with pytest.raises(ValueError, match="'labels' is on"):
        pp.transfer_entropy(x, y, 3)


@pytest.mark.parametrize("binning", ["uniform", "quantile"])
def test_accumulator_from_data_takes_the_edges_of_that_batch(binning):
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(6, 30, 5, generator=gen)
    y = torch.randint(0, 4, (6, 30), generator=gen)
    acc = pp.InfoAccumulator.from_data(x, 4, bins=6, binning=binning)
    torch.testing.assert_close(acc.edges, pp.bin_edges(x, 6, binning).to(acc.edges.dtype))
    got = acc.update(x, y).finalize()
    expected = pp.information_scores(x, y, 4, bins=6, binning=binning)
    torch.testing.assert_close(got.mutual_information, expected.mutual_information)
    torch.testing.assert_close(got.transfer_entropy, expected.transfer_entropy)


# ---------------------------------------------------------------- long calls stay in the user's hands

def test_permutation_test_in_chunks_equals_one_call(monkeypatch):
    import pyprune_ext.info as info_module
    torch.manual_seed(0)
    x, y = torch.randn(12, 9, 5), torch.randint(0, 3, (12, 9))
    whole = pp.permutation_test(x, y, 3, num_permutations=7, seed=4, progress=False)
    monkeypatch.setattr(info_module, "_CHUNK_SECONDS", 0.0)   # one permutation a chunk
    chunked = pp.permutation_test(x, y, 3, num_permutations=7, seed=4, progress=False)
    for a, b in zip(whole, chunked):
        assert torch.equal(a, b)


def test_ctrl_c_stops_a_long_permutation_test_within_a_second(tmp_path):
    import signal
    import subprocess
    import sys
    import time
    script = tmp_path / "long.py"
    script.write_text(
        "import sys, time, torch, pyprune_ext as pp\n"
        "torch.set_num_threads(1)\n"
        "x, y = torch.randn(600, 100, 128), torch.randint(0, 10, (600, 100))\n"
        "print('ready', flush=True)\n"
        "try:\n"
        "    pp.permutation_test(x, y, 10, num_permutations=5000, progress=False)\n"
        "    print('finished', flush=True)\n"
        "except KeyboardInterrupt:\n"
        "    print('interrupted', time.perf_counter(), flush=True)\n")
    process = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "ready"
    time.sleep(2.0)
    sent = time.perf_counter()
    process.send_signal(signal.SIGINT)
    out, _ = process.communicate(timeout=60)
    answered = time.perf_counter() - sent
    assert out.startswith("interrupted"), out
    assert answered < 2.5, f"Ctrl-C took {answered:.1f} s to stop the call"
