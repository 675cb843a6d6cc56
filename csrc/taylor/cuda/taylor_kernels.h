// Launch API of the CUDA Taylor kernels: raw pointers, sizes and a stream, no torch types.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "taylor/taylor_shape.h"

namespace pyprune {
namespace cuda {

// Adds the per-channel sums of x, g [Nb, C, P] into zeroed float64 outputs (see taylor_args.h);
// gbar [C, P] float64 may be null; sum_x/sum_g are used only when shape.with_means.
template <typename scalar_t>
void channel_stats(const scalar_t* x, const scalar_t* g, const double* gbar,
                   const ChannelShape& shape, double* sq, double* dot, double* dot2,
                   double* sum_x, double* sum_g, double* trace, cudaStream_t stream);

}  // namespace cuda
}  // namespace pyprune
