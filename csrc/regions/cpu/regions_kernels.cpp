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
// first pixel. The label image is then written without branches (a run-indexed table lookup, 8
// pixels at a time with AVX2), and sizes and sums of |w| are added pixel by pixel to the
// pixel's region, whose label is read back from the row just written: the weights are read once,
// only under set pixels. Masks are spread over threads in contiguous blocks, so each thread's
// region records come out in mask order (on one thread they become the outputs as they are).
// 28x28 masks (an MNIST neuron's receptive field, the paper's case) get a copy of the kernel
// compiled with those sizes as constants: the row-group loops unroll and shifts take immediates.
#include "common/cpu_kernel.h"

#include <omp.h>

#include <cmath>
#include <numeric>
#include <vector>

#include "common/binning.h"
#include "common/parallel.h"
#include "regions/cpu/bit_runs.h"
#include "regions/cpu/regions_kernels.h"

namespace pyprune {
namespace PYPRUNE_CPU_NAMESPACE {
namespace {

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

template <typename scalar_t>
void label_all(const bool* mp, int64_t k, int64_t h, int64_t w, const scalar_t* weights, bool eight,
               int32_t* lp, int64_t* cp, std::vector<RegionRecords>& records) {
  const int64_t plane = h * w;
  const int threads = static_cast<int>(std::min<int64_t>(num_threads(), std::max<int64_t>(k, 1)));
  records.assign(threads, RegionRecords{});
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
}

}  // namespace

PYPRUNE_REGISTER_CPU_KERNEL(label_regions_kernel, &label_all<float>, &label_all<double>);

}  // namespace PYPRUNE_CPU_NAMESPACE
}  // namespace pyprune
