// CPU kernels of the sparse linear layer Y = X W^T + b with W in CSR at a fixed mask.
//
// Every product reads its dense operands batch-major, so each nonzero is one broadcast-FMA (or
// one FMA into a dot product) per SIMD vector of a batch tile. Threads transpose the batch tiles
// they work on into their own buffers, which then serve the nonzeros' random row reads from the
// thread's own L2. Results go through a small local tile transposed on the way out, so outputs
// come back [B, rows], contiguous.
//   forward  Y[b, m]  = sum_{j in row m} v_j X[b, col_j] + bias_m
//   backward, one pass over the transposed structure (row n, nonzeros j of column n of W):
//            dX[b, n] = sum_j v_{perm_j} dY[b, row_j]
//            dW_{perm_j} = sum_b dY[b, row_j] X[b, n]         (sampled dense-dense, same dY loads)
#include "common/cpu_kernel.h"

#include <omp.h>

#include <algorithm>
#include <cstring>
#include <type_traits>
#include <utility>

#include "common/parallel.h"
#include "common/scratch.h"
#include "common/transpose.h"
#include "sparse/cpu/sparse_kernels.h"

namespace pyprune {
namespace PYPRUNE_CPU_NAMESPACE {
namespace {

// SIMD vector bytes: a zmm register where AVX-512 is there, else a ymm one. A batch that fits in
// a ymm register runs in ymm vectors in every copy (with_vector_bytes): zmm vectors would pad it
// to twice the lanes, twice the work for the same loads.
#if defined(__AVX512F__)
constexpr int64_t kVecBytes = 64;
#else
constexpr int64_t kVecBytes = 32;
#endif
constexpr int64_t kNarrowVecBytes = 32;

// Calls f(std::integral_constant<int64_t, bytes>) with the vector bytes a batch runs in.
template <typename scalar_t, typename F>
inline void with_vector_bytes(int64_t batch, F&& f) {
  if (batch <= kNarrowVecBytes / static_cast<int64_t>(sizeof(scalar_t)))
    f(std::integral_constant<int64_t, kNarrowVecBytes>{});
  else
    f(std::integral_constant<int64_t, kVecBytes>{});
}

// From a batch of 2 up, the batch tiles are padded to whole vectors and every nonzero is one SIMD
// FMA per vector (a batch of 3 pays 8 lanes, still far cheaper than 3 scalar passes over the row).
// A batch of 1 keeps a dense column: it stays in L1 and a scalar pass reads nothing extra.
inline bool use_simd(int64_t batch) { return batch >= 2; }

constexpr int64_t kRowBlock = 16;
constexpr int64_t kVectors = 8;    // accumulator registers per row, at most
constexpr int64_t kSlabBytes = 1024 * 1024;  // a thread's slab of one batch tile: its L2
constexpr int64_t kPrefetch = 8;   // nonzeros ahead whose input rows are prefetched
// A vector of `lanes` scalar_t (GCC vector extension); the kernels below work in SIMD vectors of
// kBytes (kVecBytes, or kNarrowVecBytes for a small batch).
template <typename scalar_t, int lanes>
using VecOf __attribute__((vector_size(lanes * sizeof(scalar_t)))) = scalar_t;
template <typename scalar_t, int64_t kBytes>
using Vec = VecOf<scalar_t, kBytes / sizeof(scalar_t)>;

template <typename scalar_t, int64_t kBytes>
inline Vec<scalar_t, kBytes> load(const scalar_t* p) {
  Vec<scalar_t, kBytes> v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

// One row over `vectors` SIMD vectors of the batch: acc stays in registers over the nonzeros.
template <int64_t kBytes, int vectors, typename scalar_t>
inline void row_tile(int32_t begin, int32_t end, const int32_t* idx, const int32_t* perm,
                     const scalar_t* values, const scalar_t* in_t, int64_t ld, scalar_t init,
                     scalar_t* out) {
  constexpr int64_t lanes = kBytes / sizeof(scalar_t);
  Vec<scalar_t, kBytes> acc[vectors];
  for (int k = 0; k < vectors; ++k) acc[k] = Vec<scalar_t, kBytes>{} + init;
  for (int32_t j = begin; j < end; ++j) {
    if (j + kPrefetch < end)
      __builtin_prefetch(in_t + static_cast<int64_t>(idx[j + kPrefetch]) * ld);
    const scalar_t v = values[perm ? perm[j] : j];
    const scalar_t* src = in_t + static_cast<int64_t>(idx[j]) * ld;
    for (int k = 0; k < vectors; ++k) acc[k] += v * load<scalar_t, kBytes>(src + k * lanes);
  }
  std::memcpy(out, acc, sizeof(acc));
}

// A batch of 1: one row's dot product with the dense column, over eight independent partial
// sums (the FMA latency). Pointer walks keep the loop at three loads and an FMA per nonzero.
// Scalar on purpose: GCC otherwise turns it into gathers with 64-bit index arithmetic, which are slower.
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
template <int64_t kBytes, typename scalar_t>
inline void row_vectors(int vectors, int32_t begin, int32_t end, const int32_t* idx,
                        const int32_t* perm, const scalar_t* values, const scalar_t* in_t,
                        int64_t ld, scalar_t init, scalar_t* out) {
  switch (vectors) {
#define PYPRUNE_ROW_TILE(V) \
  case V:                   \
    return row_tile<kBytes, V>(begin, end, idx, perm, values, in_t, ld, init, out);
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
  int64_t max_width() const { return ceil_div(vectors, count); }
};

// Where tile t lies in a batch of `batch`: its first item, its items, and its width padded to
// whole vectors (the slab's row stride).
struct TileSpan {
  int64_t first, items;
  int vectors, ld;
};

inline TileSpan tile_span(const BatchTiles& tiles, int64_t t, int64_t batch, int64_t lanes) {
  const int64_t first = tiles.first_vector(t) * lanes;
  const int64_t items = std::min(tiles.width(t) * lanes, batch - first);
  const int vectors = static_cast<int>(ceil_div(items, lanes));
  return {first, items, vectors, static_cast<int>(vectors * lanes)};
}

// Rows [r0, r1) of a tile's results (tile_out[r - r0][b]) into out [batch][rows].
template <typename scalar_t, int64_t width>
inline void store_tile(const scalar_t (*tile_out)[width], int64_t r0, int64_t r1,
                       const TileSpan& span, int64_t rows, scalar_t* out) {
  for (int64_t b = 0; b < span.items; ++b)
    for (int64_t r = r0; r < r1; ++r) out[(span.first + b) * rows + r] = tile_out[r - r0][b];
}

// A place in the sequence of (tile, row) work items, tile-major.
struct WorkPosition {
  int64_t tile, row;
};

// A row costs its nonzeros plus one (the bias and the store); rows [0, r) together:
inline int64_t rows_cost(const int32_t* ptr, int64_t r) { return ptr[r] - ptr[0] + r; }

// The first row r with rows_cost(r) * weight >= target.
inline int64_t row_reaching(const int32_t* ptr, int64_t rows, int64_t target, int64_t weight) {
  int64_t lo = 0, hi = rows;
  while (lo < hi) {
    const int64_t mid = (lo + hi) / 2;
    if (rows_cost(ptr, mid) * weight < target) lo = mid + 1; else hi = mid;
  }
  return lo;
}

// Where thread `part` of `parts` starts: each (tile, row) costs the row's cost times the tile's
// vectors, and the parts get equal shares of the total.
inline WorkPosition work_start(const BatchTiles& tiles, const int32_t* ptr, int64_t rows,
                               int64_t part, int64_t parts) {
  const int64_t per_vector = rows_cost(ptr, rows);  // >= 1: rows >= 1
  const int64_t target = part * tiles.vectors * per_vector / parts;
  const int64_t vector = std::min(target / per_vector, tiles.vectors - 1);
  int64_t t = vector * tiles.count / tiles.vectors;  // tiles differ by one vector at most
  while (tiles.first_vector(t) > vector) --t;
  while (t + 1 < tiles.count && tiles.first_vector(t + 1) <= vector) ++t;
  const int64_t within = target - tiles.first_vector(t) * per_vector;
  return {t, row_reaching(ptr, rows, within, tiles.width(t))};
}

// The batch tiles for operands of `in_rows` rows, in vectors of `bytes`: a thread's slab of one
// tile is at most kSlabBytes (4096 rows of zmm vectors get 4-vector tiles, 1 MB; 784 get 8).
inline BatchTiles batch_tiles(int64_t batch, int64_t in_rows, int64_t lanes, int64_t bytes) {
  const int64_t max_vectors =
      std::clamp<int64_t>(kSlabBytes / (std::max<int64_t>(in_rows, 1) * bytes), 1, kVectors);
  const int64_t vectors = ceil_div(batch, lanes);
  return {vectors, ceil_div(vectors, max_vectors)};
}

// out [batch][rows] = sum over the nonzeros of each row of value * in[batch][idx] (+ bias), in
// read through any strides. Each thread takes an equal share of the (batch tile, row) sequence;
// for each tile it touches it first copies the tile's slab of in, batch-major and padded to whole
// vectors, into its own buffer, so the nonzeros' random row reads hit its own L2.
template <int64_t kBytes, typename scalar_t>
void spmm_rows(int64_t rows, int64_t batch, int64_t in_rows, const scalar_t* in,
               int64_t batch_stride, int64_t feature_stride, const int32_t* ptr,
               const int32_t* idx, const int32_t* perm, const scalar_t* values,
               const scalar_t* bias, scalar_t* out) {
  static_assert(kVectors == 8, "row_vectors dispatches 1..8 vectors");
  constexpr int64_t lanes = kBytes / sizeof(scalar_t);
  if (rows == 0 || batch == 0) return;
  const BatchTiles tiles = batch_tiles(batch, in_rows, lanes, kBytes);
  const int64_t slab_size = std::max<int64_t>(in_rows, 1) * tiles.max_width() * lanes;
  const int threads = num_threads();
  const Scratch<scalar_t> slabs(threads * slab_size);
#pragma omp parallel num_threads(threads)
  {
    const int64_t part = omp_get_thread_num(), parts = omp_get_num_threads();
    scalar_t* slab = slabs.data() + part * slab_size;
    alignas(64) scalar_t tile_out[kRowBlock][kVectors * lanes];
    const WorkPosition begin = work_start(tiles, ptr, rows, part, parts);
    const WorkPosition end = work_start(tiles, ptr, rows, part + 1, parts);
    for (int64_t t = begin.tile; t <= end.tile && t < tiles.count; ++t) {
      const int64_t row_begin = t == begin.tile ? begin.row : 0;
      const int64_t row_end = t == end.tile ? end.row : rows;
      if (row_begin >= row_end) continue;
      const TileSpan span = tile_span(tiles, t, batch, lanes);
      transpose_serial(in + span.first * batch_stride, span.items, in_rows, batch_stride,
                       feature_stride, slab, span.ld);
      for (int64_t r0 = row_begin; r0 < row_end; r0 += kRowBlock) {
        const int64_t r1 = std::min(row_end, r0 + kRowBlock);
        for (int64_t r = r0; r < r1; ++r)
          row_vectors<kBytes>(span.vectors, ptr[r], ptr[r + 1], idx, perm, values, slab,
                              span.ld, bias ? bias[r] : scalar_t(0), tile_out[r - r0]);
        store_tile(tile_out, r0, r1, span, rows, out);
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
    out[r] = row_column(ptr[r], ptr[r + 1], idx, perm, values, column,
                        bias ? bias[r] : scalar_t(0));
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

// Row n of the transposed structure (input feature n) over one batch tile of `vectors` SIMD
// vectors: dx = sum_j v_perm_j dY[idx_j] and, from the same loads of dY, dw[perm_j] (+)=
// dot(dY[idx_j], X[n]). One pass over the nonzeros serves both products.
template <int64_t kBytes, int vectors, bool with_dx, typename scalar_t>
inline void backward_row_tile(int32_t begin, int32_t end, const int32_t* idx, const int32_t* perm,
                              const scalar_t* values, const scalar_t* dy_slab, int64_t ld,
                              const scalar_t* x_row, bool first_tile, scalar_t* dx,
                              scalar_t* dw) {
  constexpr int lanes = kBytes / sizeof(scalar_t);
  Vec<scalar_t, kBytes> acc[vectors], x[vectors];
  for (int k = 0; k < vectors; ++k) {
    acc[k] = Vec<scalar_t, kBytes>{};
    x[k] = load<scalar_t, kBytes>(x_row + k * lanes);
  }
  for (int32_t j = begin; j < end; ++j) {
    if (j + kPrefetch < end)
      __builtin_prefetch(dy_slab + static_cast<int64_t>(idx[j + kPrefetch]) * ld);
    const int32_t slot = perm[j];
    const scalar_t* src = dy_slab + static_cast<int64_t>(idx[j]) * ld;
    Vec<scalar_t, kBytes> dot{};
    for (int k = 0; k < vectors; ++k) {
      const Vec<scalar_t, kBytes> d = load<scalar_t, kBytes>(src + k * lanes);
      if (with_dx) acc[k] += values[slot] * d;
      dot += d * x[k];
    }
    const scalar_t sum = sum_lanes<scalar_t, lanes>(dot);
    dw[slot] = first_tile ? sum : dw[slot] + sum;
  }
  if (with_dx) std::memcpy(dx, acc, sizeof(acc));
}

template <int64_t kBytes, bool with_dx, typename scalar_t>
inline void backward_row_vectors(int vectors, int32_t begin, int32_t end, const int32_t* idx,
                                 const int32_t* perm, const scalar_t* values,
                                 const scalar_t* dy_slab, int64_t ld, const scalar_t* x_row,
                                 bool first_tile, scalar_t* dx, scalar_t* dw) {
  switch (vectors) {
#define PYPRUNE_BACKWARD_ROW_TILE(V)                                                            \
  case V:                                                                                       \
    return backward_row_tile<kBytes, V, with_dx>(begin, end, idx, perm, values, dy_slab, ld,   \
                                                 x_row, first_tile, dx, dw);
    PYPRUNE_BACKWARD_ROW_TILE(1) PYPRUNE_BACKWARD_ROW_TILE(2) PYPRUNE_BACKWARD_ROW_TILE(3)
    PYPRUNE_BACKWARD_ROW_TILE(4) PYPRUNE_BACKWARD_ROW_TILE(5) PYPRUNE_BACKWARD_ROW_TILE(6)
    PYPRUNE_BACKWARD_ROW_TILE(7) PYPRUNE_BACKWARD_ROW_TILE(8)
#undef PYPRUNE_BACKWARD_ROW_TILE
  }
}

// The backward through the transposed structure (rows = input features, idx = output rows, perm
// = CSR slots): dW at the mask and, with_dx, dX [batch][rows]. Each thread owns a share of the
// rows by cost and walks every batch tile in order (so dW's sum over tiles has one order): per
// tile it transposes all of dY's tile and its own rows of X's tile into its own buffers.
template <int64_t kBytes, bool with_dx, typename scalar_t>
void backward_rows(int64_t rows, int64_t batch, int64_t dy_rows, const scalar_t* dy,
                   int64_t dy_batch_stride, int64_t dy_feature_stride, const scalar_t* x,
                   int64_t x_batch_stride, int64_t x_feature_stride, const int32_t* ptr,
                   const int32_t* idx, const int32_t* perm, const scalar_t* values, scalar_t* dx,
                   scalar_t* dw) {
  constexpr int64_t lanes = kBytes / sizeof(scalar_t);
  if (rows == 0 || batch == 0) return;
  const BatchTiles tiles = batch_tiles(batch, dy_rows, lanes, kBytes);
  const int64_t x_ld = tiles.max_width() * lanes;  // X's rows keep one stride over all tiles
  const int64_t slab_size = std::max<int64_t>(dy_rows, 1) * x_ld;
  const int threads = num_threads();
  const Scratch<scalar_t> buffers(threads * slab_size + rows * x_ld);
  scalar_t* const x_rows = buffers.data() + threads * slab_size;
  const int64_t total = rows_cost(ptr, rows);
#pragma omp parallel num_threads(threads)
  {
    const int64_t part = omp_get_thread_num(), parts = omp_get_num_threads();
    scalar_t* slab = buffers.data() + part * slab_size;
    alignas(64) scalar_t tile_out[kRowBlock][kVectors * lanes];
    const int64_t row_begin = row_reaching(ptr, rows, part * total / parts, 1);
    const int64_t row_end = row_reaching(ptr, rows, (part + 1) * total / parts, 1);
    for (int64_t t = 0; t < tiles.count && row_begin < row_end; ++t) {
      const TileSpan span = tile_span(tiles, t, batch, lanes);
      transpose_serial(dy + span.first * dy_batch_stride, span.items, dy_rows, dy_batch_stride,
                       dy_feature_stride, slab, span.ld);
      transpose_serial(x + span.first * x_batch_stride + row_begin * x_feature_stride, span.items,
                       row_end - row_begin, x_batch_stride, x_feature_stride,
                       x_rows + row_begin * x_ld, x_ld);
      for (int64_t r0 = row_begin; r0 < row_end; r0 += kRowBlock) {
        const int64_t r1 = std::min(row_end, r0 + kRowBlock);
        for (int64_t r = r0; r < r1; ++r)
          backward_row_vectors<kBytes, with_dx>(span.vectors, ptr[r], ptr[r + 1], idx, perm,
                                                values, slab, span.ld, x_rows + r * x_ld, t == 0,
                                                tile_out[r - r0], dw);
        if (with_dx) store_tile(tile_out, r0, r1, span, rows, dx);
      }
    }
  }
}

// out [batch, rows] = in [batch, in_rows] times the CSR matrix (ptr, idx, values through perm)
// transposed, + bias: the forward (W) and dX (W^T through the transposed structure).
template <typename scalar_t>
void multiply_rows(int64_t rows, int64_t batch, Strided<scalar_t> in, int64_t in_rows,
                   const int32_t* ptr, const int32_t* idx, const int32_t* perm,
                   const scalar_t* values, const scalar_t* bias, scalar_t* out) {
  if (use_simd(batch)) {
    with_vector_bytes<scalar_t>(batch, [&](auto bytes) {
      spmm_rows<bytes()>(rows, batch, in_rows, in.data, in.batch_stride, in.feature_stride, ptr,
                         idx, perm, values, bias, out);
    });
    return;
  }
  if (batch == 0) return;
  // A batch of 1: a dense column, copied when its features are not adjacent.
  const scalar_t* column = in.data;
  Scratch<scalar_t> copy(in.feature_stride == 1 ? 0 : in_rows);
  if (in.feature_stride != 1) {
    for (int64_t f = 0; f < in_rows; ++f) copy.data()[f] = in.data[f * in.feature_stride];
    column = copy.data();
  }
  spmv_rows<scalar_t>(rows, ptr, idx, perm, values, column, bias, out);
}

// dW at the mask for a batch of 0 or 1: dw_j = dy[row of j] x[col_j], or 0 for no batch.
template <typename scalar_t>
void outer_at_mask(int64_t rows, int64_t batch, Strided<scalar_t> dy, Strided<scalar_t> x,
                   const int32_t* ptr, const int32_t* idx, scalar_t* dw) {
  if (batch == 0) {
    std::fill(dw, dw + (ptr[rows] - ptr[0]), scalar_t(0));
    return;
  }
#pragma omp parallel for schedule(static) num_threads(num_threads())
  for (int64_t r = 0; r < rows; ++r)
    for (int32_t j = ptr[r]; j < ptr[r + 1]; ++j)
      dw[j] = dy.data[r * dy.feature_stride] * x.data[idx[j] * x.feature_stride];
}

template <typename scalar_t>
void sparse_forward(const SparseShape& s, Strided<scalar_t> x, const int32_t* row_ptr,
                    const int32_t* col_idx, const scalar_t* values, const scalar_t* bias,
                    scalar_t* y) {
  multiply_rows<scalar_t>(s.out_features, s.batch, x, s.in_features, row_ptr, col_idx, nullptr,
                          values, bias, y);
}

template <typename scalar_t>
void sparse_backward(const SparseShape& s, Strided<scalar_t> dy, Strided<scalar_t> x,
                     const int32_t* row_ptr, const int32_t* col_idx, const int32_t* t_ptr,
                     const int32_t* t_idx, const int32_t* t_perm, const scalar_t* values,
                     scalar_t* dx, scalar_t* dw) {
  if (dw && use_simd(s.batch)) {
    with_vector_bytes<scalar_t>(s.batch, [&](auto bytes) {
      const auto backward = dx ? &backward_rows<bytes(), true, scalar_t>
                               : &backward_rows<bytes(), false, scalar_t>;
      backward(s.in_features, s.batch, s.out_features, dy.data, dy.batch_stride,
               dy.feature_stride, x.data, x.batch_stride, x.feature_stride, t_ptr, t_idx, t_perm,
               values, dx, dw);
    });
    return;
  }
  if (dx)  // dX alone, or a batch of 0 or 1
    multiply_rows<scalar_t>(s.in_features, s.batch, dy, s.out_features, t_ptr, t_idx, t_perm,
                            values, nullptr, dx);
  if (dw) outer_at_mask<scalar_t>(s.out_features, s.batch, dy, x, row_ptr, col_idx, dw);
}

}  // namespace

PYPRUNE_REGISTER_CPU_KERNEL(sparse_forward_kernel, &sparse_forward<float>, &sparse_forward<double>);
PYPRUNE_REGISTER_CPU_KERNEL(sparse_backward_kernel, &sparse_backward<float>, &sparse_backward<double>);

}  // namespace PYPRUNE_CPU_NAMESPACE
}  // namespace pyprune
