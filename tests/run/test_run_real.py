"""`mmar-automl run` with the real trainer (MONAI, forked from the preloaded launcher) on a tiny 3D
segmentation MMAR: a grid of 4 on 2 CPU workers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import journal
from mmar_automl.cli import main

pytestmark = pytest.mark.slow


def _tiny_real_mmar(root: Path) -> Path:
    """The segmentation_3d template with 6 synthetic 32^3 volumes, made tiny: UNet channels [4,8] vs
    [8,16] x DiceLoss vs DiceCELoss (a grid of 4), 2 epochs, validation every epoch."""
    subprocess.run([sys.executable, "-m", "mmar_automl", "init", str(root), "--template", "segmentation_3d",
                    "--synthetic-data", "6"], check=True, capture_output=True, timeout=300)
    path = root / "config" / "config_train.json"
    config = json.loads(path.read_text())
    config.update(epochs=2, num_interval_per_valid=1)
    config["search"] = [s for s in config["search"] if s["type"] == "enum"]  # the loss switch
    model = config["train"]["model"]
    model["args"].update(channels=[4, 8], strides=[2], num_res_units=0)
    model["search"] = [{"domain": "net", "type": "enum", "args": ["channels"], "targets": [[[4, 8]], [[8, 16]]]}]
    for transform in config["train"]["pre_transforms"]:
        transform.pop("search", None)
    path.write_text(json.dumps(config, indent=1))
    (root / "config" / "config_automl.json").write_text(json.dumps({
        "controller": {"name": "GridController"},
        "handlers": [{"name": "MMARHandler", "args": {"num_mmars_to_keep": 4}}, {"name": "StatsHandler"}]}))
    return root


def test_grid_of_4_with_the_real_trainer(tmp_path, monkeypatch, capsys):
    for var in ("MMAR_AUTOML_JOB_ENTRY", "MMAR_AUTOML_JOB_PRELOAD"):
        monkeypatch.delenv(var, raising=False)
    mmar = _tiny_real_mmar(tmp_path / "seg")
    code = main(["run", str(mmar), "--no-mlflow", "--workers", "cpu:cpu", "--run-id", "real", "--seed", "0",
                 "--job-timeout", "400"])
    run_dir = mmar / "automl" / "real"
    ended = [e["job"] for e in journal(run_dir) if e["op"] == "job_ended"]
    logs = {j["folder"]: j.get("log_tail") for j in ended}
    assert code == 0, logs
    assert sorted(j["number"] for j in ended) == [1, 2, 3, 4]
    for worker in (1, 2):  # which worker takes J3 depends on which job ends first
        seqs = sorted(j["worker_seq"] for j in ended if j["worker"] == worker)
        assert seqs == list(range(1, len(seqs) + 1))
    for job in ended:
        assert Path(job["folder"]).name == f"W{job['worker']}_{job['worker_seq']}_J{job['number']}"
        assert Path(job["folder"]).parent == run_dir
    points = set()
    for job in ended:
        folder = Path(job["folder"])
        assert job["state"] == "COMPLETE"
        stats = json.loads((folder / "models" / "train_stats.json").read_text())
        assert 0.0 <= job["score"] <= 1.0 and job["score"] == pytest.approx(stats["best_validation_metric"])
        assert [v for _, v in job["intermediate"]] == pytest.approx(
            [v["metrics"][stats["key_metric"]] for v in stats["validations"]])
        assert (folder / "models" / "model.pt").exists()
        concrete = json.loads((folder / "config" / "config_train.json").read_text())
        assert "search" not in json.dumps(concrete) and "apply" not in json.dumps(concrete)
        points.add(json.dumps(job["recommendation"]["point"], sort_keys=True))
        env = json.loads((folder / "config" / "environment.json").read_text())
        assert os.path.isabs(env["DATA_ROOT"]) and os.path.isabs(env["DATASET_JSON"])
    assert len(points) == 4
    pids = [e for e in journal(run_dir) if e["op"] == "job_pid"]
    assert all(p["via"] == "launcher" for p in pids)  # forked from the preloaded zygote, not cold
    best = json.loads((run_dir / "best" / "best.json").read_text())
    assert best["score"] == pytest.approx(max(j["score"] for j in ended))
