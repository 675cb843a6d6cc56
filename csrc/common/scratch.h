// A per-thread scratch tensor for the CPU kernels' temporary copies (the batch-major tiles).
// ATen's CPU allocator does not cache: a freed block of a few MB goes back to glibc, which,
// depending on the heap's history, unmaps or trims it, and the next call faults every 4 KB page
// in again (hundreds of page faults a call, a large share of a mid-size forward). The
// block is kept for the next call on this thread while nothing else holds it.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>

namespace pyprune {

// Blocks above this size are not kept: a thread holds at most this much between calls.
constexpr int64_t kMaxScratchBytes = int64_t(32) << 20;

// An uninitialised contiguous tensor of `sizes` whose memory is reused across calls on this
// thread. Valid until this thread asks again; one still held elsewhere then is not reused.
inline at::Tensor scratch_tensor(at::IntArrayRef sizes, const at::TensorOptions& options) {
  thread_local at::Tensor block;
  int64_t numel = 1;
  for (int64_t size : sizes) numel *= size;
  if (numel * static_cast<int64_t>(options.dtype().itemsize()) > kMaxScratchBytes)
    return at::empty(sizes, options);
  const bool reusable = block.defined() && block.storage().use_count() == 1 &&
                        block.dtype() == options.dtype() && block.numel() >= numel;
  if (!reusable) block = at::empty({numel}, options);
  return block.narrow(0, 0, numel).view(sizes);
}

}  // namespace pyprune
