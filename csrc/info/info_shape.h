// Sizes of the histograms of the information ops, shared by the CPU and CUDA bindings.
#pragma once

#include <cstdint>

#include "common/hostdevice.h"

namespace pyprune {

// The values a neuron's last `history` bins can take, bins^history: the rows of its transition
// histogram [states][bins][classes], or 0 when no transfer entropy is counted (history == 0).
// The twin of pyprune_ext/_info_shape.py's history_states.
PYPRUNE_HD int64_t history_states(int32_t bins, int32_t history) {
  if (history <= 0) return 0;
  int64_t states = 1;
  for (int32_t i = 0; i < history; ++i) states *= bins;
  return states;
}

// Transitions are counted as (history state, next bin, label), so one neuron owns
// states * bins * classes counters.
struct InfoShape {
  int64_t sequences, steps, neurons;
  int32_t bins, classes;
  int32_t history;  // of the counting ops; 0 in a shape read off count tensors (only states matters)
  int64_t states;   // history_states(bins, history), or the transition tensors' dim 1

  PYPRUNE_HD int64_t joint_cells() const { return static_cast<int64_t>(bins) * classes; }
  PYPRUNE_HD int64_t transition_cells() const { return states * bins * classes; }
  // Steps whose bin is the "current" bin of no counted transition: t < history-1 and t = T-1.
  // Their (x_t, y_t) go to a small side histogram so MI comes from the same pass as TE.
  PYPRUNE_HD bool step_outside_transitions(int64_t t) const {
    return history == 0 || t < history - 1 || t == steps - 1;
  }
};

}  // namespace pyprune
