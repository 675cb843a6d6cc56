// Argument parsing shared by the CPU and CUDA bindings of the information ops.
#pragma once

#include <torch/types.h>

#include <cmath>
#include <limits>

#include "common/checks.h"
#include "common/limits.h"
#include "info/info_shape.h"

namespace pyprune {

// The shape of S sequences of T steps of N neurons, binned into `bins`, with these classes and
// history: the histograms' sizes, checked against the limits.
inline InfoShape info_shape(int64_t sequences, int64_t steps, int64_t neurons, int64_t bins,
                            int64_t num_classes, int64_t history) {
  PYPRUNE_CHECK_VALUE(bins >= 2, "'bins' must be >= 2, got ", bins);
  PYPRUNE_CHECK_VALUE(num_classes >= 1, "'num_classes' must be >= 1, got ", num_classes);
  PYPRUNE_CHECK_VALUE(history >= 0, "'history' must be >= 0, got ", history);
  PYPRUNE_CHECK_VALUE(bins <= kMaxBins, "'bins' must be <= ", kMaxBins, ", got ", bins);
  PYPRUNE_CHECK_VALUE(num_classes <= std::numeric_limits<int32_t>::max() &&
                          history <= std::numeric_limits<int32_t>::max(),
                      "'num_classes' and 'history' must fit in int32");
  const double cells = std::pow(static_cast<double>(bins), static_cast<double>(history) + 1) * num_classes;
  PYPRUNE_CHECK_VALUE(cells <= std::ldexp(1.0, kMaxCellsLog2), "bins^(history+1) * num_classes = ", cells,
                      " histogram cells per neuron is too many (limit 2^", kMaxCellsLog2, ")");
  InfoShape shape{sequences, steps, neurons, static_cast<int32_t>(bins),
                  static_cast<int32_t>(num_classes), static_cast<int32_t>(history), 0};
  shape.states = history_states(shape.bins, shape.history);
  return shape;
}

inline InfoShape make_shape(const at::Tensor& x, const at::Tensor& edges, int64_t num_classes,
                            int64_t history) {
  check_float(x, "x");
  check_dim(x, 3, "x");
  check_dtype(edges, at::kDouble, "edges");
  check_dim(edges, 2, "edges");
  PYPRUNE_CHECK_VALUE(edges.size(0) == x.size(2), "'edges' must have one row per neuron (",
                      x.size(2), "), got ", edges.size(0));
  return info_shape(x.size(0), x.size(1), x.size(2), edges.size(1) - 1, num_classes, history);
}

// Edges finite and non-decreasing along each neuron's row: the binning relies on both. With
// uniform (equal-width) binning the kernels use only the first and last edge of a row, so the
// interior edges must be the equal steps between them: anything else would be binned silently
// by other edges than the ones given.
inline void check_edges(const at::Tensor& edges, bool uniform) {
  PYPRUNE_CHECK_VALUE(at::isfinite(edges).all().item<bool>(), "'edges' contains NaN or Inf");
  if (edges.size(0) == 0) return;
  const int64_t bins = edges.size(1) - 1;
  PYPRUNE_CHECK_VALUE((edges.narrow(1, 1, bins) >= edges.narrow(1, 0, bins)).all().item<bool>(),
                      "'edges' must be non-decreasing along each row");
  if (!uniform) return;
  const at::Tensor lo = edges.narrow(1, 0, 1), span = edges.narrow(1, bins, 1) - lo;
  const at::Tensor steps = at::arange(bins + 1, edges.options()) / static_cast<double>(bins);
  const at::Tensor off = (edges - (lo + span * steps)).abs();
  PYPRUNE_CHECK_VALUE((off <= span * 1e-9).all().item<bool>(),
                      "'edges' must be equally spaced in each row for equal-width binning (uniform=True; "
                      "equal_width=True in InfoAccumulator): the kernels bin by the first and last edge only");
}

// Labels [S] (one per sequence) or [S, T] int64, or none (every label 0).
inline void parse_labels(const c10::optional<at::Tensor>& labels, const InfoShape& shape,
                         const int64_t*& data, int64_t& seq_stride, int64_t& step_stride) {
  data = nullptr;
  seq_stride = step_stride = 0;
  if (!labels) return;
  const at::Tensor& y = *labels;
  check_dtype(y, at::kLong, "labels");
  PYPRUNE_CHECK_VALUE(
      (y.dim() == 1 || (y.dim() == 2 && y.size(1) == shape.steps)) && y.size(0) == shape.sequences,
      "'labels' must be [S] or [S, T] = [", shape.sequences, ", ", shape.steps, "], got ",
      y.sizes());
  PYPRUNE_CHECK_VALUE(y.is_contiguous(), "'labels' must be contiguous");
  data = y.data_ptr<int64_t>();
  seq_stride = y.dim() == 2 ? shape.steps : 1;
  step_stride = y.dim() == 2 ? 1 : 0;
}

// The inputs of a counting op, contiguous, on one device, with their shape.
struct InfoInputs {
  at::Tensor x, edges;
  c10::optional<at::Tensor> labels;
  InfoShape shape;
};

inline InfoInputs info_inputs(const at::Tensor& x, const c10::optional<at::Tensor>& labels,
                              const at::Tensor& edges, bool uniform, int64_t num_classes, int64_t history) {
  if (labels) check_same_device(*labels, x, "labels", "x");
  check_same_device(edges, x, "edges", "x");
  InfoInputs in{x.contiguous(), edges.contiguous(), c10::nullopt, {}};
  in.shape = make_shape(in.x, in.edges, num_classes, history);
  check_edges(in.edges, uniform);
  if (labels) in.labels = labels->contiguous();
  return in;
}

// The inputs of an op that adds the counts of x to joint_counts [N, B, K] and transition_counts
// [N, B^history (0 when history is 0), B, K] in place: int64, contiguous, on x's device.
inline InfoInputs add_counts_inputs(const at::Tensor& joint, const at::Tensor& transitions,
                                    const at::Tensor& x, const c10::optional<at::Tensor>& labels,
                                    const at::Tensor& edges, bool uniform, int64_t history) {
  check_dtype(joint, at::kLong, "joint_counts");
  check_dtype(transitions, at::kLong, "transition_counts");
  check_dim(joint, 3, "joint_counts");
  check_dim(transitions, 4, "transition_counts");
  check_same_device(joint, x, "joint_counts", "x");
  check_same_device(transitions, x, "transition_counts", "x");
  PYPRUNE_CHECK_VALUE(joint.is_contiguous(), "'joint_counts' must be contiguous");
  PYPRUNE_CHECK_VALUE(transitions.is_contiguous(), "'transition_counts' must be contiguous");
  InfoInputs in = info_inputs(x, labels, edges, uniform, joint.size(2), history);
  const InfoShape& shape = in.shape;
  PYPRUNE_CHECK_VALUE(joint.size(0) == shape.neurons && joint.size(1) == shape.bins,
                      "'joint_counts' must be [N, B, K] = [", shape.neurons, ", ", shape.bins,
                      ", K], got ", joint.sizes());
  PYPRUNE_CHECK_VALUE(transitions.size(0) == shape.neurons && transitions.size(1) == shape.states &&
                          transitions.size(2) == shape.bins && transitions.size(3) == shape.classes,
                      "'transition_counts' must be [N, B^history, B, K] = [", shape.neurons, ", ",
                      shape.states, ", ", shape.bins, ", ", shape.classes, "], got ", transitions.sizes());
  return in;
}

// perms [P, S] int64 with entries in [0, S): sequence s takes the labels of sequence perms[p, s].
inline void check_perms(const at::Tensor& perms, const InfoShape& shape) {
  check_dtype(perms, at::kLong, "perms");
  check_dim(perms, 2, "perms");
  PYPRUNE_CHECK_VALUE(perms.size(1) == shape.sequences, "'perms' must be [P, S] with S = ",
                      shape.sequences, ", got ", perms.sizes());
  PYPRUNE_CHECK_VALUE(perms.numel() == 0 || (perms.min().item<int64_t>() >= 0 &&
                                             perms.max().item<int64_t>() < shape.sequences),
                      "'perms' entries must lie in [0, S)");
}

// Below 1 every score changes sign; 1 and Inf make them infinite or zero.
inline void check_base(double base) {
  PYPRUNE_CHECK_VALUE(std::isfinite(base) && base > 1, "'base' must be a finite number > 1, got ", base);
}

// The permutation test shuffles the labels: it has nothing to do without them.
inline void check_permuted_labels(const c10::optional<at::Tensor>& labels) {
  PYPRUNE_CHECK_VALUE(labels.has_value(), "'labels' is required: the permutation test shuffles them");
}

// The permutation null's inputs, checked in one order for the CPU and the CUDA binding, so a bad
// input gets the same error on every device: the bin codes [S, T, N] of x (uint16, contiguous;
// their range is checked by the kernels, before counting), the labels and the permutations.
struct PermutationInputs {
  at::Tensor codes;
  c10::optional<at::Tensor> labels;
  InfoShape shape;
  at::Tensor perms;
};

inline PermutationInputs permutation_inputs(const at::Tensor& codes, const c10::optional<at::Tensor>& labels,
                                            int64_t bins, int64_t num_classes, int64_t history,
                                            const at::Tensor& perms_in, double base) {
  check_permuted_labels(labels);
  check_base(base);
  check_dtype(codes, at::kUInt16, "codes");
  check_dim(codes, 3, "codes");
  check_same_device(*labels, codes, "labels", "codes");
  PermutationInputs in{codes.contiguous(), labels->contiguous(), {}, perms_in.contiguous()};
  in.shape = info_shape(codes.size(0), codes.size(1), codes.size(2), bins, num_classes, history);
  check_same_device(in.perms, in.codes, "perms", "codes");
  check_perms(in.perms, in.shape);
  return in;
}

// Counts handed to info_scores must be counts.
inline void check_counts(const at::Tensor& counts, const char* name) {
  PYPRUNE_CHECK_VALUE(counts.numel() == 0 || counts.min().item<int64_t>() >= 0, "'", name,
                      "' has negative entries");
}

// The inputs of the scores op: joint_counts [N, B, K] and transition_counts [N, states, B, K]
// (states 0: no TE), int64, non-negative, on one device, contiguous; with the shape they give.
struct CountInputs {
  at::Tensor joint, transitions;
  InfoShape shape;
};

inline CountInputs count_inputs(const at::Tensor& joint, const at::Tensor& transitions, double base) {
  check_dtype(joint, at::kLong, "joint_counts");
  check_dtype(transitions, at::kLong, "transition_counts");
  check_dim(joint, 3, "joint_counts");
  check_dim(transitions, 4, "transition_counts");
  check_same_device(transitions, joint, "transition_counts", "joint_counts");
  check_base(base);
  PYPRUNE_CHECK_VALUE(transitions.size(0) == joint.size(0) && transitions.size(2) == joint.size(1) &&
                          transitions.size(3) == joint.size(2),
                      "'transition_counts' ", transitions.sizes(), " does not match 'joint_counts' ",
                      joint.sizes());
  check_counts(joint, "joint_counts");
  check_counts(transitions, "transition_counts");
  return {joint.contiguous(), transitions.contiguous(),
          InfoShape{0, 0, joint.size(0), static_cast<int32_t>(joint.size(1)),
                    static_cast<int32_t>(joint.size(2)), 0, transitions.size(1)}};
}

inline void raise_on_bad_codes(bool bad_codes, int64_t bins) {
  PYPRUNE_CHECK_VALUE(!bad_codes, "'codes' must lie in [0, bins) = [0, ", bins,
                      "): the codes info_bin_codes gives for edges of that many bins");
}

inline void raise_on_bad_input(bool bad_x, bool bad_label, int64_t classes) {
  PYPRUNE_CHECK_VALUE(!bad_x, "'x' contains NaN or Inf");
  PYPRUNE_CHECK_VALUE(!bad_label, "'labels' must lie in [0, num_classes) = [0, ", classes, ")");
}

}  // namespace pyprune
