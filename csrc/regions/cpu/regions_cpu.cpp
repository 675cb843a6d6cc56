// CPU kernel of connected-component labelling with region statistics, one mask per task.
//
// Run-based: each row is cut into runs of set pixels (a row of up to 64 pixels is packed into one
// machine word and its runs read off with count-trailing-zeros), runs of adjacent rows that touch
// are merged with union-find over run indices (the smaller index becomes the root, so a region's
// root is its first run in raster order and numbering regions by their roots' order is numbering
// them by their first pixel), then labels are filled and sizes and sums of |w| taken run by run:
// the weights are read once, only under set pixels. Masks are spread over threads in contiguous
// blocks, so each thread's region records come out in mask order.
#include <omp.h>
#include <torch/library.h>
#include <torch/types.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "common/checks.h"
#include "common/parallel.h"
#include "regions/regions_args.h"

#if defined(__BMI2__)
#include <immintrin.h>
#endif

namespace pyprune {
namespace {

struct Run {
  int32_t row, begin, end;  // pixels [begin, end) of row
};

struct Scratch {
  std::vector<Run> runs;
  std::vector<int32_t> parent, label, row_start;
};

// Bit i set when pixel i of the row (at most 64 pixels of bools) is set.
inline uint64_t pack_row(const bool* row, int64_t width) {
  uint64_t bits = 0;
  int64_t i = 0;
  for (; i + 8 <= width; i += 8) {
    uint64_t bytes;
    std::memcpy(&bytes, row + i, 8);
#if defined(__BMI2__)
    bits |= _pext_u64(bytes, 0x0101010101010101ull) << i;
#else
    bits |= ((bytes * 0x0102040810204080ull) >> 56 & 0xff) << i;  // bytes are 0/1
#endif
  }
  for (; i < width; ++i) bits |= static_cast<uint64_t>(row[i] != 0) << i;
  return bits;
}

void find_runs(const bool* mask, int64_t height, int64_t width, Scratch& s) {
  s.runs.clear();
  s.row_start.assign(height + 1, 0);
  for (int64_t r = 0; r < height; ++r) {
    s.row_start[r] = static_cast<int32_t>(s.runs.size());
    const bool* row = mask + r * width;
    if (width <= 64) {
      uint64_t bits = pack_row(row, width);
      while (bits) {
        const int begin = __builtin_ctzll(bits);
        const uint64_t rest = ~(bits >> begin);
        const int length = rest ? __builtin_ctzll(rest) : 64 - begin;
        s.runs.push_back({static_cast<int32_t>(r), begin, begin + length});
        bits = length + begin >= 64 ? 0 : bits & (~0ull << (begin + length));
      }
    } else {
      int64_t c = 0;
      while (c < width) {
        while (c < width && !row[c]) ++c;
        if (c == width) break;
        const int64_t begin = c;
        while (c < width && row[c]) ++c;
        s.runs.push_back({static_cast<int32_t>(r), static_cast<int32_t>(begin), static_cast<int32_t>(c)});
      }
    }
  }
  s.row_start[height] = static_cast<int32_t>(s.runs.size());
}

inline int32_t find_root(std::vector<int32_t>& parent, int32_t i) {
  while (parent[i] != i) {
    parent[i] = parent[parent[i]];  // path halving
    i = parent[i];
  }
  return i;
}

inline void unite(std::vector<int32_t>& parent, int32_t a, int32_t b) {
  a = find_root(parent, a);
  b = find_root(parent, b);
  if (a < b) parent[b] = a;
  else if (b < a) parent[a] = b;
}

// Labels one mask; returns its region count and appends (size, sum |w|) per region.
template <typename scalar_t>
int32_t label_mask(const bool* mask, const scalar_t* weights, int64_t height, int64_t width,
                   bool eight, Scratch& s, int32_t* labels, std::vector<int64_t>& sizes,
                   std::vector<double>& sums) {
  find_runs(mask, height, width, s);
  const int32_t n = static_cast<int32_t>(s.runs.size());
  s.parent.resize(n);
  for (int32_t i = 0; i < n; ++i) s.parent[i] = i;
  const int32_t reach = eight ? 1 : 0;  // diagonal neighbours widen the overlap test by one
  for (int64_t r = 1; r < height; ++r) {
    int32_t a = s.row_start[r - 1], b = s.row_start[r];
    const int32_t a_end = s.row_start[r], b_end = s.row_start[r + 1];
    while (a < a_end && b < b_end) {
      const Run& up = s.runs[a];
      const Run& down = s.runs[b];
      if (up.begin < down.end + reach && down.begin < up.end + reach) unite(s.parent, a, b);
      if (up.end < down.end) ++a;
      else ++b;
    }
  }
  s.label.resize(n);
  int32_t regions = 0;
  const size_t first = sizes.size();
  for (int32_t i = 0; i < n; ++i) {
    const int32_t root = find_root(s.parent, i);
    if (root == i) {
      s.label[i] = ++regions;
      sizes.push_back(0);
      sums.push_back(0.0);
    } else {
      s.label[i] = s.label[root];
    }
  }
  std::fill(labels, labels + height * width, 0);
  for (int32_t i = 0; i < n; ++i) {
    const Run& run = s.runs[i];
    const int32_t l = s.label[i];
    int32_t* out = labels + run.row * width;
    for (int32_t c = run.begin; c < run.end; ++c) out[c] = l;
    sizes[first + l - 1] += run.end - run.begin;
    if (weights) {
      const scalar_t* w = weights + run.row * width;
      double total = 0;
      for (int32_t c = run.begin; c < run.end; ++c) total += std::abs(static_cast<double>(w[c]));
      sums[first + l - 1] += total;
    }
  }
  return regions;
}

template <typename scalar_t>
void label_all(const at::Tensor& mask, const scalar_t* weights, bool eight, at::Tensor& labels,
               at::Tensor& counts, at::Tensor& sizes_out, at::Tensor& sums_out) {
  const int64_t k = mask.size(0), h = mask.size(1), w = mask.size(2), plane = h * w;
  const bool* mp = mask.data_ptr<bool>();
  int32_t* lp = labels.data_ptr<int32_t>();
  int64_t* cp = counts.data_ptr<int64_t>();
  const int threads = static_cast<int>(std::min<int64_t>(num_threads(), std::max<int64_t>(k, 1)));
  std::vector<std::vector<int64_t>> sizes(threads);
  std::vector<std::vector<double>> sums(threads);
  std::vector<int64_t> first_mask(threads + 1, k);
#pragma omp parallel num_threads(threads)
  {
    const int t = omp_get_thread_num();
    Scratch scratch;
    const int64_t begin = k * t / threads, end = k * (t + 1) / threads;
    first_mask[t] = begin;
    for (int64_t i = begin; i < end; ++i)
      cp[i] = label_mask(mp + i * plane, weights ? weights + i * plane : nullptr, h, w, eight,
                         scratch, lp + i * plane, sizes[t], sums[t]);
  }
  int64_t total = 0;
  for (const auto& v : sizes) total += v.size();
  sizes_out = at::empty({total}, counts.options());
  sums_out = at::empty({total}, counts.options().dtype(at::kDouble));
  int64_t offset = 0;
  for (int t = 0; t < threads; ++t) {
    std::copy(sizes[t].begin(), sizes[t].end(), sizes_out.data_ptr<int64_t>() + offset);
    std::copy(sums[t].begin(), sums[t].end(), sums_out.data_ptr<double>() + offset);
    offset += sizes[t].size();
  }
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> label_regions_cpu(
    const at::Tensor& mask_in, const c10::optional<at::Tensor>& weights_in, int64_t connectivity) {
  check_label_args(mask_in, weights_in, connectivity);
  const at::Tensor mask = mask_in.contiguous();
  auto opts = mask.options();
  at::Tensor labels = at::empty(mask.sizes(), opts.dtype(at::kInt));
  at::Tensor counts = at::empty({mask.size(0)}, opts.dtype(at::kLong));
  at::Tensor sizes, sums;
  if (weights_in) {
    const at::Tensor weights = weights_in->contiguous();
    AT_DISPATCH_FLOATING_TYPES(weights.scalar_type(), "label_regions", [&] {
      label_all<scalar_t>(mask, weights.data_ptr<scalar_t>(), connectivity == 8, labels, counts,
                          sizes, sums);
    });
  } else {
    label_all<float>(mask, nullptr, connectivity == 8, labels, counts, sizes, sums);
  }
  return {labels, counts, sizes, sums};
}

}  // namespace

TORCH_LIBRARY_IMPL(pyprune, CPU, m) { m.impl("label_regions", &label_regions_cpu); }

}  // namespace pyprune
