// torch's thread count for the CPU kernels (common/parallel.h), read through ATen: torch may run
// its own copy of the OpenMP runtime, whose setting omp_get_max_threads() here would not see.
#include "common/parallel.h"

#include <ATen/Parallel.h>

#include <algorithm>

namespace pyprune {

int num_threads() { return std::max(1, at::get_num_threads()); }

}  // namespace pyprune
