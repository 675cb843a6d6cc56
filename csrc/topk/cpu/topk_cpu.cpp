// CPU kernels of the per-parameter single-shot score s = |g * theta| + alpha * theta^2 and of the
// global top-k mask over a list of parameter tensors.
//
// Top-k is a radix selection (radix_select.h), never a sort. Each pass recomputes the scores (no
// score buffer: the only extra memory is the masks and a histogram per thread) and counts the
// next digit of the keys that share the prefix found so far. Elements equal to the final key are
// kept in index order (tensor by tensor) until k are kept: deterministic.
#include <omp.h>
#include <torch/library.h>
#include <torch/types.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "common/cpu_dispatch.h"
#include "common/checks.h"
#include "common/parallel.h"
#include "topk/radix_select.h"
#include "topk/topk_args.h"
#include "topk/topk_math.h"

namespace pyprune {
namespace PYPRUNE_CPU_LEVEL {

#include "cpu/cpu_kernels.h"

namespace {

constexpr int64_t kChunk = 1 << 16;

// The parameter list flattened into chunks of at most kChunk elements, for parallel passes.
struct Chunk {
  int64_t tensor, begin, end;
};

std::vector<Chunk> make_chunks(const std::vector<at::Tensor>& thetas) {
  std::vector<Chunk> chunks;
  for (int64_t t = 0; t < static_cast<int64_t>(thetas.size()); ++t)
    for (int64_t b = 0; b < thetas[t].numel(); b += kChunk)
      chunks.push_back({t, b, std::min(thetas[t].numel(), b + kChunk)});
  return chunks;
}

template <typename scalar_t>
std::vector<at::Tensor> topk_masks(const std::vector<at::Tensor>& thetas,
                                   const std::vector<at::Tensor>& grads, double alpha_in,
                                   int64_t keep) {
  using Key = ScoreKey<scalar_t>;
  const scalar_t alpha = static_cast<scalar_t>(alpha_in);
  const std::vector<Chunk> chunks = make_chunks(thetas);
  const int64_t num_chunks = chunks.size();
  std::vector<const scalar_t*> tp, gp;
  for (size_t i = 0; i < thetas.size(); ++i) {
    tp.push_back(thetas[i].data_ptr<scalar_t>());
    gp.push_back(grads[i].data_ptr<scalar_t>());
  }
  const int threads = num_threads();
  auto key_at = [&](const Chunk& c, int64_t i) {
    return Key::of(param_score(tp[c.tensor][i], gp[c.tensor][i], alpha));
  };

  // One digit pass: a histogram per thread over its chunks, summed into hist.
  auto count_digits = [&](uint64_t prefix, int fixed_bits, int shift, int64_t* hist) {
    std::vector<int64_t> local(static_cast<size_t>(threads) * kRadixBins, 0);
    bool nonfinite = false;
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
    PYPRUNE_CHECK_VALUE(!nonfinite, "'params' or 'grads' contains NaN or Inf");
    for (int t = 0; t < threads; ++t)
      for (int b = 0; b < kRadixBins; ++b) hist[b] += local[t * kRadixBins + b];
  };
  const RadixSelection sel = radix_select(Key::bits, keep, count_digits);

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
  std::vector<at::Tensor> masks;
  for (const auto& t : thetas) masks.push_back(at::empty(t.sizes(), t.options().dtype(at::kBool)));
#pragma omp parallel for schedule(dynamic, 4) num_threads(threads)
  for (int64_t ci = 0; ci < num_chunks; ++ci) {
    const Chunk& c = chunks[ci];
    bool* m = masks[c.tensor].data_ptr<bool>();
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
  return masks;
}

}  // namespace

at::Tensor param_scores_cpu(const at::Tensor& theta_in, const at::Tensor& grad_in, double alpha) {
  check_params({theta_in}, {grad_in});
  check_alpha(alpha);
  const at::Tensor theta = theta_in.contiguous(), grad = grad_in.contiguous();
  at::Tensor out = at::empty_like(theta, at::MemoryFormat::Contiguous);
  AT_DISPATCH_FLOATING_TYPES(theta.scalar_type(), "param_scores", [&] {
    const scalar_t* t = theta.data_ptr<scalar_t>();
    const scalar_t* g = grad.data_ptr<scalar_t>();
    scalar_t* o = out.data_ptr<scalar_t>();
    const scalar_t a = static_cast<scalar_t>(alpha);
    at::parallel_for(0, theta.numel(), kChunk, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) o[i] = param_score(t[i], g[i], a);
    });
  });
  return out;
}

std::vector<at::Tensor> global_topk_masks_cpu(at::TensorList thetas_in, at::TensorList grads_in,
                                              double alpha, int64_t keep) {
  std::vector<at::Tensor> thetas, grads;
  for (const auto& t : thetas_in) thetas.push_back(t.contiguous());
  for (const auto& g : grads_in) grads.push_back(g.contiguous());
  check_params(thetas, grads);
  check_alpha(alpha);
  check_keep(thetas, keep);
  if (thetas.empty()) return {};
  std::vector<at::Tensor> masks;
  AT_DISPATCH_FLOATING_TYPES(thetas[0].scalar_type(), "global_topk_masks",
                             [&] { masks = topk_masks<scalar_t>(thetas, grads, alpha, keep); });
  return masks;
}

}  // namespace PYPRUNE_CPU_LEVEL
}  // namespace pyprune
