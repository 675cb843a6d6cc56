// The CPU kernel of the Taylor channel statistics, as the entry point (taylor_cpu.cpp) calls it:
// raw pointers and sizes, the same contract as the CUDA launch API (cuda/taylor_kernels.h).
#pragma once

#include "common/cpu_kernel_table.h"
#include "taylor/taylor_shape.h"

namespace pyprune {

// Writes the per-channel sums of x, g [Nb, C, P] (contiguous) into zeroed float64 outputs: sq,
// dot, dot2, trace [C] and, with shape.with_means, sum_x, sum_g [C, P]; gbar [C, P] float64 is
// read only with shape.with_trace.
template <typename scalar_t>
using ChannelStatsFn = void (*)(const scalar_t* x, const scalar_t* g, const double* gbar,
                                const ChannelShape& shape, double* sq, double* dot, double* dot2,
                                double* sum_x, double* sum_g, double* trace);

PYPRUNE_DECLARE_CPU_KERNEL(channel_stats_kernel, FloatingKernel<ChannelStatsFn>);

}  // namespace pyprune
