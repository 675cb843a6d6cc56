// CUDA kernels of the Taylor family. Channel statistics: a warp per (sample, channel) reduces the
// dot products over positions (coalesced) and adds them to the per-channel float64 sums with
// atomics; a second kernel, one thread per (channel, position), sums x and g over samples when the
// means are needed.
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

#define PYPRUNE_INSTANTIATE(T)                                                                    \
  template void channel_stats<T>(const T*, const T*, const double*, const ChannelShape&,         \
                                 double*, double*, double*, double*, double*, double*,           \
                                 cudaStream_t);
PYPRUNE_INSTANTIATE(float)
PYPRUNE_INSTANTIATE(double)
#undef PYPRUNE_INSTANTIATE

}  // namespace cuda
}  // namespace pyprune
