// Kernels that test cudasim itself: each breaks (or keeps) one of CUDA's rules, so the tests can
// check that the harness reports what a GPU would hang or corrupt on, and that atomics and
// divergent warps behave as on a GPU. Compiled only into the harness.
#include <cuda_runtime.h>

#include <cstdint>

namespace {

__global__ void early_exit_before_barrier(int* out) {
  if (threadIdx.x == 3) return;
  __syncthreads();
  out[threadIdx.x] = 1;
}

__global__ void shuffle_with_exited_lane(int* out) {
  if (threadIdx.x == 5) return;
  out[threadIdx.x] = __shfl_down_sync(0xffffffffu, static_cast<int>(threadIdx.x), 1);
}

// Warps that shuffle a different number of times (lane counts as in sddmm with unequal rows).
__global__ void divergent_warps(int* out) {
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  int sum = 0;
  for (int round = 0; round <= warp; ++round) {
    int v = lane + round;
    for (int offset = 16; offset > 0; offset /= 2) v += __shfl_down_sync(0xffffffffu, v, offset);
    sum += v;
  }
  if (lane == 0) out[warp] = sum;
}

__global__ void atomics(int* counter, int* olds, unsigned long long* wide, double* real, int* low) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  olds[i] = atomicAdd(counter, 1);
  atomicAdd(wide, 1ull);
  atomicAdd(real, 0.5);
  atomicMin(low, 1000 - i);
}

}  // namespace

extern "C" int selftest_launch(int which, int* out, int* olds, unsigned long long* wide, double* real, int* low) {
  try {
    if (which == 0) early_exit_before_barrier<<<1, 64>>>(out);
    if (which == 1) shuffle_with_exited_lane<<<1, 32>>>(out);
    if (which == 2) divergent_warps<<<1, 128>>>(out);
    if (which == 3) atomics<<<16, 64>>>(out, olds, wide, real, low);
  } catch (const cudasim::KernelError&) {
    return 1;
  }
  return 0;
}
