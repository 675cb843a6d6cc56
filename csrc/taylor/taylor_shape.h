// Shapes shared by the CPU and CUDA kernels of the Taylor family.
#pragma once

#include <cstdint>

namespace pyprune {

// A feature map [Nb, C, P] (P = product of the spatial sizes, 1 for a linear layer) and what the
// channel-statistics pass must produce besides the per-channel sums.
struct ChannelShape {
  int64_t samples, channels, positions;
  bool with_means;  // sums of x and g over samples, per (c, p): meanprod, and gbar for trace
  bool with_trace;  // sum_n (x_n . gbar)^2 per channel, gbar given
};

}  // namespace pyprune
