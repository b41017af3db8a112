from __future__ import annotations

import itertools

from mmar_automl.context import Context, ContextKey
from mmar_automl.controllers.grid import GridController
from mmar_automl.recommendation import JobState, Outcome

import controller_spaces as spaces


def _grid(space):
    ctrl = GridController(seed=0)
    ctrl.set_search_space(space, Context(**{ContextKey.NUM_WORKERS: 2, ContextKey.SEED: 0}))
    return ctrl, ctrl.initial_recommendation(Context(**{ContextKey.NUM_WORKERS: 2, ContextKey.SEED: 0}))


def test_grid_covers_every_combination_once_in_order():
    space = spaces.mixed()
    ctrl, recs = _grid(space)
    expected = [
        {"model.channels": list(a), "model.num_res_units": list(b)}
        for a, b in itertools.product(space["model.channels"].choices, space["model.num_res_units"].choices)
    ]
    got = [{k: r.point[k] for k in ("model.channels", "model.num_res_units")} for r in recs]
    assert got == expected
    assert [r.rec_id for r in recs] == list(range(6))
    assert ctrl.is_exhausted()


def test_grid_floats_sit_at_the_middle():
    _, recs = _grid(spaces.mixed())
    for r in recs:
        assert r.point["learning_rate"] == (1e-5 + 1e-3) / 2
        assert r.point["RandFlipd.prob"] == 0.5


def test_grid_without_enums_is_one_point_and_refine_adds_nothing():
    ctrl, recs = _grid(spaces.float_only())
    assert len(recs) == 1
    out = Outcome(recs[0], JobState.FAILED, None)
    assert ctrl.refine_recommendation(out, Context()) == []
