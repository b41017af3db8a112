"""Clara's StatsHandler and MMARStatsHandler, made useful: Clara printed statistics to its console; our
console handler already shows progress, so these write machine-readable summaries instead.

- ``StatsHandler``: ``automl/<run_id>/stats.json``, rewritten (atomically) after every job: counts per
  state, the best job, and one row per job (name, state, score, duration, point, reason).
- ``MMARStatsHandler``: ``<job folder>/job_stats.json`` for each job: its record (state, score, exit
  code, reason, search values, intermediate key-metric values, timing).
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from pathlib import Path
from typing import Any

from mmar_automl.context import Context, ContextKey
from mmar_automl.handlers.base import Handler
from mmar_automl.run.job import JobRecord


def _write(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2, default=list) + "\n", encoding="utf-8")
    os.replace(tmp, path)


class StatsHandler(Handler):
    def __init__(self, **clara_args: Any):
        self.jobs: dict[str, JobRecord] = {}
        self.started = time.time()

    def start_automl(self, ctx: Context) -> None:
        for job in ctx.get_prop(ContextKey.PREVIOUS_JOBS) or []:
            self.jobs[job.job_uid] = job

    def end_job(self, ctx: Context) -> None:
        job = ctx.get_prop(ContextKey.JOB)
        if job is not None:
            self.jobs[job.job_uid] = job
            self._save(ctx, finished=False)

    def end_automl(self, ctx: Context) -> None:
        self._save(ctx, finished=True)

    def _save(self, ctx: Context, finished: bool) -> None:
        jobs = sorted(self.jobs.values(), key=lambda j: j.number)
        scored = [j for j in jobs if j.score is not None and j.state.value == "COMPLETE"]
        best = max(scored, key=lambda j: j.score, default=None)
        _write(Path(ctx.get_prop(ContextKey.RUN_DIR)) / "stats.json", {
            "run_id": ctx.get_prop(ContextKey.RUN_ID),
            "finished": finished,
            "updated": time.time(),
            "jobs": len(jobs),
            "states": dict(Counter(j.state.value for j in jobs)),
            "best": {"job": best.name, "score": best.score, "point": dict(best.recommendation.point)} if best else None,
            "total_job_seconds": round(sum(j.duration or 0.0 for j in jobs), 3),
            "rows": [{
                "job": j.name, "state": j.state.value, "score": j.score, "duration": j.duration,
                "attempt": j.attempt, "point": dict(j.recommendation.point), "reason": j.reason,
            } for j in jobs],
        })


class MMARStatsHandler(Handler):
    def __init__(self, **clara_args: Any):
        pass

    def end_job(self, ctx: Context) -> None:
        job: JobRecord | None = ctx.get_prop(ContextKey.JOB)
        if job is None or not Path(job.folder).is_dir():
            return
        data = job.to_json()
        data["name"] = job.name
        data["duration"] = job.duration
        _write(Path(job.folder) / "job_stats.json", data)
