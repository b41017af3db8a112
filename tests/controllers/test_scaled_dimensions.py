"""Every controller honours the grammar extensions: log-scale floats and ints are searched on a log
scale, ints stay ints on their step (the contract tests check that points lie in the space)."""

from __future__ import annotations

import math
import statistics

import controller_spaces as spaces
from fake_executor import FakeRun
from mmar_automl.context import Context
from mmar_automl.controllers import GridController, OptunaController, RandomController, ReinforcementController

GEOMETRIC_MIDDLE_LR = math.sqrt(1e-5 * 1e-2)


def scaled():
    return spaces.parsed(spaces.PARSED_SCALED)


def _below_geometric_middle(points):
    return sum(p["learning_rate"] < GEOMETRIC_MIDDLE_LR for p in points) / len(points)


def test_random_samples_log_uniformly_and_ints_on_their_step():
    space = scaled()
    run = FakeRun(RandomController(seed=3), space, workers=1).run(300)
    points = [r.point for r in run.issued]
    # Uniform on a log scale: half below the geometric middle; a linear sampler would put 3% there.
    assert 0.4 < _below_geometric_middle(points) < 0.6
    filters = [p["model.filters"] for p in points]
    assert all(isinstance(v, int) and 4 <= v <= 256 for v in filters)
    assert 0.35 < sum(v < 32 for v in filters) / len(filters) < 0.65         # 32 = sqrt(4 * 256)
    assert {p["batch_size"] for p in points} == {2, 4, 6, 8}


def test_optuna_gets_log_and_int_distributions():
    import optuna

    space = scaled()
    run = FakeRun(OptunaController(seed=0, sampler="random"), space, workers=1).run(60)
    dists = run.ctrl.study.trials[0].distributions
    assert dists["learning_rate"] == optuna.distributions.FloatDistribution(1e-5, 1e-2, log=True)
    assert dists["batch_size"] == optuna.distributions.IntDistribution(2, 8, step=2)
    assert dists["model.filters"] == optuna.distributions.IntDistribution(4, 256, log=True)
    assert 0.35 < _below_geometric_middle([r.point for r in run.issued]) < 0.65


def test_reinforcement_starts_at_the_geometric_middle_and_samples_ints():
    space = scaled()
    run = FakeRun(ReinforcementController(seed=0, max_rounds=3), space, workers=1).run(40)
    first = run.issued[0].point
    assert math.isclose(first["learning_rate"], GEOMETRIC_MIDDLE_LR, rel_tol=1e-9)
    # The policy's mean 0.5 on the unit scale: near the log middle 32 of [4, 256] (each int owns an equal
    # share of the unit scale, so the ends are widened by half a step), the middle 20 of [0, 40].
    assert 28 <= first["model.filters"] <= 32 and first["model.num_res_units"] == 20
    later = [r.point for r in run.issued[1:]]
    assert all(isinstance(p["batch_size"], int) and p["batch_size"] % 2 == 0 for p in later)
    # A policy step of sigma=0.25 on the unit scale moves the lr by a factor, not by 1e-3 at a time.
    spread = [math.log10(p["learning_rate"]) for p in later]
    assert statistics.pstdev(spread) > 0.2


def test_grid_enumerates_small_int_ranges_and_takes_the_middle_of_large_ones():
    space = scaled()
    ctrl = GridController()
    ctrl.set_search_space(space, Context(SEED=0, NUM_WORKERS=1))
    points = [r.point for r in ctrl.initial_recommendation(Context(NUM_WORKERS=1))]
    assert len(points) == 2 * 4                         # norm x batch_size in {2, 4, 6, 8}
    assert {p["batch_size"] for p in points} == {2, 4, 6, 8}
    assert {p["model.num_res_units"] for p in points} == {20}      # 41 values: not gridded, the middle
    assert {p["model.filters"] for p in points} == {32}            # log middle of [4, 256]
    assert all(math.isclose(p["learning_rate"], GEOMETRIC_MIDDLE_LR) for p in points)
