// CUDA kernels of the single-shot score and the global top-k: radix digit histograms in shared
// memory (the host picks the bin, radix_select.h), ties ranked with a block scan.
#include <cub/block/block_scan.cuh>

#include <algorithm>

#include "topk/cuda/topk_kernels.h"
#include "topk/topk_math.h"

namespace pyprune {
namespace cuda {
namespace {

constexpr int kThreads = 256;

template <typename scalar_t>
__global__ void param_scores_kernel(const scalar_t* __restrict__ theta,
                                    const scalar_t* __restrict__ grad, int64_t n, scalar_t alpha,
                                    scalar_t* __restrict__ out) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    out[i] = param_score(theta[i], grad[i], alpha);
}

template <typename scalar_t>
__global__ void radix_histogram_kernel(const scalar_t* __restrict__ theta,
                                       const scalar_t* __restrict__ grad, int64_t n,
                                       scalar_t alpha, uint64_t prefix, int fixed_bits, int shift,
                                       unsigned long long* hist, int* flags) {
  using Key = ScoreKey<scalar_t>;
  __shared__ unsigned int local[kRadixBins];
  for (int i = threadIdx.x; i < kRadixBins; i += blockDim.x) local[i] = 0;
  __syncthreads();
  bool bad = false;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const scalar_t v = param_score(theta[i], grad[i], alpha);
    bad |= !isfinite(v);
    const uint64_t key = Key::of(v);
    if (key_in_range(key, prefix, fixed_bits, Key::bits))
      atomicAdd(local + ((key >> shift) & (kRadixBins - 1)), 1u);
  }
  if (bad) atomicOr(flags, 1);
  __syncthreads();
  for (int i = threadIdx.x; i < kRadixBins; i += blockDim.x)
    if (local[i] != 0) atomicAdd(hist + i, static_cast<unsigned long long>(local[i]));
}

// topk layout: block b covers elements [b * kThreads * kPerThread, ...), each thread a contiguous
// run of kPerThread, so ranks follow the element order.
constexpr int kPerThread = 8;
constexpr int64_t kPerBlock = static_cast<int64_t>(kThreads) * kPerThread;

template <typename scalar_t>
__global__ void count_ties_kernel(const scalar_t* __restrict__ theta,
                                  const scalar_t* __restrict__ grad, int64_t n, scalar_t alpha,
                                  uint64_t threshold, int64_t* block_ties) {
  using Scan = cub::BlockScan<int, kThreads>;
  __shared__ typename Scan::TempStorage temp;
  const int64_t start = blockIdx.x * kPerBlock + threadIdx.x * static_cast<int64_t>(kPerThread);
  int mine = 0;
  for (int j = 0; j < kPerThread && start + j < n; ++j)
    mine += ScoreKey<scalar_t>::of(param_score(theta[start + j], grad[start + j], alpha)) == threshold;
  int total = 0;
  Scan(temp).ExclusiveSum(mine, mine, total);
  if (threadIdx.x == 0) block_ties[blockIdx.x] = total;
}

template <typename scalar_t>
__global__ void topk_write_kernel(const scalar_t* __restrict__ theta,
                                  const scalar_t* __restrict__ grad, int64_t n, scalar_t alpha,
                                  uint64_t threshold, const int64_t* __restrict__ block_offsets,
                                  int64_t ties_kept, bool* __restrict__ mask) {
  using Scan = cub::BlockScan<int, kThreads>;
  __shared__ typename Scan::TempStorage temp;
  const int64_t start = blockIdx.x * kPerBlock + threadIdx.x * static_cast<int64_t>(kPerThread);
  uint64_t keys[kPerThread];
  int ties = 0;
  for (int j = 0; j < kPerThread; ++j) {
    keys[j] = start + j < n ? ScoreKey<scalar_t>::of(param_score(theta[start + j], grad[start + j], alpha)) : 0;
    ties += start + j < n && keys[j] == threshold;
  }
  int rank = 0, total = 0;
  Scan(temp).ExclusiveSum(ties, rank, total);
  int64_t global_rank = (block_offsets != nullptr ? block_offsets[blockIdx.x] : 0) + rank;
  for (int j = 0; j < kPerThread && start + j < n; ++j) {
    bool kept = keys[j] > threshold;
    if (keys[j] == threshold) kept = block_offsets == nullptr || global_rank++ < ties_kept;
    mask[start + j] = kept;
  }
}

unsigned grid_for(int64_t n) {
  return static_cast<unsigned>(std::min<int64_t>((n + kThreads - 1) / kThreads, 4096));
}

}  // namespace

template <typename scalar_t>
void param_scores(const scalar_t* theta, const scalar_t* grad, int64_t n, double alpha,
                  scalar_t* out, cudaStream_t stream) {
  if (n == 0) return;
  param_scores_kernel<scalar_t><<<grid_for(n), kThreads, 0, stream>>>(
      theta, grad, n, static_cast<scalar_t>(alpha), out);
}

template <typename scalar_t>
void radix_histogram(const scalar_t* theta, const scalar_t* grad, int64_t n, double alpha,
                     uint64_t prefix, int fixed_bits, int shift, unsigned long long* hist,
                     int* flags, cudaStream_t stream) {
  if (n == 0) return;
  radix_histogram_kernel<scalar_t><<<grid_for(n), kThreads, 0, stream>>>(
      theta, grad, n, static_cast<scalar_t>(alpha), prefix, fixed_bits, shift, hist, flags);
}

int64_t topk_blocks(int64_t n) { return (n + kPerBlock - 1) / kPerBlock; }

template <typename scalar_t>
void count_ties(const scalar_t* theta, const scalar_t* grad, int64_t n, double alpha,
                uint64_t threshold, int64_t* block_ties, cudaStream_t stream) {
  if (n == 0) return;
  count_ties_kernel<scalar_t><<<static_cast<unsigned>(topk_blocks(n)), kThreads, 0, stream>>>(
      theta, grad, n, static_cast<scalar_t>(alpha), threshold, block_ties);
}

template <typename scalar_t>
void topk_write(const scalar_t* theta, const scalar_t* grad, int64_t n, double alpha,
                uint64_t threshold, const int64_t* block_offsets, int64_t ties_kept, bool* mask,
                cudaStream_t stream) {
  if (n == 0) return;
  topk_write_kernel<scalar_t><<<static_cast<unsigned>(topk_blocks(n)), kThreads, 0, stream>>>(
      theta, grad, n, static_cast<scalar_t>(alpha), threshold, block_offsets, ties_kept, mask);
}

#define PYPRUNE_INSTANTIATE(T)                                                                    \
  template void param_scores<T>(const T*, const T*, int64_t, double, T*, cudaStream_t);          \
  template void radix_histogram<T>(const T*, const T*, int64_t, double, uint64_t, int, int,      \
                                   unsigned long long*, int*, cudaStream_t);                     \
  template void count_ties<T>(const T*, const T*, int64_t, double, uint64_t, int64_t*,           \
                              cudaStream_t);                                                     \
  template void topk_write<T>(const T*, const T*, int64_t, double, uint64_t, const int64_t*,     \
                              int64_t, bool*, cudaStream_t);
PYPRUNE_INSTANTIATE(float)
PYPRUNE_INSTANTIATE(double)
#undef PYPRUNE_INSTANTIATE

}  // namespace cuda
}  // namespace pyprune
