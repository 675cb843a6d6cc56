// One function per CPU op that calls the copy of its kernel compiled for the level in use
// (see cpu_capability.h). PYPRUNE_CPU_LEVEL names the namespace of the copy being compiled:
// setup.py defines it for the AVX2 and AVX512 copies; the baseline copy gets cpu_default.
#pragma once

#include <utility>

#include "common/cpu_capability.h"

#ifndef PYPRUNE_CPU_LEVEL
#define PYPRUNE_CPU_LEVEL cpu_default
#endif

namespace pyprune {

template <auto Default, auto Avx2, auto Avx512>
struct CpuDispatch;

// The three copies share one signature; the call is a switch on a relaxed atomic load.
template <typename R, typename... Args, R (*Default)(Args...), R (*Avx2)(Args...), R (*Avx512)(Args...)>
struct CpuDispatch<Default, Avx2, Avx512> {
  static R call(Args... args) {
    switch (cpu_capability()) {
      case CpuCapability::kAvx512:
        return Avx512(std::forward<Args>(args)...);
      case CpuCapability::kAvx2:
        return Avx2(std::forward<Args>(args)...);
      default:
        return Default(std::forward<Args>(args)...);
    }
  }
};

}  // namespace pyprune
