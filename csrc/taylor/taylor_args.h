// Argument handling shared by the CPU and CUDA bindings of the Taylor ops.
#pragma once

#include <torch/types.h>

#include <cmath>
#include <vector>

#include "common/checks.h"
#include "taylor/taylor_shape.h"

namespace pyprune {

// Shared with the CUDA binding: checks and the [Nb, C, P] view.
inline ChannelShape channel_shape(const at::Tensor& x, const at::Tensor& g,
                           const c10::optional<at::Tensor>& gbar, bool with_means) {
  check_float(x, "x");
  PYPRUNE_CHECK_TYPE(g.scalar_type() == x.scalar_type(), "'g' must have the dtype of 'x' (",
                     x.scalar_type(), "), got ", g.scalar_type());
  PYPRUNE_CHECK_VALUE(x.dim() >= 2, "'x' must be [Nb, C, *spatial], got shape ", x.sizes());
  PYPRUNE_CHECK_VALUE(g.sizes() == x.sizes(), "'g' must have the shape of 'x' ", x.sizes(),
                      ", got ", g.sizes());
  check_same_device(g, x, "g", "x");
  int64_t positions = 1;  // from the sizes, not numel / (Nb * C): right for Nb = 0 too
  for (int64_t d = 2; d < x.dim(); ++d) positions *= x.size(d);
  ChannelShape s{x.size(0), x.size(1), positions, with_means, gbar.has_value()};
  if (gbar) {
    check_dtype(*gbar, at::kDouble, "gbar");
    check_same_device(*gbar, x, "gbar", "x");
    PYPRUNE_CHECK_VALUE(gbar->dim() == 2 && gbar->size(0) == s.channels && gbar->size(1) == s.positions,
                        "'gbar' must be [C, P] = [", s.channels, ", ", s.positions, "], got ", gbar->sizes());
    PYPRUNE_CHECK_VALUE(at::isfinite(*gbar).all().item<bool>(), "'gbar' contains NaN or Inf");
  }
  return s;
}

inline std::vector<at::Tensor> channel_outputs(const ChannelShape& s, const at::TensorOptions& like) {
  auto opts = like.dtype(at::kDouble);
  const int64_t mean_cols = s.with_means ? s.positions : 0;
  return {at::zeros({s.channels}, opts),           at::zeros({s.channels}, opts),
          at::zeros({s.channels}, opts),           at::zeros({s.channels, mean_cols}, opts),
          at::zeros({s.channels, mean_cols}, opts), at::zeros({s.channels}, opts)};
}

// NaN/Inf anywhere in x or g reaches sq (x^2) or dot (x g, with 0 * Inf = NaN). On the CPU a
// plain loop over the [C] sums: three isfinite/all/item chains cost more than a small layer's
// kernel. On the GPU one reduction and one synchronisation.
inline void check_channel_sums(const std::vector<at::Tensor>& out) {
  bool finite = true;
  if (out[0].is_cpu()) {
    for (int i = 0; i < 3; ++i) {
      const double* sums = out[i].data_ptr<double>();  // fresh, contiguous outputs
      for (int64_t c = 0; c < out[i].numel(); ++c) finite = finite && std::isfinite(sums[c]);
    }
  } else {
    finite = at::isfinite(at::cat({out[0], out[1], out[2]})).all().item<bool>();
  }
  PYPRUNE_CHECK_VALUE(finite, "'x' or 'g' contains NaN or Inf (or their products overflow)");
}

}  // namespace pyprune
