"""Shared bench settings: every group times the reference, the composed-PyTorch peer and ours on
the same inputs, so `python -m pyprune_ext bench` can print ratios from one run."""
import os

import pytest
import torch

# PYPRUNE_BENCH_QUICK=1 (the CI smoke run) divides the big dimension of every shape by 50.
QUICK = os.getenv("PYPRUNE_BENCH_QUICK") == "1"


def scaled(shapes, axis):
    if not QUICK:
        return shapes
    return [tuple(max(1, v // 50) if i == axis else v for i, v in enumerate(s)) for s in shapes]


def pytest_configure(config):
    torch.manual_seed(0)


@pytest.fixture(autouse=True)
def _deterministic():
    torch.manual_seed(0)


def run(benchmark, fn, *args, slow=False):
    """Times fn(*args); slow ones (the NumPy reference) get a single round."""
    if slow:
        return benchmark.pedantic(fn, args=args, rounds=1, iterations=1, warmup_rounds=0)
    return benchmark.pedantic(fn, args=args, rounds=7, iterations=1, warmup_rounds=1)
