// CPU entry points of the sparse linear layer: the shared checks, the outputs, the dtype, then the
// kernels of the CPU capability in use (cpu/sparse_kernels.cpp). Compiled once.
#include <torch/library.h>
#include <torch/types.h>

#include "common/cpu_dispatch.h"
#include "sparse/cpu/sparse_kernels.h"
#include "sparse/sparse_args.h"

namespace pyprune {
namespace {

template <typename scalar_t>
Strided<scalar_t> strided(const at::Tensor& t) {
  return {t.data_ptr<scalar_t>(), t.stride(0), t.stride(1)};
}

at::Tensor sparse_linear_cpu(const at::Tensor& x, const at::Tensor& values,
                             const c10::optional<at::Tensor>& bias, const at::Tensor& row_ptr,
                             const at::Tensor& col_idx, const at::Tensor& t_ptr,
                             const at::Tensor& t_idx, const at::Tensor& t_perm) {
  const SparseShape s = sparse_shape(x, values, row_ptr, col_idx, t_ptr, t_idx, t_perm, SparsePass::kForward);
  check_bias(bias, x, s);
  at::Tensor b;
  if (bias) b = bias->contiguous();
  const at::Tensor v = values.contiguous();
  at::Tensor y = at::empty({s.batch, s.out_features}, x.options());
  const auto& kernel = PYPRUNE_CPU_KERNEL(sparse_forward_kernel);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "sparse_linear", [&] {
    kernel.of<scalar_t>()(s, strided<scalar_t>(x), row_ptr.data_ptr<int32_t>(),
                          col_idx.data_ptr<int32_t>(), v.data_ptr<scalar_t>(),
                          bias ? b.data_ptr<scalar_t>() : nullptr, y.data_ptr<scalar_t>());
  });
  return y;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> sparse_linear_backward_cpu(
    const at::Tensor& grad_y, const at::Tensor& x, const at::Tensor& values,
    const at::Tensor& row_ptr, const at::Tensor& col_idx, const at::Tensor& t_ptr,
    const at::Tensor& t_idx, const at::Tensor& t_perm, bool need_x, bool need_w, bool need_b) {
  const SparseShape s = sparse_shape(x, values, row_ptr, col_idx, t_ptr, t_idx, t_perm, SparsePass::kBackward);
  check_grad_y(grad_y, x, s);
  const at::Tensor v = values.contiguous();
  at::Tensor dx = at::empty({0}, x.options()), dw = dx, db = dx;  // empty when not asked for
  if (need_x) dx = at::empty({s.batch, s.in_features}, x.options());
  if (need_w) dw = at::empty({s.nnz}, x.options());
  const auto& kernel = PYPRUNE_CPU_KERNEL(sparse_backward_kernel);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "sparse_linear_backward", [&] {
    kernel.of<scalar_t>()(s, strided<scalar_t>(grad_y), strided<scalar_t>(x),
                          row_ptr.data_ptr<int32_t>(), col_idx.data_ptr<int32_t>(),
                          t_ptr.data_ptr<int32_t>(), t_idx.data_ptr<int32_t>(),
                          t_perm.data_ptr<int32_t>(), v.data_ptr<scalar_t>(),
                          need_x ? dx.data_ptr<scalar_t>() : nullptr,
                          need_w ? dw.data_ptr<scalar_t>() : nullptr);
  });
  if (need_b) db = grad_y.sum(0);
  return {dx, dw, db};
}

}  // namespace

TORCH_LIBRARY_IMPL(pyprune, CPU, m) {
  m.impl("sparse_linear", &sparse_linear_cpu);
  m.impl("sparse_linear_backward", &sparse_linear_backward_cpu);
}

}  // namespace pyprune
