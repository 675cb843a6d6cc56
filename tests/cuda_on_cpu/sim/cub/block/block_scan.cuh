// The harness's stand-in for cub::BlockScan (exclusive sums only, what the kernels use): every
// thread writes its value to the shared storage, a barrier, each thread sums the values before
// its own, a barrier so the storage can be reused. CUB's barrier rules hold: every thread of the
// block must call it.
#pragma once

#include "../../cuda_runtime.h"

namespace cub {

template <typename T, int BlockThreads>
class BlockScan {
 public:
  struct TempStorage {
    T values[BlockThreads];
  };
  explicit BlockScan(TempStorage& storage) : storage_(storage) {}

  void ExclusiveSum(T input, T& output) {
    T total;
    ExclusiveSum(input, output, total);
  }
  void ExclusiveSum(T input, T& output, T& block_aggregate) {
    const unsigned tid = threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
    if (blockDim.x * blockDim.y * blockDim.z != BlockThreads)
      throw cudasim::KernelError("cub::BlockScan: the block does not have BlockThreads threads");
    storage_.values[tid] = input;
    __syncthreads();
    T before = T(), all = T();
    for (unsigned i = 0; i < BlockThreads; ++i) {
      if (i == tid) before = all;
      all += storage_.values[i];
    }
    __syncthreads();
    output = before;
    block_aggregate = all;
  }

 private:
  TempStorage& storage_;
};

}  // namespace cub
