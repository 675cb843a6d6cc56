"""The models the workflows share: the digits MLP and a small ResNet for 28x28 digits."""
from typing import Sequence, Tuple

import torch
from torch import nn
import torch.nn.functional as F

from ..data import digits
from .common import train, weight_mask

__all__ = ["mlp", "trained_mlp", "BasicBlock", "DigitsResNet", "NormalizedDigits", "PretrainedNotInstalled",
           "ccexam_mnistnet"]

CCEXAM_HINT = "pip install --no-deps ccexam==1.0.0"


def mlp(sizes: Sequence[int]):
    """Linear-ReLU stack over flat 784-pixel digits, e.g. ``mlp((784, 300, 100, 10))``."""
    layers = []
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        if i:
            layers.append(nn.ReLU())
        layers.append(nn.Linear(fan_in, fan_out))
    return nn.Sequential(*layers)


def trained_mlp(config, epochs, desc="train"):
    """The digits MLP ``784-<config.hidden>-10`` trained by plain SGD (``config.lr``,
    ``config.batch_size``) on ``config.data``, seeded; returns ``(model, train_data, test_data,
    fit, data_note)`` with ``fit`` the keyword arguments for retraining it the same way."""
    torch.manual_seed(config.seed)
    train_data, test_data, data_note = digits(config.data)
    model = mlp((784, *config.hidden, 10))
    fit = {"lr": config.lr, "batch_size": config.batch_size, "settings": config}
    train(model, train_data, epochs=epochs, desc=desc, **fit)
    return model, train_data, test_data, fit, data_note


class BasicBlock(nn.Module):
    """ResNet's basic block: two 3x3 conv + BatchNorm, added to the input (through a 1x1 conv +
    BatchNorm when the width or the stride changes)."""

    def __init__(self, in_channels, out_channels, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                                          nn.BatchNorm2d(out_channels))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class DigitsResNet(nn.Module):
    """A ResNet for 28x28 digits: a 3x3 stem, one basic block per stage at ``widths`` (the second
    and third stride 2), global average pooling and a linear classifier. Input ``[N, 784]`` or
    ``[N, 1, 28, 28]``. The residual adds tie the channels of the convs that feed them, the case
    a dependency graph has to get right."""

    def __init__(self, widths: Tuple[int, int, int] = (16, 32, 64), classes=10):
        super().__init__()
        w1, w2, w3 = widths
        self.stem = nn.Sequential(nn.Conv2d(1, w1, 3, 1, 1, bias=False), nn.BatchNorm2d(w1), nn.ReLU())
        self.stages = nn.Sequential(BasicBlock(w1, w1), BasicBlock(w1, w2, 2), BasicBlock(w2, w3, 2))
        self.fc = nn.Linear(w3, classes)

    def forward(self, x):
        x = self.stages(self.stem(x.view(-1, 1, 28, 28)))
        return self.fc(x.mean((2, 3)))


def dense_copy_and_masks(model, sizes):
    """A plain ``mlp(sizes)`` computing what the pruned ``model`` computes (each layer's weight
    with its torch.nn.utils.prune mask applied), and ``{layer name: bool mask}`` of its weights."""
    dense = mlp(sizes)
    masks = {}
    with torch.no_grad():
        for (name, target), source in zip(
                ((n, m) for n, m in dense.named_modules() if isinstance(m, nn.Linear)),
                (m for m in model.modules() if isinstance(m, nn.Linear))):
            target.weight.copy_(source.weight)
            target.bias.copy_(source.bias)
            masks[name] = weight_mask(source).clone()
    return dense, masks


class PretrainedNotInstalled(ImportError):
    """ccexam, which ships the pre-trained MNIST CNN, is not installed."""


class NormalizedDigits(nn.Module):
    """Feeds flat ``[N, 784]`` digits in [0, 1] (as the workflows hold them) to ``net``, a CNN
    trained on ``[N, 1, 28, 28]`` images normalised by ``mean`` and ``std``."""

    def __init__(self, net, mean=0.1307, std=0.3081):
        super().__init__()
        self.net, self.mean, self.std = net, mean, std

    def forward(self, x):
        return self.net((x.reshape(-1, 1, 28, 28) - self.mean) / self.std)


def ccexam_mnistnet():
    """The MNIST CNN that ccexam trained and ships (``ccexam.models.MNISTNet``: conv 32 - conv 64 -
    fc 128 - fc 10, 421,642 parameters, 99.05 % on the MNIST test set), loaded with
    ``weights_only=True`` and wrapped in :class:`NormalizedDigits`."""
    import importlib.util
    import os
    try:
        from ccexam.models import MNISTNet
    except ImportError as error:
        raise PretrainedNotInstalled(f"the pre-trained MNIST CNN needs ccexam: {CCEXAM_HINT}") from error
    roots = importlib.util.find_spec("ccexam").submodule_search_locations
    path = next((os.path.join(r, "weights", "mnist.pth") for r in roots
                 if os.path.exists(os.path.join(r, "weights", "mnist.pth"))), None)
    if path is None:
        raise PretrainedNotInstalled(f"ccexam is installed without weights/mnist.pth: {CCEXAM_HINT}")
    net = MNISTNet(input_size=28)
    net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return NormalizedDigits(net.eval())
