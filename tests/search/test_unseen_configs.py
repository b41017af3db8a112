"""A reviewer's configs that the grammar tests did not see: valid ones mixing constructs (names, PRLs,
consumers, grid and a rendered point each) and malformed ones that used to pass silently or crash."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from mmar_files import make_mmar
from mmar_automl.cli import main
from mmar_automl.search import EnumDimension, parse_search_space, render_config


def E(domain: str, type_: str, args: Any, targets: Any) -> dict[str, Any]:
    return {"domain": domain, "type": type_, "args": args, "targets": targets}


BASE: dict[str, Any] = {
    "epochs": 2, "learning_rate": 1e-4, "amp": True,
    "train": {
        "loss": {"name": "DiceLoss", "args": {"to_onehot_y": True, "softmax": True}},
        "optimizer": {"name": "Adam", "args": {"params": "#@model.parameters()", "lr": "{learning_rate}"}},
        "lr_scheduler": {"name": "StepLR", "args": {"optimizer": "@optimizer", "step_size": 5000, "gamma": 0.1}},
        "model": {"name": "UNet", "args": {"channels": [16, 32, 64], "strides": [2, 2], "num_res_units": 2,
                                           "norm": "batch", "dropout": 0.0}},
        "pre_transforms": [
            {"name": "LoadImaged", "args": {"keys": ["image", "label"]}},
            {"name": "Spacingd", "args": {"keys": ["image", "label"], "pixdim": [1.0, 1.0, 1.0],
                                          "mode": ["bilinear", "nearest"]}},
            {"name": "ScaleIntensityRanged", "args": {"keys": "image", "a_min": -57, "a_max": 164, "b_min": 0.0}},
            {"name": "RandFlipd", "args": {"keys": ["image", "label"], "prob": 0.5, "spatial_axis": 0}},
            {"name": "RandFlipd", "args": {"keys": ["image", "label"], "prob": 0.5, "spatial_axis": 1}},
            {"name": "RandShiftIntensityd", "args": {"keys": "image", "offsets": 0.1, "prob": 0.5}},
        ],
        "dataloader": {"name": "DataLoader", "args": {"dataset": "@dataset", "batch_size": 2, "shuffle": True}},
    },
    "validate": {
        "pre_transforms": [{"ref": "LoadImaged"}, {"ref": "Spacingd"},
                           {"name": "ScaleIntensityRanged", "args": {"keys": "image", "a_min": -57, "a_max": 164}}],
        "inferer": {"name": "SlidingWindowInferer", "args": {"roi_size": [96, 96, 96], "sw_batch_size": 4}},
        "model": {"name": "UNet", "args": {"channels": [16, 32, 64]}},
    },
}


def cfg_with(*edits: tuple[str, Any]) -> dict[str, Any]:
    """BASE with each (dotted path, value) set; ints index lists, ``+N`` inserts at N."""
    cfg = copy.deepcopy(BASE)
    for path, value in edits:
        *parents, last = path.split(".")
        node: Any = cfg
        for p in parents:
            node = node[int(p)] if isinstance(node, list) else node[p]
        if last.startswith("+"):
            node.insert(int(last[1:]), value)
        elif isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value
    return cfg


PT = "train.pre_transforms"
DISABLE = [[True], [False]]

# name -> (config, [(readable name, PRL, [consumer "component/path:arg[index]", ...])], grid size)
VALID: dict[str, tuple[dict[str, Any], list[tuple[str, str, list[str]]], int]] = {
    "search_in_nested_components": (cfg_with(
        ("train.loss", {"name": "MaskedLoss", "args": {"loss": {
            "name": "DiceLoss", "args": {"smooth_nr": 1e-5, "smooth_dr": 1e-5},
            "search": [E("loss", "float", ["smooth_nr", "smooth_dr"], [1e-6, 1e-4])]}}}),
        (f"{PT}.+3", {"name": "OneOf", "args": {"transforms": [
            {"name": "RandGaussianNoised", "args": {"prob": 0.1}, "search": [E("t", "enum", ["prob"], [[0.1], [0.3]])]},
            {"name": "RandAdjustContrastd", "args": {"gamma": [0.5, 1.5]},
             "search": [E("t", "enum", ["gamma"], [[[0.5, 1.5]], [[0.8, 1.2]]])]}]}})), [
        ("loss.smooth_nr,smooth_dr", "loss.float.train.loss.args.loss$0:smooth_nr,smooth_dr",
         ["train/loss/args/loss:smooth_nr[0]", "train/loss/args/loss:smooth_dr[0]"]),
        ("RandGaussianNoised.prob", "t.enum.train.pre_transforms[3].args.transforms[0]$0:prob",
         ["train/pre_transforms/3/args/transforms/0:prob[0]"]),
        ("RandAdjustContrastd.gamma", "t.enum.train.pre_transforms[3].args.transforms[1]$0:gamma",
         ["train/pre_transforms/3/args/transforms/1:gamma[0]"])], 4),
    "lists_of_lists": (cfg_with(
        (f"{PT}.1.search", [E("t", "enum", ["pixdim", "mode"], [[[1.0, 1.0, 1.0], ["bilinear", "nearest"]],
                                                                 [[1.5, 1.5, 2.0], ["nearest", "nearest"]]])]),
        ("train.groups", [[{"name": "RandFlipd", "args": {"prob": 0.2}, "search": [E("t", "float", "prob", [0, 1])]}],
                          [{"name": "RandFlipd", "args": {"prob": 0.2}, "search": [E("t", "float", "prob", [0, .5])]}]])), [
        ("Spacingd.pixdim,mode", "t.enum.train.pre_transforms[1]$0:pixdim,mode",
         ["train/pre_transforms/1:pixdim[0]", "train/pre_transforms/1:mode[1]"]),
        ("groups[0][0].prob", "t.float.train.groups[0][0]$0:prob", ["train/groups/0/0:prob[0]"]),
        ("groups[1][0].prob", "t.float.train.groups[1][0]$0:prob", ["train/groups/1/0:prob[0]"])], 2),
    "several_entries_float_and_enum_on_one_component": (cfg_with(
        ("train.model.search", [E("net", "enum", ["channels"], [[[16, 32, 64]], [[8, 16, 32]], [[32, 64, 128]]]),
                                E("net", "enum", ["norm"], [["batch"], ["instance"]]),
                                E("net", "float", ["dropout"], [0.0, 0.3])])), [
        ("model.channels", "net.enum.train.model$0:channels", ["train/model:channels[0]"]),
        ("model.norm", "net.enum.train.model$1:norm", ["train/model:norm[0]"]),
        ("model.dropout", "net.float.train.model$2:dropout", ["train/model:dropout[0]"])], 6),
    "disabled_on_list_items": (cfg_with(
        *[(f"{PT}.{i}.search", [E("t", "enum", ["@disabled"], DISABLE)]) for i in (3, 4, 5)]), [
        ("pre_transforms[3].@disabled", "t.enum.train.pre_transforms[3]$0:@disabled", ["train/pre_transforms/3:@disabled[0]"]),
        ("pre_transforms[4].@disabled", "t.enum.train.pre_transforms[4]$0:@disabled", ["train/pre_transforms/4:@disabled[0]"]),
        ("RandShiftIntensityd.@disabled", "t.enum.train.pre_transforms[5]$0:@disabled",
         ["train/pre_transforms/5:@disabled[0]"])], 8),
    "free_variables_with_and_without_at_on_several_components": (cfg_with(
        ("search", [E("t", "enum", ["@useFlip"], DISABLE), E("t", "float", ["flipProb"], [0.1, 0.9])]),
        (f"{PT}.3.apply", {"@disabled": "useFlip", "prob": "flipProb"}),
        (f"{PT}.4.apply", {"@disabled": "@useFlip", "prob": "flipProb"})), [
        ("useFlip", "t.enum.$0:@useFlip", ["train/pre_transforms/3:@disabled[0]", "train/pre_transforms/4:@disabled[0]"]),
        ("flipProb", "t.float.$1:flipProb", ["train/pre_transforms/3:prob[0]", "train/pre_transforms/4:prob[0]"])], 2),
    "multi_arg_variable_drives_disabled_and_args": (cfg_with(
        ("search", [E("loss", "enum", ["useFocal", "focalGamma", "useDice"],
                      [[False, 2.0, True], [True, 1.0, False], [True, 3.0, False]])]),
        ("train.loss", [{"name": "DiceLoss", "args": {}, "apply": {"@disabled": "useDice"}},
                        {"name": "FocalLoss", "args": {"gamma": 2.0}, "apply": {"@disabled": "useFocal", "gamma": "focalGamma"}}])), [
        ("useFocal,focalGamma,useDice", "loss.enum.$0:useFocal,focalGamma,useDice",
         ["train/loss/0:@disabled[2]", "train/loss/1:@disabled[0]", "train/loss/1:gamma[1]"])], 3),
    "aliases_applied_across_train_and_validate": (cfg_with(
        (f"{PT}.2.search", [E("t", "enum", ["a_min#aMin", "a_max#aMax"], [[-57, 164], [-100, 240]])]),
        ("validate.pre_transforms.2.apply", {"a_min": "aMin", "a_max": "aMax"}),
        ("validate.inferer.search", [E("net", "enum", ["roi_size#roi"], [[[96, 96, 96]], [[128, 128, 64]]])])), [
        ("aMin,aMax", "t.enum.train.pre_transforms[2]$0:a_min#aMin,a_max#aMax",
         ["train/pre_transforms/2:a_min[0]", "train/pre_transforms/2:a_max[1]",
          "validate/pre_transforms/2:a_min[0]", "validate/pre_transforms/2:a_max[1]"]),
        ("roi", "net.enum.validate.inferer$0:roi_size#roi", ["validate/inferer:roi_size[0]"])], 4),
    "legacy_lr_search_with_a_component_search": (cfg_with(
        ("lr_search", [1e-5, 1e-3]), ("train.lr_scheduler.search", [E("lr", "enum", "step_size", [[1000], [5000]])])), [
        ("learning_rate", "lr.float.lr_search$0:learning_rate", [":learning_rate[0]"]),
        ("lr_scheduler.step_size", "lr.enum.train.lr_scheduler$0:step_size", ["train/lr_scheduler:step_size[0]"])], 2),
    "bare_string_args_everywhere": (cfg_with(
        (f"{PT}.3.search", [E("t", "enum", "@disabled", DISABLE), E("t", "float", "prob#flipP", [0.0, 1.0])]),
        (f"{PT}.4.apply", {"prob": "flipP"}), ("search", [E("lr", "float", "learning_rate", [1e-5, 1e-3])])), [
        ("learning_rate", "lr.float.$0:learning_rate", [":learning_rate[0]"]),
        ("RandFlipd.@disabled", "t.enum.train.pre_transforms[3]$0:@disabled", ["train/pre_transforms/3:@disabled[0]"]),
        ("flipP", "t.float.train.pre_transforms[3]$1:prob#flipP",
         ["train/pre_transforms/3:prob[0]", "train/pre_transforms/4:prob[0]"])], 2),
    "clara3_name_alias_labels": (cfg_with(
        (f"{PT}.1", {"name": "ScaleByResolution#ScaleImg", "args": {"target_resolution": [1, 1, 1]},
                     "search": [E("t", "enum", ["target_resolution"], [[[1, 1, 1]], [[2, 2, 2]]])]}),
        (f"{PT}.+2", {"name": "ScaleByResolution#ScaleLb", "args": {"target_resolution": [1, 1, 1]},
                      "search": [E("t", "enum", ["target_resolution"], [[[1, 1, 1]], [[2, 2, 2]]])]})), [
        ("ScaleImg.target_resolution", "t.enum.train.pre_transforms[1]$0:target_resolution",
         ["train/pre_transforms/1:target_resolution[0]"]),
        ("ScaleLb.target_resolution", "t.enum.train.pre_transforms[2]$0:target_resolution",
         ["train/pre_transforms/2:target_resolution[0]"])], 4),
    "int_and_bool_enums": (cfg_with(
        ("train.model.search", [E("net", "enum", ["num_res_units"], [[0], [1], [2]])]),
        ("train.dataloader.search", [E("data", "enum", ["shuffle", "batch_size"], [[True, 2], [False, 4]])]),
        ("search", [E("train", "enum", ["amp", "epochs"], [[True, 2], [False, 3]])])), [
        ("amp,epochs", "train.enum.$0:amp,epochs", [":amp[0]", ":epochs[1]"]),
        ("model.num_res_units", "net.enum.train.model$0:num_res_units", ["train/model:num_res_units[0]"]),
        ("dataloader.shuffle,batch_size", "data.enum.train.dataloader$0:shuffle,batch_size",
         ["train/dataloader:shuffle[0]", "train/dataloader:batch_size[1]"])], 12),
    "two_list_valued_args_nested_targets": (cfg_with(
        ("train.model.search", [E("net", "enum", ["channels", "strides"],
                                  [[[16, 32, 64], [2, 2]], [[8, 16, 32, 64], [2, 2, 2]]])])), [
        ("model.channels,strides", "net.enum.train.model$0:channels,strides",
         ["train/model:channels[0]", "train/model:strides[1]"])], 2),
    "same_component_in_train_and_validate": (cfg_with(
        ("train.model.search", [E("net", "enum", ["channels"], [[[16, 32, 64]], [[8, 16, 32]]])]),
        ("validate.model.search", [E("net", "enum", ["channels"], [[[16, 32, 64]], [[8, 16, 32]]])])), [
        ("train.model.channels", "net.enum.train.model$0:channels", ["train/model:channels[0]"]),
        ("validate.model.channels", "net.enum.validate.model$0:channels", ["validate/model:channels[0]"])], 4),
    "first_level_key_with_at_and_alias": (cfg_with(
        ("search", [E("lr", "float", ["@learning_rate#lr"], [1e-5, 1e-3]), E("train", "enum", ["epochs"], [[1], [2]])]),
        ("train.optimizer.apply", {"lr": "lr"})), [
        ("lr", "lr.float.$0:@learning_rate#lr", [":learning_rate[0]", "train/optimizer:lr[0]"]),
        ("epochs", "train.enum.$1:epochs", [":epochs[0]"])], 2),
    "args_named_search_and_apply_one_choice_point_range": (cfg_with(
        ("train.model.args.search", [1, 2]), ("train.model.args.apply", {"x": 1}), ("validate.inferer.search", []),
        ("train.model.search", [E("net", "enum", ["search"], [[[1, 2]]]), E("net", "float", ["dropout"], [0.1, 0.1])])), [
        ("model.search", "net.enum.train.model$0:search", ["train/model:search[0]"]),
        ("model.dropout", "net.float.train.model$1:dropout", ["train/model:dropout[0]"])], 1),
    "free_variable_applied_to_nested_component_and_list_item": (cfg_with(
        ("train.loss", {"name": "MaskedLoss", "args": {"loss": {"name": "DiceLoss", "args": {"smooth_nr": 1e-5},
                                                                "apply": {"smooth_nr": "@smooth"}}}}),
        (f"{PT}.2.apply", {"b_min": "smooth"}), ("search", [E("loss", "enum", ["@smooth"], [[1e-5], [0.0]])])), [
        ("smooth", "loss.enum.$0:@smooth", ["train/loss/args/loss:smooth_nr[0]", "train/pre_transforms/2:b_min[0]"])], 2),
    "disabled_and_alias_in_one_entry_over_an_existing_disabled": (cfg_with(
        (f"{PT}.5.disabled", "{no_shift}"),
        (f"{PT}.5.search", [E("t", "enum", ["@disabled", "prob#shiftP"], [[True, 0.5], [False, 0.9]])]),
        ("validate.pre_transforms.2.apply", {"a_min": "shiftP"})), [
        ("RandShiftIntensityd.@disabled,prob", "t.enum.train.pre_transforms[5]$0:@disabled,prob#shiftP",
         ["train/pre_transforms/5:@disabled[0]", "train/pre_transforms/5:prob[1]", "validate/pre_transforms/2:a_min[1]"])], 2),
    "dotted_name_is_labelled_by_its_class": (cfg_with(
        (f"{PT}.3.name", "monai.transforms.RandFlipd"), (f"{PT}.3.search", [E("t", "float", ["prob"], [0, 1])])), [
        ("RandFlipd.prob", "t.float.train.pre_transforms[3]$0:prob", ["train/pre_transforms/3:prob[0]"])], 1),
    "disabled_on_a_validate_ref_item": (cfg_with(
        ("validate.pre_transforms.1.search", [E("t", "enum", ["@disabled"], DISABLE)])), [
        ("pre_transforms[1].@disabled", "t.enum.validate.pre_transforms[1]$0:@disabled",
         ["validate/pre_transforms/1:@disabled[0]"])], 2),
}


def consumer_text(c: Any) -> str:
    return "/".join(map(str, c.component)) + f":{c.arg}[{c.index}]"


def points(space: Any) -> list[dict[str, Any]]:
    """The first, the last and a middle point of the space."""
    out = []
    for pick in (0, -1, 1):
        point = {}
        for d in space:
            if isinstance(d, EnumDimension):
                point[d.name] = list(d.choices[pick if pick < len(d.choices) else 0])
            else:
                point[d.name] = {0: d.low, -1: d.high, 1: (d.low + d.high) / 2}[pick]
        out.append(point)
    return out


def test_at_least_15_valid_unseen_configs():
    assert len(VALID) >= 15


@pytest.mark.parametrize("name", sorted(VALID))
def test_valid_config_gives_the_right_space(name):
    cfg, expected, grid = VALID[name]
    space = parse_search_space(cfg, "config_train.json")
    assert [(d.name, d.prl, [consumer_text(c) for c in d.consumers]) for d in space] == expected
    assert space.grid_size == grid


@pytest.mark.parametrize("name", sorted(VALID))
def test_valid_config_renders_each_value_at_each_consumer(name):
    cfg = VALID[name][0]
    before = json.dumps(cfg)
    space = parse_search_space(cfg, "config_train.json")
    for point in points(space):
        out = render_config(cfg, space, point)
        for d in space:
            for c in d.consumers:
                node: Any = out
                for part in c.component:
                    node = node[part]
                want = point[d.name][c.index] if isinstance(d, EnumDimension) else point[d.name]
                got = node["disabled"] if c.arg == "@disabled" else (node["args"][c.arg] if c.component else node[c.arg])
                assert got == want, (d.name, c)
        assert "lr_search" not in out and "search" not in out
        text = json.dumps(out).replace('"search": [1, 2]', "").replace('"apply": {"x": 1}', "")
        assert '"search"' not in text and '"apply"' not in text
    assert json.dumps(cfg) == before


def test_valid_config_through_the_cli(tmp_path, capsys):
    root = make_mmar(tmp_path, VALID["aliases_applied_across_train_and_validate"][0])
    assert main(["validate", str(root), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [d["name"] for d in report["dimensions"]] == ["aMin,aMax", "roi"] and report["grid_size"] == 4




TOP_USE = ("search", [E("t", "enum", ["@use"], DISABLE)])
HUGE = "1" + "0" * 400

# Regressions: each of these passed silently (the search did not happen), crashed with exit 1, or said
# something misleading. (name, config text or dict, JSON path, fragment of the message)
MALFORMED = [
    ("search_capitalised", cfg_with(("train.model.Search", [E("net", "enum", ["norm"], [["a"]])])),
     "train.model.Search", "unknown key 'Search' (did you mean 'search'?)"),
    ("search_letters_swapped", cfg_with(("train.model.serach", [E("net", "enum", ["norm"], [["a"]])])),
     "train.model.serach", "did you mean 'search'?"),
    ("top_level_search_misspelt", cfg_with(("Search", [E("lr", "float", ["learning_rate"], [0, 1])])),
     "Search", "did you mean 'search'?"),
    ("apply_misspelt", cfg_with(TOP_USE, (f"{PT}.3.aply", {"@disabled": "use"})),
     "train.pre_transforms[3].aply", "did you mean 'apply'?"),
    ("lr_search_misspelt", cfg_with(("lr_serach", [1e-5, 1e-3])), "lr_serach", "did you mean 'lr_search'?"),
    ("lr_search_inside_a_component", cfg_with(("train.optimizer.lr_search", [1e-5, 1e-3])),
     "train.optimizer.lr_search", "read only at the first level"),
    ("disabled_without_at_in_search", cfg_with((f"{PT}.3.search", [E("t", "enum", ["disabled"], DISABLE)])),
     "train.pre_transforms[3].search[0].args[0]", "write '@disabled'"),
    ("disabled_without_at_in_apply", cfg_with(TOP_USE, (f"{PT}.3.apply", {"disabled": "use"})),
     "train.pre_transforms[3].apply.disabled", "write '@disabled'"),
    ("at_disable_misspelt", cfg_with((f"{PT}.3.search", [E("t", "enum", ["@disable"], DISABLE)])),
     "train.pre_transforms[3].search[0].args[0]", "did you mean '@disabled'?"),
    ("apply_names_an_arg_searched_without_alias",
     cfg_with((f"{PT}.3.search", [E("t", "float", ["prob"], [0, 1])]), (f"{PT}.4.apply", {"prob": "prob"})),
     "train.pre_transforms[4].apply.prob", "searches 'prob' without a name: write 'prob#myName' there"),
    ("apply_names_a_readable_name",
     cfg_with((f"{PT}.3.search", [E("t", "float", ["prob"], [0, 1])]), (f"{PT}.4.apply", {"prob": "RandFlipd.prob"})),
     "train.pre_transforms[4].apply.prob", "write 'prob#myName' there"),
    ("lr_search_and_a_search_of_learning_rate",
     cfg_with(("lr_search", [1e-5, 1e-3]), ("search", [E("lr", "float", ["learning_rate"], [1e-5, 1e-3])])),
     "lr_search", "first-level key 'learning_rate' is already searched at search[0].args[0]"),
    ("alias_shadows_a_first_level_key", cfg_with((f"{PT}.3.search", [E("t", "float", ["prob#epochs"], [0, 1])])),
     "train.pre_transforms[3].search[0].args[0]", "alias 'epochs' in 'prob#epochs' is also a first-level key"),
    ("search_inside_args", cfg_with(("train.model.args.search", [E("net", "enum", ["norm"], [["a"], ["b"]])])),
     "train.model.args.search", "'search' is inside 'args', where it would be an arg named 'search': move it up"),
    ("apply_disabled_inside_args", cfg_with(TOP_USE, (f"{PT}.3.args.apply", {"@disabled": "use"})),
     "train.pre_transforms[3].args.apply", "move it up one level, next to \"args\" in train.pre_transforms[3]"),
    ("apply_alias_inside_args", cfg_with((f"{PT}.3.search", [E("t", "float", ["prob#p"], [0, 1])]),
                                         (f"{PT}.4.args.apply", {"prob": "p"})),
     "train.pre_transforms[4].args.apply", "'apply' is inside 'args'"),
    ("search_in_the_train_section", cfg_with(("train.search", [E("train", "enum", ["epochs"], [[1], [2]])])),
     "train.search[0].args[0]", "train is a section, not a component"),
    ("huge_int_in_a_range",
     '{"learning_rate": 1, "search": [{"domain": "lr", "type": "float", "args": ["learning_rate"], "targets": [0, '
     + HUGE + "]}]}", "search[0].targets[1]", "a float range needs finite numbers"),
    ("huge_float_in_an_enum",
     '{"epochs": 1, "search": [{"domain": "x", "type": "enum", "args": ["epochs"], "targets": [[1], [1e400]]}]}',
     "search[0].targets[1][0]", "number 1e400 is too large"),
    ("json_nested_too_deeply", '{"a": ' + "[" * 50_000 + "]" * 50_000 + "}", None, "nested too deeply"),
    ("whitespace_only_file", "  \n\n", None, "file is empty"),
    # values are shown in JSON words (true, null), as the user wrote them, not Python's True/None
    ("type_null", cfg_with(("train.model.search", [E("net", None, ["norm"], [["a"]])])),
     "train.model.search[0].type", "unknown type null: expected 'float', 'int' or 'enum'"),
    ("disabled_given_one_and_zero", cfg_with((f"{PT}.3.search", [E("t", "enum", ["@disabled"], [[1], [0]])])),
     "train.pre_transforms[3].search[0].targets[0][0]", "'@disabled' takes true or false, got 1"),
    ("float_range_of_booleans", cfg_with(("train.model.search", [E("net", "float", ["dropout"], [False, True])])),
     "train.model.search[0].targets[0]", "a float range needs numbers, got false"),
    ("key_with_a_newline", cfg_with(("train.model.search", [{"domain": "n", "type": "enum", "args": ["norm"],
                                                             "tar\ngets": [["a"]]}])),
     "train.model.search[0].tar\\ngets", "unknown key 'tar\\ngets' (did you mean 'targets'?)"),
]


AUTOML = {"controller": {"name": "GridController"}}

# Mistakes a new user makes that were already reported well; kept so that they stay so.
# (name, config_train.json, config_automl.json, JSON path, fragment); the file named is the automl one when given.
ALREADY_REPORTED = [
    ("string_numbers_in_a_float_range", cfg_with(("train.model.search", [E("net", "float", ["dropout"], ["0.0", "0.3"])])),
     None, "train.model.search[0].targets[0]", "a float range needs numbers, got '0.0'"),
    ("float_targets_nested_like_an_enum", cfg_with(("train.model.search", [E("net", "float", ["dropout"], [[0.0, 0.3]])])),
     None, "train.model.search[0].targets", "exactly [min, max], got 1 values"),
    ("enum_targets_as_object", cfg_with(("train.model.search", [E("net", "enum", ["norm"], {"batch": 1})])),
     None, "train.model.search[0].targets", "enum targets must be a list of choices"),
    ("type_capitalised", cfg_with(("train.model.search", [E("net", "Float", ["dropout"], [0, 1])])),
     None, "train.model.search[0].type", "unknown type 'Float' (did you mean 'float'?)"),
    ("type_key_misspelt", cfg_with(("train.model.search", [{"domain": "n", "typ": "float", "args": ["dropout"],
                                                            "targets": [0, 1]}])),
     None, "train.model.search[0].typ", "unknown key 'typ' (did you mean 'type'?)"),
    ("list_arg_two_args_not_nested", cfg_with(("train.model.search", [E("net", "enum", ["channels", "strides"],
                                                                        [[16, 32, 64], [2, 2]])])),
     None, "train.model.search[0].targets[0]", "choice has 3 value(s) but args has 2"),
    ("alias_twice_in_two_components", cfg_with((f"{PT}.3.search", [E("t", "float", ["prob#p"], [0, 1])]),
                                               (f"{PT}.5.search", [E("t", "float", ["prob#p"], [0, 1])])),
     None, "train.pre_transforms[5].search[0].args[0]", "'p' is already defined at train.pre_transforms[3]"),
    ("free_variable_in_a_component", cfg_with((f"{PT}.3.search", [E("t", "enum", ["@useFlip"], DISABLE)])),
     None, "train.pre_transforms[3].search[0].args[0]", "belong in the top-level search"),
    ("apply_value_a_list", cfg_with(TOP_USE, (f"{PT}.3.apply", {"@disabled": ["use"]})),
     None, "train.pre_transforms[3].apply.@disabled", "apply needs a variable name (a string)"),
    ("trailing_comma", '{"epochs": 2,\n "train": {"model": {"args": {"a": 1},}}\n}',
     None, None, "invalid JSON at line 2 column 39: Expecting property name"),
    ("utf16_file", json.dumps(BASE).encode("utf-16"), None, None, "not UTF-8 text"),
    ("automl_handlers_not_a_list", BASE, {**AUTOML, "handlers": {"name": "MMARHandler"}}, "handlers", "expected a list"),
    ("automl_executor_args_a_list", BASE, {**AUTOML, "executor": {"name": "MMARExecutor", "args": ["x"]}},
     "executor.args", "expected an object"),
    ("automl_controller_a_string", BASE, {"controller": "GridController"}, "controller", "expected an object"),
    ("automl_args_misspelt", BASE, {"controller": {"name": "GridController", "arsg": {}}}, "controller.arsg",
     "did you mean 'args'?"),
    ("automl_unknown_executor", BASE, {**AUTOML, "executor": {"name": "ClaraExecutor"}}, "executor.name",
     "unknown executor 'ClaraExecutor' (did you mean 'MMARExecutor'?); known: MMARExecutor"),
    ("automl_duplicate_key", BASE, '{"controller": {"name": "GridController"}, "controller": {}}', "controller",
     "duplicate key"),
    ("automl_trailing_comma", BASE, '{"controller": {"name": "GridController"},}', None, "invalid JSON at line 1"),
]


def _cases() -> list[tuple]:
    return [(n, t, None, w, f) for n, t, w, f in MALFORMED] + ALREADY_REPORTED


@pytest.mark.parametrize("case", _cases(), ids=[c[0] for c in _cases()])
def test_malformed_unseen_config_exit_2_one_line(tmp_path, capsys, case):
    _, train, automl, where, fragment = case
    root = tmp_path / "mmar"
    (root / "config").mkdir(parents=True)
    for name, content in (("config_train.json", train), ("config_automl.json", automl or AUTOML)):
        data = content if isinstance(content, (str, bytes)) else json.dumps(content, indent=2)
        (root / "config" / name).write_bytes(data.encode() if isinstance(data, str) else data)
    code = main(["validate", str(root), "--json"])
    out, err = capsys.readouterr()
    assert (code, out) == (2, "")
    assert len(err.splitlines()) == 1, err
    file = "config_automl.json" if automl is not None else "config_train.json"
    prefix = ": ".join(p for p in (f"error: {root / 'config' / file}", where) if p)
    assert err.startswith(prefix + ": "), err
    assert fragment in err
    assert not (root / "automl").exists()


@pytest.mark.parametrize("key,value", [("research", [1]), ("supply", {"a": 1}), ("Search", "text"), ("seach_mode", [1])])
def test_keys_that_only_look_like_markers_stay_legal(key, value):
    cfg = cfg_with((f"train.model.{key}", value), ("train.model.search", [E("net", "enum", ["norm"], [["a"], ["b"]])]))
    space = parse_search_space(cfg, "config_train.json")
    assert space.names == ["model.norm"]
    assert render_config(cfg, space, {"model.norm": ["b"]})["train"]["model"][key] == value
