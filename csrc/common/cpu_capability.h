// Run-time choice of the CPU kernels' instruction-set level, as ATen does with
// ATEN_CPU_CAPABILITY.
//
// Every file under csrc/<family>/cpu/ is compiled once per level (setup.py): DEFAULT with the
// compiler's baseline flags (the only level on non-x86 machines), AVX2 with -march=x86-64-v3,
// AVX512 with -march=x86-64-v4 and the extra extensions the kernels use. Each copy lives in the
// namespace pyprune::<level> (the macro CPU_CAPABILITY names it while a copy is compiled), and
// csrc/cpu/register_cpu.cpp registers one dispatching function per op that calls the copy of the
// level in use. The level is the best one the CPU supports (cpuid, including the OS's support
// for the wider registers), or the one PYPRUNE_CPU_CAPABILITY=default|avx2|avx512 asks for.
#pragma once

#include <string>
#include <vector>

namespace pyprune {

enum class CpuCapability : int { kDefault = 0, kAvx2 = 1, kAvx512 = 2 };
constexpr int kNumCpuCapabilities = 3;

// The level in use; on first use, PYPRUNE_CPU_CAPABILITY or the best supported one. Throws
// std::runtime_error when the variable asks for a level this CPU or this build lacks.
CpuCapability cpu_capability();
// Uses `name` from now on (for tests and benchmarks); throws like cpu_capability().
void set_cpu_capability(const std::string& name);
// The levels this build has and this CPU runs, lowest first.
std::vector<std::string> supported_cpu_capabilities();
const char* cpu_capability_name(CpuCapability capability);

}  // namespace pyprune
