"""`mmar-automl export-best` on runs made by the real `mmar-automl run` (light torch-free jobs)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mmar_automl.cli import main
from report_runs import REPO, RUN_TESTS, make_run, report_config, write_mmar


@pytest.fixture(scope="module")
def run_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("exp") / "mmar"
    config = report_config(modes=("ok",))
    config["dont_load_ckpt_model"] = True
    write_mmar(root, config)
    make_run(root, "r1")
    return root


def _best(root: Path, run: str = "r1") -> dict:
    events = [json.loads(x) for x in (root / "automl" / run / "journal.jsonl").read_text().splitlines()]
    name = events[-1]["best"]
    job = next(e["job"] for e in events if e["op"] == "job_ended"
               and f"W{e['job']['worker']}_{e['job']['worker_seq']}_J{e['job']['number']}" == name)
    return {"name": name, **job}


def test_export_is_a_standalone_mmar(run_root, tmp_path, capsys):
    dest = tmp_path / "exported"
    assert main(["export-best", str(run_root), "--run", "r1", str(dest)]) == 0
    out, err = capsys.readouterr()
    best = _best(run_root)
    assert out.strip() == f"exported {best['name']} (score 0.9) of run r1 to {dest}"
    assert f"continue training: mmar-automl train {dest}" in err
    job = Path(best["folder"])
    # the concrete config of the best job, with loading of the exported checkpoint switched on
    config = json.loads((dest / "config" / "config_train.json").read_text())
    concrete = json.loads((job / "config" / "config_train.json").read_text())
    assert concrete["dont_load_ckpt_model"] is True and config["dont_load_ckpt_model"] is False
    assert {k: v for k, v in config.items() if k != "dont_load_ckpt_model"} == \
        {k: v for k, v in concrete.items() if k != "dont_load_ckpt_model"}
    assert config["score"] == 0.9 and "search" not in json.dumps(config)
    # data paths absolute, the checkpoint where MMAR_CKPT says
    env = json.loads((dest / "config" / "environment.json").read_text())
    assert env["DATA_ROOT"] == str(run_root / "data") and os.path.isabs(env["DATASET_JSON"])
    assert env["MMAR_CKPT"] == "models/model.pt"
    assert (dest / "models" / "model.pt").read_bytes() == (job / "models" / "model.pt").read_bytes()
    assert config["train"]["dataset"]["data_list_file_path"] == str(run_root / "data" / "dataset.json")
    # commands and docs travel; the job's records are kept apart from models/ (a new training rewrites those)
    assert (dest / "commands" / "train.sh").is_file() and (dest / "docs" / "Readme.md").is_file()
    origin = json.loads((dest / "docs" / "automl_export.json").read_text())
    assert origin["job"] == best["name"] and origin["run_id"] == "r1" and origin["score"] == 0.9
    assert {"path": "score", "old": 0.2, "new": 0.9} in origin["config_diff"]
    assert (dest / "docs" / "automl_job" / "train_stats.json").is_file()
    assert "mmar-automl train" in (dest / "docs" / "automl_export.md").read_text()
    assert sorted(p.name for p in (dest / "models").iterdir()) == ["model.pt"]
    assert not list(tmp_path.glob(".exported.export-*"))  # no temporary folder left


def test_the_export_trains_again(run_root, tmp_path):
    """The light trainer (same output contract as `mmar-automl train`) runs in the export, wherever it is."""
    dest = tmp_path / "somewhere" / "else"
    assert main(["export-best", str(run_root), str(dest)]) == 0
    code = "import sys, lightjobs; sys.exit(lightjobs.main([sys.argv[1]]))"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(RUN_TESTS), str(REPO)])}
    env.pop("LIGHTJOB_LEDGER", None)
    proc = subprocess.run([sys.executable, "-c", code, str(dest)], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    stats = json.loads((dest / "models" / "train_stats.json").read_text())
    assert stats["status"] == "complete" and stats["best_validation_metric"] == pytest.approx(0.9)
    seen = json.loads((dest / "models" / "env.json").read_text())["environment"]
    assert seen["DATA_ROOT"] == str(run_root / "data")


def test_an_empty_existing_dest_is_fine(run_root, tmp_path):
    dest = tmp_path / "empty"
    dest.mkdir()
    assert main(["export-best", str(run_root), str(dest)]) == 0
    assert (dest / "models" / "model.pt").is_file()


def test_refusals_exit_2_with_one_line(run_root, tmp_path, capsys):
    full = tmp_path / "full"
    full.mkdir()
    (full / "keep.txt").write_text("mine")
    assert main(["export-best", str(run_root), str(full)]) == 2
    assert main(["export-best", str(run_root), "--run", "nope", str(tmp_path / "new")]) == 2
    assert main(["export-best", str(tmp_path / "no-mmar"), str(tmp_path / "new")]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0] == f"error: {full}: exists and is not empty; export-best writes a new folder"
    assert err[1].startswith("error: run 'nope' not found under")
    assert err[2] == f"error: {tmp_path / 'no-mmar'}: MMAR root is not a folder"
    assert len(err) == 3
    assert sorted(p.name for p in full.iterdir()) == ["keep.txt"] and not (tmp_path / "new").exists()


def test_a_run_without_a_scored_job_is_refused(tmp_path, capsys):
    root = write_mmar(tmp_path / "m", report_config(scores=(None,), modes=("ok",)))
    make_run(root, "nos")
    capsys.readouterr()
    assert main(["export-best", str(root), "--run", "nos", str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err == "error: run nos has no scored job: nothing to export\n"
    assert not (tmp_path / "out").exists()


def test_the_best_folder_backs_up_a_pruned_checkpoint(run_root, tmp_path):
    """num_mmars_to_keep may delete job checkpoints; best/ (MMARHandler) still holds the best one."""
    best = _best(run_root)
    model = Path(best["folder"]) / "models" / "model.pt"
    saved = model.read_bytes()
    model.unlink()
    try:
        dest = tmp_path / "fromcopy"
        assert main(["export-best", str(run_root), str(dest)]) == 0
        assert (dest / "models" / "model.pt").read_bytes() == saved
    finally:
        model.write_bytes(saved)


def test_the_export_docs_say_absent_not_null():
    """A key that only one side has reads `(absent)` in docs/automl_export.md, as in the report; a real
    `null` value stays `null`."""
    from mmar_automl.report.export import _md_value

    assert _md_value({"path": "train.new", "new": "x"}, "old") == "(absent)"
    assert _md_value({"path": "a", "old": None, "new": 1}, "old") == "`null`"
    assert _md_value({"path": "a", "old": None, "new": [1, 2]}, "new") == "`[1, 2]`"


def test_the_continue_hint_quotes_a_folder_with_spaces(run_root, tmp_path, capsys):
    dest = tmp_path / "best of run"
    assert main(["export-best", str(run_root), str(dest)]) == 0
    assert f"continue training: mmar-automl train '{dest}'" in capsys.readouterr().err


def test_the_runs_set_values_travel_into_the_export(tmp_path, capsys):
    """A search run with --set writes the values into every job's concrete config and environment.json
    (first-level key, JSON path, environment variable): the export holds them, and the report shows them."""
    root = write_mmar(tmp_path / "m", report_config(modes=("ok",)))
    make_run(root, "ov", "--set", "epochs=2", "--set", "train.model.args.spatial_dims=2",
             "--set", "DATA_ROOT=data")
    capsys.readouterr()
    assert main(["report", str(root), "--run", "ov"]) == 0
    out = capsys.readouterr().out
    assert "--set (every job, written in its config): epochs=2 train.model.args.spatial_dims=2 DATA_ROOT=" in out
    assert main(["report", str(root), "--run", "ov", "--json", "--importance", "none"]) == 0
    assert json.loads(capsys.readouterr().out)["overrides"]["epochs"] == "2"

    dest = tmp_path / "export"
    assert main(["export-best", str(root), "--run", "ov", str(dest)]) == 0
    assert "note: the run's --set values are written in: epochs=2" in capsys.readouterr().err
    config = json.loads((dest / "config" / "config_train.json").read_text())
    assert config["epochs"] == 2 and config["train"]["model"]["args"]["spatial_dims"] == 2
    env = json.loads((dest / "config" / "environment.json").read_text())
    assert env["DATA_ROOT"] == str(root / "data") and "DATA_ROOT" not in config
