// OpenMP helpers for the CPU kernels. The thread count follows torch.get_num_threads(), so
// torch.set_num_threads() governs our kernels as it governs ATen's. Torch-free: the kernels
// (compiled once per CPU capability) include it; num_threads() is defined in parallel.cpp.
#pragma once

#include <algorithm>
#include <cstdint>

namespace pyprune {

int num_threads();

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Waking a thread costs about as much as a few tens of thousands of simple element operations,
// so a loop gets one thread per kGrainSize elements at most (ATen's at::internal::GRAIN_SIZE).
constexpr int64_t kGrainSize = 32768;

// The threads worth waking for `elements` of simple per-element work: 1 to num_threads().
inline int threads_for(int64_t elements) {
  const int64_t wanted = std::max<int64_t>(1, elements / kGrainSize);
  return static_cast<int>(std::min<int64_t>(wanted, num_threads()));
}

}  // namespace pyprune
