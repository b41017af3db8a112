"""The product end to end with real training (issue 7, item 5): init the segmentation_3d template with
synthetic data -> a tiny search with the real trainer -> report (table, JSON, HTML in Chromium) ->
export-best -> `mmar-automl train` the export for one more epoch, starting from the exported weights."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mmar_automl.cli import main
from report_runs import REPO, chromium, rendered_counts  # noqa: F401 - chromium is a fixture

pytestmark = pytest.mark.slow


def _cli(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mmar_automl", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=REPO)


def _tiny(root: Path, template: str) -> None:
    """The template as shipped, made tiny, 2 epochs validated each, a grid of 2: segmentation_3d a UNet
    [4,8] with the loss switch and the learning rate (kept at the middle of its range) searched;
    classification_2d its smallest DenseNet with the augmentation switch searched."""
    path = root / "config" / "config_train.json"
    config = json.loads(path.read_text())
    config.update(epochs=2)  # validated every epoch as shipped (the export then trains 1 epoch and is scored)
    model = config["train"]["model"]
    if template == "segmentation_3d":
        model["args"].update(channels=[4, 8], strides=[2], num_res_units=0)
    model.pop("search", None)
    for transform in config["train"]["pre_transforms"]:
        transform.pop("search", None)
    path.write_text(json.dumps(config, indent=1))
    (root / "config" / "config_automl.json").write_text(json.dumps({
        "controller": {"name": "GridController"},
        "handlers": [{"name": "MMARHandler"}, {"name": "StatsHandler"}]}))


@pytest.mark.parametrize("template", ["segmentation_3d", "classification_2d"])
def test_init_run_report_export_train(template, tmp_path, monkeypatch, capsys, chromium):  # noqa: F811
    for var in ("MMAR_AUTOML_JOB_ENTRY", "MMAR_AUTOML_JOB_PRELOAD"):
        monkeypatch.delenv(var, raising=False)
    mmar = tmp_path / template
    proc = _cli("init", str(mmar), "--template", template, "--synthetic-data", "6")
    assert proc.returncode == 0, proc.stderr
    _tiny(mmar, template)
    code = main(["run", str(mmar), "--no-mlflow", "--workers", "cpu:cpu", "--run-id", "e2e", "--seed", "0",
                 "--job-timeout", "400"])
    assert code == 0
    capsys.readouterr()

    # report: table, JSON, HTML
    assert main(["report", str(mmar)]) == 0
    table = capsys.readouterr().out
    assert "run e2e" in table and "2 COMPLETE" in table and "best job W" in table
    # the names as MLflow spells them too (issue 16): a multi-arg dimension's args joined by "/"
    searched = ["skipDiceLoss/skipDiceCELoss", "learning_rate"] if template == "segmentation_3d" else ["skipAugmentation"]
    assert all(name in table for name in searched)
    assert main(["report", str(mmar), "--run", "e2e", "--json", "--html", str(tmp_path / "e2e.html")]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["counts"] == {"COMPLETE": 2}
    for job in doc["jobs"]:
        stats = json.loads((Path(job["folder"]) / "models" / "train_stats.json").read_text())
        assert job["score"] == pytest.approx(stats["best_validation_metric"]) and 0.0 <= job["score"] <= 1.0
    best = doc["best"]
    diff = {d["path"]: d for d in best["config_diff"]}
    if template == "segmentation_3d":  # the grid keeps the learning rate at the middle of its range
        assert diff["learning_rate"]["old"] == 1e-3 and diff["learning_rate"]["new"] == pytest.approx(0.00505)
    assert all(not p.startswith("search") and ".search" not in p for p in diff)
    counts = rendered_counts(chromium, tmp_path / "e2e.html", tmp_path)
    assert counts["history"] == 2 and counts["parallel"] == 2 and counts["curves"] == 2

    # export-best, then continue training the export for one more epoch
    dest = tmp_path / "best_mmar"
    assert main(["export-best", str(mmar), "--run", "e2e", str(dest)]) == 0
    config = json.loads((dest / "config" / "config_train.json").read_text())
    assert config["dont_load_ckpt_model"] is False
    exported = (dest / "models" / "model.pt").read_bytes()
    assert exported == (Path(best["folder"]) / "models" / "model.pt").read_bytes()
    proc = _cli("train", str(dest), "--set", "epochs=1")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    stats = json.loads((dest / "models" / "train_stats.json").read_text())
    assert stats["status"] == "complete" and stats["total_epochs"] == 1
    assert stats["best_validation_metric"] is not None

    if template != "segmentation_3d":
        return
    # the export really starts from its checkpoint: without the file, the CheckpointLoader fails the job
    (dest / "models" / "model.pt").unlink()
    proc = _cli("train", str(dest), "--set", "epochs=1")
    assert proc.returncode != 0 and "model.pt" in proc.stderr
