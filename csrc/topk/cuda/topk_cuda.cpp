// CUDA implementations of the single-shot score and the global top-k around the kernels of
// topk_kernels.cu. Built only when setup.py builds CUDA. The radix loop is the host's
// (radix_select.h, shared with the CPU): one small histogram copy per digit.
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>
#include <torch/types.h>

#include <cmath>

#include "topk/cuda/topk_kernels.h"
#include "topk/radix_select.h"
#include "topk/topk_args.h"

namespace pyprune {
namespace {

at::Tensor param_scores_cuda(const at::Tensor& theta_in, const at::Tensor& grad_in, double alpha) {
  check_params({theta_in}, {grad_in});
  check_alpha(alpha);
  const c10::cuda::CUDAGuard guard(theta_in.device());
  const at::Tensor theta = theta_in.contiguous(), grad = grad_in.contiguous();
  at::Tensor out = at::empty_like(theta, at::MemoryFormat::Contiguous);
  AT_DISPATCH_FLOATING_TYPES(theta.scalar_type(), "param_scores_cuda", [&] {
    cuda::param_scores<scalar_t>(theta.data_ptr<scalar_t>(), grad.data_ptr<scalar_t>(),
                                 theta.numel(), alpha, out.data_ptr<scalar_t>(),
                                 c10::cuda::getCurrentCUDAStream());
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return out;
}

template <typename scalar_t>
std::vector<at::Tensor> topk_masks_cuda(const std::vector<at::Tensor>& thetas,
                                        const std::vector<at::Tensor>& grads, double alpha,
                                        int64_t keep) {
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  auto long_opts = thetas[0].options().dtype(at::kLong);
  at::Tensor hist = at::empty({kRadixBins}, long_opts);
  at::Tensor flags = at::zeros({1}, thetas[0].options().dtype(at::kInt));
  auto count_digits = [&](uint64_t prefix, int fixed_bits, int shift, int64_t* host_hist) {
    hist.zero_();
    for (size_t i = 0; i < thetas.size(); ++i)
      cuda::radix_histogram<scalar_t>(thetas[i].data_ptr<scalar_t>(), grads[i].data_ptr<scalar_t>(),
                                      thetas[i].numel(), alpha, prefix, fixed_bits, shift,
                                      reinterpret_cast<unsigned long long*>(hist.data_ptr<int64_t>()),
                                      flags.data_ptr<int>(), stream);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    PYPRUNE_CHECK_VALUE(flags.item<int>() == 0, "'params' or 'grads' contains NaN or Inf");
    const at::Tensor counts = hist.cpu();
    const int64_t* c = counts.data_ptr<int64_t>();
    for (int b = 0; b < kRadixBins; ++b) host_hist[b] += c[b];
  };
  const RadixSelection sel = radix_select(ScoreKey<scalar_t>::bits, keep, count_digits);

  const int64_t ties_kept = keep - sel.above;
  const bool rank_ties = keep > 0 && ties_kept < sel.equal;
  std::vector<at::Tensor> masks;
  for (const auto& t : thetas) masks.push_back(at::empty(t.sizes(), t.options().dtype(at::kBool)));
  if (keep == 0) {
    for (auto& m : masks) m.fill_(false);
    return masks;
  }
  std::vector<at::Tensor> offsets(thetas.size());
  if (rank_ties) {
    std::vector<at::Tensor> block_ties;
    for (size_t i = 0; i < thetas.size(); ++i) {
      block_ties.push_back(at::zeros({cuda::topk_blocks(thetas[i].numel())}, long_opts));
      cuda::count_ties<scalar_t>(thetas[i].data_ptr<scalar_t>(), grads[i].data_ptr<scalar_t>(),
                                 thetas[i].numel(), alpha, sel.threshold,
                                 block_ties.back().data_ptr<int64_t>(), stream);
    }
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    // Exclusive prefix over all blocks of all tensors, in order.
    const at::Tensor all = at::cat(block_ties);
    const at::Tensor starts = all.cumsum(0) - all;
    int64_t first = 0;
    for (size_t i = 0; i < thetas.size(); ++i) {
      offsets[i] = starts.narrow(0, first, block_ties[i].numel()).contiguous();
      first += block_ties[i].numel();
    }
  }
  for (size_t i = 0; i < thetas.size(); ++i)
    cuda::topk_write<scalar_t>(thetas[i].data_ptr<scalar_t>(), grads[i].data_ptr<scalar_t>(),
                               thetas[i].numel(), alpha, sel.threshold,
                               rank_ties ? offsets[i].data_ptr<int64_t>() : nullptr, ties_kept,
                               masks[i].data_ptr<bool>(), stream);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return masks;
}

std::vector<at::Tensor> global_topk_masks_cuda(at::TensorList thetas_in, at::TensorList grads_in,
                                               double alpha, int64_t keep) {
  check_params(thetas_in, grads_in);
  check_alpha(alpha);
  check_keep(thetas_in, keep);
  if (thetas_in.empty()) return {};
  const c10::cuda::CUDAGuard guard(thetas_in[0].device());
  std::vector<at::Tensor> thetas, grads;
  for (size_t i = 0; i < thetas_in.size(); ++i) {
    thetas.push_back(thetas_in[i].contiguous());
    grads.push_back(grads_in[i].contiguous());
  }
  std::vector<at::Tensor> masks;
  AT_DISPATCH_FLOATING_TYPES(thetas[0].scalar_type(), "global_topk_masks_cuda",
                             [&] { masks = topk_masks_cuda<scalar_t>(thetas, grads, alpha, keep); });
  return masks;
}

}  // namespace

TORCH_LIBRARY_IMPL(pyprune, CUDA, m) {
  m.impl("param_scores", &param_scores_cuda);
  m.impl("global_topk_masks", &global_topk_masks_cuda);
}

}  // namespace pyprune
