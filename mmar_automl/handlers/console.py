"""Progress on the terminal: a rich live view on a TTY (workers with GPU, job, epoch, latest metric;
finished jobs with scores; best so far; progress and ETA), plain lines when stderr is not a terminal."""

from __future__ import annotations

import time
from typing import Any

from mmar_automl.context import Context, ContextKey
from mmar_automl.handlers.base import Handler
from mmar_automl.run.job import JobRecord, is_better
from mmar_automl.search.format import format_point_value, format_value


def format_point(point: dict[str, Any]) -> str:
    return " ".join(f"{k}={format_point_value(v)}" for k, v in point.items())


def _score(value: float | None) -> str:
    return "no score" if value is None else f"{value:.4f}"


class ConsoleHandler(Handler):
    """``live``: None = decide from the terminal; ``console``: the rich Console it prints to (None: the
    run's, ctx CONSOLE, given at start_automl; else a plain one on stderr)."""

    def __init__(self, live: bool | None = None, console: Any = None, **kwargs: Any):
        self._console = console
        self._live_wanted = live
        self._live = None
        # keyed by job uid, not worker: with --jobs-per-gpu a worker runs several jobs at once
        self.running: dict[str, dict[str, Any]] = {}
        self.finished: list[JobRecord] = []
        self.best: JobRecord | None = None
        self.total = 0
        self.started = time.monotonic()
        self.workers: list[str] = []
        self.previous = 0  # jobs of earlier sessions (resume): not part of this session's throughput

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
        if self._console is None:
            self._console = ctx.get_prop(ContextKey.CONSOLE)
        self.workers = list(ctx.get_prop(ContextKey.WORKERS) or [])
        for job in ctx.get_prop(ContextKey.PREVIOUS_JOBS) or []:
            if job.state.is_finished():
                self._finished(job)
                self.previous += 1
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
            self._line(f"search space: {len(space)} dimension(s), grid of {space.grid_size}: {', '.join(space.names)}")

    def recommendations_available(self, ctx: Context) -> None:
        recs = ctx.get_prop(ContextKey.RECOMMENDATIONS) or []
        self.total += len(recs)
        self._refresh()

    def start_job(self, ctx: Context) -> None:
        job: JobRecord = ctx.get_prop(ContextKey.JOB)
        self.running[job.job_uid] = {"job": job, "epoch": None, "metric": None}
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
        duration = f" ({job.duration:.1f} s)" if job.duration is not None else ""
        why = f": {job.reason}" if job.reason and job.state.value != "COMPLETE" else ""
        best = f"; best {self.best.name} {_score(self.best.score)}" if self.best else ""
        self._line(f"[{job.name}] {job.state.value} {_score(job.score)}{duration}{why}{best}")

    def end_automl(self, ctx: Context) -> None:
        if self._live is not None:
            self._live.update(self._render())
            self._live.stop()
            self._live = None
        states: dict[str, int] = {}
        for job in self.finished:
            states[job.state.value] = states.get(job.state.value, 0) + 1
        summary = ", ".join(f"{n} {s.lower()}" for s, n in sorted(states.items())) or "no jobs"
        best = f"; best {self.best.name} score {_score(self.best.score)}" if self.best else "; no scored job"
        self._line(f"finished: {summary}{best}", live_too=True)

    # -- helpers -----------------------------------------------------------------------------------
    def _finished(self, job: JobRecord) -> None:
        self.finished.append(job)
        if is_better(job, self.best):
            self.best = job

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
        for k, label in enumerate(self.workers, 1):
            slots = [s for s in self.running.values() if s["job"].worker == k]
            for slot in slots:
                workers.add_row(str(k), label, slot["job"].name, str(slot["epoch"] or "-"), slot["metric"] or "-")
            if not slots:
                workers.add_row(str(k), label, "idle", "-", "-")
        done = Table(title="finished jobs (latest 8)")
        for col in ("job", "state", "score", "seconds"):
            done.add_column(col)
        for job in self.finished[-8:]:
            done.add_row(job.name, job.state.value, _score(job.score), f"{job.duration:.1f}" if job.duration else "-")
        n_done = len(self.finished)
        elapsed = time.monotonic() - self.started
        remaining = max(self.total - n_done, len(self.running))
        done_here = n_done - self.previous
        eta = f", ETA {remaining * elapsed / done_here:.0f} s" if done_here > 0 else ""  # this session's throughput
        best = f"best: {self.best.name} {_score(self.best.score)}" if self.best else "best: -"
        progress = f"{n_done}/{max(self.total, n_done)} jobs finished, {len(self.running)} running, {elapsed:.0f} s elapsed{eta}"
        return Group(workers, done, Text(best), Text(progress))  # Text: no markup in names like [8,16]
