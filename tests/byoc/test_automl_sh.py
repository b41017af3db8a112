"""commands/automl.sh of the templates, called as Clara users called theirs: ``./automl.sh NAME [more]``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from byoc_mmar import REPO, byoc_mmar, job_env, journal, light_train_config

TEMPLATES = REPO / "mmar_automl" / "templates"


def _with_commands(mmar: Path, template: str) -> Path:
    (mmar / "commands").mkdir()
    for name in ("set_env.sh", "automl.sh"):
        text = (TEMPLATES / template / "commands" / name).read_text().replace("{{PYTHON}}", sys.executable)
        (mmar / "commands" / name).write_text(text)
        os.chmod(mmar / "commands" / name, 0o755)
    return mmar


def _automl_sh(mmar: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**job_env(), "MMAR_AUTOML": f"{sys.executable} -m mmar_automl"}
    return subprocess.run([str(mmar / "commands" / "automl.sh"), *args], env=env, cwd=mmar / "commands",
                          capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("template", ["segmentation_3d", "classification_2d"])
def test_name_picks_the_config_and_the_run_and_never_deletes_a_run(tmp_path, template):
    train = light_train_config(scores=(0.3, 0.6))
    train["search"] = train["search"][:1]
    mmar = _with_commands(byoc_mmar(tmp_path / "mmar", {"controller": {"name": "GridController"}}, {}, train,
                                    train_name="trn_autoML_Enum.json"), template)
    done = _automl_sh(mmar, "trn_autoML_Enum", "--no-mlflow", "--workers", "cpu")
    assert done.returncode == 0, done.stderr
    run_dir = mmar / "automl" / "trn_autoML_Enum"
    events = journal(run_dir)
    assert events[0]["train_config"] == "config/trn_autoML_Enum.json"
    assert sorted(e["job"]["score"] for e in events if e["op"] == "job_ended") == [0.3, 0.6]

    before = (run_dir / "journal.jsonl").read_bytes()
    again = _automl_sh(mmar, "trn_autoML_Enum", "--no-mlflow")
    assert again.returncode == 2
    assert "--resume trn_autoML_Enum" in again.stderr.strip().splitlines()[-1]
    assert (run_dir / "journal.jsonl").read_bytes() == before and (run_dir / "W1_1_J1").is_dir()

    missing = _automl_sh(mmar, "trn_autoML_Nope", "--no-mlflow")
    assert missing.returncode == 2 and "trn_autoML_Nope.json" in missing.stderr and "file not found" in missing.stderr
    assert not (mmar / "automl" / "trn_autoML_Nope").exists()
