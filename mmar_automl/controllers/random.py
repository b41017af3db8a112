"""RandomController: independent uniform samples of the whole space, reproducible from the seed."""

from __future__ import annotations

from typing import Any

from mmar_automl.context import Context, ContextKey
from mmar_automl.controllers._points import from_unit, ordered, rng_for
from mmar_automl.controllers.base import AUTOML_CONFIG, Controller
from mmar_automl.controllers.pruning import PrunerMixin
from mmar_automl.errors import ConfigError
from mmar_automl.recommendation import Outcome, Recommendation
from mmar_automl.search.space import EnumDimension, SearchSpace


def sample_point(space: SearchSpace, seed: int | None, rec_id: int) -> dict[str, Any]:
    """Recommendation ``rec_id``'s point: floats and ints uniform on their scale (log-uniform for ``log``),
    enums a uniform choice. Each
    point has its own random stream (seed, rec_id), so it does not depend on when outcomes arrived."""
    rng = rng_for(seed, "random", rec_id)
    point: dict[str, Any] = {}
    for dim in space:
        if isinstance(dim, EnumDimension):
            point[dim.name] = list(dim.choices[rng.randrange(len(dim.choices))])
        else:
            point[dim.name] = from_unit(dim, rng.random())
    return ordered(space, point)


class RandomController(PrunerMixin, Controller):
    """Uniform random search. Args: ``num_samples`` (alias ``max_jobs``): how many points in all; left
    out, the controller never runs dry and the engine's ``--max-jobs``/``--max-time``/stop threshold
    end the run. ``initial_recommendation`` fills the workers (NUM_WORKERS points); each outcome
    brings one new point. Plus ``pruner``/``pruner_args``."""

    def __init__(self, seed: int | None = None, num_samples: int | None = None, max_jobs: int | None = None,
                 pruner: str = "none", pruner_args: dict[str, Any] | None = None):
        super().__init__(seed=seed)
        if num_samples is not None and max_jobs is not None and num_samples != max_jobs:
            raise ConfigError(AUTOML_CONFIG, "controller.args.max_jobs",
                              f"max_jobs ({max_jobs!r}) is another name for num_samples ({num_samples!r}): give one")
        total = num_samples if num_samples is not None else max_jobs
        if total is not None and (not isinstance(total, int) or isinstance(total, bool) or total < 1):
            raise ConfigError(AUTOML_CONFIG, "controller.args.num_samples",
                              f"num_samples must be a positive integer, got {total!r}")
        self.num_samples = total
        self._init_pruner(pruner, pruner_args)

    def _next(self, count: int) -> list[Recommendation]:
        assert self.space is not None, "set_search_space first"
        if self.num_samples is not None:
            count = min(count, self.num_samples - self._next_rec_id)
        return [self._recommend(sample_point(self.space, self.seed, self._next_rec_id)) for _ in range(count)]

    def initial_recommendation(self, ctx: Context) -> list[Recommendation]:
        return self._next(max(1, int(ctx.get_prop(ContextKey.NUM_WORKERS, 1) or 1)))

    def refine_recommendation(self, outcome: Outcome, ctx: Context) -> list[Recommendation]:
        self._observe_outcome(outcome)
        return self._next(1)

    def is_exhausted(self) -> bool:
        return self.num_samples is not None and self._next_rec_id >= self.num_samples
