// Argument checks of the single-shot score and top-k ops, shared by the CPU and CUDA bindings.
#pragma once

#include <torch/types.h>

#include <cmath>

#include "common/checks.h"

namespace pyprune {

// params and grads: one float dtype and device, grads[i] shaped like params[i].
inline void check_params(at::TensorList thetas, at::TensorList grads) {
  PYPRUNE_CHECK_VALUE(thetas.size() == grads.size(), "'grads' must have one tensor per parameter (",
                      thetas.size(), "), got ", grads.size());
  for (size_t i = 0; i < thetas.size(); ++i) {
    check_float(thetas[i], thetas.size() == 1 ? "theta" : "params");
    PYPRUNE_CHECK_TYPE(thetas[i].scalar_type() == thetas[0].scalar_type(),
                       "every tensor of 'params' must have one dtype");
    PYPRUNE_CHECK_VALUE(grads[i].sizes() == thetas[i].sizes() &&
                            grads[i].scalar_type() == thetas[i].scalar_type(),
                        "'grads[", i, "]' must match 'params[", i, "]' (", thetas[i].sizes(), ", ",
                        thetas[i].scalar_type(), "), got ", grads[i].sizes(), ", ",
                        grads[i].scalar_type());
    check_same_device(thetas[i], thetas[0], "params", "params[0]");
    check_same_device(grads[i], thetas[i], "grads", "params");
  }
}

inline void check_alpha(double alpha) {
  PYPRUNE_CHECK_VALUE(std::isfinite(alpha) && alpha >= 0, "'alpha' must be finite and >= 0, got ", alpha);
}

// keep in [0, total number of parameters].
inline void check_keep(at::TensorList thetas, int64_t keep) {
  int64_t total = 0;
  for (const auto& t : thetas) total += t.numel();
  PYPRUNE_CHECK_VALUE(keep >= 0 && keep <= total, "'keep' must lie in [0, ", total, "], got ", keep);
}

}  // namespace pyprune
