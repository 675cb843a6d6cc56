"""pyprune_ext: fast C++/CUDA ops for neural-network pruning.

Information scores of neurons (MI, TE, entropy), Taylor importance of channels and parameters,
a sparse masked linear layer and whole-model conversion to it, physical removal of LSTM/GRU
units, connected regions of pruned weights,
with a pure NumPy reference of every op in ``pyprune_ext.reference``.
"""
from . import reference
from ._ops import cpu_capability, ops, set_cpu_capability, supported_cpu_capabilities
from .regions import RegionStats, label_regions, prune_regions, region_stats
from .sparse import SparseLinear, random_mask, sparse_linear
from .taylor import CRITERIA, ChannelStats, ScoreCollector, channel_scores, l1_stdv_scores, normalize_scores
from .topk import global_topk_masks, magnitude_masks, param_scores
from .recurrent import remove_recurrent_units
from .sparsify import densify, sparsify
from .info import (InfoAccumulator, InfoScores, PermutationTest, bin_edges, entropy,
                   information_scores, mutual_information, permutation_test, transfer_entropy)

__version__ = "0.1.0"  # keep equal to pyproject.toml

__all__ = ["ops", "reference", "cpu_capability", "supported_cpu_capabilities",
           "set_cpu_capability", "InfoAccumulator", "InfoScores", "PermutationTest", "bin_edges",
           "entropy", "information_scores", "mutual_information", "permutation_test",
           "transfer_entropy", "CRITERIA", "ChannelStats", "ScoreCollector", "channel_scores",
           "global_topk_masks", "magnitude_masks", "l1_stdv_scores", "normalize_scores", "param_scores",
           "remove_recurrent_units", "sparsify", "densify",
           "SparseLinear", "random_mask", "sparse_linear", "RegionStats", "label_regions",
           "prune_regions", "region_stats"]
