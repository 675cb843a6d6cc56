// CUDA kernels of the sparse linear layer (row-split, in the spirit of Sputnik): operands are
// batch-major, so a block owns one sparse row and a tile of the batch, its threads walk the batch
// (coalesced loads of each referenced input row) while the row's indices and values are staged in
// shared memory once per chunk. The sampled product gives each nonzero a warp that reduces its
// dot product over the batch with shuffles.
#include "sparse/cuda/sparse_kernels.h"

namespace pyprune {
namespace cuda {
namespace {

constexpr int kThreads = 128;
constexpr int kStage = 128;  // nonzeros staged in shared memory at a time

template <typename scalar_t>
__global__ void spmm_rows_kernel(int64_t batch, const int32_t* __restrict__ ptr,
                                 const int32_t* __restrict__ idx, const int32_t* __restrict__ perm,
                                 const scalar_t* __restrict__ values,
                                 const scalar_t* __restrict__ in_t, const scalar_t* __restrict__ bias,
                                 scalar_t* __restrict__ out_t) {
  __shared__ int32_t cols[kStage];
  __shared__ scalar_t vals[kStage];
  const int64_t r = blockIdx.y;
  const int64_t b = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  scalar_t acc = bias != nullptr ? bias[r] : scalar_t(0);
  for (int32_t start = ptr[r]; start < ptr[r + 1]; start += kStage) {
    const int32_t count = min(kStage, ptr[r + 1] - start);
    __syncthreads();
    for (int32_t k = threadIdx.x; k < count; k += blockDim.x) {
      cols[k] = idx[start + k];
      vals[k] = values[perm != nullptr ? perm[start + k] : start + k];
    }
    __syncthreads();
    if (b < batch)
      for (int32_t k = 0; k < count; ++k) acc += vals[k] * in_t[static_cast<int64_t>(cols[k]) * batch + b];
  }
  if (b < batch) out_t[r * batch + b] = acc;
}

template <typename scalar_t>
__global__ void sddmm_kernel(int64_t rows, int64_t batch, const int32_t* __restrict__ ptr,
                             const int32_t* __restrict__ idx, const scalar_t* __restrict__ dy_t,
                             const scalar_t* __restrict__ x_t, scalar_t* __restrict__ dw) {
  const int64_t warp = (blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x) / 32;
  const int lane = threadIdx.x % 32;
  if (warp >= rows) return;
  const scalar_t* dy = dy_t + warp * batch;
  for (int32_t j = ptr[warp]; j < ptr[warp + 1]; ++j) {
    const scalar_t* x = x_t + static_cast<int64_t>(idx[j]) * batch;
    scalar_t sum = 0;
    for (int64_t b = lane; b < batch; b += 32) sum += dy[b] * x[b];
    for (int offset = 16; offset > 0; offset /= 2) sum += __shfl_down_sync(0xffffffffu, sum, offset);
    if (lane == 0) dw[j] = sum;
  }
}

}  // namespace

template <typename scalar_t>
void spmm_rows(int64_t rows, int64_t batch, const int32_t* ptr, const int32_t* idx,
               const int32_t* perm, const scalar_t* values, const scalar_t* in_t,
               const scalar_t* bias, scalar_t* out_t, cudaStream_t stream) {
  if (rows == 0 || batch == 0) return;
  const dim3 grid(static_cast<unsigned>((batch + kThreads - 1) / kThreads), static_cast<unsigned>(rows));
  spmm_rows_kernel<scalar_t><<<grid, kThreads, 0, stream>>>(batch, ptr, idx, perm, values, in_t,
                                                            bias, out_t);
}

template <typename scalar_t>
void sddmm_rows(int64_t rows, int64_t batch, const int32_t* ptr, const int32_t* idx,
                const scalar_t* dy_t, const scalar_t* x_t, scalar_t* dw, cudaStream_t stream) {
  if (rows == 0) return;
  const int64_t threads = rows * 32;
  sddmm_kernel<scalar_t><<<static_cast<unsigned>((threads + 255) / 256), 256, 0, stream>>>(
      rows, batch, ptr, idx, dy_t, x_t, dw);
}

template void spmm_rows<float>(int64_t, int64_t, const int32_t*, const int32_t*, const int32_t*,
                               const float*, const float*, const float*, float*, cudaStream_t);
template void spmm_rows<double>(int64_t, int64_t, const int32_t*, const int32_t*, const int32_t*,
                                const double*, const double*, const double*, double*, cudaStream_t);
template void sddmm_rows<float>(int64_t, int64_t, const int32_t*, const int32_t*, const float*,
                                const float*, float*, cudaStream_t);
template void sddmm_rows<double>(int64_t, int64_t, const int32_t*, const int32_t*, const double*,
                                 const double*, double*, cudaStream_t);

}  // namespace cuda
}  // namespace pyprune
