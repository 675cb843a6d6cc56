// Argument checks shared by the CPU and CUDA bindings of the sparse linear ops. The structure is
// CSR of W [M, N] (row_ptr [M+1], col_idx [nnz]) and its transpose (t_ptr [N+1], t_idx [nnz] rows,
// t_perm [nnz]: position of each transposed entry in the values vector), all int32.
#pragma once

#include <torch/types.h>

#include "common/checks.h"

namespace pyprune {

struct SparseShape {
  int64_t batch, in_features, out_features, nnz;
};

inline SparseShape sparse_shape(const at::Tensor& x, const at::Tensor& values,
                                const at::Tensor& row_ptr, const at::Tensor& col_idx,
                                const at::Tensor& t_ptr, const at::Tensor& t_idx,
                                const at::Tensor& t_perm) {
  check_float(x, "x");
  check_dim(x, 2, "x");
  PYPRUNE_CHECK_TYPE(values.scalar_type() == x.scalar_type(), "'values' must have the dtype of 'x' (",
                     x.scalar_type(), "), got ", values.scalar_type());
  check_dim(values, 1, "values");
  for (const auto* t : {&row_ptr, &col_idx, &t_ptr, &t_idx, &t_perm}) {
    check_dtype(*t, at::kInt, "structure (row_ptr, col_idx, t_ptr, t_idx, t_perm)");
    check_same_device(*t, x, "structure", "x");
  }
  check_same_device(values, x, "values", "x");
  const SparseShape s{x.size(0), x.size(1), row_ptr.size(0) - 1, values.size(0)};
  PYPRUNE_CHECK_VALUE(row_ptr.dim() == 1 && s.out_features >= 0, "'row_ptr' must be [M + 1]");
  PYPRUNE_CHECK_VALUE(t_ptr.dim() == 1 && t_ptr.size(0) == s.in_features + 1,
                      "'x' has ", s.in_features, " features but the layer's in_features is ",
                      t_ptr.size(0) - 1);
  PYPRUNE_CHECK_VALUE(col_idx.numel() == s.nnz && t_idx.numel() == s.nnz && t_perm.numel() == s.nnz,
                      "'values' has ", s.nnz, " entries but the mask has ", col_idx.numel());
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
