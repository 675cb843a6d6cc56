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

// Sums over one [bins][classes] block of counts: its total, and c log c summed over its cells,
// over its row sums (over classes) and over its column sums (over bins), with how many of each
// are nonzero (for Miller-Madow). Entropy and MI need one block; TE needs one per history state.
struct BlockSums {
  double total = 0, cells = 0, rows = 0, cols = 0;
  int64_t nonzero_cells = 0, nonzero_rows = 0, nonzero_cols = 0;
};

template <typename count_t, typename XLogXFn>
PYPRUNE_HD BlockSums block_sums(const count_t* block, int32_t bins, int32_t classes, const XLogXFn& xlogx) {
  BlockSums s;
  for (int32_t b = 0; b < bins; ++b) {
    double row = 0;
    for (int32_t y = 0; y < classes; ++y) {
      const double c = static_cast<double>(block[b * classes + y]);
      s.cells += xlogx(c);
      s.nonzero_cells += c > 0;
      row += c;
    }
    s.rows += xlogx(row);
    s.nonzero_rows += row > 0;
    s.total += row;
  }
  for (int32_t y = 0; y < classes; ++y) {
    double col = 0;
    for (int32_t b = 0; b < bins; ++b) col += static_cast<double>(block[b * classes + y]);
    s.cols += xlogx(col);
    s.nonzero_cols += col > 0;
  }
  return s;
}

// joint: [bins][classes] counts of (x_t, y_t).
template <typename count_t, typename XLogXFn = XLogX>
PYPRUNE_HD void entropy_and_mi(const count_t* joint, int32_t bins, int32_t classes,
                               bool miller_madow, double* entropy, double* mi,
                               const XLogXFn& xlogx = XLogXFn()) {
  const BlockSums s = block_sums(joint, bins, classes, xlogx);
  const double n = s.total;
  if (n <= 0) {
    *entropy = 0;
    *mi = 0;
    return;
  }
  double h = log(n) - s.rows / n;
  double i = log(n) + (s.cells - s.rows - s.cols) / n;
  h = h > 0 ? h : 0;  // rounding can leave -1e-16 on a constant neuron
  i = i > 0 ? i : 0;
  if (miller_madow) {
    h += (s.nonzero_rows - 1) / (2 * n);
    i += (s.nonzero_rows + s.nonzero_cols - s.nonzero_cells - 1) / (2 * n);
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
    const BlockSums s = block_sums(joint + h * bins * classes, bins, classes, xlogx);
    s_hxy += s.cells;
    s_hx += s.rows;
    s_hy += s.cols;
    m_hxy += s.nonzero_cells;
    m_hx += s.nonzero_rows;
    m_hy += s.nonzero_cols;
    s_h += xlogx(s.total);
    m_h += s.total > 0;
    n += s.total;
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
