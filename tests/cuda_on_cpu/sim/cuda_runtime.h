// The harness's stand-in for <cuda_runtime.h>: found first on the include path when a kernel
// file is compiled for the CPU. It maps CUDA's keywords, built-in variables, intrinsics and the
// few runtime calls the kernels make onto cudasim.
#pragma once

#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "cudasim.h"

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __restrict__
#define __shared__ static thread_local
#define __launch_bounds__(...)

#define threadIdx (::cudasim::current().thread_idx)
#define blockIdx (::cudasim::current().block_idx)
#define blockDim (::cudasim::current().block_dim)
#define gridDim (::cudasim::current().grid_dim)

using cudaStream_t = void*;
enum cudaError_t { cudaSuccess = 0, cudaErrorInvalidValue = 1 };
enum cudaDeviceAttr { cudaDevAttrMaxSharedMemoryPerBlockOptin = 97, cudaDevAttrMultiProcessorCount = 16 };
enum cudaFuncAttribute { cudaFuncAttributeMaxDynamicSharedMemorySize = 8 };

inline cudaError_t cudaGetDevice(int* device) {
  *device = 0;
  return cudaSuccess;
}
inline cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int) {
  *value = attr == cudaDevAttrMaxSharedMemoryPerBlockOptin ? cudasim::max_shared_bytes() : cudasim::multiprocessor_count();
  return cudaSuccess;
}
template <typename Kernel>
cudaError_t cudaFuncSetAttribute(Kernel*, cudaFuncAttribute, int) {
  return cudaSuccess;
}

inline void __syncthreads() { cudasim::syncthreads(); }

using std::fabs;
using std::isfinite;

template <typename A, typename B>
std::common_type_t<A, B> min(A a, B b) { return b < a ? b : a; }
template <typename A, typename B>
std::common_type_t<A, B> max(A a, B b) { return a < b ? b : a; }

template <typename T>
T __shfl_down_sync(unsigned mask, T value, unsigned delta, int width = 32) {
  static_assert(sizeof(T) <= 8 && std::is_trivially_copyable_v<T>, "shuffles move words of up to 8 bytes");
  if (width != 32) throw cudasim::KernelError("__shfl_down_sync: only width 32 is simulated");
  uint64_t word = 0;
  std::memcpy(&word, &value, sizeof(T));
  const int lane = cudasim::lane_id();
  const int source = lane + static_cast<int>(delta) < 32 ? lane + static_cast<int>(delta) : lane;
  word = cudasim::warp_exchange(mask, word, source);
  T out;
  std::memcpy(&out, &word, sizeof(T));
  return out;
}

// Atomics: real ones (blocks run on several OS threads), returning the old value as CUDA's do.
template <typename T>
T atomicAdd(T* address, T value) {
  if constexpr (std::is_integral_v<T>) {
    return __atomic_fetch_add(address, value, __ATOMIC_RELAXED);
  } else {
    std::atomic_ref<T> ref(*address);
    T old = ref.load(std::memory_order_relaxed);
    while (!ref.compare_exchange_weak(old, old + value, std::memory_order_relaxed)) {
    }
    return old;
  }
}
template <typename T>
T atomicOr(T* address, T value) { return __atomic_fetch_or(address, value, __ATOMIC_RELAXED); }
template <typename T>
T atomicMin(T* address, T value) {
  std::atomic_ref<T> ref(*address);
  T old = ref.load(std::memory_order_relaxed);
  while (value < old && !ref.compare_exchange_weak(old, value, std::memory_order_relaxed)) {
  }
  return old;
}
