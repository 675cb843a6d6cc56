// The entry points' side of the CPU kernel table (see cpu_kernel_table.h): PYPRUNE_CPU_KERNEL(name)
// is the slot of the capability in use (cpu_capability.h), chosen per call by a relaxed atomic
// load. Entry points are compiled once, with the baseline flags.
#pragma once

#ifdef PYPRUNE_CPU_CAPABILITY
#error "An entry point is compiled once, with the baseline flags: put it in csrc/<family>/<family>_cpu.cpp, not in csrc/<family>/cpu/."
#endif

#include "common/cpu_capability.h"
#include "common/cpu_kernel_table.h"

namespace pyprune {

template <typename Kernel>
const Kernel& pick_cpu_kernel(const Kernel& baseline, const Kernel& avx2, const Kernel& avx512) {
  switch (cpu_capability()) {
    case CpuCapability::kAvx512:
      return avx512;
    case CpuCapability::kAvx2:
      return avx2;
    default:
      return baseline;
  }
}

}  // namespace pyprune

// setup.py builds the AVX2 and AVX-512 copies on x86-64 only; elsewhere every slot is the
// baseline one (and cpu_capability() never names another).
#if defined(PYPRUNE_BUILT_AVX2)
#define PYPRUNE_AVX2_SLOT(name) ::pyprune::cpu_avx2::name
#else
#define PYPRUNE_AVX2_SLOT(name) ::pyprune::cpu_default::name
#endif
#if defined(PYPRUNE_BUILT_AVX512)
#define PYPRUNE_AVX512_SLOT(name) ::pyprune::cpu_avx512::name
#else
#define PYPRUNE_AVX512_SLOT(name) PYPRUNE_AVX2_SLOT(name)
#endif

#define PYPRUNE_CPU_KERNEL(name) \
  ::pyprune::pick_cpu_kernel(::pyprune::cpu_default::name, PYPRUNE_AVX2_SLOT(name), PYPRUNE_AVX512_SLOT(name))
