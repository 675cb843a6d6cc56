// CPU kernel of connected-component labelling with region statistics, one mask per task.
//
// Bit-run labelling: each row is packed into 64-bit words (bit c of word w = pixel 64w + c), and a
// run of set pixels is numbered by counting the run starts up to a pixel (popcount), so nothing
// walks pixels one by one to find runs or their neighbours. Runs of adjacent rows touch where
// the AND of the two rows is set, each segment of it joining exactly one upper run to one lower
// run; 8-connectivity adds the diagonal pairs of an upper run's end and a lower run's start (or
// the reverse) a pixel apart. Runs are merged with Rem's union-find (a parent never has a larger
// index than its child), so once the roots are numbered, one pass in index order flattens the
// forest.
// Runs are in raster order, hence so are the roots: labels come out numbered by each region's
// first pixel. The label image is then written without branches (a run-indexed table lookup, 16
// pixels at a time with AVX-512), and sizes and sums of |w| are added pixel by pixel to the
// pixel's region, whose label is read back from the row just written: the weights are read once,
// only under set pixels. Masks are spread over threads in contiguous blocks, so each thread's
// region records come out in mask order (on one thread they become the outputs as they are).
// 28x28 masks (an MNIST neuron's receptive field, the paper's case) get a copy of the kernel
// compiled with those sizes as constants: the row-group loops unroll and shifts take immediates.
#include <omp.h>
#include <torch/library.h>
#include <torch/types.h>

#include <cmath>
#include <cstring>
#include <numeric>
#include <vector>

#include "common/cpu_dispatch.h"
#include "common/binning.h"
#include "common/checks.h"
#include "common/parallel.h"
#include "regions/regions_args.h"

#if defined(__AVX2__)
#include <immintrin.h>
#endif

namespace pyprune {
namespace PYPRUNE_CPU_LEVEL {

#include "cpu/cpu_kernels.h"

namespace {

constexpr int kWordBits = 64;

// Bits 0..b of a word.
inline uint64_t through(int b) { return (uint64_t{2} << b) - 1; }  // b = 63: 2 << 63 wraps to 0

// Bit i set when pixel i of the (at most 64) bools at `row` is set.
inline uint64_t pack_word(const bool* row, int64_t width) {
#if defined(__AVX512BW__)
  const __m512i bytes = _mm512_maskz_loadu_epi8(width >= 64 ? ~0ull : (uint64_t{1} << width) - 1, row);
  return _mm512_test_epi8_mask(bytes, bytes);
#else
  uint64_t bits = 0;
  int64_t i = 0;
#if defined(__AVX2__)
  for (; i + 32 <= width; i += 32) {  // bools are 0/1: shifted to the sign bit, one movemask
    const __m256i bytes = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + i));
    bits |= static_cast<uint64_t>(static_cast<uint32_t>(_mm256_movemask_epi8(_mm256_slli_epi16(bytes, 7)))) << i;
  }
#endif
  for (; i + 8 <= width; i += 8) {
    uint64_t bytes;
    std::memcpy(&bytes, row + i, 8);
    bits |= ((bytes * 0x0102040810204080ull) >> 56 & 0xff) << i;  // bytes are 0/1
  }
  for (; i < width; ++i) bits |= static_cast<uint64_t>(row[i] != 0) << i;
  return bits;
#endif
}

struct Scratch {
  std::vector<uint64_t> bits, starts;  // [H * words]
  std::vector<int32_t> runs_before;    // [H * words + 1]: runs starting in earlier words
  std::vector<int32_t> parent;         // per run
  std::vector<int32_t> label;          // label of run i at [i + 1]; [0] = 0
};

// Packs the mask, marks run starts and numbers the runs; returns the run count.
// Inlined (like unite_row_group) so that a label_mask compiled for one mask size folds its sizes.
__attribute__((always_inline)) inline int32_t find_runs(const bool* mask, int64_t height,
                                                        int64_t width, int64_t words, Scratch& s) {
  const int64_t cells = height * words;
  s.bits.resize(cells);
  s.starts.resize(cells);
  s.runs_before.resize(cells + 1);
  int32_t runs = 0;
  for (int64_t r = 0; r < height; ++r) {
    uint64_t carry = 0;  // last pixel of the previous word of this row
    for (int64_t w = 0; w < words; ++w) {
      const int64_t i = r * words + w;
      const int64_t first = w * kWordBits;
      const uint64_t bits = pack_word(mask + r * width + first, std::min<int64_t>(kWordBits, width - first));
      const uint64_t starts = bits & ~(bits << 1 | carry);
      s.bits[i] = bits;
      s.starts[i] = starts;
      s.runs_before[i] = runs;
      runs += __builtin_popcountll(starts);
      carry = bits >> 63;
    }
  }
  s.runs_before[cells] = runs;
  return runs;
}

// Index of the run holding set pixel `col` of the row whose first word is `row_word`.
inline int32_t run_at(const Scratch& s, int64_t row_word, int64_t col) {
  const int64_t i = row_word + col / kWordBits;
  return s.runs_before[i] + __builtin_popcountll(s.starts[i] & through(col % kWordBits)) - 1;
}

// Rem's union with splicing: merges the trees of runs x and y, keeping parent[i] <= i.
inline void unite(int32_t* parent, int32_t x, int32_t y) {
  while (parent[x] != parent[y]) {
    if (parent[x] < parent[y]) std::swap(x, y);
    const int32_t next = parent[x];
    parent[x] = parent[y];
    if (next == x) return;
    x = next;
  }
}

// Last pixel of each run in word w of the row whose first word is `row_word`.
inline uint64_t run_ends(const Scratch& s, int64_t row_word, int64_t w, int64_t words) {
  const uint64_t bits = s.bits[row_word + w];
  const uint64_t next = w + 1 < words ? s.bits[row_word + w + 1] << 63 : 0;  // pixel after the word
  return bits & ~(bits >> 1 | next);
}

// Calls join(col) for each set bit of `word` (word w of a row).
template <typename Join>
inline void for_each_bit(uint64_t word, int64_t w, Join join) {
  for (; word; word &= word - 1) join(w * kWordBits + __builtin_ctzll(word));
}

// Of the contacts `marks` (each the first pixel of a straight contact) between a lower row's
// runs and the row above, those that are the first of their lower run. `lead` holds the run
// starts, plus bit 0 when a run enters the word from the left still without a contact; the
// carry of the addition runs from each such start along the run's pixels up to its first
// contact, and `blocked` (never a start) stops it at row ends. Returns in `unmarked_to_top`
// whether the run at bit 63 has no contact yet.
inline uint64_t first_contacts(uint64_t bits, uint64_t lead, uint64_t marks, uint64_t blocked,
                               uint64_t& unmarked_to_top) {
  const uint64_t medium = bits & ~marks & ~blocked;
  const uint64_t before_first = medium & ~(medium + (lead & ~marks));
  unmarked_to_top = before_first >> 63;
  return marks & (before_first << 1 | lead);
}

// A lower run's first contact finds it alone, so it just takes the upper run's parent (what
// unite would do, without its data-dependent branches); only further contacts merge trees.
inline void join_first(int32_t* parent, int32_t up, int32_t down) { parent[down] = parent[up]; }

// Joins each run of row r to the runs of row r - 1 it touches. Runs touching through a pixel
// straight above meet in a segment of the AND of the two rows, one segment per pair. Diagonal
// contacts (8-connectivity) only add a pair where no straight one exists: an upper run ending at
// col - 1 with a lower run starting at col, or an upper run starting at col + 1 with a lower run
// ending at col. They are joined after all straight ones, so first contacts find runs alone.
void unite_rows(Scratch& s, int64_t r, int64_t words, bool eight) {
  const int64_t up = (r - 1) * words, down = r * words;
  int32_t* parent = s.parent.data();
  uint64_t previous_contact = 0, unmarked_to_top = 0;
  for (int64_t w = 0; w < words; ++w) {
    const uint64_t bits = s.bits[down + w], contact = s.bits[up + w] & bits;
    const uint64_t marks = contact & ~(contact << 1 | previous_contact >> 63);
    const uint64_t lead = s.starts[down + w] | (unmarked_to_top & bits & 1);
    const uint64_t first = first_contacts(bits, lead, marks, 0, unmarked_to_top);
    const auto pair = [&](int64_t col, auto join) {
      join(parent, run_at(s, up, col), run_at(s, down, col));
    };
    for_each_bit(first, w, [&](int64_t col) { pair(col, join_first); });
    for_each_bit(marks & ~first, w, [&](int64_t col) { pair(col, unite); });
    previous_contact = contact;
  }
  if (!eight) return;
  uint64_t previous_up_ends = 0;
  for (int64_t w = 0; w < words; ++w) {
    const uint64_t up_ends = run_ends(s, up, w, words);
    const uint64_t next_up_starts = w + 1 < words ? s.starts[up + w + 1] << 63 : 0;
    for_each_bit((up_ends << 1 | previous_up_ends >> 63) & s.starts[down + w], w,
                 [&](int64_t col) { unite(parent, run_at(s, up, col - 1), run_at(s, down, col)); });
    for_each_bit((s.starts[up + w] >> 1 | next_up_starts) & run_ends(s, down, w, words), w,
                 [&](int64_t col) { unite(parent, run_at(s, up, col + 1), run_at(s, down, col)); });
    previous_up_ends = up_ends;
  }
}

// Rows first..first + rows - 1 of a per-row word array (`stride` words per row) side by side in
// one word, `width` bits per row: bit c is then the pixel `c` places after the first row's first.
inline uint64_t row_group(const std::vector<uint64_t>& row_words, int64_t first, int64_t rows,
                          int64_t stride, int64_t width) {
  uint64_t group = 0;
  for (int64_t k = 0; k < rows; ++k) group |= row_words[first + k * stride] << (k * width);
  return group;
}

// unite_rows for rows of one word, `rows` of them at once from row r on (rows * width <= 64):
// the group's bits sit row after row in one word and the rows above them are the same word
// shifted by a row, so each straight or diagonal contact of the group is one set bit; contacts
// never pair pixels across the side edges (the row_first / row_last masks). First contacts are
// joined for the whole group before any merge, in raster order, so each upper run of the group
// has its parent before its lower runs copy it.
__attribute__((always_inline)) inline void unite_row_group(Scratch& s, int64_t r, int64_t rows,
                                                          int64_t width, bool eight) {
  const uint64_t bits = row_group(s.bits, r, rows, 1, width), starts = row_group(s.starts, r, rows, 1, width);
  uint64_t row_first = 0;
  for (int64_t k = 0; k < rows; ++k) row_first |= uint64_t{1} << (k * width);
  const uint64_t row_last = row_first << (width - 1), group = through(static_cast<int>(rows * width) - 1);
  const auto down_a_row = [&](uint64_t x) { return width < kWordBits ? x << width : 0; };  // 64-bit rows
  const uint64_t above = (down_a_row(bits) | s.bits[r - 1]) & group;
  const uint64_t above_starts = (down_a_row(starts) | s.starts[r - 1]) & group;
  const int32_t up_before = s.runs_before[r - 1] - 1, down_before = s.runs_before[r] - 1;
  int32_t* parent = s.parent.data();
  const auto down = [&](int c) { return down_before + __builtin_popcountll(starts & through(c)); };
  const auto up = [&](int c) { return up_before + __builtin_popcountll(above_starts & through(c)); };
  const uint64_t contact = bits & above;
  const uint64_t marks = contact & ~(contact << 1 & ~row_first);
  uint64_t unused;
  const uint64_t first = first_contacts(bits, starts, marks, row_last, unused);
  for_each_bit(first, 0, [&](int64_t c) { join_first(parent, up(c), down(c)); });
  for_each_bit(marks & ~first, 0, [&](int64_t c) { unite(parent, up(c), down(c)); });
  if (eight) {
    const uint64_t ends = bits & ~(bits >> 1);  // can miss a run ending a row: no diagonal uses it
    const uint64_t above_ends = (down_a_row(ends) | run_ends(s, r - 1, 0, 1)) & group;
    for_each_bit(above_ends << 1 & starts & ~row_first, 0, [&](int64_t c) { unite(parent, up(c - 1), down(c)); });
    for_each_bit(above_starts >> 1 & ends & ~row_last, 0, [&](int64_t c) { unite(parent, up(c + 1), down(c)); });
  }
}

#if defined(__AVX512VPOPCNTDQ__)
// Lane j: the set bits among bits 0..j of the 16-bit `bits`.
inline __m512i set_bits_through_lane(uint32_t bits) {
  const __m512i through_lane = _mm512_set_epi32(0xffff, 0x7fff, 0x3fff, 0x1fff, 0xfff, 0x7ff, 0x3ff, 0x1ff,
                                                0xff, 0x7f, 0x3f, 0x1f, 0xf, 0x7, 0x3, 0x1);
  return _mm512_popcnt_epi32(_mm512_and_si512(_mm512_set1_epi32(static_cast<int>(bits)), through_lane));
}
#elif defined(__AVX2__)
// Byte j of entry b: the set bits among bits 0..j of the byte b (AVX2 has no vector popcount).
struct PrefixCounts {
  uint64_t entry[256];
  constexpr PrefixCounts() : entry() {
    for (int b = 0; b < 256; ++b) {
      int count = 0;
      for (int j = 0; j < 8; ++j) {
        count += b >> j & 1;
        entry[b] |= static_cast<uint64_t>(count) << (8 * j);
      }
    }
  }
};
constexpr PrefixCounts kPrefixCounts;

// Lane j: the set bits among bits 0..j of the 8-bit `bits`.
inline __m256i set_bits_through_lane(uint32_t bits) {
  return _mm256_cvtepu8_epi32(_mm_cvtsi64_si128(static_cast<int64_t>(kPrefixCounts.entry[bits & 0xff])));
}

// Lane j all ones when bit j of the 8-bit `bits` is set.
inline __m256i lanes_of_bits(uint32_t bits) {
  const __m256i bit = _mm256_set_epi32(128, 64, 32, 16, 8, 4, 2, 1);
  return _mm256_cmpeq_epi32(_mm256_and_si256(_mm256_set1_epi32(static_cast<int>(bits)), bit), bit);
}
#endif

// Writes the labels of up to 64 pixels whose set bits are `bits`: the pixel at bit c belongs to
// the n-th run counted from the word's first start, n = starts up to c, labelled table[n].
inline void write_labels(uint64_t bits, uint64_t starts, const int32_t* table, int32_t* out, int n) {
#if defined(__AVX512VPOPCNTDQ__)
  int before = 0;  // starts in the earlier groups of 16 pixels
  for (int g = 0; g * 16 < n; ++g) {
    const uint32_t group_starts = starts >> (16 * g) & 0xffff;
    const __m512i count = set_bits_through_lane(group_starts);
    // a group touches at most 17 runs: the one running in from the left and 16 starting in it
    const int32_t* runs = table + before;
    const __m512i group = _mm512_maskz_permutex2var_epi32(
        static_cast<__mmask16>(bits >> (16 * g)), _mm512_loadu_si512(runs), count, _mm512_loadu_si512(runs + 16));
    _mm512_mask_storeu_epi32(out + 16 * g, static_cast<__mmask16>(through(std::min(n - 16 * g, 16) - 1)), group);
    before += __builtin_popcount(group_starts);
  }
#elif defined(__AVX2__)
  int before = 0;  // starts in the earlier groups of 8 pixels
  int g = 0;
  for (; g * 8 + 8 <= n; ++g) {
    const uint32_t group_starts = starts >> (8 * g) & 0xff;
    const __m256i count = set_bits_through_lane(group_starts);
    // a group touches at most 9 runs: the one running in from the left and 8 starting in it
    const int32_t* runs = table + before;
    const __m256i first8 = _mm256_permutevar8x32_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(runs)), count);
    const __m256i ninth = _mm256_cmpeq_epi32(count, _mm256_set1_epi32(8));
    const __m256i group = _mm256_blendv_epi8(first8, _mm256_set1_epi32(runs[8]), ninth);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + 8 * g),
                        _mm256_and_si256(group, lanes_of_bits(static_cast<uint32_t>(bits >> (8 * g)) & 0xff)));
    before += __builtin_popcount(group_starts);
  }
  for (int c = 8 * g; c < n; ++c)
    out[c] = table[__builtin_popcountll(starts & through(c))] & -static_cast<int32_t>(bits >> c & 1);
#else
  for (int c = 0; c < n; ++c)
    out[c] = table[__builtin_popcountll(starts & through(c))] & -static_cast<int32_t>(bits >> c & 1);
#endif
}

// label[i] = roots among runs 0..i (run i is a root when parent[i] == i); returns the root count.
inline int32_t number_roots(const int32_t* parent, int32_t runs, int32_t* label) {
  int32_t roots = 0, i = 0;
#if defined(__AVX512VPOPCNTDQ__)
  const __m512i lanes = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
  for (; i < runs; i += 16) {
    const auto valid = static_cast<__mmask16>(through(std::min(runs - i, 16) - 1));
    const __mmask16 root = _mm512_mask_cmpeq_epi32_mask(
        valid, _mm512_maskz_loadu_epi32(valid, parent + i), _mm512_add_epi32(lanes, _mm512_set1_epi32(i)));
    const __m512i roots_through = _mm512_add_epi32(set_bits_through_lane(root), _mm512_set1_epi32(roots));
    _mm512_mask_storeu_epi32(label + i, valid, roots_through);
    roots += __builtin_popcount(root);
  }
#elif defined(__AVX2__)
  const __m256i lanes = _mm256_set_epi32(7, 6, 5, 4, 3, 2, 1, 0);
  for (; i + 8 <= runs; i += 8) {
    const __m256i is_root = _mm256_cmpeq_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(parent + i)),
                                               _mm256_add_epi32(lanes, _mm256_set1_epi32(i)));
    const auto root = static_cast<uint32_t>(_mm256_movemask_ps(_mm256_castsi256_ps(is_root)));
    const __m256i roots_through = _mm256_add_epi32(set_bits_through_lane(root), _mm256_set1_epi32(roots));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(label + i), roots_through);
    roots += __builtin_popcount(root);
  }
#endif
  for (; i < runs; ++i) {
    roots += parent[i] == i;
    label[i] = roots;
  }
  return roots;
}

// Region records of one thread's masks, in mask order.
struct RegionRecords {
  std::vector<int64_t> sizes;
  std::vector<double> sums, means;
  bool nonfinite = false;  // some sum is NaN or Inf
};

// Labels one mask; returns its region count and appends (size, sum |w|, mean |w|) per region.
// kHeight, kWidth: the mask's sizes when fixed at compile time, 0 when given at run time.
template <typename scalar_t, int kHeight, int kWidth>
int32_t label_mask(const bool* mask, const scalar_t* weights, int64_t height_arg, int64_t width_arg,
                   bool eight, Scratch& s, int32_t* labels, RegionRecords& out) {
  const int64_t height = kHeight ? kHeight : height_arg, width = kWidth ? kWidth : width_arg;
  const int64_t words = ceil_div(width, kWordBits);
  const int32_t runs = find_runs(mask, height, width, words, s);
  s.parent.resize(runs);
  std::iota(s.parent.begin(), s.parent.end(), 0);
  // Rows of at most half a word are taken several whole rows per word: a set bit's position is
  // then the pixel's offset from the group's first pixel, and the group's runs are consecutive,
  // so the same popcount finds each pixel's run. Fewer, fuller loops over the bits.
  const int64_t rows_per_group = words == 1 ? kWordBits / width : 1;
  if (words == 1) {
    for (int64_t r = 1; r < height; r += rows_per_group)
      unite_row_group(s, r, std::min(rows_per_group, height - r), width, eight);
  } else {
    for (int64_t r = 1; r < height; ++r) unite_rows(s, r, words, eight);
  }
  // Roots are numbered in index order first: every run gets the count of roots up to it, which
  // is a root's label. Then each run copies its parent's label (a root its own): parent[i] <= i,
  // so in index order the parent's label is already final. Two plain loops instead of one that
  // blends the two cases: a root is as random as the mask.
  s.label.resize(runs + 1 + 32);  // + 32: write_labels reads 32 table entries at a time
  s.label[0] = 0;
  const int32_t* parent = s.parent.data();
  int32_t* label = s.label.data() + 1;  // label of run i at [i]
  const int32_t regions = number_roots(parent, runs, label);
  for (int32_t i = 0; i < runs; ++i) label[i] = label[parent[i]];
  const size_t first = out.sizes.size();  // label l goes to first + l - 1
  out.sizes.resize(first + regions, 0);
  out.sums.resize(first + regions, 0.0);
  out.means.resize(first + regions);
  int64_t* size = out.sizes.data() + first;
  double* sum = out.sums.data() + first;
  for (int64_t r = 0; r < height; r += rows_per_group) {
    const int64_t rows = std::min(rows_per_group, height - r);
    for (int64_t w = 0; w < words; ++w) {
      const int64_t i = r * words + w, col = w * kWordBits;
      const uint64_t bits = row_group(s.bits, i, rows, words, width);
      const uint64_t starts = row_group(s.starts, i, rows, words, width);
      const int32_t* table = s.label.data() + s.runs_before[i];  // [n] = n-th run from this word on
      int32_t* group_labels = labels + r * width + col;
      write_labels(bits, starts, table, group_labels,
                   static_cast<int>(rows > 1 ? rows * width : std::min<int64_t>(kWordBits, width - col)));
      const scalar_t* group_weights = weights ? weights + r * width + col : nullptr;
      for (uint64_t b = bits; b; b &= b - 1) {
        const int c = __builtin_ctzll(b);
        const int32_t l = group_labels[c];  // just written: one load instead of a run lookup
        size[l - 1] += 1;
        if (group_weights) sum[l - 1] += std::abs(static_cast<double>(group_weights[c]));
      }
    }
  }
  double* mean = out.means.data() + first;  // while the mask's records are still in L1
  bool nonfinite = false;
  for (int32_t l = 0; l < regions; ++l) {
    mean[l] = sum[l] / static_cast<double>(size[l]);
    nonfinite |= is_nonfinite(sum[l]);
  }
  out.nonfinite |= nonfinite;
  return regions;
}

constexpr int64_t kSampleMasks = 32;

// A 1-D tensor that takes over the vector's buffer.
template <typename T>
at::Tensor adopt(std::vector<T>&& values, at::ScalarType dtype) {
  auto* owner = new std::vector<T>(std::move(values));
  return at::from_blob(owner->data(), {static_cast<int64_t>(owner->size())},
                       [owner](void*) { delete owner; }, at::TensorOptions().dtype(dtype));
}

template <typename scalar_t>
void label_all(const at::Tensor& mask, const scalar_t* weights, bool eight, at::Tensor& labels,
               at::Tensor& counts, at::Tensor& sizes_out, at::Tensor& sums_out, at::Tensor& means_out) {
  const int64_t k = mask.size(0), h = mask.size(1), w = mask.size(2), plane = h * w;
  const bool* mp = mask.data_ptr<bool>();
  int32_t* lp = labels.data_ptr<int32_t>();
  int64_t* cp = counts.data_ptr<int64_t>();
  const int threads = static_cast<int>(std::min<int64_t>(num_threads(), std::max<int64_t>(k, 1)));
  std::vector<RegionRecords> records(threads);
#pragma omp parallel num_threads(threads)
  {
    const int t = omp_get_thread_num();
    Scratch scratch;
    const int64_t begin = k * t / threads, end = k * (t + 1) / threads;
    RegionRecords& mine = records[t];
    for (int64_t i = begin; i < end; ++i) {
      // Room for the whole block at the rate of its first masks (+1/8), where doubling from
      // empty would copy the records several times over.
      if (i == begin + kSampleMasks) {
        const size_t expected = mine.sizes.size() * (end - begin) / kSampleMasks * 9 / 8;
        mine.sizes.reserve(expected);
        mine.sums.reserve(expected);
        mine.means.reserve(expected);
      }
      const scalar_t* mask_weights = weights ? weights + i * plane : nullptr;
      cp[i] = h == 28 && w == 28
                  ? label_mask<scalar_t, 28, 28>(mp + i * plane, mask_weights, h, w, eight, scratch,
                                                 lp + i * plane, mine)
                  : label_mask<scalar_t, 0, 0>(mp + i * plane, mask_weights, h, w, eight, scratch,
                                               lp + i * plane, mine);
    }
  }
  bool nonfinite = false;
  for (const RegionRecords& r : records) nonfinite |= r.nonfinite;
  check_region_sums(!nonfinite);
  if (threads == 1) {  // the records are the outputs
    sizes_out = adopt(std::move(records[0].sizes), at::kLong);
    sums_out = adopt(std::move(records[0].sums), at::kDouble);
    means_out = adopt(std::move(records[0].means), at::kDouble);
    return;
  }
  std::vector<int64_t> offsets(threads + 1, 0);
  for (int t = 0; t < threads; ++t) offsets[t + 1] = offsets[t] + records[t].sizes.size();
  sizes_out = at::empty({offsets[threads]}, counts.options());
  sums_out = at::empty({offsets[threads]}, counts.options().dtype(at::kDouble));
  means_out = at::empty({offsets[threads]}, counts.options().dtype(at::kDouble));
  int64_t* sizes = sizes_out.data_ptr<int64_t>();
  double* sums = sums_out.data_ptr<double>();
  double* means = means_out.data_ptr<double>();
#pragma omp parallel for num_threads(threads)
  for (int t = 0; t < threads; ++t) {
    const RegionRecords& r = records[t];
    const int64_t at = offsets[t];
    for (size_t j = 0; j < r.sizes.size(); ++j) {
      sizes[at + j] = r.sizes[j];
      sums[at + j] = r.sums[j];
      means[at + j] = r.means[j];
    }
  }
}

}  // namespace

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor> label_regions_cpu(
    const at::Tensor& mask_in, const c10::optional<at::Tensor>& weights_in, int64_t connectivity) {
  check_label_args(mask_in, weights_in, connectivity);
  const at::Tensor mask = mask_in.contiguous();
  auto opts = mask.options();
  at::Tensor labels = at::empty(mask.sizes(), opts.dtype(at::kInt));
  at::Tensor counts = at::empty({mask.size(0)}, opts.dtype(at::kLong));
  at::Tensor sizes, sums, means;
  if (weights_in) {
    const at::Tensor weights = weights_in->contiguous();
    AT_DISPATCH_FLOATING_TYPES(weights.scalar_type(), "label_regions", [&] {
      label_all<scalar_t>(mask, weights.data_ptr<scalar_t>(), connectivity == 8, labels, counts,
                          sizes, sums, means);
    });
  } else {
    label_all<float>(mask, nullptr, connectivity == 8, labels, counts, sizes, sums, means);
  }
  return {labels, counts, sizes, sums, means};
}

}  // namespace PYPRUNE_CPU_LEVEL
}  // namespace pyprune
