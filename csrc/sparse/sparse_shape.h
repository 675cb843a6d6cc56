// The sizes of a sparse linear call, shared by the checks (sparse_args.h) and the CPU kernels.
#pragma once

#include <cstdint>

namespace pyprune {

// x [batch, in_features], W [out_features, in_features] with nnz stored values.
struct SparseShape {
  int64_t batch, in_features, out_features, nnz;
};

}  // namespace pyprune
