"""The contract every controller keeps (STYLE.md 1.7): one test class, run on every implementation."""

from __future__ import annotations

import pytest

import controller_spaces as spaces
from fake_executor import FakeRun, replay
from mmar_automl.controllers.grid import GridController
from mmar_automl.controllers.optuna import OptunaController
from mmar_automl.controllers.random import RandomController
from mmar_automl.controllers.reinforcement import ReinforcementController
from mmar_automl.recommendation import JobState

FACTORIES = {
    "grid": lambda seed=None: GridController(seed=seed),
    "random": lambda seed=None: RandomController(seed=seed),
    "reinforcement": lambda seed=None: ReinforcementController(seed=seed, max_rounds=4, samples_per_round=3),
    "optuna-tpe": lambda seed=None: OptunaController(seed=seed, sampler="tpe", sampler_args={"n_startup_trials": 4}),
    "optuna-cmaes": lambda seed=None: OptunaController(seed=seed, sampler="cmaes"),
    "optuna-random": lambda seed=None: OptunaController(seed=seed, sampler="random"),
    "optuna-qmc": lambda seed=None: OptunaController(seed=seed, sampler="qmc"),
    "median-pruned-random": lambda seed=None: RandomController(seed=seed, pruner="median"),
}
JOBS = 14


def _points(recs):
    return [(r.rec_id, r.point) for r in recs]


@pytest.mark.parametrize("space_name", list(spaces.ALL))
@pytest.mark.parametrize("name", list(FACTORIES))
class TestControllerContract:
    def make(self, name, seed=None):
        return FACTORIES[name](seed)

    def test_recommendations_lie_in_the_space(self, name, space_name):
        space = spaces.ALL[space_name]()
        run = FakeRun(self.make(name), space).run(JOBS)
        assert run.issued
        for rec in run.issued:
            missing = set(space.names) - set(rec.point)
            assert set(rec.point) <= set(space.names)
            assert missing <= space.inactive(rec.point), f"{missing} left out but active at {rec.point}"
            for key, value in rec.point.items():
                assert space[key].contains(value), (key, value)

    def test_rec_ids_are_unique_and_in_order(self, name, space_name):
        run = FakeRun(self.make(name), spaces.ALL[space_name]()).run(JOBS)
        assert [r.rec_id for r in run.issued] == list(range(len(run.issued)))

    def test_same_seed_same_recommendations(self, name, space_name):
        space = spaces.ALL[space_name]()
        a = FakeRun(self.make(name, seed=11), space).run(JOBS)
        b = FakeRun(self.make(name, seed=11), space).run(JOBS)
        assert _points(a.issued) == _points(b.issued)
        if name != "grid" and not space_name.endswith("enum_only"):
            c = FakeRun(self.make(name, seed=12), space).run(JOBS)
            assert _points(c.issued) != _points(a.issued)

    def test_seed_from_context_when_not_given(self, name, space_name):
        space = spaces.ALL[space_name]()
        a = FakeRun(self.make(name), space, seed=5).run(6)
        b = FakeRun(self.make(name, seed=5), space, seed=99).run(6)
        assert _points(a.issued) == _points(b.issued)

    def test_replay_gives_the_same_next_recommendations(self, name, space_name):
        space = spaces.ALL[space_name]()
        live = FakeRun(self.make(name, seed=3), space, seed=3).run(JOBS)
        cut = JOBS // 2
        ctrl = self.make(name, seed=3)
        resumed = replay(ctrl, space, live.journal[:cut], seed=3)
        assert _points(resumed) == _points(live.issued[:len(resumed)])
        # the resumed controller, fed the outcomes the uninterrupted run saw next, recommends the same
        for outcome in live.journal[cut:]:
            resumed.extend(ctrl.refine_recommendation(outcome, live.ctx))
        assert _points(resumed) == _points(live.issued)

    def test_failed_outcomes_without_score(self, name, space_name):
        """Every third job fails without a score; the controller goes on to as many jobs as it promises:
        grid one per enum combination; reinforcement per combination one job at the middle, then
        (max_rounds - 1) rounds of samples_per_round where there are floats to refine (FACTORIES: 4, 3);
        the others without end."""
        space = spaces.ALL[space_name]()
        run = FakeRun(self.make(name, seed=1), space, fail_every=3).run(JOBS)
        failed = [o for o in run.journal if o.state is JobState.FAILED]
        assert len(failed) == len(run.journal) // 3 and all(o.score is None for o in failed)
        promised = {"grid": space.grid_size,
                    "reinforcement": space.grid_size * (1 + 3 * 3 if space.continuous else 1)}.get(name, JOBS)
        assert len(run.journal) == min(JOBS, promised)
