// CPU kernels of the per-parameter single-shot score s = |g * theta| + alpha * theta^2 and of the
// global top-k mask over a list of parameter tensors.
//
// Top-k is a radix selection, never a sort: scores are non-negative, so their IEEE bits order like
// unsigned integers. Each pass recomputes the scores (no score buffer: the only extra memory is
// the masks and a 2048-bin histogram per thread), histograms the next 11-bit digit of the keys that
// share the prefix found so far, and keeps the bin holding the k-th largest key. Elements equal to
// the final key are kept in index order (tensor by tensor) until k are kept: deterministic.
#include <omp.h>
#include <torch/library.h>
#include <torch/types.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "common/cpu_dispatch.h"
#include "common/checks.h"
#include "common/parallel.h"
#include "taylor/taylor_args.h"

namespace pyprune {
namespace PYPRUNE_CPU_LEVEL {

#include "cpu/cpu_kernels.h"

namespace {

constexpr int64_t kChunk = 1 << 16;

template <typename scalar_t>
struct Key;
template <>
struct Key<float> {
  using type = uint32_t;
};
template <>
struct Key<double> {
  using type = uint64_t;
};

template <typename scalar_t>
inline scalar_t score(scalar_t theta, scalar_t grad, scalar_t alpha) {
  return std::abs(grad * theta) + alpha * theta * theta;
}

template <typename scalar_t>
inline typename Key<scalar_t>::type key_of(scalar_t v) {
  typename Key<scalar_t>::type k;
  std::memcpy(&k, &v, sizeof(k));
  return k;
}

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
  using key_t = typename Key<scalar_t>::type;
  constexpr int kKeyBits = 8 * sizeof(key_t);
  const scalar_t alpha = static_cast<scalar_t>(alpha_in);
  const std::vector<Chunk> chunks = make_chunks(thetas);
  const int64_t num_chunks = chunks.size();
  std::vector<const scalar_t*> tp, gp;
  for (size_t i = 0; i < thetas.size(); ++i) {
    tp.push_back(thetas[i].data_ptr<scalar_t>());
    gp.push_back(grads[i].data_ptr<scalar_t>());
  }
  std::vector<at::Tensor> masks;
  for (const auto& t : thetas) masks.push_back(at::empty(t.sizes(), t.options().dtype(at::kBool)));

  // Radix passes: find the key of the k-th largest score, digit by digit.
  key_t prefix = 0;          // digits fixed so far
  int fixed_bits = 0;        // how many of the top bits they cover
  int64_t above = 0;         // elements whose key is above the current prefix range
  int64_t equal = 0;         // elements whose key equals the final key
  const int threads = num_threads();
  bool nonfinite = false;
  // The first pass also runs when nothing is kept: it is where NaN/Inf scores are found.
  while ((keep > 0 || fixed_bits == 0) && fixed_bits < kKeyBits) {
    const int bits = std::min(kRadixBits, kKeyBits - fixed_bits);
    const int shift = kKeyBits - fixed_bits - bits;
    std::vector<int64_t> hist(static_cast<size_t>(threads) * kRadixBins, 0);
#pragma omp parallel num_threads(threads) reduction(|| : nonfinite)
    {
      int64_t* h = hist.data() + omp_get_thread_num() * kRadixBins;
#pragma omp for schedule(dynamic, 4)
      for (int64_t ci = 0; ci < num_chunks; ++ci) {
        const Chunk& c = chunks[ci];
        const scalar_t* th = tp[c.tensor];
        const scalar_t* gr = gp[c.tensor];
        for (int64_t i = c.begin; i < c.end; ++i) {
          const scalar_t v = score(th[i], gr[i], alpha);
          nonfinite |= !std::isfinite(v);
          const key_t k = key_of(v);
          if (fixed_bits == 0 || (k >> (kKeyBits - fixed_bits)) == (prefix >> (kKeyBits - fixed_bits)))
            ++h[(k >> shift) & (kRadixBins - 1)];
        }
      }
    }
    PYPRUNE_CHECK_VALUE(!nonfinite, "'params' or 'grads' contains NaN or Inf");
    int64_t bin = kRadixBins - 1, count = 0;
    for (; bin >= 0; --bin) {
      count = 0;
      for (int t = 0; t < threads; ++t) count += hist[t * kRadixBins + bin];
      if (above + count >= keep) break;
      above += count;
    }
    prefix |= static_cast<key_t>(bin) << shift;
    fixed_bits += bits;
    equal = count;
  }

  // Masks: keys above the threshold, then ties in index order. Ties need ranking only when not
  // all of them are kept.
  const int64_t ties_kept = keep - above;
  const bool rank_ties = keep > 0 && ties_kept < equal;
  std::vector<int64_t> tie_start(num_chunks + 1, 0);
  if (rank_ties) {
#pragma omp parallel for schedule(dynamic, 4) num_threads(threads)
    for (int64_t ci = 0; ci < num_chunks; ++ci) {
      const Chunk& c = chunks[ci];
      int64_t n = 0;
      for (int64_t i = c.begin; i < c.end; ++i)
        n += key_of(score(tp[c.tensor][i], gp[c.tensor][i], alpha)) == prefix;
      tie_start[ci + 1] = n;
    }
    for (int64_t ci = 0; ci < num_chunks; ++ci) tie_start[ci + 1] += tie_start[ci];
  }
#pragma omp parallel for schedule(dynamic, 4) num_threads(threads)
  for (int64_t ci = 0; ci < num_chunks; ++ci) {
    const Chunk& c = chunks[ci];
    bool* m = masks[c.tensor].data_ptr<bool>();
    const scalar_t* th = tp[c.tensor];
    const scalar_t* gr = gp[c.tensor];
    if (keep == 0) {
      std::fill(m + c.begin, m + c.end, false);
      continue;
    }
    int64_t rank = tie_start[ci];
    for (int64_t i = c.begin; i < c.end; ++i) {
      const key_t k = key_of(score(th[i], gr[i], alpha));
      bool kept = k > prefix;
      if (k == prefix) kept = !rank_ties || rank++ < ties_kept;
      m[i] = kept;
    }
  }
  return masks;
}

}  // namespace

at::Tensor param_scores_cpu(const at::Tensor& theta_in, const at::Tensor& grad_in, double alpha) {
  check_params({theta_in}, {grad_in});
  PYPRUNE_CHECK_VALUE(std::isfinite(alpha) && alpha >= 0, "'alpha' must be finite and >= 0, got ", alpha);
  const at::Tensor theta = theta_in.contiguous(), grad = grad_in.contiguous();
  at::Tensor out = at::empty_like(theta, at::MemoryFormat::Contiguous);
  AT_DISPATCH_FLOATING_TYPES(theta.scalar_type(), "param_scores", [&] {
    const scalar_t* t = theta.data_ptr<scalar_t>();
    const scalar_t* g = grad.data_ptr<scalar_t>();
    scalar_t* o = out.data_ptr<scalar_t>();
    const scalar_t a = static_cast<scalar_t>(alpha);
    at::parallel_for(0, theta.numel(), kChunk, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) o[i] = score(t[i], g[i], a);
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
  PYPRUNE_CHECK_VALUE(std::isfinite(alpha) && alpha >= 0, "'alpha' must be finite and >= 0, got ", alpha);
  int64_t total = 0;
  for (const auto& t : thetas) total += t.numel();
  PYPRUNE_CHECK_VALUE(keep >= 0 && keep <= total, "'keep' must lie in [0, ", total, "], got ", keep);
  if (thetas.empty()) return {};
  std::vector<at::Tensor> masks;
  AT_DISPATCH_FLOATING_TYPES(thetas[0].scalar_type(), "global_topk_masks",
                             [&] { masks = topk_masks<scalar_t>(thetas, grads, alpha, keep); });
  return masks;
}

}  // namespace PYPRUNE_CPU_LEVEL
}  // namespace pyprune
