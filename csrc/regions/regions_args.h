// Argument checks shared by the CPU and CUDA bindings of label_regions.
#pragma once

#include <torch/types.h>

#include "common/checks.h"

namespace pyprune {

inline void check_label_args(const at::Tensor& mask, const c10::optional<at::Tensor>& weights,
                             int64_t connectivity) {
  check_dtype(mask, at::kBool, "mask");
  check_dim(mask, 3, "mask");
  PYPRUNE_CHECK_VALUE(connectivity == 4 || connectivity == 8,
                      "'connectivity' must be 4 or 8, got ", connectivity);
  PYPRUNE_CHECK_VALUE(mask.size(1) * mask.size(2) < (int64_t{1} << 31),
                      "'mask' planes must have fewer than 2^31 pixels, got ", mask.sizes());
  if (weights) {
    check_float(*weights, "weights");
    PYPRUNE_CHECK_VALUE(weights->sizes() == mask.sizes(), "'weights' must have the shape of 'mask' ",
                        mask.sizes(), ", got ", weights->sizes());
    check_same_device(*weights, mask, "weights", "mask");
  }
}

// Raised after the sums are in: NaN/Inf weights under the mask (or a region's sum overflowing)
// reach some region's sum; weights off the mask are never read.
inline void check_region_sums(bool all_finite) {
  PYPRUNE_CHECK_VALUE(all_finite, "'weights' contains NaN or Inf under the mask");
}

}  // namespace pyprune
