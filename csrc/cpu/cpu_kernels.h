// The CPU entry point of every op. This file is included inside namespace pyprune::<level>,
// once by each compiled copy of the kernels and once per level by register_cpu.cpp, so it has no
// include guard and includes nothing: its includer has <torch/types.h> in scope.

// info/cpu/info_cpu.cpp
std::tuple<at::Tensor, at::Tensor> neuron_range_cpu(const at::Tensor& x);
std::tuple<at::Tensor, at::Tensor> info_counts_cpu(const at::Tensor& x, const c10::optional<at::Tensor>& labels,
                                                   const at::Tensor& edges, bool uniform, int64_t num_classes,
                                                   int64_t history);
void info_counts_add_cpu(at::Tensor& joint, at::Tensor& transitions, const at::Tensor& x,
                         const c10::optional<at::Tensor>& labels, const at::Tensor& edges, bool uniform,
                         int64_t history);
std::tuple<at::Tensor, at::Tensor, at::Tensor> info_scores_cpu(const at::Tensor& joint, const at::Tensor& transitions,
                                                               double base, bool miller_madow);
at::Tensor info_local_te_cpu(const at::Tensor& x, const c10::optional<at::Tensor>& labels, const at::Tensor& edges,
                             bool uniform, int64_t num_classes, int64_t history, double base);
std::tuple<at::Tensor, at::Tensor> info_permutation_null_cpu(const at::Tensor& x, const c10::optional<at::Tensor>& labels,
                                                             const at::Tensor& edges, bool uniform,
                                                             int64_t num_classes, int64_t history,
                                                             const at::Tensor& perms, double base,
                                                             bool miller_madow);

// taylor/cpu/taylor_cpu.cpp, topk/cpu/topk_cpu.cpp
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor> taylor_channel_stats_cpu(
    const at::Tensor& x, const at::Tensor& g, const c10::optional<at::Tensor>& gbar, bool with_means);
at::Tensor param_scores_cpu(const at::Tensor& theta, const at::Tensor& grad, double alpha);
std::vector<at::Tensor> global_topk_masks_cpu(at::TensorList thetas, at::TensorList grads, double alpha,
                                              int64_t keep);

// sparse/cpu/sparse_cpu.cpp
at::Tensor sparse_linear_cpu(const at::Tensor& x, const at::Tensor& values, const c10::optional<at::Tensor>& bias,
                             const at::Tensor& row_ptr, const at::Tensor& col_idx, const at::Tensor& t_ptr,
                             const at::Tensor& t_idx, const at::Tensor& t_perm);
std::tuple<at::Tensor, at::Tensor, at::Tensor> sparse_linear_backward_cpu(
    const at::Tensor& grad_y, const at::Tensor& x, const at::Tensor& values, const at::Tensor& row_ptr,
    const at::Tensor& col_idx, const at::Tensor& t_ptr, const at::Tensor& t_idx, const at::Tensor& t_perm,
    bool need_x, bool need_w, bool need_b);

// regions/cpu/regions_cpu.cpp
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor> label_regions_cpu(
    const at::Tensor& mask, const c10::optional<at::Tensor>& weights, int64_t connectivity);
