// Registers every CPU op as a function that calls the copy of its kernel compiled for the
// instruction-set level in use (see common/cpu_capability.h). Compiled once, with the baseline
// flags: nothing here may run an instruction the CPU lacks.
#include <torch/library.h>
#include <torch/types.h>

#include "common/cpu_dispatch.h"

namespace pyprune {

namespace cpu_default {
#include "cpu/cpu_kernels.h"
}  // namespace cpu_default

#if defined(PYPRUNE_BUILT_AVX2)
namespace cpu_avx2 {
#include "cpu/cpu_kernels.h"
}  // namespace cpu_avx2
#define PYPRUNE_AVX2_KERNEL(name) &cpu_avx2::name
#else
#define PYPRUNE_AVX2_KERNEL(name) &cpu_default::name
#endif

#if defined(PYPRUNE_BUILT_AVX512)
namespace cpu_avx512 {
#include "cpu/cpu_kernels.h"
}  // namespace cpu_avx512
#define PYPRUNE_AVX512_KERNEL(name) &cpu_avx512::name
#else
#define PYPRUNE_AVX512_KERNEL(name) PYPRUNE_AVX2_KERNEL(name)
#endif

#define PYPRUNE_CPU_KERNEL(name) \
  &CpuDispatch<&cpu_default::name, PYPRUNE_AVX2_KERNEL(name), PYPRUNE_AVX512_KERNEL(name)>::call

TORCH_LIBRARY_IMPL(pyprune, CPU, m) {
  m.impl("neuron_range", PYPRUNE_CPU_KERNEL(neuron_range_cpu));
  m.impl("info_counts", PYPRUNE_CPU_KERNEL(info_counts_cpu));
  m.impl("info_counts_add_", PYPRUNE_CPU_KERNEL(info_counts_add_cpu));
  m.impl("info_scores", PYPRUNE_CPU_KERNEL(info_scores_cpu));
  m.impl("info_local_te", PYPRUNE_CPU_KERNEL(info_local_te_cpu));
  m.impl("info_permutation_null", PYPRUNE_CPU_KERNEL(info_permutation_null_cpu));
  m.impl("taylor_channel_stats", PYPRUNE_CPU_KERNEL(taylor_channel_stats_cpu));
  m.impl("param_scores", PYPRUNE_CPU_KERNEL(param_scores_cpu));
  m.impl("global_topk_masks", PYPRUNE_CPU_KERNEL(global_topk_masks_cpu));
  m.impl("sparse_linear", PYPRUNE_CPU_KERNEL(sparse_linear_cpu));
  m.impl("sparse_linear_backward", PYPRUNE_CPU_KERNEL(sparse_linear_backward_cpu));
  m.impl("label_regions", PYPRUNE_CPU_KERNEL(label_regions_cpu));
}

}  // namespace pyprune
