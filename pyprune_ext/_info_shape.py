"""Sizes of the information ops' histograms, shared by the wrappers, the fake kernels and the
reference (the C++ twin is csrc/info/info_shape.h)."""


def history_states(bins: int, history: int) -> int:
    """Rows of a neuron's transition histogram ``[states, B, K]``: the ``bins^history`` values its
    last ``history`` bins can take, or 0 when no transfer entropy is counted (``history == 0``)."""
    return bins**history if history > 0 else 0
