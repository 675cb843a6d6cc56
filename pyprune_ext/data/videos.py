"""Moving-digits clips, in the spirit of the papers' Action-MNIST / UIUC video sets: each clip moves
one MNIST digit through a 32x32 frame by a sequence of motions, with the motion class as the label
of every step. Seeded and deterministic; rendered for all clips at once with affine_grid/grid_sample.
"""
import math
from typing import NamedTuple

import torch
import torch.nn.functional as F

from . import mnist_subset

__all__ = ["MOTIONS", "VideoClips", "moving_digits"]

MOTIONS = ("up", "down", "left", "right", "zoom_in", "zoom_out", "rotate")

# Per-step change of (x, y, log scale, angle) of each motion; image coordinates in [-1, 1], y down.
_STEP = {
    "up": (0.0, -0.06, 0.0, 0.0),
    "down": (0.0, 0.06, 0.0, 0.0),
    "left": (-0.06, 0.0, 0.0, 0.0),
    "right": (0.06, 0.0, 0.0, 0.0),
    "zoom_in": (0.0, 0.0, 0.05, 0.0),
    "zoom_out": (0.0, 0.0, -0.05, 0.0),
    "rotate": (0.0, 0.0, 0.0, math.pi / 16),
}


class VideoClips(NamedTuple):
    frames: torch.Tensor   # float32 [S, T, 1, size, size] in [0, 1]
    labels: torch.Tensor   # int64 [S, T]: index into MOTIONS of each step's motion
    digits: torch.Tensor   # int64 [S]: the digit shown


def moving_digits(num_clips, steps=20, *, size=32, motions_per_clip=3, seed=0, train=True):
    """``num_clips`` clips of ``steps`` frames; each clip is cut into ``motions_per_clip`` segments of
    random lengths, each with a random motion class. The digit starts centred at 60% of the frame
    and stays inside it (positions are clamped, scale kept in [0.35, 0.9])."""
    if num_clips < 1 or steps < 1 or motions_per_clip < 1:
        raise ValueError("'num_clips', 'steps' and 'motions_per_clip' must be >= 1")
    gen = torch.Generator().manual_seed(seed)
    (x_train, y_train), (x_test, y_test) = mnist_subset()
    images, digits = (x_train, y_train) if train else (x_test, y_test)
    pick = torch.randint(0, len(images), (num_clips,), generator=gen)
    sprites = images[pick].view(num_clips, 1, 28, 28)
    digits = digits[pick]

    # Motion class per step: segment boundaries drawn per clip.
    labels = torch.empty(num_clips, steps, dtype=torch.int64)
    for clip in range(num_clips):
        cuts = torch.sort(torch.randperm(steps - 1, generator=gen)[:motions_per_clip - 1] + 1).values
        bounds = [0, *cuts.tolist(), steps]
        classes = torch.randint(0, len(MOTIONS), (len(bounds) - 1,), generator=gen)
        for i in range(len(bounds) - 1):
            labels[clip, bounds[i]:bounds[i + 1]] = classes[i]

    step_table = torch.tensor([_STEP[m] for m in MOTIONS])  # [M, 4]
    state = torch.zeros(num_clips, 4)                       # x, y, log scale, angle
    state[:, 2] = math.log(0.6)
    frames = torch.empty(num_clips, steps, 1, size, size)
    for t in range(steps):
        if t > 0:
            state += step_table[labels[:, t]]
            state[:, 2].clamp_(math.log(0.35), math.log(0.9))
            limit = 1 - state[:, 2].exp()
            state[:, 0] = torch.maximum(torch.minimum(state[:, 0], limit), -limit)
            state[:, 1] = torch.maximum(torch.minimum(state[:, 1], limit), -limit)
        scale, angle = state[:, 2].exp(), state[:, 3]
        cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
        # output pixel p samples the sprite at A (p - centre): rotate by -angle, shrink by scale
        theta = torch.stack([torch.stack([cos, sin, -(cos * state[:, 0] + sin * state[:, 1])], 1),
                             torch.stack([-sin, cos, -(-sin * state[:, 0] + cos * state[:, 1])], 1)], 1)
        grid = F.affine_grid(theta, (num_clips, 1, size, size), align_corners=False)
        frames[:, t] = F.grid_sample(sprites, grid, align_corners=False, padding_mode="zeros")
    return VideoClips(frames.clamp_(0, 1), labels, digits)
