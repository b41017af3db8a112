"""``MMAR_CKPT_DIR`` other than ``models``, through the CLI: a real ``run`` (light jobs in real processes,
the real MLflow SQLite store), then ``report`` and ``export-best``. Every reader of job outputs must
follow the job folder's ``MMAR_CKPT_DIR`` (run/outputs.py): best/, num_mmars_to_keep, the report's
learning curves, export-best and the MLflow artifacts."""

from __future__ import annotations

import json

import pytest

from conftest import light_config, write_mmar
from mmar_automl.cli import main

pytestmark = pytest.mark.slow


def test_every_reader_follows_mmar_ckpt_dir(tmp_path, light_env, capsys, monkeypatch):
    from mlflow.tracking import MlflowClient

    monkeypatch.chdir(tmp_path)
    mmar = write_mmar(tmp_path / "ckptmmar", light_config(scores=(0.1, 0.4, 0.2, 0.3), sleep=0.05),
                      automl={"controller": {"name": "GridController"},
                              "handlers": [{"name": "MMARHandler", "args": {"num_mmars_to_keep": 1}}]},
                      env={"MMAR_CKPT_DIR": "ckpt"})
    assert main(["run", str(mmar), "--workers", "cpu:cpu", "--seed", "1", "--run-id", "c", "--set", "epochs=3"]) == 0
    run_dir = mmar / "automl" / "c"
    jobs = sorted(p for p in run_dir.iterdir() if p.name.startswith("W"))
    assert len(jobs) == 4
    scores = {p.name: json.loads((p / "config" / "config_train.json").read_text())["score"] for p in jobs}
    best = max(scores, key=scores.get)
    for job in jobs:
        assert not (job / "models").exists(), job.name  # nothing writes or reads models/
        assert (job / "ckpt" / "train_stats.json").is_file() and (job / "ckpt" / "metrics.jsonl").is_file()
        # num_mmars_to_keep: 1 deletes the checkpoint of every job but the best
        assert (job / "ckpt" / "model.pt").exists() == (job.name == best), job.name
    # best/ is laid out like the job: its model in best/ckpt
    assert json.loads((run_dir / "best" / "best.json").read_text())["job"] == best
    assert (run_dir / "best" / "ckpt" / "model.pt").read_bytes() == b"not a real model: 0.4"
    assert (run_dir / "best" / "ckpt" / "train_stats.json").is_file() and not (run_dir / "best" / "models").exists()

    # report: the learning curves come from each job's ckpt/metrics.jsonl (not the journal's copy)
    with open(run_dir / best / "ckpt" / "metrics.jsonl", "a") as f:
        f.write(json.dumps({"kind": "validation", "epoch": 3, "key_metric": "val_mean_dice",
                            "metrics": {"val_mean_dice": 0.45}}) + "\n")
    from mmar_automl.report.data import learning_curves, load_report

    key, curves = learning_curves(load_report(mmar, "c"))
    assert key == "val_mean_dice" and curves[best][-1] == (3, 0.45)
    capsys.readouterr()
    assert main(["report", str(mmar), "--run", "c", "--html", str(tmp_path / "r.html"), "--importance", "none"]) == 0
    assert f"best job {best}: score 0.4" in capsys.readouterr().out

    # export-best: the model where the exported environment.json says checkpoints go
    dest = tmp_path / "export"
    assert main(["export-best", str(mmar), "--run", "c", str(dest)]) == 0
    env = json.loads((dest / "config" / "environment.json").read_text())
    assert env["MMAR_CKPT_DIR"] == "ckpt" and env["MMAR_CKPT"] == "ckpt/model.pt"
    assert (dest / "ckpt" / "model.pt").read_bytes() == b"not a real model: 0.4"
    assert json.loads((dest / "docs" / "automl_job" / "train_stats.json").read_text())["status"] == "complete"

    # MLflow (the default store, automl/mlflow.db): each job's train_stats.json, the best job's model
    client = MlflowClient(tracking_uri=f"sqlite:///{mmar / 'automl' / 'mlflow.db'}")
    exp = client.get_experiment_by_name("ckptmmar")
    children = [r for r in client.search_runs([exp.experiment_id]) if "mmar_automl.job_uid" in r.data.tags]
    assert len(children) == 4
    for child in children:
        paths = [a.path for a in client.list_artifacts(child.info.run_id)]
        assert "train_stats.json" in paths, paths
        is_best = child.data.tags.get("mmar_automl.folder", "").endswith(best)
        assert ("model" in paths) == is_best, (child.data.tags.get("mmar_automl.folder"), paths)
        if is_best:
            assert [a.path for a in client.list_artifacts(child.info.run_id, "model")] == ["model/model.pt"]
            # the config artifact is the job folder's own config, --set values written in
            local = client.download_artifacts(child.info.run_id, "config/config_train.json", str(tmp_path))
            assert json.loads(open(local).read()) == json.loads((run_dir / best / "config" / "config_train.json").read_text())
            assert json.loads(open(local).read())["epochs"] == 3
