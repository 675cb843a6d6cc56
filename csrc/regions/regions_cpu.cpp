// CPU entry point of connected-component labelling: the shared checks, the outputs, the dtype,
// the kernel of the CPU capability in use (cpu/regions_kernels.cpp), then the threads' region
// records joined into the outputs. Compiled once.
#include <torch/library.h>
#include <torch/types.h>

#include <vector>

#include "common/cpu_dispatch.h"
#include "regions/cpu/regions_kernels.h"
#include "regions/regions_args.h"

namespace pyprune {
namespace {

template <typename T>
at::Tensor adopt(std::vector<T>&& values, at::ScalarType dtype) {
  auto* owner = new std::vector<T>(std::move(values));
  return at::from_blob(owner->data(), {static_cast<int64_t>(owner->size())},
                       [owner](void*) { delete owner; }, at::TensorOptions().dtype(dtype));
}

// One thread's records are the outputs as they are; several are copied out in order.
void join_records(std::vector<RegionRecords>& records, const at::TensorOptions& options,
                  at::Tensor& sizes_out, at::Tensor& sums_out, at::Tensor& means_out) {
  const int threads = static_cast<int>(records.size());
  if (threads == 1) {  // the records are the outputs
    sizes_out = adopt(std::move(records[0].sizes), at::kLong);
    sums_out = adopt(std::move(records[0].sums), at::kDouble);
    means_out = adopt(std::move(records[0].means), at::kDouble);
    return;
  }
  std::vector<int64_t> offsets(threads + 1, 0);
  for (int t = 0; t < threads; ++t) offsets[t + 1] = offsets[t] + records[t].sizes.size();
  sizes_out = at::empty({offsets[threads]}, options);
  sums_out = at::empty({offsets[threads]}, options.dtype(at::kDouble));
  means_out = at::empty({offsets[threads]}, options.dtype(at::kDouble));
  int64_t* sizes = sizes_out.data_ptr<int64_t>();
  double* sums = sums_out.data_ptr<double>();
  double* means = means_out.data_ptr<double>();
#pragma omp parallel for num_threads(threads)
  for (int t = 0; t < threads; ++t) {
    const RegionRecords& r = records[t];
    const int64_t at = offsets[t];
    for (size_t j = 0; j < r.sizes.size(); ++j) {
      sizes[at + j] = r.sizes[j];
      sums[at + j] = r.sums[j];
      means[at + j] = r.means[j];
    }
  }
}


std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor> label_regions_cpu(
    const at::Tensor& mask_in, const c10::optional<at::Tensor>& weights_in, int64_t connectivity) {
  check_label_args(mask_in, weights_in, connectivity);
  const at::Tensor mask = mask_in.contiguous();
  auto opts = mask.options();
  at::Tensor labels = at::empty(mask.sizes(), opts.dtype(at::kInt));
  at::Tensor counts = at::empty({mask.size(0)}, opts.dtype(at::kLong));
  std::vector<RegionRecords> records;
  const auto& kernel = PYPRUNE_CPU_KERNEL(label_regions_kernel);
  const at::Tensor weights = weights_in ? weights_in->contiguous() : at::Tensor();
  const at::ScalarType dtype = weights_in ? weights.scalar_type() : at::kFloat;
  AT_DISPATCH_FLOATING_TYPES(dtype, "label_regions", [&] {
    kernel.of<scalar_t>()(mask.data_ptr<bool>(), mask.size(0), mask.size(1), mask.size(2),
                          weights_in ? weights.data_ptr<scalar_t>() : nullptr, connectivity == 8,
                          labels.data_ptr<int32_t>(), counts.data_ptr<int64_t>(), records);
  });
  bool nonfinite = false;
  for (const RegionRecords& r : records) nonfinite |= r.nonfinite;
  check_region_sums(!nonfinite);
  at::Tensor sizes, sums, means;
  join_records(records, counts.options(), sizes, sums, means);
  return {labels, counts, sizes, sums, means};
}

}  // namespace

TORCH_LIBRARY_IMPL(pyprune, CPU, m) { m.impl("label_regions", &label_regions_cpu); }

}  // namespace pyprune
