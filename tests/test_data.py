"""Shipped data: the MNIST subset split and the moving-digits video generator."""
import pytest
import torch

from pyprune_ext.data import mnist_subset
from pyprune_ext.data.videos import MOTIONS, moving_digits


def test_mnist_subset_split_is_stratified_disjoint_and_deterministic():
    (x, y), (xt, yt) = mnist_subset()
    assert x.shape == (4000, 784) and xt.shape == (1000, 784) and x.dtype == torch.float32
    assert 0 <= float(x.min()) and float(x.max()) <= 1
    assert torch.equal(torch.bincount(yt), torch.full((10,), 100))
    (x2, y2), _ = mnist_subset()
    assert torch.equal(x, x2) and torch.equal(y, y2)
    rows = {tuple(r) for r in x[:, ::7].tolist()}
    assert not any(tuple(r) in rows for r in xt[:50, ::7].tolist())  # no test image in train


def test_moving_digits_shapes_labels_and_seed():
    clips = moving_digits(12, 15, seed=4)
    assert clips.frames.shape == (12, 15, 1, 32, 32) and clips.frames.dtype == torch.float32
    assert clips.labels.shape == (12, 15) and clips.labels.min() >= 0 and clips.labels.max() < len(MOTIONS)
    assert clips.digits.shape == (12,)
    again = moving_digits(12, 15, seed=4)
    assert torch.equal(clips.frames, again.frames) and torch.equal(clips.labels, again.labels)
    assert not torch.equal(clips.labels, moving_digits(12, 15, seed=5).labels)
    segments = (clips.labels[:, 1:] != clips.labels[:, :-1]).sum(1)
    assert (segments <= 2).all()  # three motions per clip at most two changes


def centroid(frames):
    ys, xs = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
    mass = frames.sum((-1, -2))
    return (frames * xs).sum((-1, -2)) / mass, (frames * ys).sum((-1, -2)) / mass, mass


@pytest.mark.parametrize("motion", MOTIONS)
def test_each_motion_moves_the_digit_its_way(motion):
    clips = moving_digits(200, 6, motions_per_clip=1, seed=7)
    chosen = clips.frames[clips.labels[:, 0] == MOTIONS.index(motion), :, 0]
    assert len(chosen) > 5
    cx, cy, mass = centroid(chosen)
    dx, dy = (cx[:, -1] - cx[:, 0]).mean(), (cy[:, -1] - cy[:, 0]).mean()
    growth = (mass[:, -1] / mass[:, 0]).mean()
    expected = {"up": dy < -1, "down": dy > 1, "left": dx < -1, "right": dx > 1,
                "zoom_in": growth > 1.2, "zoom_out": growth < 0.8,
                "rotate": abs(growth - 1) < 0.1 and (chosen[:, -1] - chosen[:, 0]).abs().mean() > 0.05}
    assert expected[motion], (motion, dx, dy, growth)
