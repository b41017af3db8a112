"""A run as report rows, read from its journal (the run's source of truth; MLflow is not needed).

Light on purpose: stdlib plus mmar_automl's own torch-free modules, so ``report`` starts fast and a
1000-job run loads in a fraction of a second. Job folders are read only where the journal has no
answer: learning curves (each job's ``metrics.jsonl``, run/outputs.py) and the best job's concrete
config (for its diff).
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mmar_automl.config.mmar import TRAIN_CONFIG
from mmar_automl.config.project import project_at
from mmar_automl.errors import JournalError, UsageError
from mmar_automl.run.outputs import JobOutputs
from mmar_automl.run.job import JobRecord
from mmar_automl.run.journal import JOURNAL_NAME, load_run_state
from mmar_automl.recommendation import JobState
from mmar_automl.search.format import format_point_value, format_value  # noqa: F401 - re-exported
from mmar_automl.search.space import EnumDimension, FloatDimension, SearchSpace

FAILED_STATES = (JobState.FAILED, JobState.TIMED_OUT)


@dataclass
class JobRow:
    """One job as the report shows it. ``params`` are display strings under readable dimension names;
    ``point`` is the raw point (JSON values as the controller gave them)."""

    record: JobRecord
    params: dict[str, str]
    inactive: list[str]

    @property
    def name(self) -> str:
        return self.record.name

    @property
    def state(self) -> str:
        return self.record.state.value

    @property
    def score(self) -> float | None:
        return self.record.score

    def to_json(self) -> dict[str, Any]:
        r = self.record
        return {
            "job": r.name, "number": r.number, "worker": r.worker, "worker_seq": r.worker_seq,
            "job_uid": r.job_uid, "state": r.state.value, "score": r.score, "duration": r.duration,
            "started_at": r.started_at, "ended_at": r.ended_at, "attempt": r.attempt, "retry_of": r.retry_of,
            "exit_code": r.exit_code, "reason": r.reason, "params": self.params, "inactive": self.inactive,
            "point": dict(r.recommendation.point), "rec_id": r.recommendation.rec_id, "folder": r.folder,
            "gpus": list(r.gpus),
        }


@dataclass
class RunReport:
    mmar_root: Path
    run_id: str
    run_dir: Path
    header: dict[str, Any]
    space: SearchSpace | None
    jobs: list[JobRow]                    # in job-number order
    ended: dict[str, Any] | None          # the run_ended event, None while running / after a crash
    sessions: int
    best: JobRow | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def dimension_names(self) -> list[str]:
        if self.space is not None:
            return self.space.names
        names: dict[str, None] = {}
        for row in self.jobs:
            names.update(dict.fromkeys(row.params))
        return list(names)

    @property
    def overrides(self) -> dict[str, str]:
        """The run's ``--set KEY=VALUE`` values as given (every job's concrete config holds them)."""
        value = self.header.get("overrides")
        if not isinstance(value, dict):
            return {}
        return {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in value.items()}

    def counts(self) -> dict[str, int]:
        return dict(Counter(row.state for row in self.jobs))

    def scored(self) -> list[JobRow]:
        """COMPLETE jobs with a score (what ranks and what importance learns from), in job order."""
        return [r for r in self.jobs if r.record.state is JobState.COMPLETE and r.score is not None]

    def ranked(self) -> list[JobRow]:
        """Scored jobs best first (ties: the earlier job), then the others in job order."""
        scored = sorted(self.scored(), key=lambda r: (-r.score, r.record.number))  # type: ignore[operator]
        ids = {id(r) for r in scored}
        return scored + [r for r in self.jobs if id(r) not in ids]

    def failures(self) -> list[JobRow]:
        return [r for r in self.jobs if r.record.state in FAILED_STATES]

    @property
    def status(self) -> str:
        if self.ended is not None:
            return "finished"
        if any(not r.record.state.is_finished() for r in self.jobs):
            return "running (or stopped without closing its journal)"
        return "not closed (running, or interrupted: resume with run --resume)"


# -- finding runs ----------------------------------------------------------------------------------

def list_runs(root: Path) -> list[str]:
    """Run ids under the MMAR's runs folder (``automl/``, or MMARHandler ``work_dir``), oldest first (by
    the time of their journal's first event)."""
    base = project_at(root).runs_dir
    if not base.is_dir():
        return []
    runs = []
    for entry in base.iterdir():
        journal = entry / JOURNAL_NAME
        if entry.is_dir() and journal.is_file():
            runs.append((_started_at(journal), entry.name))
    return [name for _, name in sorted(runs)]


def _started_at(journal: Path) -> float:
    try:
        with open(journal, "rb") as f:
            return float(json.loads(f.readline()).get("t", 0.0))
    except (OSError, ValueError, AttributeError, TypeError):
        return journal.stat().st_mtime


def resolve_run(mmar: str | Path, run_id: str | None) -> tuple[Path, str, Path]:
    """(MMAR root, run id, run folder); the newest run when ``run_id`` is None. Unknown: UsageError."""
    project = project_at(mmar)
    root = project.root
    runs = list_runs(root)
    if run_id is None:
        if not runs:
            runs_in = project.runs_dir
            shown = f"{runs_in.relative_to(root)}/" if runs_in.is_relative_to(root) else str(runs_in)
            raise UsageError(f"{root}: no runs under {shown} (start one with: mmar-automl run {mmar})")
        run_id = runs[-1]
    elif run_id not in runs:
        known = ", ".join(runs[-5:]) or "none"
        raise UsageError(f"run {run_id!r} not found under {project.runs_dir} (runs: {known})")
    return root, run_id, project.run_dir(run_id)


# -- loading ---------------------------------------------------------------------------------------

def load_report(mmar: str | Path, run_id: str | None = None) -> RunReport:
    """Replay the run's journal into rows; ConfigError/UsageError/JournalError (exit 2) on bad input."""
    root, run_id, run_dir = resolve_run(mmar, run_id)
    state = load_run_state(run_dir / JOURNAL_NAME)
    header = state.header
    space = None
    notes: list[str] = []
    if isinstance(header.get("space"), dict):
        try:
            space = SearchSpace.from_json(header["space"])
        except (KeyError, TypeError, ValueError) as err:
            raise JournalError(f"{run_dir / JOURNAL_NAME}: run_started holds a bad search space: {err}") from None
    records = sorted((state.jobs[u] for u in state.job_order), key=lambda j: j.number)
    rows = [_row(job, space) for job in records]
    report = RunReport(root, run_id, run_dir, header, space, rows, state.ended, state.sessions, notes=notes)
    scored = report.scored()
    report.best = max(scored, key=lambda r: r.score, default=None)  # type: ignore[arg-type,return-value]
    return report


def _row(job: JobRecord, space: SearchSpace | None) -> JobRow:
    point = dict(job.recommendation.point)
    if space is None:
        return JobRow(job, {k: format_value(v) for k, v in point.items()}, [])
    inactive = sorted(space.inactive(point))
    params = {}
    for dim in space:
        if dim.name in point:
            params[dim.name] = format_dimension_value(dim, point[dim.name])
    return JobRow(job, params, inactive)


# -- values ----------------------------------------------------------------------------------------

def format_dimension_value(dim: FloatDimension | EnumDimension, value: Any) -> str:
    """A float as 4 significant digits; an enum choice by its single value (``[16,32,64]``, ``true``),
    or its values joined by "," when the dimension drives several args (``false,true``)."""
    return format_point_value(value)


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, sec = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes}m{sec:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


# -- the best job's config against the base config -------------------------------------------------

def config_diff(base: Any, concrete: Any, mmar_root: Path | None = None) -> list[dict[str, Any]]:
    """JSON paths where the job's concrete config differs from the base config, as
    ``{"path", "old", "new"}`` (``old``/``new`` absent = the key is missing on that side), plus
    ``"component"``: the ``name`` (or ``ref``) of the innermost component holding the path, when there
    is one, since ``train.loss[1].disabled`` alone does not say which loss was switched on.

    The base's ``search``/``apply`` markers are removed first (the job config never has them), and a
    relative path that the job folder wrote as the same file's absolute path is not a difference."""
    from mmar_automl.search.render import strip_markers

    if isinstance(base, dict):
        base = json.loads(json.dumps(base))
        strip_markers(base)
    out: list[dict[str, Any]] = []
    _diff(base, concrete, (), out, mmar_root, None)
    return out


_MISSING = object()


def _diff(old: Any, new: Any, path: tuple, out: list[dict[str, Any]], root: Path | None,
          component: str | None) -> None:
    from mmar_automl.errors import format_json_path

    if isinstance(old, dict) and isinstance(new, dict):
        component = _component_name(old) or _component_name(new) or component
        for key in list(old) + [k for k in new if k not in old]:
            _diff(old.get(key, _MISSING), new.get(key, _MISSING), (*path, key), out, root, component)
        return
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new) and any(
            isinstance(v, (dict, list)) for v in old):
        for i, (a, b) in enumerate(zip(old, new)):
            _diff(a, b, (*path, i), out, root, component)
        return
    if old is _MISSING and path and path[-1] == "disabled" and new is False:
        return  # render wrote the default explicitly
    if old == new and type(old) is type(new):
        return
    if _same_path(old, new, root):
        return
    item: dict[str, Any] = {"path": format_json_path(path)}
    if old is not _MISSING:
        item["old"] = old
    if new is not _MISSING:
        item["new"] = new
    if component:
        item["component"] = component
    out.append(item)


def _component_name(node: dict[str, Any]) -> str | None:
    value = node.get("name", node.get("ref"))
    return value if isinstance(value, str) and value else None


def diff_label(item: dict[str, Any]) -> str:
    """A difference's path as the report shows it: ``train.loss[1].disabled (DiceCELoss)``."""
    return f"{item['path']} ({item['component']})" if item.get("component") else item["path"]


def _same_path(old: Any, new: Any, root: Path | None) -> bool:
    if root is None or not (isinstance(old, str) and isinstance(new, str)) or not os.path.isabs(new):
        return False
    try:
        return (root / old).resolve() == Path(new).resolve()
    except (OSError, ValueError):
        return False


def best_config_diff(report: RunReport) -> tuple[list[dict[str, Any]] | None, str | None]:
    """(diff of the best job's concrete config vs the MMAR's base config, a note or None)."""
    if report.best is None:
        return None, None
    train_config = report.header.get("train_config") or TRAIN_CONFIG
    base_file = report.mmar_root / train_config
    from mmar_automl.bundle.files import load_config_file   # JSON, or a bundle's YAML
    from mmar_automl.errors import ConfigError

    job_file = JobOutputs.of(report.best.record.folder).config_file
    try:
        base = load_config_file(base_file)
        concrete = load_config_file(job_file)
    except (OSError, ValueError, ConfigError) as err:
        return None, f"no config difference: {err}"
    note = None
    wanted = (report.header.get("config_hashes") or {}).get("train")
    if wanted:
        from mmar_automl.run.journal import config_hash

        if config_hash(base) != wanted:
            note = f"{train_config} changed since the run started: the difference is against today's file"
    return config_diff(base, concrete, report.mmar_root), note


# -- what to know about the best job ---------------------------------------------------------------

# Two scores closer than this (relative) are a near tie: validation values of small medical sets move by
# more than 0.1% between seeds and epochs, so the ranking between such jobs is noise (issue 16: 0.919754
# vs 0.919717 shown as a clear winner).
NEAR_TIE = 1e-3


def best_job_flags(report: RunReport, curves: dict[str, list[tuple[int, float]]] | None = None) -> list[str]:
    """Warnings about the best job a reader must see next to it: a near tie with the runner-up, a curve
    that fell at the end (the score is the best epoch's; the model saved is that epoch's), a retry."""
    best = report.best
    if best is None:
        return []
    flags = []
    tolerance = NEAR_TIE * max(abs(best.score), 1e-12)  # type: ignore[arg-type]
    close = [r for r in report.scored() if r is not best and best.score - r.score <= tolerance]  # type: ignore[operator]
    if close:
        names = ", ".join(f"{r.name} {r.score:.6g}" for r in close[:3]) + (" ..." if len(close) > 3 else "")
        flags.append(f"near tie: {names} within {NEAR_TIE:.1%} of the best {best.score:.6g}; "
                     "the ranking between them is within noise")
    points = (curves.get(best.name) if curves is not None else job_curve(report, best)[1]) or []
    if len(points) >= 2:
        peak_epoch, peak = max(points, key=lambda p: (p[1], -p[0]))
        last_epoch, last = points[-1]
        if last < peak - tolerance:
            flags.append(f"its curve fell at the end: {peak:.6g} at epoch {peak_epoch}, {last:.6g} at its last "
                         f"epoch {last_epoch} (the score and model.pt are epoch {peak_epoch}'s)")
    if best.record.attempt:
        flags.append(f"it is a retry (attempt {best.record.attempt + 1}) of a failed job")
    return flags


def retry_label(row: JobRow, report: RunReport) -> str | None:
    """``retry 1 of W1_1_J1`` for a re-run of a failed or interrupted job, else None."""
    r = row.record
    if not r.attempt and not r.retry_of:
        return None
    of = next((j.name for j in report.jobs if j.record.job_uid == r.retry_of), r.retry_of)
    return f"retry {r.attempt} of {of}" if of else f"retry {r.attempt}"


# -- learning curves -------------------------------------------------------------------------------

def learning_curves(report: RunReport) -> tuple[str | None, dict[str, list[tuple[int, float]]]]:
    """(key metric name, {job name: [(epoch, value)]}) from each job's ``metrics.jsonl`` (read by
    run/outputs.py, the one reader of job outputs); a job without the file falls back to the intermediate values its journal record holds."""
    key_metric = None
    curves: dict[str, list[tuple[int, float]]] = {}
    for row in report.jobs:
        key, points = job_curve(report, row)
        key_metric = key_metric or key
        if points:
            curves[row.name] = points
    return key_metric, curves


def job_curve(report: RunReport, row: JobRow) -> tuple[str | None, list[tuple[int, float]]]:
    """(key metric, [(epoch, value)]) of one job: its ``metrics.jsonl`` (read by run/outputs.py), else its
    journaled values."""
    key_metric = None
    points: list[tuple[int, float]] = []
    outputs = JobOutputs.of(row.record.folder) if row.record.folder else None
    if outputs is None or not outputs.metrics_file.is_file():
        return None, [(int(s), float(v)) for s, v in row.record.intermediate]
    for rec in outputs.metrics():
        if rec.get("kind") != "validation":
            continue
        metrics, key = rec.get("metrics"), rec.get("key_metric")
        value = metrics.get(key) if isinstance(metrics, dict) else None
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value == value:
            key_metric = key_metric or key
            points.append((int(rec.get("epoch") or len(points) + 1), float(value)))
    return key_metric, points