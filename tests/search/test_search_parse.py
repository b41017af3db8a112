"""parse_search_space on Clara's own files and on each construct of DESIGN.md section 3."""

from __future__ import annotations

import copy

import pytest

from mmar_automl.errors import ConfigError
from mmar_automl.config.jsonfile import load_json
from mmar_automl.search import EnumDimension, FloatDimension, SearchSpace, parse_search_space
from mmar_automl.search.space import Consumer


def space_of(clara_dir, name: str) -> SearchSpace:
    return parse_search_space(load_json(clara_dir / name), name)


def summary(space: SearchSpace) -> list[tuple]:
    return [(d.name, d.prl, d.type, sorted((c.component, c.arg, c.index) for c in d.consumers)) for d in space]


def test_enum_file_three_enums_grid_8(clara_dir):
    space = space_of(clara_dir, "PyTorch__trn_autoML_Enum.json")
    assert summary(space) == [
        ("lr_scheduler.step_size", "lr.enum.train.lr_scheduler$0:step_size", "enum",
         [(("train", "lr_scheduler"), "step_size", 0)]),
        ("model.channels", "net.enum.train.model$0:channels", "enum", [(("train", "model"), "channels", 0)]),
        ("model.norm", "net.enum.train.model$1:norm", "enum", [(("train", "model"), "norm", 0)]),
    ]
    assert space.grid_size == 8 and space.continuous == []
    # A list-valued arg: each choice holds the whole list as its one value.
    assert space["model.channels"].choices == (([16, 32, 64, 128, 256],), ([8, 16, 32, 64, 128],))


def test_loss_optimizer_two_two_arg_variables_grid_4(clara_dir):
    space = space_of(clara_dir, "PyTorch__trn_autoML_Loss_Optimizer.json")
    assert summary(space) == [
        ("mySearchLoss1,mySearchLoss2", "transform.enum.$0:mySearchLoss1,mySearchLoss2", "enum",
         [(("train", "loss", 0), "@disabled", 0), (("train", "loss", 1), "@disabled", 1)]),
        ("mySearchOptimizer1,mySearchOptimizer2", "transform.enum.$1:mySearchOptimizer1,mySearchOptimizer2", "enum",
         [(("train", "optimizer", 0), "@disabled", 0), (("train", "optimizer", 1), "@disabled", 1)]),
    ]
    assert space.grid_size == 4


def test_transform_file_grid_4(clara_dir):
    space = space_of(clara_dir, "PyTorch__trn_autoML_Transform.json")
    assert summary(space) == [
        ("myTransformDisable", "transform.enum.$0:@myTransformDisable", "enum",
         [(("train", "pre_transforms", 6), "@disabled", 0), (("train", "pre_transforms", 7), "@disabled", 0)]),
        ("RandGaussianNoised.@disabled", "transform.enum.train.pre_transforms[8]$0:@disabled", "enum",
         [(("train", "pre_transforms", 8), "@disabled", 0)]),
    ]
    assert space.grid_size == 4


def test_clara3_lr_lp_floats_and_alias(clara_dir):
    space = space_of(clara_dir, "Tensorflow-Deprecated__trn_autoML_LR_LP.json")
    assert [d.name for d in space.continuous] == ["learning_rate", "lr_policy.poly_power", "myProb"]
    assert space.grid_size == 1
    lr, power, prob = space.dimensions
    assert (lr.prl, lr.low, lr.high, lr.consumers) == ("lr.float.$0:learning_rate", 0.0001, 0.001,
                                                      (Consumer((), "learning_rate"),))
    assert (power.low, power.high) == (0.9, 0.99)
    assert prob.prl == "transform.float.train.pre_transforms[8]$0:probability#myProb"
    assert prob.consumers == (Consumer(("train", "pre_transforms", 8), "probability"),
                              Consumer(("train", "pre_transforms", 9), "probability"))


def test_space_round_trips_through_json(clara_dir):
    for name in ("PyTorch__trn_autoML_Enum.json", "PyTorch__trn_autoML_Loss_Optimizer.json",
                 "PyTorch__trn_autoML_Transform.json", "Tensorflow-Deprecated__trn_autoML_LR_LP.json"):
        space = space_of(clara_dir, name)
        assert SearchSpace.from_json(space.to_json()) == space


def test_input_is_not_modified(clara_dir):
    cfg = load_json(clara_dir / "Tensorflow-Deprecated__trn_autoML_LR_LP.json")
    before = copy.deepcopy(cfg)
    parse_search_space(cfg)
    assert cfg == before


def test_inactive_on_loss_optimizer_construct(clara_dir):
    """Args searched on a loss that the point switches off do not matter for that job."""
    cfg = load_json(clara_dir / "PyTorch__trn_autoML_Loss_Optimizer.json")
    cfg["train"]["loss"][0]["search"] = [
        {"domain": "net", "type": "enum", "args": ["include_background"], "targets": [[True], [False]]}]
    cfg["train"]["loss"][1]["search"] = [
        {"domain": "net", "type": "float", "args": ["gamma#focalGamma"], "targets": [1.0, 3.0]}]
    cfg["train"]["loss"][1]["args"]["gamma"] = 2.0
    space = parse_search_space(cfg)
    assert space.names == ["mySearchLoss1,mySearchLoss2", "mySearchOptimizer1,mySearchOptimizer2",
                           "DiceLoss.include_background", "focalGamma"]
    point = {"mySearchLoss1,mySearchLoss2": [True, False], "mySearchOptimizer1,mySearchOptimizer2": [False, True],
             "DiceLoss.include_background": [True], "focalGamma": 2.0}
    # [True, False]: DiceLoss (loss[0]) disabled, FocalLoss enabled.
    assert space.inactive(point) == {"DiceLoss.include_background"}
    point["mySearchLoss1,mySearchLoss2"] = [False, True]
    assert space.inactive(point) == {"focalGamma"}


def base() -> dict:
    return {
        "learning_rate": 0.001,
        "train": {
            "model": {"name": "UNet", "args": {"channels": [16, 32], "norm": "batch", "dropout": 0.1}},
            "pre_transforms": [
                {"name": "RandFlipd", "args": {"prob": 0.5}},
                {"name": "RandAffined", "args": {"prob": 0.5}},
            ],
        },
        "validate": {"model": {"name": "UNet", "args": {"channels": [16, 32]}}},
    }


def test_bare_string_arg_and_several_entries_per_component():
    cfg = base()
    cfg["train"]["model"]["search"] = [
        {"domain": "net", "type": "enum", "args": "norm", "targets": [["batch"], ["instance"]]},
        {"domain": "net", "type": "float", "args": ["dropout"], "targets": [0.0, 0.5]},
        {"domain": "net", "type": "enum", "args": ["channels", "@disabled"], "targets": [[[8, 16], False], [[16, 32], False]]},
    ]
    space = parse_search_space(cfg)
    assert space.names == ["model.norm", "model.dropout", "model.channels,@disabled"]
    assert space["model.norm"].args == ("norm",)
    assert space["model.channels,@disabled"].consumers == (Consumer(("train", "model"), "channels", 0),
                                                          Consumer(("train", "model"), "@disabled", 1))


def test_names_take_the_shortest_unique_path_suffix():
    cfg = base()
    entry = {"domain": "net", "type": "enum", "args": ["channels"], "targets": [[[8, 16]], [[16, 32]]]}
    cfg["train"]["model"]["search"] = [copy.deepcopy(entry)]
    cfg["validate"]["model"]["search"] = [copy.deepcopy(entry)]
    for t in cfg["train"]["pre_transforms"]:
        t["name"] = "RandFlipd"            # two transforms of the same name
        t["search"] = [{"domain": "transform", "type": "float", "args": ["prob"], "targets": [0.0, 1.0]}]
    space = parse_search_space(cfg)
    assert space.names == ["train.model.channels", "pre_transforms[0].prob", "pre_transforms[1].prob",
                           "validate.model.channels"]


def test_clara3_name_alias_names_list_components():
    cfg = base()
    cfg["train"]["pre_transforms"][0]["name"] = "ScaleByResolution#ScaleImg"
    cfg["train"]["pre_transforms"][0]["search"] = [
        {"domain": "transform", "type": "float", "args": ["prob"], "targets": [0.1, 0.9]}]
    assert parse_search_space(cfg).names == ["ScaleImg.prob"]


def test_legacy_lr_search():
    cfg = base()
    cfg["lr_search"] = [1e-5, 1e-3]
    (dim,) = parse_search_space(cfg).dimensions
    assert isinstance(dim, FloatDimension)
    assert (dim.name, dim.prl, dim.low, dim.high, dim.consumers) == (
        "learning_rate", "lr.float.lr_search$0:learning_rate", 1e-5, 1e-3, (Consumer((), "learning_rate"),))


def test_free_variable_with_and_without_at_drives_several_components():
    cfg = base()
    cfg["search"] = [
        {"domain": "transform", "type": "enum", "args": ["@flip"], "targets": [[True], [False]]},
        {"domain": "transform", "type": "enum", "args": ["p"], "targets": [[0.1], [0.9]]},
    ]
    cfg["train"]["pre_transforms"][0]["apply"] = {"@disabled": "flip", "prob": "p"}
    cfg["train"]["pre_transforms"][1]["apply"] = {"@disabled": "@flip", "prob": "p"}
    space = parse_search_space(cfg)
    assert space.names == ["flip", "p"]
    assert space["flip"].consumers == (Consumer(("train", "pre_transforms", 0), "@disabled"),
                                       Consumer(("train", "pre_transforms", 1), "@disabled"))
    assert space["p"].consumers == (Consumer(("train", "pre_transforms", 0), "prob"),
                                    Consumer(("train", "pre_transforms", 1), "prob"))


def test_multi_arg_alias_apply_uses_the_arg_index():
    cfg = base()
    cfg["train"]["model"]["search"] = [{"domain": "net", "type": "enum", "args": ["norm#n", "dropout#d"],
                                        "targets": [["batch", 0.1], ["instance", 0.2]]}]
    cfg["train"]["pre_transforms"][0]["apply"] = {"prob": "d"}
    space = parse_search_space(cfg)
    assert space.names == ["n,d"]
    assert space["n,d"].consumers[-1] == Consumer(("train", "pre_transforms", 0), "prob", 1)


def test_search_and_apply_as_plain_arg_names_are_not_markers():
    cfg = base()
    cfg["train"]["model"]["args"]["search"] = "beam"          # an arg that happens to be called "search"
    cfg["train"]["model"]["args"]["apply"] = {"x": 1}
    assert len(parse_search_space(cfg)) == 0


def test_components_nested_in_args_are_searched():
    cfg = base()
    cfg["train"]["model"]["args"]["block"] = {"name": "Conv", "args": {"k": 3},
                                              "search": [{"domain": "net", "type": "enum", "args": ["k"],
                                                          "targets": [[3], [5]]}]}
    space = parse_search_space(cfg)
    assert space.names == ["block.k"]
    assert space["block.k"].consumers == (Consumer(("train", "model", "args", "block"), "k"),)


def test_no_search_gives_an_empty_space():
    space = parse_search_space(base())
    assert len(space) == 0 and space.grid_size == 1


@pytest.mark.parametrize("entry,where,fragment", [
    ({"domain": "net", "type": "enum", "args": ["norm"], "targets": [["batch"], ["batch"]]},
     "train.model.search[0].targets[1]", "repeats choice 0"),
    ({"domain": "net", "type": "choice", "args": ["norm"], "targets": [["batch"]]},
     "train.model.search[0].type", "unknown type 'choice'"),
    ({"domain": "net", "type": "enum", "args": ["nrom"], "targets": [["batch"]]},
     "train.model.search[0].args[0]", "did you mean 'norm'"),
])
def test_errors_name_file_and_path(entry, where, fragment):
    cfg = base()
    cfg["train"]["model"]["search"] = [entry]
    with pytest.raises(ConfigError) as info:
        parse_search_space(cfg, "config/config_train.json")
    assert info.value.file == "config/config_train.json"
    assert info.value.json_path == where
    assert fragment in str(info.value)


def test_enum_dimension_values_are_json_as_read(clara_dir):
    space = space_of(clara_dir, "PyTorch__trn_autoML_Loss_Optimizer.json")
    dim = space.dimensions[0]
    assert isinstance(dim, EnumDimension)
    assert dim.index_of([False, True]) == 1
