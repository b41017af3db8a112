from __future__ import annotations

import math

import pytest

import controller_spaces as spaces
from fake_executor import FakeRun
from mmar_automl.controllers import _gaussian_policy as policy
from mmar_automl.controllers.reinforcement import ReinforcementController
from mmar_automl.errors import ConfigError


def test_every_chain_starts_at_the_middle_in_grid_order():
    space = spaces.mixed()
    run = FakeRun(ReinforcementController(seed=0, max_rounds=3, samples_per_round=2), space, workers=4).run(200)
    firsts = {}
    for rec in run.issued:
        firsts.setdefault(rec.meta["chain"], rec)
    assert sorted(firsts) == list(range(space.grid_size))
    assert [firsts[c].rec_id for c in sorted(firsts)] == list(range(space.grid_size))
    for rec in firsts.values():
        assert rec.point["learning_rate"] == pytest.approx((1e-5 + 1e-3) / 2)
        assert rec.point["RandFlipd.prob"] == 0.5


def test_max_rounds_bounds_each_chain_then_exhausts():
    space = spaces.mixed()
    run = FakeRun(ReinforcementController(seed=0, max_rounds=3, samples_per_round=2), space, workers=2).run(500)
    per_chain = [sum(1 for r in run.issued if r.meta["chain"] == c) for c in range(space.grid_size)]
    assert per_chain == [1 + 2 * 2] * space.grid_size
    assert run.ctrl.is_exhausted()


def test_enum_only_space_is_a_grid():
    space = spaces.enum_only()
    run = FakeRun(ReinforcementController(seed=0), space).run(100)
    assert len(run.issued) == space.grid_size and run.ctrl.is_exhausted()


def test_never_more_jobs_in_flight_than_workers():
    ctrl = ReinforcementController(seed=0, max_rounds=5)
    run = FakeRun(ctrl, spaces.mixed(), workers=3)
    while run.step():
        assert len(ctrl._in_flight) <= 3


def test_inactive_float_is_not_searched():
    space = spaces.conditional()
    run = FakeRun(ReinforcementController(seed=0, max_rounds=4), space).run(100)
    for rec in run.issued:
        if rec.point["lossA,lossB"][0]:  # loss A disabled: alpha stays at the middle
            assert rec.point["loss_a.alpha"] == pytest.approx(0.5)
    assert any(r.point["loss_a.alpha"] != pytest.approx(0.5) for r in run.issued if not r.point["lossA,lossB"][0])


def test_policy_moves_towards_the_optimum():
    space = spaces.float_only()  # score_of prefers 30% of each range
    ctrl = ReinforcementController(seed=0, max_rounds=15)
    FakeRun(ctrl, space, workers=1).run(1000)
    mean = ctrl._chains[0].mean
    assert all(abs(m - 0.3) < 0.1 for m in mean), mean


def test_utilities_rank_ties_and_failures():
    u = policy.utilities([0.1, None, 0.9, 0.5])
    assert u[2] > u[3] > u[0] >= u[1]
    assert math.isclose(sum(u), 0.0, abs_tol=1e-12)
    assert policy.utilities([None, None, None]) == [0.0, 0.0, 0.0]
    mean, sigma = policy.update([0.5], [0.2], [[1.0], [-1.0]], [None, None])
    assert mean == [0.5] and sigma == [0.2]


@pytest.mark.parametrize("args", [{"max_rounds": 0}, {"samples_per_round": 1}, {"init_sigma": 2.0}])
def test_bad_args(args):
    with pytest.raises(ConfigError):
        ReinforcementController(**args)
