"""OptunaController: Optuna's samplers through ask-and-tell on a study kept in the run folder.

The study lives in ``<run_dir>/optuna_journal.log`` (Optuna's JournalStorage with its file backend),
so ``optuna-dashboard`` and ``optuna.load_study`` work on any run. It is a *view*, not the record:
the run's journal.jsonl is the source of truth, and resume rebuilds the controller by replaying the
journaled outcomes (controllers/base.py). So the controller starts every session (new or resumed)
with a fresh Optuna file: the replay then writes the same trials again, in the same order, with the
same parameters (the sampler is seeded), and the file ends up matching the journal even if the
previous session died between writing one and the other. Without a run folder (unit tests, the
benchmark's direct calls) the study is in memory.

Config: ``{"name": "OptunaController", "args": {"sampler": "tpe", "sampler_args": {...}, "n_trials": 30,
"pruner": "median", "pruner_args": {...}}}``. Samplers: ``tpe`` (default), ``cmaes``, ``gp``, ``random``,
``qmc``; ``sampler_args`` go to the Optuna class as keywords (``seed`` defaults to the run's seed).

Enum dimensions are categorical over choice indices. Conditional dimensions (define-by-run): the enum
dimensions that switch components on and off (``@disabled`` consumers) are sampled first, then only the
dimensions still active at that point (``SearchSpace.inactive``); an inactive dimension is neither
sampled nor in the recommendation's point, and the renderer keeps the config's own value for it.
Optuna is imported only when the controller is built, never when this module is imported.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from mmar_automl.context import Context, ContextKey
from mmar_automl.controllers._points import float_middles, middle, ordered
from mmar_automl.controllers.base import AUTOML_CONFIG, Controller
from mmar_automl.controllers.pruning import PrunerMixin, learning_score
from mmar_automl.errors import ConfigError
from mmar_automl.recommendation import Outcome, Recommendation
from mmar_automl.search.space import DISABLED_ARG, EnumDimension, IntDimension

SAMPLERS: dict[str, str] = {
    "tpe": "TPESampler",
    "cmaes": "CmaEsSampler",
    "gp": "GPSampler",
    "random": "RandomSampler",
    "qmc": "QMCSampler",
}


STUDY_FILE = "optuna_journal.log"


def study_storage(run_dir: str | Path | None) -> Any:
    """A fresh JournalStorage in ``run_dir/optuna_journal.log`` (any earlier file is replaced: see the
    module docstring), or None (in memory) without a run folder."""
    if not run_dir:
        return None
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    path = Path(run_dir) / STUDY_FILE
    path.unlink(missing_ok=True)
    return JournalStorage(JournalFileBackend(str(path)))


class OptunaController(PrunerMixin, Controller):
    """Args: ``sampler``, ``sampler_args``, ``n_trials`` (left out: unbounded, the engine's
    ``--max-jobs`` ends the run), ``pruner``, ``pruner_args``, ``sample_inactive`` (default false: see
    ``_sample``), ``start_at_center`` (default false: the first trial puts every float and int
    dimension at the middle of its range, as Clara's Reinforcement controller begins; enums are left
    to the sampler; skipped after a warm start, whose jobs already tell the sampler where to look).
    A PRUNED job is told to the sampler as a complete trial valued at its last intermediate value; a
    job without a score (failed, never validated) as a FAIL trial, which the samplers ignore. Learns from a warm start (earlier jobs added
    as complete trials before the first ask)."""

    accepts_warm_start = True

    def __init__(self, seed: int | None = None, sampler: str = "tpe", sampler_args: dict[str, Any] | None = None,
                 n_trials: int | None = None, pruner: str = "none", pruner_args: dict[str, Any] | None = None,
                 sample_inactive: bool = False, start_at_center: bool = False):
        super().__init__(seed=seed)
        if sampler not in SAMPLERS:
            raise ConfigError(AUTOML_CONFIG, "controller.args.sampler",
                              f"unknown sampler {sampler!r}; expected one of {', '.join(SAMPLERS)}")
        if n_trials is not None and (not isinstance(n_trials, int) or isinstance(n_trials, bool) or n_trials < 1):
            raise ConfigError(AUTOML_CONFIG, "controller.args.n_trials",
                              f"n_trials must be a positive integer, got {n_trials!r}")
        if sampler_args is not None and not isinstance(sampler_args, dict):
            raise ConfigError(AUTOML_CONFIG, "controller.args.sampler_args",
                              f"sampler_args must be an object, got {sampler_args!r}")
        for name, flag in (("sample_inactive", sample_inactive), ("start_at_center", start_at_center)):
            if not isinstance(flag, bool):
                raise ConfigError(AUTOML_CONFIG, f"controller.args.{name}", f"{name} must be true or false, got {flag!r}")
        self.sample_inactive = sample_inactive
        self.start_at_center = start_at_center
        self.sampler_name = sampler
        self.sampler_args = dict(sampler_args or {})
        self.n_trials = n_trials
        self._init_pruner(pruner, pruner_args)
        self._study: Any = None
        self._trials: dict[int, Any] = {}  # rec_id -> optuna Trial still running
        self._warm_trials = 0              # complete trials added from an earlier run (warm start)
        self._make_sampler(seed)           # fail on bad sampler_args now (validate), not mid-run

    def _make_sampler(self, seed: int | None) -> Any:
        import inspect

        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        cls = getattr(optuna.samplers, SAMPLERS[self.sampler_name])
        args = dict(self.sampler_args)
        params = inspect.signature(cls).parameters
        if "seed" in params:
            # Optuna takes seeds in [0, 2**32); any --seed works for the other controllers, so fold it in.
            args.setdefault("seed", None if seed is None else seed % 2**32)
        if "warn_independent_sampling" in params and self.sampler_name != "tpe":
            # Enums and conditional dims are sampled independently by design; a warning per trial is noise.
            args.setdefault("warn_independent_sampling", False)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return cls(**args)
        except (TypeError, ValueError, ImportError) as exc:
            raise ConfigError(AUTOML_CONFIG, "controller.args.sampler_args", f"{self.sampler_name} sampler: {exc}") \
                from None

    # -- Clara interface -------------------------------------------------------------------------
    def initial_recommendation(self, ctx: Context) -> list[Recommendation]:
        import optuna

        assert self.space is not None, "set_search_space first"
        run_id = ctx.get_prop(ContextKey.RUN_ID)
        self._study = optuna.create_study(direction="maximize", sampler=self._make_sampler(self.seed),
                                          study_name=run_id or "mmar-automl",
                                          storage=study_storage(ctx.get_prop(ContextKey.RUN_DIR)))
        if run_id:
            self._study.set_user_attr("mmar_run_id", run_id)
        self._warm_start(ctx.get_prop(ContextKey.WARM_START) or [])
        if self.start_at_center and not self._warm_trials:
            self._study.enqueue_trial(float_middles(self.space))   # ask() hands these values to trial 0
        return self._ask(max(1, int(ctx.get_prop(ContextKey.NUM_WORKERS, 1) or 1)))

    def _warm_start(self, trials: list[dict[str, Any]]) -> None:
        """Earlier jobs (run/warmstart.py: points of this space, possibly without some dimensions) as
        complete trials, before the first ask: the sampler learns from them as from its own."""
        import optuna

        assert self.space is not None
        self._warm_trials = len(trials)
        for item in trials:
            params, dists = {}, {}
            point = dict(item["point"])
            if self.sample_inactive:
                # The earlier job left its inactive dimensions out; give them a value (any: they had
                # no effect) so the trial spans the study's one space, as this run's own trials do.
                inactive = self.space.inactive(point)
                point.update({d.name: middle(d) if not isinstance(d, EnumDimension) else list(d.choices[0])
                              for d in self.space if d.name in inactive and d.name not in point})
            for name, value in point.items():
                dim = self.space[name]
                dists[name] = _distribution(dim)
                params[name] = dim.index_of(value) if isinstance(dim, EnumDimension) else value
            self._study.add_trial(optuna.trial.create_trial(
                params=params, distributions=dists, value=float(item["score"]),
                user_attrs={"job": item.get("job", ""), "warm_start": True}))

    def refine_recommendation(self, outcome: Outcome, ctx: Context) -> list[Recommendation]:
        import optuna

        self._observe_outcome(outcome)
        trial = self._trials.pop(outcome.recommendation.rec_id, None)
        if trial is None:
            return []
        score = learning_score(outcome)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            trial.set_user_attr("job", outcome.job_name)       # the job folder, for the dashboard
            trial.set_user_attr("state", outcome.state.value)
            if score is None or score != score:
                self._study.tell(trial, state=optuna.trial.TrialState.FAIL)
            else:
                self._study.tell(trial, float(score))
        return self._ask(1)

    def is_exhausted(self) -> bool:
        return self.n_trials is not None and self._next_rec_id >= self.n_trials

    def shutdown(self, ctx: Context) -> None:
        """Trials asked but never told (a recommendation the run did not start before it stopped, or a
        job aborted with it) end as FAIL, so the study file shows no trial running forever. A resume
        rebuilds the file from the journal anyway (module docstring)."""
        import optuna

        if self._study is not None:
            for trial in self._trials.values():
                trial.set_user_attr("state", "not finished when the run stopped")
                self._study.tell(trial, state=optuna.trial.TrialState.FAIL)
        self._trials.clear()

    @property
    def study(self) -> Any:
        """The in-memory Optuna study (for reports and tests; do not tell it yourself)."""
        return self._study

    # -- sampling --------------------------------------------------------------------------------
    def _ask(self, count: int) -> list[Recommendation]:
        import optuna

        if self.n_trials is not None:
            count = min(count, self.n_trials - self._next_rec_id)
        recs = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            for _ in range(max(0, count)):
                trial = self._study.ask()
                rec = self._recommend(self._sample(trial), trial=trial.number)
                self._trials[rec.rec_id] = trial
                recs.append(rec)
        return recs

    def _sample(self, trial: Any) -> dict[str, Any]:
        """Define-by-run: switches first, then only the dimensions active at the switches' values.

        With ``sample_inactive`` every dimension is sampled in every trial and the inactive ones are
        then left out of the point (the job's config keeps its own value for them). The study then has
        one fixed search space, which the GP sampler needs to model all dimensions jointly (it models
        only the dimensions every trial has; an inactive dimension's value simply has no effect on the
        score there); define-by-run suits TPE's ``group`` mode instead."""
        assert self.space is not None
        point: dict[str, Any] = {}
        switches = [d for d in self.space if any(c.arg == DISABLED_ARG for c in d.consumers)]
        for dim in switches:
            point[dim.name] = self._suggest(trial, dim)
        inactive = self.space.inactive(point) - {d.name for d in switches}
        for dim in self.space:
            if dim.name not in point and (dim.name not in inactive or self.sample_inactive):
                point[dim.name] = self._suggest(trial, dim)
        return ordered(self.space, {k: v for k, v in point.items() if k not in inactive})

    @staticmethod
    def _suggest(trial: Any, dim: Any) -> Any:
        if isinstance(dim, EnumDimension):
            k = trial.suggest_categorical(dim.name, list(range(len(dim.choices))))
            return list(dim.choices[k])
        if isinstance(dim, IntDimension):
            return trial.suggest_int(dim.name, dim.low, dim.values[-1], step=dim.step, log=dim.log)
        return trial.suggest_float(dim.name, dim.low, dim.high, log=dim.log)


def _distribution(dim: Any) -> Any:
    """The Optuna distribution ``_suggest`` asks for ``dim`` (enum: categorical over choice indices)."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    if isinstance(dim, EnumDimension):
        return CategoricalDistribution(list(range(len(dim.choices))))
    if isinstance(dim, IntDimension):
        return IntDistribution(dim.low, dim.values[-1], step=dim.step, log=dim.log)
    return FloatDistribution(dim.low, dim.high, log=dim.log)
