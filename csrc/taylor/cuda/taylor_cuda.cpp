// CUDA implementation of the Taylor channel statistics around the kernels of taylor_kernels.cu.
// Built only when setup.py builds CUDA.
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

}  // namespace

TORCH_LIBRARY_IMPL(pyprune, CUDA, m) {
  m.impl("taylor_channel_stats", &taylor_channel_stats_cuda);
}

}  // namespace pyprune
