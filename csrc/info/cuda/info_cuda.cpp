// CUDA implementations of the information ops: argument checks, output allocation and the stream,
// around the pure-CUDA kernels of info_kernels.cu. Built only when setup.py builds CUDA.
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>
#include <torch/types.h>

#include "info/cuda/info_kernels.h"
#include "info/info_args.h"

namespace pyprune {
namespace {

cuda::LabelView label_view(const c10::optional<at::Tensor>& labels, const InfoShape& shape,
                           const int64_t* perm = nullptr) {
  cuda::LabelView view{nullptr, 0, 0, perm};
  parse_labels(labels, shape, view.data, view.seq_stride, view.step_stride);
  return view;
}

// Transition and side counts of x (side = the steps no transition starts from), raising on bad
// input; perm (optional) reassigns the labels of sequences. x may be uint16 bin codes, with the
// edges 0..B (unit_edges).
std::pair<at::Tensor, at::Tensor> count_cuda(const at::Tensor& x, const c10::optional<at::Tensor>& labels,
                                             const at::Tensor& edges, bool uniform,
                                             const InfoShape& shape, const int64_t* perm) {
  auto opts = x.options().dtype(at::kLong);
  at::Tensor transitions = at::zeros({shape.neurons, shape.transition_cells()}, opts);
  at::Tensor side = at::zeros({shape.neurons, shape.joint_cells()}, opts);
  at::Tensor flags = at::zeros({2}, x.options().dtype(at::kInt));
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  const cuda::LabelView view = label_view(labels, shape, perm);
  if (x.scalar_type() == at::kUInt16) {
    cuda::info_counts<uint16_t>(static_cast<const uint16_t*>(x.data_ptr()), view,
                                edges.data_ptr<double>(), uniform, shape,
                                transitions.data_ptr<int64_t>(), side.data_ptr<int64_t>(),
                                flags.data_ptr<int>(), stream);
  } else {
    AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "info_counts_cuda", [&] {
      cuda::info_counts<scalar_t>(x.data_ptr<scalar_t>(), view, edges.data_ptr<double>(), uniform,
                                  shape, transitions.data_ptr<int64_t>(), side.data_ptr<int64_t>(),
                                  flags.data_ptr<int>(), stream);
    });
  }
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  const at::Tensor host_flags = flags.cpu();
  raise_on_bad_input(host_flags[0].item<int>() != 0, host_flags[1].item<int>() != 0,
                     shape.classes);
  return {transitions, side};
}

// (x_t, y_t) counts = transitions summed over the next bin and the older history digits + side.
at::Tensor fold_joint(const at::Tensor& transitions, const at::Tensor& side, const InfoShape& shape) {
  at::Tensor joint = side.view({shape.neurons, shape.bins, shape.classes});
  if (shape.history == 0) return joint;
  return joint + transitions.view({shape.neurons, shape.states / shape.bins, shape.bins, shape.bins,
                                   shape.classes})
                     .sum({1, 3});
}

std::tuple<at::Tensor, at::Tensor> neuron_range_cuda(const at::Tensor& x_in) {
  check_float(x_in, "x");
  PYPRUNE_CHECK_VALUE(x_in.dim() >= 1, "'x' must have at least one dimension");
  const c10::cuda::CUDAGuard guard(x_in.device());
  const at::Tensor x = x_in.reshape({-1, x_in.size(-1)});
  PYPRUNE_CHECK_VALUE(x.size(0) > 0 || x.size(1) == 0, "'x' has no samples (shape ", x_in.sizes(), ")");
  PYPRUNE_CHECK_VALUE(x.size(1) == 0 || at::isfinite(x).all().item<bool>(), "'x' contains NaN or Inf");
  if (x.size(1) == 0) {
    auto empty = x.new_empty({0}, x.options().dtype(at::kDouble));
    return {empty, empty.clone()};
  }
  auto [lo, hi] = at::aminmax(x, 0);
  return {lo.to(at::kDouble), hi.to(at::kDouble)};
}

std::tuple<at::Tensor, at::Tensor> info_counts_cuda(const at::Tensor& x_in,
                                                    const c10::optional<at::Tensor>& labels_in,
                                                    const at::Tensor& edges_in, bool uniform,
                                                    int64_t num_classes, int64_t history) {
  const c10::cuda::CUDAGuard guard(x_in.device());
  const InfoInputs in = info_inputs(x_in, labels_in, edges_in, uniform, num_classes, history);
  const InfoShape& shape = in.shape;
  auto [transitions, side] = count_cuda(in.x, in.labels, in.edges, uniform, shape, nullptr);
  return {fold_joint(transitions, side, shape),
          transitions.view({shape.neurons, shape.states, shape.bins, shape.classes})};
}

void info_counts_add_cuda(at::Tensor& joint, at::Tensor& transitions, const at::Tensor& x_in,
                          const c10::optional<at::Tensor>& labels_in, const at::Tensor& edges_in,
                          bool uniform, int64_t history) {
  const c10::cuda::CUDAGuard guard(x_in.device());
  const InfoInputs in = add_counts_inputs(joint, transitions, x_in, labels_in, edges_in, uniform, history);
  auto [added, side] = count_cuda(in.x, in.labels, in.edges, uniform, in.shape, nullptr);
  joint.add_(fold_joint(added, side, in.shape));
  transitions.add_(added.view(transitions.sizes()));
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> info_scores_cuda(const at::Tensor& joint_in,
                                                                const at::Tensor& transitions_in,
                                                                double base, bool miller_madow) {
  const c10::cuda::CUDAGuard guard(joint_in.device());
  const CountInputs in = count_inputs(joint_in, transitions_in, base);
  const at::Tensor &joint = in.joint, &transitions = in.transitions;
  const InfoShape& shape = in.shape;
  auto opts = joint.options().dtype(at::kDouble);
  at::Tensor h = at::empty({shape.neurons}, opts), mi = at::empty({shape.neurons}, opts);
  at::Tensor te = at::empty({shape.neurons}, opts);
  cuda::info_scores(joint.data_ptr<int64_t>(), transitions.data_ptr<int64_t>(), shape,
                    1.0 / std::log(base), miller_madow, h.data_ptr<double>(), mi.data_ptr<double>(),
                    te.data_ptr<double>(), c10::cuda::getCurrentCUDAStream());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return {h, mi, te};
}

at::Tensor info_local_te_cuda(const at::Tensor& x_in, const c10::optional<at::Tensor>& labels_in,
                              const at::Tensor& edges_in, bool uniform, int64_t num_classes,
                              int64_t history, double base) {
  PYPRUNE_CHECK_VALUE(history >= 1, "'history' must be >= 1, got ", history);
  check_base(base);
  const c10::cuda::CUDAGuard guard(x_in.device());
  const InfoInputs in = info_inputs(x_in, labels_in, edges_in, uniform, num_classes, history);
  const at::Tensor &x = in.x, &edges = in.edges;
  const InfoShape& shape = in.shape;
  const at::Tensor transitions = count_cuda(x, in.labels, edges, uniform, shape, nullptr).first;
  at::Tensor table = at::empty_like(transitions, transitions.options().dtype(at::kDouble));
  at::Tensor out = at::empty({shape.sequences, std::max<int64_t>(shape.steps - history, 0),
                              shape.neurons}, x.options());
  const cuda::LabelView view = label_view(in.labels, shape);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "info_local_te_cuda", [&] {
    cuda::info_local_te<scalar_t>(x.data_ptr<scalar_t>(), view, edges.data_ptr<double>(), uniform,
                                  shape, transitions.data_ptr<int64_t>(), 1.0 / std::log(base),
                                  table.data_ptr<double>(), out.data_ptr<scalar_t>(),
                                  c10::cuda::getCurrentCUDAStream());
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return out;
}

at::Tensor info_bin_codes_cuda(const at::Tensor& x_in, const at::Tensor& edges_in, bool uniform) {
  const c10::cuda::CUDAGuard guard(x_in.device());
  const InfoInputs in = info_inputs(x_in, c10::nullopt, edges_in, uniform, 1, 0);
  at::Tensor codes = at::empty(in.x.sizes(), in.x.options().dtype(at::kUInt16));
  at::Tensor flags = at::zeros({1}, in.x.options().dtype(at::kInt));
  AT_DISPATCH_FLOATING_TYPES(in.x.scalar_type(), "info_bin_codes_cuda", [&] {
    cuda::info_bin_codes<scalar_t>(in.x.data_ptr<scalar_t>(), in.edges.data_ptr<double>(), uniform,
                                   in.shape, static_cast<uint16_t*>(codes.data_ptr()),
                                   flags.data_ptr<int>(), c10::cuda::getCurrentCUDAStream());
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  raise_on_bad_input(flags.item<int>() != 0, false, in.shape.classes);
  return codes;
}

// One count + score launch per permutation, all on the device: no host round trip per permutation
// beyond the bad-input flags. The codes are counted with the edges 0..B, where a code is its own
// bin, after one check that they lie below B.
std::tuple<at::Tensor, at::Tensor> info_permutation_null_cuda(
    const at::Tensor& codes_in, const c10::optional<at::Tensor>& labels_in, int64_t bins,
    int64_t num_classes, int64_t history, const at::Tensor& perms_in, double base,
    bool miller_madow) {
  const c10::cuda::CUDAGuard guard(codes_in.device());
  const PermutationInputs in =
      permutation_inputs(codes_in, labels_in, bins, num_classes, history, perms_in, base);
  const InfoShape& shape = in.shape;
  raise_on_bad_codes(in.codes.numel() > 0 && in.codes.to(at::kInt).max().item<int>() >= shape.bins,
                     shape.bins);
  const auto opts = in.codes.options().dtype(at::kDouble);
  const at::Tensor unit_edges =
      at::arange(shape.bins + 1, opts).expand({shape.neurons, shape.bins + 1}).contiguous();
  const int64_t num_perms = in.perms.size(0);
  at::Tensor mi_null = at::empty({num_perms, shape.neurons}, opts);
  at::Tensor te_null = at::empty({num_perms, shape.neurons}, opts);
  at::Tensor entropy = at::empty({shape.neurons}, opts);
  for (int64_t p = 0; p < num_perms; ++p) {
    auto [transitions, side] = count_cuda(in.codes, in.labels, unit_edges, true, shape,
                                          in.perms.data_ptr<int64_t>() + p * shape.sequences);
    const at::Tensor joint = fold_joint(transitions, side, shape).contiguous();
    cuda::info_scores(joint.data_ptr<int64_t>(), transitions.data_ptr<int64_t>(), shape,
                      1.0 / std::log(base), miller_madow, entropy.data_ptr<double>(),
                      mi_null[p].data_ptr<double>(), te_null[p].data_ptr<double>(),
                      c10::cuda::getCurrentCUDAStream());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }
  return {mi_null, te_null};
}

}  // namespace

TORCH_LIBRARY_IMPL(pyprune, CUDA, m) {
  m.impl("neuron_range", &neuron_range_cuda);
  m.impl("info_counts", &info_counts_cuda);
  m.impl("info_counts_add_", &info_counts_add_cuda);
  m.impl("info_scores", &info_scores_cuda);
  m.impl("info_local_te", &info_local_te_cuda);
  m.impl("info_bin_codes", &info_bin_codes_cuda);
  m.impl("info_permutation_null", &info_permutation_null_cuda);
}

}  // namespace pyprune
