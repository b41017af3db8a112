"""`validate` refuses what `run` refuses, with the same one line and exit 2, before anything is created
(issue 13): environment.json that is not JSON, a controller arg of the wrong type, a `path` that cannot be
imported, a misspelt top-level key, NaN in a config; and it warns when jobs would never validate."""

from __future__ import annotations

import json

import pytest

from mmar_automl.cli import main

AUTOML = {"controller": {"name": "ReinforcementController", "args": {"max_rounds": 8}},
          "handlers": [{"name": "MMARHandler", "args": {"num_mmars_to_keep": 2}}]}


def _env_not_json(root):
    (root / "config" / "environment.json").write_text('{\n  "DATA_ROOT": "data",\n  "DATASET_JSON": data/dataset.json\n}')


def _wrong_arg_type(root):
    _automl(root, {**AUTOML, "controller": {"name": "ReinforcementController", "args": {"max_rounds": "ten"}}})


def _unimportable_handler(root):
    _automl(root, {**AUTOML, "handlers": [{"path": "no_such_module_s13.MyHandler"}]})


def _executor_of_another_kind(root):
    (root / "custom").mkdir()
    (root / "custom" / "my_exec_s13.py").write_text("class MyExecutor:\n    pass\n")
    _automl(root, {**AUTOML, "executor": {"path": "my_exec_s13.MyExecutor"}})


def _misspelt_key(root):
    _automl(root, {"controler": AUTOML["controller"]})


def _nan_in_train_config(root):
    path = root / "config" / "config_train.json"
    path.write_text(path.read_text().replace('"learning_rate": 2e-4', '"learning_rate": NaN', 1))


def _misspelt_train_section(root):
    path = root / "config" / "config_train.json"
    config = json.loads(path.read_text())
    config["trian"] = config.pop("train")   # every job would fail on "train: missing"
    path.write_text(json.dumps(config))


def _automl(root, data):
    (root / "config" / "config_automl.json").write_text(json.dumps(data, indent=2))


CASES = [
    (_env_not_json, r"config/environment\.json: invalid JSON at line 3 column 19: Expecting value"),
    (_wrong_arg_type, r"config_automl\.json: controller\.args\.max_rounds: ReinforcementController: max_rounds must be "
                      r"int, got \"ten\""),
    (_unimportable_handler, r"config_automl\.json: handlers\[0\]\.path: cannot import module 'no_such_module_s13'"),
    (_executor_of_another_kind, r"config_automl\.json: executor: MyExecutor must subclass mmar_automl\.run\.executor\.MMARExecutor"),
    (_misspelt_key, r"config_automl\.json: controler: unknown key 'controler' \(did you mean 'controller'\?\)"),
    (_nan_in_train_config, r"config_train\.json: invalid JSON at line 8 column 20: NaN is not a JSON number"),
    (_misspelt_train_section, r"config_train\.json: train: missing: a Clara 4\.x config needs a train section "
                              r"\(did you mean 'trian'\?\)"),
]


@pytest.fixture
def mmar(clara_mmar):
    root = clara_mmar("PyTorch__trn_autoML_Enum.json")
    _automl(root, AUTOML)
    (root / "config" / "environment.json").write_text(json.dumps({"DATA_ROOT": "data", "DATASET_JSON": "data/d.json"}))
    return root


@pytest.mark.parametrize(("breaker", "message"), CASES, ids=[c[0].__name__.strip("_") for c in CASES])
@pytest.mark.parametrize("command", ["validate", "run"])
def test_validate_refuses_what_run_refuses(mmar, capsys, breaker, message, command):
    import re

    breaker(mmar)
    extra = ["--workers", "cpu", "--no-mlflow"] if command == "run" else []
    code = main([command, str(mmar), *extra])
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert code == 2, (out, err)
    assert len(lines) == 1 and re.search(message, lines[0]), lines
    assert not (mmar / "automl").exists()


def test_nan_position_is_the_token(tmp_path):
    from mmar_automl.config.jsonfile import loads_json
    from mmar_automl.errors import ConfigError

    with pytest.raises(ConfigError, match="line 3 column 9: NaN"):
        loads_json('{\n  "a": "NaN in a string",\n  "lr": NaN\n}', "c.json")
    with pytest.raises(ConfigError, match="line 2 column 4: -Infinity"):
        loads_json('{"a": [1,\n   -Infinity]}', "c.json")


def test_value_types_follow_annotations_and_defaults(tmp_path):
    from mmar_automl.config.automl_config import load_automl_config
    from mmar_automl.errors import ConfigError

    path = tmp_path / "config_automl.json"
    ok = {"controller": {"name": "ReinforcementController", "args": {"max_rounds": 3, "init_sigma": 1}},
          "handlers": [{"name": "MMARHandler", "args": {"train_config_file": "{trainconf}", "stop_threshold": 1}}]}
    path.write_text(json.dumps(ok))
    assert load_automl_config(path, tmp_path).controller.args == {"max_rounds": 3, "init_sigma": 1}  # an int is a float
    for bad, where in [({"max_rounds": True}, "max_rounds"), ({"max_rounds": 2.5}, "max_rounds"),
                       ({"init_sigma": "0.5"}, "init_sigma")]:
        path.write_text(json.dumps({"controller": {"name": "ReinforcementController", "args": bad}}))
        with pytest.raises(ConfigError, match=rf"controller\.args\.{where}: ReinforcementController: {where} must be"):
            load_automl_config(path, tmp_path)


def test_warns_when_epochs_after_set_never_reach_the_interval(mmar, capsys):
    code = main(["validate", str(mmar), "--set", "epochs=19"])
    err = capsys.readouterr().err
    assert code == 0
    assert err.count("warning:") == 1 and "epochs 19 < validation interval 20" in err
    assert main(["validate", str(mmar), "--set", "epochs=20"]) == 0
    assert "warning" not in capsys.readouterr().err


def test_environment_path_that_is_not_a_string(mmar, capsys):
    (mmar / "config" / "environment.json").write_text(json.dumps({"DATA_ROOT": 3, "DATASET_JSON": "d.json"}))
    assert main(["validate", str(mmar)]) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.endswith("config/environment.json: DATA_ROOT: expected a path string, got 3")
