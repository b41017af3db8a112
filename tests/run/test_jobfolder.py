"""Job folders: key content only, concrete config, absolute data paths; run id validation."""

from __future__ import annotations

import json

import pytest

from mmar_automl.errors import UsageError
from mmar_automl.run.jobfolder import validate_run_id, write_job_folder


@pytest.mark.parametrize("bad", ["", "../x", "a/b", "..", ".hidden", "a\\b", "a b", "x" * 101, "run1\n"])
def test_bad_run_ids(bad):
    with pytest.raises(UsageError):
        validate_run_id(bad)


def test_good_run_id():
    assert validate_run_id("20261128_071500") == "20261128_071500"
    assert validate_run_id("exp-1.b_2") == "exp-1.b_2"


def test_job_folder(tmp_path):
    root = tmp_path / "mmar"
    for d in ("config", "commands", "custom", "models", "eval", "automl/old", "data", "resources", "mycode"):
        (root / d).mkdir(parents=True)
    (root / "config" / "config_train.json").write_text("{}")
    (root / "config" / "dataset_0.json").write_text("{}")
    (root / "commands" / "train.sh").write_text("echo")
    (root / "custom" / "loss.py").write_text("X = 1")
    (root / "mycode" / "net.py").write_text("Y = 1")
    (root / "models" / "model.pt").write_bytes(b"x")
    (root / "data" / "img.nii.gz").write_bytes(b"x")
    (root / "top.py").write_text("Z = 1")
    job = root / "automl" / "r" / "W1_1_J1"
    config = {"epochs": 1, "train": {"files": "data/img.nii.gz", "list": "config/dataset_0.json", "lr": "{learning_rate}"}}
    env = {"DATA_ROOT": "data", "DATASET_JSON": "config/dataset_0.json", "MMAR_CKPT_DIR": "/shared/models",
           "OTHER": "{DATA_ROOT}/x", "ABS": "/abs"}
    path = write_job_folder(root, job, config, env, {"job": "W1_1_J1"})
    assert path == job / "config" / "config_train.json"
    written = json.loads(path.read_text())
    assert written["train"]["files"] == str((root / "data" / "img.nii.gz").resolve())  # outside the job: absolute
    assert written["train"]["list"] == "config/dataset_0.json"  # copied with config/: stays relative
    assert written["train"]["lr"] == "{learning_rate}"
    environment = json.loads((job / "config" / "environment.json").read_text())
    assert environment["DATA_ROOT"] == str((root / "data").resolve())
    assert environment["DATASET_JSON"] == str((root / "config" / "dataset_0.json").resolve())
    assert environment["MMAR_CKPT_DIR"] == "models" and environment["OTHER"] == "{DATA_ROOT}/x"
    for present in ("commands/train.sh", "custom/loss.py", "mycode/net.py", "top.py", "resources", "automl_job.json"):
        assert (job / present).exists(), present
    for absent in ("automl", "eval", "data", "models/model.pt"):
        assert not (job / absent).exists(), absent
    assert (job / "models").is_dir()
    with pytest.raises(FileExistsError):
        write_job_folder(root, job, config, env)


@pytest.mark.parametrize("ckpt", ["ckpt", "out/deep/ckpt", "/abs/ckpt", "../shared/ckpt", None])
def test_job_ckpt_subdir_is_where_the_job_folders_reader_looks(tmp_path, ckpt):
    """The Ray backend learns a job's checkpoint folder before the folder exists (job_ckpt_subdir); it must
    be the one run/outputs.py reads in the written folder."""
    from mmar_automl.run.jobfolder import job_ckpt_subdir
    from mmar_automl.run.outputs import JobOutputs

    mmar = tmp_path / "mmar"
    (mmar / "config").mkdir(parents=True)
    env = {"DATA_ROOT": "data"} if ckpt is None else {"DATA_ROOT": "data", "MMAR_CKPT_DIR": ckpt}
    job = tmp_path / "mmar" / "automl" / "r" / "W1_1_J1"
    write_job_folder(mmar, job, {"epochs": 1}, env)
    expected = {"ckpt": "ckpt", "out/deep/ckpt": "out/deep/ckpt"}.get(ckpt, "models")
    assert job_ckpt_subdir(env, mmar) == JobOutputs.of(job).ckpt_subdir == expected
    assert JobOutputs.of(job).ckpt_dir.is_dir()
