// CPU entry points of the single-shot score and the global top-k masks: the shared checks, the
// outputs, the dtype, then the kernels of the CPU capability in use (cpu/topk_kernels.cpp).
// Compiled once.
#include <torch/library.h>
#include <torch/types.h>

#include <vector>

#include "common/cpu_dispatch.h"
#include "topk/cpu/topk_kernels.h"
#include "topk/topk_args.h"

namespace pyprune {
namespace {

at::Tensor param_scores_cpu(const at::Tensor& theta_in, const at::Tensor& grad_in, double alpha) {
  check_params({theta_in}, {grad_in});
  check_alpha(alpha);
  const at::Tensor theta = theta_in.contiguous(), grad = grad_in.contiguous();
  at::Tensor out = at::empty_like(theta, at::MemoryFormat::Contiguous);
  const auto& kernel = PYPRUNE_CPU_KERNEL(param_scores_kernel);
  AT_DISPATCH_FLOATING_TYPES(theta.scalar_type(), "param_scores", [&] {
    kernel.of<scalar_t>()(theta.data_ptr<scalar_t>(), grad.data_ptr<scalar_t>(), theta.numel(),
                          static_cast<scalar_t>(alpha), out.data_ptr<scalar_t>());
  });
  return out;
}

std::vector<at::Tensor> global_topk_masks_cpu(at::TensorList thetas_in, at::TensorList grads_in,
                                              double alpha, int64_t keep) {
  check_params(thetas_in, grads_in);  // first, in the CUDA binding's order: no copy of bad input
  check_alpha(alpha);
  check_keep(thetas_in, keep);
  if (thetas_in.empty()) return {};
  std::vector<at::Tensor> thetas, grads, masks;
  for (const auto& t : thetas_in) thetas.push_back(t.contiguous());
  for (const auto& g : grads_in) grads.push_back(g.contiguous());
  std::vector<int64_t> sizes;
  std::vector<bool*> mask_data;
  for (const auto& t : thetas) {
    masks.push_back(at::empty(t.sizes(), t.options().dtype(at::kBool)));
    sizes.push_back(t.numel());
    mask_data.push_back(masks.back().data_ptr<bool>());
  }
  const auto& kernel = PYPRUNE_CPU_KERNEL(topk_masks_kernel);
  bool finite = true;
  AT_DISPATCH_FLOATING_TYPES(thetas[0].scalar_type(), "global_topk_masks", [&] {
    std::vector<const scalar_t*> theta_data, grad_data;
    for (size_t i = 0; i < thetas.size(); ++i) {
      theta_data.push_back(thetas[i].data_ptr<scalar_t>());
      grad_data.push_back(grads[i].data_ptr<scalar_t>());
    }
    finite = kernel.of<scalar_t>()(static_cast<int64_t>(thetas.size()), theta_data.data(),
                                   grad_data.data(), sizes.data(), static_cast<scalar_t>(alpha),
                                   keep, mask_data.data());
  });
  PYPRUNE_CHECK_VALUE(finite, "'params' or 'grads' contains NaN or Inf");
  return masks;
}

}  // namespace

TORCH_LIBRARY_IMPL(pyprune, CPU, m) {
  m.impl("param_scores", &param_scores_cpu);
  m.impl("global_topk_masks", &global_topk_masks_cpu);
}

}  // namespace pyprune
