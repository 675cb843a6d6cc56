"""Builds the CUDA kernels for the CPU (tests/cuda_on_cpu/build.sh) and calls their launch APIs
through ctypes with NumPy arrays; host memory stands in for device memory."""
import ctypes
import os
import subprocess

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
P, I64, I32, D, INT = ctypes.c_void_p, ctypes.c_int64, ctypes.c_int32, ctypes.c_double, ctypes.c_int

SIGNATURES = {
    "sim_channel_stats": [INT, P, P, P, I64, I64, I64, INT, INT, P, P, P, P, P, P],
    "sim_spmm_rows": [INT, I64, I64, P, P, P, P, P, P, P],
    "sim_sddmm_rows": [INT, I64, I64, P, P, P, P, P],
    "sim_info_counts": [INT, P, P, I64, I64, P, P, INT, I64, I64, I64, INT, INT, INT, P, P, P],
    "sim_info_bin_codes": [INT, P, P, INT, I64, I64, I64, INT, P, P],
    "sim_info_scores": [P, P, I64, INT, INT, INT, D, INT, P, P, P],
    "sim_info_local_te": [INT, P, P, I64, I64, P, INT, I64, I64, I64, INT, INT, INT, P, D, P, P],
    "sim_label_regions": [P, I64, I64, I64, INT, P, P, P],
    "sim_region_sums": [INT, P, P, P, I64, I64, P, P],
    "sim_param_scores": [INT, P, P, I64, D, P],
    "sim_topk_mask": [INT, P, P, I64, D, I64, P, P],
}


class KernelError(RuntimeError):
    """A kernel broke CUDA's rules (cudasim reported it) or failed."""


def build(out_dir, mutate=None, reuse=None):
    """Builds libcuda_on_cpu.so into ``out_dir`` (``mutate``: 'file.cu:sed expression')."""
    env = dict(os.environ)
    env.pop("MUTATE", None)
    env.pop("REUSE", None)
    if mutate:
        env["MUTATE"] = mutate
    if reuse:
        env["REUSE"] = reuse
    subprocess.run(["bash", os.path.join(HERE, "build.sh"), out_dir], check=True, env=env,
                   capture_output=True, text=True)
    return Kernels(os.path.join(out_dir, "libcuda_on_cpu.so"))


def ptr(a):
    return None if a is None else ctypes.c_void_p(a.ctypes.data)


def dtype_code(a):
    return {np.dtype(np.float32): 0, np.dtype(np.float64): 1, np.dtype(np.uint16): 2}[a.dtype]


class Kernels:
    def __init__(self, path):
        self.lib = ctypes.CDLL(path)
        for name, args in SIGNATURES.items():
            getattr(self.lib, name).argtypes = args
            getattr(self.lib, name).restype = INT
        self.lib.sim_last_error.restype = ctypes.c_char_p
        self.lib.sim_label_regions_scratch_bytes.argtypes = [I64, I64, I64]
        self.lib.sim_label_regions_scratch_bytes.restype = I64

    def configure(self, *, os_threads=1, reverse=False, max_shared_bytes=227 * 1024):
        self.lib.sim_set_os_threads(os_threads)
        self.lib.sim_set_reverse(int(reverse))
        self.lib.sim_set_max_shared_bytes(max_shared_bytes)

    def _call(self, name, *args):
        if getattr(self.lib, name)(*args) != 0:
            raise KernelError(self.lib.sim_last_error().decode())

    def channel_stats(self, x, g, gbar=None, with_means=False):
        n, c = x.shape[:2]
        p = int(np.prod(x.shape[2:])) if x.ndim > 2 else 1
        out = {k: np.zeros(c) for k in ("sq", "dot", "dot2", "trace")}
        out["sum_x"], out["sum_g"] = np.zeros((c, p)), np.zeros((c, p))
        self._call("sim_channel_stats", dtype_code(x), ptr(x), ptr(g), ptr(gbar), n, c, p, int(with_means),
                   int(gbar is not None), *(ptr(out[k]) for k in ("sq", "dot", "dot2", "sum_x", "sum_g", "trace")))
        return out

    def spmm_rows(self, ptr_, idx, perm, values, in_t, bias=None):
        rows, batch = len(ptr_) - 1, in_t.shape[1]
        out = np.full((rows, batch), np.nan, dtype=values.dtype)
        self._call("sim_spmm_rows", dtype_code(values), rows, batch, ptr(ptr_), ptr(idx), ptr(perm), ptr(values),
                   ptr(in_t), ptr(bias), ptr(out))
        return out

    def sddmm_rows(self, ptr_, idx, dy_t, x_t):
        dw = np.full(len(idx), np.nan, dtype=dy_t.dtype)
        self._call("sim_sddmm_rows", dtype_code(dy_t), len(ptr_) - 1, dy_t.shape[1], ptr(ptr_), ptr(idx), ptr(dy_t),
                   ptr(x_t), ptr(dw))
        return dw

    def info_counts(self, x, labels, edges, uniform, classes, history, perm=None):
        s, t, n = x.shape
        bins = edges.shape[1] - 1
        states = bins ** history if history else 0
        transitions = np.zeros((n, states * bins * classes), dtype=np.int64)
        side = np.zeros((n, bins * classes), dtype=np.int64)
        flags = np.zeros(2, dtype=np.int32)
        seq_stride, step_stride = (0, 0) if labels is None else (
            (labels.strides[0] // 8, labels.strides[1] // 8 if labels.ndim == 2 else 0))
        self._call("sim_info_counts", dtype_code(x), ptr(x), ptr(labels), seq_stride, step_stride, ptr(perm),
                   ptr(edges), int(uniform), s, t, n, bins, classes, history, ptr(transitions), ptr(side), ptr(flags))
        return transitions.reshape(n, states, bins, classes), side.reshape(n, bins, classes), flags

    def info_bin_codes(self, x, edges, uniform):
        s, t, n = x.shape
        codes = np.full(x.shape, 65535, dtype=np.uint16)
        flags = np.zeros(1, dtype=np.int32)
        self._call("sim_info_bin_codes", dtype_code(x), ptr(x), ptr(edges), int(uniform), s, t, n,
                   edges.shape[1] - 1, ptr(codes), ptr(flags))
        return codes, flags

    def info_scores(self, joint, transitions, history, unit, miller_madow=False):
        n, bins, classes = joint.shape
        out = [np.full(n, np.nan) for _ in range(3)]
        self._call("sim_info_scores", ptr(joint), ptr(transitions), n, bins, classes, history, unit,
                   int(miller_madow), *map(ptr, out))
        return out

    def info_local_te(self, x, labels, edges, uniform, classes, history, transitions, unit):
        s, t, n = x.shape
        bins = edges.shape[1] - 1
        table = np.zeros(transitions.size)
        out = np.full((s, t - history, n), np.nan, dtype=x.dtype)
        seq_stride, step_stride = (0, 0) if labels is None else (labels.strides[0] // 8, labels.strides[1] // 8)
        self._call("sim_info_local_te", dtype_code(x), ptr(x), ptr(labels), seq_stride, step_stride, ptr(edges),
                   int(uniform), s, t, n, bins, classes, history, ptr(transitions), unit, ptr(table), ptr(out))
        return out

    def label_regions(self, mask, eight):
        k, h, w = mask.shape
        labels = np.full(mask.shape, -7, dtype=np.int32)
        counts = np.full(k, -7, dtype=np.int64)
        scratch = np.zeros(max(1, self.lib.sim_label_regions_scratch_bytes(k, h, w)), dtype=np.uint8)
        self._call("sim_label_regions", ptr(mask), k, h, w, int(eight), ptr(labels), ptr(counts), ptr(scratch))
        return labels, counts

    def region_sums(self, labels, weights, counts):
        offsets = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
        sizes, sums = np.zeros(int(counts.sum()), dtype=np.int64), np.zeros(int(counts.sum()))
        self._call("sim_region_sums", dtype_code(weights), ptr(labels), ptr(weights), ptr(offsets), labels.shape[0],
                   labels[0].size, ptr(sizes), ptr(sums))
        return sizes, sums

    def param_scores(self, theta, grad, alpha):
        out = np.full_like(theta, np.nan)
        self._call("sim_param_scores", dtype_code(theta), ptr(theta), ptr(grad), theta.size, alpha, ptr(out))
        return out

    def topk_mask(self, theta, grad, alpha, keep):
        mask = np.zeros(theta.size, dtype=np.bool_)
        nonfinite = np.zeros(1, dtype=np.int32)
        self._call("sim_topk_mask", dtype_code(theta), ptr(theta), ptr(grad), theta.size, alpha, keep, ptr(mask),
                   ptr(nonfinite))
        return mask, bool(nonfinite[0])
