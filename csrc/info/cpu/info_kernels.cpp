// CPU kernels of the information ops: one pass over x that bins and counts at once.
//
// Work is split into tasks of (block of W adjacent neurons) x (chunk of sequences). A thread keeps
// uint32 histograms for its W neurons (sized to stay in L2) and walks each task's rows once:
// binning a row as a vector and computing its transition cells into a tile, then counting a full
// tile eight neurons at a time (count_tile). It adds its counts into the int64 output with
// atomics when it moves to another block or ends. Integer sums do not depend on the order, so
// results are identical for any thread count.
#include "common/cpu_kernel.h"

#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <vector>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "common/binning.h"
#include "common/parallel.h"
#include "info/cpu/info_kernels.h"
#include "info/info_math.h"
#include "info/info_shape.h"

namespace pyprune {
namespace PYPRUNE_CPU_NAMESPACE {
namespace {

#include "info/cpu/tuning.h"
#include "info/cpu/row_binner.h"
#include "info/cpu/counting.h"

// Second pass of local TE: looks every transition up in the per-neuron table [N][states*B*K].
template <typename scalar_t>
void local_te_pass(const scalar_t* xp, const Labels& lab, const Bins& b, const InfoShape& shape,
                   const double* table, scalar_t* out) {
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
// xlogx computes: most cells' counts are small (tens per cell at N = 1024, B = 16), and the
// logs were a visible part of a layer's scores.
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

// Bins every value of x once, into codes [rows][N], in parallel over rows; returns true on NaN/Inf
// (the codes are then unspecified).
template <typename scalar_t>
bool bin_all(const scalar_t* xp, const Bins& b, const InfoShape& shape, uint16_t* codes) {
  const int64_t rows = shape.sequences * shape.steps, n = shape.neurons;
  bool any_bad_x = false;
#pragma omp parallel num_threads(num_threads()) reduction(|| : any_bad_x)
  {
    RowBinner binner(b, n);
    binner.set_block(0, n);
#pragma omp for schedule(static)
    for (int64_t r = 0; r < rows; ++r) any_bad_x |= binner(xp + r * n, codes + r * n);
  }
  return any_bad_x;
}

// Permutation pass over the bin codes [rows][N] of x: each task recounts one block of neurons
// under one permutation, reading its block's slice of every row. One permutation a task: tasks
// share no data worth keeping in cache (every one streams its block's codes), and small tasks
// leave little idle time at the end of a call, which a chunked permutation test pays per call.
template <typename cell_t>
void permutation_pass(const uint16_t* all_codes, const Labels& lab, const InfoShape& shape,
                      const Plan& plan, const int64_t* perm_p, int64_t num_perms, double unit,
                      bool miller_madow, double* mi_p, double* te_p, bool& bad_label) {
  const int64_t history = shape.history;
  const int64_t tcells = shape.transition_cells(), jcells = shape.joint_cells();
  const XLogXTable& xlogx_table = XLogXTable::get();
  bool any_bad_label = false;
#pragma omp parallel num_threads(num_threads()) reduction(|| : any_bad_label)
  {
    std::vector<uint32_t> t_local(plan.width * tcells), j_local(plan.width * jcells);
    CountScratch<cell_t> scratch(shape.history, plan.width);
    bool no_bad_x = false;
#pragma omp for schedule(dynamic, 1)
    for (int64_t task = 0; task < plan.blocks * num_perms; ++task) {
      const int64_t n0 = (task / num_perms) * plan.width;
      const int64_t width = std::min(plan.width, shape.neurons - n0);
      const int64_t p = task % num_perms;
      auto bins_of = [&](int64_t s, int64_t t, uint16_t* out) {
        const uint16_t* c = all_codes + (s * shape.steps + t) * shape.neurons + n0;
        std::copy(c, c + width, out);
        return false;
      };
      std::fill(t_local.begin(), t_local.end(), 0u);
      std::fill(j_local.begin(), j_local.end(), 0u);
      const int64_t* perm = perm_p + p * shape.sequences;
      count_rows(shape, 0, shape.sequences, width, lab, bins_of,
                 [perm](int64_t s) { return perm[s]; }, t_local.data(), j_local.data(), scratch,
                 no_bad_x, any_bad_label);
      for (int64_t w = 0; w < width; ++w) {
        uint32_t* tw = t_local.data() + w * tcells;
        uint32_t* jw = j_local.data() + w * jcells;
        if (history > 0) fold_joint(shape, tw, jw);
        double h, mi;
        entropy_and_mi(jw, shape.bins, shape.classes, miller_madow, &h, &mi, xlogx_table);
        mi_p[p * shape.neurons + n0 + w] = unit * mi;
        if (history > 0)
          te_p[p * shape.neurons + n0 + w] =
              unit * transfer_entropy(tw, shape.states, shape.bins, shape.classes, miller_madow,
                                      xlogx_table);
      }
    }
  }
  bad_label = any_bad_label;
}

// Each thread keeps its own min, max and finiteness rows, merged at the end: rows next to each
// other in one shared buffer put both threads' neurons on one cache line, written every row.
template <typename scalar_t>
bool neuron_range(const scalar_t* xp, int64_t rows, int64_t n, double* lp, double* hp) {
  constexpr scalar_t kInf = std::numeric_limits<scalar_t>::infinity();
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

template <typename scalar_t>
InfoFlags info_counts(const scalar_t* x, const Labels& labels, const Bins& b, const InfoShape& shape,
                      int64_t* transitions, int64_t* joint) {
  InfoFlags flags{};
  dispatch_cell_type(shape, [&](auto cell) {
    flags = count_all<scalar_t, decltype(cell)>(x, labels, b, shape, transitions, joint);
  });
  return flags;
}

void info_scores(const int64_t* jp, const int64_t* tp, const InfoShape& shape, double unit,
                 bool miller_madow, double* hp, double* mp, double* ep) {
  const int64_t states = shape.states;
  const int32_t bins = shape.bins, classes = shape.classes;
  const XLogXTable& xlogx_table = XLogXTable::get();
#pragma omp parallel for schedule(dynamic, 4) num_threads(num_threads())
  for (int64_t i = 0; i < shape.neurons; ++i) {
    entropy_and_mi(jp + i * bins * classes, bins, classes, miller_madow, hp + i, mp + i,
                   xlogx_table);
    hp[i] *= unit;
    mp[i] *= unit;
    if (states > 0)
      ep[i] = unit * transfer_entropy(tp + i * states * bins * classes, states, bins, classes,
                                      miller_madow, xlogx_table);
  }
}

// Local TE: a per-neuron table of every transition cell's pointwise TE, then a pass that looks
// each transition of x up in it.
template <typename scalar_t>
void local_te(const scalar_t* x, const Labels& labels, const Bins& b, const InfoShape& shape,
              const int64_t* transitions, double unit, scalar_t* out) {
  const int64_t tcells = shape.transition_cells();
  std::vector<double> table(static_cast<size_t>(shape.neurons * tcells));
  double* table_p = table.data();
#pragma omp parallel for num_threads(num_threads())
  for (int64_t n = 0; n < shape.neurons; ++n) {
    local_transfer_entropy_table(transitions + n * tcells, shape.states, shape.bins, shape.classes,
                                 table_p + n * tcells);
    for (int64_t i = 0; i < tcells; ++i) table_p[n * tcells + i] *= unit;
  }
  local_te_pass<scalar_t>(x, labels, b, shape, table_p, out);
}

// True when a code is >= bins: a codes tensor not made by bin_all for these bins. Checked before
// counting, since the counts index histograms by code.
bool codes_out_of_range(const uint16_t* codes, int64_t count, int32_t bins) {
  uint16_t top = 0;
#pragma omp parallel for simd num_threads(threads_for(count)) reduction(max : top)
  for (int64_t i = 0; i < count; ++i) top = std::max(top, codes[i]);
  return count > 0 && top >= bins;
}

// Null distribution of MI and TE under label permutations across sequences, from the bin codes
// of x (bin_codes: x is binned once for all the calls of a permutation test), recounted per
// permutation in blocks of neurons as wide as the plain count's, so one permutation costs about
// one count. bad_x: a code out of range.
InfoFlags permutation_null(const uint16_t* codes, const Labels& labels, const InfoShape& shape,
                           const int64_t* perms, int64_t num_perms, double unit, bool miller_madow,
                           double* mi, double* te) {
  InfoFlags flags{};
  flags.bad_x = codes_out_of_range(codes, shape.sequences * shape.steps * shape.neurons, shape.bins);
  if (flags.bad_x) return flags;
  Plan plan = plan_tasks(shape);
  plan.seq_chunks = 1;
  dispatch_cell_type(shape, [&](auto cell) {
    permutation_pass<decltype(cell)>(codes, labels, shape, plan, perms, num_perms, unit,
                                     miller_madow, mi, te, flags.bad_label);
  });
  return flags;
}

}  // namespace

PYPRUNE_REGISTER_CPU_KERNEL(neuron_range_kernel, &neuron_range<float>, &neuron_range<double>);
PYPRUNE_REGISTER_CPU_KERNEL(info_counts_kernel, &info_counts<float>, &info_counts<double>);
PYPRUNE_REGISTER_CPU_KERNEL(info_scores_kernel, &info_scores);
PYPRUNE_REGISTER_CPU_KERNEL(local_te_kernel, &local_te<float>, &local_te<double>);
PYPRUNE_REGISTER_CPU_KERNEL(bin_codes_kernel, &bin_all<float>, &bin_all<double>);
PYPRUNE_REGISTER_CPU_KERNEL(permutation_null_kernel, &permutation_null);

}  // namespace PYPRUNE_CPU_NAMESPACE
}  // namespace pyprune
