from __future__ import annotations

import pytest

import controller_spaces as spaces
from fake_executor import FakeRun
from mmar_automl.context import Context, ContextKey
from mmar_automl.controllers.grid import GridController
from mmar_automl.controllers.pruning import Pruner, learning_score
from mmar_automl.controllers.random import RandomController
from mmar_automl.errors import ConfigError
from mmar_automl.recommendation import JobState, Outcome, Recommendation


def _good_curve(k):
    return tuple((step, 0.5 + 0.05 * step + 0.01 * k) for step in range(1, 6))


def _finish_good_jobs(ctrl, ctx, recs):
    for k, rec in enumerate(recs):
        for step, value in _good_curve(k):
            assert not ctrl.should_prune(rec, step, value, ctx)
        ctrl.refine_recommendation(Outcome(rec, JobState.COMPLETE, _good_curve(k)[-1][1], f"J{k}", _good_curve(k)),
                                   ctx)


@pytest.mark.parametrize("name, args", [("median", {"n_startup_trials": 3}),
                                        ("successive_halving", {"min_resource": 1, "reduction_factor": 2}),
                                        ("hyperband", {"min_resource": 1, "max_resource": 5, "reduction_factor": 2})])
def test_a_clearly_worse_curve_is_pruned(name, args):
    ctrl = RandomController(seed=0, pruner=name, pruner_args=args)
    ctx = Context(**{ContextKey.NUM_WORKERS: 1, ContextKey.SEED: 0})
    ctrl.set_search_space(spaces.float_only(), ctx)
    recs = ctrl.initial_recommendation(ctx)
    for _ in range(7):
        recs += ctrl._next(1)
    _finish_good_jobs(ctrl, ctx, recs[:6])
    bad, good = recs[6], recs[7]
    pruned_at = next((s for s in range(1, 6) if ctrl.should_prune(bad, s, 0.05, ctx)), None)
    assert pruned_at is not None
    assert not any(ctrl.should_prune(good, s, 0.9 + 0.05 * s, ctx) for s in range(1, 3))


def test_median_pruner_state_survives_replay():
    space = spaces.float_only()
    live = RandomController(seed=0, pruner="median", pruner_args={"n_startup_trials": 3})
    run = FakeRun(live, space, workers=1).run(6)
    replayed = RandomController(seed=0, pruner="median", pruner_args={"n_startup_trials": 3})
    ctx = Context(**{ContextKey.NUM_WORKERS: 1, ContextKey.SEED: 7})
    replayed.set_search_space(space, ctx)
    replayed.initial_recommendation(ctx)
    for outcome in run.journal:
        replayed.refine_recommendation(outcome, ctx)
    nxt = run.issued[-1]
    best = max(o.score for o in run.journal)
    for value in (best - 1.0, best + 1.0):
        assert live.should_prune(nxt, 1, value, ctx) == replayed.should_prune(nxt, 1, value, ctx)
    assert live.should_prune(nxt, 1, best - 1.0, ctx)


def test_no_pruner_never_prunes_and_does_not_import_optuna():
    ctrl = GridController()
    assert not ctrl._pruner.enabled
    assert not ctrl.should_prune(Recommendation(0, {}), 1, -1e9, Context())


def test_unknown_pruner_and_bad_args():
    with pytest.raises(ConfigError):
        Pruner("asha")
    with pytest.raises(ConfigError) as err:
        Pruner("median", {"warmup": 3})
    assert err.value.json_path == "controller.args.pruner_args"


def test_learning_score():
    rec = Recommendation(0, {})
    assert learning_score(Outcome(rec, JobState.PRUNED, None, "", ((1, 0.2), (2, 0.3)))) == 0.3
    assert learning_score(Outcome(rec, JobState.PRUNED, 0.25, "", ((1, 0.2),))) == 0.25
    assert learning_score(Outcome(rec, JobState.FAILED, None)) is None
    assert learning_score(Outcome(rec, JobState.COMPLETE, 0.7)) == 0.7
