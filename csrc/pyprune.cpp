// Every op schema of pyprune_ext, in one place. Device files add implementations with
// TORCH_LIBRARY_IMPL(pyprune, CPU/CUDA, m) (csrc/<family>/<family>_cpu.cpp, csrc/<family>/cuda/) and the
// sparse layer's autograd kernel (csrc/sparse/autograd/); pyprune_ext/_ops.py adds fake kernels.
// The math of each op is in docs/ and the docstrings of the Python wrappers.
#include <Python.h>
#include <torch/library.h>

#include <string>
#include <vector>

#include "common/cpu_capability.h"
#include "common/limits.h"

namespace {

std::string cpu_capability_op() { return pyprune::cpu_capability_name(pyprune::cpu_capability()); }

void set_cpu_capability_op(const std::string& name) { pyprune::set_cpu_capability(name); }

std::string supported_cpu_capabilities_op() {
  std::string names;
  for (const std::string& name : pyprune::supported_cpu_capabilities()) names += (names.empty() ? "" : ",") + name;
  return names;
}

std::vector<int64_t> limits_op() {
  return {pyprune::kMaxBins, pyprune::kMaxCellsLog2, pyprune::kMaxSparseIndex};
}

}  // namespace

TORCH_LIBRARY(pyprune, m) {
  // ---- the library itself (pyprune_ext/_ops.py) ----
  // The CPU kernels' instruction-set capability in use, choosing one (tests, benchmarks), and the
  // capabilities this build has and this CPU runs, comma-separated, lowest first.
  m.def("cpu_capability() -> str", &cpu_capability_op);
  m.def("set_cpu_capability(str name) -> ()", &set_cpu_capability_op);
  m.def("supported_cpu_capabilities() -> str", &supported_cpu_capabilities_op);
  // (max bins, log2 of the max histogram cells per neuron, max sparse index): csrc/common/limits.h.
  m.def("limits() -> int[]", &limits_op);

  // ---- information scores (docs/information.md) ----
  // x [..., N] -> per-neuron (min, max) over all leading dims, float64; raises on NaN/Inf.
  m.def("neuron_range(Tensor x) -> (Tensor, Tensor)");
  // x [S, T, N], labels [S] or [S, T] int64 (None: one class), edges [N, B+1] float64.
  // -> joint counts [N, B, K] of (x_t, y_t) and transition counts [N, B^history, B, K] of
  //    (own history, x_{t+1}, y_t) inside each sequence; history 0 counts no transitions.
  m.def(
      "info_counts(Tensor x, Tensor? labels, Tensor edges, bool uniform, int num_classes, "
      "int history) -> (Tensor, Tensor)");
  // Adds the counts info_counts would return to joint_counts and transition_counts, in place
  // (num_classes = joint_counts.size(2)): a streaming accumulator's update. On bad input it
  // raises and leaves both as they were.
  m.def(
      "info_counts_add_(Tensor(a!) joint_counts, Tensor(b!) transition_counts, Tensor x, "
      "Tensor? labels, Tensor edges, bool uniform, int history) -> ()");
  // counts -> (entropy [N], mutual information [N], transfer entropy [N]) in float64.
  m.def(
      "info_scores(Tensor joint_counts, Tensor transition_counts, float base, bool miller_madow)"
      " -> (Tensor, Tensor, Tensor)");
  // Pointwise TE of every transition: [S, T - history, N] in x's dtype.
  m.def(
      "info_local_te(Tensor x, Tensor? labels, Tensor edges, bool uniform, int num_classes, "
      "int history, float base) -> Tensor");
  // The bin of every value of x [S, T, N]: codes [S, T, N], uint16.
  m.def("info_bin_codes(Tensor x, Tensor edges, bool uniform) -> Tensor");
  // MI and TE [P, N] from x's bin codes (info_bin_codes), with the labels of sequence perms[p, s]
  // given to sequence s: a permutation test bins x once for all its calls.
  m.def(
      "info_permutation_null(Tensor codes, Tensor? labels, int bins, int num_classes, "
      "int history, Tensor perms, float base, bool miller_madow) -> (Tensor, Tensor)");

  // ---- Taylor importance (docs/taylor.md) ----
  // x, g [Nb, C, *spatial] -> float64 sums over samples: sq [C] = sum ||x_n||^2, dot [C] =
  // sum x_n.g_n, dot2 [C] = sum (x_n.g_n)^2, sum_x/sum_g [C, P] (or [C, 0] without with_means),
  // trace [C] = sum (x_n.gbar)^2 (zeros without gbar [C, P]).
  m.def(
      "taylor_channel_stats(Tensor x, Tensor g, Tensor? gbar, bool with_means) "
      "-> (Tensor, Tensor, Tensor, Tensor, Tensor, Tensor)");
  // |grad * theta| + alpha * theta^2, elementwise.
  m.def("param_scores(Tensor theta, Tensor grad, float alpha) -> Tensor");
  // Bool masks keeping the `keep` largest param scores over all tensors (ties in index order).
  m.def("global_topk_masks(Tensor[] params, Tensor[] grads, float alpha, int keep) -> Tensor[]");

  // ---- sparse masked linear layer (docs/sparse.md) ----
  // x [B, N], W [M, N] in CSR (values [nnz], row_ptr [M+1], col_idx [nnz], int32) with its
  // transpose (t_ptr [N+1], t_idx [nnz], t_perm [nnz]) -> y = x W^T + bias, [B, M].
  m.def(
      "sparse_linear(Tensor x, Tensor values, Tensor? bias, Tensor row_ptr, Tensor col_idx, "
      "Tensor t_ptr, Tensor t_idx, Tensor t_perm) -> Tensor");
  // -> (dx [B, N] = grad_y W, dW [nnz] at the mask, db [M]); an output not asked for is empty [0].
  m.def(
      "sparse_linear_backward(Tensor grad_y, Tensor x, Tensor values, Tensor row_ptr, "
      "Tensor col_idx, Tensor t_ptr, Tensor t_idx, Tensor t_perm, bool need_x, bool need_w, "
      "bool need_b) -> (Tensor, Tensor, Tensor)");

  // ---- connected components of pruned weights (docs/regions.md) ----
  // mask [K, H, W] bool -> labels int32 [K, H, W] (0 = unset, regions 1..n_k numbered in raster
  // order of their first pixel), counts int64 [K], and per region in mask order: size int64 [R],
  // sum and mean of |weights| float64 [R] (zeros without weights). connectivity 4 or 8.
  m.def(
      "label_regions(Tensor mask, Tensor? weights, int connectivity) "
      "-> (Tensor, Tensor, Tensor, Tensor, Tensor)");
}

// The module object holds nothing: `import pyprune_ext._C` runs the static op registrations, and
// everything Python calls is an op, so the library needs only the limited (stable) C API of
// CPython and one build serves every CPython from 3.9 (setup.py: py_limited_api).
extern "C" PyObject* PyInit__C(void) {
  static struct PyModuleDef module_def = {PyModuleDef_HEAD_INIT, "_C", nullptr, -1, nullptr};
  return PyModule_Create(&module_def);
}
