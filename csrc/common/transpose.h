// Blocked out-of-place transpose for the CPU kernels that want batch-major operands: dst
// [cols][ld] = src [rows][cols] read through arbitrary strides, zero past `rows` in each dst row.
// Each thread transposes the tiles it works on into its own buffer.
#pragma once

#include <algorithm>
#include <type_traits>

#if defined(__AVX2__)
#include <immintrin.h>
#endif

#include "common/cpu_kernel.h"
#include "common/parallel.h"

// Compiled into each capability's copy of the kernels that include it, so it lives in that
// capability's namespace: a copy built for AVX2 never stands in for the baseline one at link time.
namespace pyprune {
namespace PYPRUNE_CPU_NAMESPACE {

#if defined(__AVX2__)
// dst[c * dst_ld + r] = src[r * src_ld + c] for an 8x8 float tile, in registers.
__attribute__((always_inline)) inline void transpose_8x8(const float* src, int64_t src_ld,
                                                         float* dst, int64_t dst_ld) {
  __m256 r[8], t[8];
  for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(src + i * src_ld);
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int i = 0; i < 8; i += 4) {
    r[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
    r[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xEE);
    r[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
    r[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
  }
  // r[0..3] hold columns 0,1,2,3 (rows 0-3 low half, 4-7 in r[4..7]); join the 128-bit halves.
  for (int i = 0; i < 4; ++i) {
    _mm256_storeu_ps(dst + i * dst_ld, _mm256_permute2f128_ps(r[i], r[i + 4], 0x20));
    _mm256_storeu_ps(dst + (i + 4) * dst_ld, _mm256_permute2f128_ps(r[i], r[i + 4], 0x31));
  }
}
#endif

// Rows [r0, r1) x columns [c0, c1) of dst [cols][ld] = src [rows][cols] (any strides); the block
// holding the last row also zeroes each of its columns' padding [rows, ld).
template <typename scalar_t>
inline void transpose_block(const scalar_t* src, int64_t rows, int64_t row_stride,
                            int64_t col_stride, scalar_t* dst, int64_t ld, int64_t r0, int64_t r1,
                            int64_t c0, int64_t c1) {
  int64_t r8 = r0, c8 = c0;  // the block's whole 8x8 tiles end here
#if defined(__AVX2__)
  if (std::is_same<scalar_t, float>::value && col_stride == 1) {
    r8 = r0 + (r1 - r0) / 8 * 8;
    c8 = c0 + (c1 - c0) / 8 * 8;
    for (int64_t c = c0; c < c8; c += 8)
      for (int64_t r = r0; r < r8; r += 8)
        transpose_8x8(reinterpret_cast<const float*>(src) + r * row_stride + c, row_stride,
                      reinterpret_cast<float*>(dst) + c * ld + r, ld);
  }
#endif
  for (int64_t c = c0; c < c1; ++c) {  // what the tiles left: the right and bottom strips
    scalar_t* column = dst + c * ld;
    const int64_t first = c < c8 ? r8 : r0;
    if (row_stride == 1) {  // already batch-major: a contiguous run
      std::copy(src + c * col_stride + first, src + c * col_stride + r1, column + first);
    } else {
      for (int64_t r = first; r < r1; ++r) column[r] = src[r * row_stride + c * col_stride];
    }
    if (r1 == rows)
      for (int64_t r = rows; r < ld; ++r) column[r] = scalar_t(0);
  }
}

// Blocks of 64 source rows x 16 columns: each destination row gets 256 contiguous bytes, and
// only 16 destination rows (often 4 KB apart, one L1 set) are written at a time. Square 32x32
// blocks made the training step slower.
constexpr int64_t kTransposeRows = 64, kTransposeCols = 16;

// dst [cols][ld] = src [rows][cols] on the calling thread.
template <typename scalar_t>
void transpose_serial(const scalar_t* src, int64_t rows, int64_t cols, int64_t row_stride,
                      int64_t col_stride, scalar_t* dst, int64_t ld) {
  for (int64_t c0 = 0; c0 < cols; c0 += kTransposeCols)
    for (int64_t r0 = 0; r0 < rows; r0 += kTransposeRows)
      transpose_block(src, rows, row_stride, col_stride, dst, ld, r0,
                      std::min(rows, r0 + kTransposeRows), c0, std::min(cols, c0 + kTransposeCols));
}

}  // namespace PYPRUNE_CPU_NAMESPACE
}  // namespace pyprune
