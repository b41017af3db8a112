"""render_config: on Clara's files, and hypothesis properties over generated configs and points."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mmar_automl.config.jsonfile import load_json
from mmar_automl.search import parse_search_space, render_config
from mmar_automl.search.render import config_value
from mmar_automl.search.space import EnumDimension


def test_loss_optimizer_point_switches_exactly_one_loss(clara_dir):
    cfg = load_json(clara_dir / "PyTorch__trn_autoML_Loss_Optimizer.json")
    before = copy.deepcopy(cfg)
    space = parse_search_space(cfg)
    out = render_config(cfg, space, {"mySearchLoss1,mySearchLoss2": [False, True],
                                     "mySearchOptimizer1,mySearchOptimizer2": [True, False]})
    assert cfg == before                      # input untouched
    assert [loss["disabled"] for loss in out["train"]["loss"]] == [False, True]
    assert [opt["disabled"] for opt in out["train"]["optimizer"]] == [True, False]
    assert "search" not in out and all("apply" not in c for c in out["train"]["loss"] + out["train"]["optimizer"])
    assert out["train"]["loss"][0]["args"] == before["train"]["loss"][0]["args"]


def test_lr_lp_alias_value_reaches_both_transforms(clara_dir):
    cfg = load_json(clara_dir / "Tensorflow-Deprecated__trn_autoML_LR_LP.json")
    space = parse_search_space(cfg)
    out = render_config(cfg, space, {"learning_rate": 0.0005, "lr_policy.poly_power": 0.95, "myProb": 0.15})
    assert out["learning_rate"] == 0.0005
    assert out["train"]["lr_policy"]["args"]["poly_power"] == 0.95
    assert out["train"]["pre_transforms"][8]["args"]["probability"] == 0.15
    assert out["train"]["pre_transforms"][9]["args"]["probability"] == 0.15
    assert "search" not in out["train"]["lr_policy"] and "apply" not in out["train"]["pre_transforms"][9]


def test_enum_file_list_valued_choice(clara_dir):
    cfg = load_json(clara_dir / "PyTorch__trn_autoML_Enum.json")
    space = parse_search_space(cfg)
    point = {"lr_scheduler.step_size": [1000], "model.channels": [[8, 16, 32, 64, 128]], "model.norm": ["INSTANCE"]}
    out = render_config(cfg, space, point)
    assert out["train"]["model"]["args"]["channels"] == [8, 16, 32, 64, 128]
    assert out["train"]["model"]["args"]["norm"] == "INSTANCE"
    assert out["train"]["lr_scheduler"]["args"]["step_size"] == 1000
    point["model.channels"][0].append(256)     # the rendered config does not share lists with the point
    assert out["train"]["model"]["args"]["channels"] == [8, 16, 32, 64, 128]


def test_legacy_lr_search_is_removed(clara_dir):
    cfg = {"learning_rate": 0.1, "lr_search": [0.01, 0.1], "train": {}}
    space = parse_search_space(cfg)
    assert render_config(cfg, space, {"learning_rate": 0.05}) == {"learning_rate": 0.05, "train": {}}


def test_point_outside_the_space_is_refused(clara_dir):
    cfg = load_json(clara_dir / "PyTorch__trn_autoML_Enum.json")
    space = parse_search_space(cfg)
    with pytest.raises(ValueError):
        render_config(cfg, space, {"lr_scheduler.step_size": [7], "model.channels": [[8]], "model.norm": ["batch"]})
    with pytest.raises(ValueError):
        render_config(cfg, space, {})


# --- properties over generated configs -------------------------------------------------------------------

ARGS = ["alpha", "beta", "gamma", "delta"]
values = st.one_of(st.integers(-3, 3), st.sampled_from(["a", "b", "c"]), st.booleans(),
                   st.lists(st.integers(0, 4), max_size=3))


@st.composite
def configs(draw) -> tuple[dict[str, Any], dict[str, list[tuple[tuple, int]]]]:
    """A config_train.json with search blocks, and where each dimension (by PRL) must be written:
    ``{prl: [(location of the value, index in the choice)]}``. Worked out here, apart from parse.py."""
    cfg: dict[str, Any] = {"epochs": 1, "lr": 0.5, "train": {"items": []}}
    expected: dict[str, list[tuple[tuple, int]]] = {}
    comps: list[tuple[tuple, dict[str, Any]]] = []
    for c in range(draw(st.integers(1, 4))):
        names = draw(st.lists(st.sampled_from(ARGS), min_size=1, max_size=3, unique=True))
        comp: dict[str, Any] = {"name": f"C{c}", "args": {a: draw(values) for a in names}}
        if draw(st.booleans()):
            path: tuple = ("train", "items", len(cfg["train"]["items"]))
            cfg["train"]["items"].append(comp)
        else:
            path = ("train", f"comp{c}")
            cfg["train"][f"comp{c}"] = comp
        comps.append((path, comp))
        entries = []
        searched = draw(st.lists(st.sampled_from(names), unique=True, max_size=len(names)))
        if searched and draw(st.booleans()):
            low = draw(st.floats(-10, 10))
            entries.append({"domain": "net", "type": "float", "args": searched,
                            "targets": [low, low + draw(st.floats(0, 10))]})
            locs = [((*path, "args", a), 0) for a in searched]
        elif searched:
            choices = draw(st.lists(st.lists(values, min_size=len(searched), max_size=len(searched)),
                                    min_size=1, max_size=3, unique_by=json.dumps))
            entries.append({"domain": "net", "type": "enum", "args": searched, "targets": choices})
            locs = [((*path, "args", a), i) for i, a in enumerate(searched)]
        if searched:
            prl = f"net.{entries[0]['type']}.{_fmt(path)}$0:{','.join(searched)}"
            expected[prl] = locs
        if draw(st.booleans()):
            entries.append({"domain": "transform", "type": "enum", "args": ["@disabled"], "targets": [[True], [False]]})
            expected[f"transform.enum.{_fmt(path)}${len(entries) - 1}:@disabled"] = [((*path, "disabled"), 0)]
        if entries:
            comp["search"] = entries
    top = []
    free = [(p, c) for p, c in comps if not any(e["args"] == ["@disabled"] for e in c.get("search", []))]
    if free and draw(st.booleans()):              # a free variable switching components (two args: exclusive)
        users = draw(st.lists(st.sampled_from(range(len(free))), min_size=1, unique=True))
        two = len(users) >= 2
        top.append({"domain": "transform", "type": "enum", "args": ["@on", "off"] if two else ["on"],
                    "targets": [[True, False], [False, True]] if two else [[True], [False]]})
        locs = []
        for n, k in enumerate(users):
            var, index = ("on", 0) if n % 2 == 0 else ("@off", 1)
            free[k][1]["apply"] = {"@disabled": var}
            locs.append(((*free[k][0], "disabled"), index))
        expected["transform.enum.$0:@on,off" if two else "transform.enum.$0:on"] = locs
    if draw(st.booleans()):                       # a first-level key
        top.append({"domain": "lr", "type": "float", "args": ["lr"], "targets": [0.1, 1.0]})
        expected[f"lr.float.${len(top) - 1}:lr"] = [(("lr",), 0)]
    if top:
        cfg["search"] = top
    return cfg, expected


def _fmt(path: tuple) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else ("." if out else "") + p
    return out


def _get(cfg: Any, loc: tuple) -> Any:
    for part in loc:
        cfg = cfg[part]
    return cfg


def _without_markers(node: Any) -> Any:
    # Generated arg names are never "search"/"apply", so every such key is a marker here.
    if isinstance(node, dict):
        return {k: _without_markers(v) for k, v in node.items() if k not in ("search", "apply")}
    if isinstance(node, list):
        return [_without_markers(v) for v in node]
    return node


def _keys(node: Any) -> set[str]:
    if isinstance(node, dict):
        return set(node).union(*(_keys(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(_keys(v) for v in node))
    return set()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(generated=configs(), data=st.data())
def test_render_properties(generated, data):
    cfg, expected = generated
    before = copy.deepcopy(cfg)
    space = parse_search_space(cfg)
    # parse found exactly the dimensions and consumer locations the generator put there
    assert {d.prl for d in space} == set(expected)
    point = {}
    for dim in space:
        if isinstance(dim, EnumDimension):
            point[dim.name] = list(data.draw(st.sampled_from(dim.choices)))
        else:
            point[dim.name] = data.draw(st.floats(dim.low, dim.high))
    out = render_config(cfg, space, point)

    assert cfg == before                                     # the input is untouched
    assert not {"search", "apply"} & _keys(out)              # no marker left
    want = _without_markers(before)
    for dim in space:
        for loc, index in expected[dim.prl]:
            value = point[dim.name][index] if isinstance(dim, EnumDimension) else point[dim.name]
            assert _get(out, loc) == value                   # each value at each of its locations
            parent = _get(want, loc[:-1])
            parent[loc[-1]] = value
    assert out == want                                       # everything else equal to the input
    for dim in space:                                        # config_value reads back what render wrote
        got = config_value(out, dim)
        if isinstance(dim, EnumDimension):                   # (two choices may hold the same values)
            assert got is not None and [got[c.index] for c in dim.consumers] == \
                [point[dim.name][c.index] for c in dim.consumers]
        else:
            assert got == point[dim.name]


def test_inactive_dimensions_may_be_missing_but_active_ones_may_not():
    from mmar_automl.search import parse_search_space, render_config

    config = {
        "search": [{"domain": "loss", "type": "enum", "args": ["offA", "offB"], "targets": [[False, True], [True, False]]}],
        "train": {"loss": [
            {"name": "DiceLoss", "args": {"smooth": 1e-5}, "apply": {"@disabled": "offA"},
             "search": [{"domain": "loss", "type": "float", "args": ["smooth"], "targets": [1e-6, 1e-4]}]},
            {"name": "FocalLoss", "args": {"gamma": 2.0}, "apply": {"@disabled": "offB"},
             "search": [{"domain": "loss", "type": "float", "args": ["gamma"], "targets": [1.0, 3.0]}]},
        ]},
    }
    space = parse_search_space(config)
    # FocalLoss disabled: its gamma is inactive and may be left out; it keeps the config's value
    point = {"offA,offB": [False, True], "DiceLoss.smooth": 5e-5}
    rendered = render_config(config, space, point)
    assert rendered["train"]["loss"][1] == {"name": "FocalLoss", "args": {"gamma": 2.0}, "disabled": True}
    assert rendered["train"]["loss"][0]["args"]["smooth"] == 5e-5
    # DiceLoss enabled: its smooth is active and must be there
    with pytest.raises(ValueError, match="DiceLoss.smooth"):
        render_config(config, space, {"offA,offB": [False, True]})


def test_config_value_is_what_a_job_runs_with_when_the_dimension_is_not_searched():
    from mmar_automl.search import markers as mk

    config = {"learning_rate": 0.001, "epochs": 7,
              "search": [{"domain": "lr", "type": "float", "args": ["learning_rate"], "targets": [1e-5, 1e-2]},
                         {"domain": "x", "type": "int", "args": ["epochs"], "targets": [1, 5]},
                         {"domain": "loss", "type": "enum", "args": ["offA", "offB"],
                          "targets": [[False, True], [True, False]]}],
              "train": {"loss": [{"name": "DiceLoss", "args": {}, "apply": {"@disabled": "offA"}},
                                 {"name": "FocalLoss", "args": {"gamma": 2.0}, "disabled": True,
                                  "apply": {"@disabled": "offB"},
                                  "search": [{"domain": "loss", "type": "float", "args": ["gamma"],
                                              "targets": [1.0, 3.0]}]}]}}
    space = parse_search_space(config)
    assert config_value(config, space["learning_rate"]) == 0.001
    assert config_value(config, space["epochs"]) is None                  # 7: outside [1, 5]
    assert config_value(config, space["offA,offB"]) == [False, True]      # Dice on, Focal disabled
    assert config_value(config, space["FocalLoss.gamma"]) == 2.0
    bundle = {"optimizer": {"_target_": "torch.optim.Adam", "lr": 0.01,
                            "search": [{"domain": "lr", "type": "float", "args": ["lr"], "targets": [1e-4, 0.1]}]}}
    bspace = parse_search_space(bundle, dialect=mk.BUNDLE)
    assert [config_value(bundle, d, mk.BUNDLE) for d in bspace] == [0.01]
    assert [config_value({"optimizer": {"_target_": "x"}}, d, mk.BUNDLE) for d in bspace] == [None]
