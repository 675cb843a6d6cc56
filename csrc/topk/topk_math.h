// The single-shot score of a parameter and the radix key of a score, shared by the CPU and CUDA
// top-k kernels (as info_math.h is for the information ops).
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#include "common/hostdevice.h"

namespace pyprune {

// Radix selection over score keys: 11-bit digits from the most significant down.
constexpr int kRadixBits = 11;
constexpr int kRadixBins = 1 << kRadixBits;

// s = |grad * theta| + alpha * theta^2 (report 4(3)).
template <typename scalar_t>
PYPRUNE_HD scalar_t param_score(scalar_t theta, scalar_t grad, scalar_t alpha) {
#ifdef __CUDA_ARCH__
  return fabs(grad * theta) + alpha * theta * theta;
#else
  return std::abs(grad * theta) + alpha * theta * theta;
#endif
}

// Scores are >= 0 (or NaN, which is rejected), so their IEEE bits order like unsigned integers:
// the key of a score is its bit pattern, widened to 64 bits.
template <typename scalar_t, typename bits_t>
struct BitPatternKey {
  static constexpr int bits = 8 * sizeof(bits_t);
  PYPRUNE_HD static uint64_t of(scalar_t v) {
    bits_t k;
    memcpy(&k, &v, sizeof(k));
    return k;
  }
};
template <typename scalar_t>
struct ScoreKey;
template <>
struct ScoreKey<float> : BitPatternKey<float, uint32_t> {};
template <>
struct ScoreKey<double> : BitPatternKey<double, uint64_t> {};

// Whether key agrees with prefix on its top fixed_bits bits (of bits): the keys a pass counts.
PYPRUNE_HD bool key_in_range(uint64_t key, uint64_t prefix, int fixed_bits, int bits) {
  return fixed_bits == 0 || (key >> (bits - fixed_bits)) == (prefix >> (bits - fixed_bits));
}

}  // namespace pyprune
