"""The Torch-Pruning adapter: our criteria rank the dependency groups of a residual net and of a
net with a concatenation; the pruned models run and shrink by the expected amounts, and a
group's importance is the hand-computed mean of its layers' normalised channel scores."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import pyprune_ext as pp

tp = pytest.importorskip("torch_pruning")
from pyprune_ext.integrations.torch_pruning import TaylorChannelImportance  # noqa: E402


class Residual(nn.Module):
    def __init__(self, c=16):
        super().__init__()
        self.stem, self.bn = nn.Conv2d(1, c, 3, padding=1), nn.BatchNorm2d(c)
        self.c1, self.b1 = nn.Conv2d(c, c, 3, padding=1), nn.BatchNorm2d(c)
        self.c2, self.b2 = nn.Conv2d(c, c, 3, padding=1), nn.BatchNorm2d(c)
        self.fc = nn.Linear(c, 10)

    def forward(self, x):
        x = F.relu(self.bn(self.stem(x)))
        x = F.relu(x + self.b2(self.c2(F.relu(self.b1(self.c1(x))))))
        return self.fc(x.mean((2, 3)))


class Concat(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Conv2d(1, 8, 3, padding=1), nn.Conv2d(1, 8, 5, padding=2)
        self.c = nn.Conv2d(16, 8, 3, padding=1)
        self.fc = nn.Linear(8, 10)

    def forward(self, x):
        x = F.relu(torch.cat([self.a(x), self.b(x)], 1))
        return self.fc(F.relu(self.c(x)).mean((2, 3)))


def data(batches=3, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return [(torch.randn(6, 1, 10, 10, generator=gen), torch.randint(0, 10, (6,), generator=gen))
            for _ in range(batches)]


def params(model):
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("criterion", pp.CRITERIA)
def test_residual_net_prunes_consistently(criterion):
    torch.manual_seed(0)
    model, example = Residual(), torch.randn(1, 1, 10, 10)
    importance = TaylorChannelImportance(criterion).accumulate(model, data(), F.cross_entropy)
    macs_before, _ = tp.utils.count_ops_and_params(model, example)
    tp.pruner.MetaPruner(model, example, importance=importance, pruning_ratio=0.5,
                         ignored_layers=[model.fc]).step()
    # the residual add ties stem, bn, c2, b2: every layer keeps 8 of 16 channels
    assert [model.stem.out_channels, model.c1.out_channels, model.c2.out_channels, model.fc.in_features] == [8] * 4
    assert params(model) == (8 * 9 + 8) + 2 * (8 * 8 * 9 + 8) + 3 * 2 * 8 + (10 * 8 + 10)
    macs_after, _ = tp.utils.count_ops_and_params(model, example)
    assert macs_after < 0.3 * macs_before
    assert model(example).shape == (1, 10)
    with pytest.raises(RuntimeError, match="call reset"):   # stale statistics are refused
        group = tp.DependencyGraph().build_dependency(model, example).get_pruning_group(
            model.c1, tp.prune_conv_out_channels, idxs=[0, 1])
        importance(group)


def test_concatenation_net_prunes_each_branch():
    torch.manual_seed(0)
    model, example = Concat(), torch.randn(1, 1, 10, 10)
    importance = TaylorChannelImportance("fisher").accumulate(model, data(), F.cross_entropy)
    tp.pruner.MetaPruner(model, example, importance=importance, pruning_ratio=0.5,
                         ignored_layers=[model.fc]).step()
    assert (model.a.out_channels, model.b.out_channels, model.c.in_channels, model.c.out_channels) == (4, 4, 8, 4)
    assert params(model) == (4 * 9 + 4) + (4 * 25 + 4) + (4 * 8 * 9 + 4) + (10 * 4 + 10)
    assert model(example).shape == (1, 10)


def test_group_importance_is_the_mean_of_normalised_channel_scores():
    torch.manual_seed(0)
    model, example = Residual(), torch.randn(1, 1, 10, 10)
    batches = data(batches=2)
    importance = TaylorChannelImportance("fisher", p=1.0).accumulate(model, batches, F.cross_entropy)

    # by hand: the outputs and gradients of the four layers tied by the residual add
    tied = [model.stem, model.bn, model.c2, model.b2]
    total = {m: None for m in tied}
    for x, y in batches:
        outputs = {}
        handles = [m.register_forward_hook(lambda mod, i, o: outputs.__setitem__(mod, o)) for m in tied]
        out = model(x)
        for o in outputs.values():
            o.retain_grad()
        F.cross_entropy(out, y).backward()
        for h in handles:
            h.remove()
        for m in tied:   # mean loss -> gradient of the summed loss, fisher = 0.5 E[(x.g)^2]
            xs, gs = outputs[m].detach(), outputs[m].grad * len(x)
            s = 0.5 * (xs * gs).sum((2, 3)).double().square().sum(0)
            total[m] = s if total[m] is None else total[m] + s
    count = sum(len(x) for x, _ in batches)
    expected = torch.stack([pp.normalize_scores(total[m] / count) for m in tied]).mean(0).float()

    group = tp.DependencyGraph().build_dependency(model, example).get_pruning_group(
        model.stem, tp.prune_conv_out_channels, idxs=list(range(16)))
    torch.testing.assert_close(importance(group), expected)
    assert set(importance.layer_scores()) == {"stem", "bn", "c1", "b1", "c2", "b2", "fc"}


def test_recording_a_custom_loop_equals_accumulate_and_leaves_gradients():
    torch.manual_seed(0)
    model, batches = Residual(), data()
    by_accumulate = TaylorChannelImportance("first_order").accumulate(model, batches, F.cross_entropy)
    assert all(p.grad is None for p in model.parameters())
    by_loop = TaylorChannelImportance("first_order")
    with by_loop.recording(model):
        for x, y in batches:
            F.cross_entropy(model(x), y).backward()
    for name, score in by_accumulate.layer_scores().items():
        torch.testing.assert_close(by_loop.layer_scores()[name], score)


def recorded_by_a_full_backward(model, batches, loss_fn):
    """The statistics of a plain loop, whose backward computes the weight gradients too."""
    importance = TaylorChannelImportance("fisher")
    with importance.recording(model):
        for x, y in batches:
            loss_fn(model(x), y).backward()
    model.zero_grad(set_to_none=True)
    return importance.layer_scores()


def test_accumulate_skips_weight_gradients_yet_scores_the_same_and_restores_requires_grad():
    torch.manual_seed(0)
    model, batches = Residual(), data()
    model.c1.weight.requires_grad_(False)   # a frozen layer stays frozen, the rest trainable
    expected = recorded_by_a_full_backward(model, batches, F.cross_entropy)
    seen = []
    model.c2.register_forward_hook(lambda m, i, o: seen.append(m.weight.requires_grad))
    got = TaylorChannelImportance("fisher").accumulate(model, batches, F.cross_entropy).layer_scores()
    assert seen == [False] * len(batches)   # no weight gradient was computed during the pass
    assert [name for name, p in model.named_parameters() if not p.requires_grad] == ["c1.weight"]
    assert all(p.grad is None for p in model.parameters())
    assert got.keys() == expected.keys()
    for name in expected:
        torch.testing.assert_close(got[name], expected[name])


class InPlaceOnInput(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv, self.fc = nn.Conv2d(1, 4, 3), nn.Linear(4, 10)

    def forward(self, x):
        x.mul_(2.0)   # a model that changes its input in place
        return self.fc(self.conv(x).mean((2, 3)))


class Tokens(nn.Module):
    """Integer inputs: the gradient starts at the embedding table."""
    def __init__(self):
        super().__init__()
        self.embed, self.fc1, self.fc2 = nn.Embedding(20, 8), nn.Linear(8, 12), nn.Linear(12, 10)

    def forward(self, ids):
        return self.fc2(torch.relu(self.fc1(self.embed(ids).mean(1))))


class CastsItsInput(nn.Module):
    """Integer inputs and no embedding: only the weights carry a gradient."""
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(5, 12), nn.Linear(12, 10)

    def forward(self, ids):
        return self.fc2(torch.relu(self.fc1(ids.float())))


@pytest.mark.parametrize("make, inputs", [
    (InPlaceOnInput, lambda g: torch.randn(6, 1, 6, 6, generator=g)),
    (Tokens, lambda g: torch.randint(0, 20, (6, 7), generator=g)),
    (CastsItsInput, lambda g: torch.randint(0, 9, (6, 5), generator=g)),
])
def test_accumulate_on_inputs_that_need_care(make, inputs):
    torch.manual_seed(0)
    model, g = make(), torch.Generator().manual_seed(1)
    batches = [(inputs(g), torch.randint(0, 10, (6,), generator=g)) for _ in range(2)]
    expected = recorded_by_a_full_backward(model, [(x.clone(), y) for x, y in batches], F.cross_entropy)
    forwards = []
    model.register_forward_hook(lambda *_: forwards.append(1))
    got = TaylorChannelImportance("fisher").accumulate(model, [(x.clone(), y) for x, y in batches],
                                                        F.cross_entropy).layer_scores()
    assert len(forwards) == len(batches)   # one forward per batch, none wasted finding the gradient's path
    assert all(p.requires_grad for p in model.parameters())
    assert got.keys() == expected.keys() and len(got) >= 2
    for name in expected:
        torch.testing.assert_close(got[name], expected[name])


def test_trace_takes_its_two_passes_from_a_one_shot_iterator_too():
    torch.manual_seed(0)
    model, batches = Residual(), data()
    from_list = TaylorChannelImportance("trace").accumulate(model, batches, F.cross_entropy).layer_scores()
    from_iterator = TaylorChannelImportance("trace").accumulate(model, iter(batches), F.cross_entropy).layer_scores()
    for name, score in from_list.items():
        torch.testing.assert_close(from_iterator[name], score)


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match="'criterion' must be one of"):
        TaylorChannelImportance("l2")
    with pytest.raises(ValueError, match="'p' must lie in"):
        TaylorChannelImportance(p=0)
    with pytest.raises(ValueError, match="'group_reduction' must be one of"):
        TaylorChannelImportance(group_reduction="median")
    with pytest.raises(RuntimeError, match="no statistics yet"):
        TaylorChannelImportance().layer_scores()
    with pytest.raises(ValueError, match="none of the target layer types"):
        TaylorChannelImportance().accumulate(nn.Sequential(nn.ReLU()), data(), F.cross_entropy)


def _rank_scores(rank, world, store_path, batches, result_path):
    import torch.distributed as dist
    dist.init_process_group("gloo", store=dist.FileStore(store_path, world), rank=rank, world_size=world)
    torch.manual_seed(0)
    model = Residual()
    importance = TaylorChannelImportance("fisher").accumulate(model, batches[rank::world], F.cross_entropy)
    importance.all_reduce()
    torch.save(importance.layer_scores(), f"{result_path}.{rank}")
    dist.destroy_process_group()


def test_all_reduce_over_two_processes_equals_one_process_over_all_batches(tmp_path):
    import torch.multiprocessing as mp
    batches = data(batches=4)
    mp.spawn(_rank_scores, args=(2, str(tmp_path / "store"), batches, str(tmp_path / "scores")), nprocs=2)
    torch.manual_seed(0)
    expected = TaylorChannelImportance("fisher").accumulate(Residual(), batches, F.cross_entropy).layer_scores()
    for rank in range(2):
        got = torch.load(tmp_path / f"scores.{rank}")
        for name, score in expected.items():
            torch.testing.assert_close(got[name], score)
