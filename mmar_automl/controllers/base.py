"""The controller interface (Clara's method names): decides *what* to evaluate, never *how* or *when*.

Controllers never write the journal or start processes. Resume works by replay: the engine builds a
fresh controller with the same args and seed, calls ``set_search_space`` and ``initial_recommendation``,
then ``refine_recommendation`` with every journaled outcome in journal order. A controller must
therefore be deterministic given (args, seed, space, outcome order); it then needs no state file.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from mmar_automl.context import Context, ContextKey
from mmar_automl.errors import ConfigError
from mmar_automl.recommendation import Outcome, Recommendation
from mmar_automl.search.space import SearchSpace

AUTOML_CONFIG = "config/config_automl.json"  # where controller args come from, for ConfigError


class Controller(ABC):
    """Recommend points of a search space; learn from outcomes."""

    # True when the controller learns from ``ctx WARM_START`` (earlier jobs, `run --warm-start`) in
    # ``initial_recommendation``; run refuses a warm start for a controller that would ignore it.
    accepts_warm_start = False

    def __init__(self, seed: int | None = None, **kwargs: Any):
        if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
            # The run's --seed is always an int, so a bad seed comes from config_automl.json's args.
            raise ConfigError(AUTOML_CONFIG, "controller.args.seed",
                              f"seed must be an integer, got {seed!r}")
        self.seed = seed
        self.space: SearchSpace | None = None
        self._next_rec_id = 0

    def set_search_space(self, space: SearchSpace, ctx: Context) -> None:
        self.space = space
        if self.seed is None:
            self.seed = ctx.get_prop(ContextKey.SEED)

    @abstractmethod
    def initial_recommendation(self, ctx: Context) -> list[Recommendation]:
        """The first batch; ``ctx.get_prop(NUM_WORKERS)`` says how many can run at once."""

    @abstractmethod
    def refine_recommendation(self, outcome: Outcome, ctx: Context) -> list[Recommendation]:
        """Learn from one finished job; return further points (empty list: nothing more for now)."""

    def shutdown(self, ctx: Context) -> None:
        """Release resources; no-op by default."""

    def is_exhausted(self) -> bool:
        """True when the controller will never recommend again; the engine stops when nothing runs."""
        return False

    # Pruning (optional): controllers that can judge intermediate values override this.
    def should_prune(self, recommendation: Recommendation, step: int, value: float, ctx: Context) -> bool:
        """Called with each intermediate key-metric value of a running job; True stops it as PRUNED."""
        return False

    def _recommend(self, point: dict[str, Any], **meta: Any) -> Recommendation:
        rec = Recommendation(self._next_rec_id, point, meta)
        self._next_rec_id += 1
        return rec
