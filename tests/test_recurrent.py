"""Physical removal of LSTM/GRU/RNN hidden units: the smaller modules compute what the masked
model computes on the kept units, for every configuration; bad ``keep`` sets are refused."""
import copy
import itertools

import pytest
import torch
from torch import nn

import pyprune_ext as pp

H, IN, OUT = 12, 5, 3
CONFIGS = [(kind, layers, bidirectional, proj, batch_first)
           for kind in (nn.LSTM, nn.GRU, nn.RNN) for layers in (1, 3) for bidirectional in (False, True)
           for proj in ((0, 4) if kind is nn.LSTM else (0,)) for batch_first in (False, True)]


def make(kind, layers, bidirectional, proj, batch_first, seed=0):
    torch.manual_seed(seed)
    extra = {"proj_size": proj} if proj else {}
    rnn = kind(IN, H, num_layers=layers, bidirectional=bidirectional, batch_first=batch_first,
               dtype=torch.float64, **extra)
    directions = 2 if bidirectional else 1
    fc = nn.Linear(directions * (proj or H), OUT, dtype=torch.float64)
    return rnn, fc, directions


def masked(rnn, fc, kept, directions, proj):
    """The removed units' outputs feed nothing: zero the columns that read them."""
    rnn, fc = copy.deepcopy(rnn), copy.deepcopy(fc)
    with torch.no_grad():
        for layer, direction in itertools.product(range(rnn.num_layers), range(directions)):
            suffix = f"_l{layer}" + ("_reverse" if direction else "")
            dropped = torch.ones(H, dtype=torch.bool)
            dropped[kept[layer][direction]] = False
            if proj:
                getattr(rnn, "weight_hr" + suffix)[:, dropped] = 0
                continue
            getattr(rnn, "weight_hh" + suffix)[:, dropped] = 0
            readers = ([getattr(rnn, f"weight_ih_l{layer + 1}" + ("_reverse" if d else "")) for d in range(directions)]
                       if layer + 1 < rnn.num_layers else [fc.weight])
            for weight in readers:
                weight[:, direction * H + dropped.nonzero().squeeze(1)] = 0
    return rnn, fc


@pytest.mark.parametrize("kind,layers,bidirectional,proj,batch_first", CONFIGS,
                         ids=lambda v: getattr(v, "__name__", str(v)))
def test_pruned_module_equals_masked_model(kind, layers, bidirectional, proj, batch_first):
    rnn, fc, directions = make(kind, layers, bidirectional, proj, batch_first)
    gen = torch.Generator().manual_seed(1)
    kept = [[torch.randperm(H, generator=gen)[:7] for _ in range(directions)] for _ in range(layers)]
    small, (small_fc,) = pp.remove_recurrent_units(rnn, kept, [fc])
    assert small.hidden_size == 7 and type(small) is kind
    ref_rnn, ref_fc = masked(rnn, fc, kept, directions, proj)
    x = torch.randn(4, 6, IN, dtype=torch.float64)
    full_out, _ = ref_rnn(x)
    out, _ = small(x)
    columns = torch.cat([d * H + kept[-1][d].sort().values for d in range(directions)])
    torch.testing.assert_close(out, full_out if proj else full_out[..., columns])
    torch.testing.assert_close(small_fc(out), ref_fc(full_out))


def test_next_rnn_layer_is_sliced_too():
    lstm, gru = nn.LSTM(IN, H, bidirectional=True), nn.GRU(2 * H, 6)
    keep = torch.tensor([0, 3, 4, 11])
    small, (small_gru,) = pp.remove_recurrent_units(lstm, keep, [gru])
    assert small_gru.input_size == 8
    ref_lstm, ref_gru = copy.deepcopy(lstm), copy.deepcopy(gru)
    dropped = torch.ones(H, dtype=torch.bool)
    dropped[keep] = False
    with torch.no_grad():
        ref_lstm.weight_hh_l0[:, dropped] = 0
        ref_lstm.weight_hh_l0_reverse[:, dropped] = 0
        ref_gru.weight_ih_l0[:, torch.cat([dropped, dropped])] = 0
    x = torch.randn(5, 2, IN)
    torch.testing.assert_close(small_gru(small(x)[0])[0], ref_gru(ref_lstm(x)[0])[0])


def test_keeping_every_unit_is_the_identity():
    rnn, fc, _ = make(nn.LSTM, 2, True, 0, True)
    small, (small_fc,) = pp.remove_recurrent_units(rnn, range(H), [fc])
    assert all(torch.equal(a, b) for a, b in zip(small.state_dict().values(), rnn.state_dict().values()))
    assert torch.equal(small_fc.weight, fc.weight)
    x = torch.randn(2, 3, IN, dtype=torch.float64)
    torch.testing.assert_close(small(x)[0], rnn(x)[0])


def test_original_modules_are_untouched_and_gradients_flow():
    rnn, fc, _ = make(nn.GRU, 1, False, 0, True)
    before = copy.deepcopy(rnn.state_dict())
    small, (small_fc,) = pp.remove_recurrent_units(rnn, [1, 2, 5], [fc])
    assert all(torch.equal(before[k], v) for k, v in rnn.state_dict().items())
    small_fc(small(torch.randn(2, 3, IN, dtype=torch.float64))[0]).sum().backward()
    assert small.weight_hh_l0.grad.shape == (9, 3)


@pytest.mark.parametrize("keep,match", [
    ([0, 12], r"'keep' must hold units in \[0, 12\)"),
    ([-1, 2], r"'keep' must hold units"),
    ([1, 1, 2], "'keep' holds a unit twice"),
    ([], "'keep' is empty"),
    (torch.zeros(2, 2, dtype=torch.long), "'keep' must be a 1-D index set"),
    (torch.tensor([0.5, 1.0]), "'keep' must have dtype"),
    ([[0, 1], [0, 1, 2]], r"'keep\[1\]\[0\]' keeps 3 units but others keep 2"),
    ("abc", "'keep' must be a 1-D index set"),
])
def test_bad_keep_is_refused(keep, match):
    rnn = nn.LSTM(IN, H, num_layers=2)
    with pytest.raises((ValueError, TypeError), match=match):
        pp.remove_recurrent_units(rnn, keep)


def test_bad_modules_are_refused():
    with pytest.raises(TypeError, match="'rnn' must be nn.LSTM, nn.GRU or nn.RNN"):
        pp.remove_recurrent_units(nn.Linear(3, 3), [0])
    with pytest.raises(ValueError, match=r"'next_layers\[0\]' reads 5 features but the RNN gives 12"):
        pp.remove_recurrent_units(nn.GRU(IN, H), [0], [nn.Linear(5, 2)])
    with pytest.raises(TypeError, match=r"'next_layers\[0\]' must be nn.Linear"):
        pp.remove_recurrent_units(nn.GRU(IN, H), [0], [nn.Conv1d(H, 2, 1)])
    with pytest.raises(TypeError, match="'next_layers' must be a sequence"):
        pp.remove_recurrent_units(nn.GRU(IN, H), [0], nn.Linear(H, 2))
