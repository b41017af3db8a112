"""A real search over an init'ed template (the outer loop, real training processes, CPU): the template's
config_automl.json drives it and every job leaves a real score."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from mmar_automl.scaffold.init import init_mmar

pytestmark = pytest.mark.slow


def test_classification_template_search_of_two_jobs(tmp_path):
    root = init_mmar(tmp_path / "cls", "classification_2d", synthetic_data=8).root
    cmd = [
        sys.executable, "-m", "mmar_automl", "run", str(root), "--run-id", "t1", "--seed", "0",
        "--max-jobs", "2", "--workers", "cpu", "--no-mlflow", "--set", "epochs=2", "--set", "num_interval_per_valid=1",
    ]
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    run_dir = root / "automl" / "t1"
    jobs = sorted(p for p in run_dir.iterdir() if p.is_dir() and p.name.startswith("W"))
    assert [p.name for p in jobs] == ["W1_1_J1", "W1_2_J2"]
    for job in jobs:
        stats = json.loads((job / "models" / "train_stats.json").read_text())
        assert stats["key_metric"] == "val_auc"
        assert 0.0 <= stats["best_validation_metric"] <= 1.0
        concrete = json.loads((job / "config" / "config_train.json").read_text())
        assert '"search"' not in json.dumps(concrete)
        assert isinstance(concrete["train"]["optimizer"]["args"]["lr"], float)
