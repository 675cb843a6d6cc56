import pytest
import torch
from hypothesis import settings

import pyprune_ext as pp

# Reproducible property tests: the same examples on every run and machine, no per-example deadline
# (the first call of an op pays for thread start-up).
settings.register_profile("pyprune", derandomize=True, deadline=None, max_examples=40,
                          print_blob=True)
settings.load_profile("pyprune")

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(params=DEVICES)
def device(request):
    return request.param


# Every instruction-set capability of the CPU kernels that this machine runs (default, avx2, avx512).
CPU_CAPABILITIES = pp.supported_cpu_capabilities()


@pytest.fixture(params=CPU_CAPABILITIES, ids=lambda capability: f"cpu-{capability}")
def each_cpu_capability(request):
    """Runs the test with the CPU kernels of one capability (the op test modules use it for every
    test), then goes back to the capability that was in use."""
    before = pp.cpu_capability()
    pp.set_cpu_capability(request.param)
    yield request.param
    pp.set_cpu_capability(before)


def pytest_report_header(config):
    """Which build the tests ran against (the zoo venv must use its installed copy)."""
    return f"pyprune_ext from {pp.__file__}, torch {torch.__version__}"
