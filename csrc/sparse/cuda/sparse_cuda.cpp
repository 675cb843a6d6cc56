// CUDA implementations of the sparse linear ops around sparse_kernels.cu. Built only with CUDA.
// Rows beyond 65535 would exceed gridDim.y: checked here.
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>
#include <torch/types.h>

#include "sparse/cuda/sparse_kernels.h"
#include "sparse/sparse_args.h"

namespace pyprune {
namespace {

constexpr int64_t kMaxGridY = 65535;

at::Tensor spmm(const at::Tensor& in_t, int64_t rows, const at::Tensor& ptr, const at::Tensor& idx,
                const int32_t* perm, const at::Tensor& values, const at::Tensor* bias) {
  PYPRUNE_CHECK_VALUE(rows <= kMaxGridY, "CUDA sparse_linear supports up to ", kMaxGridY,
                      " rows per side, got ", rows);
  const int64_t batch = in_t.size(1);
  at::Tensor out_t = at::empty({rows, batch}, in_t.options());
  AT_DISPATCH_FLOATING_TYPES(in_t.scalar_type(), "sparse_spmm_cuda", [&] {
    cuda::spmm_rows<scalar_t>(rows, batch, ptr.data_ptr<int32_t>(), idx.data_ptr<int32_t>(), perm,
                              values.data_ptr<scalar_t>(), in_t.data_ptr<scalar_t>(),
                              bias ? bias->data_ptr<scalar_t>() : nullptr,
                              out_t.data_ptr<scalar_t>(), c10::cuda::getCurrentCUDAStream());
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return out_t.t().contiguous();
}

at::Tensor sparse_linear_cuda(const at::Tensor& x, const at::Tensor& values,
                              const c10::optional<at::Tensor>& bias, const at::Tensor& row_ptr,
                              const at::Tensor& col_idx, const at::Tensor& t_ptr,
                              const at::Tensor& t_idx, const at::Tensor& t_perm) {
  const c10::cuda::CUDAGuard guard(x.device());
  const SparseShape s = sparse_shape(x, values, row_ptr, col_idx, t_ptr, t_idx, t_perm, SparsePass::kForward);
  check_bias(bias, x, s);
  at::Tensor b;
  if (bias) b = bias->contiguous();
  return spmm(x.t().contiguous(), s.out_features, row_ptr, col_idx, nullptr, values.contiguous(),
              bias ? &b : nullptr);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> sparse_linear_backward_cuda(
    const at::Tensor& grad_y, const at::Tensor& x, const at::Tensor& values,
    const at::Tensor& row_ptr, const at::Tensor& col_idx, const at::Tensor& t_ptr,
    const at::Tensor& t_idx, const at::Tensor& t_perm, bool need_x, bool need_w, bool need_b) {
  const c10::cuda::CUDAGuard guard(x.device());
  const SparseShape s = sparse_shape(x, values, row_ptr, col_idx, t_ptr, t_idx, t_perm, SparsePass::kBackward);
  check_grad_y(grad_y, x, s);
  const at::Tensor dy_t = grad_y.t().contiguous(), v = values.contiguous();
  at::Tensor dx = at::empty({0}, x.options()), dw = dx, db = dx;
  if (need_x) dx = spmm(dy_t, s.in_features, t_ptr, t_idx, t_perm.data_ptr<int32_t>(), v, nullptr);
  if (need_w) {
    const at::Tensor x_t = x.t().contiguous();
    dw = at::empty({s.nnz}, x.options());
    AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "sparse_sddmm_cuda", [&] {
      cuda::sddmm_rows<scalar_t>(s.out_features, s.batch, row_ptr.data_ptr<int32_t>(),
                                 col_idx.data_ptr<int32_t>(), dy_t.data_ptr<scalar_t>(),
                                 x_t.data_ptr<scalar_t>(), dw.data_ptr<scalar_t>(),
                                 c10::cuda::getCurrentCUDAStream());
    });
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }
  if (need_b) db = grad_y.sum(0);
  return {dx, dw, db};
}

}  // namespace

TORCH_LIBRARY_IMPL(pyprune, CUDA, m) {
  m.impl("sparse_linear", &sparse_linear_cuda);
  m.impl("sparse_linear_backward", &sparse_linear_backward_cuda);
}

}  // namespace pyprune
