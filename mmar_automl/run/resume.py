"""What a resumed session does before its loop, which is the live loop: rebuild the controller by
replay and settle the jobs the dead orchestrator left RUNNING.

Replay: a fresh controller gets ``initial_recommendation`` and then every journaled outcome in journal
order (``RunState.told``); each batch it produces must equal the journaled one. Batches are keyed by the
rec_id of the outcome that produced them (None: the initial batch), so a batch the dead orchestrator
never journaled is returned, to be journaled now.
"""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path
from typing import Any

from mmar_automl.context import Context
from mmar_automl.errors import JournalError
from mmar_automl.recommendation import JobState, Recommendation
from mmar_automl.run.executor import judge
from mmar_automl.run.outputs import JobOutputs
from mmar_automl.run.job import JobRecord
from mmar_automl.run.journal import RunState

Batch = tuple[int | None, list[Recommendation]]


def replay_controller(controller: Any, ctx: Context, state: RunState, journal: Path) -> list[Batch]:
    """Replay the journal into ``controller``; returns the batches it produced that the journal lacks.
    JournalError when a produced batch differs from the journaled one (a nondeterministic controller)."""
    journaled = {after: recs for after, recs in state.batches}
    missing: list[Batch] = []

    def check(after: int | None, produced: list[Recommendation], where: str) -> None:
        if after not in journaled:
            missing.append((after, list(produced or [])))
            return
        if _canon(produced) != _canon(journaled[after]):
            raise JournalError(
                f"{journal}: on resume the controller's {where} gave {[r.to_json() for r in produced][:3]} but the "
                f"journal has {[r.to_json() for r in journaled[after]][:3]}; the controller is not deterministic "
                "given its args and seed (start a new run)")

    check(None, controller.initial_recommendation(ctx), "initial_recommendation")
    for outcome in list(state.told):
        check(outcome.recommendation.rec_id, controller.refine_recommendation(outcome, ctx),
              f"refine_recommendation after {outcome.job_name}")
    return missing


def settle_interrupted(job: JobRecord) -> tuple[JobRecord, bool]:
    """A job the dead orchestrator left RUNNING -> (its final record, told): a result it finished is
    kept (the controller learns from it), anything else is ABORTED (re-run)."""
    outputs = JobOutputs.of(job.folder)
    stats = outputs.stats()
    job = copy.deepcopy(job)
    if stats is not None and str(stats.get("status", "")).lower() == "complete":
        state, score, reason = judge(0, stats, "")
        job.state, job.score, job.reason = state, score, (reason or "") + " (finished while the orchestrator was down)"
        # It ended when it wrote train_stats.json, not now: its duration must not include the downtime.
        job.ended_at = job.ended_at or _mtime(outputs.stats_file) or time.time()
        return job, True
    job.state = JobState.ABORTED
    job.reason = "interrupted: the orchestrator stopped while it ran"
    job.log_tail = outputs.log_tail()
    # Nor is an interrupted job's end "now": it stopped with its last write (log, metrics), usually
    # when the orchestrator died; "now" counted the whole downtime (a 4 s job showed 37.4 s).
    last = [t for t in (_mtime(outputs.log_file), _mtime(outputs.metrics_file))
            if t is not None and (job.started_at is None or t >= job.started_at)]
    job.ended_at = max(last, default=None) or time.time()
    return job, False


def _mtime(path: Path) -> float | None:
    try:
        return path.stat().st_mtime
    except OSError:
        return None


def _canon(recs: list[Recommendation]) -> str:
    return json.dumps([r.to_json() for r in recs or []], sort_keys=True, default=list)
