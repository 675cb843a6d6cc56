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
from . import information, magnitude, region, single_shot, sparse, structured, taylor
from .information import InformationConfig, run_information
from .magnitude import MagnitudeConfig, run_magnitude
from .region import RegionConfig, run_region
from .single_shot import SingleShotConfig, run_single_shot, single_shot_masks
from .sparse import SparseConfig, run_sparse
from .structured import StructuredConfig, run_structured
from .taylor import TaylorConfig, run_taylor
from .workflow import Workflow

# name -> Workflow record (config, run, help, paper, claims, table, figure), in the CLI's order
WORKFLOWS = {w.name: w for w in (magnitude.WORKFLOW, region.WORKFLOW, information.WORKFLOW, taylor.WORKFLOW,
                                 single_shot.WORKFLOW, sparse.WORKFLOW, structured.WORKFLOW)}

__all__ = ["WORKFLOWS", "Workflow", "MagnitudeConfig", "run_magnitude", "RegionConfig", "run_region",
           "InformationConfig", "run_information", "TaylorConfig", "run_taylor", "SingleShotConfig",
           "run_single_shot", "single_shot_masks", "SparseConfig", "run_sparse", "StructuredConfig",
           "run_structured"]
