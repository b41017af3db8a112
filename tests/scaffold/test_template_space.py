"""Each template is valid input for the search-space parser, the renderer and config_automl.json loading,
and the controller it names accepts its args."""

from __future__ import annotations

import json

import pytest

from init_points import last_point

from mmar_automl.scaffold.init import TEMPLATES_DIR

EXPECTED = {
    # template: (dimension names, grid size, continuous names, key metric)
    "segmentation_3d": (
        ["learning_rate", "skipDiceLoss,skipDiceCELoss", "model.channels", "RandFlipd.@disabled"], 8,
        ["learning_rate"], "val_mean_dice",
    ),
    "classification_2d": (
        ["skipAugmentation", "optimizer.lr", "model.init_features,growth_rate"], 4, ["optimizer.lr"], "val_auc",
    ),
}


def _train_config(template: str) -> dict:
    return json.loads((TEMPLATES_DIR / template / "config" / "config_train.json").read_text())


@pytest.mark.parametrize("template", sorted(EXPECTED))
def test_template_search_space(template):
    from mmar_automl.search import parse_search_space

    names, grid, continuous, key_metric = EXPECTED[template]
    config = _train_config(template)
    space = parse_search_space(config, "config_train.json")
    assert space.names == names
    assert space.grid_size == grid
    assert [d.name for d in space.continuous] == continuous
    assert config["validate"]["key_metric"]["log_label"] == key_metric


def test_segmentation_losses_are_mutually_exclusive_at_every_grid_point():
    from mmar_automl.search import parse_search_space, render_config

    config = _train_config("segmentation_3d")
    space = parse_search_space(config, "config_train.json")
    losses_seen = set()
    for skip in ([False, True], [True, False]):
        point = {**last_point(space), "skipDiceLoss,skipDiceCELoss": skip}
        rendered = render_config(config, space, point)
        text = json.dumps(rendered)
        assert '"search"' not in text and '"apply"' not in text
        enabled = [loss["name"] for loss in rendered["train"]["loss"] if not loss.get("disabled", False)]
        assert len(enabled) == 1
        losses_seen.add(enabled[0])
        assert rendered["learning_rate"] == point["learning_rate"]
        assert rendered["train"]["model"]["args"]["channels"] == [16, 32, 64]
    assert losses_seen == {"DiceLoss", "DiceCELoss"}


def test_classification_free_variable_switches_both_augmentations():
    from mmar_automl.search import parse_search_space, render_config

    config = _train_config("classification_2d")
    space = parse_search_space(config, "config_train.json")
    for skip in (True, False):
        rendered = render_config(config, space, {**last_point(space), "skipAugmentation": [skip]})
        flags = {t["name"]: t.get("disabled", False) for t in rendered["train"]["pre_transforms"]}
        assert flags["RandFlipd"] is skip and flags["RandRotate90d"] is skip
        assert flags["LoadImaged"] is False
        assert rendered["train"]["model"]["args"]["growth_rate"] == 16


@pytest.mark.parametrize("template", sorted(EXPECTED))
def test_template_automl_config_loads_and_its_components_accept_their_args(template):
    from mmar_automl.config.automl_config import load_automl_config
    from mmar_automl.config.registry import KINDS, import_target

    automl = load_automl_config(TEMPLATES_DIR / template / "config" / "config_automl.json")
    specs = [automl.controller, *automl.handlers] + ([automl.executor] if automl.executor else [])
    for spec in specs:
        target = KINDS[spec.kind][spec.name]
        cls = import_target(target)
        extra = {"seed": 0} if spec.kind == "controller" else {}
        cls(**extra, **spec.args)  # a bad arg name or value raises here


@pytest.mark.parametrize("template", sorted(EXPECTED))
def test_validate_command_accepts_the_template(template, capsys):
    from mmar_automl.cli import main

    assert main(["validate", str(TEMPLATES_DIR / template), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["grid_size"] == EXPECTED[template][1]
