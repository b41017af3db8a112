"""`run --warm-start RUN_ID`: the finished jobs of an earlier run of the same MMAR, as (point, score)
pairs of the *new* search space, for a controller that can learn from them (OptunaController adds
them to its study with ``add_trial`` before its first recommendation).

What carries over, dimension by dimension (matched by readable name):
- the same kind (float, int, enum) in both spaces: the value carries over when the new dimension
  contains it, so a widened range or an added choice keeps every job; a job with a value the new
  dimension excludes (a narrowed range, a removed choice) is left out whole, since its score came
  from a point outside the new space;
- a dimension only in the new space: the earlier jobs ran with the train config's own value for it
  (a user who adds a search block usually leaves that value as it was), so they carry that value when
  the config holds one the dimension contains (``config_values``: ``Mmar.config_values``). Without
  one their trials leave it out, and the GP sampler (which models only the parameters every trial
  has) then draws it at random for the whole run;
- a dimension only in the old space, or one that changed kind: dropped from the earlier points.
Each of these is named in one line (``WarmStart.notes``). Only COMPLETE jobs with a score count.

The result is journaled in the new run's header, so a resume replays the same warm start without
reading the earlier run again (it may have been deleted since).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mmar_automl.errors import UsageError
from mmar_automl.recommendation import JobState
from mmar_automl.search.space import SearchSpace, dimension_from_json


@dataclass
class WarmStart:
    run_id: str
    trials: list[dict[str, Any]] = field(default_factory=list)   # {"point": {...}, "score": float, "job": name}
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "trials": self.trials}


def load_warm_start(runs_dir: Path, run_id: str, space: SearchSpace, values_hash: str | None = None,
                    config_values: dict[str, Any] | None = None) -> WarmStart:
    """Read ``<runs_dir>/<run_id>/journal.jsonl`` (``Mmar.runs_dir``: ``automl/`` or MMARHandler work_dir);
    raise UsageError when there is no such run."""
    from mmar_automl.run.jobfolder import validate_run_id
    from mmar_automl.run.journal import load_run_state

    run_id = validate_run_id(run_id)
    path = runs_dir / run_id / "journal.jsonl"
    if not path.is_file():
        raise UsageError(f"--warm-start {run_id}: no run there ({path} not found)")
    state = load_run_state(path)
    old_dims = {d["name"]: dimension_from_json(d) for d in state.header.get("space", {}).get("dimensions", [])}
    out = WarmStart(run_id)
    kept: list[str] = []
    filled: dict[str, Any] = {}       # new dimension -> the config's value, which the earlier jobs ran with
    for dim in space:
        old = old_dims.get(dim.name)
        value = (config_values or {}).get(dim.name)
        if old is None and value is not None:
            filled[dim.name] = value
            out.notes.append(f"warm start: {dim.name!r} is new: the jobs of {run_id} ran with the config's value "
                             f"{json.dumps(value)}, which they carry")
        elif old is None:
            out.notes.append(f"warm start: {dim.name!r} is new: the jobs of {run_id} did not search it, and the "
                             "config holds no value in its range")
        elif old.type != dim.type:
            out.notes.append(f"warm start: {dim.name!r} was {old.type}, now {dim.type}: its earlier values are dropped")
        else:
            kept.append(dim.name)
    for name in old_dims:
        if name not in {d.name for d in space}:
            out.notes.append(f"warm start: {name!r} is no longer searched: its earlier values are dropped")
    # the config outside its search markers (runs journaled before this hash existed are not compared:
    # their whole-file hash differs whenever the search changed, which is what a warm start is for)
    if values_hash is not None and state.header.get("config_hashes", {}).get("train_values") not in (None, values_hash):
        out.notes.append(f"warm start: config_train.json changed outside the search blocks since {run_id}: "
                         "its scores may not carry over")
    outside: dict[str, int] = {}
    jobs = [state.jobs[u] for u in state.job_order]
    for job in sorted(jobs, key=lambda j: j.number):
        if job.state is not JobState.COMPLETE or job.score is None or job.score != job.score:
            continue
        point = {name: job.recommendation.point[name] for name in kept if name in job.recommendation.point}
        bad = [name for name, value in point.items() if not space[name].contains(value)]
        if bad:
            outside[bad[0]] = outside.get(bad[0], 0) + 1
            continue
        inactive = space.inactive(point)
        point.update({name: value for name, value in filled.items() if name not in inactive})
        out.trials.append({"point": point, "score": float(job.score), "job": job.name})
    for name, count in outside.items():
        out.notes.append(f"warm start: {count} job(s) of {run_id} left out: their {name!r} is outside the new "
                         "search space")
    out.notes.append(f"warm start: {len(out.trials)} finished job(s) of {run_id} seed the search")
    return out
