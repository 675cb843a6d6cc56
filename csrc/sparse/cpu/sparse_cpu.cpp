// CPU kernels of the sparse linear layer Y = X W^T + b with W in CSR at a fixed mask.
//
// Both products that sum over nonzeros read their dense operand batch-major, so every nonzero is
// one broadcast-FMA over a contiguous run of the batch, vectorised. Each thread takes an equal
// share of the (batch tile, output row) work; for each batch tile it touches it transposes that
// tile's slab of the operand into its own buffer, which then serves the rows' random reads from
// the thread's own L2. Results go through a small local tile that is transposed on the way out,
// so outputs come back [B, rows], contiguous.
//   forward  Y[b, m]  = sum_{j in row m} v_j X[b, col_j] + bias_m
//   dX[b, n]          = sum_{j in column n} v_{perm_j} dY[b, row_j]       (transposed structure)
//   dW_j              = sum_b dY^T[m, b] X^T[col_j, b]                     (sampled dense-dense)
#include <torch/library.h>
#include <torch/types.h>

#include <algorithm>
#include <cstring>
#include <utility>

#include <omp.h>

#include "common/parallel.h"
#include "common/scratch.h"
#include "common/transpose.h"
#include "sparse/sparse_args.h"

namespace pyprune {
namespace {

// SIMD vector bytes: a zmm register where AVX-512 is there, else a ymm one.
#if defined(__AVX512F__)
constexpr int64_t kVecBytes = 64;
#else
constexpr int64_t kVecBytes = 32;
#endif
constexpr int64_t kPad = kVecBytes / 4;  // batch-major copies padded to whole vectors (floats)

// From a batch of 2 up, the batch-major copies are padded to whole vectors and every nonzero is
// one SIMD FMA (a batch of 3 pays 8 lanes, still far cheaper than 3 scalar passes over the row).
// A batch of 1 keeps a dense column: it stays in L1 and a scalar pass reads nothing extra.
inline bool use_simd(int64_t batch) { return batch >= 2; }
inline int64_t pad_for(int64_t batch) { return use_simd(batch) ? kPad : 1; }

constexpr int64_t kRowBlock = 16;
constexpr int64_t kVectors = 8;    // accumulator registers per row, at most
constexpr int64_t kSlabBytes = 1024 * 1024;  // a thread's slab of one batch tile: its L2
constexpr int64_t kPrefetch = 8;   // nonzeros ahead whose input rows are prefetched
// A vector of `lanes` scalar_t (GCC vector extension), and the SIMD vector of scalar_t.
template <typename scalar_t, int lanes>
using VecOf __attribute__((vector_size(lanes * sizeof(scalar_t)))) = scalar_t;
template <typename scalar_t>
using Vec = VecOf<scalar_t, kVecBytes / sizeof(scalar_t)>;

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

// The batch in tiles of whole SIMD vectors, as even as the slab size allows.
struct BatchTiles {
  int64_t vectors, count;  // SIMD vectors of the whole batch, tiles
  int64_t first_vector(int64_t tile) const { return tile * vectors / count; }
  int64_t width(int64_t tile) const { return first_vector(tile + 1) - first_vector(tile); }
};

// A place in the sequence of (tile, row) work items, tile-major.
struct WorkPosition {
  int64_t tile, row;
};

// Where thread `part` of `parts` starts: each (tile, row) costs the row's nonzeros plus one (the
// bias and the store) times the tile's vectors, and the parts get equal shares of the total.
inline WorkPosition work_start(const BatchTiles& tiles, const int32_t* ptr, int64_t rows,
                               int64_t part, int64_t parts) {
  const auto row_cost = [&](int64_t r) { return static_cast<int64_t>(ptr[r] - ptr[0]) + r; };
  const int64_t per_vector = row_cost(rows);  // >= 1: rows >= 1
  const int64_t target = part * tiles.vectors * per_vector / parts;
  const int64_t vector = std::min(target / per_vector, tiles.vectors - 1);
  int64_t t = vector * tiles.count / tiles.vectors;  // tiles differ by one vector at most
  while (tiles.first_vector(t) > vector) --t;
  while (t + 1 < tiles.count && tiles.first_vector(t + 1) <= vector) ++t;
  const int64_t within = target - tiles.first_vector(t) * per_vector, width = tiles.width(t);
  int64_t lo = 0, hi = rows;  // the first row whose cost prefix reaches `within`
  while (lo < hi) {
    const int64_t mid = (lo + hi) / 2;
    if (row_cost(mid) * width < within) lo = mid + 1; else hi = mid;
  }
  return {t, lo};
}

// out [batch][rows] = sum over the nonzeros of each row of value * in[batch][idx] (+ bias), in
// read through any strides. Each thread takes an equal share of the (batch tile, row) sequence;
// for each tile it touches it first copies the tile's slab of in, batch-major and padded to whole
// vectors, into its own buffer, so the nonzeros' random row reads hit its own L2.
template <typename scalar_t>
void spmm_rows(int64_t rows, int64_t batch, int64_t in_rows, const scalar_t* in,
               int64_t batch_stride, int64_t feature_stride, const int32_t* ptr,
               const int32_t* idx, const int32_t* perm, const scalar_t* values,
               const scalar_t* bias, scalar_t* out, const at::TensorOptions& options) {
  static_assert(kVectors == 8, "row_vectors dispatches 1..8 vectors");
  constexpr int64_t lanes = kVecBytes / sizeof(scalar_t);
  if (rows == 0 || batch == 0) return;
  // A slab of at most kSlabBytes: 4096 input rows get 4-vector tiles (1 MB), 784 get 8.
  const int64_t max_vectors =
      std::clamp<int64_t>(kSlabBytes / (std::max<int64_t>(in_rows, 1) * kVecBytes), 1, kVectors);
  const int64_t vectors = ceil_div(batch, lanes);
  const BatchTiles tiles{vectors, ceil_div(vectors, max_vectors)};
  const int64_t slab_size = std::max<int64_t>(in_rows, 1) * ceil_div(vectors, tiles.count) * lanes;
  const int threads = num_threads();
  const at::Tensor slabs = scratch_tensor(ScratchSlot::kSlabs, {threads, slab_size}, options);
#pragma omp parallel num_threads(threads)
  {
    const int64_t part = omp_get_thread_num(), parts = omp_get_num_threads();
    scalar_t* slab = slabs.data_ptr<scalar_t>() + part * slab_size;
    alignas(64) scalar_t tile_out[kRowBlock][kVectors * lanes];
    const WorkPosition begin = work_start(tiles, ptr, rows, part, parts);
    const WorkPosition end = work_start(tiles, ptr, rows, part + 1, parts);
    for (int64_t t = begin.tile; t <= end.tile && t < tiles.count; ++t) {
      const int64_t row_begin = t == begin.tile ? begin.row : 0;
      const int64_t row_end = t == end.tile ? end.row : rows;
      if (row_begin >= row_end) continue;
      const int64_t b0 = tiles.first_vector(t) * lanes;
      const int64_t width = std::min(tiles.width(t) * lanes, batch - b0);
      const int tile_vectors = static_cast<int>(ceil_div(width, lanes)), ld = tile_vectors * lanes;
      transpose_serial(in + b0 * batch_stride, width, in_rows, batch_stride, feature_stride, slab,
                       ld);
      for (int64_t r0 = row_begin; r0 < row_end; r0 += kRowBlock) {
        const int64_t r1 = std::min(row_end, r0 + kRowBlock);
        for (int64_t r = r0; r < r1; ++r)
          row_vectors(tile_vectors, ptr[r], ptr[r + 1], idx, perm, values, slab, ld,
                      bias ? bias[r] : scalar_t(0), tile_out[r - r0]);
        for (int64_t b = 0; b < width; ++b)
          for (int64_t r = r0; r < r1; ++r) out[(b0 + b) * rows + r] = tile_out[r - r0][b];
      }
    }
  }
}

// A batch of 1: out[r] = the dot product of each row with the dense column (+ bias).
template <typename scalar_t>
void spmv_rows(int64_t rows, const int32_t* ptr, const int32_t* idx, const int32_t* perm,
               const scalar_t* values, const scalar_t* column, const scalar_t* bias,
               scalar_t* out) {
#pragma omp parallel for schedule(dynamic, kRowBlock * 4) num_threads(num_threads())
  for (int64_t r = 0; r < rows; ++r)
    out[r] = row_column(ptr[r], ptr[r + 1], idx, perm, values, column, bias ? bias[r] : scalar_t(0));
}

// The sum of a vector's lanes, halving it in registers: log2(lanes) shuffles and adds.
template <typename scalar_t, int lanes>
inline scalar_t sum_lanes(VecOf<scalar_t, lanes> v);

template <typename scalar_t, int lanes, int... i>
inline scalar_t sum_halves(VecOf<scalar_t, lanes> v, std::integer_sequence<int, i...>) {
  const VecOf<scalar_t, lanes / 2> low = __builtin_shufflevector(v, v, i...);
  const VecOf<scalar_t, lanes / 2> high = __builtin_shufflevector(v, v, (i + lanes / 2)...);
  return sum_lanes<scalar_t, lanes / 2>(low + high);
}

template <typename scalar_t, int lanes>
inline scalar_t sum_lanes(VecOf<scalar_t, lanes> v) {
  if constexpr (lanes == 1) {
    return v[0];
  } else {
    return sum_halves<scalar_t, lanes>(v, std::make_integer_sequence<int, lanes / 2>{});
  }
}

// dw[j] = dot(dy_t[row of j], x_t[col_j]) over the batch (ld a multiple of the SIMD width, the
// padding zero). Four nonzeros at a time: each dy vector loaded feeds four independent FMA chains,
// where one chain per nonzero waited on the FMA latency (~3x slower at a batch of 100).
template <typename scalar_t>
void sddmm_rows(int64_t rows, int64_t ld, const int32_t* ptr, const int32_t* idx,
                const scalar_t* dy_t, const scalar_t* x_t, scalar_t* dw) {
  constexpr int lanes = kVecBytes / sizeof(scalar_t);
  if (ld == 1) {  // a batch of 1: one product per nonzero (a length-1 SIMD reduction costs 10x)
#pragma omp parallel for schedule(static) num_threads(num_threads())
    for (int64_t r = 0; r < rows; ++r) {
      const scalar_t dy = dy_t[r];
      for (int32_t j = ptr[r]; j < ptr[r + 1]; ++j) dw[j] = dy * x_t[idx[j]];
    }
    return;
  }
  const auto row_of = [&](int32_t j) { return x_t + static_cast<int64_t>(idx[j]) * ld; };
#pragma omp parallel for schedule(dynamic, 8) num_threads(num_threads())
  for (int64_t r = 0; r < rows; ++r) {
    const scalar_t* dy = dy_t + r * ld;
    int32_t j = ptr[r];
    for (; j + 4 <= ptr[r + 1]; j += 4) {
      const scalar_t *x0 = row_of(j), *x1 = row_of(j + 1), *x2 = row_of(j + 2), *x3 = row_of(j + 3);
      Vec<scalar_t> a0{}, a1{}, a2{}, a3{};
      for (int64_t b = 0; b < ld; b += lanes) {
        const Vec<scalar_t> d = load(dy + b);
        a0 += d * load(x0 + b);
        a1 += d * load(x1 + b);
        a2 += d * load(x2 + b);
        a3 += d * load(x3 + b);
      }
      dw[j] = sum_lanes<scalar_t, lanes>(a0);
      dw[j + 1] = sum_lanes<scalar_t, lanes>(a1);
      dw[j + 2] = sum_lanes<scalar_t, lanes>(a2);
      dw[j + 3] = sum_lanes<scalar_t, lanes>(a3);
    }
    for (; j < ptr[r + 1]; ++j) {
      const scalar_t* x = row_of(j);
      Vec<scalar_t> a{};
      for (int64_t b = 0; b < ld; b += lanes) a += load(dy + b) * load(x + b);
      dw[j] = sum_lanes<scalar_t, lanes>(a);
    }
  }
}

// out [batch, rows] = in [batch, in_rows] times the CSR matrix (ptr, idx, values through perm)
// transposed, + bias: the forward (W) and dX (W^T through the transposed structure).
template <typename scalar_t>
void multiply_rows(int64_t rows, const at::Tensor& in, int64_t in_rows, const at::Tensor& ptr,
                   const at::Tensor& idx, const at::Tensor* perm, const at::Tensor& values,
                   const scalar_t* bias, at::Tensor& out) {
  const int32_t* p = ptr.data_ptr<int32_t>();
  const int32_t* ix = idx.data_ptr<int32_t>();
  const int32_t* pm = perm ? perm->data_ptr<int32_t>() : nullptr;
  if (use_simd(in.size(0))) {
    spmm_rows<scalar_t>(rows, in.size(0), in_rows, in.data_ptr<scalar_t>(), in.stride(0),
                        in.stride(1), p, ix, pm, values.data_ptr<scalar_t>(), bias,
                        out.data_ptr<scalar_t>(), in.options());
  } else {
    const at::Tensor column = in.reshape({-1}).contiguous();  // a batch of 1 (or none)
    spmv_rows<scalar_t>(in.size(0) ? rows : 0, p, ix, pm, values.data_ptr<scalar_t>(),
                        column.data_ptr<scalar_t>(), bias, out.data_ptr<scalar_t>());
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
  const at::Tensor v = values.contiguous();
  at::Tensor y = at::empty({s.batch, s.out_features}, x.options());
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "sparse_linear", [&] {
    multiply_rows<scalar_t>(s.out_features, x, s.in_features, row_ptr, col_idx, nullptr, v,
                            bias ? b.data_ptr<scalar_t>() : nullptr, y);
  });
  return y;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> sparse_linear_backward_cpu(
    const at::Tensor& grad_y, const at::Tensor& x, const at::Tensor& values,
    const at::Tensor& row_ptr, const at::Tensor& col_idx, const at::Tensor& t_ptr,
    const at::Tensor& t_idx, const at::Tensor& t_perm, bool need_x, bool need_w, bool need_b) {
  const SparseShape s = sparse_shape(x, values, row_ptr, col_idx, t_ptr, t_idx, t_perm);
  check_grad_y(grad_y, x, s);
  const at::Tensor v = values.contiguous();
  at::Tensor dx = at::empty({0}, x.options()), dw = dx, db = dx;  // empty when not asked for
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "sparse_linear_backward", [&] {
    if (need_x) {
      dx = at::empty({s.batch, s.in_features}, x.options());
      multiply_rows<scalar_t>(s.in_features, grad_y, s.out_features, t_ptr, t_idx, &t_perm, v,
                              nullptr, dx);
    }
    if (need_w) {
      const int64_t pad = pad_for(s.batch);
      const at::Tensor dy_t = transposed_padded(grad_y, pad, ScratchSlot::kFirstOperand);
      const at::Tensor x_t = transposed_padded(x, pad, ScratchSlot::kSecondOperand);
      dw = at::empty({s.nnz}, x.options());
      sddmm_rows<scalar_t>(s.out_features, x_t.size(1), row_ptr.data_ptr<int32_t>(),
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
