// Detection and choice of the CPU kernels' instruction-set capability (see cpu_capability.h).
// Compiled once, with the baseline flags, like everything outside csrc/<family>/cpu/.
#include "common/cpu_capability.h"

#include <atomic>
#include <cstdlib>
#include <mutex>
#include <stdexcept>

namespace pyprune {
namespace {

constexpr const char* kNames[kNumCpuCapabilities] = {"default", "avx2", "avx512"};

// Which capabilities setup.py compiled (the macros are defined for this file only when it did).
bool built(CpuCapability capability) {
  switch (capability) {
    case CpuCapability::kDefault:
      return true;
    case CpuCapability::kAvx2:
#if defined(PYPRUNE_BUILT_AVX2)
      return true;
#else
      return false;
#endif
    case CpuCapability::kAvx512:
#if defined(PYPRUNE_BUILT_AVX512)
      return true;
#else
      return false;
#endif
  }
  return false;
}

// Whether this CPU (and the OS, which must save the wider registers) runs a capability's copy.
// The features listed are exactly what setup.py's flags for that capability let the compiler use.
bool cpu_runs(CpuCapability capability) {
  if (capability == CpuCapability::kDefault) return true;
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  __builtin_cpu_init();
  const bool v3 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
                  __builtin_cpu_supports("bmi") && __builtin_cpu_supports("bmi2") &&
                  __builtin_cpu_supports("f16c") && __builtin_cpu_supports("popcnt") &&
                  __builtin_cpu_supports("lzcnt") && __builtin_cpu_supports("movbe");
  if (capability == CpuCapability::kAvx2) return v3;
  return v3 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512cd") && __builtin_cpu_supports("avx512dq") &&
         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vpopcntdq");
#else
  return false;
#endif
}

bool usable(CpuCapability capability) { return built(capability) && cpu_runs(capability); }

// `asked_by` names where the name came from (the environment variable or the function), so that
// the error points at what the user wrote.
CpuCapability parse(const std::string& name, const char* asked_by) {
  const std::string asked = std::string("pyprune: ") + asked_by + "('" + name + "'): ";
  for (int i = 0; i < kNumCpuCapabilities; ++i) {
    if (name != kNames[i]) continue;
    const auto capability = static_cast<CpuCapability>(i);
    if (!built(capability))
      throw std::runtime_error(asked + "this build of pyprune_ext has no " + name +
                               " kernels (they are built on x86-64 only)");
    if (!cpu_runs(capability))
      throw std::runtime_error(asked + "this CPU does not support the " + name +
                               " instructions; use one of supported_cpu_capabilities()");
    return capability;
  }
  throw std::runtime_error(asked + "not a CPU capability; use default, avx2 or avx512");
}

CpuCapability best() {
  for (int i = kNumCpuCapabilities - 1; i > 0; --i)
    if (usable(static_cast<CpuCapability>(i))) return static_cast<CpuCapability>(i);
  return CpuCapability::kDefault;
}

constexpr int kUnset = -1;
std::atomic<int> chosen{kUnset};
std::mutex choosing;

}  // namespace

CpuCapability cpu_capability() {
  const int known = chosen.load(std::memory_order_relaxed);
  if (known != kUnset) return static_cast<CpuCapability>(known);
  std::lock_guard<std::mutex> lock(choosing);
  if (chosen.load() == kUnset) {
    const char* forced = std::getenv("PYPRUNE_CPU_CAPABILITY");
    const CpuCapability capability = forced && *forced ? parse(forced, "PYPRUNE_CPU_CAPABILITY") : best();
    chosen.store(static_cast<int>(capability));
  }
  return static_cast<CpuCapability>(chosen.load());
}

void set_cpu_capability(const std::string& name) {
  const CpuCapability capability = parse(name, "set_cpu_capability");
  std::lock_guard<std::mutex> lock(choosing);
  chosen.store(static_cast<int>(capability));
}

std::vector<std::string> supported_cpu_capabilities() {
  std::vector<std::string> names;
  for (int i = 0; i < kNumCpuCapabilities; ++i)
    if (usable(static_cast<CpuCapability>(i))) names.emplace_back(kNames[i]);
  return names;
}

const char* cpu_capability_name(CpuCapability capability) {
  return kNames[static_cast<int>(capability)];
}

}  // namespace pyprune
