"""MLflowHandler: mirrors a search into MLflow, live. Thin: it turns events into operations for the
background writer (mmar_automl.tracking); its event methods only queue work, return at once and
never raise (an MLflow problem never stops a search).

Layout in MLflow: experiment = the MMAR's folder name (or ``experiment``); one parent run per AutoML
run (named after the run id) and one nested child per job (named after the job folder, a retry being
a new child); params = the job's concrete search values under their readable names, PRLs as tags.
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
from mmar_automl.run.outputs import METRIC_KINDS

log = logging.getLogger("mmar_automl.mlflow")

STATE_NAME = "mlflow.json"
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
        from mmar_automl.tracking.uri import prepare_store, resolve_tracking_uri, ui_hint
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
        self.writer = TrackingWriter(spool, _sink_factory(uri, experiment), retry_interval=self.retry_interval)
        self.writer.start()
        self.writer.submit({
            "op": "open_run", "uid": self.parent_uid, "name": run_id, "parent": None,
            "start_time": int(time.time() * 1000),
            "tags": {"mmar_automl.run_id": run_id, "mmar_automl.mmar": str(mmar_root),
                     "mmar_automl.controller": self._controller, "mmar_automl.status": "RUNNING"},
        })
        if resumed or _option(ctx, "resume"):
            # Jobs left RUNNING by the orchestrator that died are over; the parent runs again.
            self.writer.submit({"op": "reap", "run_uid": self.run_uid})
            self.writer.submit({"op": "reopen", "uid": self.parent_uid})
            self._previous_best(ctx)
        from mmar_automl.tracking.gpu import GpuSampler

        self.sampler = GpuSampler(self._emit_gpu, interval=self.gpu_interval)
        self.ui_hint = ui_hint(uri)
        ctx.set_prop("MLFLOW_UI_HINT", self.ui_hint)
        _say(self._console, f"MLflow: tracking to {uri} (experiment {experiment!r}); browse with: {self.ui_hint}")

    def search_space_available(self, ctx: Context) -> None:
        self._space = ctx.get_prop(ContextKey.SEARCH_SPACE)
        if self.writer is None or self._space is None:
            return
        text = json.dumps(self._space.to_json(), indent=1, default=str)
        self.writer.submit({"op": "open_run", "uid": self.parent_uid, "name": self._state.get("run_id"),
                            "parent": None, "tags": {}, "full_values": {"search_space.json": text}})

    def start_job(self, ctx: Context) -> None:
        from mmar_automl.tracking.limits import fit_params, fit_tags, safe_key

        job = ctx.get_prop(ContextKey.JOB)
        if self.writer is None or job is None:
            return
        space = self._space or ctx.get_prop(ContextKey.SEARCH_SPACE)
        params, prl_tags = {}, {}
        for name, value in job.recommendation.point.items():
            key = safe_key(name)
            params[key] = _param_value(space, name, value)
            prl = _prl(space, name)
            if prl:
                prl_tags[f"prl.{key}"] = prl
        tags = {
            **prl_tags, "mmar_automl.run_uid": self.run_uid, "mmar_automl.worker": str(job.worker),
            "mmar_automl.gpus": ",".join(map(str, job.gpus)) or "cpu", "mmar_automl.folder": job.folder,
            "mmar_automl.status": JobState.RUNNING.value, "mmar_automl.controller": self._controller,
            "mmar_automl.job_number": str(job.number), "mmar_automl.attempt": str(job.attempt),
            "mmar_automl.rec_id": str(job.recommendation.rec_id),
        }
        if job.retry_of:
            tags["mmar_automl.retry_of"] = job.retry_of
        params, full = fit_params(params)
        tags, full_tags = fit_tags(tags)
        self.writer.submit({
            "op": "open_run", "uid": f"job:{job.job_uid}", "name": job.name, "parent": self.parent_uid,
            "start_time": int((job.started_at or time.time()) * 1000), "tags": tags, "params": params,
            "full_values": {**full, **full_tags},
        })
        if self.sampler is not None and job.gpus:
            self.sampler.add(f"job:{job.job_uid}", _nvml_indices(ctx, job.gpus), folder=job.folder)

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
        from mmar_automl.tracking.limits import fit_tags

        job = ctx.get_prop(ContextKey.JOB)
        if self.writer is None or job is None:
            return
        uid = f"job:{job.job_uid}"
        if self.sampler is not None:
            self.sampler.remove(uid)
        end_ms = int((job.ended_at or time.time()) * 1000)
        tags = {"mmar_automl.status": job.state.value}
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
        if job.score is not None and job.state is JobState.COMPLETE:
            self._parent_best(job, end_ms)

    def end_automl(self, ctx: Context) -> None:
        if self.writer is None:
            return
        best = self._state.get("best")
        if self.log_models == "best" and best:
            from mmar_automl.run.outputs import JobOutputs

            self.writer.submit({"op": "artifacts", "uid": f"job:{best['job_uid']}",
                                "files": [[str(JobOutputs.of(best["folder"]).model_file), "model"]]})
        # An interrupted run (Ctrl-C) is KILLED until `run --resume` reopens it.
        interrupted = bool(ctx.get_prop(ContextKey.INTERRUPTED))
        stop_reason = ctx.get_prop(ContextKey.STOP_REASON)
        tags = {"mmar_automl.status": "INTERRUPTED" if interrupted else "COMPLETE"}
        if isinstance(stop_reason, str):
            tags["mmar_automl.stop_reason"] = stop_reason[:500]
        self.writer.submit({"op": "log", "uid": self.parent_uid, "tags": tags})
        self.writer.submit({"op": "close_run", "uid": self.parent_uid,
                            "status": "KILLED" if interrupted else "FINISHED", "end_time": int(time.time() * 1000)})
        self._close()

    def shutdown(self, ctx: Context) -> None:
        self._close()

    # -- helpers -----------------------------------------------------------------------------------
    def _close(self) -> None:
        if self.sampler is not None:
            self.sampler.close()
        if self.writer is None:
            return
        writer, self.writer = self.writer, None
        left = writer.close(self.flush_timeout)
        if left:
            state = self._state
            _say(self._console, f"MLflow: {left} writes could not be sent ({writer.last_error}); they are kept in "
                 f"{writer.spool.path}: run `mmar-automl sync {state.get('mmar_root')} {state.get('run_id')}`")

    def _parent_best(self, job: Any, end_ms: int) -> None:
        """Log the job's score and the best so far on the parent. The best is chosen as the engine, the
        report and ``export-best`` choose it (the highest score of a COMPLETE job, a tie going to the
        lower job number), whatever order the jobs end in, so that the model logged is the one exported."""
        with self._lock:
            best = self._consider_best(job)
            metrics = [["job_score", float(job.score), job.number, end_ms],
                       ["best_score", best["score"], job.number, end_ms]]
            self.writer.submit({"op": "log", "uid": self.parent_uid, "metrics": metrics,
                                "tags": {"mmar_automl.best_job": best["job"],
                                         "mmar_automl.best_job_uid": best["job_uid"]}})

    def _consider_best(self, job: Any) -> dict[str, Any]:
        """The best job after ``job`` (a scored COMPLETE job), saved in the state file; caller holds _lock."""
        best = self._state.get("best")
        if best is None or (job.score, -job.number) > (best["score"], -best.get("number", job.number)):
            best = {"score": float(job.score), "job_uid": job.job_uid, "job": job.name, "folder": job.folder,
                    "number": job.number}
            self._state["best"] = best
            self._save_state()
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
        if best is not None and best != before:
            self.writer.submit({"op": "log", "uid": self.parent_uid,
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


def _sink_factory(uri: str, experiment: str):
    def make():
        from mmar_automl.tracking.sync import MlflowSink

        return MlflowSink(uri, experiment)

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
    """``{CUDA index: NVML index}`` from the engine's GPU list (matched by PCI bus id when it was built);
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


def _param_value(space: Any, name: str, value: Any) -> str:
    """A float as written; an enum choice as JSON, unwrapped when the dimension has a single arg
    (``[0.5]`` reads better as ``0.5``)."""
    dim = _dimension(space, name)
    if getattr(dim, "type", None) == "enum" and isinstance(value, (list, tuple)) and len(value) == 1:
        value = value[0]
    return value if isinstance(value, str) else json.dumps(value, default=str)


def _say(console: Any, message: str) -> None:
    log.info(message)
    if console is not None:
        console.print(message, soft_wrap=True)
