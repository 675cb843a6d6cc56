// Launch API of the CUDA single-shot score and top-k kernels: raw pointers, sizes and a stream,
// no torch types.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace pyprune {
namespace cuda {

template <typename scalar_t>
void param_scores(const scalar_t* theta, const scalar_t* grad, int64_t n, double alpha,
                  scalar_t* out, cudaStream_t stream);

// Adds to hist [kRadixBins] the digit (key >> shift) of every score whose key agrees with prefix
// on its top fixed_bits bits; flags[0] |= 1 on a non-finite score.
template <typename scalar_t>
void radix_histogram(const scalar_t* theta, const scalar_t* grad, int64_t n, double alpha,
                     uint64_t prefix, int fixed_bits, int shift, unsigned long long* hist,
                     int* flags, cudaStream_t stream);

// Number of blocks topk_write uses for n elements (one tie count per block).
int64_t topk_blocks(int64_t n);

// Per block of topk_write's layout, how many scores have key == threshold.
template <typename scalar_t>
void count_ties(const scalar_t* theta, const scalar_t* grad, int64_t n, double alpha,
                uint64_t threshold, int64_t* block_ties, cudaStream_t stream);

// mask[i] = key > threshold, or key == threshold and its tie rank < ties_kept, where the rank of a
// tie is block_offsets[block] + its rank inside the block (block_offsets null: keep every tie).
template <typename scalar_t>
void topk_write(const scalar_t* theta, const scalar_t* grad, int64_t n, double alpha,
                uint64_t threshold, const int64_t* block_offsets, int64_t ties_kept, bool* mask,
                cudaStream_t stream);

}  // namespace cuda
}  // namespace pyprune
