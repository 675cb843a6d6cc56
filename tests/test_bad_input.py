"""Bad input, public functions and raw ops alike: each class of input that once crashed the
process, returned a meaningless number or raised a confusing message now raises a ValueError or
TypeError naming the argument (or, where the input is valid, gives the right answer). Cases that
crashed run in a subprocess, so a crash fails the test instead of killing the run."""
import os
import subprocess
import sys
import textwrap

import pytest
import torch

import pyprune_ext as pp
from pyprune_ext import ops

HERE = os.path.dirname(os.path.abspath(__file__))


def raises_in_subprocess(code, error, match):
    """Runs `code` in a fresh interpreter and checks that it raises `error` matching `match`,
    and does not die of a signal."""
    body = textwrap.indent(textwrap.dedent(code).strip(), "    ")
    program = "\n".join([
        "import re, sys, torch",
        "import pyprune_ext as pp",
        "from pyprune_ext import ops",
        "try:",
        body,
        f"except {error.__name__} as e:",
        f"    sys.exit(0 if re.search({match!r}, str(e)) else f'wrong message: {{e}}')",
        "sys.exit('no exception')",
    ])
    out = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, (out.returncode, out.stdout[-2000:], out.stderr[-3000:])


def returns_in_subprocess(code):
    program = "import torch\nimport pyprune_ext as pp\nfrom pyprune_ext import ops\n" + textwrap.dedent(code)
    out = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, (out.returncode, out.stderr[-3000:])


# ---- 1. zero neurons: valid, empty results (was SIGFPE in the task planner) ----

ZERO_NEURONS = {
    "entropy": "r = pp.entropy(torch.zeros(2, 3, 0), edges=torch.linspace(0, 1, 5)); assert r.shape == (0,)",
    "information_scores": "s = pp.information_scores(torch.zeros(2, 3, 0), torch.zeros(2, 3, dtype=torch.long), 2, "
                          "edges=torch.linspace(0, 1, 5)); assert s.transfer_entropy.shape == (0,)",
    "entropy_own_edges": "assert pp.entropy(torch.zeros(4, 0)).shape == (0,)",
    "accumulator": "a = pp.InfoAccumulator(torch.zeros(0, 5, dtype=torch.float64), 2); "
                   "a.update(torch.zeros(2, 3, 0), torch.zeros(2, 3, dtype=torch.long)); "
                   "assert a.joint_counts.shape == (0, 4, 2)",
    "raw_info_counts": "j, t = ops.info_counts(torch.zeros(2, 3, 0), None, torch.zeros(0, 5, dtype=torch.float64), "
                       "False, 2, 1); assert j.shape == (0, 4, 2) and t.shape == (0, 4, 4, 2)",
    "raw_info_counts_add_": "j = torch.zeros(0, 4, 2, dtype=torch.long); t = torch.zeros(0, 4, 4, 2, dtype=torch.long); "
                            "ops.info_counts_add_(j, t, torch.zeros(2, 3, 0), None, "
                            "torch.zeros(0, 5, dtype=torch.float64), False, 1)",
    "raw_info_local_te": "r = ops.info_local_te(torch.zeros(2, 3, 0), torch.zeros(2, 3, dtype=torch.long), "
                         "torch.zeros(0, 5, dtype=torch.float64), False, 2, 1, 2.0); assert r.shape == (2, 2, 0)",
    "raw_info_bin_codes": "c = ops.info_bin_codes(torch.zeros(2, 3, 0), torch.zeros(0, 5, dtype=torch.float64), False); "
                          "assert c.shape == (2, 3, 0)",
    "raw_info_permutation_null": "m, t = ops.info_permutation_null(torch.zeros(2, 3, 0, dtype=torch.uint16), "
                                 "torch.zeros(2, 3, dtype=torch.long), 4, 2, 1, "
                                 "torch.tensor([[1, 0]]), 2.0, False); assert m.shape == (1, 0)",
}


@pytest.mark.parametrize("case", list(ZERO_NEURONS))
def test_zero_neurons_give_empty_scores(case):
    returns_in_subprocess(ZERO_NEURONS[case])


# ---- 2, 3. the sparse ops check their structure (was out-of-bounds reads and writes) ----

STRUCTURE = """
layer = pp.SparseLinear(13, 9, density=0.3, generator=torch.Generator().manual_seed(0))
x = torch.randn(4, 13)
rp, ci, tp, ti, tm = (t.clone() for t in layer.structure)
def forward(*s):
    return ops.sparse_linear(x, layer.values.detach(), None, *s)
def backward(*s):
    return ops.sparse_linear_backward(torch.randn(4, 9), x, layer.values.detach(), *s, True, True, True)
"""

CORRUPT = {
    "col_idx_too_large": ("ci[0] = 10**7; forward(rp, ci, tp, ti, tm)", r"'col_idx' entries must lie in \[0, in_features = 13\)"),
    "col_idx_negative": ("ci[3] = -1; forward(rp, ci, tp, ti, tm)", r"'col_idx' entries"),
    "row_ptr_decreasing": ("rp[3], rp[4] = rp[4], rp[3] - 1; forward(rp, ci, tp, ti, tm)", r"'row_ptr' must never decrease"),
    "row_ptr_past_nnz": ("rp[-1] += 5; forward(rp, ci, tp, ti, tm)", r"'row_ptr' must run from 0 to nnz"),
    "t_ptr_past_nnz": ("tp[-1] = 10**6; backward(rp, ci, tp, ti, tm)", r"'t_ptr' must run from 0 to nnz"),
    "t_idx_out_of_range": ("ti[0] = 9; backward(rp, ci, tp, ti, tm)", r"'t_idx' entries must lie in \[0, out_features = 9\)"),
    "t_perm_out_of_range": ("tm[0] = 10**6; backward(rp, ci, tp, ti, tm)", r"'t_perm' entries must lie in \[0, nnz"),
    "t_perm_duplicate": ("tm[1] = tm[0]; backward(rp, ci, tp, ti, tm)", r"not the exact transpose"),
    "t_idx_inconsistent": ("ti[0], ti[1] = ti[1], ti[0]; backward(rp, ci, tp, ti, tm)", r"not the exact transpose|never"),
    "zero_dim_row_ptr": ("forward(torch.tensor(3, dtype=torch.int32), ci, tp, ti, tm)", r"'row_ptr' must be 1-D"),
    "zero_dim_t_idx": ("backward(rp, ci, tp, torch.tensor(3, dtype=torch.int32), tm)", r"'t_idx' must be 1-D"),
    "strided_col_idx": ("wide = torch.stack([ci, ci], 1); forward(rp, wide[:, 0], tp, ti, tm)", r"'col_idx' must be contiguous"),
    "module_buffer_edited": ("layer.col_idx[0] = 10**7; layer(x)", r"'col_idx' entries"),
    "module_buffer_edited_through_data": ("layer(x); layer.col_idx.data[0] = 10**7; layer(x)", r"'col_idx' entries"),
    "state_dict_edited": ("sd = layer.state_dict(); sd['t_perm'][0] = -5; layer.load_state_dict(sd); "
                          "layer(x.requires_grad_()).sum().backward()", r"'t_perm' entries"),
}


@pytest.mark.parametrize("case", list(CORRUPT))
def test_corrupt_sparse_structure_raises(case):
    code, match = CORRUPT[case]
    raises_in_subprocess(STRUCTURE + code, ValueError, match)


def test_public_sparse_linear_takes_strided_structure():
    layer = pp.SparseLinear(13, 9, density=0.3, generator=torch.Generator().manual_seed(0))
    x = torch.randn(4, 13)
    strided = tuple(torch.stack([t, t], 1)[:, 0] for t in layer.structure)
    assert not strided[1].is_contiguous()
    torch.testing.assert_close(pp.sparse_linear(x, layer.values, layer.bias, strided), layer(x))


def test_sparse_structure_checked_once_per_version():
    """The exact-transpose check is remembered per structure: a changed structure is checked
    again (in-place edits bump torch's version counter)."""
    layer = pp.SparseLinear(13, 9, density=0.3, generator=torch.Generator().manual_seed(0))
    x = torch.randn(4, 13)
    layer(x)
    with torch.no_grad():
        layer.t_perm[[0, 1]] = layer.t_perm[[1, 0]]
    with pytest.raises(ValueError, match="not the exact transpose"):
        ops.sparse_linear_backward(torch.randn(4, 9), x, layer.values.detach(), *layer.structure, True, True, True)


# ---- 4. Taylor: meaningless inputs raise ----

def test_taylor_bad_inputs():
    x, g = torch.randn(6, 4, 3, 5), torch.randn(6, 4, 3, 5)
    with pytest.raises(ValueError, match="'gbar' contains NaN or Inf"):
        pp.channel_scores(x, g, ["trace"], gbar=torch.full((4, 3, 5), float("nan")))
    with pytest.raises(ValueError, match=r"'gbar' must be \[C, \*spatial\]"):
        pp.channel_scores(x, g, ["trace"], gbar=torch.randn(15, 4))  # [P, C]: same numel
    with pytest.raises(ValueError, match="'scores' contains NaN or Inf"):
        pp.normalize_scores(torch.tensor([1.0, float("nan")]))
    with pytest.raises(ValueError, match="'weight' contains NaN or Inf"):
        pp.l1_stdv_scores(torch.tensor([[1.0, float("inf")], [1.0, 2.0]]))
    with pytest.raises(ValueError, match="NaN or Inf"):
        pp.global_topk_masks([torch.tensor([float("nan"), 1.0])], [torch.ones(2)], sparsity=0.9)  # keeps 0
    with pytest.raises(ValueError, match="'x' has no channels or an empty spatial size"):
        pp.channel_scores(torch.randn(3, 0, 4), torch.randn(3, 0, 4))
    with pytest.raises(ValueError, match="'x' has no channels or an empty spatial size"):
        pp.ChannelStats().update(torch.randn(3, 2, 0), torch.randn(3, 2, 0))


def test_raw_taylor_channel_stats_with_no_samples_matches_its_fake_kernel():
    out = ops.taylor_channel_stats(torch.zeros(0, 3, 4), torch.zeros(0, 3, 4), None, True)
    assert out[3].shape == (3, 4) and out[4].shape == (3, 4)
    assert all(float(t.abs().sum()) == 0 for t in out)


# ---- 5. info: meaningless inputs raise ----

@pytest.mark.parametrize("base", [0.5, 0, -2, 1, float("inf"), float("nan")])
def test_info_base_must_exceed_one(base):
    x, y = torch.randn(5, 7, 3), torch.randint(0, 2, (5, 7))
    with pytest.raises(ValueError, match="'base'"):
        pp.information_scores(x, y, 2, base=base)
    joint, trans = ops.info_counts(x, y, pp.bin_edges(x, 4), True, 2, 1)
    with pytest.raises(ValueError, match="'base'"):
        ops.info_scores(joint, trans, base, False)


def test_raw_info_ops_reject_bad_counts_and_edges():
    x, y = torch.randn(5, 7, 3), torch.randint(0, 2, (5, 7))
    joint, trans = ops.info_counts(x, y, pp.bin_edges(x, 4), True, 2, 1)
    joint[0, 0, 0] = -3
    with pytest.raises(ValueError, match="'joint_counts' has negative entries"):
        ops.info_scores(joint, trans, 2.0, False)
    for bad, match in [(float("nan"), "'edges' contains NaN or Inf"), (float("inf"), "'edges' contains NaN or Inf"),
                       (-9.0, "'edges' must be non-decreasing")]:
        edges = pp.bin_edges(x, 4)
        edges[1, 2] = bad
        with pytest.raises(ValueError, match=match):
            ops.info_counts(x, y, edges, False, 2, 1)
    with pytest.raises(ValueError, match="'labels' is required"):
        ops.info_permutation_null(ops.info_bin_codes(x, pp.bin_edges(x, 4), True), None, 4, 2, 1,
                                  torch.tensor([[1, 0, 2, 3, 4]]), 2.0, False)
    # equal-width binning reads only the first and last edge: other interior edges are refused
    quantile = pp.bin_edges(x, 4, "quantile")
    for op in (lambda e: ops.info_counts(x, y, e, True, 2, 1),
               lambda e: ops.info_local_te(x, y, e, True, 2, 1, 2.0)):
        with pytest.raises(ValueError, match="'edges' must be equally spaced"):
            op(quantile)
    ops.info_counts(x, y, quantile, False, 2, 1)   # the same edges by search are fine
    with pytest.raises(ValueError, match="'edges' must be equally spaced in each row for equal_width=True"):
        pp.InfoAccumulator(quantile, 2, equal_width=True)
    with pytest.raises(ValueError, match="'transition_counts'"):   # scores read states off the counts
        ops.info_scores(torch.zeros(3, 4, 2, dtype=torch.long), torch.zeros(3, 4, 5, 2, dtype=torch.long), 2.0, False)


def test_info_wrappers_reject_meaningless_requests():
    x, y = torch.randn(5, 7, 3), torch.randint(0, 2, (5, 7))
    acc = pp.InfoAccumulator.from_range(torch.zeros(3), torch.ones(3), 4, 2).update(x, y)
    with pytest.raises(TypeError, match="'dtype'"):
        acc.finalize(dtype=torch.int64)
    with pytest.raises(ValueError, match=r"'x' must be \[S, T, N\]"):
        pp.transfer_entropy(torch.randn(20, 3), torch.randint(0, 2, (20,)), 2)
    with pytest.raises(ValueError, match="'low' contains NaN or Inf"):
        pp.InfoAccumulator.from_range(torch.tensor([float("nan"), 0.0]), torch.ones(2), 4, 2)
    with pytest.raises(ValueError, match="'seed'"):
        pp.permutation_test(x, y, 2, seed=2**64)


# ---- 6. size limits are checked before anything is allocated ----

@pytest.mark.parametrize("call, match", [
    ("pp.information_scores(torch.randn(4, 5, 3), torch.zeros(4, 5, dtype=torch.long), 2, bins=70000)", "'bins' must be <= 65536"),
    ("pp.InfoAccumulator.from_range(torch.zeros(128), torch.ones(128), 2900, 8)", "histogram cells per neuron"),
    ("pp.information_scores(torch.randn(4, 80, 3), torch.zeros(4, 80, dtype=torch.long), 2, history=64)", "histogram cells"),
    ("pp.InfoAccumulator.from_range(torch.zeros(3), torch.ones(3), 8, 2, history=64)", "histogram cells"),
    ("pp.InfoAccumulator(torch.zeros(2, 5, dtype=torch.float64), 3, history=10**8)", "histogram cells"),
])
def test_size_limits_before_allocation(call, match):
    import time
    start = time.perf_counter()
    with pytest.raises(ValueError, match=match):
        eval(call)
    assert time.perf_counter() - start < 5  # refused up front, not after seconds of work


# ---- messages that name the problem ----

def test_messages_name_the_argument():
    with pytest.raises(TypeError, match="'theta'"):
        ops.param_scores(torch.zeros(3, dtype=torch.int32), torch.zeros(3, dtype=torch.int32), 0.0)
    with pytest.raises(TypeError, match="'criteria'"):
        pp.channel_scores(torch.randn(2, 3, 4), torch.randn(2, 3, 4), None)
    with pytest.raises(TypeError, match=r"'modules\['a'\]' must be an nn.Module"):
        pp.ScoreCollector({"a": 3})
    with pytest.raises(ValueError, match="'sparsity'"):
        pp.global_topk_masks([torch.randn(3)], sparsity=1.5)  # no .grad either: sparsity is named first


# ---- the CLI: bad values are usage errors before any work ----

@pytest.mark.parametrize("argv, name", [
    (["magnitude", "--epochs", "-1"], "epochs"),
    (["sparse", "--densities", "2"], "densities"),
    (["sparse", "--hidden", "0"], "hidden"),
    (["region", "--connectivity", "5"], "connectivity"),
    (["taylor", "--targets", "1.5"], "targets"),
    (["information", "--seed", "-3"], "seed"),
])
def test_cli_rejects_bad_values_up_front(argv, name):
    out = subprocess.run([sys.executable, "-m", "pyprune_ext", *argv, "--quick", "--no-progress"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2, out.stderr[-2000:]
    assert name in out.stderr and "Traceback" not in out.stderr
    assert out.stdout == ""  # nothing ran
