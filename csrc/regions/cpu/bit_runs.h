// Bit-run labelling of one mask: packing rows into words, numbering runs, joining the runs of
// adjacent rows (Rem's union-find), writing the label image. See regions_kernels.cpp for the
// method. Included by regions_kernels.cpp only, inside its capability's namespace.
#pragma once

#include <cstdint>
#include <cstring>
#include <vector>

#if defined(__AVX2__)
#include <immintrin.h>
#endif

#include "common/cpu_kernel.h"
#include "common/parallel.h"

namespace pyprune {
namespace PYPRUNE_CPU_NAMESPACE {
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

// The label writing and the root numbering below take these AVX2 paths in the AVX-512 copy too:
// their AVX-512 forms (16 lanes, vpermt2d, masked 512-bit loads and stores) were slower than the
// AVX2 forms on Zen 4, whose masked stores are slow, and the AVX2 forms cost the same on any
// AVX-512 CPU as in the AVX2 copy, so the AVX-512 copy is never the slower one here.
#if defined(__AVX2__)
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
#if defined(__AVX2__)
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
#if defined(__AVX2__)
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

}  // namespace
}  // namespace PYPRUNE_CPU_NAMESPACE
}  // namespace pyprune
