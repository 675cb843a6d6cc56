"""Connected regions + mean |w| per region: K masks of 28x28 at 50% density, and one 4096x4096 mask,
against scipy.ndimage.label (per mask and on the stack), cc3d on the stack and OpenCV's
connectedComponentsWithStats per mask. Ours runs on one thread for the per-mask figure."""
import numpy as np
import pytest
import torch

import pyprune_ext as pp

from conftest import OURS, QUICK, needs_cuda, run

MASK_COUNTS = [100, 200] if QUICK else [100, 10_000]
BIG = 512 if QUICK else 4096
_cache = {}


def data(k, h, w):
    key = (k, h, w)
    if key not in _cache:
        _cache.clear()
        gen = torch.Generator().manual_seed(0)
        mask = torch.rand(k, h, w, generator=gen) < 0.5
        weights = torch.randn(k, h, w, generator=gen)
        _cache[key] = (mask, weights)
    return _cache[key]


def scipy_per_mask(mask, weights):
    from scipy import ndimage
    out = []
    for m, w in zip(mask, np.abs(weights)):
        labels, n = ndimage.label(m)
        out.append(ndimage.mean(w, labels, np.arange(1, n + 1)))
    return out


def scipy_stack(mask, weights):
    from scipy import ndimage
    structure = np.zeros((3, 3, 3), dtype=bool)
    structure[1] = ndimage.generate_binary_structure(2, 1)  # no links between masks
    labels, n = ndimage.label(mask, structure=structure)
    return ndimage.mean(np.abs(weights), labels, np.arange(1, n + 1))


def cc3d_stack(mask, weights):
    """The stack side by side in one 2-D image, an empty column between masks (cc3d's 3-D
    connectivities would link neighbouring masks)."""
    import cc3d
    k, h, w = mask.shape
    image = np.zeros((h, k, w + 1), dtype=bool)
    image[:, :, :w] = mask.transpose(1, 0, 2)
    labels = cc3d.connected_components(image.reshape(h, k * (w + 1)), connectivity=4)
    n = int(labels.max())
    flat = labels.reshape(h, k, w + 1)[:, :, :w].transpose(1, 0, 2).ravel()
    sizes = np.bincount(flat, minlength=n + 1)[1:]
    sums = np.bincount(flat, weights=np.abs(weights).ravel(), minlength=n + 1)[1:]
    return sums / np.maximum(sizes, 1)


def opencv_per_mask(mask, weights):
    """OpenCV's labelling per mask, sizes and sums of |w| by np.bincount over its labels (the
    fastest OpenCV composition; its WithStats variant computes bounding boxes and centroids too)."""
    import cv2
    out = []
    for m, w in zip(mask.view(np.uint8), np.abs(weights)):
        n, labels = cv2.connectedComponents(m, connectivity=4)
        flat = labels.ravel()
        sums = np.bincount(flat, weights=w.ravel(), minlength=n)[1:]
        out.append(sums / np.bincount(flat, minlength=n)[1:])
    return out


def opencv_with_stats_per_mask(mask, weights):
    import cv2
    out = []
    for m, w in zip(mask.view(np.uint8), np.abs(weights)):
        n, labels, stats, _ = cv2.connectedComponentsWithStats(m, connectivity=4)
        sums = np.bincount(labels.ravel(), weights=w.ravel(), minlength=n)[1:]
        out.append(sums / stats[1:, cv2.CC_STAT_AREA])
    return out


PEERS = {"scipy per mask": scipy_per_mask, "scipy stack": scipy_stack, "cc3d stack": cc3d_stack,
         "opencv WithStats per mask": opencv_with_stats_per_mask, "opencv per mask": opencv_per_mask}
OPTIONAL = {"cc3d stack": "cc3d", "opencv per mask": "cv2", "opencv WithStats per mask": "cv2"}


def _ours(mask, weights):
    return pp.region_stats(mask, weights).mean_abs


@pytest.mark.parametrize("impl", [*PEERS, *OURS])
@pytest.mark.parametrize("k", MASK_COUNTS)
def test_label_and_mean_28x28(benchmark, k, impl):
    mask, weights = data(k, 28, 28)
    benchmark.group = f"regions: {k} masks 28x28 at 50%, label + mean |w| per region (1 thread)"
    benchmark.extra_info["per_mask"] = k
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        if impl.startswith("ours"):
            run(benchmark, _ours, mask, weights)
        else:
            pytest.importorskip(OPTIONAL.get(impl, "scipy"))
            run(benchmark, PEERS[impl], mask.numpy(), weights.numpy(), slow=k > 1000 and "per mask" in impl)
    finally:
        torch.set_num_threads(previous)


@pytest.mark.parametrize("impl", ["scipy stack", "cc3d stack", "opencv per mask", *OURS])
def test_one_large_mask(benchmark, impl):
    mask, weights = data(1, BIG, BIG)
    benchmark.group = f"regions: one {BIG}x{BIG} mask at 50%, label + mean |w|"
    if impl.startswith("ours"):
        run(benchmark, _ours, mask, weights)
    else:
        pytest.importorskip(OPTIONAL.get(impl, "scipy"))
        run(benchmark, PEERS[impl], mask.numpy(), weights.numpy())


@needs_cuda
@pytest.mark.parametrize("impl", ["opencv per mask", "ours (cpu)", "ours"])
@pytest.mark.parametrize("shape", [(k, 28, 28) for k in MASK_COUNTS] + [(1, BIG, BIG)],
                         ids=lambda s: "x".join(map(str, s)))
def test_regions_cuda(benchmark, shape, impl):
    """Label + mean |w| on the GPU against our CPU op (all threads) and OpenCV looped per mask."""
    mask, weights = data(*shape)
    benchmark.group = f"regions: {shape[0]} masks {shape[1]}x{shape[2]} at 50%, label + mean |w| [cuda]"
    if impl == "ours":
        run(benchmark, _ours, mask.cuda(), weights.cuda(), cuda=True)
    elif impl == "ours (cpu)":
        run(benchmark, _ours, mask, weights)
    else:
        pytest.importorskip("cv2")
        run(benchmark, PEERS[impl], mask.numpy(), weights.numpy())
