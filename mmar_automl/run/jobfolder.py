"""Job folders ``automl/<run_id>/W<w>_<n>_J<j>``: a clone of the MMAR's key content plus the concrete config.

A job runs with its folder as cwd, so every relative path that points outside it (environment.json
``DATA_ROOT``/``DATASET_JSON``, data files named in the config, BYOC code) is resolved against the
parent MMAR and written as an absolute path (Ray Tune's chdir broke exactly this: ray#9571).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

from mmar_automl.config.mmar import DEFAULT_CKPT_DIR, ENVIRONMENT_FILE, RUNS_DIR, TRAIN_CONFIG, ckpt_dir_name
from mmar_automl.errors import UsageError

# Folders that make up an MMAR's key content; anything else at the root holding Python code is BYOC.
KEY_DIRS = ("config", "commands", "resources", "custom", "BYOC", "docs")
SKIP_DIRS = {RUNS_DIR, DEFAULT_CKPT_DIR, "eval", "data", "dataset", "datasets", "mlruns", "mlartifacts", "__pycache__",
             ".git", "venv", ".venv", "env", "site-packages", "node_modules"}
ENV_PATH_KEYS = ("DATA_ROOT", "DATASET_JSON")

_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")  # fullmatch: "$" would let a trailing newline in


def validate_run_id(run_id: str) -> str:
    """A run id names a folder under automl/: no separators, no ``..``, no leading dot."""
    if not _RUN_ID.fullmatch(run_id or "") or ".." in run_id:
        raise UsageError(
            f"invalid run id {run_id!r}: use letters, digits, '.', '_' and '-' (no path separators or '..')")
    return run_id


def write_json_atomic(path: Path, data: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _ignore(root: Path):
    def ignore(folder: str, names: list[str]) -> set[str]:
        return {n for n in names if n in SKIP_DIRS or n.endswith(".pyc")}
    return ignore


def _has_code(folder: Path) -> bool:
    """A BYOC folder: .py files in it or one level below (a deep search could walk a data tree)."""
    return any(folder.glob("*.py")) or any(folder.glob("*/*.py"))


def clone_key_content(mmar_root: Path, dest: Path) -> None:
    """Copy config/, commands/, resources/, custom code and top-level .py files of the MMAR into ``dest``."""
    dest.mkdir(parents=True, exist_ok=False)
    for entry in sorted(mmar_root.iterdir()):
        if entry.name in SKIP_DIRS or entry.name.startswith("."):
            continue
        if dest.resolve().is_relative_to(entry.resolve()):
            continue  # the runs folder itself (MMARHandler work_dir inside the MMAR): never copied into a job
        if entry.is_dir():
            if entry.name in KEY_DIRS or _has_code(entry):
                shutil.copytree(entry, dest / entry.name, symlinks=True, ignore=_ignore(mmar_root))
        elif entry.suffix == ".py":
            shutil.copy2(entry, dest / entry.name)
    (dest / "config").mkdir(exist_ok=True)


# Where a job writes: always inside its own folder, or all jobs would write into one place.
JOB_OUTPUT_KEYS = {"MMAR_CKPT_DIR": DEFAULT_CKPT_DIR, "MMAR_EVAL_OUTPUT_PATH": "eval"}


def absolutize_environment(env: dict[str, Any], mmar_root: Path) -> dict[str, Any]:
    """DATA_ROOT / DATASET_JSON relative to the parent MMAR -> absolute (``{VAR}`` strings left alone);
    a checkpoint/eval output folder outside the job folder (absolute, or climbing out with ``..``)
    becomes the job folder's own ``models``/``eval``."""
    out = dict(env)
    for key, default in JOB_OUTPUT_KEYS.items():
        value = out.get(key)
        if isinstance(value, str) and (os.path.isabs(value) or ".." in Path(value).parts):
            out[key] = default
    for key in ENV_PATH_KEYS:
        value = out.get(key)
        if isinstance(value, str) and value and "{" not in value and not os.path.isabs(value):
            out[key] = str((mmar_root / value).resolve())
    return out


def job_ckpt_subdir(environment: dict[str, Any], mmar_root: Path) -> str:
    """``MMAR_CKPT_DIR`` of the job folders written from the run's environment (relative to each job
    folder): what ``JobOutputs.of(job folder).ckpt_subdir`` will read, known before any folder exists
    (a Ray node follows a job's metrics.jsonl there)."""
    return ckpt_dir_name(absolutize_environment(environment, mmar_root))


def absolutize_config_paths(config: Any, mmar_root: Path, job_dir: Path) -> Any:
    """Strings that are relative paths existing in the parent MMAR but not in the job folder -> absolute."""
    if isinstance(config, dict):
        return {k: absolutize_config_paths(v, mmar_root, job_dir) for k, v in config.items()}
    if isinstance(config, list):
        return [absolutize_config_paths(v, mmar_root, job_dir) for v in config]
    if (isinstance(config, str) and config and config[0] not in "{#@$" and "{" not in config
            and not os.path.isabs(config) and ("/" in config or "." in config) and len(config) < 4096):
        try:
            if (mmar_root / config).exists() and not (job_dir / config).exists():
                return str((mmar_root / config).resolve())
        except OSError:
            pass
    return config


def write_job_folder(
    mmar_root: Path,
    job_dir: Path,
    concrete_config: dict[str, Any],
    environment: dict[str, Any] | None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Create the job folder (an MMAR of its own: ``Mmar.at(job_dir)`` reads it); returns the path of
    its concrete config_train.json. ``concrete_config`` and ``environment`` hold the point and the run's
    ``--set`` values already, so the folder reproduces the job by itself."""
    from mmar_automl.run.outputs import JobOutputs

    mmar_root = mmar_root.resolve()
    clone_key_content(mmar_root, job_dir)
    config = absolutize_config_paths(concrete_config, mmar_root, job_dir)
    config_path = job_dir / TRAIN_CONFIG
    write_json_atomic(config_path, config)
    if environment is not None:
        write_json_atomic(job_dir / ENVIRONMENT_FILE, absolutize_environment(environment, mmar_root))
    if extra:
        write_json_atomic(job_dir / "automl_job.json", extra)
    JobOutputs.of(job_dir).ckpt_dir.mkdir(parents=True, exist_ok=True)
    return config_path
