from __future__ import annotations

import pytest

import controller_spaces as spaces
from fake_executor import FakeRun, replay
from mmar_automl.controllers.optuna import OptunaController
from mmar_automl.errors import ConfigError
from mmar_automl.recommendation import JobState, Outcome


def test_inactive_dimension_is_neither_sampled_nor_reported():
    space = spaces.conditional()
    ctrl = OptunaController(seed=0, sampler="random")
    run = FakeRun(ctrl, space).run(20)
    seen_both = set()
    for rec in run.issued:
        a_disabled = rec.point["lossA,lossB"][0]
        seen_both.add(a_disabled)
        assert ("loss_a.alpha" in rec.point) == (not a_disabled)
    assert seen_both == {True, False}
    for trial in ctrl.study.trials:
        choice = space["lossA,lossB"].choices[trial.params["lossA,lossB"]]
        assert ("loss_a.alpha" in trial.params) == (not choice[0])


def test_sample_inactive_gives_the_study_one_space_but_points_keep_the_contract():
    """With ``sample_inactive`` (the default's GP on conditional spaces) every trial has every
    dimension, so the GP models them all; the points still leave the inactive ones out."""
    space = spaces.conditional()
    ctrl = OptunaController(seed=0, sampler="gp", sample_inactive=True, sampler_args={"n_startup_trials": 3})
    run = FakeRun(ctrl, space, seed=0).run(8)
    disabled = set()
    for rec in run.issued:
        a_disabled = rec.point["lossA,lossB"][0]
        disabled.add(a_disabled)
        assert ("loss_a.alpha" in rec.point) == (not a_disabled)
        space.validate_point(rec.point)
    assert disabled == {True, False}
    assert all(set(t.params) == set(space.names) for t in ctrl.study.trials)
    again = replay(OptunaController(seed=0, sampler="gp", sample_inactive=True,
                                    sampler_args={"n_startup_trials": 3}), space, run.journal, seed=0)
    assert [r.point for r in again] == [r.point for r in run.issued]


def test_sample_inactive_warm_start_fills_the_earlier_jobs_inactive_dimensions():
    from mmar_automl.context import Context, ContextKey

    space = spaces.conditional()
    earlier = FakeRun(OptunaController(seed=0, sampler="random"), space, seed=0).run(6)
    warm = [{"point": dict(o.recommendation.point), "score": o.score, "job": o.job_name} for o in earlier.journal]
    assert any("loss_a.alpha" not in w["point"] for w in warm)
    ctrl = OptunaController(seed=1, sampler="gp", sample_inactive=True, start_at_center=True)
    ctx = Context(**{ContextKey.NUM_WORKERS: 1, ContextKey.SEED: 1, ContextKey.WARM_START: warm})
    ctrl.set_search_space(space, ctx)
    ctrl.initial_recommendation(ctx)
    added = [t for t in ctrl.study.trials if t.user_attrs.get("warm_start")]
    assert len(added) == len(warm) and all(set(t.params) == set(space.names) for t in added)
    assert [t.value for t in added] == [w["score"] for w in warm]


def test_start_at_center_puts_the_first_trial_at_the_middle_of_every_range():
    from mmar_automl.controllers._points import float_middles

    space = spaces.parsed(spaces.PARSED_SCALED)            # log float, stepped int, log int, wide int, enum
    make = lambda: OptunaController(seed=1, sampler="tpe", start_at_center=True)  # noqa: E731
    run = FakeRun(make(), space, workers=2, seed=1).run(6)
    middles = float_middles(space)
    assert {k: v for k, v in run.issued[0].point.items() if k in middles} == middles
    assert run.issued[0].point.keys() == set(space.names)      # the enum drawn by the sampler
    assert {k: run.issued[1].point[k] for k in middles} != middles
    again = replay(make(), space, run.journal, workers=2, seed=1)
    assert [r.point for r in again] == [r.point for r in run.issued[:len(again)]]


def test_n_trials_bounds_the_run():
    run = FakeRun(OptunaController(seed=0, n_trials=5), spaces.mixed(), workers=3).run(50)
    assert len(run.issued) == 5 and run.ctrl.is_exhausted()


def test_tpe_learns_on_a_float_space():
    space = spaces.float_only()
    tpe = FakeRun(OptunaController(seed=0, sampler_args={"n_startup_trials": 8}), space, workers=1).run(40)
    rnd = FakeRun(OptunaController(seed=0, sampler="random"), space, workers=1).run(40)
    best = lambda run: max(o.score for o in run.journal)  # noqa: E731
    assert best(tpe) > best(rnd)


def test_pruned_outcome_is_learned_at_its_last_value():
    space = spaces.float_only()
    ctrl = OptunaController(seed=0, sampler="random")
    run = FakeRun(ctrl, space, workers=1)
    rec = run.issued[0]
    ctrl.refine_recommendation(Outcome(rec, JobState.PRUNED, None, "J1", ((1, 0.2), (2, 0.25))), run.ctx)
    assert ctrl.study.trials[0].value == 0.25


@pytest.mark.parametrize("args, path", [
    ({"sampler": "bayes"}, "controller.args.sampler"),
    ({"sampler": "tpe", "sampler_args": {"n_startup": 3}}, "controller.args.sampler_args"),
    ({"n_trials": 0}, "controller.args.n_trials"),
    ({"pruner": "asha"}, "controller.args.pruner"),
    ({"sample_inactive": "yes"}, "controller.args.sample_inactive"),
    ({"start_at_center": 1}, "controller.args.start_at_center"),
])
def test_bad_args_are_config_errors(args, path):
    with pytest.raises(ConfigError) as err:
        OptunaController(**args)
    assert err.value.json_path == path and "config_automl.json" in str(err.value)


@pytest.mark.slow
def test_gp_sampler_replays_and_stays_in_the_space():
    space = spaces.mixed()
    make = lambda: OptunaController(seed=2, sampler="gp", sampler_args={"n_startup_trials": 3})  # noqa: E731
    live = FakeRun(make(), space, seed=2).run(7)
    for rec in live.issued:
        space.validate_point(rec.point)
    again = replay(make(), space, live.journal, seed=2)
    assert [r.point for r in again] == [r.point for r in live.issued]


def test_importing_controllers_does_not_import_optuna():
    import subprocess
    import sys

    code = "import sys, mmar_automl.controllers, mmar_automl.controllers.optuna; print('optuna' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_points_without_inactive_dimensions_render():
    # The contract (docs/controllers.md, Points): an inactive dimension is left out of the point and the
    # renderer keeps the config's own value for it.
    from mmar_automl.search import render_config

    config = spaces.PARSED_CONDITIONAL
    space = spaces.parsed(config)
    run = FakeRun(OptunaController(sampler="random"), space).run(6)
    for rec in run.issued:
        assert space.inactive(rec.point) and set(space.names) - set(rec.point) == space.inactive(rec.point)
        rendered = render_config(config, space, rec.point)
        losses = rendered["train"]["loss"]
        assert [loss["disabled"] for loss in losses] == rec.point["offA,offB"]
        kept = losses[0] if "DiceLoss.smooth" in space.inactive(rec.point) else losses[1]
        assert kept["args"] == config["train"]["loss"][losses.index(kept)]["args"]
