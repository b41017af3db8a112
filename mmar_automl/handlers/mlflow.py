"""MLflowHandler: mirrors a search into MLflow, live. Thin: it turns events into operations for the
background writer (mmar_automl.tracking); its event methods only queue work, return at once and
never raise (an MLflow problem never stops a search).

Layout in MLflow: experiment = the MMAR's folder name (or ``experiment``); one parent run per AutoML
run (named after the run id) and one nested child per job (named after the job folder, a retry being
a new child). What the runs hold (params, descriptions) is composed in ``tracking/content.py``: the
parent's params say how the search ran, a child's what the job trained with (searched values under
the report's names, fixed first-level keys, ``--set``); PRLs are tags; every number of metrics.jsonl
is a metric. At the end the best job's model is logged as an MLflow PyTorch model (in a subprocess:
the orchestrator never imports torch) and the HTML report is attached to the parent.

The parent's ``best_score`` is stepped in completion order: step k = the k-th job that ended, value =
the best score among the jobs ended so far. It never goes down and each point is true when logged;
stepping by job number cannot be both, as job 4 may end before job 3 (``job_score`` is stepped by
job number: it is that job's own score).

Durations: a child's MLflow duration is the job's duration (``JobRecord.duration``, the one the
console and the report show): its end time is its start time plus that duration.
Settings come from config_automl.json args, overridden by the ``OPTIONS`` context property
(``tracking_uri``, ``experiment``, ``log_models``: best|all|none, ``resume``) that the CLI sets.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from mmar_automl.context import Context, ContextKey
from mmar_automl.handlers.base import Handler
from mmar_automl.recommendation import JobState
from mmar_automl.run.outputs import METRIC_KINDS, JobOutputs

log = logging.getLogger("mmar_automl.mlflow")

STATE_NAME = "mlflow.json"
REPORT_NAME = "report.html"
MODEL_EXPORT_TIMEOUT = 300.0  # seconds the writer may spend saving the best model at the end
LOG_MODELS = ("best", "all", "none")
_RUN_STATUS = {JobState.COMPLETE: "FINISHED", JobState.FAILED: "FAILED", JobState.TIMED_OUT: "FAILED",
               JobState.PRUNED: "KILLED", JobState.ABORTED: "KILLED"}


class MLflowHandler(Handler):
    def __init__(self, tracking_uri: str | None = None, experiment: str | None = None, log_models: str = "best",
                 flush_timeout: float = 30.0, retry_interval: float = 5.0, gpu_interval: float = 10.0,
                 **_ignored: Any):
        self.tracking_uri = tracking_uri
        self.experiment = experiment
        self.log_models = log_models
        self.flush_timeout = flush_timeout
        self.retry_interval = retry_interval
        self.gpu_interval = gpu_interval
        self.writer: Any = None
        self.sampler: Any = None
        self.ui_hint: str | None = None
        self.run_uid: str | None = None
        self.parent_uid: str | None = None
        self._space: Any = None
        self._controller = ""
        self._state_path: Path | None = None
        self._state: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._seen: dict[str, int] = {}   # job uid -> metrics.jsonl records already queued live
        self._console: Any = None         # the CLI's console (ctx CONSOLE): messages for the user
        self._opened: dict[str, int] = {}  # job uid -> the start time (ms) its MLflow run was given
        self._names: dict[str, str] = {}   # job uid -> name (W1_2_J3): a retry names the job it re-runs
        self._header: dict[str, Any] = {}  # the journal's run_started event
        self._model_pending = False

    @staticmethod
    def check_options(mmar_root: str | Path, tracking_uri: str | None = None, log_models: str | None = None) -> str:
        """For the CLI, before anything starts: the tracking URI the run will use; ConfigError (exit 2)
        for a bare file store or an unknown ``--log-models``."""
        from mmar_automl.errors import ConfigError
        from mmar_automl.tracking.uri import resolve_tracking_uri

        if log_models is not None and log_models not in LOG_MODELS:
            raise ConfigError(None, "--log-models", f"{log_models!r} is not one of {', '.join(LOG_MODELS)}")
        return resolve_tracking_uri(mmar_root, tracking_uri)

    # -- dispatch: never raise ---------------------------------------------------------------------
    def handle_event(self, event: str, ctx: Context) -> None:
        try:
            super().handle_event(event, ctx)
        except Exception as err:  # noqa: BLE001 - tracking must never stop the search
            log.warning("MLflowHandler.%s failed: %s: %s", event, type(err).__name__, err)

    # -- events ------------------------------------------------------------------------------------
    def start_automl(self, ctx: Context) -> None:
        from mmar_automl.config.mmar import Mmar
        from mmar_automl.tracking.spool import Spool

        self._console = ctx.get_prop(ContextKey.CONSOLE)
        from mmar_automl.tracking.uri import prepare_store, resolve_tracking_uri, sqlite_experiment_id, ui_hint
        from mmar_automl.tracking.writer import TrackingWriter

        mmar_root = Path(ctx.get_prop(ContextKey.MMAR_ROOT) or ".").resolve()
        run_id = str(ctx.get_prop(ContextKey.RUN_ID))
        run_dir = Path(ctx.get_prop(ContextKey.RUN_DIR) or Mmar.at(mmar_root).run_dir(run_id))
        self._state_path = run_dir / STATE_NAME
        resumed = self._state_path.exists()
        self._state = json.loads(self._state_path.read_text()) if resumed else {}
        self.log_models = _option(ctx, "log_models") or self.log_models
        if self.log_models not in LOG_MODELS:
            log.warning("log_models %r unknown, using 'best'", self.log_models)
            self.log_models = "best"
        uri = _option(ctx, "tracking_uri") or self.tracking_uri or self._state.get("tracking_uri")
        uri = resolve_tracking_uri(mmar_root, uri)
        experiment = (_option(ctx, "experiment") or self.experiment or self._state.get("experiment")
                      or mmar_root.name)
        self._controller = _controller_name(ctx)
        from mmar_automl.run.journal import JOURNAL_NAME, read_header

        self._header = read_header(run_dir / JOURNAL_NAME)
        prepare_store(uri)  # before any job starts: a new SQLite store must be created once
        self.run_uid = self._state.get("run_uid") or uuid.uuid4().hex
        self.parent_uid = f"run:{self.run_uid}"
        self._state.update(tracking_uri=uri, experiment=experiment, run_uid=self.run_uid, run_id=run_id,
                           mmar_root=str(mmar_root))
        self._save_state()

        spool = Spool.in_run_dir(run_dir)
        if not spool.try_lock():
            log.warning("MLflow: another process owns %s; this run is not tracked", spool.path)
            return
        self.writer = TrackingWriter(spool, _sink_factory(uri, experiment, self._experiment_known),
                                     retry_interval=self.retry_interval)
        self.writer.start()
        from mmar_automl.tracking.content import parent_params
        from mmar_automl.tracking.limits import fit_params

        workers = " ".join(map(str, ctx.get_prop(ContextKey.WORKERS) or []))
        # Params are written once (MLflow refuses to change one): the first session's, from the journal.
        params, full = fit_params(parent_params(self._header, _option(ctx, "backend"))) if not resumed else ({}, {})
        self.writer.submit({
            "op": "open_run", "uid": self.parent_uid, "name": run_id, "parent": None,
            "start_time": int(time.time() * 1000), "params": params, "full_values": full,
            "tags": {"mmar_automl.run_id": run_id, "mmar_automl.mmar": str(mmar_root),
                     "mmar_automl.controller": self._controller, "mmar_automl.status": "RUNNING",
                     "mmar_automl.workers": workers},
        })
        if resumed or _option(ctx, "resume"):
            # Jobs left RUNNING by the orchestrator that died are over; the parent runs again.
            durations = {j.job_uid: j.duration for j in ctx.get_prop(ContextKey.PREVIOUS_JOBS) or [] if j.duration is not None}
            self.writer.submit({"op": "reap", "run_uid": self.run_uid, "durations": durations})
            self.writer.submit({"op": "reopen", "uid": self.parent_uid})
            self._previous_best(ctx)
        from mmar_automl.tracking.gpu import GpuSampler

        self.sampler = GpuSampler(self._emit_gpu, interval=self.gpu_interval)
        self.ui_hint = ui_hint(uri, self._state.get("experiment_id") or sqlite_experiment_id(uri, experiment))
        _say(self._console, f"MLflow: tracking to {uri} (experiment {experiment!r}); browse with: {self.ui_hint}")

    def search_space_available(self, ctx: Context) -> None:
        self._space = ctx.get_prop(ContextKey.SEARCH_SPACE)
        if self.writer is None or self._space is None:
            return
        from mmar_automl.tracking.content import DESCRIPTION_TAG, parent_description

        text = json.dumps(self._space.to_json(), indent=1, default=str)
        description = parent_description(str(self._state.get("run_id")), str(self._state.get("mmar_root")),
                                         self._header, self._space)
        self.writer.submit({"op": "open_run", "uid": self.parent_uid, "name": self._state.get("run_id"),
                            "parent": None, "tags": {DESCRIPTION_TAG: description},
                            "full_values": {"search_space.json": text}})

    def start_job(self, ctx: Context) -> None:
        from mmar_automl.search.format import display_name
        from mmar_automl.tracking.content import DESCRIPTION_TAG, fixed_params, job_description, searched_params
        from mmar_automl.tracking.limits import fit_params, fit_tags, safe_key

        job = ctx.get_prop(ContextKey.JOB)
        if self.writer is None or job is None:
            return
        self._names[job.job_uid] = job.name
        space = self._space or ctx.get_prop(ContextKey.SEARCH_SPACE)
        point = dict(job.recommendation.point)
        concrete = _read_json(JobOutputs.of(job.folder).config_file)  # an MMAR's or a bundle's
        params = {**fixed_params(concrete, self._header.get("overrides") or {}, space), **searched_params(point)}
        params = {safe_key(k): v for k, v in params.items()}
        prl_tags = {}
        for name in point:
            prl = _prl(space, name)
            if prl:
                prl_tags[f"prl.{safe_key(display_name(name))}"] = prl
        tags = {
            **prl_tags, "mmar_automl.run_uid": self.run_uid, "mmar_automl.worker": str(job.worker),
            "mmar_automl.gpus": ",".join(map(str, job.gpus)) or "cpu", "mmar_automl.folder": job.folder,
            "mmar_automl.status": JobState.RUNNING.value, "mmar_automl.controller": self._controller,
            "mmar_automl.job_number": str(job.number), "mmar_automl.attempt": str(job.attempt),
            "mmar_automl.rec_id": str(job.recommendation.rec_id),
            DESCRIPTION_TAG: job_description(job, retry_of_name=self._job_name(ctx, job.retry_of)),
        }
        if job.retry_of:
            tags["mmar_automl.retry_of"] = job.retry_of
        params, full = fit_params(params)
        tags, full_tags = fit_tags(tags)
        start_ms = int((job.started_at or time.time()) * 1000)
        with self._lock:
            self._opened[job.job_uid] = start_ms
        self.writer.submit({
            "op": "open_run", "uid": f"job:{job.job_uid}", "name": job.name, "parent": self.parent_uid,
            "start_time": start_ms, "tags": tags, "params": params,
            "full_values": {**full, **full_tags},
        })
        if self.sampler is not None and job.gpus:
            self.sampler.add(f"job:{job.job_uid}", _nvml_indices(ctx, job.gpus), folder=job.folder)

    def _job_name(self, ctx: Context, job_uid: str | None) -> str | None:
        """The name (W1_2_J3) of an earlier job of this run, for a retry's description: a uid means
        nothing in the MLflow UI. None when unknown."""
        if not job_uid:
            return None
        if job_uid not in self._names:
            self._names.update({j.job_uid: j.name for j in ctx.get_prop(ContextKey.PREVIOUS_JOBS) or []})
        return self._names.get(job_uid)

    def job_metrics(self, ctx: Context) -> None:
        from mmar_automl.tracking.records import metrics_from_records

        job, recs = ctx.get_prop(ContextKey.JOB), ctx.get_prop(ContextKey.METRICS) or []
        if self.writer is None or job is None:
            return
        metrics = metrics_from_records(recs, job.started_at)
        with self._lock:
            uid = f"job:{job.job_uid}"
            self._seen[uid] = self._seen.get(uid, 0) + sum(1 for r in recs if r.get("kind") in METRIC_KINDS)
        if metrics:
            self.writer.submit({"op": "log", "uid": f"job:{job.job_uid}", "metrics": metrics})

    def end_job(self, ctx: Context) -> None:
        from mmar_automl.tracking.content import DESCRIPTION_TAG, job_description
        from mmar_automl.tracking.limits import fit_tags

        job = ctx.get_prop(ContextKey.JOB)
        if self.writer is None or job is None:
            return
        uid = f"job:{job.job_uid}"
        if self.sampler is not None:
            self.sampler.remove(uid)
        end_ms = self._end_ms(job)
        tags = {"mmar_automl.status": job.state.value,
                DESCRIPTION_TAG: job_description(job, job.state.value, job.score, job.duration, job.reason,
                                                 retry_of_name=self._job_name(ctx, job.retry_of))}
        if job.duration is not None:
            tags["mmar_automl.duration_s"] = f"{job.duration:.1f}"
        if job.exit_code is not None:
            tags["mmar_automl.exit_code"] = str(job.exit_code)
        if job.reason:
            tags["mmar_automl.reason"] = job.reason
        tags, full = fit_tags(tags)
        metrics = [["score", float(job.score), 0, end_ms]] if job.score is not None else []
        with self._lock:
            seen = self._seen.pop(uid, 0)
        # The records already sent live are skipped (sending them again would be harmless: same rows).
        self.writer.submit({"op": "job_files", "uid": uid, "folder": job.folder, "started_at": job.started_at,
                            "with_model": self.log_models == "all", "skip_records": seen})
        self.writer.submit({"op": "log", "uid": uid, "metrics": metrics, "tags": tags})
        if full:
            self.writer.submit({"op": "open_run", "uid": uid, "name": job.name, "parent": self.parent_uid,
                                "tags": {}, "full_values": full})
        self.writer.submit({"op": "close_run", "uid": uid, "status": _RUN_STATUS.get(job.state, "FINISHED"),
                            "end_time": end_ms})
        if job.state is not JobState.ABORTED:  # an aborted job runs again on resume: it has not ended
            self._parent_best(job, end_ms)

    def end_automl(self, ctx: Context) -> None:
        if self.writer is None:
            return
        best = self._state.get("best")
        if self.log_models == "best" and best:
            self.writer.submit({"op": "pytorch_model", "uid": f"job:{best['job_uid']}", "folder": best["folder"],
                                "overrides": self._header.get("overrides") or {}})
            self._model_pending = True
        # An interrupted run (Ctrl-C) is KILLED until `run --resume` reopens it.
        interrupted = bool(ctx.get_prop(ContextKey.INTERRUPTED))
        reason = ctx.get_prop(ContextKey.STOP_REASON)
        tags = {"mmar_automl.status": "INTERRUPTED" if interrupted else "COMPLETE"}
        if isinstance(reason, str):
            tags["mmar_automl.stop_reason"] = reason[:500]
        report = self._html_report(ctx, reason)
        if report is not None:
            self.writer.submit({"op": "artifacts", "uid": self.parent_uid, "files": [[str(report), ""]]})
        self.writer.submit({"op": "log", "uid": self.parent_uid, "tags": tags})
        self.writer.submit({"op": "close_run", "uid": self.parent_uid,
                            "status": "KILLED" if interrupted else "FINISHED", "end_time": int(time.time() * 1000)})
        self._close()
        if self._state.get("experiment_id"):
            from mmar_automl.tracking.uri import ui_hint

            _say(self._console, f"MLflow: this search's runs: {ui_hint(self._state['tracking_uri'], self._state['experiment_id'])}")

    def shutdown(self, ctx: Context) -> None:
        self._close()

    # -- helpers -----------------------------------------------------------------------------------
    def _close(self) -> None:
        if self.sampler is not None:
            self.sampler.close()
        if self.writer is None:
            return
        writer, self.writer = self.writer, None
        # Saving the best model (a subprocess importing torch and monai) takes longer than the usual flush.
        timeout = self.flush_timeout + (MODEL_EXPORT_TIMEOUT if self._model_pending else 0)
        left = writer.close(timeout)
        if left:
            state = self._state
            _say(self._console, f"MLflow: {left} writes could not be sent ({writer.last_error}); they are kept in "
                 f"{writer.spool.path}: run `mmar-automl sync {state.get('mmar_root')} {state.get('run_id')}`")

    def _parent_best(self, job: Any, end_ms: int) -> None:
        """On the parent: ``job_score`` at step = job number, and ``best_score`` at step k = this is the
        k-th job that ended (any state but ABORTED), value = the best score of the jobs ended so far.
        The best is chosen as the engine, the report and ``export-best`` choose it (``is_better``), so
        that the model logged is the one exported."""
        with self._lock:
            self._state["ended"] = int(self._state.get("ended", 0)) + 1
            scored = job.score is not None and job.state is JobState.COMPLETE
            best = self._consider_best(job) if scored else self._state.get("best")
            self._save_state()
            metrics = [["job_score", float(job.score), job.number, end_ms]] if scored else []
            if best is not None:
                metrics.append(["best_score", best["score"], self._state["ended"], end_ms])
            tags = {"mmar_automl.best_job": best["job"], "mmar_automl.best_job_uid": best["job_uid"]} if best else {}
            self.writer.submit({"op": "log", "uid": self.parent_uid, "metrics": metrics, "tags": tags})

    def _end_ms(self, job: Any) -> int:
        """The end time MLflow gets: its start time plus the job's duration (one definition everywhere)."""
        with self._lock:
            start_ms = self._opened.pop(job.job_uid, None)
        if start_ms is not None and job.duration is not None:
            return start_ms + int(round(job.duration * 1000))
        return int((job.ended_at or time.time()) * 1000)

    def _experiment_known(self, experiment_id: str) -> None:
        """Called by the sink (writer thread) once it knows the experiment: kept for the UI link."""
        with self._lock:
            if self._state.get("experiment_id") != experiment_id and self._state_path is not None:
                self._state["experiment_id"] = experiment_id
                self._save_state()

    def _html_report(self, ctx: Context, reason: Any) -> Path | None:
        """The run's HTML report (``report --html``) written as ``report.html`` in the run folder, for the
        parent run. The journal's run_ended event comes after this: the stop reason stands in for it."""
        try:
            from mmar_automl.report.data import best_config_diff, learning_curves, load_report
            from mmar_automl.report.html import render_html, write_html
            from mmar_automl.report.importance import parameter_importance

            data = load_report(self._state["mmar_root"], self._state["run_id"])
            if data.ended is None and isinstance(reason, str):
                data.ended = {"reason": reason}
            diff, note = best_config_diff(data)
            key_metric, curves = learning_curves(data)
            importance = parameter_importance(data, "ped-anova")
            html = render_html(data, key_metric=key_metric, curves=curves, importance=importance, diff=diff,
                               diff_note=note, top=50)
            return write_html(data.run_dir / REPORT_NAME, html)
        except Exception as err:  # noqa: BLE001 - the report is a courtesy: tracking goes on without it
            log.warning("MLflow: no HTML report for the parent run: %s: %s", type(err).__name__, err)
            return None

    def _consider_best(self, job: Any) -> dict[str, Any]:
        """The best job after ``job`` (a scored COMPLETE job), kept in the state; caller holds _lock and saves."""
        best = self._state.get("best")
        if best is None or (job.score, -job.number) > (best["score"], -best.get("number", job.number)):
            best = {"score": float(job.score), "job_uid": job.job_uid, "job": job.name, "folder": job.folder,
                    "number": job.number}
            self._state["best"] = best
        return best

    def _previous_best(self, ctx: Context) -> None:
        """On resume: jobs that finished while the orchestrator was down end without an event (their child
        run is completed by the reap), so the best is also taken from the jobs of earlier sessions."""
        before = self._state.get("best")
        with self._lock:
            for job in ctx.get_prop(ContextKey.PREVIOUS_JOBS) or []:
                if job.state is JobState.COMPLETE and job.score is not None:
                    self._consider_best(job)
            best = self._state.get("best")
            ended = sum(1 for j in ctx.get_prop(ContextKey.PREVIOUS_JOBS) or []
                        if j.state.is_finished() and j.state is not JobState.ABORTED)
            grew = ended > int(self._state.get("ended", 0))
            self._state["ended"] = max(ended, int(self._state.get("ended", 0)))
            self._save_state()
        if best is not None and (best != before or grew):
            metrics = [["best_score", best["score"], self._state["ended"], int(time.time() * 1000)]]
            self.writer.submit({"op": "log", "uid": self.parent_uid, "metrics": metrics,
                                "tags": {"mmar_automl.best_job": best["job"], "mmar_automl.best_job_uid": best["job_uid"]}})

    def _emit_gpu(self, uid: str, metrics: list[list[Any]]) -> None:
        writer = self.writer
        if writer is not None:
            writer.submit({"op": "log", "uid": uid, "metrics": metrics})

    def _save_state(self) -> None:
        # temp + replace: a crash never leaves a half-written state file
        assert self._state_path is not None
        self._state_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self._state, indent=1))
        os.replace(tmp, self._state_path)


def _sink_factory(uri: str, experiment: str, on_experiment=None):
    def make():
        from mmar_automl.tracking.sync import MlflowSink

        return MlflowSink(uri, experiment, on_experiment=on_experiment)

    return make


def _option(ctx: Context, name: str) -> Any:
    opts = ctx.get_prop(ContextKey.OPTIONS)
    if opts is None:
        return None
    return opts.get(name) if isinstance(opts, dict) else getattr(opts, name, None)


def _controller_name(ctx: Context) -> str:
    for value in (_option(ctx, "controller"), ctx.get_prop(ContextKey.CONTROLLER)):
        if isinstance(value, str):
            return value
        if value is not None:
            return type(value).__name__
    return ""


def _nvml_indices(ctx: Context, gpus: list[int]) -> dict[int, int]:
    """``{CUDA index: NVML index}`` from the run's GPU list (matched by PCI bus id when it was built);
    without it, the indices are taken to be the same."""
    known = {g.index: g.nvml_index for g in ctx.get_prop(ContextKey.GPU_DEVICES) or []
             if hasattr(g, "index") and hasattr(g, "nvml_index")}
    return {i: known.get(i, i) for i in gpus}


def _dimension(space: Any, name: str) -> Any:
    try:
        return space[name] if space is not None else None
    except (KeyError, TypeError):
        return None


def _prl(space: Any, name: str) -> str | None:
    dim = _dimension(space, name)
    return getattr(dim, "prl", None)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _say(console: Any, message: str) -> None:
    log.info(message)
    if console is not None:
        console.print(message, soft_wrap=True)
