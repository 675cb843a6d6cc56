// CPU entry point of the Taylor channel statistics: the shared checks, the outputs, the dtype,
// then the kernel of the CPU capability in use (cpu/taylor_kernels.cpp). Compiled once.
#include <torch/library.h>
#include <torch/types.h>

#include "common/cpu_dispatch.h"
#include "taylor/cpu/taylor_kernels.h"
#include "taylor/taylor_args.h"

namespace pyprune {
namespace {

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor>
taylor_channel_stats_cpu(const at::Tensor& x_in, const at::Tensor& g_in,
                         const c10::optional<at::Tensor>& gbar_in, bool with_means) {
  const ChannelShape s = channel_shape(x_in, g_in, gbar_in, with_means);
  const at::Tensor x = x_in.contiguous(), g = g_in.contiguous();
  at::Tensor gbar;
  if (gbar_in) gbar = gbar_in->contiguous();
  auto out = channel_outputs(s, x.options());
  const auto& kernel = PYPRUNE_CPU_KERNEL(channel_stats_kernel);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "taylor_channel_stats", [&] {
    kernel.of<scalar_t>()(x.data_ptr<scalar_t>(), g.data_ptr<scalar_t>(),
                          gbar_in ? gbar.data_ptr<double>() : nullptr, s, out[0].data_ptr<double>(),
                          out[1].data_ptr<double>(), out[2].data_ptr<double>(),
                          out[3].data_ptr<double>(), out[4].data_ptr<double>(),
                          out[5].data_ptr<double>());
  });
  check_channel_sums(out);
  return {out[0], out[1], out[2], out[3], out[4], out[5]};
}

}  // namespace

TORCH_LIBRARY_IMPL(pyprune, CPU, m) { m.impl("taylor_channel_stats", &taylor_channel_stats_cpu); }

}  // namespace pyprune
