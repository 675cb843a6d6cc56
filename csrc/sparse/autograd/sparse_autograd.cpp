// Autograd of the sparse linear layer, in C++ (as torchvision registers its ops' autograd): one
// kernel under the Autograd key for every device, calling the forward and backward ops through
// the dispatcher. A Python torch.library.register_autograd adds a sizeable fixed cost per
// training step, which shows at small batch sizes.
#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/autograd.h>
#include <torch/library.h>

namespace pyprune {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

at::Tensor call_forward(const at::Tensor& x, const at::Tensor& values,
                        const c10::optional<at::Tensor>& bias, const at::Tensor& row_ptr,
                        const at::Tensor& col_idx, const at::Tensor& t_ptr, const at::Tensor& t_idx,
                        const at::Tensor& t_perm) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("pyprune::sparse_linear", "")
                       .typed<decltype(call_forward)>();
  return op.call(x, values, bias, row_ptr, col_idx, t_ptr, t_idx, t_perm);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> call_backward(
    const at::Tensor& grad_y, const at::Tensor& x, const at::Tensor& values,
    const at::Tensor& row_ptr, const at::Tensor& col_idx, const at::Tensor& t_ptr,
    const at::Tensor& t_idx, const at::Tensor& t_perm, bool need_x, bool need_w, bool need_b) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("pyprune::sparse_linear_backward", "")
                       .typed<decltype(call_backward)>();
  return op.call(grad_y, x, values, row_ptr, col_idx, t_ptr, t_idx, t_perm, need_x, need_w,
                 need_b);
}

class SparseLinearFunction : public torch::autograd::Function<SparseLinearFunction> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& values,
                            const c10::optional<at::Tensor>& bias, const at::Tensor& row_ptr,
                            const at::Tensor& col_idx, const at::Tensor& t_ptr,
                            const at::Tensor& t_idx, const at::Tensor& t_perm) {
    at::AutoDispatchBelowADInplaceOrView guard;
    ctx->save_for_backward({x, values, row_ptr, col_idx, t_ptr, t_idx, t_perm});
    ctx->saved_data["has_bias"] = bias.has_value();
    return call_forward(x, values, bias, row_ptr, col_idx, t_ptr, t_idx, t_perm);
  }

  // Gradients for x, values and bias; none for the index tensors.
  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const variable_list saved = ctx->get_saved_variables();
    const bool has_bias = ctx->saved_data["has_bias"].toBool();
    const bool need_x = ctx->needs_input_grad(0), need_w = ctx->needs_input_grad(1);
    const bool need_b = has_bias && ctx->needs_input_grad(2);
    auto [dx, dw, db] = call_backward(grad_outputs[0].contiguous(), saved[0], saved[1], saved[2],
                                      saved[3], saved[4], saved[5], saved[6], need_x, need_w,
                                      need_b);
    const at::Tensor none;
    return {need_x ? dx : none, need_w ? dw : none, need_b ? db : none, none, none, none, none,
            none};
  }
};

at::Tensor sparse_linear_autograd(const at::Tensor& x, const at::Tensor& values,
                                  const c10::optional<at::Tensor>& bias, const at::Tensor& row_ptr,
                                  const at::Tensor& col_idx, const at::Tensor& t_ptr,
                                  const at::Tensor& t_idx, const at::Tensor& t_perm) {
  return SparseLinearFunction::apply(x, values, bias, row_ptr, col_idx, t_ptr, t_idx, t_perm);
}

}  // namespace

TORCH_LIBRARY_IMPL(pyprune, Autograd, m) {
  m.impl("sparse_linear", &sparse_linear_autograd);
}

}  // namespace pyprune
