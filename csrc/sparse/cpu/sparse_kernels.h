// The CPU kernels of the sparse linear layer, as the entry points (sparse_cpu.cpp) call them: raw
// pointers, strides and sizes. The structure is CSR of W [M, N] (row_ptr, col_idx) and its
// transpose (t_ptr, t_idx, t_perm), all int32 and already checked.
#pragma once

#include <cstdint>

#include "common/cpu_kernel_table.h"
#include "sparse/sparse_shape.h"

namespace pyprune {

// A dense operand [rows, features] read through its strides.
template <typename scalar_t>
struct Strided {
  const scalar_t* data;
  int64_t batch_stride, feature_stride;
};

// y [batch, M] (contiguous) = x W^T (+ bias [M], may be null).
template <typename scalar_t>
using SparseForwardFn = void (*)(const SparseShape& shape, Strided<scalar_t> x,
                                 const int32_t* row_ptr, const int32_t* col_idx,
                                 const scalar_t* values, const scalar_t* bias, scalar_t* y);

// dx [batch, N] = dy W (contiguous; null: not asked for) and dw [nnz] = dy^T x at the mask (null:
// not asked for), from dy [batch, M].
template <typename scalar_t>
using SparseBackwardFn = void (*)(const SparseShape& shape, Strided<scalar_t> dy, Strided<scalar_t> x,
                                  const int32_t* row_ptr, const int32_t* col_idx,
                                  const int32_t* t_ptr, const int32_t* t_idx, const int32_t* t_perm,
                                  const scalar_t* values, scalar_t* dx, scalar_t* dw);

PYPRUNE_DECLARE_CPU_KERNEL(sparse_forward_kernel, FloatingKernel<SparseForwardFn>);
PYPRUNE_DECLARE_CPU_KERNEL(sparse_backward_kernel, FloatingKernel<SparseBackwardFn>);

}  // namespace pyprune
