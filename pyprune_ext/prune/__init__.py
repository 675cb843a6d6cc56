"""The pruning workflows of the five papers, each a config dataclass (full settings by default,
``Config.quick()`` for a run of about a minute) and a ``run_*`` function returning a results dict
(``summary`` lines, ``figures`` paths; ``results.json`` and the figures go to ``out_dir``).

=============  ===========================================  ==================================
name           what                                          paper
=============  ===========================================  ==================================
magnitude      iterative magnitude pruning + retraining      Han et al. 2015
region         magnitude 0.5 + connected-region pruning      region grouping (MLP 784-100-50-10)
information    LSTM unit pruning by MI / TE                  TE papers (conv -> LSTM(128) -> FC)
taylor         one-channel-at-a-time Taylor pruning, FLOPs   thesis chapter 4 (LeNet5-like)
single-shot    |g theta| + alpha theta^2 at 90/95/98%        report 4(3)
sparse         SparseLinear from scratch at gamma 1 .. 0.04  1/25-density paper
structured     ResNet channels through Torch-Pruning          thesis chapter 4 criteria, real net
=============  ===========================================  ==================================
"""
from .information import InformationConfig, run_information
from .magnitude import MagnitudeConfig, run_magnitude
from .region import RegionConfig, run_region
from .single_shot import SingleShotConfig, run_single_shot, single_shot_masks
from .sparse import SparseConfig, run_sparse
from .structured import StructuredConfig, run_structured
from .taylor import TaylorConfig, run_taylor

# name -> (config class, run function, one-line help)
WORKFLOWS = {
    "magnitude": (MagnitudeConfig, run_magnitude, "magnitude pruning with retraining (Han et al.)"),
    "region": (RegionConfig, run_region, "connected-region pruning of an MLP's first layer"),
    "information": (InformationConfig, run_information, "LSTM unit pruning by MI / TE on moving digits"),
    "taylor": (TaylorConfig, run_taylor, "Taylor channel pruning of a LeNet5-like CNN, FLOPs tracked"),
    "single-shot": (SingleShotConfig, run_single_shot, "single-shot |g theta| + alpha theta^2 pruning"),
    "sparse": (SparseConfig, run_sparse, "SparseLinear MLP trained from scratch at gamma 1 .. 1/25"),
    "structured": (StructuredConfig, run_structured,
                   "ResNet channel pruning through Torch-Pruning: our criteria vs its own (FLOPs, latency)"),
}

__all__ = ["WORKFLOWS", "MagnitudeConfig", "run_magnitude", "RegionConfig", "run_region",
           "InformationConfig", "run_information", "TaylorConfig", "run_taylor", "SingleShotConfig",
           "run_single_shot", "single_shot_masks", "SparseConfig", "run_sparse", "StructuredConfig",
           "run_structured"]
