"""The exit-code policy of a run (DESIGN.md section 8): 0 done, 1 ended with failed jobs (or an
error), 130 interrupted; a retry supersedes the failure it re-ran."""

from __future__ import annotations

from mmar_automl.recommendation import JobState
from mmar_automl.run.job import JobRecord

EXIT_OK, EXIT_ERRORS, EXIT_INTERRUPTED = 0, 1, 130


def final_jobs(jobs: list[JobRecord]) -> list[JobRecord]:
    """The last job of each recommendation (a retry supersedes the failure it re-ran)."""
    last: dict[int, JobRecord] = {}
    for job in sorted(jobs, key=lambda j: j.number):
        last[job.recommendation.rec_id] = job
    return list(last.values())


def exit_code(jobs: list[JobRecord], *, interrupted: bool, error_code: int | None = None) -> int:
    """``error_code``: the run itself stopped on an error (its exit code, e.g. 2 for a JournalError)."""
    if interrupted:
        return EXIT_INTERRUPTED
    if error_code is not None:
        return error_code
    if any(j.state in (JobState.FAILED, JobState.TIMED_OUT) for j in final_jobs(jobs)):
        return EXIT_ERRORS
    return EXIT_OK
