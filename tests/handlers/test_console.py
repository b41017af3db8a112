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
    assert "W1_2_J2" in [line.split("│")[3].strip() for line in text.splitlines() if line.count("│") == 7]


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _run_dir(tmp_path, max_jobs=None, controller="OptunaController", args=None):
    """A run folder whose journal starts with the run_started event the console reads."""
    import json

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "journal.jsonl").write_text(json.dumps({
        "op": "run_started", "controller": {"name": controller, "args": args or {"n_trials": 30}},
        "options": {"max_jobs": max_jobs}, "overrides": {"epochs": 3}}) + "\n")
    return run_dir


def _start(handler, ctx, job):
    ctx.set_prop(ContextKey.JOB, job)
    handler.start_job(ctx)


def _end(handler, ctx, job, state, score=None, at=None):
    job.state, job.score, job.ended_at = state, score, 2.0
    ctx.set_prop(ContextKey.JOB, job)
    handler.end_job(ctx)


def test_progress_counts_against_max_jobs_and_the_eta_counts_down(tmp_path):
    """Issue 16: with --max-jobs 4 the line read 0/2 -> 2/4 -> 3/5 -> 4/6 and the ETA grew."""
    from mmar_automl.search.space import FloatDimension, SearchSpace

    clock = Clock()
    out = io.StringIO()
    handler = ConsoleHandler(live=False, console=Console(file=out, markup=False, width=200), clock=clock)
    ctx = Context()
    ctx.set_prop(ContextKey.RUN_DIR, str(_run_dir(tmp_path, max_jobs=4)))
    ctx.set_prop("WORKERS", ["cpu", "cpu"])
    handler.start_automl(ctx)
    ctx.set_prop(ContextKey.SEARCH_SPACE, SearchSpace((FloatDimension("p", "lr", "lr", ("lr",), 0.0, 1.0),)))
    handler.search_space_available(ctx)
    jobs = [_job(str(n), n, n) for n in range(1, 5)]
    for job in jobs[:2]:
        ctx.set_prop(ContextKey.RECOMMENDATIONS, [job.recommendation])
        handler.recommendations_available(ctx)
        _start(handler, ctx, job)
    assert "0/4 jobs finished" in _text(handler) and "ETA" not in _text(handler)
    assert "-/3" in _text(handler)  # the epoch total (--set epochs=3)
    assert "lr=0.1" in _text(handler)  # the running job's parameters
    clock.now = 110.0
    _end(handler, ctx, jobs[1], JobState.COMPLETE, 0.7)
    assert "1/4 finished" in out.getvalue()
    etas = []
    for now in (110.0, 113.0, 116.0):
        clock.now = now
        etas.append(float(_text(handler).split("ETA ")[1].split(" s")[0]))
    assert etas == [30.0, 27.0, 24.0]  # 3 left x 10 s per job, counting down
    _start(handler, ctx, jobs[2])
    clock.now = 120.0
    _end(handler, ctx, jobs[0], JobState.COMPLETE, 0.9)
    assert "2/4 jobs finished" in _text(handler)
    assert "best: W1_1_J1 0.9000  lr=0.1" in _text(handler)  # the best job with its parameters


def test_aborted_jobs_are_not_finished(tmp_path):
    """After Ctrl-C the aborted jobs run again on resume: they do not count as finished."""
    handler = ConsoleHandler(live=False, console=Console(file=io.StringIO(), markup=False), clock=Clock())
    ctx = Context()
    ctx.set_prop(ContextKey.RUN_DIR, str(_run_dir(tmp_path, max_jobs=None, controller="GridController", args={})))
    ctx.set_prop("WORKERS", ["cpu"])
    handler.start_automl(ctx)
    from mmar_automl.search.space import EnumDimension, SearchSpace

    ctx.set_prop(ContextKey.SEARCH_SPACE, SearchSpace((EnumDimension("p", "a", "net", ("a",), ((1,), (2,), (3,))),)))
    handler.search_space_available(ctx)
    first, second = _job("a", 1, 1), _job("b", 2, 2)
    second.recommendation = Recommendation(1, {"lr": 0.2})
    _start(handler, ctx, first)
    _end(handler, ctx, first, JobState.COMPLETE, 0.5)
    _start(handler, ctx, second)
    _end(handler, ctx, second, JobState.ABORTED)
    assert "1/3 jobs finished" in _text(handler)


def test_after_a_resume_re_ran_the_aborted_jobs_the_summary_does_not_call_them_pending(tmp_path):
    """Review of issue 16: Ctrl-C, then --resume re-ran both aborted jobs; the last lines read
    'finished: 2 aborted, 6 complete (aborted jobs run again on resume)' and, after the Ctrl-C,
    '2/6 jobs finished, 0 running, ... ETA 34 s' on a stopped run."""
    out = io.StringIO()
    clock = Clock()
    handler = ConsoleHandler(live=False, console=Console(file=out, markup=False, width=200), clock=clock)
    ctx = Context()
    ctx.set_prop(ContextKey.RUN_DIR, str(_run_dir(tmp_path, max_jobs=3)))
    ctx.set_prop("WORKERS", ["cpu"])
    from mmar_automl.search.space import FloatDimension, SearchSpace

    done, aborted = _job("a", 1, 1), _job("b", 2, 2)
    aborted.recommendation = Recommendation(1, {"lr": 0.2})
    done.state, done.score, aborted.state = JobState.COMPLETE, 0.5, JobState.ABORTED
    ctx.set_prop(ContextKey.PREVIOUS_JOBS, [done, aborted])   # the interrupted session's jobs
    handler.start_automl(ctx)
    ctx.set_prop(ContextKey.SEARCH_SPACE, SearchSpace((FloatDimension("p", "lr", "lr", ("lr",), 0.0, 1.0),)))
    handler.search_space_available(ctx)
    retry = _job("c", 3, 3)
    retry.recommendation, retry.attempt = aborted.recommendation, 1
    _start(handler, ctx, retry)
    clock.now += 10
    _end(handler, ctx, retry, JobState.COMPLETE, 0.6)
    assert "ETA" in _text(handler)          # 1 job left, counted from this session's pace
    handler.end_automl(ctx)                 # stopped with one recommendation still to run
    assert "2/3 jobs finished" in _text(handler) and "ETA" not in _text(handler)
    last = out.getvalue().splitlines()[-1]
    assert last.startswith("finished: 1 aborted, 2 complete (the aborted jobs were run again)"), last


def test_an_aborted_job_not_yet_re_run_is_named_pending(tmp_path):
    out = io.StringIO()
    handler = ConsoleHandler(live=False, console=Console(file=out, markup=False, width=200), clock=Clock())
    ctx = Context()
    ctx.set_prop(ContextKey.RUN_DIR, str(_run_dir(tmp_path, max_jobs=3)))
    ctx.set_prop("WORKERS", ["cpu"])
    handler.start_automl(ctx)
    job = _job("a", 1, 1)
    _start(handler, ctx, job)
    _end(handler, ctx, job, JobState.ABORTED)
    handler.end_automl(ctx)
    assert "finished: 1 aborted (1 aborted job(s) run again on resume)" in out.getvalue()
