// OpenMP helpers for the CPU kernels. The thread count follows torch.get_num_threads(), so
// torch.set_num_threads() governs our kernels as it governs ATen's.
#pragma once

#include <ATen/Parallel.h>

#include <algorithm>
#include <cstdint>

namespace pyprune {

inline int num_threads() { return std::max(1, at::get_num_threads()); }

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

}  // namespace pyprune
