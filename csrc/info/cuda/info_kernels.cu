// CUDA kernels of the information ops. Counting: a block owns up to 32 adjacent neurons (one
// lane each, so the reads of a row coalesce) and a chunk of sequences; its rows of threads walk
// whole sequences and count into a shared-memory histogram per lane, flushed once with global
// atomics. Histograms too large for shared memory are counted in global memory directly.
#include <algorithm>

#include "common/binning.h"
#include "info/cuda/info_kernels.h"
#include "info/info_math.h"

namespace pyprune {
namespace cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kMaxLanes = 32;

__device__ __forceinline__ void bump(unsigned int* shared, int64_t* global, int64_t i) {
  if (shared != nullptr) {
    atomicAdd(shared + i, 1u);
  } else {
    atomicAdd(reinterpret_cast<unsigned long long*>(global + i), 1ull);
  }
}

template <typename scalar_t>
__global__ void info_counts_kernel(const scalar_t* __restrict__ x, LabelView labels,
                                   const double* __restrict__ edges, bool uniform,
                                   InfoShape shape, int lanes, int64_t seq_per_block,
                                   bool use_shared, int64_t* __restrict__ transitions,
                                   int64_t* __restrict__ side, int* __restrict__ flags) {
  extern __shared__ unsigned int hist[];  // [lanes][tcells + jcells] when use_shared
  const int64_t tcells = shape.transition_cells(), jcells = shape.joint_cells();
  const int64_t cells = tcells + jcells;
  const int lane = threadIdx.x % lanes;
  const int row = threadIdx.x / lanes;
  const int rows = blockDim.x / lanes;
  const int64_t n = static_cast<int64_t>(blockIdx.x) * lanes + lane;
  if (use_shared) {
    for (int64_t i = threadIdx.x; i < lanes * cells; i += blockDim.x) hist[i] = 0;
    __syncthreads();
  }
  bool bad_x = false, bad_label = false;
  if (n < shape.neurons && row < rows) {
    const int bins = shape.bins;
    const double* e = edges + n * (bins + 1);
    const double lo = e[0], scale = uniform_scale(e[0], e[bins], bins), last = bins - 1;
    const int64_t top = shape.history > 0 ? shape.states / bins : 1;
    unsigned int* t_sh = use_shared ? hist + lane * cells : nullptr;
    unsigned int* j_sh = use_shared ? hist + lane * cells + tcells : nullptr;
    int64_t* t_gl = transitions + n * tcells;
    int64_t* j_gl = side + n * jcells;
    const int64_t s0 = blockIdx.y * seq_per_block;
    const int64_t s1 = min(shape.sequences, s0 + seq_per_block);
    for (int64_t s = s0 + row; s < s1; s += rows) {
      const int64_t seq = labels.perm != nullptr ? labels.perm[s] : s;
      const int64_t* ys = labels.data != nullptr ? labels.data + seq * labels.seq_stride : nullptr;
      int64_t state = 0;
      int64_t y_prev = 0;
      for (int64_t t = 0; t < shape.steps; ++t) {
        const double v = static_cast<double>(x[(s * shape.steps + t) * shape.neurons + n]);
        bad_x |= is_nonfinite(v);
        const int64_t b = uniform ? uniform_bin(v, lo, scale, last) : edges_bin(v, e + 1, bins - 1);
        int64_t y = ys != nullptr ? ys[t * labels.step_stride] : 0;
        if (y < 0 || y >= shape.classes) {
          bad_label = true;
          y = 0;
        }
        if (shape.history > 0) {
          if (t >= shape.history) bump(t_sh, t_gl, (state * bins + b) * shape.classes + y_prev);
          state = (state % top) * bins + b;
        }
        if (shape.step_outside_transitions(t)) bump(j_sh, j_gl, b * shape.classes + y);
        y_prev = y;
      }
    }
  }
  if (bad_x) atomicOr(flags, 1);
  if (bad_label) atomicOr(flags + 1, 1);
  if (use_shared) {
    __syncthreads();
    for (int64_t i = threadIdx.x; i < lanes * cells; i += blockDim.x) {
      const unsigned int c = hist[i];
      const int64_t owner = static_cast<int64_t>(blockIdx.x) * lanes + i / cells;
      if (c == 0 || owner >= shape.neurons) continue;
      const int64_t cell = i % cells;
      int64_t* target = cell < tcells ? transitions + owner * tcells + cell
                                      : side + owner * jcells + (cell - tcells);
      atomicAdd(reinterpret_cast<unsigned long long*>(target), static_cast<unsigned long long>(c));
    }
  }
}

__global__ void info_scores_kernel(const int64_t* __restrict__ joint,
                                   const int64_t* __restrict__ transitions, InfoShape shape,
                                   double unit, bool miller_madow, double* entropy, double* mi,
                                   double* te) {
  const int64_t n = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (n >= shape.neurons) return;
  double h, i;
  entropy_and_mi(joint + n * shape.joint_cells(), shape.bins, shape.classes, miller_madow, &h, &i);
  entropy[n] = unit * h;
  mi[n] = unit * i;
  te[n] = shape.states > 0
              ? unit * transfer_entropy(transitions + n * shape.transition_cells(), shape.states,
                                        shape.bins, shape.classes, miller_madow)
              : 0.0;
}

__global__ void local_table_kernel(const int64_t* __restrict__ transitions, InfoShape shape,
                                   double unit, double* __restrict__ table) {
  const int64_t n = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (n >= shape.neurons) return;
  const int64_t cells = shape.transition_cells();
  local_transfer_entropy_table(transitions + n * cells, shape.states, shape.bins, shape.classes,
                               table + n * cells);
  for (int64_t i = 0; i < cells; ++i) table[n * cells + i] *= unit;
}

// One thread per (sequence, neuron), walking the steps of that sequence.
template <typename scalar_t>
__global__ void local_lookup_kernel(const scalar_t* __restrict__ x, LabelView labels,
                                    const double* __restrict__ edges, bool uniform,
                                    InfoShape shape, const double* __restrict__ table,
                                    scalar_t* __restrict__ out) {
  const int64_t idx = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (idx >= shape.sequences * shape.neurons) return;
  const int64_t s = idx / shape.neurons, n = idx % shape.neurons;
  const int bins = shape.bins;
  const double* e = edges + n * (bins + 1);
  const double lo = e[0], scale = uniform_scale(e[0], e[bins], bins), last = bins - 1;
  const int64_t top = shape.states / bins, cells = shape.transition_cells();
  const int64_t out_steps = shape.steps - shape.history;
  const int64_t* ys = labels.data != nullptr ? labels.data + s * labels.seq_stride : nullptr;
  int64_t state = 0, y_prev = 0;
  for (int64_t t = 0; t < shape.steps; ++t) {
    const double v = static_cast<double>(x[(s * shape.steps + t) * shape.neurons + n]);
    const int64_t b = uniform ? uniform_bin(v, lo, scale, last) : edges_bin(v, e + 1, bins - 1);
    if (t >= shape.history)
      out[(s * out_steps + t - shape.history) * shape.neurons + n] =
          static_cast<scalar_t>(table[n * cells + (state * bins + b) * shape.classes + y_prev]);
    state = (state % top) * bins + b;
    y_prev = ys != nullptr ? ys[t * labels.step_stride] : 0;
  }
}

// One thread per value (grid-stride); a value's neuron is its index modulo N.
template <typename scalar_t>
__global__ void bin_codes_kernel(const scalar_t* __restrict__ x, const double* __restrict__ edges,
                                 bool uniform, InfoShape shape, uint16_t* __restrict__ codes,
                                 int* __restrict__ flags) {
  const int64_t total = shape.sequences * shape.steps * shape.neurons;
  const int bins = shape.bins;
  bool bad_x = false;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const double* e = edges + (i % shape.neurons) * (bins + 1);
    const double v = static_cast<double>(x[i]);
    bad_x |= is_nonfinite(v);
    codes[i] = static_cast<uint16_t>(
        uniform ? uniform_bin(v, e[0], uniform_scale(e[0], e[bins], bins), bins - 1)
                : edges_bin(v, e + 1, bins - 1));
  }
  if (bad_x) atomicOr(flags, 1);
}

int64_t blocks_for(int64_t work, int threads) { return (work + threads - 1) / threads; }

}  // namespace

template <typename scalar_t>
void info_counts(const scalar_t* x, LabelView labels, const double* edges, bool uniform,
                 const InfoShape& shape, int64_t* transitions, int64_t* side, int* flags,
                 cudaStream_t stream) {
  if (shape.neurons == 0 || shape.sequences == 0) return;
  int device = 0, max_shared = 0, sms = 1;
  cudaGetDevice(&device);
  cudaDeviceGetAttribute(&max_shared, cudaDevAttrMaxSharedMemoryPerBlockOptin, device);
  cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device);
  const int64_t lane_bytes = 4 * (shape.transition_cells() + shape.joint_cells());
  int lanes = static_cast<int>(std::min<int64_t>(kMaxLanes, shape.neurons));
  const bool use_shared = lane_bytes <= max_shared;
  if (use_shared) lanes = static_cast<int>(std::min<int64_t>(lanes, max_shared / lane_bytes));
  const int rows = kThreads / lanes;
  const int64_t neuron_blocks = (shape.neurons + lanes - 1) / lanes;
  // Enough blocks to fill the GPU; at most 2^31 rows per block keeps uint32 counters exact.
  int64_t chunks = std::max<int64_t>(1, (4 * sms + neuron_blocks - 1) / neuron_blocks);
  chunks = std::min<int64_t>(chunks, (shape.sequences + rows - 1) / rows);
  int64_t seq_per_block = (shape.sequences + chunks - 1) / chunks;
  seq_per_block = std::min<int64_t>(seq_per_block, std::max<int64_t>(1, (int64_t{1} << 31) / shape.steps));
  chunks = (shape.sequences + seq_per_block - 1) / seq_per_block;
  const size_t shared_bytes = use_shared ? static_cast<size_t>(lane_bytes) * lanes : 0;
  if (shared_bytes > 48 * 1024)
    cudaFuncSetAttribute(info_counts_kernel<scalar_t>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                         static_cast<int>(shared_bytes));
  const dim3 grid(static_cast<unsigned>(neuron_blocks), static_cast<unsigned>(chunks));
  info_counts_kernel<scalar_t><<<grid, kThreads, shared_bytes, stream>>>(
      x, labels, edges, uniform, shape, lanes, seq_per_block, use_shared, transitions, side, flags);
}

template <typename scalar_t>
void info_bin_codes(const scalar_t* x, const double* edges, bool uniform, const InfoShape& shape,
                    uint16_t* codes, int* flags, cudaStream_t stream) {
  const int64_t total = shape.sequences * shape.steps * shape.neurons;
  if (total == 0) return;
  const int64_t blocks = std::min<int64_t>(blocks_for(total, kThreads), 65535);
  bin_codes_kernel<scalar_t><<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(
      x, edges, uniform, shape, codes, flags);
}

void info_scores(const int64_t* joint, const int64_t* transitions, const InfoShape& shape,
                 double unit, bool miller_madow, double* entropy, double* mi, double* te,
                 cudaStream_t stream) {
  if (shape.neurons == 0) return;
  info_scores_kernel<<<blocks_for(shape.neurons, 128), 128, 0, stream>>>(
      joint, transitions, shape, unit, miller_madow, entropy, mi, te);
}

template <typename scalar_t>
void info_local_te(const scalar_t* x, LabelView labels, const double* edges, bool uniform,
                   const InfoShape& shape, const int64_t* transitions, double unit, double* table,
                   scalar_t* out, cudaStream_t stream) {
  if (shape.neurons == 0 || shape.sequences == 0) return;
  local_table_kernel<<<blocks_for(shape.neurons, 128), 128, 0, stream>>>(transitions, shape, unit,
                                                                        table);
  local_lookup_kernel<scalar_t><<<blocks_for(shape.sequences * shape.neurons, kThreads), kThreads,
                                  0, stream>>>(x, labels, edges, uniform, shape, table, out);
}

template void info_counts<float>(const float*, LabelView, const double*, bool, const InfoShape&,
                                 int64_t*, int64_t*, int*, cudaStream_t);
template void info_counts<double>(const double*, LabelView, const double*, bool, const InfoShape&,
                                  int64_t*, int64_t*, int*, cudaStream_t);
template void info_counts<uint16_t>(const uint16_t*, LabelView, const double*, bool,
                                    const InfoShape&, int64_t*, int64_t*, int*, cudaStream_t);
template void info_bin_codes<float>(const float*, const double*, bool, const InfoShape&, uint16_t*,
                                    int*, cudaStream_t);
template void info_bin_codes<double>(const double*, const double*, bool, const InfoShape&,
                                     uint16_t*, int*, cudaStream_t);
template void info_local_te<float>(const float*, LabelView, const double*, bool, const InfoShape&,
                                   const int64_t*, double, double*, float*, cudaStream_t);
template void info_local_te<double>(const double*, LabelView, const double*, bool,
                                    const InfoShape&, const int64_t*, double, double*, double*,
                                    cudaStream_t);

}  // namespace cuda
}  // namespace pyprune
