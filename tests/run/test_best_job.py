"""One rule for the best job everywhere: highest score of a COMPLETE job, ties to the earlier job."""

from __future__ import annotations

from mmar_automl.context import Context, ContextKey
from mmar_automl.handlers.console import ConsoleHandler
from mmar_automl.handlers.mmar import MMARHandler
from mmar_automl.run.job import JobRecord, best_job, is_better
from mmar_automl.recommendation import JobState, Recommendation


def _job(number: int, score: float | None, state: JobState = JobState.COMPLETE, folder: str = "/nowhere") -> JobRecord:
    return JobRecord(f"u{number}", number, 1, number, folder, Recommendation(number, {}), state=state, score=score)


def test_ties_go_to_the_earlier_job_and_unscored_or_failed_jobs_never_win():
    j1, j2, j3 = _job(1, 1.0), _job(2, 1.0), _job(3, 0.5)
    assert best_job([j2, j3, j1]) is j1            # finish order does not matter
    assert not is_better(j2, j1) and is_better(j1, j2)
    assert best_job([_job(4, None), _job(5, 2.0, JobState.FAILED), _job(6, 2.0, JobState.PRUNED)]) is None
    assert is_better(j3, None)


def test_console_and_mmar_handler_agree_with_the_rule(tmp_path):
    jobs = [_job(2, 1.0, folder=str(tmp_path / "j2")), _job(1, 1.0, folder=str(tmp_path / "j1"))]
    console = ConsoleHandler(live=False)
    handler = MMARHandler()
    for job in jobs:  # job 2 finishes first
        console._finished(job)
        handler._note(job)
    assert console.best.number == 1 and handler.best.number == 1
