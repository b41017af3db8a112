"""GridController: every combination of enum choices exactly once; floats fixed at the middle of their range."""

from __future__ import annotations

from typing import Any

from mmar_automl.context import Context
from mmar_automl.controllers._points import enum_combinations, enum_point, float_middles, ordered
from mmar_automl.controllers.base import Controller
from mmar_automl.controllers.pruning import PrunerMixin
from mmar_automl.recommendation import Outcome, Recommendation


class GridController(PrunerMixin, Controller):
    """The product of enum choices in a stable order (enum dimensions in space order, the last varying
    fastest). A float dimension is not gridded: it takes the middle of its range, ``low + (high-low)/2``
    (Clara's starting point; use the Random, Reinforcement or Optuna controller to search floats).

    ``initial_recommendation`` returns the whole grid (the engine queues what does not fit on the
    workers); afterwards the controller is exhausted. Args: ``pruner``/``pruner_args`` (see pruning.py).
    """

    def __init__(self, seed: int | None = None, pruner: str = "none", pruner_args: dict[str, Any] | None = None):
        super().__init__(seed=seed)
        self._init_pruner(pruner, pruner_args)
        self._done = False

    def initial_recommendation(self, ctx: Context) -> list[Recommendation]:
        assert self.space is not None, "set_search_space first"
        floats = float_middles(self.space)
        recs = []
        for i, combo in enumerate(enum_combinations(self.space)):
            point = ordered(self.space, {**enum_point(self.space, combo), **floats})
            recs.append(self._recommend(point, grid_index=i))
        self._done = True
        return recs

    def refine_recommendation(self, outcome: Outcome, ctx: Context) -> list[Recommendation]:
        self._observe_outcome(outcome)
        return []

    def is_exhausted(self) -> bool:
        return self._done
