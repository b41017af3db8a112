"""`mmar-automl evaluate` and `export` on a trained template (issue 13): Clara's validate.sh (evaluation),
export.sh (TorchScript) and infer.sh (predictions), real MONAI on synthetic volumes, on the CPU."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mmar_automl.cli import main


@pytest.mark.slow
def test_trained_template_evaluates_exports_and_infers(tmp_path, capsys):
    root = tmp_path / "seg"
    assert main(["init", str(root), "--synthetic-data", "5"]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(root)]) == 2  # nothing trained yet: one line, exit 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no checkpoint to evaluate" in err[0] and "model.pt" in err[0]

    assert main(["train", str(root), "--set", "epochs=1", "--device", "cpu"]) == 0
    stats = json.loads((root / "models" / "train_stats.json").read_text())
    capsys.readouterr()

    # Clara's validate.sh: a real subprocess, from another folder.
    env = {**os.environ, "MMAR_AUTOML": f"{sys.executable} -m mmar_automl", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(["bash", str(root / "commands" / "validate.sh"), "--device", "cpu"], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    line = proc.stdout.strip().splitlines()[-1]
    assert line.startswith("val_mean_dice ")
    assert float(line.split()[1]) == pytest.approx(stats["best_validation_metric"], abs=1e-4)  # the same model
    with open(root / "eval" / "metrics.csv") as f:  # MetricsSaver under MMAR_EVAL_OUTPUT_PATH
        rows = {r[0]: float(r[1]) for r in csv.reader(f)}
    assert rows["val_mean_dice"] == pytest.approx(stats["best_validation_metric"], abs=1e-4)

    assert main(["export", str(root)]) == 0
    assert (root / "models" / "model.ts").is_file()
    assert main(["evaluate", str(root), "--config", "config/config_inference.json", "--device", "cpu"]) == 0
    assert "evaluated 1 item(s)" in capsys.readouterr().out
    import nibabel as nib

    [saved] = list((root / "eval").glob("*_seg.nii.gz"))
    assert nib.load(saved).shape[:3] == (32, 32, 32)

    # Clara 4.1's model list (TorchScript or checkpoint, by dont_load_* flags) in a Clara 4.0-style config:
    # evaluator named only, a metrics list, MetricsSaver with a batch-dict lambda. Both models score alike.
    config = json.loads((root / "config" / "config_validation.json").read_text())
    config["model"] = [{"ts_path": "{MMAR_TORCHSCRIPT}", "disabled": "{dont_load_ts_model}"},
                       {"ckpt_path": "{MMAR_CKPT}", "disabled": "{dont_load_ckpt_model}"}]
    config["dont_load_ts_model"] = False
    config["metrics"] = [config.pop("additional_metrics")[0], {**config.pop("key_metric"), "is_key_metric": True}]
    config["handlers"] = [h for h in config["handlers"] if h["name"] == "MetricsSaver"]
    config["handlers"][0]["args"].update({"metric_details": ["val_mean_dice"],
                                          "batch_transform": "lambda x: x['image_meta_dict']"})
    config["evaluator"] = {"name": "SupervisedEvaluator"}
    (root / "config" / "config_validation_40.json").write_text(json.dumps(config))
    for flags in (["dont_load_ts_model=false"], ["dont_load_ts_model=true", "dont_load_ckpt_model=false"]):
        assert main(["evaluate", str(root), "--config", "config/config_validation_40.json", "--device", "cpu",
                     "--set", *flags]) == 0
        out = capsys.readouterr().out.strip().splitlines()[-1]
        assert out.startswith("val_mean_dice ")
        assert float(out.split()[1]) == pytest.approx(stats["best_validation_metric"], abs=1e-4)
    raw = (root / "eval" / "val_mean_dice_raw.csv").read_text()
    assert "case_004.nii.gz" in raw  # per-image details, named from the Clara-era meta dict


def test_evaluate_without_config_is_one_line(tmp_path, capsys):
    (tmp_path / "m" / "config").mkdir(parents=True)
    assert main(["evaluate", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "config_validation.json" in err[0] and "file not found" in err[0]


def test_export_without_checkpoint_is_one_line(tmp_path, capsys):
    root = tmp_path / "seg"
    assert main(["init", str(root)]) == 0
    capsys.readouterr()
    assert main(["export", str(root)]) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert "no checkpoint to export" in line and "model.pt" in line
    assert not (root / "models" / "model.ts").exists()


def test_a_damaged_or_foreign_checkpoint_is_one_line_naming_the_file(tmp_path):
    """torch's words for a text file ("invalid literal for int()") or another network's weights (a
    header line, then one line per key) become one line that names the checkpoint and what is wrong."""
    import torch

    from mmar_automl.train.clara_compat import load_state
    from mmar_automl.train.failures import failure_reason, root_cause

    damaged = tmp_path / "model.pt"
    damaged.write_text("garbage\n")
    with pytest.raises(RuntimeError) as caught:
        load_state(torch.nn.Linear(2, 2), damaged)
    reason = failure_reason(root_cause(caught.value))
    assert reason.startswith(f"RuntimeError: cannot read checkpoint {damaged} (damaged, or not a PyTorch checkpoint)")
    other = tmp_path / "other.pt"
    torch.save({"model": torch.nn.Linear(3, 2).state_dict()}, other)
    with pytest.raises(RuntimeError) as caught:
        load_state(torch.nn.Linear(2, 2), other)
    reason = failure_reason(root_cause(caught.value))
    assert reason.startswith(f"RuntimeError: checkpoint {other} does not fit the model Linear (trained with other args?): "
                             "size mismatch for weight")
    assert "\n" not in reason
