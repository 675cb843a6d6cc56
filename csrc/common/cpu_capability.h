// Run-time choice of the CPU kernels' instruction-set capability, as ATen does with
// ATEN_CPU_CAPABILITY.
//
// Every file under csrc/<family>/cpu/ is compiled once per capability (setup.py): default with
// the compiler's baseline flags (the only capability on non-x86 machines), avx2 with
// -march=x86-64-v3, avx512 with -march=x86-64-v4 and the extra extensions the kernels use. Each
// copy lives in namespace pyprune::cpu_<capability> and fills its slots of the kernel table
// (common/cpu_kernel_table.h); the entry points call the slot of the capability in use
// (common/cpu_dispatch.h). That capability is the best one the CPU supports (cpuid, including the
// OS's support for the wider registers), or the one the environment variable
// PYPRUNE_CPU_CAPABILITY=default|avx2|avx512 asks for.
#pragma once

#include <string>
#include <vector>

namespace pyprune {

enum class CpuCapability : int { kDefault = 0, kAvx2 = 1, kAvx512 = 2 };
constexpr int kNumCpuCapabilities = 3;

// The capability in use; on first use, PYPRUNE_CPU_CAPABILITY or the best supported one.
// Throws std::runtime_error when the variable asks for one this CPU or this build lacks.
CpuCapability cpu_capability();
// Uses `name` from now on (for tests and benchmarks); throws like cpu_capability().
void set_cpu_capability(const std::string& name);
// The capabilities this build has and this CPU runs, lowest first.
std::vector<std::string> supported_cpu_capabilities();
const char* cpu_capability_name(CpuCapability capability);

}  // namespace pyprune
