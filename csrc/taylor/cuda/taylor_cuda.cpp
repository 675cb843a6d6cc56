// CUDA implementations of the Taylor ops around the kernels of taylor_kernels.cu. Built only when
// setup.py builds CUDA. Top-k keeps the radix loop on the host: one small histogram copy per digit.
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>
#include <torch/types.h>

#include <cmath>

#include "taylor/cuda/taylor_kernels.h"
#include "taylor/taylor_args.h"

namespace pyprune {
namespace {

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor>
taylor_channel_stats_cuda(const at::Tensor& x_in, const at::Tensor& g_in,
                          const c10::optional<at::Tensor>& gbar_in, bool with_means) {
  const ChannelShape s = channel_shape(x_in, g_in, gbar_in, with_means);
  const c10::cuda::CUDAGuard guard(x_in.device());
  const at::Tensor x = x_in.contiguous(), g = g_in.contiguous();
  at::Tensor gbar;
  if (gbar_in) gbar = gbar_in->contiguous();
  auto out = channel_outputs(s, x.options());
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "taylor_channel_stats_cuda", [&] {
    cuda::channel_stats<scalar_t>(x.data_ptr<scalar_t>(), g.data_ptr<scalar_t>(),
                                  gbar_in ? gbar.data_ptr<double>() : nullptr, s,
                                  out[0].data_ptr<double>(), out[1].data_ptr<double>(),
                                  out[2].data_ptr<double>(), out[3].data_ptr<double>(),
                                  out[4].data_ptr<double>(), out[5].data_ptr<double>(),
                                  c10::cuda::getCurrentCUDAStream());
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  check_channel_sums(out);
  return {out[0], out[1], out[2], out[3], out[4], out[5]};
}

at::Tensor param_scores_cuda(const at::Tensor& theta_in, const at::Tensor& grad_in, double alpha) {
  check_params({theta_in}, {grad_in});
  PYPRUNE_CHECK_VALUE(std::isfinite(alpha) && alpha >= 0, "'alpha' must be finite and >= 0, got ", alpha);
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
  const int key_bits = 8 * sizeof(scalar_t);
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  auto long_opts = thetas[0].options().dtype(at::kLong);
  at::Tensor hist = at::empty({kRadixBins}, long_opts);
  at::Tensor flags = at::zeros({1}, thetas[0].options().dtype(at::kInt));
  uint64_t prefix = 0;
  int fixed_bits = 0;
  int64_t above = 0, equal = 0;
  // The first pass also runs when nothing is kept: it is where NaN/Inf scores are found.
  while ((keep > 0 || fixed_bits == 0) && fixed_bits < key_bits) {
    const int bits = std::min(kRadixBits, key_bits - fixed_bits);
    const int shift = key_bits - fixed_bits - bits;
    hist.zero_();
    for (size_t i = 0; i < thetas.size(); ++i)
      cuda::radix_histogram<scalar_t>(thetas[i].data_ptr<scalar_t>(), grads[i].data_ptr<scalar_t>(),
                                      thetas[i].numel(), alpha, prefix, fixed_bits, shift,
                                      reinterpret_cast<unsigned long long*>(hist.data_ptr<int64_t>()),
                                      flags.data_ptr<int>(), stream);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    PYPRUNE_CHECK_VALUE(flags.item<int>() == 0, "'params' or 'grads' contains NaN or Inf");
    const at::Tensor host = hist.cpu();
    const int64_t* h = host.data_ptr<int64_t>();
    int64_t bin = kRadixBins - 1;
    for (; bin >= 0; --bin) {
      if (above + h[bin] >= keep) break;
      above += h[bin];
    }
    prefix |= static_cast<uint64_t>(bin) << shift;
    fixed_bits += bits;
    equal = h[bin];
  }
  const int64_t ties_kept = keep - above;
  const bool rank_ties = keep > 0 && ties_kept < equal;
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
                                 thetas[i].numel(), alpha, prefix,
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
                               thetas[i].numel(), alpha, prefix,
                               rank_ties ? offsets[i].data_ptr<int64_t>() : nullptr, ties_kept,
                               masks[i].data_ptr<bool>(), stream);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return masks;
}

std::vector<at::Tensor> global_topk_masks_cuda(at::TensorList thetas_in, at::TensorList grads_in,
                                               double alpha, int64_t keep) {
  check_params(thetas_in, grads_in);
  PYPRUNE_CHECK_VALUE(std::isfinite(alpha) && alpha >= 0, "'alpha' must be finite and >= 0, got ", alpha);
  if (thetas_in.empty()) return {};
  const c10::cuda::CUDAGuard guard(thetas_in[0].device());
  std::vector<at::Tensor> thetas, grads;
  int64_t total = 0;
  for (size_t i = 0; i < thetas_in.size(); ++i) {
    thetas.push_back(thetas_in[i].contiguous());
    grads.push_back(grads_in[i].contiguous());
    total += thetas.back().numel();
  }
  PYPRUNE_CHECK_VALUE(keep >= 0 && keep <= total, "'keep' must lie in [0, ", total, "], got ", keep);
  std::vector<at::Tensor> masks;
  AT_DISPATCH_FLOATING_TYPES(thetas[0].scalar_type(), "global_topk_masks_cuda",
                             [&] { masks = topk_masks_cuda<scalar_t>(thetas, grads, alpha, keep); });
  return masks;
}

}  // namespace

TORCH_LIBRARY_IMPL(pyprune, CUDA, m) {
  m.impl("taylor_channel_stats", &taylor_channel_stats_cuda);
  m.impl("param_scores", &param_scores_cuda);
  m.impl("global_topk_masks", &global_topk_masks_cuda);
}

}  // namespace pyprune
