"""Early stopping of bad jobs, for every controller: Optuna pruners on an in-memory study.

The engine calls ``Controller.should_prune(rec, step, value, ctx)`` with each intermediate key-metric
value of a running job (its validation lines in metrics.jsonl; ``step`` as the engine counts it, the
validation epoch). Each recommendation is one Optuna trial, with ``trial.number == rec_id`` (trials are
asked in rec-id order) so that Hyperband's bracket of a job does not depend on timing. When the job's
outcome arrives, its curve (``Outcome.intermediate``) is reported in full and the trial told: pruner
state is rebuilt by replaying outcomes, like the rest of a controller.

Pruners (controller args ``pruner`` and ``pruner_args``, passed to the Optuna class as keywords):
``none`` (default), ``median`` (MedianPruner), ``successive_halving`` (SuccessiveHalvingPruner),
``hyperband`` (HyperbandPruner). Higher key-metric values are better (the study maximises).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mmar_automl.context import Context
from mmar_automl.controllers.base import AUTOML_CONFIG
from mmar_automl.errors import ConfigError
from mmar_automl.recommendation import JobState, Outcome, Recommendation

PRUNERS: dict[str, str] = {
    "none": "NopPruner",
    "median": "MedianPruner",
    "successive_halving": "SuccessiveHalvingPruner",
    "hyperband": "HyperbandPruner",
}


def learning_score(outcome: Outcome) -> float | None:
    """The value a controller learns from: the score of a finished job; for a PRUNED job its score (the
    engine records its last value) or else its last intermediate value; None for failed jobs or jobs
    that never validated (controllers treat None as the worst result, never as a number)."""
    if outcome.state is JobState.PRUNED:
        if outcome.score is not None:
            return outcome.score
        return outcome.intermediate[-1][1] if outcome.intermediate else None
    if outcome.state in (JobState.COMPLETE, JobState.TIMED_OUT):
        return outcome.score
    return None


class Pruner:
    """One Optuna pruner judging the curves of a run's jobs."""

    def __init__(self, name: str = "none", args: Mapping[str, Any] | None = None):
        if name not in PRUNERS:
            raise ConfigError(AUTOML_CONFIG, "controller.args.pruner",
                              f"unknown pruner {name!r}; expected one of {', '.join(PRUNERS)}")
        if args is not None and not isinstance(args, Mapping):
            raise ConfigError(AUTOML_CONFIG, "controller.args.pruner_args",
                              f"pruner_args must be an object, got {args!r}")
        self.name = name
        self.args = dict(args or {})
        self._study: Any = None
        self._trials: list[Any] = []          # index == rec_id
        self._reported: dict[int, set[int]] = {}
        self._finished: set[int] = set()
        if name != "none":
            self._study = self._make_study()

    @property
    def enabled(self) -> bool:
        return self._study is not None

    def _make_study(self) -> Any:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        try:
            pruner = getattr(optuna.pruners, PRUNERS[self.name])(**self.args)
        except (TypeError, ValueError) as exc:
            raise ConfigError(AUTOML_CONFIG, "controller.args.pruner_args", f"{self.name} pruner: {exc}") from None
        # The sampler is never used (no parameters are sampled here); a fixed name keeps Hyperband's
        # bracket hashing stable.
        return optuna.create_study(direction="maximize", pruner=pruner, study_name="mmar-automl-pruner",
                                   sampler=optuna.samplers.RandomSampler(seed=0))

    def _trial(self, rec_id: int) -> Any:
        while len(self._trials) <= rec_id:
            self._trials.append(self._study.ask())
        return self._trials[rec_id]

    def _report(self, rec_id: int, step: int, value: float) -> bool:
        trial = self._trial(rec_id)
        seen = self._reported.setdefault(rec_id, set())
        if step not in seen:
            seen.add(step)
            trial.report(float(value), int(step))
        return trial.should_prune()

    def should_prune(self, rec_id: int, step: int, value: float) -> bool:
        """Report one intermediate value of a running job; True: stop it."""
        if not self.enabled or rec_id in self._finished or value != value:  # NaN: the engine fails it
            return False
        return self._report(rec_id, step, value)

    def observe(self, outcome: Outcome) -> None:
        """Record a finished job's whole curve and state (live and on replay alike)."""
        rec_id = outcome.recommendation.rec_id
        if not self.enabled or rec_id in self._finished:
            return
        import optuna

        for step, value in outcome.intermediate:
            if value == value:
                self._report(rec_id, step, value)  # also keeps successive halving's rung records
        self._finished.add(rec_id)
        trial = self._trial(rec_id)
        score = learning_score(outcome)
        if outcome.state is JobState.PRUNED and self._reported.get(rec_id):
            self._study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        elif score is not None and outcome.state is not JobState.PRUNED:
            self._study.tell(trial, score)
        else:
            self._study.tell(trial, state=optuna.trial.TrialState.FAIL)


class PrunerMixin:
    """Gives a controller the ``pruner``/``pruner_args`` args: call ``_init_pruner`` in ``__init__`` and
    ``_observe_outcome`` at the start of ``refine_recommendation``."""

    _pruner: Pruner

    def _init_pruner(self, pruner: str = "none", pruner_args: Mapping[str, Any] | None = None) -> None:
        self._pruner = Pruner(pruner, pruner_args)

    def _observe_outcome(self, outcome: Outcome) -> None:
        self._pruner.observe(outcome)

    def should_prune(self, recommendation: Recommendation, step: int, value: float, ctx: Context) -> bool:
        return self._pruner.should_prune(recommendation.rec_id, step, value)
