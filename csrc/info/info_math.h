// Plug-in entropy, mutual information and transfer entropy of one neuron from its joint counts,
// shared by the CPU and CUDA kernels. All three are sums of c*log(c) over joint and marginal
// counts, so no probability table is ever materialised:
//   H(X)     = log n - (1/n) sum_x c_x log c_x
//   MI(X;Y)  = log n + (1/n) [sum c_xy log c_xy - sum c_x log c_x - sum c_y log c_y]
//   TE(Y->X) = (1/n) [sum c_hxy log c_hxy + sum c_h log c_h - sum c_hx log c_hx - sum c_hy log c_hy]
// with h the neuron's own history state, x its next bin and y the label at the current step.
// Miller-Madow adds (m - 1) / (2n) to every entropy term (m = occupied cells).
#pragma once

#include <cmath>
#include <cstdint>

#include "common/hostdevice.h"

namespace pyprune {

PYPRUNE_HD double xlogx(double c) { return c > 0.0 ? c * log(c) : 0.0; }

// The default c log c of the sums below; the CPU kernels pass a table of small counts instead.
struct XLogX {
  PYPRUNE_HD double operator()(double c) const { return xlogx(c); }
};

struct InfoScore {
  double entropy;
  double mutual_information;
  double transfer_entropy;
};

// joint: [bins][classes] counts of (x_t, y_t).
template <typename count_t, typename XLogXFn = XLogX>
PYPRUNE_HD void entropy_and_mi(const count_t* joint, int32_t bins, int32_t classes,
                               bool miller_madow, double* entropy, double* mi,
                               const XLogXFn& xlogx = XLogXFn()) {
  double n = 0, s_xy = 0, s_x = 0, s_y = 0;
  int64_t m_x = 0, m_y = 0, m_xy = 0;
  for (int32_t b = 0; b < bins; ++b) {
    double c_x = 0;
    for (int32_t y = 0; y < classes; ++y) {
      const double c = static_cast<double>(joint[b * classes + y]);
      s_xy += xlogx(c);
      m_xy += c > 0;
      c_x += c;
    }
    s_x += xlogx(c_x);
    m_x += c_x > 0;
    n += c_x;
  }
  for (int32_t y = 0; y < classes; ++y) {
    double c_y = 0;
    for (int32_t b = 0; b < bins; ++b) c_y += static_cast<double>(joint[b * classes + y]);
    s_y += xlogx(c_y);
    m_y += c_y > 0;
  }
  if (n <= 0) {
    *entropy = 0;
    *mi = 0;
    return;
  }
  double h = log(n) - s_x / n;
  double i = log(n) + (s_xy - s_x - s_y) / n;
  h = h > 0 ? h : 0;  // rounding can leave -1e-16 on a constant neuron
  i = i > 0 ? i : 0;
  if (miller_madow) {
    h += (m_x - 1) / (2 * n);
    i += (m_x + m_y - m_xy - 1) / (2 * n);
  }
  *entropy = h;
  *mi = i;
}

// joint: [states][bins][classes] counts of (history state h, next bin x, label y).
template <typename count_t, typename XLogXFn = XLogX>
PYPRUNE_HD double transfer_entropy(const count_t* joint, int64_t states, int32_t bins,
                                   int32_t classes, bool miller_madow,
                                   const XLogXFn& xlogx = XLogXFn()) {
  double n = 0, s_hxy = 0, s_h = 0, s_hx = 0, s_hy = 0;
  int64_t m_h = 0, m_hx = 0, m_hy = 0, m_hxy = 0;
  for (int64_t h = 0; h < states; ++h) {
    const count_t* block = joint + h * bins * classes;
    double c_h = 0;
    for (int32_t x = 0; x < bins; ++x) {
      double c_hx = 0;
      for (int32_t y = 0; y < classes; ++y) {
        const double c = static_cast<double>(block[x * classes + y]);
        s_hxy += xlogx(c);
        m_hxy += c > 0;
        c_hx += c;
      }
      s_hx += xlogx(c_hx);
      m_hx += c_hx > 0;
      c_h += c_hx;
    }
    for (int32_t y = 0; y < classes; ++y) {
      double c_hy = 0;
      for (int32_t x = 0; x < bins; ++x) c_hy += static_cast<double>(block[x * classes + y]);
      s_hy += xlogx(c_hy);
      m_hy += c_hy > 0;
    }
    s_h += xlogx(c_h);
    m_h += c_h > 0;
    n += c_h;
  }
  if (n <= 0) return 0;
  double te = (s_hxy + s_h - s_hx - s_hy) / n;
  te = te > 0 ? te : 0;
  if (miller_madow) te += (m_hx + m_hy - m_hxy - m_h) / (2 * n);
  return te;
}

// Pointwise (local) TE of every cell, in nats: table[h][x][y] = log [c_hxy c_h / (c_hy c_hx)];
// cells never seen get 0 (no transition of the data looks them up).
template <typename count_t>
PYPRUNE_HD void local_transfer_entropy_table(const count_t* joint, int64_t states, int32_t bins,
                                             int32_t classes, double* table) {
  for (int64_t h = 0; h < states; ++h) {
    const count_t* block = joint + h * bins * classes;
    double* out = table + h * bins * classes;
    double c_h = 0;
    for (int32_t i = 0; i < bins * classes; ++i) c_h += static_cast<double>(block[i]);
    for (int32_t x = 0; x < bins; ++x) {
      double c_hx = 0;
      for (int32_t y = 0; y < classes; ++y) c_hx += static_cast<double>(block[x * classes + y]);
      for (int32_t y = 0; y < classes; ++y) {
        double c_hy = 0;
        for (int32_t b = 0; b < bins; ++b) c_hy += static_cast<double>(block[b * classes + y]);
        const double c = static_cast<double>(block[x * classes + y]);
        out[x * classes + y] = c > 0 ? log(c * c_h / (c_hy * c_hx)) : 0.0;
      }
    }
  }
}

}  // namespace pyprune
