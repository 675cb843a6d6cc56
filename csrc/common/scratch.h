// Per-thread scratch tensors for the CPU kernels' temporary copies (the batch-major transposes).
// ATen's CPU allocator does not cache: a freed block of a few MB goes back to glibc, which,
// depending on the heap's history, unmaps or trims it, and the next call faults every 4 KB page
// in again (in a bench process ~700 faults, +0.7 ms on a ~1 ms (1024, 784, 500) forward). A slot
// keeps its block for the next call on this thread while nothing else holds it.
#pragma once

#include <ATen/ATen.h>

#include <array>
#include <cstdint>

namespace pyprune {

// What an op keeps in each slot; those of one op are alive together.
enum class ScratchSlot { kSlabs = 0, kFirstOperand = 1, kSecondOperand = 2 };
constexpr int kScratchSlots = 3;

// Blocks above this size are not kept: a thread holds at most kScratchSlots x this.
constexpr int64_t kMaxScratchBytes = int64_t(32) << 20;

// An uninitialised contiguous tensor of `sizes` whose memory is reused across calls. Valid until
// this thread asks for the same slot again; a caller that keeps it beyond its op gets the next
// call a fresh block, not a shared one (the slot is reused only when nothing else holds it).
inline at::Tensor scratch_tensor(ScratchSlot slot, at::IntArrayRef sizes,
                                 const at::TensorOptions& options) {
  thread_local std::array<at::Tensor, kScratchSlots> blocks;
  int64_t numel = 1;
  for (int64_t size : sizes) numel *= size;
  if (numel * static_cast<int64_t>(options.dtype().itemsize()) > kMaxScratchBytes)
    return at::empty(sizes, options);
  at::Tensor& block = blocks[static_cast<int>(slot)];
  const bool reusable = block.defined() && block.storage().use_count() == 1 &&
                        block.dtype() == options.dtype() && block.numel() >= numel;
  if (!reusable) block = at::empty({numel}, options);
  return block.narrow(0, 0, numel).view(sizes);
}

}  // namespace pyprune
