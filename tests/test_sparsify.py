"""Whole-model conversion to SparseLinear and back: outputs equal the masked dense model, every
mask source works, pruned weights stay absent through optimizer steps, state_dict round trips."""
import pytest
import torch
from torch import nn
from torch.nn.utils import prune as torch_prune

import pyprune_ext as pp

pytestmark = pytest.mark.usefixtures("each_cpu_capability")


def model(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(40, 30), nn.ReLU(), nn.Sequential(nn.Linear(30, 20), nn.Tanh()),
                         nn.Linear(20, 5))


def linears(m):
    return [layer for layer in m.modules() if isinstance(layer, (nn.Linear, pp.SparseLinear))]


def test_masks_given_by_name_equal_the_masked_dense_model():
    dense = model()
    masks = {"0": torch.rand(30, 40) < 0.2, "2.0": torch.rand(20, 30) < 0.5}
    with torch.no_grad():
        dense[0].weight.mul_(masks["0"])
        dense[2][0].weight.mul_(masks["2.0"])
    x = torch.randn(7, 40)
    expected = dense(x)
    pp.sparsify(dense, masks)
    assert isinstance(dense[0], pp.SparseLinear) and isinstance(dense[2][0], pp.SparseLinear)
    assert type(dense[3]) is nn.Linear   # not named in masks: stays dense
    assert dense[0].nnz == int(masks["0"].sum())
    torch.testing.assert_close(dense(x), expected)


def test_torch_prune_masks_and_density_and_min_features():
    dense = model()
    torch_prune.l1_unstructured(dense[0], "weight", amount=0.8)
    mask = dense[0].weight_mask.bool().clone()
    x = torch.randn(3, 40)
    expected = dense(x)
    pp.sparsify(dense)   # the prune mask; the unpruned layers stay dense
    assert torch.equal(dense[0].mask(), mask)
    assert [type(layer).__name__ for layer in linears(dense)] == ["SparseLinear", "Linear", "Linear"]
    torch.testing.assert_close(dense(x), expected)

    at_density = pp.sparsify(model(), density=0.1, min_features=10)
    kinds = [(type(layer).__name__, round(getattr(layer, "density", 1.0), 2)) for layer in linears(at_density)]
    assert kinds == [("SparseLinear", 0.1), ("SparseLinear", 0.1), ("Linear", 1.0)]   # 5 outputs < 10
    chosen = pp.sparsify(model(), density=0.5, include=lambda name, layer: name == "3")
    assert [type(layer).__name__ for layer in linears(chosen)] == ["Linear", "Linear", "SparseLinear"]


def test_density_keeps_the_largest_weights():
    layer = nn.Linear(4, 1, bias=False)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[0.1, -3.0, 0.2, 2.0]]))
    m = pp.sparsify(nn.Sequential(layer), density=0.5)
    assert m[0].mask().tolist() == [[False, True, False, True]]


def test_optimizer_steps_keep_pruned_weights_absent_and_densify_round_trips():
    m = pp.sparsify(model(), density=0.25)
    kept = [layer.mask().clone() for layer in linears(m)]
    optimizer = torch.optim.Adam(m.parameters(), lr=0.1)
    for _ in range(3):
        optimizer.zero_grad()
        m(torch.randn(8, 40)).square().sum().backward()
        optimizer.step()
    x = torch.randn(4, 40)
    expected = m(x)
    pp.densify(m)
    assert all(type(layer) is nn.Linear for layer in linears(m))
    for layer, mask in zip(linears(m), kept):
        assert bool((layer.weight[~mask] == 0).all())
    torch.testing.assert_close(m(x), expected)


def test_state_dict_loads_into_a_model_sparsified_at_another_density():
    saved = pp.sparsify(model(1), density=0.3)
    fresh = pp.sparsify(model(2), density=0.05)
    fresh.load_state_dict(saved.state_dict())
    x = torch.randn(5, 40)
    torch.testing.assert_close(fresh(x), saved(x))
    assert fresh[0].nnz == saved[0].nnz


def test_bad_arguments():
    with pytest.raises(ValueError, match="'masks' names layers that are not nn.Linear"):
        pp.sparsify(model(), {"1": torch.ones(30, 40, dtype=torch.bool)})
    with pytest.raises(ValueError, match=r"'masks\['0'\]' must be \[out, in\]"):
        pp.sparsify(model(), {"0": torch.ones(40, 30, dtype=torch.bool)})
    with pytest.raises(TypeError, match=r"'masks\['0'\]' must have dtype bool"):
        pp.sparsify(model(), {"0": torch.ones(30, 40)})
    with pytest.raises(ValueError, match="'density' must lie in"):
        pp.sparsify(model(), density=0.0)
    with pytest.raises(TypeError, match="'model' must be an nn.Module"):
        pp.sparsify("model")
    with pytest.raises(ValueError, match="'model' is itself a Linear"):
        pp.sparsify(nn.Linear(4, 4), density=0.5)
