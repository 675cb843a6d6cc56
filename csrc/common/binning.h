// Per-neuron discretisation, one definition for the CPU and CUDA kernels and the NumPy reference.
//
// Equal-width ("uniform") bins on [lo, hi]: bin = clamp(floor((v - lo) * scale), 0, B - 1) with
// scale = B / (hi - lo) (0 for a constant neuron), evaluated in double.
// Given edges e_0..e_B: bin = number of interior edges e_1..e_{B-1} that are <= v.
// Values outside the range fall into the first or last bin. A NaN lands in bin 0 (the kernels
// flag it separately and raise), so no index is ever out of range.
#pragma once

#include <cstdint>

#include "common/hostdevice.h"

namespace pyprune {

PYPRUNE_HD double uniform_scale(double lo, double hi, int bins) {
  return hi > lo ? bins / (hi - lo) : 0.0;
}

PYPRUNE_HD int32_t uniform_bin(double v, double lo, double scale, double last_bin) {
  double u = (v - lo) * scale;
  u = u > 0.0 ? u : 0.0;  // also maps NaN to 0
  u = u < last_bin ? u : last_bin;
  return static_cast<int32_t>(u);
}

// interior: the B - 1 interior edges, ascending.
PYPRUNE_HD int32_t edges_bin(double v, const double* interior, int32_t num_interior) {
  int32_t first = 0, count = num_interior;
  while (count > 0) {
    const int32_t half = count / 2;
    if (interior[first + half] <= v) {
      first += half + 1;
      count -= half + 1;
    } else {
      count = half;
    }
  }
  return first;
}

// Non-finite test that vectorises: v - v is 0 for finite v, NaN for +-Inf and NaN.
PYPRUNE_HD bool is_nonfinite(double v) { return (v - v) != 0.0; }

}  // namespace pyprune
