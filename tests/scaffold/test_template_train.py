"""Each template trains for real (MONAI, CPU, 1 epoch) on its synthetic data, at its own values and at
a rendered non-default point, and leaves a real score in models/train_stats.json."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from init_points import last_point

from mmar_automl.scaffold.init import init_mmar

pytestmark = pytest.mark.slow

ONE_EPOCH = ["--set", "epochs=1"]  # the templates validate every epoch: one epoch is scored as shipped
CASES = {
    # template: (synthetic pairs, key metric, state-dict key of the first conv, its width at the last choices)
    "segmentation_3d": (4, "val_mean_dice", "model.0.conv.unit0.conv.weight", 16),
    "classification_2d": (8, "val_auc", "features.conv0.weight", 16),
}


def _stats(root: Path) -> dict:
    return json.loads((root / "models" / "train_stats.json").read_text())


def _assert_scored(root: Path, key_metric: str) -> dict:
    stats = _stats(root)
    assert stats["status"] == "complete", stats.get("reason")
    assert stats["key_metric"] == key_metric
    score = stats["best_validation_metric"]
    assert isinstance(score, float) and 0.0 <= score <= 1.0
    assert stats["total_epochs"] == 1 and stats["validations"]
    assert (root / "models" / "model.pt").is_file()
    return stats


@pytest.mark.parametrize("template", sorted(CASES))
def test_template_trains_at_a_rendered_non_default_point(tmp_path, template):
    import torch

    from mmar_automl.search import parse_search_space, render_config
    from mmar_automl.train.run import main as train_main

    pairs, key_metric, first_conv, width = CASES[template]
    root = init_mmar(tmp_path / "mmar", template, synthetic_data=pairs).root
    config = json.loads((root / "config" / "config_train.json").read_text())
    space = parse_search_space(config, "config_train.json")
    rendered = render_config(config, space, last_point(space))
    concrete = root / "config" / "config_concrete.json"
    concrete.write_text(json.dumps(rendered, indent=2))

    assert train_main([str(root), "--config", str(concrete), "--device", "cpu", *ONE_EPOCH]) == 0
    _assert_scored(root, key_metric)
    state = torch.load(root / "models" / "model.pt", map_location="cpu", weights_only=False)["model"]
    assert state[first_conv].shape[0] == width  # the rendered architecture is the one that trained


def test_segmentation_commands_train_sh_trains_the_template_as_is(tmp_path):
    """The init'ed MMAR's own script, in a real process started from another folder."""
    root = init_mmar(tmp_path / "seg", "segmentation_3d", synthetic_data=4).root
    env = dict(os.environ, MMAR_AUTOML=f"{sys.executable} -m mmar_automl")
    proc = subprocess.run(
        ["bash", str(root / "commands" / "train.sh"), "--device", "cpu", *ONE_EPOCH],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    _assert_scored(root, "val_mean_dice")
