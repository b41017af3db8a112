"""A fake executor for controller tests: evaluates a function instead of training, with several workers
finishing in a fixed, non-FIFO order, and a journal of outcomes (what resume replays)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mmar_automl.context import Context, ContextKey
from mmar_automl.controllers.base import Controller
from mmar_automl.recommendation import JobState, Outcome, Recommendation
from mmar_automl.search.space import SearchSpace

Objective = Callable[[dict[str, Any]], "float | None"]


def score_of(space: SearchSpace, point: dict[str, Any]) -> float:
    """A deterministic objective over any test space: floats prefer 30% of their range, enums their
    last choice. Higher is better."""
    total = 0.0
    for dim in space:
        if dim.name not in point:
            continue
        if dim.type == "float":
            u = (point[dim.name] - dim.low) / ((dim.high - dim.low) or 1.0)
            total -= (u - 0.3) ** 2
        else:
            total += 0.1 * dim.index_of(point[dim.name]) / max(1, len(dim.choices) - 1)
    return total


class FakeRun:
    """Drive a controller the way the engine does: a queue, ``workers`` slots, outcomes journaled."""

    def __init__(self, ctrl: Controller, space: SearchSpace, workers: int = 2, seed: int = 7,
                 objective: Objective | None = None, fail_every: int = 0):
        self.ctrl, self.space, self.workers = ctrl, space, workers
        self.ctx = Context(**{ContextKey.NUM_WORKERS: workers, ContextKey.SEED: seed})
        self.objective = objective or (lambda p: score_of(space, p))
        self.fail_every = fail_every
        self.issued: list[Recommendation] = []
        self.journal: list[Outcome] = []
        self.queue: list[Recommendation] = []
        self.running: list[Recommendation] = []
        ctrl.set_search_space(space, self.ctx)
        self._take(ctrl.initial_recommendation(self.ctx))

    def _take(self, recs: list[Recommendation]) -> None:
        self.issued.extend(recs)
        self.queue.extend(recs)

    def _outcome(self, rec: Recommendation) -> Outcome:
        n = len(self.journal) + 1
        if self.fail_every and n % self.fail_every == 0:
            return Outcome(rec, JobState.FAILED, None, f"J{n}")
        value = self.objective(dict(rec.point))
        return Outcome(rec, JobState.COMPLETE, value, f"J{n}", ((1, value),))

    def step(self) -> bool:
        """Start jobs on free slots, then finish one (the newest when even, the oldest when odd)."""
        while self.queue and len(self.running) < self.workers:
            self.running.append(self.queue.pop(0))
        if not self.running:
            return False
        rec = self.running.pop(-1 if len(self.journal) % 2 == 0 else 0)
        outcome = self._outcome(rec)
        self.journal.append(outcome)
        self._take(self.ctrl.refine_recommendation(outcome, self.ctx))
        return True

    def run(self, jobs: int) -> FakeRun:
        while len(self.journal) < jobs and self.step():
            pass
        return self


def replay(ctrl: Controller, space: SearchSpace, journal: list[Outcome], workers: int = 2,
           seed: int = 7) -> list[Recommendation]:
    """What resume does: a fresh controller, initial_recommendation, then every journaled outcome."""
    ctx = Context(**{ContextKey.NUM_WORKERS: workers, ContextKey.SEED: seed})
    ctrl.set_search_space(space, ctx)
    recs = list(ctrl.initial_recommendation(ctx))
    for outcome in journal:
        recs.extend(ctrl.refine_recommendation(outcome, ctx))
    return recs
