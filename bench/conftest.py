"""Shared bench settings: every group times the reference, the composed-PyTorch peer and ours on
the same inputs, so `python -m pyprune_ext bench` can print ratios from one run. Where a GPU is
present, the `*_cuda` rows time the CUDA ops against the best composed-PyTorch CUDA peers."""
import math
import os
import time

import pytest
import torch

import pyprune_ext as pp

# PYPRUNE_BENCH_QUICK=1 (the CI smoke run) divides the big dimension of every shape by 50.
QUICK = os.getenv("PYPRUNE_BENCH_QUICK") == "1"
CUDA_CALLS = 20  # calls per timed round on a GPU: one synchronize per round, not per call
MIN_ROUND_S = 2e-3  # a CPU round repeats a fast call until it lasts about this long

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


# Our op under the best CPU capability ("ours") and forced to each lower one ("ours avx2",
# "ours default"): the same run shows what a machine of this microarchitecture without the wider
# instructions would get, and whether the capability picked is ever slower than a lower one.
OURS = ["ours"] + [f"ours {capability}" for capability in pp.supported_cpu_capabilities()[:-1]]


@pytest.fixture(autouse=True)
def _cpu_capability_of_row(request):
    """An "ours <capability>" row runs with that CPU capability; every other row with the best one.
    The capability goes into the row's extra_info, for the summary."""
    impl = getattr(getattr(request.node, "callspec", None), "params", {}).get("impl", "")
    before = pp.cpu_capability()
    pp.set_cpu_capability(impl.split(" ")[1] if impl in OURS[1:] else pp.supported_cpu_capabilities()[-1])
    if "benchmark" in request.fixturenames:
        request.getfixturevalue("benchmark").extra_info["capability"] = pp.cpu_capability()
    yield
    pp.set_cpu_capability(before)


def scaled(shapes, axis):
    if not QUICK:
        return shapes
    return [tuple(max(1, v // 50) if i == axis else v for i, v in enumerate(s)) for s in shapes]


def pytest_configure(config):
    torch.manual_seed(0)


@pytest.fixture(autouse=True)
def _deterministic():
    torch.manual_seed(0)


def run(benchmark, fn, *args, slow=False, cuda=False):
    """Times fn(*args); slow ones (the NumPy reference) get a single round. With cuda=True a round
    is CUDA_CALLS calls and one synchronize (kernels queue as in a training loop); the summary
    divides by `calls_per_round`."""
    if cuda:
        result = []

        def calls():
            for _ in range(CUDA_CALLS):
                out = fn(*args)
            torch.cuda.synchronize()
            result[:] = [out]

        benchmark.extra_info["calls_per_round"] = CUDA_CALLS
        benchmark.pedantic(calls, rounds=10, iterations=1, warmup_rounds=1)
        return result[0]
    if slow:
        return benchmark.pedantic(fn, args=args, rounds=1, iterations=1, warmup_rounds=0)
    # Three warmup calls: the allocator needs about that many calls of one shape before it
    # reuses its blocks instead of faulting in fresh pages (a training loop is past that point).
    for _ in range(3):
        fn(*args)
    # Rounds of at least MIN_ROUND_S: one call of ~70 us is at the mercy of a single scheduler
    # hiccup on a 2-vCPU VM, the median of rounds of many calls is not (pytest-benchmark's own
    # calibration does the same). Its stats are per call.
    start = time.perf_counter()
    fn(*args)
    iterations = max(1, math.ceil(MIN_ROUND_S / (time.perf_counter() - start)))
    return benchmark.pedantic(fn, args=args, rounds=7, iterations=iterations, warmup_rounds=1)
