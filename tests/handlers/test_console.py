"""The console handler's live view with several jobs at once on one worker (--jobs-per-gpu)."""

from __future__ import annotations

import io

from rich.console import Console

from mmar_automl.context import Context, ContextKey
from mmar_automl.handlers.console import ConsoleHandler
from mmar_automl.run.job import JobRecord
from mmar_automl.recommendation import JobState, Recommendation


def _job(uid: str, number: int, seq: int) -> JobRecord:
    return JobRecord(job_uid=uid, number=number, worker=1, worker_seq=seq, folder=f"/x/W1_{seq}_J{number}",
                     recommendation=Recommendation(number - 1, {"lr": 0.1}), state=JobState.RUNNING, started_at=1.0)


def _text(handler: ConsoleHandler) -> str:
    buf = io.StringIO()
    Console(file=buf, width=120, markup=False, highlight=False).print(handler._render())
    return buf.getvalue()


def test_two_jobs_on_one_worker_both_show_until_each_ends():
    handler = ConsoleHandler(live=False, console=Console(file=io.StringIO(), markup=False))
    ctx = Context()
    ctx.set_prop(ContextKey.WORKERS, ["cpu"])
    handler.start_automl(ctx)
    first, second = _job("a", 1, 1), _job("b", 2, 2)
    for job in (first, second):
        ctx.set_prop(ContextKey.JOB, job)
        handler.start_job(ctx)
    assert "W1_1_J1" in _text(handler) and "W1_2_J2" in _text(handler)
    first.state, first.ended_at, first.score = JobState.COMPLETE, 2.0, 0.5
    ctx.set_prop(ContextKey.JOB, first)
    handler.end_job(ctx)
    text = _text(handler)
    assert "1 running" in text
    assert "W1_2_J2" in [line.split("│")[3].strip() for line in text.splitlines() if line.count("│") == 6]
