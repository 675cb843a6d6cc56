import pytest
import torch
from hypothesis import settings

# Reproducible property tests: the same examples on every run and machine, no per-example deadline
# (the first call of an op pays for thread start-up).
settings.register_profile("pyprune", derandomize=True, deadline=None, max_examples=40,
                          print_blob=True)
settings.load_profile("pyprune")

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(params=DEVICES)
def device(request):
    return request.param
