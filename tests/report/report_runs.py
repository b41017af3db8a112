"""Real runs for the report tests: `mmar-automl run` with tests/run/lightjobs.py (a torch-free job
function that follows the trainer's output contract: metrics.jsonl, train_stats.json, model.pt)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent
REPO = HERE.parent.parent
RUN_TESTS = REPO / "tests" / "run"


def light_env(mp: pytest.MonkeyPatch) -> None:
    mp.setenv("MMAR_AUTOML_JOB_ENTRY", "lightjobs:main")
    mp.setenv("MMAR_AUTOML_JOB_PRELOAD", "")
    mp.setenv("PYTHONPATH", os.pathsep.join([str(RUN_TESTS), str(REPO)]))
    mp.delenv("LIGHTJOB_LEDGER", raising=False)
    if str(RUN_TESTS) not in sys.path:
        mp.syspath_prepend(str(RUN_TESTS))


def report_config(scores=(0.2, 0.5, 0.9), modes=("ok", "raise")) -> dict:
    """Three kinds of dimensions: the light job's score (enum) and mode (enum: "raise" fails), a float
    learning rate, a list-valued UNet arg, and a transform switched by @disabled."""
    return {
        "epochs": 3, "sleep": 0.02, "score": scores[0], "mode": "ok", "learning_rate": 1e-3,
        "search": [
            {"domain": "net", "type": "enum", "args": ["score"], "targets": [[s] for s in scores]},
            {"domain": "net", "type": "enum", "args": ["mode"], "targets": [[m] for m in modes]},
            {"domain": "lr", "type": "float", "args": ["learning_rate"], "targets": [1e-4, 1e-2]},
        ],
        "train": {
            "model": {"name": "UNet", "args": {"channels": [4, 8], "spatial_dims": 3},
                      "search": [{"domain": "net", "type": "enum", "args": ["channels"],
                                  "targets": [[[4, 8]], [[8, 16]]]}]},
            "pre_transforms": [
                {"name": "LoadImaged", "args": {"keys": ["image"]}},
                {"name": "RandFlipd", "args": {"keys": ["image"], "prob": 0.5},
                 "search": [{"domain": "transform", "type": "enum", "args": ["@disabled"], "targets": [[True], [False]]}]},
            ],
            "dataset": {"data_list_file_path": "data/dataset.json"},
        },
    }


def write_mmar(root: Path, config: dict, automl: dict | None = None) -> Path:
    (root / "config").mkdir(parents=True, exist_ok=True)
    (root / "commands").mkdir(exist_ok=True)
    (root / "commands" / "train.sh").write_text("#!/bin/sh\nmmar-automl train \"$MMAR_ROOT\" \"$@\"\n")
    (root / "config" / "config_train.json").write_text(json.dumps(config, indent=1))
    (root / "config" / "config_automl.json").write_text(json.dumps(automl or {
        "controller": {"name": "GridController"},
        "handlers": [{"name": "MMARHandler"}, {"name": "StatsHandler"}]}, indent=1))
    (root / "config" / "environment.json").write_text(json.dumps(
        {"DATA_ROOT": "data", "DATASET_JSON": "data/dataset.json", "MMAR_CKPT_DIR": "models",
         "MMAR_CKPT": "models/model.pt"}, indent=1))
    (root / "data").mkdir(exist_ok=True)
    (root / "data" / "dataset.json").write_text("{}")
    (root / "docs").mkdir(exist_ok=True)
    (root / "docs" / "Readme.md").write_text("# test MMAR\n")
    (root / "models").mkdir(exist_ok=True)
    return root


def make_run(root: Path, run_id: str = "r1", *extra: str, config: dict | None = None) -> Path:
    """Run a real search (2 CPU workers, no MLflow) in ``root``; returns the run folder."""
    from mmar_automl.cli import main

    if not (root / "config").exists():
        write_mmar(root, config or report_config())
    with pytest.MonkeyPatch.context() as mp:
        light_env(mp)
        code = main(["run", str(root), "--no-mlflow", "--no-launcher", "--workers", "cpu:cpu", "--seed", "3",
                     "--run-id", run_id, *extra])
    assert code in (0, 1), code
    return root / "automl" / run_id


# -- headless Chromium (HTML report tests) ------------------------------------------------------

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-extensions", "--virtual-time-budget=5000"]


@pytest.fixture(scope="session")
def chromium() -> str:
    """The browser; installed here when missing and we may (root with apt-get), else a clear skip."""
    path = shutil.which("chromium")
    if path is None and hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True, timeout=600)
        subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], env=env, capture_output=True, timeout=900)
        path = shutil.which("chromium")
    if path is None:
        pytest.skip("chromium is not installed and cannot be installed here (not root or no apt-get): "
                    "run `make install` as root, or `apt-get install chromium`")
    return path


def browse(chromium: str, page: Path, tmp: Path, *extra: str) -> subprocess.CompletedProcess:
    profile = tmp / f"profile{len(list(tmp.glob('profile*')))}"
    return subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *extra, page.as_uri()],
                          capture_output=True, text=True, timeout=180, cwd=tmp)


def rendered_counts(chromium: str, page: Path, tmp: Path) -> dict[str, int]:
    """Open the page, let its load script run, return {plot: marks drawn with a non-empty box}."""
    proc = browse(chromium, page, tmp, "--dump-dom")
    assert proc.returncode == 0, proc.stderr[-2000:]
    match = re.search(r'<body[^>]*data-rendered="([^"]*)"', proc.stdout)
    assert match, "the page's load script did not run: " + proc.stdout[:500]
    counts = {}
    for item in match.group(1).split():
        name, count, size = item.split(":")
        width, height = (int(v) for v in size.split("x"))
        assert width > 200 and height > 50, item
        counts[name] = int(count)
    return counts
