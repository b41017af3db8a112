"""config_automl.json: schema, registry names, bring-your-own components."""

from __future__ import annotations

import json
import re
import sys

import pytest

from mmar_automl.config.automl_config import ComponentSpec, load_automl_config
from mmar_automl.errors import ConfigError


def test_clara_default_file_loads(clara_dir):
    cfg = load_automl_config(clara_dir / "PyTorch__config_automl.json")
    assert (cfg.controller.kind, cfg.controller.name, cfg.controller.args) == (
        "controller", "ReinforcementController", {"max_rounds": 8})
    assert cfg.executor is not None and cfg.executor.args["remove_search_augs"] is True
    assert [h.name for h in cfg.handlers] == ["MMARHandler", "StatsHandler", "MMARStatsHandler"]
    assert cfg.handlers[0].args["train_config_file"] == "{trainconf}"     # Clara placeholder kept as is
    assert [h.json_path for h in cfg.handlers] == ["handlers[0]", "handlers[1]", "handlers[2]"]


def test_clara_byo_file_loads_without_importing(clara_dir):
    cfg = load_automl_config(clara_dir / "PyTorch__config_automl_BYO_RandomController.json")
    assert cfg.controller.path == "myAutoMLController.RandomController"
    assert cfg.controller.name == "myController"          # only a label once a path is given
    assert cfg.handlers[-1] == ComponentSpec("handlers", None, "myAutoMLController.MyHandler", {}, "handlers[3]",
                                             cfg.file)


def write(tmp_path, data) -> str:
    path = tmp_path / "config_automl.json"
    path.write_text(json.dumps(data))
    return str(path)


def test_unknown_name_lists_known_ones_and_suggests(tmp_path):
    path = write(tmp_path, {"controller": {"name": "GridControler"}})
    with pytest.raises(ConfigError) as info:
        load_automl_config(path)
    assert info.value.json_path == "controller.name"
    message = str(info.value)
    assert "did you mean 'GridController'" in message
    for known in ("GridController", "RandomController", "ReinforcementController", "OptunaController"):
        assert known in message


def test_unknown_handler(tmp_path):
    path = write(tmp_path, {"controller": {"name": "GridController"}, "handlers": [{"name": "MMARHandler"},
                                                                                 {"name": "Nope"}]})
    with pytest.raises(ConfigError, match=r"handlers\[1\]\.name: unknown handler 'Nope'"):
        load_automl_config(path)


def test_byoc_class_is_imported_from_the_mmar(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "path", list(sys.path))
    root = tmp_path / "mmar"
    (root / "BYOC").mkdir(parents=True)
    (root / "BYOC" / "my_ctrl_s2.py").write_text("class MyController:\n    pass\n")
    path = write(tmp_path, {"controller": {"path": "my_ctrl_s2.MyController", "args": {"max_rounds": 3}}})
    spec = load_automl_config(path, root).controller
    cls = spec.load_class(root)
    assert cls.__name__ == "MyController" and cls.__module__ == "my_ctrl_s2"


def test_byoc_import_failures_are_config_errors(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "path", list(sys.path))
    root = tmp_path / "mmar"
    (root / "custom").mkdir(parents=True)
    (root / "custom" / "broken_s2.py").write_text("import does_not_exist_anywhere\n")
    (root / "custom" / "fine_s2.py").write_text("class Thing:\n    pass\n")
    for target, fragment in [("broken_s2.X", "No module named 'does_not_exist_anywhere'"),
                             ("fine_s2.Thng", "has no 'Thng' (did you mean 'Thing'?)"),
                             ("nowhere_s2.X", "cannot import module 'nowhere_s2'")]:
        spec = ComponentSpec("controller", None, target, {}, "controller", "c.json")
        with pytest.raises(ConfigError, match=re.escape(fragment)) as info:
            spec.load_class(root)
        assert info.value.json_path == "controller.path"


def test_registered_name_loads_its_class(tmp_path):
    spec = ComponentSpec("controller", "GridController", None, {}, "controller", "c.json")
    from mmar_automl.controllers.grid import GridController

    assert spec.load_class() is GridController


@pytest.mark.parametrize("data,where,fragment", [
    ({}, "<root>", "missing 'controller'"),
    ([], "<root>", "expected an object"),
    ({"controller": {"name": "GridController"}, "handler": []}, "handler", "did you mean 'handlers'"),
    ({"controller": {"args": {}}}, "controller", "needs \"name\""),
    ({"controller": {"name": "GridController", "args": [1]}}, "controller.args", "expected an object"),
    ({"controller": {"path": "no_dots"}}, "controller.path", "dotted 'module.Class'"),
    ({"controller": {"name": "GridController"}, "handlers": {"name": "StatsHandler"}}, "handlers", "expected a list"),
    ({"controller": {"name": "GridController", "arg": {}}}, "controller.arg", "did you mean 'args'"),
    ({"controller": {"name": ""}}, "controller.name", "must not be empty"),
    ({"controller": {"name": 7}}, "controller.name", "expected a string"),
])
def test_schema_errors_are_one_clear_line(tmp_path, data, where, fragment):
    with pytest.raises(ConfigError) as info:
        load_automl_config(write(tmp_path, data))
    assert info.value.json_path == where
    assert fragment in info.value.message
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("controller,where,hint", [
    ({"name": "OptunaController", "args": {"n_trail": 5}}, "controller.args.n_trail", "did you mean 'n_trials'"),
    ({"name": "ReinforcementController", "args": {"max_round": 3}}, "controller.args.max_round", "max_rounds"),
    ({"name": "GridController", "args": {"sampler": "tpe"}}, "controller.args.sampler", "its args"),
])
def test_args_a_builtin_controller_does_not_take_are_errors(tmp_path, controller, where, hint):
    path = tmp_path / "config_automl.json"
    path.write_text(json.dumps({"controller": controller}))
    with pytest.raises(ConfigError) as err:
        load_automl_config(path)
    assert err.value.json_path == where and hint in str(err.value)


def test_clara_extra_args_of_handlers_and_executor_still_load(tmp_path):
    path = tmp_path / "config_automl.json"
    path.write_text(json.dumps({
        "controller": {"name": "ReinforcementController", "args": {"max_rounds": 8}},
        "executor": {"name": "MMARExecutor", "args": {"msg_destination": "file", "remove_search_augs": True}},
        "handlers": [{"name": "MMARHandler", "args": {"work_dir": "/x", "key_mmar_content_only": True}}]}))
    assert load_automl_config(path).controller.args == {"max_rounds": 8}


def test_a_misspelt_handler_arg_is_named_in_its_note(tmp_path):
    """MMARHandler takes Clara's extra args, so a typo loads; its note says which arg was meant."""
    from mmar_automl.config.automl_config import no_effect_notes

    path = tmp_path / "config_automl.json"
    path.write_text(json.dumps({"controller": {"name": "RandomController"},
                                "handlers": [{"name": "MMARHandler", "args": {"num_mmar_to_keep": 3}}]}))
    notes = no_effect_notes(load_automl_config(path))
    assert notes == [f"{path}: handlers[0].args.num_mmar_to_keep is accepted and has no effect: MMARHandler does "
                     "not use it (did you mean 'num_mmars_to_keep'?)"]
