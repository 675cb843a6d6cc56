// Launch API of the CUDA sparse linear kernels: raw pointers, sizes and a stream, no torch types.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace pyprune {
namespace cuda {

// out_t [rows][batch] = sum over row r's nonzeros of values[perm ? perm[j] : j] * in_t[idx[j]][:]
// (+ bias[r]); in_t is batch-major [*, batch].
template <typename scalar_t>
void spmm_rows(int64_t rows, int64_t batch, const int32_t* ptr, const int32_t* idx,
               const int32_t* perm, const scalar_t* values, const scalar_t* in_t,
               const scalar_t* bias, scalar_t* out_t, cudaStream_t stream);

// dw[j] = dot(dy_t[row of j][:], x_t[idx[j]][:]) over the batch (sampled dense-dense product).
template <typename scalar_t>
void sddmm_rows(int64_t rows, int64_t batch, const int32_t* ptr, const int32_t* idx,
                const scalar_t* dy_t, const scalar_t* x_t, scalar_t* dw, cudaStream_t stream);

}  // namespace cuda
}  // namespace pyprune
