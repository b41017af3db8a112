"""Controllers through the real CLI (`python -m mmar_automl run`) with the light, torch-free job of
tests/run/lightjobs.py: an Optuna pruner stopping bad jobs in the engine, and a kill -9 + --resume run
recommending exactly what an uninterrupted run with the same seed recommends."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LIGHT_JOBS = REPO / "tests" / "run"  # lightjobs.py: score = config "score" * epoch / epochs


def _mmar(root: Path, controller: dict, epochs: int, sleep: float) -> Path:
    """An MMAR whose top-level search drives the light job: its final score is a searched float."""
    config = {"epochs": epochs, "sleep": sleep, "score": 0.5, "mode": "ok",
              "search": [{"domain": "x", "type": "float", "args": ["score"], "targets": [0.0, 1.0]}]}
    files = {"config/config_train.json": config, "config/config_automl.json": {"controller": controller},
             "config/environment.json": {"DATA_ROOT": "data", "DATASET_JSON": "data/dataset.json",
                                         "MMAR_CKPT_DIR": "models"},
             "data/dataset.json": {}}
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(json.dumps(data))
    (root / "models").mkdir(exist_ok=True)
    return root


def _env() -> dict[str, str]:
    return {**os.environ, "MMAR_AUTOML_JOB_ENTRY": "lightjobs:main", "MMAR_AUTOML_JOB_PRELOAD": "",
            "PYTHONPATH": os.pathsep.join([str(LIGHT_JOBS), str(REPO)])}


def _cli(mmar: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "mmar_automl", "run", str(mmar), "--no-mlflow", *args]


def _events(mmar: Path, run_id: str) -> list[dict]:
    path = mmar / "automl" / run_id / "journal.jsonl"
    if not path.exists():
        return []
    events = []
    for line in path.read_text().splitlines():
        try:
            events.append(json.loads(line))
        except ValueError:  # the last line while the orchestrator is writing it
            break
    return events


def _recommended(mmar: Path, run_id: str) -> list[tuple[int, dict]]:
    return [(r["rec_id"], r["point"]) for e in _events(mmar, run_id) if e["op"] == "recommended" for r in e["recs"]]


@pytest.mark.slow
def test_median_pruner_stops_bad_jobs_in_the_engine(tmp_path):
    controller = {"name": "RandomController",
                  "args": {"pruner": "median", "pruner_args": {"n_startup_trials": 2, "n_warmup_steps": 1}}}
    mmar = _mmar(tmp_path / "m", controller, epochs=4, sleep=0.05)
    proc = subprocess.run(_cli(mmar, "--seed", "2", "--workers", "1", "--max-jobs", "8", "--run-id", "p"),
                          env=_env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    ended = [e["job"] for e in _events(mmar, "p") if e["op"] == "job_ended"]
    assert len(ended) == 8  # a pruned job's slot went to the next recommendation
    pruned = [j for j in ended if j["state"] == "PRUNED"]
    complete = [j for j in ended if j["state"] == "COMPLETE"]
    assert pruned and complete
    for job in pruned:
        step, value = job["intermediate"][-1]
        assert step < 4 and f"pruned at epoch {step}" in job["reason"]  # stopped before its last epoch
        earlier = [dict(map(tuple, j["intermediate"]))[step] for j in complete if j["number"] < job["number"]]
        assert len(earlier) >= 2 and value < sorted(earlier)[len(earlier) // 2]  # below the median so far


@pytest.mark.slow
def test_kill_9_and_resume_recommends_what_an_uninterrupted_run_does(tmp_path):
    controller = {"name": "OptunaController", "args": {"sampler_args": {"n_startup_trials": 3}}}
    mmar = _mmar(tmp_path / "m", controller, epochs=2, sleep=0.1)
    common = ("--seed", "5", "--workers", "1", "--max-jobs", "8")
    full = subprocess.run(_cli(mmar, *common, "--run-id", "full"), env=_env(), capture_output=True, text=True,
                          timeout=120)
    assert full.returncode == 0, full.stderr
    cut = subprocess.Popen(_cli(mmar, *common, "--run-id", "cut"), env=_env(), stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while sum(e["op"] == "job_ended" for e in _events(mmar, "cut")) < 4 and time.time() < deadline:
        time.sleep(0.05)
    cut.send_signal(signal.SIGKILL)  # the orchestrator only: its job keeps running until --resume kills it
    cut.wait()
    ended = sum(e["op"] == "job_ended" for e in _events(mmar, "cut"))
    assert 4 <= ended < 8, "the run was not cut mid-way"
    resumed = subprocess.run(_cli(mmar, "--resume", "cut"), env=_env(), capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    assert _recommended(mmar, "cut") == _recommended(mmar, "full")
    assert len(_recommended(mmar, "full")) >= 8
