"""Progress on the terminal: a rich live view on a TTY (workers with GPU, job, epoch of the total,
latest metric, the job's parameters; finished jobs with scores; the best job with its parameters;
progress and ETA), plain lines when stderr is not a terminal.

Progress counts recommendations, as ``--max-jobs`` does: N = those whose job ended for good (an
ABORTED job runs again on resume, a retried failure counts once), M = the jobs the search will run
(``--max-jobs``, capped by what the controller says it will recommend: a grid's size, Optuna's
``n_trials``, Random's ``num_samples``), unknown when neither says. The ETA is the time per finished
job of this session times the jobs left, less the time since the last one ended: it counts down
between job ends and moves only when a job ends.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mmar_automl.context import Context, ContextKey
from mmar_automl.handlers.base import Handler
from mmar_automl.recommendation import JobState
from mmar_automl.run.job import JobRecord, is_better
from mmar_automl.search.format import display_name, format_point_value, format_value


def format_point(point: dict[str, Any]) -> str:
    return " ".join(f"{display_name(k)}={format_point_value(v)}" for k, v in point.items())


def _score(value: float | None) -> str:
    return "no score" if value is None else f"{value:.4f}"


class ConsoleHandler(Handler):
    """``live``: None = decide from the terminal; ``console``: the rich Console it prints to (None: the
    run's, ctx CONSOLE, given at start_automl; else a plain one on stderr)."""

    def __init__(self, live: bool | None = None, console: Any = None, clock: Callable[[], float] = time.monotonic,
                 **kwargs: Any):
        self._console = console
        self._live_wanted = live
        self._live = None
        # keyed by job uid, not worker: with --jobs-per-gpu a worker runs several jobs at once
        self.running: dict[str, dict[str, Any]] = {}
        self.finished: list[JobRecord] = []
        self.best: JobRecord | None = None
        self.clock = clock
        self.started = clock()
        self.workers: list[str] = []
        self.planned: int | None = None       # M: the jobs the search will run, None = unknown
        self.done_recs: set[int] = set()      # recommendations whose job ended for good (N = its size)
        self.previous = 0                     # of those, ended in earlier sessions (not this session's pace)
        self.last_end: float | None = None    # clock() when the last job of this session ended
        self.recommended = 0
        self.overrides: dict[str, Any] = {}
        self._header: dict[str, Any] = {}
        self.ended = False                    # end_automl seen: no ETA on a stopped run

    @property
    def console(self) -> Any:
        if self._console is None:
            from rich.console import Console

            self._console = Console(stderr=True, markup=False, emoji=False, highlight=False)
        return self._console

    @property
    def live_mode(self) -> bool:
        return self.console.is_terminal if self._live_wanted is None else self._live_wanted

    # -- events ----------------------------------------------------------------------------------
    def start_automl(self, ctx: Context) -> None:
        from mmar_automl.run.journal import JOURNAL_NAME, read_header

        if self._console is None:
            self._console = ctx.get_prop(ContextKey.CONSOLE)
        self.workers = list(ctx.get_prop(ContextKey.WORKERS) or [])
        header = read_header(Path(str(ctx.get_prop(ContextKey.RUN_DIR) or ".")) / JOURNAL_NAME)
        self.overrides = dict(header.get("overrides") or {})
        self._header = header
        for job in ctx.get_prop(ContextKey.PREVIOUS_JOBS) or []:
            if job.state.is_finished():
                self._finished(job)
        self.previous = len(self.done_recs)
        resumed = " (resumed)" if ctx.get_prop(ContextKey.RESUMED) else ""
        self._line(f"run {ctx.get_prop(ContextKey.RUN_ID)}{resumed}: {len(self.workers)} worker(s) "
                   f"[{' '.join(self.workers)}], folder {ctx.get_prop(ContextKey.RUN_DIR)}")
        if self.live_mode:
            from rich.live import Live

            self._live = Live(self._render(), console=self.console, refresh_per_second=4, transient=False)
            self._live.start()

    def search_space_available(self, ctx: Context) -> None:
        space = ctx.get_prop(ContextKey.SEARCH_SPACE)
        if space is not None:
            self.planned = planned_jobs(self._header, space)
            names = ", ".join(display_name(n) for n in space.names)
            self._line(f"search space: {len(space)} dimension(s), grid of {space.grid_size}: {names}")

    def recommendations_available(self, ctx: Context) -> None:
        self.recommended += len(ctx.get_prop(ContextKey.RECOMMENDATIONS) or [])
        self._refresh()

    def start_job(self, ctx: Context) -> None:
        job: JobRecord = ctx.get_prop(ContextKey.JOB)
        self.running[job.job_uid] = {"job": job, "epoch": None, "metric": None, "epochs": self._epochs(job)}
        retry = f" (retry {job.attempt})" if job.attempt else ""
        self._line(f"[{job.name}] start on {self._gpu(job)}{retry}: {format_point(dict(job.recommendation.point))}")

    def job_metrics(self, ctx: Context) -> None:
        job: JobRecord = ctx.get_prop(ContextKey.JOB)
        slot = self.running.get(job.job_uid)
        for record in ctx.get_prop(ContextKey.METRICS) or []:
            if slot is not None and record.get("epoch") is not None:
                slot["epoch"] = record.get("epoch")
            if record.get("kind") == "validation":
                key = record.get("key_metric")
                value = (record.get("metrics") or {}).get(key)
                if slot is not None:
                    slot["metric"] = f"{key}={format_value(value)}"
                self._line(f"[{job.name}] epoch {record.get('epoch')} {key}={format_value(value)}", live_too=False)
        self._refresh()

    def end_job(self, ctx: Context) -> None:
        job: JobRecord = ctx.get_prop(ContextKey.JOB)
        self.running.pop(job.job_uid, None)
        self._finished(job)
        if job.state is not JobState.ABORTED:
            self.last_end = self.clock()
        duration = f" ({job.duration:.1f} s)" if job.duration is not None else ""
        why = f": {job.reason}" if job.reason and job.state.value != "COMPLETE" else ""
        best = f"; best {self.best.name} {_score(self.best.score)}" if self.best else ""
        self._line(f"[{job.name}] {job.state.value} {_score(job.score)}{duration}{why}; {self._count()} finished{best}")

    def end_automl(self, ctx: Context) -> None:
        self.ended = True
        if self._live is not None:
            self._live.update(self._render())
            self._live.stop()
            self._live = None
        states: dict[str, int] = {}
        for job in self.finished:
            states[job.state.value] = states.get(job.state.value, 0) + 1
        summary = ", ".join(f"{n} {s.lower()}" for s, n in sorted(states.items())) or "no jobs"
        # an aborted job whose recommendation ended for good later (a resume re-ran it) is not pending
        pending = sum(1 for job in self.finished if job.state is JobState.ABORTED
                      and job.recommendation.rec_id not in self.done_recs)
        if pending:
            summary += f" ({pending} aborted job(s) run again on resume)"
        elif states.get(JobState.ABORTED.value):
            summary += " (the aborted jobs were run again)"
        best = (f"; best {self.best.name} score {_score(self.best.score)}: {format_point(dict(self.best.recommendation.point))}"
                if self.best else "; no scored job")
        self._line(f"finished: {summary}{best}", live_too=True)

    # -- helpers -----------------------------------------------------------------------------------
    def _finished(self, job: JobRecord) -> None:
        self.finished.append(job)
        if job.state is not JobState.ABORTED:
            self.done_recs.add(job.recommendation.rec_id)
        if is_better(job, self.best):
            self.best = job

    def _count(self) -> str:
        """``N/M`` (or ``N`` while M is unknown)."""
        n = len(self.done_recs)
        return f"{n}/{max(self.planned, n)}" if self.planned is not None else str(n)

    def eta(self) -> float | None:
        """Seconds left, from this session's pace; None while unknown (no job ended yet, M unknown) and once
        the run has stopped (Ctrl-C, --time-limit: nothing is left to wait for)."""
        done_here = len(self.done_recs) - self.previous
        if self.ended or self.planned is None or done_here <= 0 or self.last_end is None:
            return None
        left = max(self.planned - len(self.done_recs), 0)
        per_job = (self.last_end - self.started) / done_here
        return max(0.0, left * per_job - (self.clock() - self.last_end))

    def _epochs(self, job: JobRecord) -> int | None:
        """The job's epoch total: ``epochs`` of its concrete config, or the run's ``--set epochs=``."""
        from mmar_automl.run.outputs import JobOutputs

        value = self.overrides.get("epochs")
        if value is None:
            try:  # config/config_train.json, or a MONAI bundle job's configs/train.json
                value = json.loads(JobOutputs.of(job.folder).config_file.read_text()).get("epochs")
            except (OSError, ValueError, AttributeError):
                value = None
        try:
            return int(value) if value is not None and not isinstance(value, bool) else None
        except (TypeError, ValueError):
            return None

    @staticmethod
    def _gpu(job: JobRecord) -> str:
        return "GPU " + ",".join(map(str, job.gpus)) if job.gpus else "cpu"

    def _line(self, text: str, live_too: bool = True) -> None:
        if self._live is not None:
            if live_too:
                self._live.console.print(text, soft_wrap=True)
            self._refresh()
        else:
            self.console.print(text, soft_wrap=True)

    def _refresh(self) -> None:
        if self._live is not None:
            self._live.update(self._render())

    def _render(self) -> Any:
        from rich.console import Group
        from rich.table import Table
        from rich.text import Text

        workers = Table(title="workers", expand=False)
        for col in ("worker", "gpu", "job", "epoch", "latest metric"):
            workers.add_column(col)
        workers.add_column("parameters", overflow="fold")
        for k, label in enumerate(self.workers, 1):
            slots = [s for s in self.running.values() if s["job"].worker == k]
            for slot in slots:
                epoch = f"{slot['epoch'] or '-'}/{slot['epochs']}" if slot["epochs"] else str(slot["epoch"] or "-")
                workers.add_row(str(k), label, slot["job"].name, epoch, slot["metric"] or "-",
                                format_point(dict(slot["job"].recommendation.point)))
            if not slots:
                workers.add_row(str(k), label, "idle", "-", "-", "")
        done = Table(title="finished jobs (latest 8)")
        for col in ("job", "state", "score", "seconds"):
            done.add_column(col)
        for job in self.finished[-8:]:
            done.add_row(job.name, job.state.value, _score(job.score), f"{job.duration:.1f}" if job.duration else "-")
        elapsed = self.clock() - self.started
        eta = self.eta()
        shown_eta = f", ETA {eta:.0f} s" if eta is not None else ""
        best = (f"best: {self.best.name} {_score(self.best.score)}  {format_point(dict(self.best.recommendation.point))}"
                if self.best else "best: -")
        progress = f"{self._count()} jobs finished, {len(self.running)} running, {elapsed:.0f} s elapsed{shown_eta}"
        return Group(workers, done, Text(best), Text(progress))  # Text: no markup in names like [8,16]


def planned_jobs(header: dict[str, Any], space: Any) -> int | None:
    """M: ``--max-jobs``, capped by the number of jobs the controller will recommend when its args say it
    (a grid's size; Optuna's ``n_trials``; Random's ``num_samples``/``max_jobs``); None when unknown."""
    controller = header.get("controller") or {}
    args = controller.get("args") or {}
    budget = None
    name = controller.get("name")
    if name == "GridController" and space is not None:
        budget = space.grid_size
    elif name == "OptunaController":
        budget = args.get("n_trials")
    elif name == "RandomController":
        budget = args.get("num_samples") or args.get("max_jobs")
    max_jobs = (header.get("options") or {}).get("max_jobs")
    known = [v for v in (budget, max_jobs) if isinstance(v, int) and not isinstance(v, bool) and v > 0]
    return min(known) if known else None
