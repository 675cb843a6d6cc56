// CPU kernels of the information ops: one pass over x that bins and counts at once.
//
// Work is split into tasks of (block of W adjacent neurons) x (chunk of sequences). A thread keeps
// uint32 histograms for its W neurons (sized to stay in L2) and walks each task's rows once:
// binning a row as a vector and computing its transition cells into a tile, then counting a full
// tile eight neurons at a time (count_tile). It adds its counts into the int64 output with
// atomics when it moves to another block or ends. Integer sums do not depend on the order, so
// results are identical for any thread count.
#include <omp.h>
#include <torch/library.h>
#include <torch/types.h>

#include <atomic>
#include <cmath>
#include <limits>
#include <vector>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "common/cpu_dispatch.h"
#include "common/binning.h"
#include "common/checks.h"
#include "common/parallel.h"
#include "info/info_math.h"
#include "info/info_args.h"
#include "info/info_shape.h"

namespace pyprune {
namespace PYPRUNE_CPU_LEVEL {

#include "cpu/cpu_kernels.h"

namespace {

constexpr int64_t kLocalHistogramBytes = 192 * 1024;
constexpr int64_t kL2Bytes = 512 * 1024;
constexpr int64_t kMaxLocalRows = (int64_t{1} << 31);  // keeps uint32 counters exact
// Rows of x prefetched ahead of the binning. A block narrower than x's rows reads them strided,
// which the hardware prefetchers do not follow across pages; whole rows gain too, since counting
// a tile leaves the loads idle. Whole rows are fetched into L2 only: into L1, the prefetches
// stalled on the full miss buffers (a fifth of the binning's samples; MI+TE at N = 128 ~5%
// slower), while strided blocks lose with L2 hints.
constexpr int64_t kPrefetchRows = 64;

struct Labels {
  const int64_t* data;  // nullptr: every label is 0
  int64_t seq_stride, step_stride;
};

Labels make_labels(const c10::optional<at::Tensor>& labels, const InfoShape& shape) {
  Labels out;
  parse_labels(labels, shape, out.data, out.seq_stride, out.step_stride);
  return out;
}

struct Bins {
  const double* edges;  // [N][B+1]
  bool uniform;
  int32_t bins;
};

// Bins the W adjacent neurons [n0, n0 + W) of a row. Equal-width bins keep each neuron's lo and
// scale. Loops are written to vectorise: an int OR-reduction for the finiteness test.
class RowBinner {
 public:
  RowBinner(const Bins& b, int64_t max_width)
      : b_(b), lo_(max_width), scale_(max_width), lo_f_(max_width), scale_f_(max_width) {}

  void set_block(int64_t n0, int64_t width) {
    n0_ = n0;
    width_ = width;
    use_float_ = b_.uniform && b_.bins <= kMaxFloatBins;
    if (!b_.uniform) return;
    for (int64_t w = 0; w < width; ++w) {
      const double* e = b_.edges + (n0 + w) * (b_.bins + 1);
      lo_[w] = e[0];
      scale_[w] = uniform_scale(e[0], e[b_.bins], b_.bins);
      lo_f_[w] = static_cast<float>(lo_[w]);
      scale_f_[w] = static_cast<float>(scale_[w]);
      // The error bound of float_bins needs lo exact in float (it is when lo is the minimum of
      // float data) and a normal or zero scale.
      use_float_ &= static_cast<double>(lo_f_[w]) == lo_[w] &&
                    (std::isnormal(scale_f_[w]) || scale_f_[w] == 0.0f);
    }
  }

  // Fills out[0, W) with the bins of x_row[0, W); returns true on NaN/Inf.
  bool operator()(const float* x_row, uint16_t* out) const {
    if (!use_float_) return exact_bins(x_row, out);
    const int flags = float_bins(x_row, out);
    return flags & kUnsure ? exact_bins(x_row, out) : flags != 0;
  }
  bool operator()(const double* x_row, uint16_t* out) const { return exact_bins(x_row, out); }

 private:
  static constexpr int32_t kMaxFloatBins = 1024;

  // Bins in double, as the reference does.
  template <typename scalar_t>
  bool exact_bins(const scalar_t* x_row, uint16_t* out) const {
    int bad = 0;
    if (b_.uniform) {
      const double last = b_.bins - 1;
      for (int64_t w = 0; w < width_; ++w) {
        const double v = static_cast<double>(x_row[w]);
        bad |= static_cast<int>(is_nonfinite(v));
        out[w] = static_cast<uint16_t>(uniform_bin(v, lo_[w], scale_[w], last));
      }
    } else {
      const double* edges = b_.edges + n0_ * (b_.bins + 1);
      for (int64_t w = 0; w < width_; ++w) {
        const double v = static_cast<double>(x_row[w]);
        bad |= static_cast<int>(is_nonfinite(v));
        out[w] = static_cast<uint16_t>(edges_bin(v, edges + w * (b_.bins + 1) + 1, b_.bins - 1));
      }
    }
    return bad != 0;
  }

  // Equal-width bins of a float row in float: twice the lanes per vector. u = (v - lo) * scale
  // is within 2e-7 * B of the double value, so its floor can differ only where it lies that close
  // to an interior bin edge; such rows are flagged kUnsure and redone in double, so the bins
  // always equal the reference's. The test is on w = u + tolerance clamped to [1/2, B - 1/2]
  // (inside the first and last bins): unsure where frac(w) < 2 * tolerance, i.e. where
  // u - tolerance and u + tolerance floor differently. Otherwise floor(w) is the bin.
  // NaN/Inf: with AVX-512 they make w NaN, which is flagged unsure, and the double pass reports
  // them; the portable loop flags them as kNonFinite.
  static constexpr int kNonFinite = 1, kUnsure = 2;
  int float_bins(const float* x_row, uint16_t* out) const {
    const float top = static_cast<float>(b_.bins) - 0.5f;
    const float tolerance = (static_cast<float>(b_.bins) + 1.0f) * 0x1p-20f;
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512DQ__)
    const __m512 tol = _mm512_set1_ps(tolerance), two_tol = _mm512_set1_ps(2 * tolerance);
    const __m512 half = _mm512_set1_ps(0.5f), top_v = _mm512_set1_ps(top);
    constexpr __mmask16 kAll = 0xffff;
    __mmask16 unsure = 0;
    auto bins16 = [&](int64_t w, __mmask16 lanes) {
      const __m512 v = _mm512_maskz_loadu_ps(lanes, x_row + w);
      const __m512 lo = _mm512_maskz_loadu_ps(lanes, lo_f_.data() + w);
      const __m512 scale = _mm512_maskz_loadu_ps(lanes, scale_f_.data() + w);
      __m512 u = _mm512_fmadd_ps(_mm512_sub_ps(v, lo), scale, tol);
      u = _mm512_fmadd_ps(v, _mm512_setzero_ps(), u);   // v * 0 is NaN for NaN/Inf v
      // NaN in the second operand stays NaN. (The zero-masked forms with every lane set are the
      // plain instructions; GCC 12 warns about the undefined vector inside the plain intrinsics.)
      u = _mm512_maskz_min_ps(kAll, top_v, _mm512_maskz_max_ps(kAll, half, u));
      const __m512 frac = _mm512_reduce_ps(u, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
      unsure |= _mm512_mask_cmp_ps_mask(lanes, frac, two_tol, _CMP_NGE_UQ);
      return _mm512_maskz_cvttps_epi32(kAll, u);
    };
    // Word 2i of the pair (a, b) of int32 vectors: the low halves, as 32 uint16.
    const __m512i low_words = _mm512_set_epi16(62, 60, 58, 56, 54, 52, 50, 48, 46, 44, 42, 40, 38,
                                               36, 34, 32, 30, 28, 26, 24, 22, 20, 18, 16, 14, 12,
                                               10, 8, 6, 4, 2, 0);
    int64_t w = 0;
    for (; w + 32 <= width_; w += 32) {
      const __m512i a = bins16(w, kAll), b = bins16(w + 16, kAll);
      _mm512_storeu_si512(out + w, _mm512_permutex2var_epi16(a, low_words, b));
    }
    for (; w < width_; w += 16) {
      const int64_t left = std::min<int64_t>(width_ - w, 16);
      const __mmask16 lanes = static_cast<__mmask16>((1u << left) - 1);
      _mm512_mask_cvtepi32_storeu_epi16(out + w, lanes, bins16(w, lanes));
    }
    return unsure ? kUnsure : 0;
#else
    int bad = 0, unsure = 0;
    for (int64_t w = 0; w < width_; ++w) {
      const float v = x_row[w];
      bad |= static_cast<int>((v - v) != 0.0f);
      float u = (v - lo_f_[w]) * scale_f_[w] + tolerance;
      u = u > 0.5f ? u : 0.5f;  // also maps NaN to 1/2
      u = u < top ? u : top;
      const int32_t bin = static_cast<int32_t>(u);
      unsure |= static_cast<int>(u - static_cast<float>(bin) < 2 * tolerance);
      out[w] = static_cast<uint16_t>(bin);
    }
    return (bad ? kNonFinite : 0) | (unsure ? kUnsure : 0);
#endif
  }

  const Bins& b_;
  int64_t n0_ = 0, width_ = 0;
  bool use_float_ = false;  // every lane of the block meets float_bins' error bound
  std::vector<double> lo_, scale_;
  std::vector<float> lo_f_, scale_f_;
};

// n values starting on a cache line. Rows that are stored as vectors and read back at once (the
// bins, the cells) then never straddle two lines; the store buffer does not forward a split
// store to the load that follows it, which waits for the store to retire.
template <typename T>
class LineAligned {
 public:
  explicit LineAligned(int64_t n) : storage_(n + 64 / sizeof(T)) {
    const auto address = reinterpret_cast<uintptr_t>(storage_.data());
    data_ = storage_.data() + (64 - address % 64) % 64 / sizeof(T);
  }
  LineAligned(const LineAligned&) = delete;
  LineAligned& operator=(const LineAligned&) = delete;
  T* data() { return data_; }

 private:
  std::vector<T> storage_;
  T* data_;
};

// Scratch of one thread for count_rows: the bins of the last history + 1 rows (a ring, uint16
// [history + 1][W]) and a tile of transition cells [rows][W] waiting to be counted. Cells are
// neuron-local indices: uint16 while a neuron's transition histogram has at most 2^16 cells.
template <typename cell_t>
struct CountScratch {
  static constexpr int64_t kTileBytes = 32 * 1024;
  int64_t tile_rows;
  LineAligned<uint16_t> codes;
  LineAligned<cell_t> tile;
  CountScratch(int64_t history, int64_t width)
      : tile_rows(
            std::max<int64_t>(16, kTileBytes / (std::max<int64_t>(width, 1) * sizeof(cell_t)))),
        codes((history + 1) * width),
        tile(tile_rows * width) {}
};

// Adds the cells of a tile [rows][W] to the W histograms [W][tcells], eight lanes at a time, row
// by row: consecutive increments never hit the same histogram, so no increment waits on the store
// before it, and eight small histograms (B = 8, K = 10: 20 KB) stay in L1. Lanes left over after
// the last eight are counted row by row.
template <typename cell_t>
void count_tile(const cell_t* tile, int64_t rows, int64_t width, int64_t tcells,
                uint32_t* histograms) {
  constexpr int64_t kLanes = 8;
  int64_t g = 0;
  for (; g + kLanes <= width; g += kLanes) {
    // One base register per lane, so each increment is a load and an add to memory. The empty
    // asm hides that the bases are tcells apart; GCC would otherwise rebuild every address from
    // one base with an extra add.
    uint32_t* h[kLanes];
    for (int64_t j = 0; j < kLanes; ++j) {
      h[j] = histograms + (g + j) * tcells;
      asm("" : "+r"(h[j]));
    }
    const cell_t* c = tile + g;
    for (int64_t r = 0; r < rows; ++r, c += width)
      for (int64_t j = 0; j < kLanes; ++j) ++h[j][c[j]];
  }
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t w = g; w < width; ++w) ++histograms[w * tcells + tile[r * width + w]];
}

// Counts the rows of sequences [s0, s1) for W neurons into local histograms.
// bins_of(s, t, out) fills the W bins of row (s, t) and returns true on bad input;
// label_seq(s) maps s to the sequence whose labels are used (the permutation test shuffles it).
//
// Row by row, the row is binned and each lane's transition cell computed, both vectorised across
// the W lanes, into a tile; a full tile is counted by count_tile. A lane's history state, its
// last k bins as base-B digits (newest lowest), is read off the ring of the k rows before.
template <typename cell_t, typename BinsOf, typename LabelSeq>
void count_rows(const InfoShape& shape, int64_t s0, int64_t s1, int64_t width, const Labels& labels,
                BinsOf bins_of, LabelSeq label_seq, uint32_t* transitions, uint32_t* joint,
                CountScratch<cell_t>& scratch, bool& bad_x, bool& bad_label) {
  const int64_t steps = shape.steps, history = shape.history, ring = history + 1;
  const uint32_t classes = shape.classes, bin_count = shape.bins;
  const int64_t tcells = shape.transition_cells(), jcells = shape.joint_cells();
  uint16_t* codes = scratch.codes.data();
  cell_t* tile = scratch.tile.data();
  // cell = (state * B + x_t) * K + y_{t-1} with state = sum over j = 1..k of x_{t-j} B^(j-1):
  // the bin j rows back weighs B^j K.
  std::vector<uint32_t> weight(history + 1, classes);
  for (int64_t j = 1; j <= history; ++j) weight[j] = weight[j - 1] * bin_count;
  auto ring_row = [&](int64_t slot) { return codes + (slot < 0 ? slot + ring : slot) * width; };
  int64_t filled = 0;
  for (int64_t s = s0; s < s1; ++s) {
    const int64_t* ys = labels.data ? labels.data + label_seq(s) * labels.seq_stride : nullptr;
    uint32_t y_prev = 0;
    for (int64_t t = 0, slot = 0; t < steps; ++t, slot = slot + 1 == ring ? 0 : slot + 1) {
      int64_t y = ys ? ys[t * labels.step_stride] : 0;
      if (static_cast<uint64_t>(y) >= static_cast<uint64_t>(classes)) {
        bad_label = true;
        y = 0;
      }
      uint16_t* row = codes + slot * width;
      bad_x |= bins_of(s, t, row);
      // Transition (state at t-1, bin at t, label at t-1) for t >= history.
      if (history > 0 && t >= history) {
        cell_t* out = tile + filled * width;
        const uint16_t* newest = ring_row(slot - 1);
        for (int64_t w = 0; w < width; ++w)
          out[w] = newest[w] * weight[1] + row[w] * classes + y_prev;
        for (int64_t j = 2; j <= history; ++j) {
          const uint16_t* past = ring_row(slot - j);
          for (int64_t w = 0; w < width; ++w) out[w] += past[w] * weight[j];
        }
        if (++filled == scratch.tile_rows) {
          count_tile(tile, filled, width, tcells, transitions);
          filled = 0;
        }
      }
      if (shape.step_outside_transitions(t))
        for (int64_t w = 0; w < width; ++w) ++joint[w * jcells + row[w] * classes + y];
      y_prev = static_cast<uint32_t>(y);
    }
  }
  count_tile(tile, filled, width, tcells, transitions);
}

// out[i] += local[i] for i < n; atomic where other threads may add to out at the same time.
inline void add_counts(const uint32_t* local, int64_t n, int64_t* out, bool atomic) {
  if (!atomic) {
    for (int64_t i = 0; i < n; ++i) out[i] += local[i];
    return;
  }
  for (int64_t i = 0; i < n; ++i) {
    if (local[i] == 0) continue;
#pragma omp atomic
    out[i] += local[i];
  }
}

// The (x_t, y_t) histogram = the transition histogram summed over next bins and older history,
// plus the side histogram of the steps no transition starts from.
template <typename count_t, typename total_t>
void fold_joint(const InfoShape& shape, const count_t* transitions, total_t* joint) {
  const int64_t classes = shape.classes, bins = shape.bins;
  for (int64_t h = 0; h < shape.transition_cells() / (bins * classes); ++h) {
    const int64_t current = h % bins;
    for (int64_t x = 0; x < bins; ++x)
      for (int64_t y = 0; y < classes; ++y)
        joint[current * classes + y] += transitions[(h * bins + x) * classes + y];
  }
}

struct Plan {
  int64_t width, blocks, seq_chunks, seq_per_chunk;
};

Plan plan_tasks(const InfoShape& shape, int64_t bytes_per_neuron_extra = 0) {
  const int64_t bytes = 4 * (shape.transition_cells() + shape.joint_cells()) + bytes_per_neuron_extra;
  // Whole rows read contiguously are best when all histograms fit in L2; otherwise blocks of
  // up to 64 neurons whose histograms fit comfortably.
  int64_t width = 64;
  while (width > 1 && width * bytes > kLocalHistogramBytes) width /= 2;
  if (shape.neurons * bytes <= kL2Bytes) width = shape.neurons;
  width = std::clamp<int64_t>(width, 1, std::max<int64_t>(shape.neurons, 1));  // >= 1: no neurons too
  Plan p;
  p.width = width;
  p.blocks = ceil_div(shape.neurons, width);
  // Chunks of sequences spread a few blocks over the threads. A chunk costs the scan and reset
  // of its block's local histograms, and split blocks are added with atomics: keep chunks of at
  // least ~2 rows per transition cell, so that this stays a fraction of the counting.
  const int64_t wanted = 16 * num_threads();
  const int64_t min_chunk_rows = std::max<int64_t>(1024, 2 * shape.transition_cells());
  const int64_t most = std::max<int64_t>(1, shape.sequences * shape.steps / min_chunk_rows);
  p.seq_chunks = std::max<int64_t>(
      1, std::min({shape.sequences, ceil_div(wanted, std::max<int64_t>(p.blocks, 1)), most}));
  p.seq_chunks = std::max(p.seq_chunks, ceil_div(shape.sequences * shape.steps, kMaxLocalRows));
  p.seq_per_chunk = ceil_div(shape.sequences, p.seq_chunks);
  return p;
}

// Calls f(cell_t{}) with the narrowest type that holds a neuron-local transition cell.
template <typename F>
void dispatch_cell_type(const InfoShape& shape, F f) {
  if (shape.transition_cells() <= (int64_t{1} << 16))
    f(uint16_t{});
  else
    f(uint32_t{});
}

// Runs the counting pass and adds its counts to t_out (transitions [N][states*B*K]) and j_out
// (joint (x_t, y_t) [N][B*K]). Local transitions are folded into the joint counts as they are
// added, so the joint counts take only this pass's transitions.
template <typename scalar_t, typename cell_t>
void count_all(const at::Tensor& x, const Labels& labels, const Bins& b, const InfoShape& shape,
               int64_t* t_out, int64_t* j_out) {
  const int64_t tcells = shape.transition_cells(), jcells = shape.joint_cells();
  const scalar_t* xp = x.data_ptr<scalar_t>();
  const Plan plan = plan_tasks(shape);
  const int64_t last_row = std::max<int64_t>(shape.sequences * shape.steps - 1, 0);
  bool bad_x = false, bad_label = false;
  // Whether a block's sequences are split over tasks, which two threads may run at once: then
  // local counts are added with atomics. Otherwise a block is one thread's alone, and plain adds
  // are ~20x faster (a small batch into large histograms: N = 1024, B = 16, 2240 rows spent
  // most of its time in these adds).
  const bool shared_blocks = plan.seq_chunks > 1;
  // Each thread's last local histograms, added to the output after all tasks (see below).
  const int team = num_threads();
  std::vector<const uint32_t*> last_t(team), last_j(team);
  std::vector<int64_t> last_n0(team, -1);

#pragma omp parallel num_threads(team) reduction(|| : bad_x, bad_label)
  {
    std::vector<uint32_t> t_local(plan.width * tcells), j_local(plan.width * jcells);
    CountScratch<cell_t> scratch(shape.history, plan.width);
    RowBinner binner(b, plan.width);
    // The local histograms keep counting while a thread's tasks stay in one neuron block, and
    // are added to the output when the block changes.
    int64_t local_n0 = -1, local_rows = 0;
    // The local joint counts (at most kMaxLocalRows a cell) take the local transitions.
    auto fold_local = [&] {
      if (local_n0 < 0 || shape.history == 0) return;
      const int64_t local_width = std::min(plan.width, shape.neurons - local_n0);
      for (int64_t w = 0; w < local_width; ++w)
        fold_joint(shape, t_local.data() + w * tcells, j_local.data() + w * jcells);
    };
    auto merge_local = [&] {
      if (local_n0 < 0) return;
      fold_local();
      const int64_t local_width = std::min(plan.width, shape.neurons - local_n0);
      add_counts(t_local.data(), local_width * tcells, t_out + local_n0 * tcells, shared_blocks);
      add_counts(j_local.data(), local_width * jcells, j_out + local_n0 * jcells, shared_blocks);
      std::fill(t_local.begin(), t_local.end(), 0u);
      std::fill(j_local.begin(), j_local.end(), 0u);
      local_n0 = -1;
      local_rows = 0;
    };
#pragma omp for schedule(dynamic, 1)
    for (int64_t task = 0; task < plan.blocks * plan.seq_chunks; ++task) {
      const int64_t n0 = (task / plan.seq_chunks) * plan.width;
      const int64_t width = std::min(plan.width, shape.neurons - n0);
      const int64_t s0 = (task % plan.seq_chunks) * plan.seq_per_chunk;
      const int64_t s1 = std::min(shape.sequences, s0 + plan.seq_per_chunk);
      if (s0 >= s1) continue;
      const int64_t rows = (s1 - s0) * shape.steps;
      if (n0 != local_n0 || local_rows + rows > kMaxLocalRows) {
        merge_local();
        local_n0 = n0;
        binner.set_block(n0, width);
      }
      local_rows += rows;
      const bool whole_rows = width == shape.neurons;
      auto bins_of = [&](int64_t s, int64_t t, uint16_t* out) {
        const int64_t r = s * shape.steps + t;
        const int64_t ahead = std::min(r + kPrefetchRows, last_row);
        const char* p = reinterpret_cast<const char*>(xp + ahead * shape.neurons + n0);
        for (int64_t i = 0; i < width * int64_t{sizeof(scalar_t)}; i += 64) {
          if (whole_rows)
            __builtin_prefetch(p + i, 0, 2);
          else
            __builtin_prefetch(p + i);
        }
        return binner(xp + r * shape.neurons + n0, out);
      };
      count_rows(shape, s0, s1, width, labels, bins_of, [](int64_t s) { return s; },
                 t_local.data(), j_local.data(), scratch, bad_x, bad_label);
    }
    // The last blocks: every thread usually ends in the same one, and adding them all at once
    // with atomics made the threads fight for the same lines (0.25-1.4 ms at N = 128, where
    // counting takes 8). Each thread instead adds every thread's counts for its share of the
    // neurons, which it alone writes.
    const int me = omp_get_thread_num();
    last_t[me] = t_local.data();
    last_j[me] = j_local.data();
    last_n0[me] = local_n0;
#pragma omp barrier
#pragma omp for schedule(static)
    for (int64_t n = 0; n < shape.neurons; ++n) {
      for (int other = 0; other < team; ++other) {
        const int64_t w = n - last_n0[other];
        if (last_n0[other] < 0 || w < 0 || w >= plan.width) continue;
        add_counts(last_t[other] + w * tcells, tcells, t_out + n * tcells, false);
        add_counts(last_j[other] + w * jcells, jcells, j_out + n * jcells, false);
        if (shape.history > 0) fold_joint(shape, last_t[other] + w * tcells, j_out + n * jcells);
      }
    }
  }
  raise_on_bad_input(bad_x, bad_label, shape.classes);
}

Bins make_bins(const at::Tensor& edges, bool uniform, const InfoShape& shape) {
  return Bins{edges.data_ptr<double>(), uniform, shape.bins};
}

// Second pass of local TE: looks every transition up in the per-neuron table [N][states*B*K].
template <typename scalar_t>
void local_te_pass(const at::Tensor& x, const Labels& lab, const Bins& b, const InfoShape& shape,
                   const double* table, scalar_t* out) {
  const scalar_t* xp = x.data_ptr<scalar_t>();
  const int64_t neurons = shape.neurons, tcells = shape.transition_cells();
  const int64_t out_steps = shape.steps - shape.history;
#pragma omp parallel num_threads(num_threads())
  {
    std::vector<uint16_t> bins(neurons);
    std::vector<int64_t> state(neurons);
    RowBinner binner(b, neurons);
    binner.set_block(0, neurons);
#pragma omp for schedule(dynamic, 1)
    for (int64_t s = 0; s < shape.sequences; ++s) {
      const int64_t* ys = lab.data ? lab.data + s * lab.seq_stride : nullptr;
      std::fill(state.begin(), state.end(), 0);
      int64_t y_prev = 0;
      for (int64_t t = 0; t < shape.steps; ++t) {
        binner(xp + (s * shape.steps + t) * neurons, bins.data());
        for (int64_t n = 0; n < neurons; ++n) {
          const int64_t cell = (state[n] * shape.bins + bins[n]) * shape.classes + y_prev;
          if (t >= shape.history)
            out[(s * out_steps + t - shape.history) * neurons + n] =
                static_cast<scalar_t>(table[n * tcells + cell]);
          state[n] = (state[n] * shape.bins + bins[n]) % shape.states;
        }
        y_prev = ys ? ys[t * lab.step_stride] : 0;
      }
    }
  }
}

// c log c with the counts below kSize read from a table filled once, bit for bit the values
// xlogx computes: most cells' counts are small (N = 1024, B = 16: ~40 a cell), and the scores
// of a layer took ~9 ms of logs.
class XLogXTable {
 public:
  static const XLogXTable& get() {
    static const XLogXTable table;  // initialised once, thread-safely
    return table;
  }
  double operator()(double c) const {
    // A negative count (only in a caller's own tensors) falls to xlogx, which gives 0.
    return c >= 0.0 && c < kSize ? values_[static_cast<int64_t>(c)] : xlogx(c);
  }

 private:
  static constexpr int64_t kSize = 1 << 14;
  XLogXTable() : values_(kSize) {
    for (int64_t c = 0; c < kSize; ++c) values_[c] = xlogx(static_cast<double>(c));
  }
  std::vector<double> values_;
};

// Permutation pass: the codes of a neuron block are computed once and recounted per permutation.
template <typename scalar_t, typename cell_t>
void permutation_pass(const at::Tensor& x, const Labels& lab, const Bins& b,
                      const InfoShape& shape, const Plan& plan, const int64_t* perm_p,
                      int64_t num_perms, int64_t perm_chunks, int64_t perms_per_chunk,
                      double unit, bool miller_madow, double* mi_p, double* te_p, bool& bad_x,
                      bool& bad_label) {
  const int64_t rows = shape.sequences * shape.steps, history = shape.history;
  const int64_t tcells = shape.transition_cells(), jcells = shape.joint_cells();
  const XLogXTable& xlogx_table = XLogXTable::get();
  bool any_bad_x = false, any_bad_label = false;
  const scalar_t* xp = x.data_ptr<scalar_t>();
#pragma omp parallel num_threads(num_threads()) reduction(|| : any_bad_x, any_bad_label)
  {
    std::vector<uint16_t> codes(rows * plan.width);
    std::vector<uint32_t> t_local(plan.width * tcells), j_local(plan.width * jcells);
    CountScratch<cell_t> scratch(shape.history, plan.width);
    RowBinner binner(b, plan.width);
#pragma omp for schedule(dynamic, 1)
    for (int64_t task = 0; task < plan.blocks * perm_chunks; ++task) {
      const int64_t n0 = (task / perm_chunks) * plan.width;
      const int64_t width = std::min(plan.width, shape.neurons - n0);
      const int64_t p0 = (task % perm_chunks) * perms_per_chunk;
      const int64_t p1 = std::min(num_perms, p0 + perms_per_chunk);
      if (p0 >= p1) continue;
      binner.set_block(n0, width);
      for (int64_t r = 0; r < rows; ++r)
        any_bad_x |= binner(xp + r * shape.neurons + n0, codes.data() + r * width);
      auto bins_of = [&](int64_t s, int64_t t, uint16_t* out) {
        const uint16_t* c = codes.data() + (s * shape.steps + t) * width;
        std::copy(c, c + width, out);
        return false;
      };
      for (int64_t p = p0; p < p1; ++p) {
        std::fill(t_local.begin(), t_local.end(), 0u);
        std::fill(j_local.begin(), j_local.end(), 0u);
        const int64_t* perm = perm_p + p * shape.sequences;
        count_rows(shape, 0, shape.sequences, width, lab, bins_of,
                   [perm](int64_t s) { return perm[s]; }, t_local.data(), j_local.data(),
                   scratch, any_bad_x, any_bad_label);
        for (int64_t w = 0; w < width; ++w) {
          uint32_t* tw = t_local.data() + w * tcells;
          uint32_t* jw = j_local.data() + w * jcells;
          if (history > 0) fold_joint(shape, tw, jw);
          double h, mi;
          entropy_and_mi(jw, shape.bins, shape.classes, miller_madow, &h, &mi, xlogx_table);
          mi_p[p * shape.neurons + n0 + w] = unit * mi;
          if (history > 0)
            te_p[p * shape.neurons + n0 + w] =
                unit * transfer_entropy(tw, shape.states, shape.bins, shape.classes,
                                        miller_madow, xlogx_table);
        }
      }
    }
  }
  bad_x = any_bad_x;
  bad_label = any_bad_label;
}

// ---- ops ---------------------------------------------------------------------------------

// Each thread keeps its own min, max and finiteness rows, merged at the end: rows next to each
// other in one shared buffer put both threads' neurons on one cache line, written every row.
template <typename scalar_t>
bool range_pass(const at::Tensor& x, int64_t rows, int64_t n, at::Tensor& lo, at::Tensor& hi) {
  constexpr scalar_t kInf = std::numeric_limits<scalar_t>::infinity();
  const scalar_t* xp = x.data_ptr<scalar_t>();
  double* lp = lo.data_ptr<double>();
  double* hp = hi.data_ptr<double>();
  std::fill(lp, lp + n, std::numeric_limits<double>::infinity());
  std::fill(hp, hp + n, -std::numeric_limits<double>::infinity());
  bool bad = false;
#pragma omp parallel num_threads(num_threads()) reduction(|| : bad)
  {
    // Line-aligned, so that no vector of the row loop straddles two cache lines.
    LineAligned<scalar_t> mn_row(n), mx_row(n), nonfinite_row(n);
    scalar_t* mn = mn_row.data();
    scalar_t* mx = mx_row.data();
    scalar_t* nonfinite = nonfinite_row.data();  // v - v stays 0 unless some v is NaN or Inf
    std::fill(mn, mn + n, kInf);
    std::fill(mx, mx + n, -kInf);
    std::fill(nonfinite, nonfinite + n, scalar_t{0});
#pragma omp for schedule(static) nowait
    for (int64_t r = 0; r < rows; ++r) {
      const scalar_t* row = xp + r * n;
      for (int64_t j = 0; j < n; ++j) {
        const scalar_t v = row[j];
        nonfinite[j] += v - v;
        mn[j] = v < mn[j] ? v : mn[j];
        mx[j] = v > mx[j] ? v : mx[j];
      }
    }
    for (int64_t j = 0; j < n; ++j) bad |= nonfinite[j] != 0;
#pragma omp critical(pyprune_neuron_range)
    for (int64_t j = 0; j < n; ++j) {  // exact: a float widens to double without rounding
      lp[j] = std::min(lp[j], static_cast<double>(mn[j]));
      hp[j] = std::max(hp[j], static_cast<double>(mx[j]));
    }
  }
  return bad;
}

}  // namespace

// Per-neuron (last dim) min and max in float64, raising on NaN/Inf: one pass.
std::tuple<at::Tensor, at::Tensor> neuron_range_cpu(const at::Tensor& x_in) {
  check_float(x_in, "x");
  PYPRUNE_CHECK_VALUE(x_in.dim() >= 1, "'x' must have at least one dimension");
  const at::Tensor x = x_in.contiguous();
  const int64_t n = x.size(-1);
  const int64_t rows = n == 0 ? 0 : x.numel() / n;
  PYPRUNE_CHECK_VALUE(rows > 0 || n == 0, "'x' has no samples (shape ", x.sizes(), ")");
  auto opts = at::TensorOptions().dtype(at::kDouble);
  at::Tensor lo = at::empty({n}, opts), hi = at::empty({n}, opts);
  bool bad = false;
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "neuron_range",
                             [&] { bad = range_pass<scalar_t>(x, rows, n, lo, hi); });
  PYPRUNE_CHECK_VALUE(!bad, "'x' contains NaN or Inf");
  return {lo, hi};
}

// Adds the counts of x to joint_counts [N, B, K] and transition_counts [N, states, B, K] (int64,
// contiguous, on the CPU), in place.
void add_counts_cpu(const InfoInputs& in, bool uniform, at::Tensor& joint, at::Tensor& transitions) {
  const InfoShape& shape = in.shape;
  const Labels lab = make_labels(in.labels, shape);
  const Bins b = make_bins(in.edges, uniform, shape);
  AT_DISPATCH_FLOATING_TYPES(in.x.scalar_type(), "info_counts", [&] {
    dispatch_cell_type(shape, [&](auto cell) {
      count_all<scalar_t, decltype(cell)>(in.x, lab, b, shape, transitions.data_ptr<int64_t>(),
                                          joint.data_ptr<int64_t>());
    });
  });
}

std::tuple<at::Tensor, at::Tensor> info_counts_cpu(const at::Tensor& x_in,
                                                   const c10::optional<at::Tensor>& labels_in,
                                                   const at::Tensor& edges_in, bool uniform,
                                                   int64_t num_classes, int64_t history) {
  const InfoInputs in = info_inputs(x_in, labels_in, edges_in, num_classes, history);
  const InfoShape& shape = in.shape;
  const int64_t states = history > 0 ? shape.states : 0;
  auto opts = at::TensorOptions().dtype(at::kLong);
  at::Tensor joint = at::zeros({shape.neurons, shape.bins, shape.classes}, opts);
  at::Tensor transitions = at::zeros({shape.neurons, states, shape.bins, shape.classes}, opts);
  add_counts_cpu(in, uniform, joint, transitions);
  return {joint, transitions};
}

void info_counts_add_cpu(at::Tensor& joint, at::Tensor& transitions, const at::Tensor& x_in,
                         const c10::optional<at::Tensor>& labels_in, const at::Tensor& edges_in,
                         bool uniform, int64_t history) {
  const InfoInputs in = add_counts_inputs(joint, transitions, x_in, labels_in, edges_in, history);
  try {
    add_counts_cpu(in, uniform, joint, transitions);
  } catch (const c10::Error&) {
    // Bad input (NaN/Inf, a label out of range) is found while counting and raised after every
    // count was added. Counting is deterministic, so the same input counted again from zero is
    // exactly what was added: taking it back leaves the counts as they were before the call.
    at::Tensor added_joint = at::zeros_like(joint), added_transitions = at::zeros_like(transitions);
    try {
      add_counts_cpu(in, uniform, added_joint, added_transitions);
    } catch (const c10::Error&) {
    }
    joint.sub_(added_joint);
    transitions.sub_(added_transitions);
    throw;
  }
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> info_scores_cpu(const at::Tensor& joint_in,
                                                               const at::Tensor& transitions_in,
                                                               double log_base,
                                                               bool miller_madow) {
  check_dtype(joint_in, at::kLong, "joint_counts");
  check_dtype(transitions_in, at::kLong, "transition_counts");
  check_dim(joint_in, 3, "joint_counts");
  check_dim(transitions_in, 4, "transition_counts");
  check_base(log_base);
  check_counts(joint_in, "joint_counts");
  check_counts(transitions_in, "transition_counts");
  const at::Tensor joint = joint_in.contiguous(), transitions = transitions_in.contiguous();
  const int64_t n = joint.size(0), states = transitions.size(1);
  const int32_t bins = joint.size(1), classes = joint.size(2);
  PYPRUNE_CHECK_VALUE(transitions.size(0) == n && transitions.size(2) == bins &&
                          transitions.size(3) == classes,
                      "'transition_counts' ", transitions.sizes(), " does not match 'joint_counts' ",
                      joint.sizes());
  auto opts = at::TensorOptions().dtype(at::kDouble);
  at::Tensor h = at::empty({n}, opts), mi = at::empty({n}, opts), te = at::zeros({n}, opts);
  const double unit = 1.0 / std::log(log_base);
  const XLogXTable& xlogx_table = XLogXTable::get();
  const int64_t* jp = joint.data_ptr<int64_t>();
  const int64_t* tp = transitions.data_ptr<int64_t>();
  double *hp = h.data_ptr<double>(), *mp = mi.data_ptr<double>(), *ep = te.data_ptr<double>();
#pragma omp parallel for schedule(dynamic, 4) num_threads(num_threads())
  for (int64_t i = 0; i < n; ++i) {
    entropy_and_mi(jp + i * bins * classes, bins, classes, miller_madow, hp + i, mp + i,
                   xlogx_table);
    hp[i] *= unit;
    mp[i] *= unit;
    if (states > 0)
      ep[i] = unit * transfer_entropy(tp + i * states * bins * classes, states, bins, classes,
                                      miller_madow, xlogx_table);
  }
  return {h, mi, te};
}

at::Tensor info_local_te_cpu(const at::Tensor& x_in, const c10::optional<at::Tensor>& labels_in,
                             const at::Tensor& edges_in, bool uniform, int64_t num_classes,
                             int64_t history, double log_base) {
  PYPRUNE_CHECK_VALUE(history >= 1, "'history' must be >= 1, got ", history);
  check_base(log_base);
  const InfoInputs in = info_inputs(x_in, labels_in, edges_in, num_classes, history);
  const at::Tensor& x = in.x;
  const InfoShape& shape = in.shape;
  const Labels lab = make_labels(in.labels, shape);
  const at::Tensor transitions = std::get<1>(
      info_counts_cpu(x, in.labels, in.edges, uniform, num_classes, history));
  const int64_t tcells = shape.transition_cells();
  at::Tensor table = at::empty({shape.neurons, tcells}, at::TensorOptions().dtype(at::kDouble));
  const int64_t* tp = transitions.data_ptr<int64_t>();
  double* table_p = table.data_ptr<double>();
  const double unit = 1.0 / std::log(log_base);
#pragma omp parallel for num_threads(num_threads())
  for (int64_t n = 0; n < shape.neurons; ++n) {
    local_transfer_entropy_table(tp + n * tcells, shape.states, shape.bins, shape.classes,
                                 table_p + n * tcells);
    for (int64_t i = 0; i < tcells; ++i) table_p[n * tcells + i] *= unit;
  }
  const int64_t out_steps = std::max<int64_t>(shape.steps - history, 0);
  at::Tensor out = at::empty({shape.sequences, out_steps, shape.neurons}, x.options());
  const Bins b = make_bins(in.edges, uniform, shape);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "info_local_te", [&] {
    local_te_pass<scalar_t>(x, lab, b, shape, table_p, out.data_ptr<scalar_t>());
  });
  return out;
}

// Null distribution of MI and TE under label permutations across sequences: perms [P, S] gives,
// for permutation p, the sequence whose labels sequence s gets. x is binned once per neuron block
// (kept as uint16 codes) and recounted per permutation.
std::tuple<at::Tensor, at::Tensor> info_permutation_null_cpu(
    const at::Tensor& x_in, const c10::optional<at::Tensor>& labels_in, const at::Tensor& edges_in, bool uniform,
    int64_t num_classes, int64_t history, const at::Tensor& perms_in, double log_base,
    bool miller_madow) {
  check_permuted_labels(labels_in);
  const InfoInputs in = info_inputs(x_in, labels_in, edges_in, num_classes, history);
  const at::Tensor& x = in.x;
  const InfoShape& shape = in.shape;
  const at::Tensor perms = perms_in.contiguous();
  check_base(log_base);
  check_same_device(perms, x, "perms", "x");
  check_perms(perms, shape);
  const Labels lab = make_labels(in.labels, shape);
  const int64_t num_perms = perms.size(0);
  const int64_t rows = shape.sequences * shape.steps;
  const Bins b = make_bins(in.edges, uniform, shape);
  // The codes of a block are reused by every permutation: keep blocks narrow enough that
  // codes + histograms stay modest.
  Plan plan = plan_tasks(shape, 2 * rows);
  plan.seq_chunks = 1;
  const int64_t perm_chunks =
      std::max<int64_t>(1, std::min(num_perms, ceil_div(4 * num_threads(), std::max<int64_t>(plan.blocks, 1))));
  const int64_t perms_per_chunk = ceil_div(std::max<int64_t>(num_perms, 1), perm_chunks);
  auto opts = at::TensorOptions().dtype(at::kDouble);
  at::Tensor mi_null = at::empty({num_perms, shape.neurons}, opts);
  at::Tensor te_null = at::zeros({num_perms, shape.neurons}, opts);
  const double unit = 1.0 / std::log(log_base);
  bool bad_x = false, bad_label = false;
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "info_permutation_null", [&] {
    dispatch_cell_type(shape, [&](auto cell) {
      permutation_pass<scalar_t, decltype(cell)>(
          x, lab, b, shape, plan, perms.data_ptr<int64_t>(), num_perms, perm_chunks,
          perms_per_chunk, unit, miller_madow, mi_null.data_ptr<double>(),
          te_null.data_ptr<double>(), bad_x, bad_label);
    });
  });
  raise_on_bad_input(bad_x, bad_label, shape.classes);
  return {mi_null, te_null};
}

}  // namespace PYPRUNE_CPU_LEVEL
}  // namespace pyprune
