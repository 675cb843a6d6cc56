"""Sparse linear layer at density 1/25, float32: forward, and a full training step (forward + dX +
dW + db), against dense matmul on the masked weight, torch.sparse CSR and scipy CSR."""
import warnings

import pytest
import torch

import pyprune_ext as pp

from conftest import run, scaled
from peers import CsrLinear

SHAPES = scaled([(100, 784, 500), (1024, 784, 500), (256, 4096, 4096), (1, 4096, 4096)], axis=0)
_cache = {}


def setup(shape):
    if shape not in _cache:
        _cache.clear()
        batch, n, m = shape
        gen = torch.Generator().manual_seed(0)
        layer = pp.SparseLinear(n, m, generator=gen)
        weight = layer.dense_weight().detach()
        x = torch.randn(batch, n, generator=gen)
        grad = torch.randn(batch, m, generator=gen)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "sparse CSR support is in beta"
            csr = CsrLinear(weight, layer.bias.detach())
        _cache[shape] = (layer, weight, x, grad, csr)
    return _cache[shape]


def label(shape):
    batch, n, m = shape
    return f"(batch {batch}, in {n}, out {m})"


@pytest.mark.parametrize("impl", ["dense", "torch.sparse CSR", "scipy CSR", "ours"])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_forward(benchmark, shape, impl):
    layer, weight, x, grad, csr = setup(shape)
    benchmark.group = f"sparse forward {label(shape)}"
    bias = layer.bias.detach()
    with torch.no_grad():
        if impl == "dense":
            y = run(benchmark, torch.addmm, bias, x, weight.t())
        elif impl == "torch.sparse CSR":
            y = run(benchmark, csr.forward, x)
        elif impl == "scipy CSR":
            import scipy.sparse
            w = scipy.sparse.csr_matrix(weight.numpy())
            xn, bn = x.numpy(), bias.numpy()
            y = torch.from_numpy(run(benchmark, lambda: (w @ xn.T).T + bn))
        else:
            y = run(benchmark, layer, x)
    assert y.shape == (shape[0], shape[2])


@pytest.mark.parametrize("impl", ["dense", "torch.sparse CSR", "ours"])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_training_step(benchmark, shape, impl):
    layer, weight, x, grad, csr = setup(shape)
    benchmark.group = f"sparse training step (fwd + dX + dW + db) {label(shape)}"
    xg = x.clone().requires_grad_(True)
    if impl == "dense":
        w = weight.clone().requires_grad_(True)
        b = layer.bias.detach().clone().requires_grad_(True)

        def step():
            torch.addmm(b, xg, w.t()).backward(grad)
    elif impl == "torch.sparse CSR":
        def step():
            csr.step(x, grad)
    else:
        def step():
            layer(xg).backward(grad)
    run(benchmark, step)
