"""config/mmar.py and config/overrides.py: the one owner of an MMAR's files, environment, --set and
{VAR} (torch-free, fast)."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from mmar_automl.config.mmar import Mmar, referenced_variables, substitute
from mmar_automl.config.overrides import RunKeys, parse_overrides, split_json_path
from mmar_automl.errors import ConfigError, UsageError


def _mmar(root, config, env=None, automl=None):
    (root / "config").mkdir(parents=True)
    (root / "config" / "config_train.json").write_text(json.dumps(config))
    if env is not None:
        (root / "config" / "environment.json").write_text(json.dumps(env))
    if automl is not None:
        (root / "config" / "config_automl.json").write_text(json.dumps(automl))
    return root


CONFIG = {"epochs": 1, "learning_rate": 1e-3, "x": "{DATA_ROOT}/{epochs}", "ckpt": "{MMAR_CKPT}",
          "train": {"n": "{epochs}", "out": "{MMAR_CKPT_DIR}", "l": [0],
                    "model": {"name": "UNet", "args": {"channels": [4, 8]}}}}


def test_substitute_whole_strings_typed_and_inner_strings_formatted():
    variables = {"epochs": 3, "amp": True, "MMAR_CKPT_DIR": "/m/models", "sizes": [1, 2]}
    config = {"a": "{epochs}", "b": ["{amp}", "{MMAR_CKPT_DIR}/eval"], "c": {"d": "{sizes}"},
              "e": "{unknown}", "f": "#{'k': 1}", "g": 7}
    assert substitute(config, variables) == {"a": 3, "b": [True, "/m/models/eval"], "c": {"d": [1, 2]},
                                             "e": "{unknown}", "f": "#{'k': 1}", "g": 7}
    assert referenced_variables(config) == {"epochs", "amp", "MMAR_CKPT_DIR", "sizes", "unknown"}


def test_overrides_parse_json_or_keep_strings():
    assert parse_overrides(["a=2", "b=1e-4", "c=true", "d=[1,2]", "e=models/x", "f="]) == {
        "a": 2, "b": 1e-4, "c": True, "d": [1, 2], "e": "models/x", "f": ""}
    assert split_json_path("train.pre_transforms[5].args.x") == ["train", "pre_transforms", 5, "args", "x"]
    with pytest.raises(UsageError, match="--set 'epochs': expected KEY=VALUE"):
        parse_overrides(["epochs"])


def test_files_environment_and_where_things_go(tmp_path):
    root = _mmar(tmp_path / "m", CONFIG, {"DATA_ROOT": "data", "MMAR_CKPT_DIR": "ckpt"})
    mmar = Mmar.open(root)
    assert mmar.root == root.resolve()
    assert mmar.train_config_file == root / "config" / "config_train.json"
    assert mmar.automl_config_file == root / "config" / "config_automl.json" and not mmar.automl_config_given
    assert mmar.environment == {"DATA_ROOT": "data", "MMAR_CKPT_DIR": "ckpt"}  # as written: a job folder copies it
    assert mmar.ckpt_dir == root.resolve() / "ckpt"
    assert mmar.runs_dir == root.resolve() / "automl" and mmar.run_dir("r1") == root.resolve() / "automl" / "r1"
    assert mmar.label(mmar.train_config_file) == "config/config_train.json"
    conf = mmar.substituted_config()
    assert conf["x"] == f"{root.resolve()}/data/1" and conf["train"]["out"] == str(root.resolve() / "ckpt")
    assert conf["ckpt"] == "{MMAR_CKPT}"  # unknown variables stay: only a built component that uses one fails
    # without environment.json: models/, and MMAR_CKPT_DIR still a variable
    bare = Mmar.open(_mmar(tmp_path / "bare", CONFIG))
    assert bare.environment == {} and bare.ckpt_dir == (tmp_path / "bare").resolve() / "models"
    assert bare.substituted_config()["train"]["out"] == str((tmp_path / "bare").resolve() / "models")


def test_one_resolver_for_config_paths_from_the_command_line(tmp_path, monkeypatch):
    root = _mmar(tmp_path / "m", CONFIG)
    (root / "config" / "other.json").write_text(json.dumps({"epochs": 5}))
    # relative to the MMAR root when it does not exist from the current folder
    assert Mmar.open(root, "config/other.json").train_config["epochs"] == 5
    # relative to the current folder when it exists there
    monkeypatch.chdir(root / "config")
    assert Mmar.open(root, "other.json").train_config["epochs"] == 5
    # Clara's trainconf=NAME: relative to config/, never to the current folder's config/
    assert Mmar.open(root, overrides=["trainconf=other.json"]).train_config["epochs"] == 5
    (root / "config" / "config").mkdir()
    (root / "config" / "config" / "other.json").write_text(json.dumps({"epochs": 6}))
    assert Mmar.open(root, overrides=["trainconf=other.json"]).train_config["epochs"] == 5
    with pytest.raises(UsageError, match="trainconf=other.json and --train-config .* name different files"):
        Mmar.open(root, str(root / "config" / "config_train.json"), overrides=["trainconf=other.json"])
    with pytest.raises(ConfigError, match=r"^config/none\.json: file not found$"):
        Mmar.open(root, "config/none.json")
    with pytest.raises(ConfigError, match="MMAR root is not a folder"):
        Mmar.open(tmp_path / "nope")


def test_set_writes_values_in_by_one_rule(tmp_path):
    root = _mmar(tmp_path / "m", CONFIG, {"DATA_ROOT": "data", "MMAR_CKPT_DIR": "models"})
    mmar = Mmar.open(root, overrides=["epochs=4", "DATA_ROOT=/abs", "train.model.args.channels=[2,4]",
                                      "train.model.args.strides=[2]", "MMAR_CKPT_DIR=ckpt", "use_gpu=false"])
    assert mmar.train_config["epochs"] == 4 and mmar.train_config["use_gpu"] is False
    assert mmar.train_config["train"]["model"]["args"] == {"channels": [2, 4], "strides": [2]}  # a new arg is fine
    assert mmar.environment == {"DATA_ROOT": "/abs", "MMAR_CKPT_DIR": "ckpt"}
    assert "DATA_ROOT" not in mmar.train_config  # an environment key stays out of the config
    assert mmar.ckpt_dir == root.resolve() / "ckpt"
    assert mmar.substituted_config()["x"] == "/abs/4"
    assert mmar.overrides == {"epochs": 4, "DATA_ROOT": "/abs", "train.model.args.channels": [2, 4],
                              "train.model.args.strides": [2], "MMAR_CKPT_DIR": "ckpt", "use_gpu": False}
    # the file on disk is untouched; Clara's environment keys can be set where the file lacks them (a path
    # variable is relative to the root), and so can a variable the config only refers to
    assert json.loads((root / "config" / "config_train.json").read_text()) == CONFIG
    ckpt = Mmar.open(root, overrides=["MMAR_CKPT=models/a.pt"])
    assert ckpt.substituted_config()["ckpt"] == str(root.resolve() / "models" / "a.pt")
    assert ckpt.environment["MMAR_CKPT"] == "models/a.pt" and "MMAR_CKPT" not in ckpt.train_config
    (root / "config" / "config_train.json").write_text(json.dumps({**CONFIG, "y": "{FOLD}"}))
    assert Mmar.open(root, overrides=["FOLD=3"]).substituted_config()["y"] == 3
    # already-parsed values (a run's journal) go in the same way
    assert Mmar.open(root, overrides={"epochs": 7}).train_config["epochs"] == 7


def test_documented_trainer_switches_can_be_set_where_the_config_lacks_them(tmp_path):
    """docs/training.md and a job's own note say `--set final_validation=false`: the key is the trainer's."""
    root = _mmar(tmp_path / "m", CONFIG)
    assert Mmar.open(root, overrides=["final_validation=false"]).train_config["final_validation"] is False


@pytest.mark.parametrize("item,message", [
    ("epoch=2", r"--set epoch: not a key of config/config_train.json or environment.json \(did you mean 'epochs'\?\)"),
    ("DATA_RUT=x", r"did you mean 'DATA_ROOT'\?"),
    ("train.modle.args.x=1", r"config/config_train.json: train\.modle: --set train\.modle\.args\.x: no such key in "
                             r"the config \(did you mean 'model'\?\)"),
    ("train.model.nmae=UNet", r"train\.model\.nmae: --set train\.model\.nmae: no such key in the config \(did you mean 'name'\?\)"),
    ("train.l[99]=1", r"train\.l\[99\]: --set train\.l\[99\]: no such list item"),
    ("train.n.x=1", r"train\.n: --set train\.n\.x: not an object|no such key"),
])
def test_unknown_keys_are_exit_2_with_a_suggestion(tmp_path, item, message):
    root = _mmar(tmp_path / "m", CONFIG, {"DATA_ROOT": "data"})
    with pytest.raises((ConfigError, UsageError), match=message) as err:
        Mmar.open(root, overrides=[item])
    assert err.value.exit_code == 2 and "\n" not in str(err.value)


def test_clara_run_keys_are_options_not_config_values(tmp_path, caplog):
    root = _mmar(tmp_path / "m", CONFIG)
    mmar = Mmar.open(root, overrides=["run_id=a", "workers=0:0", "traceout=both", "epochs=2"])
    assert mmar.run_keys == RunKeys(run_id="a", workers="0:0", traceout="both")
    assert mmar.overrides == {"epochs": 2} and "run_id" not in mmar.train_config
    assert any("traceout=both: has no effect" in r.getMessage() for r in caplog.records)


def test_bad_json_and_duplicate_keys_are_one_line(tmp_path):
    root = _mmar(tmp_path / "m", CONFIG)
    env = root / "config" / "environment.json"
    for text, message in (('{"a": 1,}', r"^config/environment\.json: invalid JSON at line 1 column 9"),
                          ('{"a": 1, "a": 2}', r"^config/environment\.json: a: duplicate key 'a'"),
                          ('{"a": NaN}', r"NaN is not a JSON number"),
                          ('[1]', r"expected a JSON object at the top level, got list")):
        env.write_text(text)
        with pytest.raises(ConfigError, match=message):
            Mmar.open(root)


def test_mmar_module_and_train_command_import_no_heavy_library():
    code = ("import sys, mmar_automl.config.mmar, mmar_automl.run.outputs, mmar_automl.cli.train, "
            "mmar_automl.train.run; "
            "print(sorted(m for m in ('torch', 'monai', 'mlflow', 'optuna', 'ignite') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_a_searched_key_cannot_be_fixed_by_any_of_its_spellings(clara_mmar):
    from mmar_automl.config.overrides import check_not_searched
    from mmar_automl.search import parse_search_space

    for train, key in (("PyTorch__trn_autoML_Enum.json", "train.model.args.channels"),
                       ("PyTorch__trn_autoML_Transform.json", "train.pre_transforms[8].disabled"),
                       ("Tensorflow-Deprecated__trn_autoML_LR_LP.json", "learning_rate")):
        root = clara_mmar(train, name=train)
        mmar = Mmar.open(root)
        space = parse_search_space(mmar.train_config, "config_train.json")
        with pytest.raises(UsageError, match=f"--set {re.escape(key)}: this key is searched"):
            check_not_searched({key: 1}, space, "config_train.json")
    check_not_searched({"train.model.args.in_channels": 1, "epochs": 2}, space, "config_train.json")  # not searched


def test_a_train_config_named_as_trainconf_names_it_gets_a_hint(tmp_path, monkeypatch):
    """``--train-config other.json`` is relative to the current folder or the MMAR root; Clara's
    ``trainconf`` is relative to config/. Given the config/ name, the error says where the file is."""
    root = _mmar(tmp_path / "m", CONFIG)
    (root / "config" / "other.json").write_text(json.dumps({"epochs": 5}))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=re.escape(
            "other.json: file not found (there is config/other.json: --train-config config/other.json, "
            "or Clara's --set trainconf=other.json)")):
        Mmar.open(root, "other.json")
    with pytest.raises(ConfigError, match=r"^none\.json: file not found$"):
        Mmar.open(root, "none.json")
