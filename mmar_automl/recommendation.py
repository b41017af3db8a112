"""What flows between controller and engine: recommendations in, outcomes back; the job states."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any


class JobState(str, Enum):
    """One state per job. Finished states are kept apart (Ray Tune's TERMINATED conflated them)."""

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    COMPLETE = "COMPLETE"      # ran to the end (it may still have no score: never validated)
    PRUNED = "PRUNED"          # stopped early by a pruner; its last intermediate value is kept
    FAILED = "FAILED"          # non-zero exit, exception, NaN, out of memory, crash
    TIMED_OUT = "TIMED_OUT"    # ran past --job-timeout
    ABORTED = "ABORTED"        # stopped by the user (Ctrl-C) or by a stop condition; re-run on resume

    def is_finished(self) -> bool:
        return self not in (JobState.PENDING, JobState.RUNNING)


@dataclass(frozen=True)
class Recommendation:
    """A point the controller wants evaluated. ``rec_id`` is unique within a run and assigned by the
    controller in order (0, 1, 2 ...); ``meta`` is the controller's own JSON bookkeeping (e.g. a chain)."""

    rec_id: int
    point: Mapping[str, Any]
    meta: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"rec_id": self.rec_id, "point": dict(self.point), "meta": dict(self.meta)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Recommendation:
        return cls(data["rec_id"], dict(data["point"]), dict(data.get("meta", {})))


@dataclass(frozen=True)
class Outcome:
    """The result of one recommendation's job. ``score`` is None when the job never validated or failed;
    ``intermediate`` holds (step, key-metric value) pairs seen while it ran."""

    recommendation: Recommendation
    state: JobState
    score: float | None = None
    job_name: str = ""
    intermediate: tuple[tuple[int, float], ...] = ()

    @property
    def recommendation_id(self) -> int:
        """Clara's name for the rec_id of the recommendation this outcome answers."""
        return self.recommendation.rec_id

    def to_json(self) -> dict[str, Any]:
        return {
            "recommendation": self.recommendation.to_json(), "state": self.state.value,
            "score": self.score, "job_name": self.job_name,
            "intermediate": [list(x) for x in self.intermediate],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Outcome:
        return cls(
            Recommendation.from_json(data["recommendation"]), JobState(data["state"]), data.get("score"),
            data.get("job_name", ""), tuple((int(s), float(v)) for s, v in data.get("intermediate", ())),
        )
