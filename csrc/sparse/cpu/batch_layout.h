// How the CPU kernels of the sparse linear layer lay out the batch: operands are read batch-major
// (X^T [N, ld], dY^T [M, ld]), each row padded to whole SIMD vectors.
#pragma once

#include <cstdint>

namespace pyprune {

// SIMD vector bytes: a zmm register where AVX-512 is there, else a ymm one.
#if defined(__AVX512F__)
constexpr int64_t kVecBytes = 64;
#else
constexpr int64_t kVecBytes = 32;
#endif
constexpr int64_t kPad = kVecBytes / 4;  // batch-major copies padded to whole vectors (floats)

// From a batch of 2 up, the batch-major copies are padded to whole vectors and every nonzero is
// one SIMD FMA (a batch of 3 pays 8 lanes, still far cheaper than 3 scalar passes over the row).
// A batch of 1 keeps a dense column: it stays in L1 and a scalar pass reads nothing extra.
inline bool use_simd(int64_t batch) { return batch >= 2; }
inline int64_t pad_for(int64_t batch) { return use_simd(batch) ? kPad : 1; }

}  // namespace pyprune
