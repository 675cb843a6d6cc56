// CPU kernels of the sparse linear layer Y = X W^T + b with W in CSR at a fixed mask.
//
// Both products that sum over nonzeros run on batch-major operands (X^T [N, B], dY^T [M, B]), so
// every nonzero is one broadcast-FMA over a contiguous run of the batch, vectorised. A task owns a
// block of output rows and a tile of the batch; its results go through a small local tile that
// is transposed on the way out, so outputs come back [B, rows], contiguous. Rows are handed out
// dynamically, a few blocks of 16 at a time.
//   forward  Y[b, m]  = sum_{j in row m} v_j X^T[col_j, b] + bias_m
//   dX[b, n]          = sum_{j in column n} v_{perm_j} dY^T[row_j, b]     (transposed structure)
//   dW_j              = sum_b dY^T[m, b] X^T[col_j, b]                     (sampled dense-dense)
#include <torch/library.h>
#include <torch/types.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "common/parallel.h"
#include "common/transpose.h"
#include "sparse/cpu/batch_layout.h"
#include "sparse/sparse_args.h"

namespace pyprune {
namespace {

constexpr int64_t kRowBlock = 16;
constexpr int64_t kVectors = 8;    // accumulator registers per row, at most
constexpr int64_t kSlabBytes = 1024 * 1024;  // in_t slab of one batch tile: one core's L2
constexpr int64_t kPrefetch = 8;   // nonzeros ahead whose input rows are prefetched
// A SIMD vector of scalar_t (GCC vector extension).
template <typename scalar_t>
using Vec __attribute__((vector_size(kVecBytes))) = scalar_t;

template <typename scalar_t>
inline Vec<scalar_t> load(const scalar_t* p) {
  Vec<scalar_t> v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

// One row over `vectors` SIMD vectors of the batch: acc stays in registers over the nonzeros.
template <int vectors, typename scalar_t>
inline void row_tile(int32_t begin, int32_t end, const int32_t* idx, const int32_t* perm,
                     const scalar_t* values, const scalar_t* in_t, int64_t ld, scalar_t init,
                     scalar_t* out) {
  constexpr int64_t lanes = kVecBytes / sizeof(scalar_t);
  Vec<scalar_t> acc[vectors];
  for (int k = 0; k < vectors; ++k) acc[k] = Vec<scalar_t>{} + init;
  for (int32_t j = begin; j < end; ++j) {
    if (j + kPrefetch < end)
      __builtin_prefetch(in_t + static_cast<int64_t>(idx[j + kPrefetch]) * ld);
    const scalar_t v = values[perm ? perm[j] : j];
    const scalar_t* src = in_t + static_cast<int64_t>(idx[j]) * ld;
    for (int k = 0; k < vectors; ++k) acc[k] += v * load(src + k * lanes);
  }
  std::memcpy(out, acc, sizeof(acc));
}

// A batch of 1: one row's dot product with the dense column, over eight independent partial
// sums (the FMA latency). Pointer walks keep the loop at three loads and an FMA per nonzero.
// Scalar on purpose: GCC otherwise turns it into gathers with 64-bit index arithmetic, 2x slower.
template <typename scalar_t>
__attribute__((optimize("no-tree-vectorize", "no-tree-slp-vectorize"))) inline scalar_t
row_column(int32_t begin, int32_t end, const int32_t* idx, const int32_t* perm,
           const scalar_t* values, const scalar_t* column, scalar_t init) {
  scalar_t part[8] = {init, 0, 0, 0, 0, 0, 0, 0};
  const int32_t* col = idx + begin;
  const int32_t* const last = idx + end;
  if (perm) {
    const int32_t* slot = perm + begin;
    for (; col + 8 <= last; col += 8, slot += 8)
      for (int k = 0; k < 8; ++k) part[k] += values[slot[k]] * column[col[k]];
    for (; col < last; ++col, ++slot) part[0] += values[*slot] * column[*col];
  } else {
    const scalar_t* value = values + begin;
    for (; col + 8 <= last; col += 8, value += 8)
      for (int k = 0; k < 8; ++k) part[k] += value[k] * column[col[k]];
    for (; col < last; ++col, ++value) part[0] += *value * column[*col];
  }
  return ((part[0] + part[1]) + (part[2] + part[3])) + ((part[4] + part[5]) + (part[6] + part[7]));
}

// One row over a batch tile of `vectors` SIMD vectors, 1 to kVectors, chosen at run time.
template <typename scalar_t>
inline void row_vectors(int vectors, int32_t begin, int32_t end, const int32_t* idx,
                        const int32_t* perm, const scalar_t* values, const scalar_t* in_t,
                        int64_t ld, scalar_t init, scalar_t* out) {
  switch (vectors) {
#define PYPRUNE_ROW_TILE(V) \
  case V:                   \
    return row_tile<V>(begin, end, idx, perm, values, in_t, ld, init, out);
    PYPRUNE_ROW_TILE(1) PYPRUNE_ROW_TILE(2) PYPRUNE_ROW_TILE(3) PYPRUNE_ROW_TILE(4)
    PYPRUNE_ROW_TILE(5) PYPRUNE_ROW_TILE(6) PYPRUNE_ROW_TILE(7) PYPRUNE_ROW_TILE(8)
#undef PYPRUNE_ROW_TILE
  }
}

// out [batch][rows] = sum over the nonzeros of each row of value * in_t[idx][batch] (+ bias).
// in_t is [in_rows, ld] with ld a multiple of the SIMD width and zero padding past `batch`, so
// every tile is whole vectors; for a batch of 1, scalar sums over the column instead.
template <typename scalar_t>
void spmm_rows(int64_t rows, int64_t batch, int64_t in_rows, int64_t ld, const int32_t* ptr,
               const int32_t* idx, const int32_t* perm, const scalar_t* values,
               const scalar_t* in_t, const scalar_t* bias, scalar_t* out) {
  static_assert(kVectors == 8, "row_vectors dispatches 1..8 vectors");
  constexpr int64_t lanes = kVecBytes / sizeof(scalar_t);
  // Every nonzero reads a row of the batch tile's slab of in_t: narrower tiles for tall in_t
  // keep the slab in L2 (4096 rows: 4 vectors wide, 1 MB) rather than streaming it from L3.
  const int64_t vectors =
      std::clamp<int64_t>(kSlabBytes / (std::max<int64_t>(in_rows, 1) * kVecBytes), 1, kVectors);
  const int64_t tile_width = vectors * lanes;
  const int64_t row_blocks = ceil_div(rows, kRowBlock), tiles = ceil_div(batch, tile_width);
  // Blocks handed out a few at a time: about 16 hand-outs per thread and tile balance the load,
  // where one block each paid the scheduler more than a batch-1 block's work.
  const int64_t chunk = std::max<int64_t>(1, row_blocks / (16 * num_threads()));
#pragma omp parallel num_threads(num_threads())
  {
    alignas(64) scalar_t tile[kRowBlock][kVectors * lanes];
    // Batch tiles outermost: the threads share one slab of in_t at a time.
#pragma omp for schedule(dynamic, chunk) collapse(2)
    for (int64_t bt = 0; bt < tiles; ++bt) {
      for (int64_t rb = 0; rb < row_blocks; ++rb) {
        const int64_t r0 = rb * kRowBlock, r1 = std::min(rows, r0 + kRowBlock);
        const int64_t b0 = bt * tile_width, width = std::min(tile_width, batch - b0);
        for (int64_t r = r0; r < r1; ++r) {
          const scalar_t init = bias ? bias[r] : scalar_t(0);
          scalar_t* acc = tile[r - r0];
          if (use_simd(batch)) {
            row_vectors(static_cast<int>(ceil_div(width, lanes)), ptr[r], ptr[r + 1], idx, perm,
                        values, in_t + b0, ld, init, acc);
          } else {
            acc[0] = row_column(ptr[r], ptr[r + 1], idx, perm, values, in_t, init);  // ld == 1
          }
        }
        for (int64_t b = 0; b < width; ++b)
          for (int64_t r = r0; r < r1; ++r) out[(b0 + b) * rows + r] = tile[r - r0][b];
      }
    }
  }
}

// dw[j] = dot(dy_t[row of j], x_t[col_j]) over the batch.
template <typename scalar_t>
void sddmm_rows(int64_t rows, int64_t batch, int64_t ld, const int32_t* ptr, const int32_t* idx,
                const scalar_t* dy_t, const scalar_t* x_t, scalar_t* dw) {
  if (ld == 1) {  // a batch of 1: one product per nonzero (a length-1 SIMD reduction costs 10x)
#pragma omp parallel for schedule(static) num_threads(num_threads())
    for (int64_t r = 0; r < rows; ++r) {
      const scalar_t dy = dy_t[r];
      for (int32_t j = ptr[r]; j < ptr[r + 1]; ++j) dw[j] = dy * x_t[idx[j]];
    }
    return;
  }
#pragma omp parallel for schedule(dynamic, 8) num_threads(num_threads())
  for (int64_t r = 0; r < rows; ++r) {
    const scalar_t* dy = dy_t + r * ld;
    for (int32_t j = ptr[r]; j < ptr[r + 1]; ++j) {
      const scalar_t* x = x_t + static_cast<int64_t>(idx[j]) * ld;
      scalar_t sum = 0;
#pragma omp simd reduction(+ : sum)
      for (int64_t b = 0; b < ld; ++b) sum += dy[b] * x[b];  // padding is zero
      dw[j] = sum;
    }
  }
}

at::Tensor sparse_linear_cpu(const at::Tensor& x, const at::Tensor& values,
                             const c10::optional<at::Tensor>& bias, const at::Tensor& row_ptr,
                             const at::Tensor& col_idx, const at::Tensor& t_ptr,
                             const at::Tensor& t_idx, const at::Tensor& t_perm) {
  const SparseShape s = sparse_shape(x, values, row_ptr, col_idx, t_ptr, t_idx, t_perm);
  check_bias(bias, x, s);
  at::Tensor b;
  if (bias) b = bias->contiguous();
  const at::Tensor x_t = transposed_padded(x, pad_for(s.batch)), v = values.contiguous();
  at::Tensor y = at::empty({s.batch, s.out_features}, x.options());
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "sparse_linear", [&] {
    spmm_rows<scalar_t>(s.out_features, s.batch, s.in_features, x_t.size(1),
                        row_ptr.data_ptr<int32_t>(), col_idx.data_ptr<int32_t>(), nullptr,
                        v.data_ptr<scalar_t>(), x_t.data_ptr<scalar_t>(),
                        bias ? b.data_ptr<scalar_t>() : nullptr, y.data_ptr<scalar_t>());
  });
  return y;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> sparse_linear_backward_cpu(
    const at::Tensor& grad_y, const at::Tensor& x, const at::Tensor& values,
    const at::Tensor& row_ptr, const at::Tensor& col_idx, const at::Tensor& t_ptr,
    const at::Tensor& t_idx, const at::Tensor& t_perm, bool need_x, bool need_w, bool need_b) {
  const SparseShape s = sparse_shape(x, values, row_ptr, col_idx, t_ptr, t_idx, t_perm);
  check_grad_y(grad_y, x, s);
  const at::Tensor dy_t = transposed_padded(grad_y, pad_for(s.batch)), v = values.contiguous();
  at::Tensor dx = at::empty({0}, x.options()), dw = dx, db = dx;  // empty when not asked for
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "sparse_linear_backward", [&] {
    if (need_x) {
      dx = at::empty({s.batch, s.in_features}, x.options());
      spmm_rows<scalar_t>(s.in_features, s.batch, s.out_features, dy_t.size(1),
                          t_ptr.data_ptr<int32_t>(), t_idx.data_ptr<int32_t>(),
                          t_perm.data_ptr<int32_t>(), v.data_ptr<scalar_t>(),
                          dy_t.data_ptr<scalar_t>(), nullptr, dx.data_ptr<scalar_t>());
    }
    if (need_w) {
      const at::Tensor x_t = transposed_padded(x, pad_for(s.batch));
      dw = at::empty({s.nnz}, x.options());
      sddmm_rows<scalar_t>(s.out_features, s.batch, x_t.size(1), row_ptr.data_ptr<int32_t>(),
                           col_idx.data_ptr<int32_t>(), dy_t.data_ptr<scalar_t>(),
                           x_t.data_ptr<scalar_t>(), dw.data_ptr<scalar_t>());
    }
  });
  if (need_b) db = grad_y.sum(0);
  return {dx, dw, db};
}

}  // namespace

TORCH_LIBRARY_IMPL(pyprune, CPU, m) {
  m.impl("sparse_linear", &sparse_linear_cpu);
  m.impl("sparse_linear_backward", &sparse_linear_backward_cpu);
}

}  // namespace pyprune
