// The kernels' limits, defined once: the checks use them and the Python wrappers read them through
// torch.ops.pyprune.limits() (pyprune_ext/_ops.py), so the two sides cannot disagree.
#pragma once

#include <cstdint>
#include <limits>

namespace pyprune {

constexpr int64_t kMaxBins = 65536;      // bin codes are uint16
constexpr int32_t kMaxCellsLog2 = 26;    // histogram cells per neuron: bins^(history + 1) * classes
constexpr int64_t kMaxSparseIndex = std::numeric_limits<int32_t>::max();   // int32 CSR structures

}  // namespace pyprune
