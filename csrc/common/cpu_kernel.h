// Included first by every CPU kernel file (csrc/<family>/cpu/*.cpp). setup.py compiles those
// files once per CPU capability, defining PYPRUNE_CPU_CAPABILITY (default, avx2 or avx512) and
// the instruction-set flags; each copy's code lives in namespace pyprune::cpu_<capability>:
//
//   namespace pyprune {
//   namespace PYPRUNE_CPU_NAMESPACE {
//   namespace { ...the kernel... }
//   PYPRUNE_REGISTER_CPU_KERNEL(channel_stats_kernel, &channel_stats<float>, &channel_stats<double>);
//   }
//   }
//
// Kernel files see raw pointers and sizes only: setup.py gives them no torch include path, so a
// torch header here fails the build, as does this file outside csrc/<family>/cpu/.
#pragma once

#ifndef PYPRUNE_CPU_CAPABILITY
#error "A CPU kernel file is compiled once per CPU capability: put it in csrc/<family>/cpu/. Entry points (checks, allocation, torch) go in csrc/<family>/<family>_cpu.cpp."
#endif

#include "common/cpu_kernel_table.h"

#define PYPRUNE_CPU_CONCAT_(a, b) a##b
#define PYPRUNE_CPU_CONCAT(a, b) PYPRUNE_CPU_CONCAT_(a, b)
#define PYPRUNE_CPU_NAMESPACE PYPRUNE_CPU_CONCAT(cpu_, PYPRUNE_CPU_CAPABILITY)

// Fills this capability's slot of a kernel declared with PYPRUNE_DECLARE_CPU_KERNEL; used inside
// namespace pyprune::PYPRUNE_CPU_NAMESPACE. A copy that registers nothing leaves its slot
// undefined, and setup.py stops the build naming it.
#define PYPRUNE_REGISTER_CPU_KERNEL(name, ...) extern const name##_type name = {__VA_ARGS__}
