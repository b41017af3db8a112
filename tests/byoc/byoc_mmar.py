"""Test helper: a light MMAR (the torch-free job of tests/run/lightjobs.py) whose BYOC/ folder holds
files of tests/byoc/byoc_files/, with their hard-coded tracking URI pointed at a store in tmp_path, and
``mmar-automl`` run as a real process, as Clara users ran theirs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
REPO = HERE.parent.parent
FILES = HERE / "byoc_files"
LIGHT_JOBS = REPO / "tests" / "run"


def light_train_config(scores=(0.1, 0.2, 0.3, 0.4)) -> dict[str, Any]:
    """A search over the light job's ``score`` (an enum) and a float ``learning_rate`` it ignores."""
    return {
        "epochs": 2, "sleep": 0.05, "score": scores[0], "mode": "ok", "learning_rate": 1e-3,
        "search": [
            {"domain": "net", "type": "enum", "args": ["score"], "targets": [[s] for s in scores]},
            {"domain": "lr", "type": "float", "args": ["learning_rate"], "targets": [1e-4, 1e-2]},
        ],
        "train": {"model": {"name": "UNet", "args": {"channels": [4, 8]}}},
    }


def byoc_mmar(root: Path, automl: dict[str, Any], byoc: dict[str, str], train: dict[str, Any] | None = None,
              train_name: str = "config_train.json") -> Path:
    """``byoc`` maps a file of byoc_files/ to the tracking URI its TRACKING_URI line gets (None: unchanged)."""
    (root / "config").mkdir(parents=True)
    (root / "BYOC").mkdir()
    (root / "config" / train_name).write_text(json.dumps(train or light_train_config(), indent=1))
    (root / "config" / "config_automl.json").write_text(json.dumps(automl, indent=1))
    (root / "config" / "environment.json").write_text(json.dumps({"MMAR_CKPT_DIR": "models"}))
    for name, uri in byoc.items():
        text = (FILES / name).read_text()
        if uri is not None:
            lines = [f'TRACKING_URI = "{uri}"' if ln.startswith("TRACKING_URI = ") else ln for ln in text.splitlines()]
            text = "\n".join(lines) + "\n"
        (root / "BYOC" / name).write_text(text)
    return root


def job_env() -> dict[str, str]:
    """The orchestrator's environment: light jobs, no MMAR_ROOT nor MLFLOW_ALLOW_FILE_STORE (the orchestrator
    exports them)."""
    env = {k: v for k, v in os.environ.items() if k not in ("MMAR_ROOT", "MLFLOW_TRACKING_URI", "MLFLOW_ALLOW_FILE_STORE")}
    env.update({"MMAR_AUTOML_JOB_ENTRY": "lightjobs:main", "MMAR_AUTOML_JOB_PRELOAD": "",
                "PYTHONPATH": os.pathsep.join([str(LIGHT_JOBS), str(REPO)]), "OMP_NUM_THREADS": "1"})
    return env


def cli(*args: str, cwd: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mmar_automl", *args], env=job_env(), cwd=cwd,
                          capture_output=True, text=True, timeout=timeout)


def journal(run_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run_dir / "journal.jsonl").read_text().splitlines() if line.strip()]


def events(mmar: Path) -> list[list[Any]]:
    path = mmar / "events.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
