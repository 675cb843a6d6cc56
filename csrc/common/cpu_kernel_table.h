// The table between the CPU entry points (compiled once) and the CPU kernels (compiled once per
// CPU capability), as ATen's DECLARE_DISPATCH / REGISTER_DISPATCH. Torch-free: kernel files
// include no torch header.
//
// A family's <family>/cpu/<family>_kernels.h declares each kernel once:
//   PYPRUNE_DECLARE_CPU_KERNEL(channel_stats_kernel, FloatingKernel<ChannelStatsFn>);
// which declares one slot per capability: pyprune::cpu_default::channel_stats_kernel,
// pyprune::cpu_avx2::..., pyprune::cpu_avx512::.... Each compiled copy of the kernel file fills
// its own slot with PYPRUNE_REGISTER_CPU_KERNEL (common/cpu_kernel.h), and the entry point calls
// the slot of the capability in use through PYPRUNE_CPU_KERNEL (common/cpu_dispatch.h).
// A slot is constant-initialised (function addresses): no code runs when the library loads, so an
// AVX-512 copy never runs a load-time initializer on a CPU without AVX-512.
#pragma once

#include <type_traits>

namespace pyprune {

// A kernel with a float and a double version; Fn<scalar_t> is its function pointer type.
template <template <typename> class Fn>
struct FloatingKernel {
  Fn<float> f32;
  Fn<double> f64;

  template <typename scalar_t>
  Fn<scalar_t> of() const {
    if constexpr (std::is_same_v<scalar_t, float>) {
      return f32;
    } else {
      static_assert(std::is_same_v<scalar_t, double>, "kernels take float or double");
      return f64;
    }
  }
};

}  // namespace pyprune

#define PYPRUNE_DECLARE_CPU_KERNEL(name, ...) \
  namespace cpu_default {                     \
  extern const __VA_ARGS__ name;              \
  }                                           \
  namespace cpu_avx2 {                        \
  extern const __VA_ARGS__ name;              \
  }                                           \
  namespace cpu_avx512 {                      \
  extern const __VA_ARGS__ name;              \
  }                                           \
  using name##_type = __VA_ARGS__
