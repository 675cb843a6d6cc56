// CPU entry points of the information ops: the shared checks (info_args.h), the outputs, the
// dtype, then the kernels of the CPU capability in use (cpu/info_kernels.cpp), and the errors for
// the bad input they report. Compiled once.
#include <torch/library.h>
#include <torch/types.h>

#include <cmath>

#include "common/checks.h"
#include "common/cpu_dispatch.h"
#include "info/cpu/info_kernels.h"
#include "info/info_args.h"

namespace pyprune {
namespace {

Labels make_labels(const c10::optional<at::Tensor>& labels, const InfoShape& shape) {
  Labels out;
  parse_labels(labels, shape, out.data, out.seq_stride, out.step_stride);
  return out;
}

Bins make_bins(const at::Tensor& edges, bool uniform, const InfoShape& shape) {
  return Bins{edges.data_ptr<double>(), uniform, shape.bins};
}

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
  const auto& kernel = PYPRUNE_CPU_KERNEL(neuron_range_kernel);
  bool bad = false;
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "neuron_range", [&] {
    bad = kernel.of<scalar_t>()(x.data_ptr<scalar_t>(), rows, n, lo.data_ptr<double>(), hi.data_ptr<double>());
  });
  PYPRUNE_CHECK_VALUE(!bad, "'x' contains NaN or Inf");
  return {lo, hi};
}

// Adds the counts of x to joint_counts [N, B, K] and transition_counts [N, states, B, K] (int64,
// contiguous, on the CPU), in place; raises on bad input after every count was added.
void add_counts_cpu(const InfoInputs& in, bool uniform, at::Tensor& joint, at::Tensor& transitions) {
  const InfoShape& shape = in.shape;
  const auto& kernel = PYPRUNE_CPU_KERNEL(info_counts_kernel);
  InfoFlags flags{};
  AT_DISPATCH_FLOATING_TYPES(in.x.scalar_type(), "info_counts", [&] {
    flags = kernel.of<scalar_t>()(in.x.data_ptr<scalar_t>(), make_labels(in.labels, shape),
                                  make_bins(in.edges, uniform, shape), shape,
                                  transitions.data_ptr<int64_t>(), joint.data_ptr<int64_t>());
  });
  raise_on_bad_input(flags.bad_x, flags.bad_label, shape.classes);
}

// The counts of checked inputs, from zero.
std::tuple<at::Tensor, at::Tensor> counts_of(const InfoInputs& in, bool uniform) {
  const InfoShape& shape = in.shape;
  auto opts = at::TensorOptions().dtype(at::kLong);
  at::Tensor joint = at::zeros({shape.neurons, shape.bins, shape.classes}, opts);
  at::Tensor transitions = at::zeros({shape.neurons, shape.states, shape.bins, shape.classes}, opts);
  add_counts_cpu(in, uniform, joint, transitions);
  return {joint, transitions};
}

std::tuple<at::Tensor, at::Tensor> info_counts_cpu(const at::Tensor& x_in,
                                                   const c10::optional<at::Tensor>& labels_in,
                                                   const at::Tensor& edges_in, bool uniform,
                                                   int64_t num_classes, int64_t history) {
  return counts_of(info_inputs(x_in, labels_in, edges_in, uniform, num_classes, history), uniform);
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
  const int64_t n = in.shape.neurons;
  auto opts = at::TensorOptions().dtype(at::kDouble);
  at::Tensor h = at::empty({n}, opts), mi = at::empty({n}, opts), te = at::zeros({n}, opts);
  PYPRUNE_CPU_KERNEL(info_scores_kernel)(in.joint.data_ptr<int64_t>(), in.transitions.data_ptr<int64_t>(),
                                         in.shape, 1.0 / std::log(log_base), miller_madow,
                                         h.data_ptr<double>(), mi.data_ptr<double>(), te.data_ptr<double>());
  return {h, mi, te};
}

at::Tensor info_local_te_cpu(const at::Tensor& x_in, const c10::optional<at::Tensor>& labels_in,
                             const at::Tensor& edges_in, bool uniform, int64_t num_classes,
                             int64_t history, double log_base) {
  PYPRUNE_CHECK_VALUE(history >= 1, "'history' must be >= 1, got ", history);
  check_base(log_base);
  const InfoInputs in = info_inputs(x_in, labels_in, edges_in, uniform, num_classes, history);
  const InfoShape& shape = in.shape;
  const at::Tensor transitions = std::get<1>(counts_of(in, uniform));
  const int64_t out_steps = std::max<int64_t>(shape.steps - history, 0);
  at::Tensor out = at::empty({shape.sequences, out_steps, shape.neurons}, in.x.options());
  const auto& kernel = PYPRUNE_CPU_KERNEL(local_te_kernel);
  AT_DISPATCH_FLOATING_TYPES(in.x.scalar_type(), "info_local_te", [&] {
    kernel.of<scalar_t>()(in.x.data_ptr<scalar_t>(), make_labels(in.labels, shape),
                          make_bins(in.edges, uniform, shape), shape, transitions.data_ptr<int64_t>(),
                          1.0 / std::log(log_base), out.data_ptr<scalar_t>());
  });
  return out;
}

// The bin codes [S, T, N] (uint16) of x: what the permutation null counts, binned once.
at::Tensor info_bin_codes_cpu(const at::Tensor& x_in, const at::Tensor& edges_in, bool uniform) {
  const InfoInputs in = info_inputs(x_in, c10::nullopt, edges_in, uniform, 1, 0);
  at::Tensor codes = at::empty(in.x.sizes(), in.x.options().dtype(at::kUInt16));
  const auto& kernel = PYPRUNE_CPU_KERNEL(bin_codes_kernel);
  bool bad_x = false;
  AT_DISPATCH_FLOATING_TYPES(in.x.scalar_type(), "info_bin_codes", [&] {
    bad_x = kernel.of<scalar_t>()(in.x.data_ptr<scalar_t>(), make_bins(in.edges, uniform, in.shape),
                                  in.shape, static_cast<uint16_t*>(codes.data_ptr()));
  });
  raise_on_bad_input(bad_x, false, in.shape.classes);
  return codes;
}

// Null distribution of MI and TE under label permutations across sequences: perms [P, S] gives,
// for permutation p, the sequence whose labels sequence s gets.
std::tuple<at::Tensor, at::Tensor> info_permutation_null_cpu(
    const at::Tensor& codes, const c10::optional<at::Tensor>& labels, int64_t bins, int64_t num_classes,
    int64_t history, const at::Tensor& perms, double log_base, bool miller_madow) {
  const PermutationInputs in =
      permutation_inputs(codes, labels, bins, num_classes, history, perms, log_base);
  const InfoShape& shape = in.shape;
  const int64_t num_perms = in.perms.size(0);
  auto opts = at::TensorOptions().dtype(at::kDouble);
  at::Tensor mi_null = at::empty({num_perms, shape.neurons}, opts);
  at::Tensor te_null = at::zeros({num_perms, shape.neurons}, opts);
  const InfoFlags flags = PYPRUNE_CPU_KERNEL(permutation_null_kernel)(
      static_cast<const uint16_t*>(in.codes.data_ptr()), make_labels(in.labels, shape), shape,
      in.perms.data_ptr<int64_t>(), num_perms, 1.0 / std::log(log_base), miller_madow,
      mi_null.data_ptr<double>(), te_null.data_ptr<double>());
  raise_on_bad_codes(flags.bad_x, shape.bins);
  raise_on_bad_input(false, flags.bad_label, shape.classes);
  return {mi_null, te_null};
}

}  // namespace

TORCH_LIBRARY_IMPL(pyprune, CPU, m) {
  m.impl("neuron_range", &neuron_range_cpu);
  m.impl("info_counts", &info_counts_cpu);
  m.impl("info_counts_add_", &info_counts_add_cpu);
  m.impl("info_scores", &info_scores_cpu);
  m.impl("info_local_te", &info_local_te_cpu);
  m.impl("info_bin_codes", &info_bin_codes_cpu);
  m.impl("info_permutation_null", &info_permutation_null_cpu);
}

}  // namespace pyprune
