"""Fixtures of the outer-loop tests: MMARs for the light job function and a tiny real one for the trainer."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).parent
REPO = HERE.parent.parent
LIGHT_ENTRY = "lightjobs:main"


def light_config(scores=(0.1, 0.2, 0.3, 0.4), modes=None, sleep: float = 0.1, epochs: int = 2, **extra: Any) -> dict:
    """A config_train.json whose top-level search drives the light job: a grid of scores (x modes)."""
    search = [{"domain": "net", "type": "enum", "args": ["score"], "targets": [[s] for s in scores]}]
    if modes:
        search.append({"domain": "net", "type": "enum", "args": ["mode"], "targets": [[m] for m in modes]})
    return {"epochs": epochs, "sleep": sleep, "score": scores[0], "mode": "ok", **extra, "search": search,
            "train": {"model": {"name": "UNet", "args": {"channels": [4, 8]}}}}


def write_mmar(root: Path, config: dict, automl: dict | None = None, env: dict | None = None) -> Path:
    (root / "config").mkdir(parents=True, exist_ok=True)
    (root / "commands").mkdir(exist_ok=True)
    (root / "commands" / "train.sh").write_text("#!/bin/sh\nmmar-automl train \"$MMAR_ROOT\" \"$@\"\n")
    (root / "config" / "config_train.json").write_text(json.dumps(config, indent=1))
    if automl is not None:
        (root / "config" / "config_automl.json").write_text(json.dumps(automl, indent=1))
    environment = {"DATA_ROOT": "data", "DATASET_JSON": "data/dataset.json", "MMAR_CKPT_DIR": "models"}
    environment.update(env or {})
    (root / "config" / "environment.json").write_text(json.dumps(environment, indent=1))
    (root / "data").mkdir(exist_ok=True)
    (root / "data" / "dataset.json").write_text("{}")
    (root / "models").mkdir(exist_ok=True)
    (root / "models" / "parent_model.pt").write_bytes(b"parent")
    return root


@pytest.fixture
def light_env(monkeypatch, tmp_path):
    """Jobs run tests/run/lightjobs.py:main (a real process, no torch); returns the ledger path."""
    ledger = tmp_path / "ledger.jsonl"
    monkeypatch.setenv("MMAR_AUTOML_JOB_ENTRY", LIGHT_ENTRY)
    monkeypatch.setenv("MMAR_AUTOML_JOB_PRELOAD", "")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(HERE), str(REPO)]))
    monkeypatch.setenv("LIGHTJOB_LEDGER", str(ledger))
    if str(HERE) not in sys.path:
        sys.path.insert(0, str(HERE))
    return ledger


def ledger_lines(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def journal(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "journal.jsonl").read_text().splitlines() if line.strip()]
