"""Bundle searches end to end: real processes, MONAI's ConfigWorkflow training tiny UNets on synthetic
volumes, 1-2 CPU workers. Slow (each run pays the launcher's ~15 s warm-up once)."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bundle_files import SPLEEN, TEMPLATE, cli, env, events, make_bundle, read, synthetic_data, write

pytestmark = pytest.mark.slow


def _ended(root: Path, run_id: str) -> list[dict]:
    return [e["job"] for e in events(root, run_id) if e["op"] == "job_ended"]


@pytest.mark.timeout(600)
def test_json_bundle_search_with_two_workers_then_report_export_and_monai_rerun(tmp_path):
    root = make_bundle(tmp_path / "b")
    synthetic_data(root / "data", 6)
    out = cli("run", str(root), "--workers", "cpu:cpu", "--max-jobs", "3", "--seed", "3", "--run-id", "r1",
              "--set", "epochs=2")   # MLflow: the default store in automl/
    assert out.returncode == 0, out.stderr + out.stdout
    jobs = _ended(root, "r1")
    assert [j["state"] for j in jobs] == ["COMPLETE"] * 3
    assert {Path(j["folder"]).name[:2] for j in jobs} == {"W1", "W2"}          # both workers ran jobs
    for job in jobs:
        folder = Path(job["folder"])
        stats = json.loads((folder / "models" / "train_stats.json").read_text())
        assert stats["key_metric"] == "val_mean_dice" and stats["total_epochs"] == 2
        assert job["score"] == stats["best_validation_metric"]
        lines = [json.loads(x) for x in (folder / "models" / "metrics.jsonl").read_text().splitlines()]
        assert [x["kind"] for x in lines] == ["train", "validation", "train", "validation", "end"]
        config = json.loads((folder / "configs" / "train.json").read_text())
        point = job["recommendation"]["point"]
        assert config["learning_rate"] == point["learning_rate"] and config["epochs"] == 2   # point and --set
        assert config["network_def"]["channels"] == point["network_def.channels"][0]
        assert config["train"]["preprocessing"]["transforms"][3]["prob"] == point["RandFlipd.prob"][0]
        assert "search" not in json.dumps(config) and not (folder / "configs" / "search.json").exists()
    best = max(jobs, key=lambda j: j["score"])
    assert json.loads((root / "automl" / "r1" / "best" / "best.json").read_text())["job"] == Path(best["folder"]).name
    assert (root / "automl" / "r1" / "best" / "configs" / "train.json").is_file()

    artifacts = sorted((root / "automl" / "mlartifacts").rglob("config/train.json"))
    assert len(artifacts) == 3   # each MLflow child run holds its job's concrete bundle config
    # The best model is an MLflow PyTorch model (rebuilt from the job's bundle config), not a raw model.pt
    assert (Path(best["folder"]) / "models" / "mlflow_model" / "MLmodel").is_file()
    assert len(list((root / "automl" / "mlartifacts").rglob("model/MLmodel"))) == 1

    report = cli("report", str(root), "--json")
    assert report.returncode == 0, report.stderr
    exported = cli("export-best", str(root), str(tmp_path / "exported"))
    assert exported.returncode == 0, exported.stderr
    assert (tmp_path / "exported" / "models" / "model.pt").is_file()
    assert json.loads((tmp_path / "exported" / "configs" / "train.json").read_text()) == json.loads(
        (Path(best["folder"]) / "configs" / "train.json").read_text())
    trained = cli("train", str(tmp_path / "exported"), "--set", "epochs=1")   # the export trains on (train CLI)
    assert trained.returncode == 0, trained.stderr
    assert json.loads((tmp_path / "exported" / "models" / "train_stats.json").read_text())["total_epochs"] == 1

    # The job folder alone, run by MONAI's own CLI, trains the same model to the same score.
    job = Path(best["folder"])
    again = tmp_path / "again"
    shutil.copytree(job, again, symlinks=True, ignore=shutil.ignore_patterns("models", "log.txt"))
    rerun = json.loads((job / "automl_job.json").read_text())["rerun"].replace(str(job), str(again)).split()
    assert rerun[:4] == ["python", "-m", "monai.bundle", "run"]
    done = subprocess.run([sys.executable, *rerun[1:]], env=env(), capture_output=True, text=True, timeout=300,
                          cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    import torch

    ours = torch.load(job / "models" / "model.pt", map_location="cpu")
    theirs = torch.load(again / "models" / "model.pt", map_location="cpu")
    assert ours.keys() == theirs.keys()
    assert all(torch.equal(ours[k], theirs[k]) for k in ours)


@pytest.mark.timeout(600)
def test_yaml_bundle_resumes_after_kill_9(tmp_path):
    root = make_bundle(tmp_path / "b", yaml=True)
    write(root / "configs" / "automl.json", {"controller": {"name": "RandomController", "args": {"max_jobs": 3}}})
    synthetic_data(root / "data", 4)
    args = [sys.executable, "-m", "mmar_automl", "run", str(root), "--workers", "cpu", "--seed", "7",
            "--run-id", "cut", "--set", "epochs=2", "--set", "val_interval=3", "--no-mlflow"]
    cut = subprocess.Popen(args, env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while not _ended(root, "cut") and time.time() < deadline and cut.poll() is None:
        time.sleep(0.05)
    cut.send_signal(signal.SIGKILL)   # the orchestrator only; --resume deals with what it left
    cut.wait()
    assert 1 <= len(_ended(root, "cut")) < 3, "the run was not cut mid-way"
    resumed = cli("run", str(root), "--resume", "cut", "--no-mlflow")
    assert resumed.returncode == 0, resumed.stderr + resumed.stdout
    complete = [j for j in _ended(root, "cut") if j["state"] == "COMPLETE"]
    assert sorted(j["recommendation"]["rec_id"] for j in complete) == [0, 1, 2]   # each point trained once
    for job in complete:
        assert json.loads((Path(job["folder"]) / "configs" / "train.json").read_text())["epochs"] == 2
        # val_interval 3 > 2 epochs: the job validates its last epoch once more, so it has a score
        assert job["score"] is not None and "final validation: epoch 2" in (Path(job["folder"]) / "log.txt").read_text()


@pytest.mark.timeout(600)
def test_spleen_ct_segmentation_as_published_on_small_synthetic_volumes(tmp_path):
    """The Model Zoo bundle's configs unchanged, searched over its optimizer's lr (configs/search.json).
    Overrides: the data location and the epochs, plus the crop and sliding-window sizes (96^3 as
    published; 32^3 here so that the real 5-level UNet trains on 32^3 volumes in seconds)."""
    root = tmp_path / "spleen_ct_segmentation"
    shutil.copytree(SPLEEN, root)
    write(root / "configs" / "search.json", {"search": [
        {"domain": "lr", "type": "float", "args": ["optimizer#lr"], "targets": [0.001, 0.01]}]})
    # 11 volumes: the bundle validates on the last 9 of its sorted images (@images[-9:]). The voxel size is the
    # bundle's Spacingd pixdim, so that volumes keep their 32^3 shape.
    data = synthetic_data(tmp_path / "Task09_Spleen", 11, spacing=(1.5, 1.5, 2.0))
    out = cli("run", str(root), "--workers", "cpu:cpu", "--max-jobs", "2", "--run-id", "s", "--no-mlflow",
              "--set", f"dataset_dir={data}", "--set", "epochs=1",
              "--set", "train#random_transforms#0#spatial_size=[32,32,32]", "--set", "validate#inferer#roi_size=[32,32,32]")
    assert out.returncode == 0, out.stderr + out.stdout
    jobs = _ended(root, "s")
    assert [j["state"] for j in jobs] == ["COMPLETE", "COMPLETE"]
    for job in jobs:
        stats = json.loads((Path(job["folder"]) / "models" / "train_stats.json").read_text())
        assert stats["key_metric"] == "val_mean_dice" and job["score"] == stats["best_validation_metric"]
        assert set(stats["validations"][0]["metrics"]) == {"val_mean_dice", "val_accuracy"}
        config = json.loads((Path(job["folder"]) / "configs" / "train.json").read_text())
        assert config["optimizer"]["lr"] == job["recommendation"]["point"]["optimizer.lr"]
        assert config["dataset_dir"] == str(data)
        # The bundle's own CheckpointSaver wrote model.pt (a bare state_dict, what its inference.json loads).
        import torch

        assert "model.0.conv.unit0.conv.weight" in torch.load(Path(job["folder"]) / "models" / "model.pt")

    # The best job folder is a trained bundle: its evaluate.json (CheckpointLoader on models/model.pt) scores it.
    best = max(jobs, key=lambda j: j["score"])
    evaluated = cli("evaluate", best["folder"])
    assert evaluated.returncode == 0, evaluated.stderr
    key, value = evaluated.stdout.strip().splitlines()[-1].split()[:2]   # the result line comes last
    assert key == "val_mean_dice" and abs(float(value) - best["score"]) < 1e-3


@pytest.mark.timeout(300)
def test_a_job_with_no_data_fails_with_one_line(tmp_path):
    """MONAI skips an empty run with a warning: a job whose data location globbed nothing (segmentation_template's
    "$@bundle_root + '/train_data'" with no images there) "completed" with no score. It fails, naming the loader."""
    root = make_bundle(tmp_path / "b")
    (root / "data").mkdir()
    write(root / "data" / "dataset.json", {"training": [], "validation": []})
    out = cli("train", str(root), "--set", "epochs=1", "train#dataloader#shuffle=false")  # as segmentation_template's
    assert out.returncode == 1, out.stderr + out.stdout
    assert "no data: train#trainer#train_data_loader (@train#dataloader) is empty" in out.stderr
    stats = json.loads((root / "models" / "train_stats.json").read_text())
    assert stats["status"] == "failed" and stats["reason"].startswith("no data:")


@pytest.mark.timeout(600)
def test_an_older_bundle_with_a_training_list_trains_as_monai_runs_it(tmp_path):
    """Model Zoo bundles written before MONAI 1.2 (pathology_nuclei_classification) run
    "training": ["$monai.utils.set_determinism(seed=123)", ..., "$@train#trainer.run()"]. The job failed
    ("run ID 'run' doesn't exist"); once run, it built the network before the seed was set, so
    `python -m monai.bundle run --run_id training` on the job folder trained other weights."""
    config = read(TEMPLATE / "configs" / "train.json")
    seed = config.pop("initialize")
    config["training"] = [*seed, "$setattr(torch.backends.cudnn, 'benchmark', True)", *config.pop("run")]
    transforms = config["train"]["preprocessing"]["transforms"]
    config["train"]["preprocessing"]["transforms"] = [{k: v for k, v in t.items() if k != "search"} for t in transforms]
    root = make_bundle(tmp_path / "b", train=config)
    synthetic_data(root / "data", 4)
    again = tmp_path / "again"
    shutil.copytree(root, again)
    trained = cli("train", str(root), "--set", "epochs=1")
    assert trained.returncode == 0, trained.stderr + trained.stdout
    done = subprocess.run([sys.executable, "-m", "monai.bundle", "run", "--run_id", "training", "--config_file",
                           str(again / "configs" / "train.json"), "--meta_file", str(again / "configs" / "metadata.json"),
                           "--bundle_root", str(again), "--epochs", "1"],
                          env=env(), capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    import torch

    ours = torch.load(root / "models" / "model.pt", map_location="cpu")
    theirs = torch.load(again / "models" / "model.pt", map_location="cpu")
    assert ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in ours)
