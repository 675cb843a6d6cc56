// Launch API of the CUDA region-labelling kernels: raw pointers, sizes and a stream.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

namespace pyprune {
namespace cuda {

// Device scratch that label_regions needs for K masks of H x W (0 for small masks).
size_t label_regions_scratch_bytes(int64_t masks, int64_t height, int64_t width);

// labels [K][H*W] (int32 scratch, then final labels) and counts [K] of mask [K][H*W]; eight:
// 8-connectivity. Labels are numbered in raster order of each region's first pixel. scratch:
// label_regions_scratch_bytes of device memory.
void label_regions(const bool* mask, int64_t masks, int64_t height, int64_t width, bool eight,
                   int32_t* labels, int64_t* counts, void* scratch, cudaStream_t stream);

// sizes/sums [R] (zeroed) of the regions, offsets [K] = first flat index of each mask's regions.
template <typename scalar_t>
void region_sums(const int32_t* labels, const scalar_t* weights, const int64_t* offsets,
                 int64_t masks, int64_t plane, int64_t* sizes, double* sums, cudaStream_t stream);

}  // namespace cuda
}  // namespace pyprune
