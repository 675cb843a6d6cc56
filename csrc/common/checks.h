// Argument checks for the C++ side of every op. The Python wrappers check first with friendlier
// messages; these keep direct torch.ops calls safe. Each names the offending argument.
#pragma once

#include <torch/types.h>

#define PYPRUNE_CHECK_VALUE(cond, ...) TORCH_CHECK_VALUE(cond, "pyprune: ", __VA_ARGS__)
#define PYPRUNE_CHECK_TYPE(cond, ...) TORCH_CHECK_TYPE(cond, "pyprune: ", __VA_ARGS__)

namespace pyprune {

inline void check_float(const at::Tensor& t, const char* name) {
  PYPRUNE_CHECK_TYPE(t.scalar_type() == at::kFloat || t.scalar_type() == at::kDouble,
                     "'", name, "' must be float32 or float64, got ", t.scalar_type());
}

inline void check_dtype(const at::Tensor& t, at::ScalarType dtype, const char* name) {
  PYPRUNE_CHECK_TYPE(t.scalar_type() == dtype, "'", name, "' must be ", dtype, ", got ",
                     t.scalar_type());
}

inline void check_dim(const at::Tensor& t, int64_t dim, const char* name) {
  PYPRUNE_CHECK_VALUE(t.dim() == dim, "'", name, "' must be ", dim, "-D, got shape ", t.sizes());
}

inline void check_same_device(const at::Tensor& t, const at::Tensor& ref, const char* name,
                              const char* ref_name) {
  PYPRUNE_CHECK_VALUE(t.device() == ref.device(), "'", name, "' is on ", t.device(), " but '",
                      ref_name, "' is on ", ref.device());
}

}  // namespace pyprune
