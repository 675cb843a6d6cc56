// CUDA kernels of connected-component labelling: label equivalence with union-find in global
// memory (Playne & Hawick style). Every set pixel starts as its own root (its index in the mask
// + 1); each thread unites its pixel with its left/up (and diagonal) neighbours, the smaller index
// winning, so a region's root is its first pixel in raster order. A scan over the root flags, in
// raster order, then gives consecutive labels 1..n.
// Small masks (the 28x28 receptive fields): one block per mask, a block scan. Large masks: every
// step is a grid-wide kernel over all pixels of a chunk of masks, and a device-wide scan.
#include <cub/block/block_scan.cuh>
#include <cub/device/device_scan.cuh>

#include <algorithm>

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

// Unites set pixel p of mask m with its set left and up neighbours (and the upper diagonals).
__device__ void unite_neighbours(const bool* m, int32_t* parent, int64_t p, int64_t width,
                                 bool eight) {
  const int64_t r = p / width, c = p % width;
  if (c > 0 && m[p - 1]) unite(parent, p, p - 1);
  if (r > 0 && m[p - width]) unite(parent, p, p - width);
  if (eight && r > 0 && c > 0 && m[p - width - 1]) unite(parent, p, p - width - 1);
  if (eight && r > 0 && c + 1 < width && m[p - width + 1]) unite(parent, p, p - width + 1);
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
  for (int64_t i = threadIdx.x; i < plane; i += blockDim.x)
    if (m[i]) unite_neighbours(m, parent, i, width, eight);
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

// ---- large masks: grid-stride kernels over the `total` pixels of a chunk of masks ----------

#define PYPRUNE_PIXELS(i, total) \
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < (total); \
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)

__global__ void init_kernel(const bool* __restrict__ mask, int64_t total, int64_t plane,
                            int32_t* __restrict__ labels) {
  PYPRUNE_PIXELS(i, total) labels[i] = mask[i] ? static_cast<int32_t>(i % plane) + 1 : 0;
}

__global__ void merge_kernel(const bool* __restrict__ mask, int64_t total, int64_t width,
                             int64_t plane, bool eight, int32_t* labels) {
  PYPRUNE_PIXELS(i, total) {
    const int64_t first = i - i % plane;
    if (mask[i]) unite_neighbours(mask + first, labels + first, i - first, width, eight);
  }
}

// Flattens every set pixel onto its root and flags the roots (1) for the scan.
__global__ void flatten_kernel(const bool* __restrict__ mask, int64_t total, int64_t plane,
                               int32_t* labels, int32_t* __restrict__ is_root) {
  PYPRUNE_PIXELS(i, total) {
    const int64_t first = i - i % plane, p = i % plane;
    int32_t root = -1;
    if (mask[i]) {
      root = find_root(labels + first, p);
      labels[i] = root + 1;
    }
    is_root[i] = root == p;
  }
}

// Roots take -(their rank within the mask + 1); rank[i] is the exclusive scan of is_root.
__global__ void root_labels_kernel(const int32_t* __restrict__ is_root,
                                   const int32_t* __restrict__ rank, int64_t total, int64_t plane,
                                   int32_t* __restrict__ labels) {
  PYPRUNE_PIXELS(i, total) if (is_root[i]) labels[i] = -(rank[i] - rank[i - i % plane] + 1);
}

// Every other set pixel reads its root's (negative) label; roots are not written here.
__global__ void member_labels_kernel(int64_t total, int64_t plane, int32_t* labels) {
  PYPRUNE_PIXELS(i, total) {
    const int32_t v = labels[i];
    if (v > 0) labels[i] = -labels[i - i % plane + v - 1];
  }
}

__global__ void positive_labels_kernel(const int32_t* __restrict__ is_root,
                                       const int32_t* __restrict__ rank, int64_t masks,
                                       int64_t total, int64_t plane, int32_t* labels,
                                       int64_t* __restrict__ counts) {
  PYPRUNE_PIXELS(i, total) {
    if (labels[i] < 0) labels[i] = -labels[i];
    if (i < masks) {
      const int64_t last = (i + 1) * plane - 1;
      counts[i] = rank[last] + is_root[last] - rank[i * plane];
    }
  }
}

template <typename scalar_t>
__global__ void sums_kernel(const int32_t* __restrict__ labels, const scalar_t* __restrict__ weights,
                            const int64_t* __restrict__ offsets, int64_t total, int64_t plane,
                            int64_t* sizes, double* sums) {
  PYPRUNE_PIXELS(i, total) {
    const int32_t l = labels[i];
    if (l == 0) continue;
    const int64_t region = offsets[i / plane] + l - 1;
    atomicAdd(reinterpret_cast<unsigned long long*>(sizes + region), 1ull);
    if (weights != nullptr) atomicAdd(sums + region, fabs(static_cast<double>(weights[i])));
  }
}

#undef PYPRUNE_PIXELS

constexpr int64_t kMaxBlockPlane = 128 * 128;      // larger masks take the grid-wide path
constexpr int64_t kMaxChunkPixels = int64_t{1} << 30;  // int32 scan over one chunk of masks

bool one_block_per_mask(int64_t plane) { return plane <= kMaxBlockPlane; }

unsigned grid_for(int64_t pixels) {
  return static_cast<unsigned>(std::max<int64_t>(1, std::min<int64_t>((pixels + kThreads - 1) / kThreads, 65536)));
}

// Masks per chunk of the grid-wide path (at least one: a mask has < 2^31 pixels).
int64_t chunk_masks(int64_t plane) { return std::max<int64_t>(1, kMaxChunkPixels / plane); }

size_t align_up(size_t bytes) { return (bytes + 255) / 256 * 256; }

size_t scan_temp_bytes(int64_t pixels) {
  size_t bytes = 0;
  cub::DeviceScan::ExclusiveSum(nullptr, bytes, static_cast<const int32_t*>(nullptr),
                                static_cast<int32_t*>(nullptr), static_cast<int>(pixels));
  return bytes;
}

}  // namespace

size_t label_regions_scratch_bytes(int64_t masks, int64_t height, int64_t width) {
  const int64_t plane = height * width;
  if (masks == 0 || plane == 0 || one_block_per_mask(plane)) return 0;
  const int64_t pixels = std::min(masks, chunk_masks(plane)) * plane;
  return 2 * align_up(4 * pixels) + scan_temp_bytes(pixels);
}

void label_regions(const bool* mask, int64_t masks, int64_t height, int64_t width, bool eight,
                   int32_t* labels, int64_t* counts, void* scratch, cudaStream_t stream) {
  if (masks == 0) return;
  const int64_t plane = height * width;
  if (plane == 0 || one_block_per_mask(plane)) {
    label_kernel<<<static_cast<unsigned>(masks), kThreads, 0, stream>>>(mask, height, width,
                                                                         eight, labels, counts);
    return;
  }
  const int64_t per_chunk = chunk_masks(plane);
  const size_t flag_bytes = align_up(4 * std::min(masks, per_chunk) * plane);
  int32_t* is_root = static_cast<int32_t*>(scratch);
  int32_t* rank = reinterpret_cast<int32_t*>(static_cast<char*>(scratch) + flag_bytes);
  void* temp = static_cast<char*>(scratch) + 2 * flag_bytes;
  for (int64_t k0 = 0; k0 < masks; k0 += per_chunk) {
    const int64_t k = std::min(per_chunk, masks - k0), total = k * plane;
    const bool* m = mask + k0 * plane;
    int32_t* l = labels + k0 * plane;
    const unsigned grid = grid_for(total);
    init_kernel<<<grid, kThreads, 0, stream>>>(m, total, plane, l);
    merge_kernel<<<grid, kThreads, 0, stream>>>(m, total, width, plane, eight, l);
    flatten_kernel<<<grid, kThreads, 0, stream>>>(m, total, plane, l, is_root);
    size_t temp_bytes = scan_temp_bytes(total);
    cub::DeviceScan::ExclusiveSum(temp, temp_bytes, is_root, rank, static_cast<int>(total), stream);
    root_labels_kernel<<<grid, kThreads, 0, stream>>>(is_root, rank, total, plane, l);
    member_labels_kernel<<<grid, kThreads, 0, stream>>>(total, plane, l);
    positive_labels_kernel<<<grid, kThreads, 0, stream>>>(is_root, rank, k, total, plane, l,
                                                          counts + k0);
  }
}

template <typename scalar_t>
void region_sums(const int32_t* labels, const scalar_t* weights, const int64_t* offsets,
                 int64_t masks, int64_t plane, int64_t* sizes, double* sums, cudaStream_t stream) {
  if (masks == 0 || plane == 0) return;
  sums_kernel<scalar_t><<<grid_for(masks * plane), kThreads, 0, stream>>>(
      labels, weights, offsets, masks * plane, plane, sizes, sums);
}

template void region_sums<float>(const int32_t*, const float*, const int64_t*, int64_t, int64_t,
                                 int64_t*, double*, cudaStream_t);
template void region_sums<double>(const int32_t*, const double*, const int64_t*, int64_t, int64_t,
                                  int64_t*, double*, cudaStream_t);

}  // namespace cuda
}  // namespace pyprune
