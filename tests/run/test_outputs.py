"""run/outputs.py: the one reader of a job's files, against the trainer's own writer (train/outputs.py)."""

from __future__ import annotations

import json

from mmar_automl.run.jobfolder import write_job_folder
from mmar_automl.run.outputs import JobOutputs
from mmar_automl.train.outputs import JobRecorder


def _job(tmp_path, env):
    root = tmp_path / "mmar"
    (root / "config").mkdir(parents=True)
    (root / "config" / "config_train.json").write_text("{}")
    job = root / "automl" / "r" / "W1_1_J1"
    write_job_folder(root, job, {"epochs": 1}, env)
    return job


def test_reader_finds_what_the_writer_wrote_under_mmar_ckpt_dir(tmp_path):
    job = _job(tmp_path, {"MMAR_CKPT_DIR": "ckpt"})
    outputs = JobOutputs.of(job)
    assert outputs.ckpt_dir == job.resolve() / "ckpt" and outputs.ckpt_subdir == "ckpt"
    assert outputs.ckpt_dir.is_dir() and not (job / "models").exists()  # the job folder makes the right one
    follower = outputs.follower()
    recorder = JobRecorder(outputs.ckpt_dir, out=lambda line: None)  # the trainer's writer, as train() builds it
    recorder.write({"kind": "train", "epoch": 1, "train_loss": 0.5})
    assert follower.read_new() == [{"kind": "train", "epoch": 1, "train_loss": 0.5}]
    recorder.finish("complete")
    (outputs.ckpt_dir / "model.pt").write_bytes(b"weights")
    (outputs.ckpt_dir / "sub").mkdir()
    (outputs.ckpt_dir / "sub" / "epoch1.ckpt").write_bytes(b"weights")
    (job / "log.txt").write_text("".join(f"line {i}\n" for i in range(30)))

    assert outputs.stats()["status"] == "complete" and outputs.stats()["best_validation_metric"] is None
    assert [r["kind"] for r in outputs.metrics()] == ["train", "end"]
    assert [r["kind"] for r in outputs.metrics(skip=1)] == ["end"]  # skip counts train/validation records
    assert outputs.model_file.read_bytes() == b"weights"
    assert outputs.checkpoints() == [outputs.model_file, outputs.ckpt_dir / "sub" / "epoch1.ckpt"]
    assert outputs.log_tail(3) == "line 27\nline 28\nline 29"

    copy = outputs.copy_results(tmp_path / "best")
    assert copy == tmp_path / "best" / "ckpt"
    assert sorted(p.name for p in copy.iterdir()) == ["metrics.jsonl", "model.pt", "train_stats.json"]


def test_defaults_and_a_checkpoint_folder_outside_the_job(tmp_path):
    job = _job(tmp_path, {"MMAR_CKPT_DIR": "/shared/models"})  # every job would write into one place
    assert json.loads((job / "config" / "environment.json").read_text())["MMAR_CKPT_DIR"] == "models"
    assert JobOutputs.of(job).ckpt_dir == job.resolve() / "models"
    escaping = _job(tmp_path / "b", {"MMAR_CKPT_DIR": "../../out"})
    assert JobOutputs.of(escaping).ckpt_subdir == "models"
    no_env = tmp_path / "plain"
    no_env.mkdir()
    outputs = JobOutputs.of(no_env)
    assert outputs.ckpt_dir == no_env.resolve() / "models"
    assert outputs.stats() is None and outputs.metrics() == [] and outputs.checkpoints() == [] and outputs.log_tail() == ""
    (no_env / "config").mkdir()
    (no_env / "config" / "environment.json").write_text("{broken")  # a damaged job folder: still readable
    assert JobOutputs.of(no_env).ckpt_dir == no_env.resolve() / "models"
    assert JobOutputs.of(tmp_path / "gone").ckpt_dir == (tmp_path / "gone").resolve() / "models"
