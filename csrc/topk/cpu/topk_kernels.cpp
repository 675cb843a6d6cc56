// CPU kernels of the per-parameter single-shot score s = |g * theta| + alpha * theta^2 and of the
// global top-k mask over a list of parameter tensors.
//
// Top-k is a radix selection (radix_select.h), never a sort. Each pass recomputes the scores (no
// score buffer: the only extra memory is the masks and a histogram per thread) and counts the
// next digit of the keys that share the prefix found so far. Elements equal to the final key are
// kept in index order (tensor by tensor) until k are kept: deterministic.
#include "common/cpu_kernel.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "common/parallel.h"
#include "topk/cpu/topk_kernels.h"
#include "topk/radix_select.h"
#include "topk/topk_math.h"

namespace pyprune {
namespace PYPRUNE_CPU_NAMESPACE {
namespace {

constexpr int64_t kChunk = 1 << 16;

// The parameter list flattened into chunks of at most kChunk elements, for parallel passes.
struct Chunk {
  int64_t tensor, begin, end;
};

std::vector<Chunk> make_chunks(int64_t count, const int64_t* sizes) {
  std::vector<Chunk> chunks;
  for (int64_t t = 0; t < count; ++t)
    for (int64_t b = 0; b < sizes[t]; b += kChunk) chunks.push_back({t, b, std::min(sizes[t], b + kChunk)});
  return chunks;
}

template <typename scalar_t>
bool topk_masks(int64_t count, const scalar_t* const* tp, const scalar_t* const* gp,
                const int64_t* sizes, scalar_t alpha, int64_t keep, bool* const* masks) {
  using Key = ScoreKey<scalar_t>;
  const std::vector<Chunk> chunks = make_chunks(count, sizes);
  const int64_t num_chunks = chunks.size();
  // NaN/Inf found by a digit pass: the later passes and the masks are skipped.
  bool nonfinite = false;
  const int threads = num_threads();
  auto key_at = [&](const Chunk& c, int64_t i) {
    return Key::of(param_score(tp[c.tensor][i], gp[c.tensor][i], alpha));
  };

  // One digit pass: a histogram per thread over its chunks, summed into hist.
  auto count_digits = [&](uint64_t prefix, int fixed_bits, int shift, int64_t* hist) {
    if (nonfinite) return;
    std::vector<int64_t> local(static_cast<size_t>(threads) * kRadixBins, 0);
#pragma omp parallel num_threads(threads) reduction(|| : nonfinite)
    {
      int64_t* h = local.data() + omp_get_thread_num() * kRadixBins;
#pragma omp for schedule(dynamic, 4)
      for (int64_t ci = 0; ci < num_chunks; ++ci) {
        const Chunk& c = chunks[ci];
        const scalar_t* th = tp[c.tensor];
        const scalar_t* gr = gp[c.tensor];
        for (int64_t i = c.begin; i < c.end; ++i) {
          const scalar_t v = param_score(th[i], gr[i], alpha);
          nonfinite |= !std::isfinite(v);
          const uint64_t k = Key::of(v);
          if (key_in_range(k, prefix, fixed_bits, Key::bits)) ++h[(k >> shift) & (kRadixBins - 1)];
        }
      }
    }
    for (int t = 0; t < threads; ++t)
      for (int b = 0; b < kRadixBins; ++b) hist[b] += local[t * kRadixBins + b];
  };
  const RadixSelection sel = radix_select(Key::bits, keep, count_digits);
  if (nonfinite) return false;

  // Masks: keys above the threshold, then ties in index order. Ties need ranking only when not
  // all of them are kept.
  const int64_t ties_kept = keep - sel.above;
  const bool rank_ties = keep > 0 && ties_kept < sel.equal;
  std::vector<int64_t> tie_start(num_chunks + 1, 0);
  if (rank_ties) {
#pragma omp parallel for schedule(dynamic, 4) num_threads(threads)
    for (int64_t ci = 0; ci < num_chunks; ++ci) {
      const Chunk& c = chunks[ci];
      int64_t n = 0;
      for (int64_t i = c.begin; i < c.end; ++i) n += key_at(c, i) == sel.threshold;
      tie_start[ci + 1] = n;
    }
    for (int64_t ci = 0; ci < num_chunks; ++ci) tie_start[ci + 1] += tie_start[ci];
  }
#pragma omp parallel for schedule(dynamic, 4) num_threads(threads)
  for (int64_t ci = 0; ci < num_chunks; ++ci) {
    const Chunk& c = chunks[ci];
    bool* m = masks[c.tensor];
    if (keep == 0) {
      std::fill(m + c.begin, m + c.end, false);
      continue;
    }
    int64_t rank = tie_start[ci];
    for (int64_t i = c.begin; i < c.end; ++i) {
      const uint64_t k = key_at(c, i);
      bool kept = k > sel.threshold;
      if (k == sel.threshold) kept = !rank_ties || rank++ < ties_kept;
      m[i] = kept;
    }
  }
  return true;
}

template <typename scalar_t>
void param_scores(const scalar_t* t, const scalar_t* g, int64_t n, scalar_t alpha, scalar_t* out) {
#pragma omp parallel for schedule(static) num_threads(num_threads()) if (n > kChunk)
  for (int64_t i = 0; i < n; ++i) out[i] = param_score(t[i], g[i], alpha);
}

}  // namespace

PYPRUNE_REGISTER_CPU_KERNEL(param_scores_kernel, &param_scores<float>, &param_scores<double>);
PYPRUNE_REGISTER_CPU_KERNEL(topk_masks_kernel, &topk_masks<float>, &topk_masks<double>);

}  // namespace PYPRUNE_CPU_NAMESPACE
}  // namespace pyprune
