// The CPU kernels of the information ops, as the entry points (info_cpu.cpp) call them: raw
// pointers, the labels and bins as views, sizes in an InfoShape. Inputs are already checked and
// contiguous; NaN/Inf and labels out of range are found while counting and reported back.
#pragma once

#include <cstdint>

#include "common/cpu_kernel_table.h"
#include "info/info_shape.h"

namespace pyprune {

// Labels [S] (seq_stride 1, step_stride 0) or [S, T] (T, 1) int64; data null: every label is 0.
struct Labels {
  const int64_t* data;
  int64_t seq_stride, step_stride;
};

// Per-neuron bin edges [N][B+1] float64; uniform: equal-width bins (first and last edge only).
struct Bins {
  const double* edges;
  bool uniform;
  int32_t bins;
};

// What bad input a pass met.
struct InfoFlags {
  bool bad_x, bad_label;
};

// Per-neuron min and max over x [rows][n] into lo, hi [n] float64; true on NaN/Inf.
template <typename scalar_t>
using NeuronRangeFn = bool (*)(const scalar_t* x, int64_t rows, int64_t n, double* lo, double* hi);

// Adds the counts of x [S, T, N] to transitions [N][states*B*K] and joint [N][B*K].
template <typename scalar_t>
using InfoCountsFn = InfoFlags (*)(const scalar_t* x, const Labels& labels, const Bins& bins,
                                   const InfoShape& shape, int64_t* transitions, int64_t* joint);

// Entropy, MI and TE [N] (times unit, 1 / log(base)) from the counts; te untouched when
// shape.states is 0.
using InfoScoresFn = void (*)(const int64_t* joint, const int64_t* transitions, const InfoShape& shape,
                              double unit, bool miller_madow, double* entropy, double* mi, double* te);

// Pointwise TE [S, T - history, N] of x's transitions, from their counts.
template <typename scalar_t>
using LocalTeFn = void (*)(const scalar_t* x, const Labels& labels, const Bins& bins,
                           const InfoShape& shape, const int64_t* transitions, double unit,
                           scalar_t* out);

// The bin codes [S, T, N] of x; true on NaN/Inf.
template <typename scalar_t>
using BinCodesFn = bool (*)(const scalar_t* x, const Bins& bins, const InfoShape& shape,
                            uint16_t* codes);

// MI and TE [P, N] from the bin codes [S, T, N] of x, with the labels of sequence perms[p * S + s]
// given to sequence s. bad_x: a code >= shape.bins.
using PermutationNullFn = InfoFlags (*)(const uint16_t* codes, const Labels& labels,
                                        const InfoShape& shape, const int64_t* perms,
                                        int64_t num_perms, double unit, bool miller_madow,
                                        double* mi, double* te);

PYPRUNE_DECLARE_CPU_KERNEL(neuron_range_kernel, FloatingKernel<NeuronRangeFn>);
PYPRUNE_DECLARE_CPU_KERNEL(info_counts_kernel, FloatingKernel<InfoCountsFn>);
PYPRUNE_DECLARE_CPU_KERNEL(info_scores_kernel, InfoScoresFn);
PYPRUNE_DECLARE_CPU_KERNEL(local_te_kernel, FloatingKernel<LocalTeFn>);
PYPRUNE_DECLARE_CPU_KERNEL(bin_codes_kernel, FloatingKernel<BinCodesFn>);
PYPRUNE_DECLARE_CPU_KERNEL(permutation_null_kernel, PermutationNullFn);

}  // namespace pyprune
