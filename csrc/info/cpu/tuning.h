// The cache sizes the info kernels plan their work with, in one place. Tuned on AMD EPYC Zen 4
// (2-core KVM VM, 1 MiB L2 per core); kL2Bytes assumes the smaller 512 KiB L2 of Zen 3 and older
// cores, so the plan holds there too. Other CPUs are untuned: re-tune with the bench
// (`python -m pyprune_ext bench -k info`), which is also the record of what these values give.
// Included by info_kernels.cpp inside pyprune::cpu_<capability>::{anonymous}.
#pragma once

// Bytes of uint32 histograms one thread keeps for its block of neurons: a share of L2 that leaves
// room for the rows of x streaming through.
constexpr int64_t kLocalHistogramBytes = 192 * 1024;
// The L2 size the planner assumes when it decides between whole rows and blocks of neurons.
constexpr int64_t kL2Bytes = 512 * 1024;
constexpr int64_t kMaxLocalRows = (int64_t{1} << 31);  // keeps uint32 counters exact
// Rows of x prefetched ahead of the binning. A block narrower than x's rows reads them strided,
// which the hardware prefetchers do not follow across pages; whole rows gain too, since counting
// a tile leaves the loads idle. Whole rows are fetched into L2 only: into L1, the prefetches
// stalled on the full miss buffers, while strided blocks lose with L2 hints.
constexpr int64_t kPrefetchRows = 64;
