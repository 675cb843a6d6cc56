// CPU kernel of the per-channel Taylor statistics: every criterion of docs/taylor.md is a function
// of a few sums over samples, all gathered in ONE pass over x and g:
//   sq[c]   = sum_n ||x_n||^2          dot[c]  = sum_n x_n . g_n     dot2[c] = sum_n (x_n . g_n)^2
//   sum_x[c,p] = sum_n x_n[p]          sum_g[c,p] = sum_n g_n[p]      trace[c] = sum_n (x_n . gbar)^2
// Threads own equal ranges of channels (no reduction across threads, so results do not depend on
// the thread count; every channel is the same work, so a static split balances it, where a
// dynamic one paid a shared counter per channel: most of a call on a late layer's thousand 3x3
// channels). Small maps run on fewer threads (threads_for). Within a channel, samples are the
// inner loop, so the channel's running sums stay in L1.
// Dot products over positions run in the input precision in up to 8 SIMD lanes (see
// kSimdPositions), everything summed over samples is float64; sum_x/sum_g go through float
// buffers flushed to float64 every kFlush samples.
#include "common/cpu_kernel.h"

#include <algorithm>
#include <vector>

#include "common/parallel.h"
#include "taylor/cpu/taylor_kernels.h"

namespace pyprune {
namespace PYPRUNE_CPU_NAMESPACE {
namespace {

constexpr int64_t kFlush = 32;
// A SIMD reduction ends every (sample, channel) sum with one serial add per lane, so the lanes
// follow the positions: a plain loop below kSimdPositions (a late layer's 3x3 maps), four lanes
// below kWidePositions (6x6, 7x7), eight above, even where the registers hold sixteen floats.
// Every capability uses the same lanes, so a wider copy never ends its sums with more serial adds
// than a narrower one (with the registers' width, 6x6 maps ran slowest in the widest copy).
constexpr int64_t kSimdPositions = 16;
constexpr int64_t kWidePositions = 64;

// One sample's sums over the P positions of one channel: ||x||^2, x . g and x . gbar into q, d,
// e; x and g added to the mean buffers bx, bg, in kLanes SIMD lanes (1: a plain loop).
template <typename scalar_t, bool kMeans, bool kTrace, int kLanes>
inline void sample_sums(const scalar_t* xs, const scalar_t* gs, const scalar_t* gb, int64_t P,
                        scalar_t* bx, scalar_t* bg, scalar_t& q, scalar_t& d, scalar_t& e) {
  scalar_t lq = 0, ld = 0, le = 0;
#pragma omp simd reduction(+ : lq, ld, le) simdlen(kLanes)
  for (int64_t p = 0; p < P; ++p) {
    const scalar_t xv = xs[p], gv = gs[p];
    lq += xv * xv;
    ld += xv * gv;
    if (kMeans) {
      bx[p] += xv;
      bg[p] += gv;
    }
    if (kTrace) le += xv * gb[p];
  }
  q = lq;
  d = ld;
  e = le;
}

template <typename scalar_t, bool kMeans, bool kTrace>
void channel_pass(const scalar_t* x, const scalar_t* g, const double* gbar, const ChannelShape& s,
                  double* sq, double* dot, double* dot2, double* sum_x, double* sum_g,
                  double* trace) {
  const int64_t P = s.positions, C = s.channels;
  const int threads = threads_for(s.samples * C * P);
#pragma omp parallel num_threads(threads) if (threads > 1)
  {
    std::vector<scalar_t> block_x(kMeans ? P : 0), block_g(kMeans ? P : 0), gbar_c(kTrace ? P : 0);
#pragma omp for schedule(static)
    for (int64_t c = 0; c < C; ++c) {
      double q = 0, d = 0, d2 = 0, tr = 0;
      if (kMeans) {
        std::fill(block_x.begin(), block_x.end(), scalar_t(0));
        std::fill(block_g.begin(), block_g.end(), scalar_t(0));
      }
      if (kTrace)
        for (int64_t p = 0; p < P; ++p) gbar_c[p] = static_cast<scalar_t>(gbar[c * P + p]);
      scalar_t* bx = block_x.data();
      scalar_t* bg = block_g.data();
      const scalar_t* gb = gbar_c.data();
      for (int64_t n = 0; n < s.samples; ++n) {
        const scalar_t* xs = x + (n * C + c) * P;
        const scalar_t* gs = g + (n * C + c) * P;
        scalar_t lq, ld, le;
        if (P >= kWidePositions)
          sample_sums<scalar_t, kMeans, kTrace, 8>(xs, gs, gb, P, bx, bg, lq, ld, le);
        else if (P >= kSimdPositions)
          sample_sums<scalar_t, kMeans, kTrace, 4>(xs, gs, gb, P, bx, bg, lq, ld, le);
        else
          sample_sums<scalar_t, kMeans, kTrace, 1>(xs, gs, gb, P, bx, bg, lq, ld, le);
        q += lq;
        d += ld;
        d2 += static_cast<double>(ld) * ld;
        if (kTrace) tr += static_cast<double>(le) * le;
        if (kMeans && ((n + 1) % kFlush == 0 || n + 1 == s.samples)) {
          for (int64_t p = 0; p < P; ++p) {
            sum_x[c * P + p] += bx[p];
            sum_g[c * P + p] += bg[p];
            bx[p] = bg[p] = 0;
          }
        }
      }
      sq[c] = q;
      dot[c] = d;
      dot2[c] = d2;
      if (kTrace) trace[c] = tr;
    }
  }
}

template <typename scalar_t>
void channel_stats(const scalar_t* x, const scalar_t* g, const double* gbar, const ChannelShape& s,
                   double* sq, double* dot, double* dot2, double* sum_x, double* sum_g,
                   double* trace) {
  if (s.with_means && s.with_trace)
    channel_pass<scalar_t, true, true>(x, g, gbar, s, sq, dot, dot2, sum_x, sum_g, trace);
  else if (s.with_means)
    channel_pass<scalar_t, true, false>(x, g, gbar, s, sq, dot, dot2, sum_x, sum_g, trace);
  else if (s.with_trace)
    channel_pass<scalar_t, false, true>(x, g, gbar, s, sq, dot, dot2, sum_x, sum_g, trace);
  else
    channel_pass<scalar_t, false, false>(x, g, gbar, s, sq, dot, dot2, sum_x, sum_g, trace);
}

}  // namespace

PYPRUNE_REGISTER_CPU_KERNEL(channel_stats_kernel, &channel_stats<float>, &channel_stats<double>);

}  // namespace PYPRUNE_CPU_NAMESPACE
}  // namespace pyprune
