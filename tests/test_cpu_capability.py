"""Run-time choice of the CPU kernels' instruction-set capability: the choice itself, forced capabilities,
bad requests, agreement between capabilities, the binary's ISA containment, and runs on emulated CPUs
without AVX-512 / AVX2 (qemu user mode), where a misplaced instruction would be SIGILL."""
import collections
import os
import platform
import re
import shutil
import subprocess
import sys

import pytest
import torch

import pyprune_ext as pp

from conftest import CPU_CAPABILITIES

X86 = platform.machine().lower() in ("x86_64", "amd64")


def run_python(code, env=None, prefix=()):
    env = {**os.environ, **(env or {})}
    return subprocess.run([*prefix, sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          timeout=600)


def test_best_capability_in_use_by_default():
    out = run_python("import pyprune_ext as pp; print(pp.cpu_capability())",
                     env={"PYPRUNE_CPU_CAPABILITY": ""})
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [CPU_CAPABILITIES[-1]]
    assert CPU_CAPABILITIES[0] == "default"
    if X86:
        assert set(CPU_CAPABILITIES) <= {"default", "avx2", "avx512"}


@pytest.mark.parametrize("capability", CPU_CAPABILITIES)
def test_environment_forces_a_capability(capability):
    out = run_python("import pyprune_ext as pp; print(pp.cpu_capability())", env={"PYPRUNE_CPU_CAPABILITY": capability})
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [capability]


@pytest.mark.parametrize("name, reason", [("sse9", "not a CPU capability"), ("AVX2", "not a CPU capability")])
def test_environment_with_a_bad_name_fails_the_import(name, reason):
    out = run_python("import pyprune_ext", env={"PYPRUNE_CPU_CAPABILITY": name})
    assert out.returncode == 1  # an exception, not a signal
    assert "PYPRUNE_CPU_CAPABILITY" in out.stderr and reason in out.stderr


def test_environment_with_an_unsupported_capability_fails_the_import():
    missing = [capability for capability in ("avx2", "avx512") if capability not in CPU_CAPABILITIES]
    if not missing:
        pytest.skip("this CPU runs every capability (the emulated-CPU test covers this case)")
    out = run_python("import pyprune_ext", env={"PYPRUNE_CPU_CAPABILITY": missing[-1]})
    assert out.returncode == 1
    assert "PYPRUNE_CPU_CAPABILITY" in out.stderr


def test_set_cpu_capability_rejects_bad_names():
    with pytest.raises(RuntimeError, match=r"set_cpu_capability\(.neon9.\): not a CPU capability"):
        pp.set_cpu_capability("neon9")
    with pytest.raises(TypeError, match="'name' must be a str"):
        pp.set_cpu_capability(2)
    assert pp.cpu_capability() in CPU_CAPABILITIES


def outputs_of_every_op(seed=0):
    """Each CPU op on inputs large and odd enough to reach its vector loops and their tails."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(37, 41, 67, generator=g)
    y = torch.randint(0, 5, (37, 41), generator=g)
    xs = torch.randn(45, 29, 9, 11, generator=g)
    gs = torch.randn(45, 29, 9, 11, generator=g)
    theta, grad = torch.randn(10007, generator=g), torch.randn(10007, generator=g)
    layer = pp.SparseLinear(203, 77, density=0.1, generator=g)
    xin = torch.randn(19, 203, generator=g, requires_grad=True)
    out = layer(xin)
    out.backward(torch.randn(out.shape, generator=g))
    masks = torch.rand(23, 28, 28, generator=g) > 0.45
    wide = torch.rand(3, 37, 131, generator=g) > 0.4
    weights = torch.randn(23, 28, 28, generator=g)
    s = pp.information_scores(x, y, 5, bins=7, history=2)
    counts = pp.ops.info_counts(x.double(), y, pp.bin_edges(x, 6), False, 5, 1)
    stats = pp.region_stats(masks, weights, connectivity=8)
    return {
        "range": pp.ops.neuron_range(x),
        "counts": counts,
        "scores": (s.entropy, s.mutual_information, s.transfer_entropy),
        "local_te": pp.transfer_entropy(x, y, 5, local=True, bins=7),
        "channel": pp.channel_scores(xs, gs, gbar=gs.mean(0)),
        "param": pp.param_scores(theta, grad, alpha=0.5),
        "topk": pp.global_topk_masks([theta], [grad], sparsity=0.9),
        "sparse": (out, xin.grad, layer.values.grad),
        "regions": (stats.labels, stats.counts, stats.sizes, stats.sum_abs),
        "regions_wide": pp.label_regions(wide, connectivity=4),
    }


def assert_same(a, b, path="out"):
    if isinstance(a, dict):
        for key in a:
            assert_same(a[key], b[key], f"{path}.{key}")
    elif isinstance(a, (tuple, list)):
        for i, (u, v) in enumerate(zip(a, b)):
            assert_same(u, v, f"{path}[{i}]")
    elif a.is_floating_point():
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=path)
    else:  # counts, labels, masks: bit-identical
        assert torch.equal(a, b), path


def test_capabilities_agree():
    before = pp.cpu_capability()
    try:
        results = {}
        for capability in CPU_CAPABILITIES:
            pp.set_cpu_capability(capability)
            results[capability] = outputs_of_every_op()
    finally:
        pp.set_cpu_capability(before)
    for capability in CPU_CAPABILITIES[1:]:
        assert_same(results["default"], results[capability], capability)


# ---- the binary: what runs outside a capability's copy must run on any x86-64 CPU ----

WIDE = re.compile(r"^(v[a-z]|(andn|bzhi|pdep|pext|shlx|shrx|sarx|rorx|blsr|blsi|blsmsk|lzcnt|popcnt|movbe)\s)")
AVX512_OPERAND = re.compile(r"%zmm|%k[0-7]\b|%[xy]mm(1[6-9]|2\d|3[01])\b")


@pytest.mark.skipif(not X86 or shutil.which("objdump") is None or shutil.which("nm") is None,
                    reason="needs x86-64 and binutils")
def test_only_capability_copies_hold_wide_instructions():
    """Code compiled for AVX2/AVX-512 is reachable only through the dispatch: every function of
    the library with such instructions is in pyprune::cpu_avx2/cpu_avx512, or is a header
    function's private copy that setup.py renamed `<name>.cpu_<capability>`, or is local to its own
    object file, and no load-time initializer has any. Were a torch inline function linked from an
    AVX-512 copy and called by baseline code, an older CPU would die of SIGILL. TZCNT is not
    counted: GCC emits it as `rep bsf`, which older CPUs run."""
    so = pp._C.__file__
    local = set()
    for line in subprocess.run(["nm", "-C", "--defined-only", so], capture_output=True, text=True).stdout.splitlines():
        parts = line.split(" ", 2)
        if len(parts) == 3 and parts[1] == "t":
            local.add(parts[2])
    disassembly = subprocess.run(["objdump", "-d", "--no-show-raw-insn", "-C", so],
                                 capture_output=True, text=True).stdout
    found = collections.defaultdict(set)
    function = None
    for line in disassembly.splitlines():
        header = re.match(r"^[0-9a-f]+ <(.*)>:$", line)
        if header:
            function = header.group(1)
            continue
        fields = line.split("\t")
        if function is None or len(fields) < 2:
            continue
        text = " ".join(fields[1:]).strip()
        if AVX512_OPERAND.search(text):
            found[function].add("avx512")
        elif WIDE.match(text):
            found[function].add("avx2")
    assert found, "the disassembly found no vector code at all: the scan is broken"

    def level_of(name):
        for capability in ("avx2", "avx512"):
            if f"cpu_{capability}::" in name or f"[clone .cpu_{capability}]" in name:
                return capability
        return None

    stray = {f: sorted(k) for f, k in found.items()
             if level_of(f) is None and (f not in local or f.startswith("_GLOBAL__sub_I"))}
    assert not stray, stray
    avx2_with_avx512 = [f for f, k in found.items() if level_of(f) == "avx2" and "avx512" in k]
    assert not avx2_with_avx512, avx2_with_avx512


# ---- emulated CPUs: the same binary on an AVX2-only and on an SSE4.2-only x86-64 ----

EMULATED = """
import torch, numpy as np, pyprune_ext as pp
from pyprune_ext import reference as ref
print(pp.cpu_capability(), pp.supported_cpu_capabilities())
g = torch.Generator().manual_seed(1)
x = torch.randn(6, 40, 19, generator=g); y = torch.randint(0, 3, (6, 40), generator=g)
s = pp.information_scores(x, y, 3, bins=5)
r = ref.information_scores(x.numpy(), y.numpy(), 3, bins=5)
assert np.allclose(s.transfer_entropy.numpy(), r[2], atol=1e-9)
m = torch.rand(7, 28, 28, generator=g) > 0.5
labels, counts = pp.label_regions(m)
assert np.array_equal(labels.numpy(), ref.label_regions(m.numpy(), 4)[0])
L = pp.SparseLinear(70, 33, density=0.2, generator=g); xin = torch.randn(5, 70, generator=g)
assert torch.allclose(L(xin), xin @ L.to_dense().weight.T + L.bias, atol=1e-5)
xs = torch.randn(9, 6, 7, 7, generator=g)
assert torch.allclose(pp.channel_scores(xs, xs, ["simple"])["simple"].double(), (xs.double().flatten(2) ** 2).sum(-1).mean(0))
print("ok")
"""


@pytest.mark.skipif(not X86 or shutil.which("qemu-x86_64") is None,
                    reason="needs x86-64 and qemu-user (apt-get install qemu-user)")
@pytest.mark.parametrize("cpu, capability", [("Haswell", "avx2"), ("Nehalem", "default")])
def test_emulated_cpu_runs_its_best_capability(cpu, capability):
    out = run_python(EMULATED, prefix=("qemu-x86_64", "-cpu", cpu), env={"PYPRUNE_CPU_CAPABILITY": ""})
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.split()[0] == capability and out.stdout.split()[-1] == "ok"


@pytest.mark.skipif(not X86 or shutil.which("qemu-x86_64") is None, reason="needs x86-64 and qemu-user")
def test_emulated_cpu_refuses_a_capability_it_lacks():
    out = run_python("import pyprune_ext", prefix=("qemu-x86_64", "-cpu", "Haswell"),
                     env={"PYPRUNE_CPU_CAPABILITY": "avx512"})
    assert out.returncode == 1, out.stderr[-3000:]  # a Python exception, never SIGILL
    assert "does not support the avx512 instructions" in out.stderr
