"""Clara's MMARExecutor: write a job folder, run ``train`` in it, follow its metrics, return its score.

How a job process is started is a backend's business (``backends.protocol.Backend``:
``submit``/``poll``/``kill``; ``backends.local.LocalBackend`` on this machine). Job-folder writing,
metrics following and scoring stay here, so a distributed backend only has to move processes.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mmar_automl.backends.launcher import KILL_GRACE_S, default_entry
from mmar_automl.backends.protocol import UNKNOWN_EXIT, Backend, Handle, JobSpec
from mmar_automl.config.mmar import TRAIN_CONFIG, Mmar
from mmar_automl.context import Context, ContextKey
from mmar_automl.recommendation import JobState, Recommendation
from mmar_automl.run.job import JobRecord
from mmar_automl.run.jobfolder import write_job_folder
from mmar_automl.run.outputs import JobOutputs, MetricsFollower

log = logging.getLogger("mmar_automl.run.executor")
RUN_MARKER_ENV = "MMAR_AUTOML_RUN_MARKER"   # in every job's environment: "<run dir>::<job uid>"


# ---------------------------------------------------------------------------------------------------
# Following a running job
# ---------------------------------------------------------------------------------------------------


@dataclass
class RunningJob:
    job: JobRecord
    handle: Handle
    follower: MetricsFollower
    outputs: JobOutputs
    deadline: float | None = None           # monotonic time of --job-timeout
    kill_reason: JobState | None = None     # why we killed it (TIMED_OUT, PRUNED, ABORTED)
    kill_message: str | None = None
    term_sent: float | None = None          # monotonic time SIGTERM went out
    killed_hard: bool = False


def _signal_name(code: int) -> str:
    try:
        return signal.Signals(-code).name
    except ValueError:
        return f"signal {-code}"


def judge(exit_code: int | None, stats: dict[str, Any] | None, log_tail: str) -> tuple[JobState, float | None, str | None]:
    """A finished process -> (state, score, reason). Score = best_validation_metric; None = no score."""
    score = None
    if stats is not None:
        value = stats.get("best_validation_metric")
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value == value:
            score = float(value)
    if exit_code == 0:
        if stats is None:
            return JobState.FAILED, None, "exited 0 but wrote no train_stats.json"
        if str(stats.get("status", "complete")).lower() not in ("complete", "completed", "ok"):
            return JobState.FAILED, None, str(stats.get("reason") or f"status {stats.get('status')}")
        return JobState.COMPLETE, score, None if score is not None else "never validated: no score"
    if exit_code == UNKNOWN_EXIT:
        if stats is not None and str(stats.get("status", "")).lower() == "complete":
            return JobState.COMPLETE, score, None
        return JobState.FAILED, None, "the job process vanished (its launcher died)"
    if exit_code is not None and exit_code < 0:
        reason = f"killed by {_signal_name(exit_code)}"
    else:
        reason = (stats or {}).get("reason") or _last_line(log_tail) or f"exit code {exit_code}"
        reason = f"exit code {exit_code}: {reason}"
    return JobState.FAILED, None, reason


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1][:300] if lines else ""


# ---------------------------------------------------------------------------------------------------
# The executor
# ---------------------------------------------------------------------------------------------------


class MMARExecutor:
    """Clara's executor. Clara's args (``remove_search_augs``, ``msg_destination`` ...) are accepted;
    search keys are always removed from concrete configs; ``clara_notes`` names what has no effect."""

    job_config = TRAIN_CONFIG      # the concrete config in a job folder (a bundle's executor: configs/train.json)

    def __init__(self, remove_search_augs: bool = True, **clara_args: Any):
        self.remove_search_augs = remove_search_augs
        self.clara_args = clara_args
        self.backend: Backend | None = None
        self.mmar: Mmar | None = None
        self.entry = default_entry()
        self.job_timeout: float | None = None
        self.run_marker = ""
        self.base_env: dict[str, str] = dict(os.environ)
        self._running: dict[str, RunningJob] = {}

    @classmethod
    def clara_notes(cls, args: dict[str, Any]) -> dict[str, str]:
        """{arg: why it has no effect} for the args of config_automl.json that change nothing here."""
        notes = {}
        if args.get("remove_search_augs", True) is not True:
            notes["remove_search_augs"] = "search and apply keys are always removed from a job's concrete config"
        if "msg_destination" in args:
            notes["msg_destination"] = "each job's output goes to its own log.txt (the console shows progress)"
        return notes

    def configure(self, *, mmar: Mmar, backend: Backend, entry: str | None = None,
                  job_timeout: float | None = None, run_marker: str = "", space: Any = None) -> None:
        """Called by setup.prepare_run before the engine is built (Clara had this wiring inside its own
        framework; a BYOC executor is built from config_automl.json args, so the run's facts come here).
        ``mmar`` holds the train config and environment with the run's ``--set`` values written in."""
        self.mmar = mmar
        self.backend = backend
        self.entry = entry or default_entry()
        self.job_timeout = job_timeout
        self.run_marker = run_marker
        self._space = space

    # -- Clara's methods ------------------------------------------------------------------------
    def determine_search_space(self, ctx: Context):
        from mmar_automl.search import parse_search_space

        assert self.mmar is not None and self.mmar.train_config is not None
        return parse_search_space(self.mmar.train_config, self.mmar.label(self.mmar.train_config_file))

    def execute(self, recommendation: Recommendation, ctx: Context) -> float | None:
        """Clara's blocking call: run one job (ctx ``JOB`` = its JobRecord) to the end; returns the score."""
        job: JobRecord = ctx.get_prop(ContextKey.JOB)
        running = self.start(job, ctx)
        while True:
            self.read_metrics(running)
            code = self.poll(running)
            if code is not None:
                self.finish(running, code)
                return running.job.score
            time.sleep(0.1)

    def abort(self, ctx: Context) -> None:
        for running in list(self._running.values()):
            self.terminate(running, JobState.ABORTED, "aborted")

    def shutdown(self, ctx: Context) -> None:
        if self.backend is not None:
            self.backend.shutdown()

    # -- non-blocking steps used by the engine --------------------------------------------------
    def prepare(self, job: JobRecord) -> Path:
        """Write the job folder: key content, the concrete config (the point and the run's ``--set``
        values written in), environment.json with absolute data paths."""
        from mmar_automl.search import render_config

        assert self.mmar is not None and self.mmar.train_config is not None
        space = self._space
        concrete = render_config(self.mmar.train_config, space, dict(job.recommendation.point))
        extra = {"job": job.name, "job_uid": job.job_uid, "rec_id": job.recommendation.rec_id,
                 "point": dict(job.recommendation.point), "attempt": job.attempt, "retry_of": job.retry_of}
        return write_job_folder(self.mmar.root, Path(job.folder), concrete, self.mmar.environment, extra)

    _space = None

    def set_space(self, space) -> None:
        self._space = space

    def job_argv(self, job: JobRecord) -> list[str]:
        """``train``'s arguments: the job folder holds everything else (no ``--set``)."""
        return [job.folder, "--config", TRAIN_CONFIG]

    def start(self, job: JobRecord, ctx: Context | None = None, env: dict[str, str] | None = None) -> RunningJob:
        """Prepare the folder (if not there yet) and start the process; non-blocking."""
        assert self.backend is not None
        folder = Path(job.folder)
        if not (folder / self.job_config).exists():
            self.prepare(job)
        outputs = JobOutputs.of(folder)
        job_env = dict(env if env is not None else self.base_env)
        job_env[RUN_MARKER_ENV] = f"{self.run_marker}::{job.job_uid}"
        job_env["MMAR_ROOT"] = str(folder)
        spec = JobSpec(job.job_uid, self.entry, self.job_argv(job), str(folder), job_env, str(outputs.log_file))
        handle = self.backend.submit(spec)
        running = RunningJob(job, handle, outputs.follower(), outputs)
        if self.job_timeout:
            running.deadline = time.monotonic() + self.job_timeout
        self._running[job.job_uid] = running
        return running

    def read_metrics(self, running: RunningJob) -> list[dict[str, Any]]:
        return running.follower.read_new()

    def poll(self, running: RunningJob) -> int | None:
        """Exit code once the process ended; enforces the time-out and the SIGKILL after the grace period."""
        assert self.backend is not None
        code = self.backend.poll(running.handle)
        if code is not None:
            return code
        now = time.monotonic()
        if running.deadline is not None and now > running.deadline and running.kill_reason is None:
            self.terminate(running, JobState.TIMED_OUT, f"ran past --job-timeout {self.job_timeout:g} s")
        if running.term_sent is not None and not running.killed_hard and now - running.term_sent > KILL_GRACE_S:
            self.kill_now(running)
        return None

    def terminate(self, running: RunningJob, reason: JobState, message: str) -> None:
        """SIGTERM the job's process group; SIGKILL follows after the grace period (see poll)."""
        assert self.backend is not None
        if running.kill_reason is None:
            running.kill_reason = reason
            running.kill_message = message
        if running.term_sent is None:
            running.term_sent = time.monotonic()
            self.backend.kill(running.handle, signal.SIGTERM)

    def kill_now(self, running: RunningJob) -> None:
        assert self.backend is not None
        running.killed_hard = True
        self.backend.kill(running.handle, signal.SIGKILL)

    def finish(self, running: RunningJob, exit_code: int) -> JobRecord:
        """Fill the job record from the exit code, train_stats.json and the log."""
        self._running.pop(running.job.job_uid, None)
        job = running.job
        stats = running.outputs.stats()
        tail = running.outputs.log_tail()
        state, score, reason = judge(exit_code, stats, tail)
        lost = getattr(running.handle, "lost_reason", None)
        if lost and state is JobState.FAILED:  # e.g. "lost on Ray node ...: the node died" (backends/ray.py)
            reason = lost
        if running.kill_reason is not None and state is not JobState.COMPLETE:
            state, reason = running.kill_reason, running.kill_message
            if state is JobState.PRUNED:
                score = None
        job.state = state
        job.score = score
        job.exit_code = None if exit_code == UNKNOWN_EXIT else exit_code
        job.reason = reason
        job.log_tail = tail if state not in (JobState.COMPLETE,) else None
        job.ended_at = time.time()
        return job

    def running_jobs(self) -> list[RunningJob]:
        return list(self._running.values())

