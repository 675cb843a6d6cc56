// The CPU kernel of connected-component labelling, as the entry point (regions_cpu.cpp) calls
// it: raw pointers and sizes, region records in per-thread vectors.
#pragma once

#include <cstdint>
#include <vector>

#include "common/cpu_kernel_table.h"

namespace pyprune {

// The regions one thread found, in mask order: size, sum and mean of |weights| per region.
struct RegionRecords {
  std::vector<int64_t> sizes;
  std::vector<double> sums, means;
  bool nonfinite = false;  // some sum is NaN or Inf
};

// Labels `masks` masks [height, width] (contiguous bools) into labels (int32, same shape) and
// counts [masks]; weights (same shape, may be null) give the sums. records[t] gets thread t's
// regions; concatenated in order they are every region in mask order.
template <typename scalar_t>
using LabelRegionsFn = void (*)(const bool* mask, int64_t masks, int64_t height, int64_t width,
                                const scalar_t* weights, bool eight, int32_t* labels,
                                int64_t* counts, std::vector<RegionRecords>& records);

PYPRUNE_DECLARE_CPU_KERNEL(label_regions_kernel, FloatingKernel<LabelRegionsFn>);

}  // namespace pyprune
