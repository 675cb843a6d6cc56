// cudasim: runs CUDA kernels on the CPU under CUDA's execution rules, for the tests only.
//
// A launch runs every block of the grid, blocks spread over a pool of OS threads (real
// concurrency for the atomics), each block's threads as cooperative fibers (ucontext) on one OS
// thread. A fiber runs until it finishes or waits: at __syncthreads (all threads of the block),
// or at a warp shuffle (only the lanes of its warp that the mask names). __shared__ variables are
// per OS thread and a block runs alone on its OS thread, so they are per block; dynamic shared
// memory is allocated per block. Atomics are real atomics and return the old value. A launch
// returns when every block is done (launches complete in order).
//
// What breaks CUDA's rules is reported as a KernelError from the launch, never a hang: a barrier
// that not all threads of a block reach, a shuffle whose mask names lanes that are not there (or
// that exited, or wait elsewhere), a read of a lane outside the mask, more dynamic shared memory
// than the device has.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>

struct dim3 {
  unsigned x = 1, y = 1, z = 1;
  constexpr dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};

namespace cudasim {

struct KernelError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct ThreadState {
  dim3 thread_idx, block_idx, block_dim, grid_dim;
};

// The running fiber's indices (valid inside a kernel only).
const ThreadState& current();

void syncthreads();
// Exchanges one 64-bit word among the lanes of the caller's warp named by mask; returns the word
// of lane `source` (which must be in mask).
uint64_t warp_exchange(unsigned mask, uint64_t word, int source);
int lane_id();
void* dynamic_shared_memory();

// Host-side settings the tests turn.
void set_os_threads(int threads);          // OS threads that run blocks (default 1)
void set_max_shared_bytes(int bytes);      // what cudaDevAttrMaxSharedMemoryPerBlockOptin reports
void set_reverse_schedule(bool reverse);   // run ready fibers from the last thread down
int max_shared_bytes();
int multiprocessor_count();

// Runs block_body for every (block, thread) of the launch; throws KernelError.
void launch(dim3 grid, dim3 block, size_t shared_bytes, const std::function<void()>& thread_body);

template <typename... Args>
struct BoundLaunch {
  dim3 grid, block;
  size_t shared_bytes;
  std::tuple<std::decay_t<Args>...> args;
};

struct LaunchConfig {
  dim3 grid, block;
  size_t shared_bytes;
  template <typename... Args>
  BoundLaunch<Args...> operator()(Args&&... args) const {
    return {grid, block, shared_bytes, std::tuple<std::decay_t<Args>...>(std::forward<Args>(args)...)};
  }
};

inline dim3 to_dim3(dim3 d) { return d; }
template <typename Int, typename = std::enable_if_t<std::is_integral_v<Int>>>
dim3 to_dim3(Int n) {
  if (n < 0 || static_cast<uint64_t>(n) > 0xffffffffull) throw KernelError("launch dimension out of range");
  return dim3(static_cast<unsigned>(n));
}

// The harness build rewrites `kernel<<<grid, block, shared, stream>>>(args)` into
// `kernel | ::cudasim::launch_config(grid, block, shared, stream)(args)`.
template <typename G, typename B, typename S = size_t, typename Stream = void*>
LaunchConfig launch_config(G grid, B block, S shared_bytes = 0, Stream = nullptr) {
  return {to_dim3(grid), to_dim3(block), static_cast<size_t>(shared_bytes)};
}

}  // namespace cudasim

template <typename... Params, typename... Args>
void operator|(void (*kernel)(Params...), cudasim::BoundLaunch<Args...>&& bound) {
  const auto args = std::move(bound.args);
  cudasim::launch(bound.grid, bound.block, bound.shared_bytes, [&] {
    std::tuple<std::decay_t<Params>...> own(std::make_from_tuple<std::tuple<std::decay_t<Params>...>>(args));
    std::apply(kernel, own);   // each thread gets its own copy of the parameters, as on a GPU
  });
}
