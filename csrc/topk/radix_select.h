// The radix selection of the top-k threshold, written once for the CPU and the CUDA top-k: the
// device code only counts digits (count_digits); this host loop picks, digit by digit from the
// most significant, the bin that holds the keep-th largest key.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "topk/topk_math.h"

namespace pyprune {

struct RadixSelection {
  uint64_t threshold;  // the key of the keep-th largest score
  int64_t above;       // keys > threshold (all kept)
  int64_t equal;       // keys == threshold (kept in index order until keep are kept)
};

// count_digits(prefix, fixed_bits, shift, hist) adds to hist[kRadixBins] the digit
// (key >> shift) & (kRadixBins - 1) of every key that agrees with prefix on its top fixed_bits
// bits, and raises on a NaN/Inf score. The first pass also runs when nothing is kept: it is where
// NaN/Inf scores are found.
template <typename CountDigits>
RadixSelection radix_select(int key_bits, int64_t keep, CountDigits&& count_digits) {
  RadixSelection s{0, 0, 0};
  std::vector<int64_t> hist(kRadixBins);
  for (int fixed_bits = 0; (keep > 0 || fixed_bits == 0) && fixed_bits < key_bits;) {
    const int bits = std::min(kRadixBits, key_bits - fixed_bits);
    const int shift = key_bits - fixed_bits - bits;
    std::fill(hist.begin(), hist.end(), 0);
    count_digits(s.threshold, fixed_bits, shift, hist.data());
    int64_t bin = kRadixBins - 1;
    for (; bin > 0 && s.above + hist[bin] < keep; --bin) s.above += hist[bin];
    s.threshold |= static_cast<uint64_t>(bin) << shift;
    s.equal = hist[bin];
    fixed_bits += bits;
  }
  return s;
}

}  // namespace pyprune
