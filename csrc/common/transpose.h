// Blocked, parallel out-of-place transpose for the CPU kernels that want batch-major operands:
// dst [cols][rows] = src [rows][cols] read through arbitrary strides. ATen's t().contiguous() runs
// several times slower on these shapes.
#pragma once

#include <ATen/ATen.h>

#include <cstring>

#include "common/parallel.h"

namespace pyprune {

template <typename scalar_t>
void transpose_into(const scalar_t* src, int64_t rows, int64_t cols, int64_t row_stride,
                    int64_t col_stride, scalar_t* dst) {
  constexpr int64_t kBlock = 32;
  const int64_t row_blocks = ceil_div(rows, kBlock), col_blocks = ceil_div(cols, kBlock);
#pragma omp parallel for collapse(2) schedule(static) num_threads(num_threads())
  for (int64_t cb = 0; cb < col_blocks; ++cb) {
    for (int64_t rb = 0; rb < row_blocks; ++rb) {
      const int64_t r1 = std::min(rows, (rb + 1) * kBlock), c1 = std::min(cols, (cb + 1) * kBlock);
      for (int64_t c = cb * kBlock; c < c1; ++c)
        for (int64_t r = rb * kBlock; r < r1; ++r) dst[c * rows + r] = src[r * row_stride + c * col_stride];
    }
  }
}

// t [rows, cols] (any strides) as a contiguous [cols, ld] tensor, ld = rows rounded up to a
// multiple of `multiple`, the padding zero (so SIMD tiles may read past the last row). Free when
// t is already a transposed view of contiguous memory and needs no padding.
inline at::Tensor transposed_padded(const at::Tensor& t, int64_t multiple) {
  const int64_t rows = t.size(0), cols = t.size(1), ld = ceil_div(rows, multiple) * multiple;
  if (ld == rows && t.t().is_contiguous()) return t.t();
  at::Tensor out = at::empty({cols, ld}, t.options());
  AT_DISPATCH_FLOATING_TYPES(t.scalar_type(), "transpose", [&] {
    scalar_t* o = out.data_ptr<scalar_t>();
    transpose_into<scalar_t>(t.data_ptr<scalar_t>(), rows, cols, t.stride(0), t.stride(1), o);
    if (ld != rows) {  // transpose_into packed [cols][rows]: spread to [cols][ld], back to front
      for (int64_t c = cols - 1; c >= 0; --c) {
        std::memmove(o + c * ld, o + c * rows, rows * sizeof(scalar_t));
        std::fill(o + c * ld + rows, o + (c + 1) * ld, scalar_t(0));
      }
    }
  });
  return out;
}

}  // namespace pyprune
