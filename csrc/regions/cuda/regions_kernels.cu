// CUDA kernels of connected-component labelling: one block per mask, label equivalence with
// union-find in global memory (Playne & Hawick style). Every set pixel starts as its own root
// (its index + 1); each thread unites its pixel with its left/up (and diagonal) neighbours, the
// smaller index winning, so a region's root is its first pixel in raster order. A block scan over
// the root flags, in raster order, then gives consecutive labels 1..n.
#include <cub/block/block_scan.cuh>

#include "regions/cuda/regions_kernels.h"

namespace pyprune {
namespace cuda {
namespace {

constexpr int kThreads = 256;

__device__ int32_t find_root(int32_t* parent, int32_t i) {
  while (parent[i] - 1 != i) i = parent[i] - 1;
  return i;
}

__device__ void unite(int32_t* parent, int32_t a, int32_t b) {
  // Lock-free union: link the larger root under the smaller one, retrying on a race.
  while (true) {
    a = find_root(parent, a);
    b = find_root(parent, b);
    if (a == b) return;
    if (a > b) {
      const int32_t t = a;
      a = b;
      b = t;
    }
    const int32_t old = atomicMin(parent + b, a + 1);
    if (old == b + 1) return;  // b was still a root: linked
    b = old - 1;               // someone linked b meanwhile: retry from its new parent
  }
}

__global__ void label_kernel(const bool* __restrict__ mask, int64_t height, int64_t width,
                             bool eight, int32_t* __restrict__ labels, int64_t* __restrict__ counts) {
  using Scan = cub::BlockScan<int32_t, kThreads>;
  __shared__ typename Scan::TempStorage temp;
  __shared__ int32_t carry;
  const int64_t plane = height * width;
  const bool* m = mask + blockIdx.x * plane;
  int32_t* parent = labels + blockIdx.x * plane;
  for (int64_t i = threadIdx.x; i < plane; i += blockDim.x) parent[i] = m[i] ? static_cast<int32_t>(i) + 1 : 0;
  __syncthreads();
  for (int64_t i = threadIdx.x; i < plane; i += blockDim.x) {
    if (!m[i]) continue;
    const int64_t r = i / width, c = i % width;
    if (c > 0 && m[i - 1]) unite(parent, i, i - 1);
    if (r > 0 && m[i - width]) unite(parent, i, i - width);
    if (eight && r > 0 && c > 0 && m[i - width - 1]) unite(parent, i, i - width - 1);
    if (eight && r > 0 && c + 1 < width && m[i - width + 1]) unite(parent, i, i - width + 1);
  }
  __syncthreads();
  // Flatten every pixel to its root index + 1 (still in parent).
  for (int64_t i = threadIdx.x; i < plane; i += blockDim.x)
    if (m[i]) parent[i] = find_root(parent, i) + 1;
  __syncthreads();
  // Roots in raster order get labels 1..n; root pixels hold -label meanwhile.
  if (threadIdx.x == 0) carry = 0;
  __syncthreads();
  for (int64_t base = 0; base < plane; base += blockDim.x) {
    const int64_t i = base + threadIdx.x;
    const int32_t is_root = i < plane && m[i] && parent[i] == i + 1;
    int32_t rank = 0, total = 0;
    Scan(temp).ExclusiveSum(is_root, rank, total);
    if (is_root) parent[i] = -(carry + rank + 1);
    __syncthreads();
    if (threadIdx.x == 0) carry += total;
    __syncthreads();
  }
  for (int64_t i = threadIdx.x; i < plane; i += blockDim.x) {
    if (!m[i] || parent[i] < 0) continue;
    parent[i] = -parent[parent[i] - 1];  // the root's (negated) label
  }
  __syncthreads();
  for (int64_t i = threadIdx.x; i < plane; i += blockDim.x)
    if (parent[i] < 0) parent[i] = -parent[i];
  if (threadIdx.x == 0) counts[blockIdx.x] = carry;
}

template <typename scalar_t>
__global__ void sums_kernel(const int32_t* __restrict__ labels, const scalar_t* __restrict__ weights,
                            const int64_t* __restrict__ offsets, int64_t plane, int64_t* sizes,
                            double* sums) {
  const int64_t k = blockIdx.x;
  for (int64_t i = threadIdx.x; i < plane; i += blockDim.x) {
    const int32_t l = labels[k * plane + i];
    if (l == 0) continue;
    atomicAdd(reinterpret_cast<unsigned long long*>(sizes + offsets[k] + l - 1), 1ull);
    if (weights != nullptr) atomicAdd(sums + offsets[k] + l - 1, fabs(static_cast<double>(weights[k * plane + i])));
  }
}

}  // namespace

void label_regions(const bool* mask, int64_t masks, int64_t height, int64_t width, bool eight,
                   int32_t* labels, int64_t* counts, cudaStream_t stream) {
  if (masks == 0) return;
  label_kernel<<<static_cast<unsigned>(masks), kThreads, 0, stream>>>(mask, height, width, eight,
                                                                       labels, counts);
}

template <typename scalar_t>
void region_sums(const int32_t* labels, const scalar_t* weights, const int64_t* offsets,
                 int64_t masks, int64_t plane, int64_t* sizes, double* sums, cudaStream_t stream) {
  if (masks == 0) return;
  sums_kernel<scalar_t><<<static_cast<unsigned>(masks), kThreads, 0, stream>>>(labels, weights,
                                                                               offsets, plane, sizes, sums);
}

template void region_sums<float>(const int32_t*, const float*, const int64_t*, int64_t, int64_t,
                                 int64_t*, double*, cudaStream_t);
template void region_sums<double>(const int32_t*, const double*, const int64_t*, int64_t, int64_t,
                                  int64_t*, double*, cudaStream_t);

}  // namespace cuda
}  // namespace pyprune
