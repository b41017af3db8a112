"""Clara's MMARHandler: keeps ``automl/<run_id>/best/`` (the best job's config and model), prunes the
checkpoints of all but the best ``num_mmars_to_keep`` jobs, and stops the search at ``stop_threshold``."""

from __future__ import annotations

import json
import logging
import shutil
import time
from pathlib import Path
from typing import Any

from mmar_automl.context import Context, ContextKey
from mmar_automl.handlers.base import Handler
from mmar_automl.run.job import JobRecord, is_better
from mmar_automl.run.outputs import JobOutputs
from mmar_automl.recommendation import JobState

log = logging.getLogger("mmar_automl.handlers.mmar")

BEST_DIR = "best"             # automl/<run_id>/best/: written here only
BEST_INFO = "best.json"       # which job best/ holds


def read_best_info(run_dir: Path) -> dict[str, Any] | None:
    """best/best.json of a run (``job``, ``job_uid``, ``score``, ``folder``...), None when there is none."""
    try:
        info = json.loads((Path(run_dir) / BEST_DIR / BEST_INFO).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) else None


class MMARHandler(Handler):
    """Args (Clara's): ``num_mmars_to_keep`` (models of the best N jobs are kept; None/0 keeps all),
    ``stop_threshold`` (stop the search once a score >= it), ``work_dir`` (the runs live in
    ``<work_dir>/<run_id>``: read by ``config.automl_config.runs_dir``, the one owner of that fact);
    ``train_config_file`` and ``key_mmar_content_only`` are accepted (``clara_notes`` says why they
    change nothing)."""

    @classmethod
    def clara_notes(cls, args: dict[str, Any]) -> dict[str, str]:
        """{arg: why it has no effect} for the args of config_automl.json that change nothing here."""
        notes = {}
        if "train_config_file" in args:
            notes["train_config_file"] = "each job folder holds its concrete config as config/config_train.json"
        if args.get("key_mmar_content_only", True) is not True:
            notes["key_mmar_content_only"] = ("job folders always hold the MMAR's key content only (config/, "
                                              "commands/, custom code), never its models or data")
        return notes

    def __init__(self, num_mmars_to_keep: int | None = None, stop_threshold: float | None = None,
                 train_config_file: str | None = None, work_dir: str | None = None,
                 key_mmar_content_only: bool = True, **clara_args: Any):
        self.num_mmars_to_keep = int(num_mmars_to_keep) if num_mmars_to_keep else None
        self.stop_threshold = float(stop_threshold) if stop_threshold is not None else None
        self.best: JobRecord | None = None
        self.ended: dict[str, JobRecord] = {}  # every finished job: unscored ones (failed, pruned ...) keep no model

    def start_automl(self, ctx: Context) -> None:
        """On resume: learn the earlier jobs; best/ catches up with a job that ended while we were down."""
        for job in ctx.get_prop(ContextKey.PREVIOUS_JOBS) or []:
            self._note(job)
        if self.best is not None and Path(self.best.folder).is_dir():
            run_dir = Path(ctx.get_prop(ContextKey.RUN_DIR))
            if (read_best_info(run_dir) or {}).get("job_uid") != self.best.job_uid:
                write_best(run_dir, self.best)

    def end_job(self, ctx: Context) -> None:
        job: JobRecord = ctx.get_prop(ContextKey.JOB)
        if job is None:
            return
        scored = self._note(job)
        if scored and self.best is job:
            write_best(Path(ctx.get_prop(ContextKey.RUN_DIR)), job)
        if self.num_mmars_to_keep:
            keep_best_models(self.ended.values(), self.num_mmars_to_keep)
        if scored and self.stop_threshold is not None and job.score >= self.stop_threshold:
            ctx.stop_work("MMARHandler", f"{job.name} scored {job.score:.4g} >= stop_threshold {self.stop_threshold:g}")

    def _note(self, job: JobRecord) -> bool:
        """Remember a finished job; True if it is scored (COMPLETE with a score)."""
        if job.state.is_finished():
            self.ended[job.job_uid] = job
        if job.state is not JobState.COMPLETE or job.score is None:
            return False
        if is_better(job, self.best):
            self.best = job
        return True


def write_best(run_dir: Path, job: JobRecord) -> Path:
    """Replace ``best/`` with the job's config/ (a bundle job's configs/), model and stats (built aside,
    then renamed into place). best/ is laid out like the job folder: the model is in its checkpoint
    folder (``MMAR_CKPT_DIR``)."""
    src = Path(job.folder)
    tmp = run_dir / f".best.tmp.{int(time.time() * 1000)}"
    outputs = JobOutputs.of(src)
    config_dir = outputs.config_file.parent   # config/, or a bundle job's configs/
    shutil.copytree(config_dir, tmp / config_dir.name)
    outputs.copy_results(tmp)
    (tmp / BEST_INFO).write_text(json.dumps({
        "job": job.name, "job_uid": job.job_uid, "score": job.score, "folder": job.folder,
        "point": dict(job.recommendation.point), "rec_id": job.recommendation.rec_id,
    }, indent=2, default=list) + "\n")
    best = run_dir / BEST_DIR
    old = run_dir / f".best.old.{int(time.time() * 1000)}"
    if best.exists():
        best.rename(old)
    tmp.rename(best)
    shutil.rmtree(old, ignore_errors=True)
    return best


def keep_best_models(jobs, keep: int) -> list[str]:
    """Delete the checkpoint files of every finished job outside the best ``keep`` scored ones (a failed,
    timed-out or pruned job may have saved a model before it stopped); configs, logs and metrics stay."""
    jobs = list(jobs)
    scored = [j for j in jobs if j.state is JobState.COMPLETE and j.score is not None]
    kept = {j.job_uid for j in sorted(scored, key=lambda j: j.score, reverse=True)[:keep]}
    removed = []
    for job in jobs:
        if job.job_uid in kept or not job.folder:
            continue
        for path in JobOutputs.of(job.folder).checkpoints():
            path.unlink(missing_ok=True)
            removed.append(str(path))
    return removed
