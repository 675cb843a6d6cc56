"""Whole models: scoring a ResNet's layers over 20 batches (ours: the collector and every
one-pass criterion; Torch-Pruning's GroupTaylorImportance over the same batches; the bare
forward + backward both need), and inference of an MLP 784-500-500-10 at 4% density, dense vs
``sparsify``-ed vs the same model on torch.sparse CSR."""
import copy
import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import pyprune_ext as pp
from pyprune_ext.prune.models import DigitsResNet, mlp

from conftest import QUICK, run
from peers import CsrLinear

SCORE_BATCHES = 2 if QUICK else 20
ONE_PASS = tuple(c for c in pp.CRITERIA if c != "trace")   # trace needs a second pass by definition


def score_batches():
    gen = torch.Generator().manual_seed(0)
    return [(torch.randn(50, 784, generator=gen), torch.randint(0, 10, (50,), generator=gen))
            for _ in range(SCORE_BATCHES)]


def resnet():
    torch.manual_seed(0)
    return DigitsResNet((16, 32, 64)).eval()


def backward_passes(model, batches):
    for x, y in batches:
        F.cross_entropy(model(x), y).backward()


@pytest.mark.parametrize("impl", ["forward + backward only", "Torch-Pruning GroupTaylor", "ours"])
def test_score_resnet(benchmark, impl):
    tp = pytest.importorskip("torch_pruning")
    model, batches = resnet(), score_batches()
    benchmark.group = (f"score DigitsResNet(16,32,64) over {SCORE_BATCHES} batches of 50 "
                       f"(ours: {len(ONE_PASS)} criteria of every conv)")
    convs = {name: m for name, m in model.named_modules() if isinstance(m, nn.Conv2d)}
    if impl == "forward + backward only":
        def score():
            model.zero_grad(set_to_none=True)
            backward_passes(model, batches)
    elif impl == "Torch-Pruning GroupTaylor":
        graph = tp.DependencyGraph().build_dependency(model, batches[0][0][:1])
        groups = list(graph.get_all_groups(ignored_layers=[model.fc], root_module_types=[nn.Conv2d]))
        importance = tp.importance.GroupTaylorImportance()

        def score():
            model.zero_grad(set_to_none=True)
            backward_passes(model, batches)
            return [importance(group) for group in groups]
    else:
        def score():
            model.zero_grad(set_to_none=True)
            collector = pp.ScoreCollector(convs, loss_reduction="mean")
            backward_passes(model, batches)
            collector.remove()
            return collector.scores(ONE_PASS)
    run(benchmark, score)


def sparse_mlp_models():
    torch.manual_seed(0)
    dense = mlp((784, 500, 500, 10)).eval()
    sparse = pp.sparsify(copy.deepcopy(dense), density=0.04, min_features=100)
    masked = pp.densify(copy.deepcopy(sparse))   # the dense model with the same zeros
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # "sparse CSR support is in beta"
        csr = [CsrLinear(layer.weight.detach(), layer.bias.detach()) for layer in (masked[0], masked[2])]
    return masked, sparse, csr


@pytest.mark.parametrize("impl", ["dense", "torch.sparse CSR", "ours"])
def test_sparse_mlp_inference(benchmark, impl):
    masked, sparse, csr = sparse_mlp_models()
    x = torch.randn(100, 784)
    benchmark.group = "MLP 784-500-500-10 inference, batch 100, hidden layers at 4% density"

    def csr_forward(h):   # the two sparse hidden layers on CSR, the dense classifier as it is
        for layer in csr:
            h = torch.relu(layer.forward(h))
        return masked[4](h)

    with torch.inference_mode():
        model = {"dense": masked, "ours": sparse}.get(impl, csr_forward)
        y = run(benchmark, model, x)
        torch.testing.assert_close(y, masked(x), rtol=1e-4, atol=1e-4)


# Real architectures (torchvision: the zoo venv of .ci/check_zoo.sh), batch 8 at 96 px, the
# issue's four: the cost of gathering our statistics against the bare pass and Torch-Pruning's
# Taylor (which reads the weight gradients that the same pass leaves).
ARCHITECTURES = ["resnet50", "mobilenet_v2", "convnext_tiny", "vit_b_16"]


@pytest.mark.parametrize("impl", ["forward + backward only", "Torch-Pruning GroupTaylor", "ours"])
@pytest.mark.parametrize("name", ARCHITECTURES)
def test_score_architecture(benchmark, name, impl):
    tp = pytest.importorskip("torch_pruning")
    torchvision = pytest.importorskip("torchvision", reason="runs in the zoo venv (.ci/check_zoo.sh)")
    from pyprune_ext.integrations.torch_pruning import TaylorChannelImportance
    torch.manual_seed(0)
    model = getattr(torchvision.models, name)().eval()
    size = 224 if name == "vit_b_16" else (32 if QUICK else 96)
    gen = torch.Generator().manual_seed(0)
    batches = [(torch.randn(8, 3, size, size, generator=gen), torch.randint(0, 1000, (8,), generator=gen))
               for _ in range(1 if QUICK else 3)]
    benchmark.group = f"score {name}, {len(batches)} batches of 8 at {size} px (capability {pp.cpu_capability()})"
    if impl == "ours":
        def score():
            return TaylorChannelImportance("fisher").accumulate(model, batches, F.cross_entropy)
    else:
        groups, importance = [], tp.importance.GroupTaylorImportance()
        if impl == "Torch-Pruning GroupTaylor":
            classifier = [m for m in model.modules() if isinstance(m, nn.Linear)][-1]
            graph = tp.DependencyGraph().build_dependency(model, batches[0][0][:1])
            groups = list(graph.get_all_groups(ignored_layers=[classifier]))

        def score():
            model.zero_grad(set_to_none=True)
            backward_passes(model, batches)
            return [importance(group) for group in groups]
    run(benchmark, score)
