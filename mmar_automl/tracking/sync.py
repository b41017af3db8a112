"""Apply spooled operations to MLflow, idempotently: replaying them any number of times gives the same
runs, params, metrics and artifacts, never a second run for a job.

How: every run carries a uid tag (``mmar_automl.job_uid`` for a job, ``mmar_automl.run_uid`` plus
``mmar_automl.role=parent`` for the AutoML run), set atomically when the run is created, and is found
again by that tag before anything is created; params are never changed (a retry is a new job, a new
child); tags and artifacts overwrite; metrics carry timestamps derived from the job's own records, so a
repeated metric is the same row and the store drops it.

Operations (dicts, as stored in the spool):
  open_run  uid, name, parent (uid or None), start_time (ms), tags, params, full_values
  log       uid, metrics [[key, value, step, ts]], params, tags
  job_files uid, folder, started_at, with_model, skip_records  (metrics.jsonl less the records sent
                                                 live, + config, log, stats, model)
  artifacts uid, files [[local file, artifact folder]]
  pytorch_model uid, folder, overrides                     (the job's model.pt as an MLflow PyTorch model, artifact
                                                  folder ``model``; the raw file when it cannot be loaded)
  close_run uid, status (FINISHED|FAILED|KILLED), end_time (ms)
  reopen    uid                                   (a resumed AutoML run is RUNNING again)
  reap      run_uid, durations {job uid: s}       (children left RUNNING by a dead orchestrator -> KILLED,
                                                  or FINISHED when their folder says they completed)
A uid is ``run:<run uid>`` for the parent and ``job:<job uid>`` for a child.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from mmar_automl.run.outputs import JobOutputs
from mmar_automl.tracking import records
from mmar_automl.tracking.limits import MAX_METRICS_PER_BATCH, MAX_PARAMS_TAGS_PER_BATCH
from mmar_automl.tracking.uri import prepare_store, resolve_tracking_uri, sqlite_path

log = logging.getLogger("mmar_automl.mlflow")

TAG_JOB_UID = "mmar_automl.job_uid"
TAG_RUN_UID = "mmar_automl.run_uid"
TAG_ROLE = "mmar_automl.role"
# The experiment kind MLflow's UI reads (values of its ExperimentKind: genai_development, custom_model_development)
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"

_TRANSIENT_CODES = {"INTERNAL_ERROR", "TEMPORARILY_UNAVAILABLE", "RESOURCE_EXHAUSTED", "REQUEST_LIMIT_EXCEEDED"}


class TransientError(Exception):
    """MLflow is unreachable or overloaded: keep the operations and try again later."""


def configure_http_client() -> None:
    """Fail fast instead of MLflow's default 7 retries over ~4 minutes: our spool is the retry. And no
    "View run at" lines on stdout from our thread (stdout carries results). A user's own settings win."""
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "15")


def is_transient(err: BaseException) -> bool:
    """Whether an error means "try later" (server down, busy, database locked) rather than "this write is bad"."""
    if isinstance(err, (OSError, TimeoutError, ConnectionError)):
        return True
    name = type(err).__name__
    if name in ("ConnectionError", "Timeout", "ReadTimeout", "ConnectTimeout", "OperationalError"):
        return True
    code = getattr(err, "error_code", None)
    return code in _TRANSIENT_CODES


class MlflowSink:
    """Applies operations through one MlflowClient (never the fluent API, which is process-global)."""

    def __init__(self, tracking_uri: str, experiment: str, on_experiment=None):
        configure_http_client()
        from mlflow.tracking import MlflowClient  # lazy: ~3 s

        self.uri = tracking_uri
        self.experiment = experiment
        self.on_experiment = on_experiment  # called with the experiment id once known (the UI link)
        self.client = MlflowClient(tracking_uri=tracking_uri)
        self._experiment_id: str | None = None
        self._run_ids: dict[str, str] = {}
        self._buffers: dict[str, dict[str, Any]] = {}

    # -- entry point -------------------------------------------------------------------------------
    def apply(self, ops: list[dict[str, Any]]) -> None:
        """Apply ``ops`` in order. Raises TransientError when MLflow cannot be reached (nothing is lost:
        the caller keeps the operations and replays them all); an operation MLflow refuses for good
        is logged and skipped, so one bad value never blocks the stream."""
        self._buffers.clear()
        for op in ops:
            self._guard(lambda: self._apply_one(op), op)
        for uid in list(self._buffers):
            self._guard(lambda: self._flush(uid), {"op": "log", "uid": uid})

    def _guard(self, fn, op: dict[str, Any]) -> None:
        try:
            fn()
        except TransientError:
            raise
        except Exception as err:  # noqa: BLE001 - classify every MLflow error
            if is_transient(err):
                raise TransientError(f"{type(err).__name__}: {err}") from err
            log.warning("MLflow refused %s for %s, skipped: %s", op.get("op"), op.get("uid"), _one_line(err))

    def _apply_one(self, op: dict[str, Any]) -> None:
        kind = op["op"]
        if kind == "open_run":
            self._open_run(op)
        elif kind == "log":
            self._buffer(op["uid"], op.get("metrics", ()), op.get("params", {}), op.get("tags", {}))
        elif kind == "job_files":
            self._job_files(op)
        elif kind == "artifacts":
            self._artifacts(op["uid"], op["files"])
        elif kind == "pytorch_model":
            self._pytorch_model(op["uid"], op["folder"], op.get("overrides"))
        elif kind == "close_run":
            self._flush_or_warn(op["uid"])  # a refused value must not leave the run RUNNING
            run_id = self.run_id(op["uid"])
            if run_id:
                self.client.set_terminated(run_id, status=op["status"], end_time=op.get("end_time"))
        elif kind == "reopen":
            run_id = self.run_id(op["uid"])
            if run_id:
                self.client.update_run(run_id, status="RUNNING")
        elif kind == "reap":
            self.reap(op["run_uid"], durations=op.get("durations"))
        else:
            log.warning("unknown spool operation %r skipped", kind)

    # -- runs --------------------------------------------------------------------------------------
    def experiment_id(self) -> str:
        if self._experiment_id is None:
            exp = self.client.get_experiment_by_name(self.experiment)
            if exp is None:
                self._experiment_id = self._create_experiment()
            else:
                if exp.lifecycle_stage == "deleted":
                    self.client.restore_experiment(exp.experiment_id)
                self._experiment_id = exp.experiment_id
                if EXPERIMENT_KIND_TAG not in (exp.tags or {}):
                    self.client.set_experiment_tag(self._experiment_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND)
            if self.on_experiment is not None:
                try:
                    self.on_experiment(self._experiment_id)
                except Exception as err:  # noqa: BLE001 - a callback never blocks the stream
                    log.warning("on_experiment failed: %s", err)
        return self._experiment_id

    def _create_experiment(self) -> str:
        db = sqlite_path(self.uri)
        # A SQLite store's default artifact root is the current folder: keep artifacts beside the db.
        location = (db.parent / "mlartifacts" / self.experiment).resolve().as_uri() if db else None
        try:
            return self.client.create_experiment(self.experiment, artifact_location=location,
                                                 tags={EXPERIMENT_KIND_TAG: EXPERIMENT_KIND})
        except Exception as err:  # noqa: BLE001 - someone else created it meanwhile
            exp = self.client.get_experiment_by_name(self.experiment)
            if exp is None:
                raise err
            return exp.experiment_id

    def find_runs(self, tags: dict[str, str], status: str | None = None) -> list[Any]:
        """Active runs of the experiment having every tag of ``tags`` (and ``status`` if given)."""
        clauses = [f"tags.`{k}` = '{_quote(v)}'" for k, v in tags.items()]
        if status:
            clauses.append(f"attributes.status = '{status}'")
        runs, token = [], None
        while True:
            page = self.client.search_runs([self.experiment_id()], filter_string=" and ".join(clauses),
                                           max_results=1000, page_token=token)
            runs.extend(page)
            token = page.token
            if not token:
                return runs

    def run_id(self, uid: str) -> str | None:
        """The MLflow run of a uid, found by its tag (cached); None when it does not exist."""
        if uid not in self._run_ids:
            runs = self.find_runs(_uid_tags(uid))
            if not runs:
                return None
            runs.sort(key=lambda r: r.info.start_time or 0)  # should two exist, always use the first
            self._run_ids[uid] = runs[0].info.run_id
        return self._run_ids[uid]

    def _open_run(self, op: dict[str, Any]) -> None:
        uid = op["uid"]
        tags = dict(op.get("tags", {}))
        if self.run_id(uid) is None:
            if op.get("parent"):
                parent_id = self.run_id(op["parent"])
                if parent_id is None:  # refused for good or deleted by a user: do not block the stream
                    log.warning("MLflow: parent run %s is missing; %s is logged unnested", op["parent"], uid)
                else:
                    tags["mlflow.parentRunId"] = parent_id
            tags.update(_uid_tags(uid))
            run = self.client.create_run(self.experiment_id(), start_time=op.get("start_time"),
                                         tags=tags, run_name=op.get("name"))
            self._run_ids[uid] = run.info.run_id
        self._buffer(uid, (), op.get("params", {}), tags)
        for artifact_file, text in (op.get("full_values") or {}).items():
            self.client.log_text(self.run_id(uid), text, artifact_file)

    def reap(self, run_uid: str, include_parent: bool = False, durations: dict[str, float] | None = None) -> int:
        """Close the runs of this AutoML run still RUNNING (their orchestrator died); returns how many.

        A job that finished while its orchestrator was down (its train_stats.json says complete) is
        completed from its folder (FINISHED, with score and artifacts); any other is KILLED. Its end
        time is its start plus its journaled duration (``durations``, from a resume), else plus the time
        until it wrote train_stats.json: never the time of the reap."""
        count = 0
        for run in self.find_runs({TAG_RUN_UID: run_uid}, status="RUNNING"):
            tags, run_id = run.data.tags, run.info.run_id
            if tags.get(TAG_ROLE) == "parent":
                if include_parent:
                    self.client.set_tag(run_id, "mmar_automl.status", "KILLED")
                    self.client.set_terminated(run_id, status="KILLED")
                    count += 1
                continue
            folder = tags.get("mmar_automl.folder")
            stats = JobOutputs.of(folder).stats() if folder else None
            if stats is not None and str(stats.get("status", "")).lower() == "complete":
                uid = f"job:{tags[TAG_JOB_UID]}"
                self._run_ids[uid] = run_id
                self._job_files({"uid": uid, "folder": folder, "started_at": (run.info.start_time or 0) / 1000})
                score = stats.get("best_validation_metric")
                start_ms = int(run.info.start_time or 0)
                duration = (durations or {}).get(tags[TAG_JOB_UID])
                stats_file = JobOutputs.of(folder).stats_file
                end_ms = (start_ms + int(round(1000 * duration)) if duration is not None
                          else max(start_ms, int(stats_file.stat().st_mtime * 1000)))
                metrics = [["score", float(score), 0, end_ms]] if isinstance(score, (int, float)) else []
                self._buffer(uid, metrics, {}, {"mmar_automl.status": "COMPLETE"})
                self._flush(uid)
                self.client.set_terminated(run_id, status="FINISHED", end_time=end_ms)
            else:
                self.client.set_tag(run_id, "mmar_automl.status", "KILLED")
                self.client.set_terminated(run_id, status="KILLED")
            count += 1
        return count

    # -- values ------------------------------------------------------------------------------------
    def _buffer(self, uid: str, metrics, params: dict[str, Any], tags: dict[str, Any]) -> None:
        buf = self._buffers.setdefault(uid, {"metrics": [], "params": {}, "tags": {}})
        buf["metrics"].extend(metrics)
        buf["params"].update(params)
        buf["tags"].update(tags)

    def _flush(self, uid: str) -> None:
        """Send one run's buffered values with as few ``log_batch`` calls as MLflow's limits allow."""
        buf = self._buffers.pop(uid, None)
        if not buf or not (buf["metrics"] or buf["params"] or buf["tags"]):
            return
        run_id = self.run_id(uid)
        if run_id is None:
            log.warning("no MLflow run for %s: %d values skipped", uid, len(buf["metrics"]))
            return
        from mlflow.entities import Metric, Param, RunTag

        metrics = [Metric(k, v, int(ts), int(step)) for k, v, step, ts in buf["metrics"]]
        params = [Param(k, str(v)) for k, v in buf["params"].items()]
        tags = [RunTag(k, str(v)) for k, v in buf["tags"].items()]
        while metrics or params or tags:
            m, metrics = metrics[:MAX_METRICS_PER_BATCH], metrics[MAX_METRICS_PER_BATCH:]
            room = MAX_PARAMS_TAGS_PER_BATCH
            p, params = params[:room], params[room:]
            room -= len(p)
            t, tags = tags[:room], tags[room:]
            self.client.log_batch(run_id, metrics=m, params=p, tags=t)

    def _flush_or_warn(self, uid: str) -> None:
        try:
            self._flush(uid)
        except Exception as err:  # noqa: BLE001
            if isinstance(err, TransientError) or is_transient(err):
                raise
            log.warning("MLflow refused values of %s, skipped: %s", uid, _one_line(err))

    def _artifacts(self, uid: str, files: list[list[str]]) -> None:
        run_id = self.run_id(uid)
        if run_id is None:
            return
        for local, where in files:
            if Path(local).is_file():
                self.client.log_artifact(run_id, local, where or None)

    def _pytorch_model(self, uid: str, folder: str, overrides: dict[str, str] | None = None) -> None:
        """The job's best checkpoint as an MLflow PyTorch model under the artifact folder ``model`` (so
        that it can be registered from the UI), saved once into the job's checkpoint folder by a
        subprocess (``tracking/pytorch_model.py``: torch and monai stay out of the orchestrator). A
        checkpoint that cannot be turned into a model (a custom network that no longer imports) is
        logged as the raw file, with a warning."""
        from mmar_automl.tracking.pytorch_model import save_in_subprocess

        run_id = self.run_id(uid)
        if run_id is None:
            return
        saved, why = save_in_subprocess(folder, overrides)
        if saved is not None:
            self.client.log_artifacts(run_id, str(saved), "model")
            self.client.set_tag(run_id, "mmar_automl.model", "mlflow.pytorch")
            return
        log.warning("MLflow: the best model of %s is logged as a raw file, not an MLflow model: %s", folder, why)
        self._artifacts(uid, [[str(JobOutputs.of(folder).model_file), "model"]])
        self.client.set_tag(run_id, "mmar_automl.model", f"raw model.pt ({why})"[:500])

    def _job_files(self, op: dict[str, Any]) -> None:
        uid, folder = op["uid"], op["folder"]
        recs = JobOutputs.of(folder).metrics(skip=int(op.get("skip_records") or 0))
        self._buffer(uid, records.metrics_from_records(recs, op.get("started_at")), {}, {})
        self._flush_or_warn(uid)
        self._artifacts(uid, [list(f) for f in records.job_artifacts(folder, bool(op.get("with_model")))])


def _uid_tags(uid: str) -> dict[str, str]:
    kind, _, value = uid.partition(":")
    if kind == "run":
        return {TAG_RUN_UID: value, TAG_ROLE: "parent"}
    return {TAG_JOB_UID: value}


def _quote(value: str) -> str:
    return str(value).replace("\\", "\\\\").replace("'", "\\'")


def _one_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return (text[0] if text else type(err).__name__)[:300]


def sync_run_dir(run_dir: str | Path, tracking_uri: str | None = None, experiment: str | None = None,
                 batch: int = 500) -> dict[str, Any]:
    """Replay a run's spool into MLflow (``mmar-automl sync``), then mark KILLED whatever that run left
    RUNNING: holding the spool's lock proves that no orchestrator of this run is alive. Idempotent.

    Returns ``{"sent", "reaped", "parents", "children", "tracking_uri", "experiment"}``; raises
    ConfigError for a run that was never tracked, UsageError while its orchestrator is live, and
    MmarAutomlError (exit 1) when MLflow cannot be reached (the spool keeps everything)."""
    import json

    from mmar_automl.errors import ConfigError, MmarAutomlError, UsageError
    from mmar_automl.tracking.spool import Spool

    run_dir = Path(run_dir)
    state_file = run_dir / "mlflow.json"
    if not run_dir.is_dir():
        raise ConfigError(run_dir, None, "no such run folder")
    if not state_file.is_file():
        raise ConfigError(state_file, None, "this run was never tracked in MLflow (no tracking state)")
    try:
        state = json.loads(state_file.read_text())
        run_uid = state["run_uid"]
    except (ValueError, KeyError) as err:
        raise ConfigError(state_file, None, f"unreadable tracking state ({err})") from None
    # A URI given here is checked as `run --tracking-uri` is (no bare file store: exit 2, one line).
    uri = resolve_tracking_uri(state.get("mmar_root") or run_dir.parent.parent, tracking_uri) if tracking_uri \
        else state["tracking_uri"]
    experiment = experiment or state["experiment"]
    spool = Spool.in_run_dir(run_dir)
    if not spool.try_lock():
        raise UsageError(f"the orchestrator of {run_dir} is running and syncs it itself")
    try:
        prepare_store(uri)  # a SQLite store that does not exist yet is created once, quietly
        sink = MlflowSink(uri, experiment)
        pending = spool.pending()
        sent = 0
        try:
            for start in range(0, len(pending), batch):
                chunk = pending[start:start + batch]
                sink.apply(chunk)
                spool.ack(chunk[-1]["seq"])
                sent += len(chunk)
            reaped = sink.reap(run_uid, include_parent=True)
            parents = len(sink.find_runs({TAG_RUN_UID: run_uid, TAG_ROLE: "parent"}))
            children = len([r for r in sink.find_runs({TAG_RUN_UID: run_uid})
                            if r.data.tags.get(TAG_ROLE) != "parent"])
        except TransientError as err:
            raise MmarAutomlError(f"MLflow at {uri} is unreachable ({err}); {len(pending) - sent} writes stay "
                                  f"in {spool.path}") from None
        except Exception as err:  # noqa: BLE001
            if is_transient(err):
                raise MmarAutomlError(f"MLflow at {uri} is unreachable ({_one_line(err)})") from None
            raise
        spool.compact()
    finally:
        spool.unlock()
    return {"sent": sent, "reaped": reaped, "parents": parents, "children": children,
            "tracking_uri": uri, "experiment": experiment}
