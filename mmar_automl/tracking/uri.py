"""Which MLflow store a run tracks to, and preparing it once before any job starts.

Order: ``--tracking-uri``, then ``MLFLOW_TRACKING_URI``, then the embedded default
``sqlite:///<MMAR>/automl/mlflow.db``. A bare file store (a path or ``file:`` URI) is refused: MLflow
3.x no longer writes one without ``MLFLOW_ALLOW_FILE_STORE`` and it is slow and unsafe under load.
Creating a new SQLite store takes ~4 s and several processes creating it at once break it for good
(DESIGN.md section 9), so :func:`prepare_store` does it once, under a file lock.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shlex
from pathlib import Path

from mmar_automl.config.mmar import RUNS_DIR
from mmar_automl.errors import ConfigError

DEFAULT_DB = f"{RUNS_DIR}/mlflow.db"


def default_uri(mmar_root: str | Path) -> str:
    return f"sqlite:///{Path(mmar_root).resolve() / DEFAULT_DB}"


def resolve_tracking_uri(mmar_root: str | Path, cli_uri: str | None = None) -> str:
    """The URI to track to (see the module docstring); raises ConfigError for a bare file store."""
    uri = cli_uri or os.environ.get("MLFLOW_TRACKING_URI") or default_uri(mmar_root)
    where = "--tracking-uri" if cli_uri else "MLFLOW_TRACKING_URI"
    scheme = uri.split(":", 1)[0].lower() if ":" in uri else ""
    if scheme in ("", "file") or len(scheme) == 1:  # "C:\..." is a path too
        raise ConfigError(None, where, f"{uri!r} is a bare file store; use sqlite:///path/mlflow.db or "
                                       "http://host:port")
    return uri


def sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI, else None."""
    if not uri.lower().startswith("sqlite:///"):
        return None
    return Path(uri[len("sqlite:///"):])


def prepare_store(uri: str) -> None:
    """Create a SQLite store (folder, tables) once, under a lock, so that no two writers race to
    create it. Other stores (servers) are left to the writer thread: a server that is down must not
    hold up the search."""
    db = sqlite_path(uri)
    if db is None or (db.is_file() and db.stat().st_size > 0 and not db.with_name(db.name + ".creating").exists()):
        return  # a server, or a store created before: nothing to wait for
    db.parent.mkdir(parents=True, exist_ok=True)
    with open(db.with_name(db.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        from mlflow.tracking import MlflowClient  # lazy: ~3 s

        marker = db.with_name(db.name + ".creating")  # present while (or if a crash stopped) creating
        marker.touch()

        # Opening the store creates and migrates its tables; MLflow's INFO lines about it ("Creating
        # initial MLflow database tables...") are noise on the search's console.
        quiet = logging.getLogger("mlflow.store.db.utils")
        level = quiet.level
        quiet.setLevel(logging.WARNING)
        try:
            MlflowClient(tracking_uri=uri).search_experiments(max_results=1)
        finally:
            quiet.setLevel(level)
        marker.unlink()


UI_ADDRESS = "http://127.0.0.1:5000"  # where `mlflow ui` serves by default
# MLflow 3.x's UI opens an experiment on its GenAI pages unless the workflow type says otherwise; the
# type comes from the URL (``workflowType=machine_learning``) or the user's last choice (the "Model
# training" switch, kept in the browser). The experiment's ``mlflow.experimentKind`` tag is read only
# when that switch is off (in 3.17.2 it is always on): both are set, the URL is what lands on the runs.
WORKFLOW_QUERY = "workflowType=machine_learning"


def experiment_url(base: str, experiment_id: str | None) -> str:
    """The page listing the experiment's runs in the "Model training" view, e.g.
    ``http://127.0.0.1:5000/#/experiments/3/runs?workflowType=machine_learning``."""
    base = base.rstrip("/")
    if experiment_id is None:
        return f"{base}/#/experiments?{WORKFLOW_QUERY}"
    return f"{base}/#/experiments/{experiment_id}/runs?{WORKFLOW_QUERY}"


def ui_hint(uri: str, experiment_id: str | None = None) -> str:
    """How to browse this store: ``mlflow ui --backend-store-uri sqlite:////x/mlflow.db, then open
    http://127.0.0.1:5000/#/experiments/3/runs?workflowType=machine_learning``."""
    if sqlite_path(uri) is not None:
        return f"mlflow ui --backend-store-uri {shlex.quote(uri)}, then open {experiment_url(UI_ADDRESS, experiment_id)}"
    if uri.lower().startswith(("http://", "https://")):
        return f"open {experiment_url(uri, experiment_id)}"
    return f"open {uri} in a browser"


def sqlite_experiment_id(uri: str, experiment: str) -> str | None:
    """The id of an experiment in an existing SQLite store, read with the standard library (no mlflow
    import at start-up); None when the store or the experiment does not exist yet."""
    import sqlite3

    db = sqlite_path(uri)
    if db is None or not db.is_file():
        return None
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=2)
        try:
            row = conn.execute("SELECT experiment_id FROM experiments WHERE name = ? AND lifecycle_stage = 'active'",
                               (experiment,)).fetchone()
        finally:
            conn.close()
    except sqlite3.Error:
        return None
    return str(row[0]) if row else None
