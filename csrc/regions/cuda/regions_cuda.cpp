// CUDA implementation of label_regions around regions_kernels.cu. Built only with CUDA.
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>
#include <torch/types.h>

#include "regions/cuda/regions_kernels.h"
#include "regions/regions_args.h"

namespace pyprune {
namespace {

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor> label_regions_cuda(
    const at::Tensor& mask_in, const c10::optional<at::Tensor>& weights_in, int64_t connectivity) {
  check_label_args(mask_in, weights_in, connectivity);
  const c10::cuda::CUDAGuard guard(mask_in.device());
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  const at::Tensor mask = mask_in.contiguous();
  const int64_t k = mask.size(0), plane = mask.size(1) * mask.size(2);
  at::Tensor labels = at::empty(mask.sizes(), mask.options().dtype(at::kInt));
  at::Tensor counts = at::empty({k}, mask.options().dtype(at::kLong));
  const size_t scratch_bytes = cuda::label_regions_scratch_bytes(k, mask.size(1), mask.size(2));
  at::Tensor scratch = at::empty({static_cast<int64_t>(scratch_bytes)}, mask.options().dtype(at::kByte));
  cuda::label_regions(mask.data_ptr<bool>(), k, mask.size(1), mask.size(2), connectivity == 8,
                      labels.data_ptr<int32_t>(), counts.data_ptr<int64_t>(),
                      scratch_bytes ? scratch.data_ptr() : nullptr, stream);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  const at::Tensor offsets = counts.cumsum(0) - counts;
  const int64_t total = k == 0 ? 0 : counts.sum().item<int64_t>();
  at::Tensor sizes = at::zeros({total}, counts.options());
  at::Tensor sums = at::zeros({total}, counts.options().dtype(at::kDouble));
  at::Tensor weights;
  if (weights_in) weights = weights_in->contiguous();
  AT_DISPATCH_FLOATING_TYPES(weights_in ? weights.scalar_type() : at::kFloat, "region_sums", [&] {
    cuda::region_sums<scalar_t>(labels.data_ptr<int32_t>(),
                                weights_in ? weights.data_ptr<scalar_t>() : nullptr,
                                offsets.data_ptr<int64_t>(), k, plane, sizes.data_ptr<int64_t>(),
                                sums.data_ptr<double>(), stream);
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  check_region_sums(at::isfinite(sums).all().item<bool>());
  return {labels, counts, sizes, sums, sums / sizes};
}

}  // namespace

TORCH_LIBRARY_IMPL(pyprune, CUDA, m) { m.impl("label_regions", &label_regions_cuda); }

}  // namespace pyprune
