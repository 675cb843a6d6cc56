// Binning of one row of activations: the per-neuron edges (Bins) and the vectorised binner of a
// block of adjacent neurons (RowBinner), with the line-aligned buffers its rows are stored in.
// Included by info_kernels.cpp inside pyprune::cpu_<capability>::{anonymous}: compiled once per
// CPU capability with that capability's flags; the system headers come from the .cpp.
#pragma once

// Bins the W adjacent neurons [n0, n0 + W) of a row. Equal-width bins keep each neuron's lo and
// scale. Loops are written to vectorise: an int OR-reduction for the finiteness test.
class RowBinner {
 public:
  RowBinner(const Bins& b, int64_t max_width)
      : b_(b), lo_(max_width), scale_(max_width), lo_f_(max_width), scale_f_(max_width) {}

  void set_block(int64_t n0, int64_t width) {
    n0_ = n0;
    width_ = width;
    use_float_ = b_.uniform && b_.bins <= kMaxFloatBins;
    if (!b_.uniform) return;
    for (int64_t w = 0; w < width; ++w) {
      const double* e = b_.edges + (n0 + w) * (b_.bins + 1);
      lo_[w] = e[0];
      scale_[w] = uniform_scale(e[0], e[b_.bins], b_.bins);
      lo_f_[w] = static_cast<float>(lo_[w]);
      scale_f_[w] = static_cast<float>(scale_[w]);
      // The error bound of float_bins needs lo exact in float (it is when lo is the minimum of
      // float data) and a normal or zero scale.
      use_float_ &= static_cast<double>(lo_f_[w]) == lo_[w] &&
                    (std::isnormal(scale_f_[w]) || scale_f_[w] == 0.0f);
    }
  }

  // Fills out[0, W) with the bins of x_row[0, W); returns true on NaN/Inf.
  bool operator()(const float* x_row, uint16_t* out) const {
    if (!use_float_) return exact_bins(x_row, out);
    const int flags = float_bins(x_row, out);
    return flags & kUnsure ? exact_bins(x_row, out) : flags != 0;
  }
  bool operator()(const double* x_row, uint16_t* out) const { return exact_bins(x_row, out); }

 private:
  static constexpr int32_t kMaxFloatBins = 1024;

  // Bins in double, as the reference does.
  template <typename scalar_t>
  bool exact_bins(const scalar_t* x_row, uint16_t* out) const {
    int bad = 0;
    if (b_.uniform) {
      const double last = b_.bins - 1;
      for (int64_t w = 0; w < width_; ++w) {
        const double v = static_cast<double>(x_row[w]);
        bad |= static_cast<int>(is_nonfinite(v));
        out[w] = static_cast<uint16_t>(uniform_bin(v, lo_[w], scale_[w], last));
      }
    } else {
      const double* edges = b_.edges + n0_ * (b_.bins + 1);
      for (int64_t w = 0; w < width_; ++w) {
        const double v = static_cast<double>(x_row[w]);
        bad |= static_cast<int>(is_nonfinite(v));
        out[w] = static_cast<uint16_t>(edges_bin(v, edges + w * (b_.bins + 1) + 1, b_.bins - 1));
      }
    }
    return bad != 0;
  }

  // Equal-width bins of a float row in float: twice the lanes per vector. u = (v - lo) * scale
  // is within 2e-7 * B of the double value, so its floor can differ only where it lies that close
  // to an interior bin edge; such rows are flagged kUnsure and redone in double, so the bins
  // always equal the reference's. The test is on w = u + tolerance clamped to [1/2, B - 1/2]
  // (inside the first and last bins): unsure where frac(w) < 2 * tolerance, i.e. where
  // u - tolerance and u + tolerance floor differently. Otherwise floor(w) is the bin.
  // NaN/Inf: with AVX-512 they make w NaN, which is flagged unsure, and the double pass reports
  // them; the portable loop flags them as kNonFinite.
  static constexpr int kNonFinite = 1, kUnsure = 2;
  int float_bins(const float* x_row, uint16_t* out) const {
    const float top = static_cast<float>(b_.bins) - 0.5f;
    const float tolerance = (static_cast<float>(b_.bins) + 1.0f) * 0x1p-20f;
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512DQ__)
    const __m512 tol = _mm512_set1_ps(tolerance), two_tol = _mm512_set1_ps(2 * tolerance);
    const __m512 half = _mm512_set1_ps(0.5f), top_v = _mm512_set1_ps(top);
    constexpr __mmask16 kAll = 0xffff;
    __mmask16 unsure = 0;
    auto bins16 = [&](int64_t w, __mmask16 lanes) {
      const __m512 v = _mm512_maskz_loadu_ps(lanes, x_row + w);
      const __m512 lo = _mm512_maskz_loadu_ps(lanes, lo_f_.data() + w);
      const __m512 scale = _mm512_maskz_loadu_ps(lanes, scale_f_.data() + w);
      __m512 u = _mm512_fmadd_ps(_mm512_sub_ps(v, lo), scale, tol);
      u = _mm512_fmadd_ps(v, _mm512_setzero_ps(), u);   // v * 0 is NaN for NaN/Inf v
      // NaN in the second operand stays NaN. (The zero-masked forms with every lane set are the
      // plain instructions; GCC 12 warns about the undefined vector inside the plain intrinsics.)
      u = _mm512_maskz_min_ps(kAll, top_v, _mm512_maskz_max_ps(kAll, half, u));
      const __m512 frac = _mm512_reduce_ps(u, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
      unsure |= _mm512_mask_cmp_ps_mask(lanes, frac, two_tol, _CMP_NGE_UQ);
      return _mm512_maskz_cvttps_epi32(kAll, u);
    };
    // Word 2i of the pair (a, b) of int32 vectors: the low halves, as 32 uint16.
    const __m512i low_words = _mm512_set_epi16(62, 60, 58, 56, 54, 52, 50, 48, 46, 44, 42, 40, 38,
                                               36, 34, 32, 30, 28, 26, 24, 22, 20, 18, 16, 14, 12,
                                               10, 8, 6, 4, 2, 0);
    int64_t w = 0;
    for (; w + 32 <= width_; w += 32) {
      const __m512i a = bins16(w, kAll), b = bins16(w + 16, kAll);
      _mm512_storeu_si512(out + w, _mm512_permutex2var_epi16(a, low_words, b));
    }
    for (; w < width_; w += 16) {
      const int64_t left = std::min<int64_t>(width_ - w, 16);
      const __mmask16 lanes = static_cast<__mmask16>((1u << left) - 1);
      _mm512_mask_cvtepi32_storeu_epi16(out + w, lanes, bins16(w, lanes));
    }
    return unsure ? kUnsure : 0;
#else
    int bad = 0, unsure = 0;
    for (int64_t w = 0; w < width_; ++w) {
      const float v = x_row[w];
      bad |= static_cast<int>((v - v) != 0.0f);
      float u = (v - lo_f_[w]) * scale_f_[w] + tolerance;
      u = u > 0.5f ? u : 0.5f;  // also maps NaN to 1/2
      u = u < top ? u : top;
      const int32_t bin = static_cast<int32_t>(u);
      unsure |= static_cast<int>(u - static_cast<float>(bin) < 2 * tolerance);
      out[w] = static_cast<uint16_t>(bin);
    }
    return (bad ? kNonFinite : 0) | (unsure ? kUnsure : 0);
#endif
  }

  const Bins& b_;
  int64_t n0_ = 0, width_ = 0;
  bool use_float_ = false;  // every lane of the block meets float_bins' error bound
  std::vector<double> lo_, scale_;
  std::vector<float> lo_f_, scale_f_;
};

// n values starting on a cache line. Rows that are stored as vectors and read back at once (the
// bins, the cells) then never straddle two lines; the store buffer does not forward a split
// store to the load that follows it, which waits for the store to retire.
template <typename T>
class LineAligned {
 public:
  explicit LineAligned(int64_t n) : storage_(n + 64 / sizeof(T)) {
    const auto address = reinterpret_cast<uintptr_t>(storage_.data());
    data_ = storage_.data() + (64 - address % 64) % 64 / sizeof(T);
  }
  LineAligned(const LineAligned&) = delete;
  LineAligned& operator=(const LineAligned&) = delete;
  T* data() { return data_; }

 private:
  std::vector<T> storage_;
  T* data_;
};
