"""Sparse linear layer at density 1/25, float32: forward, and a full training step (forward + dX +
dW + db), against dense matmul on the masked weight, torch.sparse CSR and scipy CSR; on a GPU
against dense fp32, TF32 and bf16 matmul and torch.sparse CSR (cuSPARSE)."""
import contextlib
import warnings

import pytest
import torch

import pyprune_ext as pp

from conftest import OURS, needs_cuda, run, scaled
from peers import CsrLinear

SHAPES = scaled([(100, 784, 500), (1024, 784, 500), (256, 4096, 4096), (1, 4096, 4096)], axis=0)
_cache = {}


def setup(shape, device="cpu"):
    key = (shape, device)
    if key not in _cache:
        _cache.clear()
        batch, n, m = shape
        gen = torch.Generator().manual_seed(0)
        layer = pp.SparseLinear(n, m, generator=gen).to(device)
        weight = layer.dense_weight().detach()
        x = torch.randn(batch, n, generator=gen).to(device)
        grad = torch.randn(batch, m, generator=gen).to(device)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "sparse CSR support is in beta"
            csr = CsrLinear(weight, layer.bias.detach())
        _cache[key] = (layer, weight, x, grad, csr)
    return _cache[key]


def label(shape):
    batch, n, m = shape
    return f"(batch {batch}, in {n}, out {m})"


@pytest.mark.parametrize("impl", ["dense", "torch.sparse CSR", "scipy CSR", *OURS])
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


@pytest.mark.parametrize("impl", ["dense", "torch.sparse CSR", *OURS])
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


# ---- CUDA: dense in fp32, TF32 and bf16 (tensor cores), cuSPARSE CSR, ours ----
CUDA_IMPLS = ["dense fp32", "dense tf32", "dense bf16", "torch.sparse CSR", "ours"]


@contextlib.contextmanager
def tf32(enabled):
    previous = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = enabled
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = previous


def dense_operands(impl, layer, weight, x, grad):
    dtype = torch.bfloat16 if impl == "dense bf16" else torch.float32
    return (layer.bias.detach().to(dtype), x.to(dtype), weight.to(dtype), grad.to(dtype))


@needs_cuda
@pytest.mark.parametrize("impl", CUDA_IMPLS)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_forward_cuda(benchmark, shape, impl):
    layer, weight, x, grad, csr = setup(shape, "cuda")
    benchmark.group = f"sparse forward {label(shape)} [cuda]"
    with torch.no_grad(), tf32(impl == "dense tf32"):
        if impl.startswith("dense"):
            b, xd, wd, _ = dense_operands(impl, layer, weight, x, grad)
            y = run(benchmark, torch.addmm, b, xd, wd.t(), cuda=True)
        elif impl == "torch.sparse CSR":
            y = run(benchmark, csr.forward, x, cuda=True)
        else:
            y = run(benchmark, layer, x, cuda=True)
    assert y.shape == (shape[0], shape[2])


@needs_cuda
@pytest.mark.parametrize("impl", CUDA_IMPLS)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_training_step_cuda(benchmark, shape, impl):
    layer, weight, x, grad, csr = setup(shape, "cuda")
    benchmark.group = f"sparse training step (fwd + dX + dW + db) {label(shape)} [cuda]"
    with tf32(impl == "dense tf32"):
        if impl.startswith("dense"):
            b, xd, wd, gd = dense_operands(impl, layer, weight, x, grad)
            xg, w, b = (t.clone().requires_grad_(True) for t in (xd, wd, b))

            def step():
                torch.addmm(b, xg, w.t()).backward(gd)
        elif impl == "torch.sparse CSR":
            def step():
                csr.step(x, grad)
        else:
            xg = x.clone().requires_grad_(True)

            def step():
                layer(xg).backward(grad)
        run(benchmark, step, cuda=True)
