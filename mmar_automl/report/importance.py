"""Parameter importance with Optuna's evaluators over the finished jobs of a run.

The scored jobs become trials of an in-memory study (``optuna.trial.create_trial``), one distribution
per searched dimension: a float range -> FloatDistribution, an enum -> CategoricalDistribution of its
choices (by display label). The default evaluator is PED-ANOVA: it needs no model fitting, so 1000
jobs take tens of milliseconds (fANOVA fits a random forest: seconds). Optuna is imported here only.
"""

from __future__ import annotations

import json
import logging
import warnings
from dataclasses import dataclass, field
from typing import Any

from mmar_automl.report.data import RunReport, format_dimension_value
from mmar_automl.search.format import display_name
from mmar_automl.search.space import EnumDimension, FloatDimension

EVALUATORS = ("ped-anova", "fanova")
MIN_JOBS = 3
# Below this many scored jobs the values are shown with a low-confidence caveat. PED-ANOVA compares
# the top 10% of the jobs (Optuna's target_quantile 0.1) with all of them, and Optuna pads that top
# group to at least 2 jobs: up to 20 jobs the "top" is 2 jobs, so an importance near 1 only says
# how two jobs differ from the rest (issue 16: 0.986 over 6 jobs where fANOVA said 0.27). From 21
# jobs on the top group grows with the run. fANOVA's forest over so few points is no steadier.
LOW_CONFIDENCE_JOBS = 21


@dataclass
class Importance:
    evaluator: str
    values: dict[str, float] = field(default_factory=dict)   # dimension name -> importance, sums to ~1
    jobs: int = 0
    note: str | None = None                                  # why there are no values, what was left out

    @property
    def low_confidence(self) -> bool:
        return bool(self.values) and self.jobs < LOW_CONFIDENCE_JOBS

    @property
    def caveat(self) -> str | None:
        """The low-confidence note shown with the values, or None."""
        if not self.low_confidence:
            return None
        return (f"low confidence: {self.jobs} scored jobs (fewer than {LOW_CONFIDENCE_JOBS}); the values "
                "describe these jobs, not the search space, and another method may rank the parameters differently")

    def to_json(self) -> dict[str, Any]:
        return {"evaluator": self.evaluator, "values": self.values, "jobs": self.jobs, "note": self.note,
                "low_confidence": self.low_confidence, "caveat": self.caveat}


def parameter_importance(report: RunReport, evaluator: str = "ped-anova") -> Importance:
    """Importance of each searched dimension for the score; ``note`` says why when it cannot be computed."""
    if evaluator not in EVALUATORS:
        raise ValueError(f"unknown importance evaluator {evaluator!r}; use one of {EVALUATORS}")
    label = "PED-ANOVA (optuna.importance.PedAnovaImportanceEvaluator)" if evaluator == "ped-anova" \
        else "fANOVA (optuna.importance.FanovaImportanceEvaluator, 16 trees)"
    rows = report.scored()
    result = Importance(label, jobs=len(rows))
    if report.space is None:
        result.note = "the journal holds no search space"
        return result
    if len(rows) < MIN_JOBS:
        result.note = f"needs at least {MIN_JOBS} scored jobs, the run has {len(rows)}"
        return result
    if len({r.score for r in rows}) < 2:
        result.note = "every scored job has the same score"
        return result
    # A dimension every scored job gave the same value cannot explain anything (PED-ANOVA would still
    # credit it): it is left out and listed in the note. So is one that some jobs' points lack (Optuna
    # leaves out a dimension made inactive by another, e.g. the prob of a disabled transform): keeping
    # it would drop those jobs, and with them what the switching dimension explains.
    dims, constant, partial = [], [], []
    for dim in report.space:
        points = [r.record.recommendation.point for r in rows]
        seen = {json.dumps(p.get(dim.name), sort_keys=True) for p in points}
        if not all(dim.name in p for p in points):
            partial.append(dim)
        else:
            (dims if _varies(dim) and len(seen) > 1 else constant).append(dim)
    notes = []
    if constant:
        notes.append("left out (one value over the scored jobs): " + ", ".join(display_name(d.name) for d in constant))
    if partial:
        notes.append("left out (inactive in some scored jobs): " + ", ".join(display_name(d.name) for d in partial))
    result.note = "; ".join(notes) or None
    if not dims:
        result.note = "no dimension took more than one value over the scored jobs"
        return result

    optuna = _import_optuna(need_sklearn=evaluator == "fanova")
    from optuna.distributions import CategoricalDistribution, FloatDistribution

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    distributions: dict[str, Any] = {}
    for dim in dims:
        if isinstance(dim, FloatDimension):
            distributions[dim.name] = FloatDistribution(float(dim.low), float(dim.high))
        else:
            labels = list(dict.fromkeys(format_dimension_value(dim, list(c)) for c in dim.choices))
            distributions[dim.name] = CategoricalDistribution(labels)
    trials = []
    for row in rows:  # every point holds every kept dimension (checked above)
        point = row.record.recommendation.point
        params: dict[str, Any] = {}
        for dim in dims:
            value = point[dim.name]
            if isinstance(dim, FloatDimension):
                params[dim.name] = min(max(float(value), float(dim.low)), float(dim.high))
            else:
                params[dim.name] = format_dimension_value(dim, value)
        trials.append(optuna.trial.create_trial(params=params, distributions=distributions,
                                                value=float(row.score)))  # type: ignore[arg-type]
    study = optuna.create_study(direction="maximize")
    study.add_trials(trials)
    if evaluator == "ped-anova":
        chosen = optuna.importance.PedAnovaImportanceEvaluator()
    else:
        chosen = optuna.importance.FanovaImportanceEvaluator(n_trees=16, max_depth=8, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PED-ANOVA is marked experimental
        logging.getLogger("optuna").setLevel(logging.ERROR)
        try:
            values = optuna.importance.get_param_importances(study, evaluator=chosen, normalize=True)
        except (ValueError, RuntimeError, ZeroDivisionError) as err:
            result.note = f"could not be computed: {err}"
            return result
    # Most important first; equal values by name, so that tied bars keep their order between invocations.
    rounded = {name: round(float(v), 6) for name, v in values.items()}
    result.values = dict(sorted(rounded.items(), key=lambda kv: (-kv[1], kv[0])))
    return result


def _import_optuna(need_sklearn: bool) -> Any:
    """``import optuna.importance`` also imports scikit-learn for fANOVA (2.6 s here, most of a report's
    time budget); PED-ANOVA does not need it. Optuna imports it through ``try_import``, which tolerates
    an ImportError, so for PED-ANOVA ``sklearn.ensemble`` is hidden while optuna.importance loads. A later
    fANOVA call in the same process reloads Optuna's fANOVA module (below); nothing here uses Optuna's
    other scikit-learn evaluator (MeanDecreaseImpurity), which would need the same reload."""
    import sys

    hide = not need_sklearn and "sklearn.ensemble" not in sys.modules and "optuna.importance" not in sys.modules
    if hide:
        sys.modules["sklearn.ensemble"] = None  # type: ignore[assignment] - makes the import raise ImportError
    try:
        import optuna
        import optuna.importance  # noqa: F401
    finally:
        if hide and sys.modules.get("sklearn.ensemble", 0) is None:
            del sys.modules["sklearn.ensemble"]
    fanova = sys.modules.get("optuna.importance._fanova._fanova")
    if need_sklearn and fanova is not None and not fanova._imports.is_successful():
        import importlib

        importlib.reload(fanova)  # an earlier PED-ANOVA call in this process hid scikit-learn
    return optuna


def _varies(dim: FloatDimension | EnumDimension) -> bool:
    if isinstance(dim, FloatDimension):
        return dim.high > dim.low
    return len({repr(c) for c in dim.choices}) > 1
