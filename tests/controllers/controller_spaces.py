"""Small search spaces for controller tests (they mirror shapes found in /work/shared/clara configs)."""

from __future__ import annotations

from mmar_automl.search.space import Consumer, EnumDimension, FloatDimension, SearchSpace

MODEL = ("train", "model")
LOSS_A = ("train", "loss", 0)
LOSS_B = ("train", "loss", 1)


def lr(low: float = 1e-5, high: float = 1e-3) -> FloatDimension:
    return FloatDimension("lr.float.learning_rate$0:learning_rate", "learning_rate", "lr", ("learning_rate",),
                          low, high, (Consumer((), "learning_rate"),))


def enum_only() -> SearchSpace:
    return SearchSpace((
        EnumDimension("net.enum.train.model$0:channels", "model.channels", "net", ("channels",),
                      (([16, 32, 64],), ([8, 16, 32],)), (Consumer(MODEL, "channels"),)),
        EnumDimension("net.enum.train.model$1:num_res_units", "model.num_res_units", "net", ("num_res_units",),
                      ((0,), (1,), (2,)), (Consumer(MODEL, "num_res_units"),)),
    ))


def float_only() -> SearchSpace:
    return SearchSpace((
        lr(),
        FloatDimension("transform.float.train.pre_transforms.3$0:prob", "RandFlipd.prob", "transform", ("prob",),
                       0.0, 1.0, (Consumer(("train", "pre_transforms", 3), "prob"),)),
    ))


def mixed() -> SearchSpace:
    return SearchSpace((*enum_only().dimensions, *float_only().dimensions))


def conditional() -> SearchSpace:
    """Exactly one of two losses enabled (a free enum variable); ``alpha`` only matters for loss A."""
    return SearchSpace((
        EnumDimension("loss.enum.$0:lossA,lossB", "lossA,lossB", "loss", ("lossA", "lossB"),
                      ((True, False), (False, True)),
                      (Consumer(LOSS_A, "@disabled", 0), Consumer(LOSS_B, "@disabled", 1))),
        FloatDimension("loss.float.train.loss.0$0:alpha", "loss_a.alpha", "loss", ("alpha",), 0.1, 0.9,
                       (Consumer(LOSS_A, "alpha"),)),
        lr(),
    ))


def degenerate() -> SearchSpace:
    """A float whose range is one value, an enum with one choice, and a switch nested in a component
    that another switch disables (its own consumers are then inactive too)."""
    return SearchSpace((
        FloatDimension("lr.float.learning_rate$0:learning_rate", "learning_rate", "lr", ("learning_rate",),
                       1e-4, 1e-4, (Consumer((), "learning_rate"),)),
        EnumDimension("net.enum.train.model$0:act", "model.act", "net", ("act",), (("relu",),),
                      (Consumer(MODEL, "act"),)),
        EnumDimension("transform.enum.$0:augOff", "augOff", "transform", ("augOff",), ((True,), (False,)),
                      (Consumer(("train", "aug"), "@disabled"),)),
        EnumDimension("transform.enum.$1:noiseOff", "noiseOff", "transform", ("noiseOff",), ((True,), (False,)),
                      (Consumer(("train", "aug", "noise"), "@disabled"),)),
        FloatDimension("transform.float.train.aug.noise$0:std", "noise.std", "transform", ("std",), 0.0, 0.5,
                       (Consumer(("train", "aug", "noise"), "std"),)),
    ))


# The same shapes written as config_train.json files and parsed, as a user's MMAR would be (the names,
# consumers and PRLs then come from the parser, not from this file).
PARSED_ENUM_ONLY = {"epochs": 2, "train": {"model": {"name": "UNet", "args": {"channels": [4, 8], "norm": "batch"},
    "search": [{"domain": "net", "type": "enum", "args": ["channels"], "targets": [[[4, 8]], [[8, 16]], [[16, 32]]]},
               {"domain": "net", "type": "enum", "args": ["norm"], "targets": [["batch"], ["instance"]]}]}}}
PARSED_FLOAT_ONLY = {"learning_rate": 0.001, "epochs": 2,
    "search": [{"domain": "lr", "type": "float", "args": ["learning_rate"], "targets": [0.0001, 0.01]}],
    "train": {"pre_transforms": [{"name": "RandFlipd", "args": {"prob": 0.5},
        "search": [{"domain": "transform", "type": "float", "args": ["prob"], "targets": [0.0, 1.0]}]}]}}
PARSED_CONDITIONAL = {"epochs": 2,  # a free variable picks one of two losses, each with its own float arg
    "search": [{"domain": "loss", "type": "enum", "args": ["offA", "offB"], "targets": [[True, False], [False, True]]}],
    "train": {"loss": [
        {"name": "DiceLoss", "args": {"smooth": 0.1}, "apply": {"@disabled": "offA"},
         "search": [{"domain": "loss", "type": "float", "args": ["smooth"], "targets": [0.0, 1.0]}]},
        {"name": "FocalLoss", "args": {"gamma": 2.0}, "apply": {"@disabled": "offB"},
         "search": [{"domain": "loss", "type": "float", "args": ["gamma"], "targets": [0.5, 5.0]}]}]}}


# The grammar extensions (docs/search-space.md): a log-scale float, a log-scale int, a stepped int small
# enough to be gridded and a wide int that is not, with an enum, as a user would write them.
PARSED_SCALED = {"learning_rate": 0.001, "epochs": 2, "batch_size": 4,
    "search": [{"domain": "lr", "type": "float", "args": ["learning_rate"], "targets": [1e-5, 1e-2], "log": True},
               {"domain": "net", "type": "int", "args": ["batch_size"], "targets": [2, 8], "step": 2}],
    "train": {"model": {"name": "UNet", "args": {"num_res_units": 2, "filters": 16, "norm": "batch"},
        "search": [{"domain": "net", "type": "int", "args": ["num_res_units"], "targets": [0, 40]},
                   {"domain": "net", "type": "int", "args": ["filters"], "targets": [4, 256], "log": True},
                   {"domain": "net", "type": "enum", "args": ["norm"], "targets": [["batch"], ["instance"]]}]}}}


def parsed(config: dict) -> SearchSpace:
    from mmar_automl.search import parse_search_space

    return parse_search_space(config, "config/config_train.json")


ALL = {"enum_only": enum_only, "float_only": float_only, "mixed": mixed, "conditional": conditional,
       "degenerate": degenerate,
       "parsed_enum_only": lambda: parsed(PARSED_ENUM_ONLY), "parsed_float_only": lambda: parsed(PARSED_FLOAT_ONLY),
       "parsed_conditional": lambda: parsed(PARSED_CONDITIONAL), "parsed_scaled": lambda: parsed(PARSED_SCALED)}
