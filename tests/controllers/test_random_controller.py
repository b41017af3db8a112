from __future__ import annotations

import pytest

import controller_spaces as spaces
from fake_executor import FakeRun
from mmar_automl.controllers.random import RandomController
from mmar_automl.errors import ConfigError


def test_num_samples_bounds_and_fills_workers():
    run = FakeRun(RandomController(seed=0, num_samples=7), spaces.mixed(), workers=3)
    assert len(run.issued) == 3
    run.run(100)
    assert len(run.issued) == 7 and run.ctrl.is_exhausted()


def test_unbounded_by_default():
    run = FakeRun(RandomController(seed=0), spaces.enum_only(), workers=1).run(30)
    assert len(run.journal) == 30 and not run.ctrl.is_exhausted()


def test_covers_the_float_range():
    run = FakeRun(RandomController(seed=0), spaces.float_only(), workers=1).run(200)
    probs = [r.point["RandFlipd.prob"] for r in run.issued]
    assert min(probs) < 0.05 and max(probs) > 0.95


def test_bad_num_samples():
    with pytest.raises(ConfigError):
        RandomController(num_samples=-1)


@pytest.mark.parametrize("cls_name", ["GridController", "RandomController", "ReinforcementController",
                                      "OptunaController"])
def test_unknown_args_are_refused(cls_name):
    # run/setup.py turns this TypeError into a one-line ConfigError naming controller.args
    import mmar_automl.controllers as controllers

    with pytest.raises(TypeError):
        getattr(controllers, cls_name)(no_such_arg=1)
