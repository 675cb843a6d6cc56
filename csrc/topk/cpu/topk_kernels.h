// The CPU kernels of the single-shot score and the global top-k masks, as the entry points
// (topk_cpu.cpp) call them: raw pointers and sizes.
#pragma once

#include <cstdint>

#include "common/cpu_kernel_table.h"

namespace pyprune {

// out[i] = |grad[i] * theta[i]| + alpha * theta[i]^2 for i < n.
template <typename scalar_t>
using ParamScoresFn = void (*)(const scalar_t* theta, const scalar_t* grad, int64_t n,
                               scalar_t alpha, scalar_t* out);

// masks[t][i] true for the `keep` largest scores over the `count` tensors (thetas[t], grads[t],
// sizes[t] elements each), ties kept in index order. Returns false, with the masks unwritten, when
// some score is NaN or Inf.
template <typename scalar_t>
using TopkMasksFn = bool (*)(int64_t count, const scalar_t* const* thetas,
                             const scalar_t* const* grads, const int64_t* sizes, scalar_t alpha,
                             int64_t keep, bool* const* masks);

PYPRUNE_DECLARE_CPU_KERNEL(param_scores_kernel, FloatingKernel<ParamScoresFn>);
PYPRUNE_DECLARE_CPU_KERNEL(topk_masks_kernel, FloatingKernel<TopkMasksFn>);

}  // namespace pyprune
