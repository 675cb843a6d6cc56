// A per-thread scratch block for the CPU kernels' temporary copies (the batch-major tiles).
// A freed block of a few MB goes back to glibc, which, depending on the heap's history, unmaps
// or trims it, and the next call faults every 4 KB page in again (hundreds of page faults a
// call, a large share of a mid-size forward). The block is kept for the next call on this thread
// while nothing else holds it. Torch-free: each CPU capability's copy keeps its own block.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <new>

namespace pyprune {

// Blocks above this size are not kept: a thread holds at most this much between calls.
constexpr int64_t kMaxScratchBytes = int64_t(32) << 20;

// `count` uninitialised T, 64-byte aligned, valid while the object lives.
template <typename T>
class Scratch {
 public:
  explicit Scratch(int64_t count) {
    const size_t bytes = (static_cast<size_t>(count) * sizeof(T) + 63) / 64 * 64;
    Kept& kept = kept_block();
    if (!kept.in_use && bytes <= static_cast<size_t>(kMaxScratchBytes)) {
      if (kept.bytes < bytes) {
        kept.block.reset();  // free the old block first: the two need not be held at once
        kept.bytes = 0;      // and stay consistent if the allocation below throws
        kept.block.reset(allocate(bytes));
        kept.bytes = bytes;
      }
      kept.in_use = true;
      borrowed_ = true;
      data_ = reinterpret_cast<T*>(kept.block.get());
    } else {
      owned_.reset(allocate(bytes));
      data_ = reinterpret_cast<T*>(owned_.get());
    }
  }
  ~Scratch() {
    if (borrowed_) kept_block().in_use = false;
  }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  T* data() const { return data_; }

 private:
  struct Free {
    void operator()(void* p) const { std::free(p); }
  };
  using Block = std::unique_ptr<void, Free>;
  struct Kept {
    Block block;
    size_t bytes = 0;
    bool in_use = false;
  };
  static Kept& kept_block() {
    thread_local Kept kept;
    return kept;
  }
  static void* allocate(size_t bytes) {
    void* p = std::aligned_alloc(64, bytes == 0 ? 64 : bytes);
    if (p == nullptr) throw std::bad_alloc();
    return p;
  }

  Block owned_;
  T* data_ = nullptr;
  bool borrowed_ = false;
};

}  // namespace pyprune
