"""mmar.py: environment.json, --set and {VAR} substitution (torch-free, fast)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from mmar_automl.errors import ConfigError
from mmar_automl.config.mmar import load_train_config, open_mmar, parse_overrides, read_json, split_json_path, substitute


def test_substitute_whole_strings_typed_and_inner_strings_formatted():
    variables = {"epochs": 3, "amp": True, "MMAR_CKPT_DIR": "/m/models", "sizes": [1, 2]}
    config = {"a": "{epochs}", "b": ["{amp}", "{MMAR_CKPT_DIR}/eval"], "c": {"d": "{sizes}"},
              "e": "{unknown}", "f": "#{'k': 1}", "g": 7}
    assert substitute(config, variables) == {"a": 3, "b": [True, "/m/models/eval"], "c": {"d": [1, 2]},
                                             "e": "{unknown}", "f": "#{'k': 1}", "g": 7}


def test_overrides_parse_json_or_keep_strings():
    assert parse_overrides(["a=2", "b=1e-4", "c=true", "d=[1,2]", "e=models/x", "f="]) == {
        "a": 2, "b": 1e-4, "c": True, "d": [1, 2], "e": "models/x", "f": ""}
    assert split_json_path("train.pre_transforms[5].args.x") == ["train", "pre_transforms", 5, "args", "x"]


def test_environment_paths_relative_to_root_and_set_overrides_both(tmp_path):
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "config_train.json").write_text(json.dumps(
        {"epochs": 1, "x": "{DATA_ROOT}/{epochs}", "train": {"n": "{epochs}", "ckpt": "{MMAR_CKPT_DIR}", "l": [0]}}))
    (tmp_path / "config" / "environment.json").write_text(json.dumps({"DATA_ROOT": "data", "MMAR_CKPT_DIR": "out"}))
    mmar = open_mmar(tmp_path)
    assert mmar.ckpt_dir == tmp_path.resolve() / "out"
    conf, _ = load_train_config(mmar, {"epochs": 4, "DATA_ROOT": "/abs"})
    assert conf["train"] == {"n": 4, "ckpt": str(tmp_path.resolve() / "out"), "l": [0]}
    assert conf["x"] == "/abs/4" and "DATA_ROOT" not in conf  # an environment key stays out of the config
    with pytest.raises(ConfigError, match=r"train\.l\[99\]: --set train\.l\[99\]: no such list item"):
        load_train_config(mmar, {"train.l[99]": 1})
    with pytest.raises(ConfigError, match=r"train\.m: --set train\.m\.x: no such key"):
        load_train_config(mmar, {"train.m.x": 1})


def test_bad_json_and_duplicate_keys_are_one_line(tmp_path):
    bad = tmp_path / "a.json"
    bad.write_text('{"a": 1,}')
    with pytest.raises(ConfigError, match=r"a\.json: invalid JSON at line 1"):
        read_json(bad)
    bad.write_text('{"a": 1, "a": 2}')
    with pytest.raises(ConfigError, match="duplicate key 'a'"):
        read_json(bad)
    with pytest.raises(ConfigError, match="MMAR root is not a folder"):
        open_mmar(tmp_path / "nope")


def test_mmar_module_and_train_command_import_no_heavy_library():
    code = ("import sys, mmar_automl.config.mmar, mmar_automl.cli.train, mmar_automl.train.run; "
            "print(sorted(m for m in ('torch', 'monai', 'mlflow', 'optuna', 'ignite') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
