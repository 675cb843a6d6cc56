"""Physical removal of hidden units from ``nn.LSTM``, ``nn.GRU`` and ``nn.RNN``.

Scores such as the information scores rank an RNN's hidden units; masking a unit (zeroing the
columns that read it) shows what removing it costs, but the model stays as large and as slow.
:func:`remove_recurrent_units` builds the smaller modules: for each kept unit it keeps its rows of
every gate in ``weight_ih``, ``weight_hh`` and the biases, its column of ``weight_hh`` (or of
``weight_hr`` for an LSTM with ``proj_size``), and its input column in whatever reads the output:
the next layer of the same RNN, and the ``next_layers`` you pass (a ``Linear`` or another RNN).
The result computes exactly what the masked model computes on the kept units.
"""
import copy
from typing import List, Sequence, Tuple

import torch
from torch import nn

from ._validation import check_tensor

__all__ = ["remove_recurrent_units"]

_GATES = {nn.LSTM: 4, nn.GRU: 3, nn.RNN: 1}


def remove_recurrent_units(rnn: nn.Module, keep, next_layers: Sequence[nn.Module] = ()
                           ) -> Tuple[nn.Module, List[nn.Module]]:
    """Keeps only the hidden units ``keep`` of ``rnn``; returns ``(smaller_rnn, smaller_next_layers)``.

    Args:
        rnn: an ``nn.LSTM`` (``proj_size`` too), ``nn.GRU`` or ``nn.RNN``; any ``num_layers``,
            ``bidirectional``, ``batch_first``.
        keep: the hidden units to keep, as indices in ``[0, hidden_size)``: one 1-D sequence for
            every layer and direction, or one per layer (``num_layers`` of them), or one per layer
            and direction (``[[forward, backward], ...]``). Every set has the same size (the
            modules share one ``hidden_size``); kept units keep their order.
        next_layers: the modules that read ``rnn``'s output: ``nn.Linear`` or another RNN (its
            first layer's input columns are sliced). Not needed with ``proj_size``, whose output
            size does not change.

    The modules given are left untouched; the new ones sit on the same device and dtype. Put them
    in place of the old ones (``model.lstm, (model.fc,) = remove_recurrent_units(...)``).

    Example:
        >>> lstm, fc = nn.LSTM(16, 64, batch_first=True), nn.Linear(64, 7)
        >>> small_lstm, (small_fc,) = remove_recurrent_units(lstm, torch.arange(0, 64, 2), [fc])
        >>> small_lstm.hidden_size, small_fc.in_features
        (32, 32)
    """
    gates = _gate_count(rnn)
    if isinstance(next_layers, nn.Module) or not isinstance(next_layers, Sequence):
        raise TypeError(f"'next_layers' must be a sequence of modules, got {type(next_layers).__name__}")
    directions = 2 if rnn.bidirectional else 1
    kept = _kept_units(keep, rnn.num_layers, directions, rnn.hidden_size)
    width = len(kept[0][0])
    projected = getattr(rnn, "proj_size", 0) > 0
    out_per_direction = rnn.proj_size if projected else rnn.hidden_size

    options = dict(num_layers=rnn.num_layers, bias=rnn.bias, batch_first=rnn.batch_first,
                   dropout=rnn.dropout, bidirectional=rnn.bidirectional)
    if isinstance(rnn, nn.LSTM):
        options["proj_size"] = rnn.proj_size
    if isinstance(rnn, nn.RNN):
        options["nonlinearity"] = rnn.nonlinearity
    weight = rnn.weight_ih_l0
    small = type(rnn)(rnn.input_size, width, device=weight.device, dtype=weight.dtype, **options)

    with torch.no_grad():
        for layer in range(rnn.num_layers):
            # The columns of this layer's input that survive: all for the first layer, the kept
            # units of both directions of the layer below otherwise (unless they are projected).
            inputs = None if layer == 0 or projected else _output_columns(kept[layer - 1], out_per_direction)
            for direction in range(directions):
                suffix = f"_l{layer}" + ("_reverse" if direction else "")
                units = kept[layer][direction]
                rows = torch.cat([gate * rnn.hidden_size + units for gate in range(gates)])
                ih = getattr(rnn, "weight_ih" + suffix)[rows]
                getattr(small, "weight_ih" + suffix).copy_(ih if inputs is None else ih[:, inputs])
                hh = getattr(rnn, "weight_hh" + suffix)[rows]
                getattr(small, "weight_hh" + suffix).copy_(hh if projected else hh[:, units])
                if rnn.bias:
                    for name in ("bias_ih", "bias_hh"):
                        getattr(small, name + suffix).copy_(getattr(rnn, name + suffix)[rows])
                if projected:
                    getattr(small, "weight_hr" + suffix).copy_(getattr(rnn, "weight_hr" + suffix)[:, units])

    columns = None if projected else _output_columns(kept[-1], out_per_direction)
    readers = [_sliced_reader(module, i, columns, directions * out_per_direction)
               for i, module in enumerate(next_layers)]
    return small, readers


def _gate_count(rnn):
    for kind, gates in _GATES.items():
        if type(rnn) is kind:
            return gates
    raise TypeError(f"'rnn' must be nn.LSTM, nn.GRU or nn.RNN, got {type(rnn).__name__}")


def _kept_units(keep, layers, directions, hidden) -> List[List[torch.Tensor]]:
    """``keep`` in any accepted form -> ``[layer][direction]`` sorted int64 index tensors."""
    if _is_index_set(keep):
        nested = [[keep] * directions for _ in range(layers)]
    elif isinstance(keep, Sequence) and len(keep) == layers:
        nested = []
        for layer, item in enumerate(keep):
            if _is_index_set(item):
                nested.append([item] * directions)
            elif isinstance(item, Sequence) and len(item) == directions and all(map(_is_index_set, item)):
                nested.append(list(item))
            else:
                raise ValueError(f"'keep[{layer}]' must be a 1-D index set or one per direction ({directions})")
    else:
        raise ValueError(f"'keep' must be a 1-D index set, or one per layer ({layers}), or one per "
                         f"layer and direction ({layers} x {directions})")
    result, width = [], None
    for layer, per_direction in enumerate(nested):
        row = []
        for direction, units in enumerate(per_direction):
            name = f"keep[{layer}][{direction}]" if not _is_index_set(keep) else "keep"
            units = _check_units(units, name, hidden)
            if width is None:
                width = len(units)
            elif len(units) != width:
                raise ValueError(f"'{name}' keeps {len(units)} units but others keep {width}: every "
                                 "layer and direction of one module has the same hidden_size")
            row.append(units)
        result.append(row)
    return result


def _is_index_set(value):
    if isinstance(value, torch.Tensor):
        return value.dim() == 1
    return isinstance(value, Sequence) and not isinstance(value, str) and all(
        isinstance(v, int) and not isinstance(v, bool) for v in value)


def _check_units(units, name, hidden):
    if not isinstance(units, torch.Tensor):
        units = torch.tensor(list(units), dtype=torch.long)
    check_tensor(units, name, dtypes=(torch.int32, torch.int64, torch.uint8, torch.int16, torch.int8), ndims=(1,))
    units = units.long().cpu()
    if units.numel() == 0:
        raise ValueError(f"'{name}' is empty: a layer must keep at least one unit")
    if int(units.min()) < 0 or int(units.max()) >= hidden:
        raise ValueError(f"'{name}' must hold units in [0, {hidden}), got {int(units.min())} .. {int(units.max())}")
    units = units.sort().values
    if bool((units[1:] == units[:-1]).any()):
        raise ValueError(f"'{name}' holds a unit twice")
    return units


def _output_columns(kept_directions, per_direction):
    """Feature columns of the output (forward units, then backward units) that survive."""
    return torch.cat([direction * per_direction + units for direction, units in enumerate(kept_directions)])


def _sliced_reader(module, index, columns, features):
    """A copy of ``module`` (a Linear or an RNN reading the output) that reads only ``columns``
    (None: all of them)."""
    name = f"next_layers[{index}]"
    if isinstance(module, nn.Linear):
        size_attribute, weights = "in_features", ["weight"]
    elif type(module) in _GATES:
        size_attribute = "input_size"
        weights = ["weight_ih_l0"] + (["weight_ih_l0_reverse"] if module.bidirectional else [])
    else:
        raise TypeError(f"'{name}' must be nn.Linear, nn.LSTM, nn.GRU or nn.RNN, got {type(module).__name__}")
    reads = getattr(module, size_attribute)
    if reads != features:
        raise ValueError(f"'{name}' reads {reads} features but the RNN gives {features}")
    small = copy.deepcopy(module)
    if columns is None:
        return small
    setattr(small, size_attribute, len(columns))
    with torch.no_grad():
        for weight_name in weights:
            old = getattr(module, weight_name)
            setattr(small, weight_name, nn.Parameter(old[:, columns.to(old.device)].clone(),
                                                     requires_grad=old.requires_grad))
    if size_attribute == "input_size":
        small._init_flat_weights()   # the RNN's cached list of its weights
    return small
