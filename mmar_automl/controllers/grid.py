"""GridController: every combination of enum choices (and small int ranges) exactly once; floats fixed at
the middle of their range."""

from __future__ import annotations

import itertools
from typing import Any

from mmar_automl.context import Context
from mmar_automl.controllers._points import enum_combinations, enum_point, float_middles, ordered
from mmar_automl.controllers.base import Controller
from mmar_automl.controllers.pruning import PrunerMixin
from mmar_automl.recommendation import Outcome, Recommendation
from mmar_automl.search.space import IntDimension, SearchSpace


# An int range with at most this many values is gridded like an enum of its values (e.g. num_res_units
# in [1, 3], a step of 2 over [2, 8]); a longer one would multiply the grid, so it takes its middle.
GRID_INT_MAX_VALUES = 5


def gridded_ints(space: SearchSpace) -> list[IntDimension]:
    """The int dimensions the grid enumerates (see GRID_INT_MAX_VALUES)."""
    return [d for d in space.ranges if isinstance(d, IntDimension) and len(d.values) <= GRID_INT_MAX_VALUES]


class GridController(PrunerMixin, Controller):
    """The product of enum choices in a stable order (enum dimensions in space order, the last varying
    fastest), then of the values of small int ranges (at most GRID_INT_MAX_VALUES values). A float
    dimension, or a larger int range, is not gridded: it takes the middle of its range on its scale
    (``low + (high-low)/2``, the geometric middle for ``log``; Clara's starting point; use the Random,
    Reinforcement or Optuna controller to search it).

    ``initial_recommendation`` returns the whole grid (the engine queues what does not fit on the
    workers); afterwards the controller is exhausted. Args: ``pruner``/``pruner_args`` (see pruning.py).
    """

    def __init__(self, seed: int | None = None, pruner: str = "none", pruner_args: dict[str, Any] | None = None):
        super().__init__(seed=seed)
        self._init_pruner(pruner, pruner_args)
        self._done = False

    def initial_recommendation(self, ctx: Context) -> list[Recommendation]:
        assert self.space is not None, "set_search_space first"
        middles = float_middles(self.space)
        ints = gridded_ints(self.space)
        recs = []
        combos = itertools.product(enum_combinations(self.space), itertools.product(*(d.values for d in ints)))
        for i, (combo, int_values) in enumerate(combos):
            point = {**middles, **enum_point(self.space, combo), **{d.name: v for d, v in zip(ints, int_values)}}
            recs.append(self._recommend(ordered(self.space, point), grid_index=i))
        self._done = True
        return recs

    def refine_recommendation(self, outcome: Outcome, ctx: Context) -> list[Recommendation]:
        self._observe_outcome(outcome)
        return []

    def is_exhausted(self) -> bool:
        return self._done
