// Launch API of the CUDA information kernels: raw pointers, sizes and a stream, no torch types,
// so the kernels compile with plain nvcc. The torch binding is info_cuda.cpp.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "info/info_shape.h"

namespace pyprune {
namespace cuda {

struct LabelView {
  const int64_t* data;  // nullptr: every label is 0
  int64_t seq_stride, step_stride;
  const int64_t* perm;  // nullptr, or sequence s takes the labels of sequence perm[s]
};

// Adds the counts of x [S, T, N] to transitions [N][states*B*K] and side [N][B*K] (the steps that
// start no transition; history 0: every step). flags[0] |= 1 on NaN/Inf, flags[1] |= 1 on a
// label outside [0, K). Outputs must be zeroed by the caller. x may be uint16 bin codes (from
// info_bin_codes) with the edges 0, 1, ..., B of every neuron, uniform: a code is its own bin.
// Codes >= B would be counted in the last bin: the caller checks them first.
template <typename scalar_t>
void info_counts(const scalar_t* x, LabelView labels, const double* edges, bool uniform,
                 const InfoShape& shape, int64_t* transitions, int64_t* side, int* flags,
                 cudaStream_t stream);

// The bin codes [S, T, N] of x, as info_counts bins it; flags[0] |= 1 on NaN/Inf.
template <typename scalar_t>
void info_bin_codes(const scalar_t* x, const double* edges, bool uniform, const InfoShape& shape,
                    uint16_t* codes, int* flags, cudaStream_t stream);

// Per-neuron entropy, MI, TE (times unit = 1 / ln base) from joint [N][B*K] and transitions.
void info_scores(const int64_t* joint, const int64_t* transitions, const InfoShape& shape,
                 double unit, bool miller_madow, double* entropy, double* mi, double* te,
                 cudaStream_t stream);

// Pointwise TE of every transition of x: out [S, T - history, N]; table is scratch [N][cells].
template <typename scalar_t>
void info_local_te(const scalar_t* x, LabelView labels, const double* edges, bool uniform,
                   const InfoShape& shape, const int64_t* transitions, double unit, double* table,
                   scalar_t* out, cudaStream_t stream);

}  // namespace cuda
}  // namespace pyprune
