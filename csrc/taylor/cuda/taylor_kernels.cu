// CUDA kernels of the Taylor family. Channel statistics: a warp per (sample, channel) reduces the
// dot products over positions (coalesced) and adds them to the per-channel float64 sums with
// atomics; a second kernel, one thread per (channel, position), sums x and g over samples when the
// means are needed. Top-k: radix selection with shared-memory histograms (the host picks the bin),
// ties ranked with a block scan.
#include <cub/block/block_scan.cuh>

#include <cstring>

#include "taylor/cuda/taylor_kernels.h"

namespace pyprune {
namespace cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;

__device__ __forceinline__ double warp_sum(double v) {
  for (int offset = 16; offset > 0; offset /= 2) v += __shfl_down_sync(0xffffffffu, v, offset);
  return v;
}

template <typename scalar_t>
__global__ void channel_dots_kernel(const scalar_t* __restrict__ x, const scalar_t* __restrict__ g,
                                    const double* __restrict__ gbar, ChannelShape s,
                                    double* sq, double* dot, double* dot2, double* trace) {
  const int64_t warp = (blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x) / 32;
  const int lane = threadIdx.x % 32;
  if (warp >= s.samples * s.channels) return;
  const int64_t c = warp % s.channels;
  const scalar_t* xs = x + warp * s.positions;
  const scalar_t* gs = g + warp * s.positions;
  double q = 0, d = 0, e = 0;
  for (int64_t p = lane; p < s.positions; p += 32) {
    const double xv = static_cast<double>(xs[p]), gv = static_cast<double>(gs[p]);
    q += xv * xv;
    d += xv * gv;
    if (gbar != nullptr) e += xv * gbar[c * s.positions + p];
  }
  q = warp_sum(q);
  d = warp_sum(d);
  e = warp_sum(e);
  if (lane == 0) {
    atomicAdd(sq + c, q);
    atomicAdd(dot + c, d);
    atomicAdd(dot2 + c, d * d);
    if (gbar != nullptr) atomicAdd(trace + c, e * e);
  }
}

template <typename scalar_t>
__global__ void channel_means_kernel(const scalar_t* __restrict__ x, const scalar_t* __restrict__ g,
                                     ChannelShape s, double* __restrict__ sum_x,
                                     double* __restrict__ sum_g) {
  const int64_t cp = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  const int64_t plane = s.channels * s.positions;
  if (cp >= plane) return;
  double sx = 0, sg = 0;
  for (int64_t n = 0; n < s.samples; ++n) {
    sx += static_cast<double>(x[n * plane + cp]);
    sg += static_cast<double>(g[n * plane + cp]);
  }
  sum_x[cp] += sx;
  sum_g[cp] += sg;
}

template <typename scalar_t>
struct KeyOf;
template <>
struct KeyOf<float> {
  __device__ static uint64_t get(float v) { return __float_as_uint(v); }
  static constexpr int bits = 32;
};
template <>
struct KeyOf<double> {
  __device__ static uint64_t get(double v) { return static_cast<uint64_t>(__double_as_longlong(v)); }
  static constexpr int bits = 64;
};

template <typename scalar_t>
__device__ __forceinline__ scalar_t score_of(scalar_t theta, scalar_t grad, scalar_t alpha) {
  return fabs(grad * theta) + alpha * theta * theta;
}

template <typename scalar_t>
__global__ void param_scores_kernel(const scalar_t* __restrict__ theta,
                                    const scalar_t* __restrict__ grad, int64_t n, scalar_t alpha,
                                    scalar_t* __restrict__ out) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    out[i] = score_of(theta[i], grad[i], alpha);
}

template <typename scalar_t>
__global__ void radix_histogram_kernel(const scalar_t* __restrict__ theta,
                                       const scalar_t* __restrict__ grad, int64_t n,
                                       scalar_t alpha, uint64_t prefix, int fixed_bits, int shift,
                                       unsigned long long* hist, int* flags) {
  __shared__ unsigned int local[kRadixBins];
  for (int i = threadIdx.x; i < kRadixBins; i += blockDim.x) local[i] = 0;
  __syncthreads();
  constexpr int kBits = KeyOf<scalar_t>::bits;
  bool bad = false;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const scalar_t v = score_of(theta[i], grad[i], alpha);
    bad |= !isfinite(v);
    const uint64_t key = KeyOf<scalar_t>::get(v);
    if (fixed_bits == 0 || (key >> (kBits - fixed_bits)) == (prefix >> (kBits - fixed_bits)))
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
    mine += KeyOf<scalar_t>::get(score_of(theta[start + j], grad[start + j], alpha)) == threshold;
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
    keys[j] = start + j < n ? KeyOf<scalar_t>::get(score_of(theta[start + j], grad[start + j], alpha)) : 0;
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
void channel_stats(const scalar_t* x, const scalar_t* g, const double* gbar,
                   const ChannelShape& shape, double* sq, double* dot, double* dot2,
                   double* sum_x, double* sum_g, double* trace, cudaStream_t stream) {
  const int64_t warps = shape.samples * shape.channels;
  if (warps == 0) return;
  channel_dots_kernel<scalar_t><<<(warps + kWarps - 1) / kWarps, kThreads, 0, stream>>>(
      x, g, shape.with_trace ? gbar : nullptr, shape, sq, dot, dot2, trace);
  if (shape.with_means && shape.positions > 0) {
    const int64_t plane = shape.channels * shape.positions;
    channel_means_kernel<scalar_t><<<(plane + kThreads - 1) / kThreads, kThreads, 0, stream>>>(
        x, g, shape, sum_x, sum_g);
  }
}

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
  template void channel_stats<T>(const T*, const T*, const double*, const ChannelShape&,         \
                                 double*, double*, double*, double*, double*, double*,           \
                                 cudaStream_t);                                                  \
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
