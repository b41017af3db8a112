"""The best job's model in MLflow is an MLflow PyTorch model (issue 16): it loads with
``mlflow.pytorch.load_model`` and registers in the model registry, after a real tiny search (the
segmentation_3d template, real MONAI training on CPU)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from mmar_automl.cli import main

pytestmark = pytest.mark.slow


def test_best_model_loads_and_registers(tmp_path, monkeypatch):
    import mlflow
    import mlflow.pytorch
    import torch
    from mlflow.tracking import MlflowClient

    root = tmp_path / "seg"
    assert main(["init", str(root), "--template", "segmentation_3d", "--synthetic-data", "6"]) == 0
    config = json.loads((root / "config" / "config_train.json").read_text())
    config["train"]["model"]["args"].update(channels=[4, 8], strides=[2], num_res_units=0)
    config["train"]["model"].pop("search", None)
    (root / "config" / "config_train.json").write_text(json.dumps(config, indent=1))
    out = subprocess.run([sys.executable, "-m", "mmar_automl", "run", str(root), "--workers", "cpu:cpu",
                          "--max-jobs", "2", "--seed", "1", "--set", "epochs=2", "--run-id", "m"],
                         capture_output=True, text=True, timeout=800)
    assert out.returncode == 0, out.stderr[-3000:]
    uri = f"sqlite:///{root / 'automl' / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name("seg")
    parent = client.search_runs([exp.experiment_id], "tags.`mmar_automl.role` = 'parent'")[0]
    best_uid = parent.data.tags["mmar_automl.best_job_uid"]
    best = client.search_runs([exp.experiment_id], f"tags.`mmar_automl.job_uid` = '{best_uid}'")[0]
    assert best.data.tags["mmar_automl.model"] == "mlflow.pytorch"
    assert best.data.params["epochs"] == "2"  # the --set value, not the config's 10
    # mlflow.set_tracking_uri also sets MLFLOW_TRACKING_URI in os.environ: restored after the test, else
    # every later in-process `run` of the suite would track into this store
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)
    model = mlflow.pytorch.load_model(f"runs:/{best.info.run_id}/model")
    with torch.no_grad():
        assert model(torch.zeros(1, 1, 32, 32, 32)).shape == (1, 2, 32, 32, 32)
    version = mlflow.register_model(f"runs:/{best.info.run_id}/model", "seg-best")
    assert int(version.version) == 1 and client.get_registered_model("seg-best").name == "seg-best"
