"""`mmar-automl init`: templates copied whole, placeholders filled, refusals with exit 2 and one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mmar_automl.cli import main
from mmar_automl.scaffold.init import TEMPLATES_DIR, init_mmar, list_templates, template_description

TEMPLATES = ["classification_2d", "segmentation_3d"]
REQUIRED = [
    "config/config_train.json", "config/config_automl.json", "config/config_validation.json",
    "config/environment.json", "config/config_inference.json", "commands/set_env.sh", "commands/train.sh",
    "commands/automl.sh", "commands/check_config.sh", "commands/validate.sh", "commands/infer.sh",
    "commands/export.sh", "docs/Readme.md", "resources/log.config",
]


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts}


def test_both_templates_are_listed_with_a_description():
    assert list_templates() == [*TEMPLATES, "segmentation_3d_bundle"]   # the bundle's tests: tests/bundle/
    for name in list_templates():
        assert len(template_description(name)) > 20


def test_root_templates_link_points_into_the_package():
    link = Path(__file__).resolve().parents[2] / "templates"
    assert link.is_symlink() and link.resolve() == TEMPLATES_DIR


@pytest.mark.parametrize("template", TEMPLATES)
def test_init_copies_the_whole_template_and_fills_placeholders(tmp_path, template):
    root = tmp_path / "my_mmar"
    code = main(["init", str(root), "--template", template])
    assert code == 0
    assert _tree(root) == _tree(TEMPLATES_DIR / template)
    for rel in REQUIRED:
        assert (root / rel).is_file(), rel
    assert (root / "models").is_dir()
    for path in (root / "config").glob("*.json"):
        json.loads(path.read_text())  # configs hold no placeholders: valid JSON as shipped
    for path in root.rglob("*"):
        if path.is_file():
            assert "{{" not in path.read_text(), f"unfilled placeholder in {path}"
    for script in (root / "commands").glob("*.sh"):
        assert os.access(script, os.X_OK), script
        subprocess.run(["bash", "-n", str(script)], check=True)
    assert (root / "docs" / "Readme.md").read_text().startswith("# my_mmar\n")
    assert f'"{sys.executable}" -m mmar_automl' in (root / "commands" / "set_env.sh").read_text()
    env = json.loads((root / "config" / "environment.json").read_text())
    assert not Path(env["DATA_ROOT"]).is_absolute() and not Path(env["DATASET_JSON"]).is_absolute()


def test_templates_share_the_same_commands():
    a, b = (TEMPLATES_DIR / t / "commands" for t in TEMPLATES)
    assert sorted(p.name for p in a.iterdir()) == sorted(p.name for p in b.iterdir())
    for script in a.iterdir():
        assert script.read_text() == (b / script.name).read_text(), script.name


def test_refuses_a_non_empty_folder_without_force(tmp_path, capsys):
    root = tmp_path / "busy"
    root.mkdir()
    (root / "notes.txt").write_text("mine")
    assert main(["init", str(root)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "not empty" in err and "--force" in err
    assert sorted(p.name for p in root.iterdir()) == ["notes.txt"]


def test_force_writes_into_a_non_empty_folder_and_keeps_other_files(tmp_path):
    root = tmp_path / "busy"
    (root / "config").mkdir(parents=True)
    (root / "notes.txt").write_text("mine")
    (root / "config" / "config_train.json").write_text("{}")
    assert main(["init", str(root), "--force", "--template", "classification_2d"]) == 0
    assert (root / "notes.txt").read_text() == "mine"
    train = json.loads((root / "config" / "config_train.json").read_text())
    assert train["train"]["model"]["name"] == "DenseNet"


def test_unknown_template_exits_2_naming_the_known_ones(tmp_path, capsys):
    root = tmp_path / "x"
    assert main(["init", str(root), "--template", "segmentation_2d"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "segmentation_2d" in err and all(t in err for t in TEMPLATES)
    assert not root.exists()


@pytest.mark.parametrize("template, n", [("segmentation_3d", 1), ("classification_2d", 3)])
def test_too_few_synthetic_pairs_exit_2_and_write_nothing(tmp_path, capsys, template, n):
    root = tmp_path / "x"
    assert main(["init", str(root), "--template", template, "--synthetic-data", str(n)]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    assert not root.exists()


def test_negative_synthetic_data_is_a_usage_error(tmp_path):
    assert main(["init", str(tmp_path / "x"), "--synthetic-data", "-1"]) == 2
    assert not (tmp_path / "x").exists()


def test_a_file_in_place_of_the_folder_is_refused(tmp_path):
    path = tmp_path / "file"
    path.write_text("x")
    assert main(["init", str(path), "--force"]) == 2


def test_help_lists_the_templates():
    out = subprocess.run(
        [sys.executable, "-m", "mmar_automl", "init", "--help"], capture_output=True, text=True, check=True,
    ).stdout
    for name in TEMPLATES:
        assert f"{name}: {template_description(name)}" in out


def test_commands_run_without_mmar_automl_on_path(tmp_path):
    """check_config.sh from another cwd, PATH without the venv: set_env.sh falls back to init's Python."""
    root = init_mmar(tmp_path / "moved_later", "segmentation_3d").root
    env = {k: v for k, v in os.environ.items() if k not in ("MMAR_AUTOML", "VIRTUAL_ENV")}
    env["PATH"] = "/usr/bin:/bin"
    proc = subprocess.run(
        ["bash", str(root / "commands" / "check_config.sh"), "--json"], cwd=tmp_path, env=env,
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["grid_size"] == 8


@pytest.mark.parametrize("template", TEMPLATES)
def test_templates_validate_every_epoch(template):
    """The CheckpointSaver runs at validation: with validation every 2 epochs, `train --set epochs=1` (the
    usual way to continue an exported best job) scored nothing and saved no model."""
    config = json.loads((TEMPLATES_DIR / template / "config" / "config_train.json").read_text())
    assert config["num_interval_per_valid"] == 1
    handler = next(h for h in config["train"]["handlers"] if h["name"] == "ValidationHandler")
    assert handler["args"]["interval"] == "{num_interval_per_valid}" and handler["args"]["epoch_level"] is True


def test_the_next_step_is_a_command_to_paste_even_with_spaces(tmp_path, capsys):
    root = tmp_path / "my data" / "mmar"
    assert main(["init", str(root)]) == 0
    assert f"next: '{root}/commands/check_config.sh', then" in capsys.readouterr().err


def test_scripts_are_executable_even_from_a_template_without_mode_bits(tmp_path, monkeypatch):
    """Some installers unpack package data without the executable bit: commands/ must still run."""
    import shutil

    import mmar_automl.scaffold.init as init_module

    templates = tmp_path / "templates"
    shutil.copytree(TEMPLATES_DIR / "segmentation_3d", templates / "segmentation_3d")
    for script in (templates / "segmentation_3d" / "commands").glob("*.sh"):
        script.chmod(0o644)
    monkeypatch.setattr(init_module, "TEMPLATES_DIR", templates)
    root = init_mmar(tmp_path / "m", "segmentation_3d").root
    for script in (root / "commands").glob("*.sh"):
        assert os.access(script, os.X_OK), script
