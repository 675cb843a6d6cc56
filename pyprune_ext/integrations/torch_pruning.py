"""Our Taylor criteria as importances for Torch-Pruning's pruners (``pip install 'pyprune_ext[torch-pruning]'``).

Torch-Pruning finds the dependency groups of a model (a residual add ties the output channels of
every conv feeding it; BatchNorm and the next layer's inputs follow) and removes channels
physically. :class:`TaylorChannelImportance` gives it the scores: the statistics of every
conv/linear output come from our fused per-channel op, gathered by a :class:`~pyprune_ext.ScoreCollector`
over as many batches as you like (and summed over processes), each layer's scores are normalised
as in eq. 4.13, and the scores of a group's layers are reduced as Torch-Pruning's own
importances do (``group_reduction``, ``normalizer``)::

    import torch_pruning as tp
    importance = TaylorChannelImportance("fisher")
    importance.accumulate(model, loader, loss_fn)          # or: with importance.recording(model): ...
    pruner = tp.pruner.MetaPruner(model, example_inputs, importance=importance,
                                  pruning_ratio=0.5, ignored_layers=[model.fc])
    pruner.step()
    importance.reset()                                     # the channels changed: score afresh

Torch-Pruning's group graph covers conv nets; for LSTM/GRU hidden units use
:func:`pyprune_ext.remove_recurrent_units`.
"""
import contextlib
import itertools
import warnings
from typing import Callable, Iterable, Optional

import torch
from torch import nn

try:
    import torch_pruning as tp
    from torch_pruning.pruner import function as tp_function
except ImportError as error:  # pragma: no cover - depends on the environment
    raise ImportError("pyprune_ext.integrations.torch_pruning needs Torch-Pruning: "
                      "pip install 'pyprune_ext[torch-pruning]'") from error

from .._validation import check_choice, check_real
from ..taylor import CRITERIA, NEED_MEANS, ScoreCollector, normalize_scores, ranking_magnitude

__all__ = ["TaylorChannelImportance"]

_OUT_CHANNELS = (tp_function.prune_conv_out_channels, tp_function.prune_linear_out_channels,
                 tp_function.prune_batchnorm_out_channels)


class TaylorChannelImportance(tp.importance.GroupMagnitudeImportance):
    """A Torch-Pruning importance backed by :func:`pyprune_ext.channel_scores`' criteria.

    Args:
        criterion: one of :data:`pyprune_ext.CRITERIA` (``trace`` costs a second pass over the data).
        p: the exponent of eq. 4.13's layer normalisation :math:`\\sqrt{S_c} / (\\sum \\sqrt{S}^p)^{1/p}`,
            which makes layers comparable under ``global_pruning``; ``None`` leaves the raw scores.
        group_reduction, normalizer: as in Torch-Pruning's importances (``"mean"``, ``"sum"``,
            ``"max"``, ``"prod"``, ``"first"``; ``"mean"``, ``"max"``, ``"sum"``, ``None``, ...).
        target_types: the modules whose outputs are scored (default conv, linear and BatchNorm).
        loss_reduction: ``"mean"`` when ``loss_fn`` averages over the batch (PyTorch's default),
            ``"sum"`` when it sums; the criteria are defined on the summed loss.

    A group's score of a channel is the reduction, over the group's layers whose **output**
    channels are pruned (a conv, a linear or a BatchNorm), of that layer's normalised score.
    Layers whose inputs are pruned carry no feature map of those channels and do not vote. Every
    voter's channels are mapped onto the group's root channels (``root_idxs``), as Torch-Pruning's
    own importances do, so the scores always have the root's length: an attention block's qkv
    (3 x heads x dim outputs) votes for the dim channels of its projection, a concatenation's
    parts for their slice of the root, an expansion for the channels it repeats.

    A group in which no layer can vote (its out-channel layers are none of ``target_types``, or
    the loss does not reach them) is scored by the magnitude of its weights, Torch-Pruning's
    ``GroupMagnitudeImportance`` normalised like our scores, with a warning naming its layers,
    once per group: never skipped in silence.
    """

    def __init__(self, criterion="fisher", *, p: Optional[float] = 1.0, group_reduction="mean",
                 normalizer=None, target_types=(nn.modules.conv._ConvNd, nn.Linear,
                                                nn.modules.batchnorm._BatchNorm),
                 loss_reduction="mean"):
        check_choice(group_reduction, "group_reduction", ("mean", "sum", "max", "prod", "first", "gate"))
        super().__init__(group_reduction=group_reduction, normalizer=normalizer,
                         target_types=list(target_types))
        self.criterion = check_choice(criterion, "criterion", CRITERIA)
        self.layer_p = None if p is None else check_real(p, "p", low=0, low_open=True)
        self.loss_reduction = check_choice(loss_reduction, "loss_reduction", ("sum", "mean"))
        self._collector = None
        self._scores = None   # module -> [C] normalised scores, computed on the first call
        self._warned = set()  # groups already reported as scored by magnitude

    # ---- gathering -------------------------------------------------------------------------
    @contextlib.contextmanager
    def recording(self, model: nn.Module):
        """Hooks the target layers of ``model``: every backward pass inside the block adds its
        batch to the statistics. Blocks add up until :meth:`reset`."""
        if self._collector is None:
            modules = {name: m for name, m in model.named_modules()
                       if isinstance(m, tuple(self.target_types))}
            if not modules:
                raise ValueError("'model' has none of the target layer types")
            self._collector = ScoreCollector(modules, loss_reduction=self.loss_reduction,
                                             with_means=self.criterion in NEED_MEANS)
        else:
            self._collector.attach()
        try:
            yield self
        finally:
            self._collector.remove()
            self._scores = None

    def accumulate(self, model: nn.Module, batches: Iterable, loss_fn: Callable, *, max_batches=None):
        """Runs forward and backward over ``batches`` of ``(inputs, targets)`` and records them
        (``trace`` makes a second pass, with the mean gradient of the first). Parameter gradients
        are left as they were.

        The criteria need the gradients of the layers' outputs only, so the backward pass skips
        the weight gradients (about a third of a conv net's forward + backward): the parameters
        stop requiring gradients for the pass, a floating-point input requires one instead, and
        embedding tables keep theirs, so integer inputs (token ids) still carry the gradient."""
        saved = [(p, p.grad, p.requires_grad) for p in model.parameters()]
        if max_batches is not None:
            batches = itertools.islice(batches, max_batches)
        keep = {id(p) for m in model.modules() if isinstance(m, (nn.Embedding, nn.EmbeddingBag))
                for p in m.parameters(recurse=False)}

        def weights_carry_the_gradient():
            for param, _, wanted in saved:
                param.requires_grad_(wanted)

        def floating(inputs):
            return isinstance(inputs, torch.Tensor) and inputs.is_floating_point()

        def forward(inputs, targets):
            if floating(inputs):
                # a copy of a leaf that needs a gradient: the model may still change it in place
                inputs = inputs.detach().requires_grad_(True).clone()
            return loss_fn(model(inputs), targets)

        def step(batch):
            inputs, targets = batch
            if not keep and not floating(inputs):
                weights_carry_the_gradient()   # integer inputs and no embedding table
            loss = forward(inputs, targets)
            if not loss.requires_grad:   # the input's gradient does not reach the loss
                weights_carry_the_gradient()
                loss = forward(inputs, targets)
            loss.backward()
        try:
            for param, _, wanted in saved:
                param.requires_grad_(wanted and id(param) in keep)
            with self.recording(model):
                self._collector.gather(batches, step, trace=self.criterion == "trace")
        finally:
            for param, grad, wanted in saved:
                param.requires_grad_(wanted)
                param.grad = grad
        return self

    def all_reduce(self, group=None):
        """Sums the statistics over the processes of ``group`` (``torch.distributed``)."""
        self._require_statistics()
        self._collector.all_reduce(group)
        self._scores = None
        return self

    def reset(self):
        """Forgets the statistics (after a pruning step the layers have other channels)."""
        if self._collector is not None:
            self._collector.remove()
        self._collector, self._scores = None, None
        return self

    # ---- scoring ---------------------------------------------------------------------------
    def layer_scores(self):
        """``{layer name: [C] float64}``: each scored layer's criterion, normalised by eq. 4.13."""
        scores = self._layer_scores()
        return {name: scores[m] for name, m in self._collector.modules.items() if m in scores}

    def _require_statistics(self):
        if self._collector is None or all(s.count == 0 for s in self._collector.stats.values()):
            raise RuntimeError("no statistics yet: call accumulate() or run backward passes inside "
                               "recording() first")

    def _layer_scores(self):
        if self._scores is None:
            self._require_statistics()
            self._scores = {}
            for name, stats in self._collector.stats.items():
                if stats.count == 0:
                    continue   # a layer the loss does not depend on
                score = ranking_magnitude(stats.scores((self.criterion,))[self.criterion], self.criterion)
                if self.layer_p is not None:
                    score = normalize_scores(score, self.layer_p)
                self._scores[self._collector.modules[name]] = score
        return self._scores

    @torch.no_grad()
    def __call__(self, group):
        scores = self._layer_scores()
        group_imp, group_idxs = [], []
        for i, (dep, idxs) in enumerate(group):
            layer = dep.target.module
            if dep.handler not in _OUT_CHANNELS or layer not in scores:
                continue
            score = scores[layer]
            if score.shape[0] != _out_channels(layer):
                name = next(n for n, m in self._collector.modules.items() if m is layer)
                raise RuntimeError(f"the statistics of '{name}' have {score.shape[0]} "
                                   f"channels but the layer now has {_out_channels(layer)}: call reset() "
                                   "and accumulate again after each pruning step")
            group_imp.append(score[torch.as_tensor(idxs, dtype=torch.long, device=score.device)])
            group_idxs.append(group[i].root_idxs)
        root_size = len(group[0].idxs)
        if not group_imp:
            return self._magnitude_fallback(group, root_size)
        return self._normalize(_reduce_to_root(group_imp, group_idxs, root_size, self.group_reduction),
                               self.normalizer)

    def _magnitude_fallback(self, group, root_size):
        layers = tuple(dict.fromkeys(str(dep.target) for dep, _ in group))
        if layers not in self._warned:
            self._warned.add(layers)
            warnings.warn(f"TaylorChannelImportance('{self.criterion}'): no layer of the group "
                          f"{', '.join(layers)} has statistics (no conv, linear or BatchNorm output reached by "
                          "the loss): it is scored by the magnitude of its weights", stacklevel=3)
        imp = super().__call__(group)
        if imp is None or imp.numel() != root_size:
            return None   # nothing Torch-Pruning can weigh either: its pruners leave the group whole
        imp = imp.double().abs()
        return (normalize_scores(imp * imp, self.layer_p) if self.layer_p is not None else imp).float()


def _reduce_to_root(group_imp, group_idxs, root_size, reduction):
    """Torch-Pruning's group reduction with the result sized to the root (its own reduction sizes
    it after the first vote, the root in its importances, often not in ours): each voter's
    scores are scattered onto its ``root_idxs``, in float64."""
    if reduction == "prod":
        reduced = torch.ones(root_size, dtype=torch.float64)
    elif reduction == "max":
        reduced = torch.full((root_size,), -float("inf"), dtype=torch.float64)
    else:
        reduced = torch.zeros(root_size, dtype=torch.float64)
    seen = torch.zeros(root_size, dtype=torch.bool)
    votes = 0
    for i, (imp, root_idxs) in enumerate(zip(group_imp, group_idxs)):
        if any(r is None for r in root_idxs):
            continue
        index = torch.as_tensor(root_idxs, dtype=torch.long)
        imp = imp.to(torch.float64).cpu()
        if reduction in ("sum", "mean"):
            reduced.scatter_add_(0, index, imp)
        elif reduction == "max":
            reduced.scatter_reduce_(0, index, imp, reduce="amax")
        elif reduction == "prod":
            reduced.scatter_reduce_(0, index, imp, reduce="prod")
        elif reduction == "first" and votes == 0 or reduction == "gate" and i == len(group_imp) - 1:
            reduced.scatter_(0, index, imp)
        seen[index] = True
        votes += 1
    if reduction == "mean" and votes:
        reduced /= votes
    if reduction == "max":
        reduced[~seen] = 0.0
    return reduced.float()   # Torch-Pruning's importances are float32: global ranking concatenates them


def _out_channels(layer):
    for attribute in ("out_channels", "out_features", "num_features"):
        if hasattr(layer, attribute):
            return getattr(layer, attribute)
    raise TypeError(f"cannot tell the output channels of {type(layer).__name__}")

