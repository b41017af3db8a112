"""Bad controller args are one-line configuration errors naming the arg; any run seed works."""

from __future__ import annotations

import pytest

import controller_spaces as spaces
from fake_executor import FakeRun
from mmar_automl.controllers.grid import GridController
from mmar_automl.controllers.optuna import OptunaController
from mmar_automl.controllers.random import RandomController
from mmar_automl.controllers.reinforcement import ReinforcementController
from mmar_automl.errors import ConfigError

CONTROLLERS = [GridController, RandomController, ReinforcementController, OptunaController]


@pytest.mark.parametrize("cls", CONTROLLERS)
@pytest.mark.parametrize("pruner_args", ["x", [1, 2], 3])
def test_pruner_args_that_are_not_an_object(cls, pruner_args):
    # Used to escape as a ValueError from dict() (exit 1 with a Python message).
    with pytest.raises(ConfigError) as err:
        cls(pruner="median", pruner_args=pruner_args)
    assert err.value.json_path == "controller.args.pruner_args"


@pytest.mark.parametrize("cls", CONTROLLERS)
@pytest.mark.parametrize("seed", ["abc", 1.5, True])
def test_seed_arg_must_be_an_integer(cls, seed):
    # A str seed used to be blamed on sampler_args (Optuna) or silently accepted (the others).
    with pytest.raises(ConfigError) as err:
        cls(seed=seed)
    assert err.value.json_path == "controller.args.seed"


@pytest.mark.parametrize("seed", [-1, 2**32, 12345678901234567890])
@pytest.mark.parametrize("sampler", ["tpe", "random", "qmc"])
def test_optuna_takes_any_integer_run_seed(seed, sampler):
    # Optuna accepts only [0, 2**32); the run's --seed can be any integer (RandomController takes it).
    run = FakeRun(OptunaController(seed=seed, sampler=sampler), spaces.float_only()).run(4)
    again = FakeRun(OptunaController(seed=seed, sampler=sampler), spaces.float_only()).run(4)
    assert [r.point for r in run.issued] == [r.point for r in again.issued]


def test_init_sigma_rejects_a_boolean():
    with pytest.raises(ConfigError) as err:
        ReinforcementController(init_sigma=True)
    assert err.value.json_path == "controller.args.init_sigma"


def test_num_samples_and_max_jobs_must_agree():
    with pytest.raises(ConfigError) as err:
        RandomController(num_samples=5, max_jobs=3)
    assert err.value.json_path == "controller.args.max_jobs"
    assert RandomController(num_samples=4, max_jobs=4).num_samples == 4
