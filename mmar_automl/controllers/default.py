"""The controller of an MMAR without config_automl.json: picked from the space and the budget by a
rule that scripts/bench_search.py backs (docs/controllers.md, "The default controller").

The rule, first match wins:
1. only enum dimensions (and int ranges small enough to grid) and the whole grid fits the budget:
   GridController, every combination once (it reaches the best point within the grid size);
2. a budget of at most GP_MAX_BUDGET jobs: Optuna's GP sampler (a Gaussian process with expected
   improvement: the fewest trials to a good point on small continuous, integer, log, mixed and
   conditional spaces), its first job at the middle of every range (``start_at_center``: users draw
   ranges around what they expect to work; Clara's Reinforcement controller starts there too). The
   GP estimates a noise level, as training scores are noisy (``deterministic_objective`` was measured:
   no clear gain, noise-free or with noisy scores). In a conditional space (a switch disables
   components whose args are searched) it samples every dimension in every trial
   (``sample_inactive``) and the job ignores the inactive ones: the GP then models one fixed space,
   in which an inactive dimension has no effect, instead of sampling the conditional dimensions at
   random as it does define-by-run;
3. otherwise Optuna TPE, multivariate (and ``group``ed by branch in a conditional space): the GP's
   refits grow with the cube of the trials.
Both Optuna samplers start from STARTUP_TRIALS random points, fewer than Optuna's 10, because the
budgets here are tens of jobs. With several workers, both account for the running jobs: TPE by its
constant liar (running trials count as bad ones, so parallel asks spread out), the GP sampler by
conditioning on the running trials' points (Optuna 5.0 does it for RUNNING trials). Both are
deterministic on resume: the replay asks and tells in the journal's order.

Pure Python: run's start-up imports this without Optuna.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any

from mmar_automl.controllers.grid import gridded_ints
from mmar_automl.search.space import DISABLED_ARG, SearchSpace

DEFAULT_TRIALS = 30           # jobs of a run without --max-jobs (and without a grid to finish)
GP_MAX_BUDGET = 150           # measured up to here (GP best at 100 and 150 jobs); refits: cubic in the trials
STARTUP_TRIALS = 5            # random trials before the model-based samplers take over


@dataclass(frozen=True)
class DefaultChoice:
    spec: dict[str, Any]      # {"name": ..., "args": {...}}, as a config_automl.json controller
    reason: str               # one line: why this controller, printed at start and journaled


def choose_default(space: SearchSpace, max_jobs: int | None, warm_start: bool = False) -> DefaultChoice:
    """``max_jobs``: the run's --max-jobs (None: DEFAULT_TRIALS jobs, or the whole grid). With a warm
    start the grid is skipped: it cannot learn from earlier jobs."""
    budget = max_jobs if max_jobs is not None else DEFAULT_TRIALS
    grid = _grid_size(space)
    if grid is not None and not warm_start and (max_jobs is None or grid <= max_jobs):
        return DefaultChoice({"name": "GridController", "args": {}},
                             f"only enum choices ({grid} combinations): every combination once")
    n_trials = {} if max_jobs is not None else {"n_trials": DEFAULT_TRIALS}
    conditional = is_conditional(space)
    if budget <= GP_MAX_BUDGET:
        flat = {"sample_inactive": True} if conditional else {}
        return DefaultChoice({"name": "OptunaController", "args": {
            "sampler": "gp", "sampler_args": {"n_startup_trials": STARTUP_TRIALS},
            "start_at_center": True, **flat, **n_trials}},
            f"{len(space)} dimension(s){', conditional' if conditional else ''}, budget {budget} jobs "
            f"(<= {GP_MAX_BUDGET}): Optuna's GP sampler")
    return DefaultChoice(_tpe(n_trials), f"budget {budget} jobs (> {GP_MAX_BUDGET}): Optuna TPE, multivariate"
                         + (" and grouped by branch" if conditional else ""))


def _tpe(n_trials: dict[str, Any]) -> dict[str, Any]:
    return {"name": "OptunaController", "args": {"sampler": "tpe", "sampler_args": {
        "n_startup_trials": STARTUP_TRIALS, "multivariate": True, "group": True, "constant_liar": True},
        **n_trials}}


def _grid_size(space: SearchSpace) -> int | None:
    """The number of grid points when the grid covers the whole space (no floats, no large int
    ranges), else None."""
    gridded = gridded_ints(space)
    if len(gridded) != len(space.ranges):
        return None
    return space.grid_size * math.prod(len(d.values) for d in gridded)


def is_conditional(space: SearchSpace, max_combinations: int = 256) -> bool:
    """True when some setting of the switches (enum dimensions with an ``@disabled`` consumer) makes
    another searched dimension inactive."""
    switches = [d for d in space.enums if any(c.arg == DISABLED_ARG for c in d.consumers)]
    if not switches:
        return False
    combos = itertools.product(*(range(len(d.choices)) for d in switches))
    for combo in itertools.islice(combos, max_combinations):
        point = {d.name: list(d.choices[k]) for d, k in zip(switches, combo)}
        if space.inactive(point) - {d.name for d in switches}:
            return True
    return False

