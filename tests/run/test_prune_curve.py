"""A pruned job's curve ends where the pruner decided: values it wrote while being stopped are dropped."""

from __future__ import annotations

from types import SimpleNamespace

from mmar_automl.context import Context
from mmar_automl.run.engine import Engine
from mmar_automl.run.job import JobRecord
from mmar_automl.recommendation import JobState, Recommendation


def _validation(epoch: int, value: float) -> dict:
    return {"kind": "validation", "epoch": epoch, "key_metric": "dice", "metrics": {"dice": value}}


def test_values_after_the_prune_decision_are_not_recorded():
    job = JobRecord("u1", 1, 1, 1, "/nowhere", Recommendation(0, {}))
    running = SimpleNamespace(job=job, kill_reason=None)
    batches = [[_validation(1, 0.1), _validation(2, 0.2)], [_validation(3, 0.3)]]
    terminated = []

    def terminate(run, reason, message):
        run.kill_reason = reason
        terminated.append(message)

    engine = Engine.__new__(Engine)  # only what _follow touches
    engine.executor = SimpleNamespace(read_metrics=lambda run: batches.pop(0), terminate=terminate)
    engine.controller = SimpleNamespace(should_prune=lambda rec, step, value, ctx: step == 1)
    engine.ctx = Context()
    engine._fire_job = lambda event, job: None
    engine._follow(running)
    engine._follow(running)
    assert job.intermediate == [(1, 0.1)]
    assert terminated == ["pruned at epoch 1 (dice=0.1)"]
