"""The grammar extensions (docs/search-space.md): ``"log": true`` on float/int entries, the ``int`` type
with ``[low, high]`` and an optional ``step``; parsed, checked, round-tripped, rendered and shown."""

from __future__ import annotations

import json

import pytest

from mmar_automl.errors import ConfigError
from mmar_automl.search import IntDimension, SearchSpace, parse_search_space, render_config
from mmar_automl.search.format import format_range
from mmar_automl.search.space import FloatDimension, dimension_from_json


def config(*entries: dict) -> dict:
    return {"learning_rate": 0.001, "batch_size": 4,
            "search": list(entries),
            "train": {"model": {"name": "UNet", "args": {"num_res_units": 2, "filters": 16}}}}


LOG_LR = {"domain": "lr", "type": "float", "args": ["learning_rate"], "targets": [1e-4, 1e-2], "log": True}
BATCH = {"domain": "net", "type": "int", "args": ["batch_size"], "targets": [2, 16], "step": 2}


def test_log_float_and_stepped_int_parse_and_round_trip():
    space = parse_search_space(config(LOG_LR, BATCH), "config/config_train.json")
    lr, batch = space["learning_rate"], space["batch_size"]
    assert isinstance(lr, FloatDimension) and lr.log and (lr.low, lr.high) == (1e-4, 1e-2)
    assert isinstance(batch, IntDimension) and list(batch.values) == [2, 4, 6, 8, 10, 12, 14, 16]
    assert batch.prl == "net.int.$0:batch_size" or batch.prl.startswith("net.int.")
    assert SearchSpace.from_json(json.loads(json.dumps(space.to_json()))) == space
    assert [d.name for d in space.ranges] == ["learning_rate", "batch_size"]


def test_int_log_without_step_and_step_not_reaching_high():
    entry = {"domain": "net", "type": "int", "args": ["filters"], "targets": [4, 256], "log": True}
    cfg = config()
    cfg["train"]["model"]["search"] = [entry, {"domain": "net", "type": "int", "args": ["num_res_units"],
                                               "targets": [1, 10], "step": 4}]
    space = parse_search_space(cfg)
    assert space["model.filters"].log and space["model.filters"].step == 1
    assert list(space["model.num_res_units"].values) == [1, 5, 9]   # 10 is off the grid, as in Optuna
    assert not space["model.num_res_units"].contains(10) and space["model.num_res_units"].contains(9)
    assert not space["model.num_res_units"].contains(5.0) and not space["model.num_res_units"].contains(True)


def test_a_clara_float_serialises_as_before_and_old_json_loads():
    """An old journal's float dimension has no "log" key: it loads as linear and writes back unchanged
    (resume compares the two spaces' JSON)."""
    old = {"type": "float", "prl": "lr.float.$0:learning_rate", "name": "learning_rate", "domain": "lr",
           "args": ["learning_rate"], "low": 0.0001, "high": 0.01,
           "consumers": [{"component": [], "arg": "learning_rate", "index": 0}]}
    dim = dimension_from_json(old)
    assert isinstance(dim, FloatDimension) and not dim.log
    assert dim.to_json() == old
    parsed = parse_search_space(config({**LOG_LR, "targets": [0.0001, 0.01], "log": False}))
    assert parsed["learning_rate"].to_json() == old


def test_render_writes_ints_as_ints():
    space = parse_search_space(config(LOG_LR, BATCH))
    out = render_config(config(LOG_LR, BATCH), space, {"learning_rate": 0.00031, "batch_size": 6})
    text = json.dumps(out)
    assert '"batch_size": 6,' in text and "search" not in out
    with pytest.raises(ValueError):
        render_config(config(LOG_LR, BATCH), space, {"learning_rate": 0.001, "batch_size": 5})   # off the step


def test_format_range_shows_the_scale():
    space = parse_search_space(config(LOG_LR, BATCH)).to_json()["dimensions"]
    assert [format_range(d) for d in space] == ["[0.0001, 0.01] log", "[2, 16] step 2"]


@pytest.mark.parametrize("entry,where,fragment", [
    ({**LOG_LR, "targets": [0, 1e-2]}, "search[0].targets[0]", "log-scale range needs min > 0"),
    ({**LOG_LR, "targets": [-1, 1e-2]}, "search[0].targets[0]", "log-scale range needs min > 0"),
    ({**LOG_LR, "log": "yes"}, "search[0].log", "'log' takes true or false"),
    ({**BATCH, "targets": [2, 16.5]}, "search[0].targets[1]", "an int range needs integers, got 16.5"),
    ({**BATCH, "targets": [2.0, 16]}, "search[0].targets[0]", "(write 2)"),
    ({**BATCH, "targets": ["2", 16]}, "search[0].targets[0]", "an int range needs integers"),
    ({**BATCH, "targets": [16, 2]}, "search[0].targets", "an int range needs min <= max"),
    ({**BATCH, "targets": [2]}, "search[0].targets", "an int range needs exactly [min, max]"),
    ({**BATCH, "step": 0}, "search[0].step", "'step' must be a positive integer, got 0"),
    ({**BATCH, "step": -2}, "search[0].step", "'step' must be a positive integer"),
    ({**BATCH, "step": 1.5}, "search[0].step", "'step' must be a positive integer"),
    ({**BATCH, "log": True}, "search[0].step", "cannot go with 'log'"),
    ({**LOG_LR, "step": 2}, "search[0].step", "'step' is for int ranges"),
    ({"domain": "net", "type": "enum", "args": ["batch_size"], "targets": [[2], [4]], "log": True},
     "search[0].log", "not enum choices"),
    ({**LOG_LR, "lgo": True}, "search[0].lgo", "did you mean 'log'"),
    ({**BATCH, "type": "integer"}, "search[0].type", "expected 'float', 'int' or 'enum'"),
])
def test_errors_name_file_and_path(entry, where, fragment):
    with pytest.raises(ConfigError) as info:
        parse_search_space(config(entry), "config/config_train.json")
    assert info.value.file == "config/config_train.json"
    assert info.value.json_path == where
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)


def test_int_dimension_cannot_be_applied_to_disabled():
    cfg = config({"domain": "net", "type": "int", "args": ["@nOff"], "targets": [0, 1]})
    cfg["train"]["model"]["apply"] = {"@disabled": "nOff"}
    with pytest.raises(ConfigError, match="is an int range"):
        parse_search_space(cfg)


def test_value_class_checks():
    with pytest.raises(ValueError, match="low > 0"):
        FloatDimension("p", "x", "x", ("x",), 0.0, 1.0, log=True)
    with pytest.raises(ValueError, match="integers"):
        IntDimension("p", "n", "x", ("n",), 0, 1.5)
    with pytest.raises(ValueError, match="step"):
        IntDimension("p", "n", "x", ("n",), 1, 9, step=2, log=True)
