"""Reading pickled NumPy arrays that ship inside packages without running pickled code: the
unpickler admits NumPy's array reconstruction and nothing else, so a pickle naming any other
global (``os.system``, a class of some module) is refused before anything is called."""
import gzip
import io
import pickle

import numpy as np

__all__ = ["UnsafePickleError", "load_numpy_pickle", "load_object_npy"]

# (module, name) of every global that reconstructing an ndarray may name: numpy 2 moved core to
# _core, protocol 5 rebuilds arrays with numeric._frombuffer, and a protocol-2 pickle written by
# Python 3 spells the array's bytes as _codecs.encode(text, "latin1"), a pure conversion.
_ALLOWED = ({(f"numpy.{core}.multiarray", name) for core in ("core", "_core") for name in ("_reconstruct", "scalar")}
            | {(f"numpy.{core}.numeric", "_frombuffer") for core in ("core", "_core")}
            | {("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")})


class UnsafePickleError(pickle.UnpicklingError):
    """A pickle named a global outside NumPy's array reconstruction."""


class _ArraysOnly(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) not in _ALLOWED:
            raise UnsafePickleError(f"refusing to unpickle the global {module}.{name}: only NumPy arrays "
                                    "(and lists, tuples, dicts, strings and numbers of them) are read")
        return super().find_class(module, name)


def load_numpy_pickle(path_or_file, *, encoding="latin1"):
    """Unpickles ``path_or_file`` (a path, ``.gz`` read through gzip, or a binary file) admitting only
    NumPy arrays inside plain containers; ``encoding`` reads Python 2 pickles."""
    if isinstance(path_or_file, (str, bytes)) or hasattr(path_or_file, "__fspath__"):
        opener = gzip.open if str(path_or_file).endswith(".gz") else open
        with opener(path_or_file, "rb") as f:
            return _ArraysOnly(f, encoding=encoding).load()
    return _ArraysOnly(path_or_file, encoding=encoding).load()


def load_object_npy(path):
    """The object held by an ``.npy`` file of dtype object (``np.save`` of a dict or a list), read
    through the same restricted unpickler instead of ``np.load(allow_pickle=True)``."""
    with open(path, "rb") as f:
        version = np.lib.format.read_magic(f)
        read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                       else np.lib.format.read_array_header_2_0)
        shape, _, dtype = read_header(f)
        if dtype != np.dtype(object):
            raise ValueError(f"{path}: expected an object array, got dtype {dtype}")
        array = load_numpy_pickle(io.BufferedReader(f), encoding="latin1")
    array = np.asarray(array, dtype=object).reshape(shape)
    return array.item() if array.shape == () else array
