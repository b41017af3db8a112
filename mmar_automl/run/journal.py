"""The run's durable record ``automl/<run_id>/journal.jsonl``: one JSON event per line, append-only.

Shape borrowed from Optuna's JournalStorage: an op code plus data per line, state rebuilt by a pure
replay (one ``_apply_*`` per op). Every line is flushed; job boundaries (and the run's first and last
events) are also fsynced. On read, a torn last line (a crash mid-write) is skipped; a bad line
anywhere else is a JournalError naming ``file:line`` -- never a silent fresh start.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from mmar_automl.errors import JournalError
from mmar_automl.run.job import JobRecord
from mmar_automl.recommendation import JobState, Outcome, Recommendation

FORMAT_VERSION = 1
JOURNAL_NAME = "journal.jsonl"


class Op(str, Enum):
    RUN_STARTED = "run_started"      # space, controller spec, seed, config hashes, options, workers
    RESUMED = "resumed"              # a --resume session began
    RECOMMENDED = "recommended"      # a batch from the controller (after = rec_id of the outcome told, or None)
    JOB_STARTED = "job_started"      # a JobRecord, before its process exists
    JOB_PID = "job_pid"              # the job's process (= its process group)
    JOB_ENDED = "job_ended"          # the final JobRecord; told = the controller received its Outcome;
                                     # forgiven = a failure re-run outside --max-retries (packing OOM)
    STOPPED = "stopped"              # a stop condition or an interrupt
    RUN_ENDED = "run_ended"

    @property
    def durable(self) -> bool:
        return self in (Op.RUN_STARTED, Op.RESUMED, Op.JOB_STARTED, Op.JOB_ENDED, Op.RUN_ENDED)


def config_hash(data: Any) -> str:
    """A stable hash of a JSON value (key order does not matter)."""
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]


class JournalWriter:
    """Appends events; only the engine writes (one writer, no lock files needed).

    As Optuna's JournalStorage does, the writer applies each event it appends to ``state`` (the same
    ``_apply_*`` functions a replay uses), so the engine's view of the run is always the journal's:
    a live run and a resumed one hold the same ``RunState``, built the same way."""

    def __init__(self, path: str | Path, state: RunState | None = None):
        self.path = Path(path)
        self.state = state if state is not None else RunState()
        self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - kept open for the run

    def append(self, op: Op, **data: Any) -> None:
        event = json.loads(json.dumps({"op": op.value, "t": round(time.time(), 3), **data}, default=_json_default))
        self._file.write(json.dumps(event) + "\n")
        self._file.flush()
        if op.durable:
            os.fsync(self._file.fileno())
        _APPLY[op](self.state, event)

    def close(self) -> None:
        if not self._file.closed:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()


def _json_default(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, (set, tuple)):
        return list(value)
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def read_events(path: str | Path) -> list[dict[str, Any]]:
    """All events; a torn last line is dropped, any other bad line raises JournalError(file:line)."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise JournalError(f"{path}: no journal (is the run id right?)") from None
    lines = raw.split(b"\n")
    complete = raw.endswith(b"\n")
    events = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        is_last = number == len(lines) or (number == len(lines) - 1 and not lines[-1])
        try:
            event = json.loads(line)
            if not isinstance(event, dict) or "op" not in event:
                raise ValueError("not an event object")
            Op(event["op"])
        except (ValueError, UnicodeDecodeError) as err:
            if is_last and not complete:
                break  # torn tail: the orchestrator died mid-write
            raise JournalError(f"{path}:{number}: damaged journal line ({err})") from None
        events.append(event)
    return events


@dataclass
class RunState:
    """Everything a resume needs, rebuilt from the events alone."""

    header: dict[str, Any] = field(default_factory=dict)
    batches: list[tuple[int | None, list[Recommendation]]] = field(default_factory=list)
    recommendations: dict[int, Recommendation] = field(default_factory=dict)
    jobs: dict[str, JobRecord] = field(default_factory=dict)      # job_uid -> latest record
    job_order: list[str] = field(default_factory=list)
    told: list[Outcome] = field(default_factory=list)             # in the order the controller got them
    pids: dict[str, int] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)       # the latest session's options (setup.RunPlan)
    started: set[int] = field(default_factory=set)                # rec_ids that got a job
    forgiven: set[str] = field(default_factory=set)              # failed job uids that do not count (OOM back-off)
    sessions: int = 0
    ended: dict[str, Any] | None = None

    # -- derived views ------------------------------------------------------------------------
    def started_rec_ids(self) -> set[int]:
        """Recommendations that got at least one job (what --max-jobs counts; kept by the replay, as the
        engine asks for it on every pass of its loop)."""
        return self.started

    def ordered_jobs(self) -> list[JobRecord]:
        return [self.jobs[u] for u in self.job_order]

    def told_rec_ids(self) -> set[int]:
        return {o.recommendation.rec_id for o in self.told}

    def jobs_of(self, rec_id: int) -> list[JobRecord]:
        return [self.jobs[u] for u in self.job_order if self.jobs[u].recommendation.rec_id == rec_id]

    def running(self) -> list[JobRecord]:
        return [self.jobs[u] for u in self.job_order if not self.jobs[u].state.is_finished()]

    def pending_rec_ids(self) -> list[int]:
        """Recommendations whose outcome the controller has not received, in rec_id order."""
        done = self.told_rec_ids()
        return sorted(r for r in self.recommendations if r not in done)

    def next_job_number(self) -> int:
        return max((j.number for j in self.jobs.values()), default=0) + 1

    def worker_seq(self) -> dict[int, int]:
        seq: dict[int, int] = {}
        for job in self.jobs.values():
            seq[job.worker] = max(seq.get(job.worker, 0), job.worker_seq)
        return seq

    def failures(self, rec_id: int) -> int:
        """Failed attempts of a recommendation that count against --max-retries."""
        return sum(1 for j in self.jobs_of(rec_id)
                   if j.state in (JobState.FAILED, JobState.TIMED_OUT) and j.job_uid not in self.forgiven)


def replay(events: list[dict[str, Any]], source: str = "journal") -> RunState:
    """Pure: events -> RunState."""
    state = RunState()
    for number, event in enumerate(events, 1):
        op = Op(event["op"])
        try:
            _APPLY[op](state, event)
        except (KeyError, TypeError, ValueError) as err:
            raise JournalError(f"{source}: event {number} ({op.value}) is malformed: {err}") from None
    if not state.header:
        raise JournalError(f"{source}: the journal has no run_started event")
    return state


def read_header(path: str | Path) -> dict[str, Any]:
    """The run_started event alone (the journal's first line: seed, controller, workers, --set, options),
    without replaying the rest; {} when the journal is missing or its first line is not that event."""
    try:
        with open(path, "rb") as f:
            event = json.loads(f.readline())
    except (OSError, ValueError):
        return {}
    return event if isinstance(event, dict) and event.get("op") == Op.RUN_STARTED.value else {}


def load_run_state(path: str | Path) -> RunState:
    return replay(read_events(path), str(path))


def _apply_run_started(state: RunState, event: dict[str, Any]) -> None:
    state.header = event
    state.options = dict(event.get("options") or {})
    state.sessions = 1


def _apply_resumed(state: RunState, event: dict[str, Any]) -> None:
    state.sessions += 1
    state.ended = None
    if isinstance(event.get("options"), dict):
        state.options = dict(event["options"])


def _apply_recommended(state: RunState, event: dict[str, Any]) -> None:
    recs = [Recommendation.from_json(r) for r in event["recs"]]
    state.batches.append((event.get("after"), recs))
    for rec in recs:
        state.recommendations[rec.rec_id] = rec


def _apply_job_started(state: RunState, event: dict[str, Any]) -> None:
    job = JobRecord.from_json(event["job"])
    state.jobs[job.job_uid] = job
    state.job_order.append(job.job_uid)
    state.started.add(job.recommendation.rec_id)


def _apply_job_pid(state: RunState, event: dict[str, Any]) -> None:
    state.pids[event["job_uid"]] = int(event["pid"])


def _apply_job_ended(state: RunState, event: dict[str, Any]) -> None:
    job = JobRecord.from_json(event["job"])
    if job.job_uid not in state.jobs:
        state.job_order.append(job.job_uid)
        state.started.add(job.recommendation.rec_id)
    state.jobs[job.job_uid] = job
    if event.get("forgiven"):
        state.forgiven.add(job.job_uid)
    if event.get("told"):
        state.told.append(outcome_of(job))


def _apply_stopped(state: RunState, event: dict[str, Any]) -> None:
    pass


def _apply_run_ended(state: RunState, event: dict[str, Any]) -> None:
    state.ended = event


_APPLY = {
    Op.RUN_STARTED: _apply_run_started,
    Op.RESUMED: _apply_resumed,
    Op.RECOMMENDED: _apply_recommended,
    Op.JOB_STARTED: _apply_job_started,
    Op.JOB_PID: _apply_job_pid,
    Op.JOB_ENDED: _apply_job_ended,
    Op.STOPPED: _apply_stopped,
    Op.RUN_ENDED: _apply_run_ended,
}


def outcome_of(job: JobRecord) -> Outcome:
    return Outcome(job.recommendation, job.state, job.score, job.name, tuple(tuple(x) for x in job.intermediate))
