// OpenMP helpers for the CPU kernels. The thread count follows torch.get_num_threads(), so
// torch.set_num_threads() governs our kernels as it governs ATen's. Torch-free: the kernels
// (compiled once per CPU capability) include it; num_threads() is defined in parallel.cpp.
#pragma once

#include <cstdint>

namespace pyprune {

int num_threads();

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

}  // namespace pyprune
