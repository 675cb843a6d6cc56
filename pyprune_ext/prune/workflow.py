"""The record of a workflow: what the CLI, ``reproduce``, the report and the docs read about it,
declared once at the bottom of each workflow module."""
import dataclasses
from typing import Callable

__all__ = ["Workflow"]


@dataclasses.dataclass(frozen=True)
class Workflow:
    name: str          # the command and the key of WORKFLOWS
    config: type       # its RunSettings dataclass
    run: Callable      # config -> results dict
    help: str          # one line for the CLI
    paper: str         # the paper's setting and published figure
    claims: Callable   # task key -> [Claim]: the paper's claims this workflow's results can test
    table: Callable    # results -> [(row label, value)]: the report's table, one row per setting
    figure: Callable   # [results per seed] -> ({label: (xs, [ys per seed], style)}, (x label, y label))

