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

#include "info/cpu/tuning.h"
#include "info/cpu/row_binner.h"
#include "info/cpu/counting.h"

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

// Bins every value of x once, into codes [rows][N], in parallel over rows; returns true on NaN/Inf.
template <typename scalar_t>
bool bin_all(const at::Tensor& x, const Bins& b, const InfoShape& shape, uint16_t* codes) {
  const int64_t rows = shape.sequences * shape.steps, n = shape.neurons;
  const scalar_t* xp = x.data_ptr<scalar_t>();
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

// Permutation pass: x is binned once for all permutations (codes [rows][N]); each task recounts a
// block of neurons under a chunk of permutations, reading its block's slice of every row.
template <typename cell_t>
void permutation_pass(const uint16_t* all_codes, const Labels& lab, const InfoShape& shape,
                      const Plan& plan, const int64_t* perm_p, int64_t num_perms, int64_t perm_chunks,
                      int64_t perms_per_chunk, double unit, bool miller_madow, double* mi_p,
                      double* te_p, bool& bad_label) {
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
    for (int64_t task = 0; task < plan.blocks * perm_chunks; ++task) {
      const int64_t n0 = (task / perm_chunks) * plan.width;
      const int64_t width = std::min(plan.width, shape.neurons - n0);
      const int64_t p0 = (task % perm_chunks) * perms_per_chunk;
      const int64_t p1 = std::min(num_perms, p0 + perms_per_chunk);
      if (p0 >= p1) continue;
      auto bins_of = [&](int64_t s, int64_t t, uint16_t* out) {
        const uint16_t* c = all_codes + (s * shape.steps + t) * shape.neurons + n0;
        std::copy(c, c + width, out);
        return false;
      };
      for (int64_t p = p0; p < p1; ++p) {
        std::fill(t_local.begin(), t_local.end(), 0u);
        std::fill(j_local.begin(), j_local.end(), 0u);
        const int64_t* perm = perm_p + p * shape.sequences;
        count_rows(shape, 0, shape.sequences, width, lab, bins_of,
                   [perm](int64_t s) { return perm[s]; }, t_local.data(), j_local.data(),
                   scratch, no_bad_x, any_bad_label);
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
  const InfoInputs in = info_inputs(x_in, labels_in, edges_in, uniform, num_classes, history);
  const InfoShape& shape = in.shape;
  auto opts = at::TensorOptions().dtype(at::kLong);
  at::Tensor joint = at::zeros({shape.neurons, shape.bins, shape.classes}, opts);
  at::Tensor transitions = at::zeros({shape.neurons, shape.states, shape.bins, shape.classes}, opts);
  add_counts_cpu(in, uniform, joint, transitions);
  return {joint, transitions};
}

void info_counts_add_cpu(at::Tensor& joint, at::Tensor& transitions, const at::Tensor& x_in,
                         const c10::optional<at::Tensor>& labels_in, const at::Tensor& edges_in,
                         bool uniform, int64_t history) {
  const InfoInputs in = add_counts_inputs(joint, transitions, x_in, labels_in, edges_in, uniform, history);
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
  const CountInputs in = count_inputs(joint_in, transitions_in, log_base);
  const at::Tensor &joint = in.joint, &transitions = in.transitions;
  const int64_t n = in.shape.neurons, states = in.shape.states;
  const int32_t bins = in.shape.bins, classes = in.shape.classes;
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
  const InfoInputs in = info_inputs(x_in, labels_in, edges_in, uniform, num_classes, history);
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
// for permutation p, the sequence whose labels sequence s gets. x is binned once (uint16 codes,
// half the size of float32 x) and recounted per permutation in blocks of neurons as wide as the
// plain count's, so one permutation costs about one count.
std::tuple<at::Tensor, at::Tensor> info_permutation_null_cpu(
    const at::Tensor& x_in, const c10::optional<at::Tensor>& labels_in, const at::Tensor& edges_in, bool uniform,
    int64_t num_classes, int64_t history, const at::Tensor& perms_in, double log_base,
    bool miller_madow) {
  const PermutationInputs checked =
      permutation_inputs(x_in, labels_in, edges_in, uniform, num_classes, history, perms_in, log_base);
  const InfoInputs& in = checked.in;
  const at::Tensor& x = in.x;
  const InfoShape& shape = in.shape;
  const at::Tensor& perms = checked.perms;
  const Labels lab = make_labels(in.labels, shape);
  const int64_t num_perms = perms.size(0);
  const int64_t rows = shape.sequences * shape.steps;
  const Bins b = make_bins(in.edges, uniform, shape);
  Plan plan = plan_tasks(shape);
  plan.seq_chunks = 1;
  const int64_t perm_chunks =
      std::max<int64_t>(1, std::min(num_perms, ceil_div(4 * num_threads(), std::max<int64_t>(plan.blocks, 1))));
  const int64_t perms_per_chunk = ceil_div(std::max<int64_t>(num_perms, 1), perm_chunks);
  auto opts = at::TensorOptions().dtype(at::kDouble);
  at::Tensor mi_null = at::empty({num_perms, shape.neurons}, opts);
  at::Tensor te_null = at::zeros({num_perms, shape.neurons}, opts);
  const double unit = 1.0 / std::log(log_base);
  bool bad_x = false, bad_label = false;
  std::vector<uint16_t> codes(static_cast<size_t>(rows * shape.neurons));
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "info_permutation_null",
                             [&] { bad_x = bin_all<scalar_t>(x, b, shape, codes.data()); });
  if (!bad_x)
    dispatch_cell_type(shape, [&](auto cell) {
      permutation_pass<decltype(cell)>(codes.data(), lab, shape, plan, perms.data_ptr<int64_t>(),
                                       num_perms, perm_chunks, perms_per_chunk, unit, miller_madow,
                                       mi_null.data_ptr<double>(), te_null.data_ptr<double>(),
                                       bad_label);
    });
  raise_on_bad_input(bad_x, bad_label, shape.classes);
  return {mi_null, te_null};
}

}  // namespace PYPRUNE_CPU_LEVEL
}  // namespace pyprune
