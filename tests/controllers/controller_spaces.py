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


ALL = {"enum_only": enum_only, "float_only": float_only, "mixed": mixed, "conditional": conditional,
       "degenerate": degenerate}
