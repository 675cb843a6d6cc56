// Sizes of the histograms of the information ops, shared by the CPU and CUDA bindings.
#pragma once

#include <cstdint>

#include "common/hostdevice.h"

namespace pyprune {

// Transitions are counted as (history state, next bin, label): states = bins^history cells of the
// neuron's own past, so one neuron owns states * bins * classes counters.
struct InfoShape {
  int64_t sequences, steps, neurons;
  int32_t bins, classes, history;
  int64_t states;  // bins^history (1 when history == 0, unused then)

  PYPRUNE_HD int64_t joint_cells() const { return static_cast<int64_t>(bins) * classes; }
  PYPRUNE_HD int64_t transition_cells() const { return history > 0 ? states * bins * classes : 0; }
  // Steps whose bin is the "current" bin of no counted transition: t < history-1 and t = T-1.
  // Their (x_t, y_t) go to a small side histogram so MI comes from the same pass as TE.
  PYPRUNE_HD bool step_outside_transitions(int64_t t) const {
    return history == 0 || t < history - 1 || t == steps - 1;
  }
};

}  // namespace pyprune
