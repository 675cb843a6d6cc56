// Argument checks shared by the CPU and CUDA bindings of the sparse linear ops. The structure is
// CSR of W [M, N] (row_ptr [M+1], col_idx [nnz]) and its transpose (t_ptr [N+1], t_idx [nnz] rows,
// t_perm [nnz]: position of each transposed entry in the values vector), all int32.
#pragma once

#include <torch/types.h>

#include <algorithm>
#include <array>
#include <limits>
#include <mutex>
#include <utility>
#include <vector>

#include "common/checks.h"
#include "common/limits.h"
#include "common/parallel.h"
#include "sparse/sparse_shape.h"

namespace pyprune {

// The structure arrays: 1-D, int32, contiguous, on x's device.
inline void check_structure_arrays(const at::Tensor& x, const at::Tensor& row_ptr, const at::Tensor& col_idx,
                                   const at::Tensor& t_ptr, const at::Tensor& t_idx, const at::Tensor& t_perm) {
  const std::pair<const at::Tensor*, const char*> arrays[] = {
      {&row_ptr, "row_ptr"}, {&col_idx, "col_idx"}, {&t_ptr, "t_ptr"}, {&t_idx, "t_idx"}, {&t_perm, "t_perm"}};
  for (const auto& [t, name] : arrays) {
    check_dtype(*t, at::kInt, name);
    check_dim(*t, 1, name);
    check_same_device(*t, x, name, "x");
    PYPRUNE_CHECK_VALUE(t->is_contiguous(), "'", name, "' must be contiguous");
  }
}

// The sizes the shape implies for the index arrays.
inline void check_structure_sizes(const at::Tensor& col_idx, const at::Tensor& t_idx, const at::Tensor& t_perm,
                                  const SparseShape& s) {
  PYPRUNE_CHECK_VALUE(col_idx.size(0) == s.nnz, "'col_idx' must have one entry per value (", s.nnz, "), got ",
                      col_idx.size(0));
  PYPRUNE_CHECK_VALUE(t_idx.size(0) == s.nnz, "'t_idx' must have one entry per value (", s.nnz, "), got ",
                      t_idx.size(0));
  PYPRUNE_CHECK_VALUE(t_perm.size(0) == s.nnz, "'t_perm' must have one entry per value (", s.nnz, "), got ",
                      t_perm.size(0));
  PYPRUNE_CHECK_VALUE(s.nnz <= kMaxSparseIndex, "'values' has ", s.nnz,
                      " entries; the int32 structure holds at most 2^31 - 1");
}

// Pointers from 0 to nnz, never decreasing, and indices in [0, limit): what keeps every read
// and write of the kernels in bounds. O(M + N) plus one min/max pass over each index array,
// checked on every call (a structure can change between calls). CPU tensors are scanned with
// plain loops: ATen's reductions cost more in dispatch than the scan itself at these sizes.
inline void check_pointers(const at::Tensor& ptr, int64_t nnz, const char* name) {
  int64_t first = 0, last = 0;
  bool ordered = true;
  if (ptr.is_cpu()) {
    const int32_t* p = ptr.data_ptr<int32_t>();
    const int64_t n = ptr.size(0);
    first = p[0];
    last = p[n - 1];
    for (int64_t i = 1; i < n; ++i) ordered &= p[i] >= p[i - 1];
  } else {
    first = ptr.narrow(0, 0, 1).item<int32_t>();
    last = ptr.narrow(0, ptr.size(0) - 1, 1).item<int32_t>();
    ordered = ptr.size(0) < 2 ||
              (ptr.narrow(0, 1, ptr.size(0) - 1) >= ptr.narrow(0, 0, ptr.size(0) - 1)).all().item<bool>();
  }
  PYPRUNE_CHECK_VALUE(first == 0 && last == nnz, "'", name, "' must run from 0 to nnz = ", nnz, ", got ",
                      first, " ... ", last);
  PYPRUNE_CHECK_VALUE(ordered, "'", name, "' must never decrease");
}

inline void check_indices(const at::Tensor& idx, int64_t limit, const char* name, const char* what) {
  const int64_t n = idx.numel();
  if (n == 0) return;
  int64_t lo = 0, hi = 0;
  if (idx.is_cpu()) {
    const int32_t* p = idx.data_ptr<int32_t>();
    int32_t mn = p[0], mx = p[0];
#pragma omp parallel for reduction(min : mn) reduction(max : mx) num_threads(num_threads()) if (n > (1 << 18))
    for (int64_t i = 0; i < n; ++i) {
      mn = std::min(mn, p[i]);
      mx = std::max(mx, p[i]);
    }
    lo = mn;
    hi = mx;
  } else {
    const auto [mn, mx] = at::aminmax(idx);
    lo = mn.item<int32_t>();
    hi = mx.item<int32_t>();
  }
  PYPRUNE_CHECK_VALUE(lo >= 0 && hi < limit, "'", name, "' entries must lie in [0, ", what, " = ", limit,
                      "), got ", lo, " ... ", hi);
}

// The transpose must be exact: t_perm a permutation of [0, nnz) sending entry j of column c
// (row t_idx[j]) to the CSR slot of that same entry (in row t_idx[j], with col_idx == c).
// Otherwise dX and dW are silently wrong (a duplicate slot leaves a dW entry unwritten). O(nnz)
// with random reads, so the result is remembered per structure (see ValidatedStructures).
inline void check_transpose(const at::Tensor& row_ptr_in, const at::Tensor& col_idx_in, const at::Tensor& t_ptr_in,
                            const at::Tensor& t_idx_in, const at::Tensor& t_perm_in) {
  const at::Tensor row_ptr = row_ptr_in.cpu(), col_idx = col_idx_in.cpu(), t_ptr = t_ptr_in.cpu(),
                   t_idx = t_idx_in.cpu(), t_perm = t_perm_in.cpu();
  const int32_t* rp = row_ptr.data_ptr<int32_t>();
  const int32_t* ci = col_idx.data_ptr<int32_t>();
  const int32_t* tp = t_ptr.data_ptr<int32_t>();
  const int32_t* ti = t_idx.data_ptr<int32_t>();
  const int32_t* pm = t_perm.data_ptr<int32_t>();
  std::vector<bool> taken(col_idx.numel(), false);
  bool exact = true;
  for (int64_t c = 0; c + 1 < t_ptr.numel() && exact; ++c) {
    for (int32_t j = tp[c]; j < tp[c + 1]; ++j) {
      const int32_t p = pm[j], r = ti[j];
      if (taken[p] || p < rp[r] || p >= rp[r + 1] || ci[p] != c) {
        exact = false;
        break;
      }
      taken[p] = true;
    }
  }
  PYPRUNE_CHECK_VALUE(exact, "the transposed structure ('t_ptr', 't_idx', 't_perm') is not the exact transpose "
                      "of ('row_ptr', 'col_idx'); SparseLinear builds both from a mask");
}

// Structures already found exact, remembered by tensor identity and version: a structure used
// in every training step is checked once. In-place changes through torch bump the version and
// bring a new check; changes that bypass it (.data, NumPy views) are still kept in bounds by
// check_pointers / check_indices, which run every call.
class ValidatedStructures {
 public:
  static ValidatedStructures& instance() {
    static ValidatedStructures cache;
    return cache;
  }

  bool contains(const std::array<const at::Tensor*, 5>& tensors) {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const Entry& e : entries_)
      if (matches(e, tensors)) return true;
    return false;
  }

  void add(const std::array<const at::Tensor*, 5>& tensors) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (entries_.size() == kCapacity) entries_.erase(entries_.begin());
    Entry e;
    for (size_t i = 0; i < tensors.size(); ++i) {
      e.impls.emplace_back(tensors[i]->getIntrusivePtr());
      e.versions[i] = tensors[i]->_version();
      e.data[i] = tensors[i]->const_data_ptr();
    }
    entries_.push_back(std::move(e));
  }

 private:
  using Weak = c10::weak_intrusive_ptr<c10::TensorImpl, c10::UndefinedTensorImpl>;
  struct Entry {
    std::vector<Weak> impls;  // weak: a remembered structure does not keep its tensors alive
    std::array<int64_t, 5> versions;
    std::array<const void*, 5> data;
  };
  static constexpr size_t kCapacity = 32;

  static bool matches(const Entry& e, const std::array<const at::Tensor*, 5>& tensors) {
    for (size_t i = 0; i < tensors.size(); ++i) {
      const at::Tensor& t = *tensors[i];
      if (e.impls[i].expired() || e.impls[i]._unsafe_get_target() != t.unsafeGetTensorImpl() ||
          e.versions[i] != t._version() || e.data[i] != t.const_data_ptr())
        return false;
    }
    return true;
  }

  std::mutex mutex_;
  std::vector<Entry> entries_;
};

// The shape of a sparse op's operands, after the checks that keep it in bounds. The forward
// reads only the CSR half (row_ptr, col_idx); the backward reads both halves and relies on the
// transpose being exact.
enum class SparsePass { kForward, kBackward };

inline SparseShape sparse_shape(const at::Tensor& x, const at::Tensor& values,
                                const at::Tensor& row_ptr, const at::Tensor& col_idx,
                                const at::Tensor& t_ptr, const at::Tensor& t_idx,
                                const at::Tensor& t_perm, SparsePass pass) {
  check_float(x, "x");
  check_dim(x, 2, "x");
  PYPRUNE_CHECK_TYPE(values.scalar_type() == x.scalar_type(), "'values' must have the dtype of 'x' (",
                     x.scalar_type(), "), got ", values.scalar_type());
  check_dim(values, 1, "values");
  check_same_device(values, x, "values", "x");
  check_structure_arrays(x, row_ptr, col_idx, t_ptr, t_idx, t_perm);
  PYPRUNE_CHECK_VALUE(row_ptr.size(0) >= 1, "'row_ptr' must be [M + 1], got shape ", row_ptr.sizes());
  const SparseShape s{x.size(0), x.size(1), row_ptr.size(0) - 1, values.size(0)};
  PYPRUNE_CHECK_VALUE(t_ptr.size(0) == s.in_features + 1, "'x' has ", s.in_features,
                      " features but 't_ptr' is [in_features + 1] for in_features = ", t_ptr.size(0) - 1);
  check_structure_sizes(col_idx, t_idx, t_perm, s);
  check_pointers(row_ptr, s.nnz, "row_ptr");
  check_indices(col_idx, s.in_features, "col_idx", "in_features");
  if (pass == SparsePass::kForward) return s;
  check_pointers(t_ptr, s.nnz, "t_ptr");
  check_indices(t_idx, s.out_features, "t_idx", "out_features");
  check_indices(t_perm, s.nnz, "t_perm", "nnz");
  const std::array<const at::Tensor*, 5> structure = {&row_ptr, &col_idx, &t_ptr, &t_idx, &t_perm};
  if (!ValidatedStructures::instance().contains(structure)) {
    check_transpose(row_ptr, col_idx, t_ptr, t_idx, t_perm);
    ValidatedStructures::instance().add(structure);
  }
  return s;
}

inline void check_bias(const c10::optional<at::Tensor>& bias, const at::Tensor& x,
                       const SparseShape& s) {
  if (!bias) return;
  PYPRUNE_CHECK_VALUE(bias->dim() == 1 && bias->size(0) == s.out_features &&
                          bias->scalar_type() == x.scalar_type(),
                      "'bias' must be [out_features = ", s.out_features, "] of x's dtype");
  check_same_device(*bias, x, "bias", "x");
}

inline void check_grad_y(const at::Tensor& grad_y, const at::Tensor& x, const SparseShape& s) {
  PYPRUNE_CHECK_VALUE(grad_y.sizes() == at::IntArrayRef({s.batch, s.out_features}) &&
                          grad_y.scalar_type() == x.scalar_type(),
                      "'grad_y' must be [", s.batch, ", ", s.out_features, "] of x's dtype, got ",
                      grad_y.sizes());
  check_same_device(grad_y, x, "grad_y", "x");
}

}  // namespace pyprune
