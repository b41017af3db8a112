"""The run's options, resolved and checked before anything is built: one frozen :class:`RunPlan`.

Every option of ``run`` (workers, jobs per GPU, backend, seed, limits, launcher, fast paths, compile,
tracking) is read here once, from the command line or (on ``--resume``) from the run header in the
journal, and reaches the objects that use it through their constructors. The plan is journaled in the
run header (``options``), so a resume reads the same values back: :func:`journaled_defaults`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from mmar_automl.run.workers import Gpu, WorkerSpec


@dataclass(frozen=True)
class Limits:
    max_jobs: int | None = None        # distinct recommendations started (retries do not count)
    time_limit: float | None = None    # seconds of this session; running jobs are aborted at the limit
    max_retries: int = 0               # re-runs of a FAILED / TIMED_OUT job


@dataclass(frozen=True)
class Tracking:
    """MLflow options of the command line (None: config_automl.json's MLflowHandler args, or defaults)."""

    tracking_uri: str | None = None
    experiment: str | None = None
    log_models: str | None = None
    enabled: bool = True


@dataclass(frozen=True)
class RunPlan:
    run_id: str
    run_dir: Path
    mmar_root: Path
    seed: int
    workers: tuple[WorkerSpec, ...]          # the workers of --workers (before --jobs-per-gpu)
    gpus: tuple[Gpu, ...] = ()
    workers_text: str | None = None          # --workers as given (None: the default); journaled
    jobs_per_gpu: int | str = 1              # packing.Mode: N or "auto"
    backend: str = "local"
    ray_address: str | None = None
    launcher: bool = True
    fast_paths: bool = True
    compile: bool = False
    limits: Limits = field(default_factory=Limits)
    job_timeout: float | None = None
    controller_workers: int | None = None    # NUM_WORKERS the controller sees (None: the number of slots)
    tracking: Tracking = field(default_factory=Tracking)
    resumed: bool = False

    @property
    def slots(self) -> list[WorkerSpec]:
        """The worker slots jobs run in: each worker times its jobs per GPU (packing.slots_per_worker)."""
        from mmar_automl.run.packing import expand_workers, slots_per_worker

        return expand_workers(list(self.workers), slots_per_worker(self.jobs_per_gpu, any(w.gpus for w in self.workers)))

    @property
    def num_workers(self) -> int:
        """NUM_WORKERS for the controller: a resume keeps the first session's count, else the journaled
        batches could not be replayed."""
        return self.controller_workers or len(self.slots)

    def job_env(self) -> dict[str, str]:
        """Variables every job process gets on top of the orchestrator's environment: the fast-path flags
        (train/fastpaths.py reads them), only where they differ from the trainer's defaults."""
        if self.fast_paths and not self.compile:
            return {}
        from mmar_automl.train.fastpaths import ENV_VAR

        return {ENV_VAR: json.dumps({"enabled": self.fast_paths, "compile": self.compile})}

    def options_json(self) -> dict[str, Any]:
        """The options journaled in the run header (``options``) and given to handlers (ctx OPTIONS)."""
        return {
            "workers": self.workers_text, "jobs_per_gpu": self.jobs_per_gpu, "backend": self.backend,
            "ray_address": self.ray_address, "launcher": self.launcher, "fast_paths": self.fast_paths,
            "compile": self.compile, "max_jobs": self.limits.max_jobs, "time_limit": self.limits.time_limit,
            "max_retries": self.limits.max_retries, "job_timeout": self.job_timeout, "seed": self.seed,
            "tracking_uri": self.tracking.tracking_uri, "experiment": self.tracking.experiment,
            "log_models": self.tracking.log_models, "no_mlflow": not self.tracking.enabled, "resume": self.resumed,
        }


# The RunOptions fields a resume takes from the journal when the command line leaves them out (the
# journaled options use the same names), with their flags: (flag, the flag of False for on/off options).
# A different value on the command line wins, with a note.
JOURNALED: dict[str, tuple[str, str | None]] = {
    "workers": ("--workers", None),
    "jobs_per_gpu": ("--jobs-per-gpu", None),
    "backend": ("--backend", None),
    "ray_address": ("--ray-address", None),
    "launcher": ("--launcher", "--no-launcher"),
    "fast_paths": ("--fast-paths", "--no-fast-paths"),
    "compile": ("--compile", "--no-compile"),
    "max_jobs": ("--max-jobs", None),
    "max_retries": ("--max-retries", None),
    "job_timeout": ("--job-timeout", None),
    "no_mlflow": ("--no-mlflow", "--mlflow"),
    "tracking_uri": ("--tracking-uri", None),
    "experiment": ("--experiment", None),
    "log_models": ("--log-models", None),
}

_DEPENDS_ON = {"ray_address": "backend"}   # inherited only with the journaled value of the other option


def journaled_defaults(opts: Any, saved: dict[str, Any], run_id: str) -> tuple[Any, list[str]]:
    """``opts`` (setup.RunOptions) with every option the command line left out taken from ``saved`` (the
    options of the run's latest session, RunState.options); and one note per option given with a value
    other than the journaled one (that value is used)."""
    changes: dict[str, Any] = {}
    notes = []
    for name, flags in JOURNALED.items():
        if name not in saved:
            continue  # a journal older than this option
        given, journaled = getattr(opts, name), saved[name]
        parent = _DEPENDS_ON.get(name)
        if given is None and parent is not None and _show(changes.get(parent, getattr(opts, parent))) != _show(saved.get(parent)):
            continue  # e.g. --ray-address belongs to the journaled --backend ray, not to another backend
        if given is None:
            changes[name] = journaled
        elif _show(given) != _show(journaled):
            before = "the default" if journaled is None else _flag(flags, journaled)
            notes.append(f"{_flag(flags, given)}: run {run_id} was started with {before}; using {_flag(flags, given)}")
    return replace(opts, **changes), notes


def _flag(flags: tuple[str, str | None], value: Any) -> str:
    flag, off = flags
    if off is not None:
        return flag if value else off
    return f"{flag} {_show(value)}"


def _show(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).lower()
