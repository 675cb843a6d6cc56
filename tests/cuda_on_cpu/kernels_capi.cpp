// A C interface over the CUDA launch APIs (csrc/*/cuda/*_kernels.h), for the Python tests of the
// kernels run by cudasim: raw host pointers in, 0 back on success, else 1 and sim_last_error().
// Top-k is composed here as its torch binding composes it: radix_select over radix_histogram
// passes, tie counts per block, their exclusive prefix, topk_write.
#include <cstring>
#include <numeric>
#include <string>
#include <vector>

#include "info/cuda/info_kernels.h"
#include "regions/cuda/regions_kernels.h"
#include "sparse/cuda/sparse_kernels.h"
#include "taylor/cuda/taylor_kernels.h"
#include "topk/cuda/topk_kernels.h"
#include "topk/radix_select.h"

using namespace pyprune;

namespace {

std::string g_error;

template <typename Fn>
int guarded(Fn&& fn) {
  try {
    fn();
    return 0;
  } catch (const std::exception& e) {
    g_error = e.what();
    return 1;
  }
}

// dtype 0: float32, 1: float64.
template <typename Fn>
int by_dtype(int dtype, Fn&& fn) {
  return guarded([&] {
    if (dtype == 0) fn(float{});
    else fn(double{});
  });
}

InfoShape info_shape(int64_t s, int64_t t, int64_t n, int bins, int classes, int history) {
  return InfoShape{s, t, n, bins, classes, history, history_states(bins, history)};
}

}  // namespace

extern "C" {

const char* sim_last_error() { return g_error.c_str(); }
void sim_set_os_threads(int threads) { cudasim::set_os_threads(threads); }
void sim_set_max_shared_bytes(int bytes) { cudasim::set_max_shared_bytes(bytes); }
void sim_set_reverse(int reverse) { cudasim::set_reverse_schedule(reverse != 0); }

int sim_channel_stats(int dtype, const void* x, const void* g, const double* gbar, int64_t samples, int64_t channels,
                      int64_t positions, int with_means, int with_trace, double* sq, double* dot, double* dot2,
                      double* sum_x, double* sum_g, double* trace) {
  return by_dtype(dtype, [&](auto zero) {
    using T = decltype(zero);
    const ChannelShape shape{samples, channels, positions, with_means != 0, with_trace != 0};
    cuda::channel_stats<T>(static_cast<const T*>(x), static_cast<const T*>(g), gbar, shape, sq, dot, dot2, sum_x,
                           sum_g, trace, nullptr);
  });
}

int sim_spmm_rows(int dtype, int64_t rows, int64_t batch, const int32_t* ptr, const int32_t* idx, const int32_t* perm,
                  const void* values, const void* in_t, const void* bias, void* out_t) {
  return by_dtype(dtype, [&](auto zero) {
    using T = decltype(zero);
    cuda::spmm_rows<T>(rows, batch, ptr, idx, perm, static_cast<const T*>(values), static_cast<const T*>(in_t),
                       static_cast<const T*>(bias), static_cast<T*>(out_t), nullptr);
  });
}

int sim_sddmm_rows(int dtype, int64_t rows, int64_t batch, const int32_t* ptr, const int32_t* idx, const void* dy_t,
                   const void* x_t, void* dw) {
  return by_dtype(dtype, [&](auto zero) {
    using T = decltype(zero);
    cuda::sddmm_rows<T>(rows, batch, ptr, idx, static_cast<const T*>(dy_t), static_cast<const T*>(x_t),
                        static_cast<T*>(dw), nullptr);
  });
}

// dtype 2: x is uint16 bin codes.
int sim_info_counts(int dtype, const void* x, const int64_t* labels, int64_t seq_stride, int64_t step_stride,
                    const int64_t* perm, const double* edges, int uniform, int64_t s, int64_t t, int64_t n, int bins,
                    int classes, int history, int64_t* transitions, int64_t* side, int* flags) {
  auto count = [&](auto zero) {
    using T = decltype(zero);
    cuda::info_counts<T>(static_cast<const T*>(x), cuda::LabelView{labels, seq_stride, step_stride, perm}, edges,
                         uniform != 0, info_shape(s, t, n, bins, classes, history), transitions, side, flags, nullptr);
  };
  if (dtype == 2) return guarded([&] { count(uint16_t{}); });
  return by_dtype(dtype, count);
}

int sim_info_bin_codes(int dtype, const void* x, const double* edges, int uniform, int64_t s, int64_t t, int64_t n,
                       int bins, uint16_t* codes, int* flags) {
  return by_dtype(dtype, [&](auto zero) {
    using T = decltype(zero);
    cuda::info_bin_codes<T>(static_cast<const T*>(x), edges, uniform != 0, info_shape(s, t, n, bins, 1, 0), codes,
                            flags, nullptr);
  });
}

int sim_info_scores(const int64_t* joint, const int64_t* transitions, int64_t n, int bins, int classes, int history,
                    double unit, int miller_madow, double* entropy, double* mi, double* te) {
  return guarded([&] {
    cuda::info_scores(joint, transitions, info_shape(0, 0, n, bins, classes, history), unit, miller_madow != 0,
                      entropy, mi, te, nullptr);
  });
}

int sim_info_local_te(int dtype, const void* x, const int64_t* labels, int64_t seq_stride, int64_t step_stride,
                      const double* edges, int uniform, int64_t s, int64_t t, int64_t n, int bins, int classes,
                      int history, const int64_t* transitions, double unit, double* table, void* out) {
  return by_dtype(dtype, [&](auto zero) {
    using T = decltype(zero);
    cuda::info_local_te<T>(static_cast<const T*>(x), cuda::LabelView{labels, seq_stride, step_stride, nullptr}, edges,
                           uniform != 0, info_shape(s, t, n, bins, classes, history), transitions, unit, table,
                           static_cast<T*>(out), nullptr);
  });
}

int64_t sim_label_regions_scratch_bytes(int64_t masks, int64_t height, int64_t width) {
  return static_cast<int64_t>(cuda::label_regions_scratch_bytes(masks, height, width));
}

int sim_label_regions(const bool* mask, int64_t masks, int64_t height, int64_t width, int eight, int32_t* labels,
                      int64_t* counts, void* scratch) {
  return guarded([&] { cuda::label_regions(mask, masks, height, width, eight != 0, labels, counts, scratch, nullptr); });
}

int sim_region_sums(int dtype, const int32_t* labels, const void* weights, const int64_t* offsets, int64_t masks,
                    int64_t plane, int64_t* sizes, double* sums) {
  return by_dtype(dtype, [&](auto zero) {
    using T = decltype(zero);
    cuda::region_sums<T>(labels, static_cast<const T*>(weights), offsets, masks, plane, sizes, sums, nullptr);
  });
}

int sim_param_scores(int dtype, const void* theta, const void* grad, int64_t n, double alpha, void* out) {
  return by_dtype(dtype, [&](auto zero) {
    using T = decltype(zero);
    cuda::param_scores<T>(static_cast<const T*>(theta), static_cast<const T*>(grad), n, alpha, static_cast<T*>(out),
                          nullptr);
  });
}

// One tensor's top-k mask as topk_cuda.cpp builds it; *nonfinite = 1 when a score is NaN/Inf.
int sim_topk_mask(int dtype, const void* theta_in, const void* grad_in, int64_t n, double alpha, int64_t keep,
                  bool* mask, int* nonfinite) {
  return by_dtype(dtype, [&](auto zero) {
    using T = decltype(zero);
    const T* theta = static_cast<const T*>(theta_in);
    const T* grad = static_cast<const T*>(grad_in);
    std::vector<unsigned long long> hist(kRadixBins);
    int flags = 0;
    auto count_digits = [&](uint64_t prefix, int fixed_bits, int shift, int64_t* host_hist) {
      std::fill(hist.begin(), hist.end(), 0ull);
      cuda::radix_histogram<T>(theta, grad, n, alpha, prefix, fixed_bits, shift, hist.data(), &flags, nullptr);
      for (int b = 0; b < kRadixBins; ++b) host_hist[b] += static_cast<int64_t>(hist[b]);
    };
    const RadixSelection sel = radix_select(ScoreKey<T>::bits, keep, count_digits);
    *nonfinite = flags != 0;
    if (flags != 0) return;
    if (keep == 0) {
      std::fill(mask, mask + n, false);
      return;
    }
    const int64_t ties_kept = keep - sel.above;
    const bool rank_ties = ties_kept < sel.equal;
    std::vector<int64_t> block_ties(cuda::topk_blocks(n), 0), offsets(block_ties.size(), 0);
    if (rank_ties) {
      cuda::count_ties<T>(theta, grad, n, alpha, sel.threshold, block_ties.data(), nullptr);
      std::exclusive_scan(block_ties.begin(), block_ties.end(), offsets.begin(), int64_t{0});
    }
    cuda::topk_write<T>(theta, grad, n, alpha, sel.threshold, rank_ties ? offsets.data() : nullptr, ties_kept, mask,
                        nullptr);
  });
}

}  // extern "C"
