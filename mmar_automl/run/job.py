"""A job: one run of one recommendation in its own folder (``W<w>_<n>_J<j>``). Snapshots of this record
are what handlers, controllers and reports see; the engine alone changes it and journals each change."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from mmar_automl.recommendation import JobState, Recommendation


@dataclass
class JobRecord:
    """``job_uid`` is unique for ever (MLflow tags carry it: a retry gets a new uid and a new child run).
    ``number`` is the 1-based global job number j, ``worker`` the 1-based worker w and ``worker_seq`` n."""

    job_uid: str
    number: int
    worker: int
    worker_seq: int
    folder: str                       # absolute path of the job folder
    recommendation: Recommendation
    gpus: list[int] = field(default_factory=list)
    attempt: int = 0                  # 0 first try, 1 first retry ...
    retry_of: str | None = None       # job_uid of the failed/interrupted job this one re-runs
    state: JobState = JobState.PENDING
    score: float | None = None
    exit_code: int | None = None
    reason: str | None = None         # why it failed / was pruned, one line
    log_tail: str | None = None       # last lines of log.txt for failures
    started_at: float | None = None   # time.time()
    ended_at: float | None = None
    intermediate: list[tuple[int, float]] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"W{self.worker}_{self.worker_seq}_J{self.number}"

    @property
    def duration(self) -> float | None:
        if self.started_at is None or self.ended_at is None:
            return None
        return self.ended_at - self.started_at

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["recommendation"] = self.recommendation.to_json()
        data["state"] = self.state.value
        data["intermediate"] = [list(x) for x in self.intermediate]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> JobRecord:
        data = dict(data)
        data["recommendation"] = Recommendation.from_json(data["recommendation"])
        data["state"] = JobState(data["state"])
        data["intermediate"] = [tuple(x) for x in data.get("intermediate", [])]
        return cls(**data)


def is_better(job: JobRecord, than: JobRecord | None) -> bool:
    """The one rule for "best job" (engine, best/, console, MLflow, report): a COMPLETE job with a score,
    higher score first, a tie going to the lower job number (the earlier job)."""
    if job.state is not JobState.COMPLETE or job.score is None:
        return False
    return than is None or (job.score, -job.number) > (than.score, -than.number)


def best_job(jobs: Iterable[JobRecord]) -> JobRecord | None:
    best: JobRecord | None = None
    for job in jobs:
        if is_better(job, best):
            best = job
    return best
