"""ReinforcementController, Clara's semantics: enums as a grid; for each enum combination a chain that
starts its floats at the middle of their ranges and refines them by a policy-gradient update from the
rewards (Yang et al., MICCAI 2019) for ``max_rounds`` rounds. Chains are independent and run in
parallel on free workers. The update rule is in _gaussian_policy.py and docs/controllers.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mmar_automl.context import Context, ContextKey
from mmar_automl.controllers import _gaussian_policy as policy
from mmar_automl.controllers._points import (
    enum_combinations,
    enum_point,
    float_middles,
    from_unit,
    ordered,
    rng_for,
)
from mmar_automl.controllers.base import AUTOML_CONFIG, Controller
from mmar_automl.controllers.pruning import PrunerMixin, learning_score
from mmar_automl.errors import ConfigError
from mmar_automl.recommendation import Outcome, Recommendation


@dataclass
class _Chain:
    """One enum combination and the Gaussian policy over its active floats and ints (unit-cube
    coordinates on each dimension's scale: log for ``log`` ranges; ints rounded when a point is made)."""

    index: int
    combo: tuple[int, ...]
    names: list[str]                  # floats searched in this chain (active at its enum point)
    mean: list[float]
    sigma: list[float]
    round: int = 0
    zs: list[list[float]] = field(default_factory=list)        # this round's samples
    rewards: dict[int, float | None] = field(default_factory=dict)  # sample -> reward, this round
    next_sample: int = 0              # next sample of this round to hand out
    best: float | None = None
    started: bool = False
    done: bool = False

    @property
    def pending(self) -> bool:
        return not self.done and self.next_sample < len(self.zs)


class ReinforcementController(PrunerMixin, Controller):
    """Args: ``max_rounds`` (default 8): rounds per chain, the first being the single middle point and
    each later one ``samples_per_round`` samples of the chain's policy (default 4 + floor(3 ln d), d the
    chain's searched floats); ``init_sigma`` (default 0.25): the policy's starting standard deviation as
    a fraction of each range; plus ``pruner``/``pruner_args``.

    Scheduling: a free worker first starts the next chain not yet started (so every enum combination is
    tried at its middle point first, in grid order), else takes the next sample of the started chain
    with the best reward so far. A chain's round ends when all its samples are back; then its policy is
    updated and its next round drawn. The number of jobs in flight never exceeds NUM_WORKERS (read at
    ``initial_recommendation``; a resumed run must use the same worker count to replay identically).
    """

    def __init__(self, seed: int | None = None, max_rounds: int = 8, samples_per_round: int | None = None,
                 init_sigma: float = 0.25, pruner: str = "none", pruner_args: dict[str, Any] | None = None):
        super().__init__(seed=seed)
        if not isinstance(max_rounds, int) or isinstance(max_rounds, bool) or max_rounds < 1:
            raise ConfigError(AUTOML_CONFIG, "controller.args.max_rounds",
                              f"max_rounds must be a positive integer, got {max_rounds!r}")
        if samples_per_round is not None and (not isinstance(samples_per_round, int) or samples_per_round < 2):
            raise ConfigError(AUTOML_CONFIG, "controller.args.samples_per_round",
                              f"samples_per_round must be an integer >= 2, got {samples_per_round!r}")
        if not isinstance(init_sigma, (int, float)) or isinstance(init_sigma, bool) or not 0 < init_sigma <= 1:
            raise ConfigError(AUTOML_CONFIG, "controller.args.init_sigma",
                              f"init_sigma must be in (0, 1], got {init_sigma!r}")
        self.max_rounds = max_rounds
        self.samples_per_round = samples_per_round
        self.init_sigma = float(init_sigma)
        self._init_pruner(pruner, pruner_args)
        self._chains: list[_Chain] = []
        self._in_flight: dict[int, tuple[int, int, int]] = {}  # rec_id -> (chain, round, sample)
        self._workers = 1

    # -- Clara interface -------------------------------------------------------------------------
    def initial_recommendation(self, ctx: Context) -> list[Recommendation]:
        assert self.space is not None, "set_search_space first"
        self._workers = max(1, int(ctx.get_prop(ContextKey.NUM_WORKERS, 1) or 1))
        floats = float_middles(self.space)
        for i, combo in enumerate(enum_combinations(self.space)):
            inactive = self.space.inactive({**enum_point(self.space, combo), **floats})
            names = [d.name for d in self.space.ranges if d.name not in inactive]
            self._chains.append(_Chain(i, tuple(combo), names, [0.5] * len(names),
                                       [self.init_sigma] * len(names), zs=[[0.0] * len(names)]))
        return self._fill()

    def refine_recommendation(self, outcome: Outcome, ctx: Context) -> list[Recommendation]:
        self._observe_outcome(outcome)
        where = self._in_flight.pop(outcome.recommendation.rec_id, None)
        if where is None:
            return []  # not ours (or a repeat): nothing to learn
        chain = self._chains[where[0]]
        if where[1] == chain.round and not chain.done:
            reward = learning_score(outcome)
            chain.rewards[where[2]] = reward
            if reward is not None and (chain.best is None or reward > chain.best):
                chain.best = reward
            if len(chain.rewards) == len(chain.zs):
                self._end_round(chain)
        return self._fill()

    def is_exhausted(self) -> bool:
        return bool(self._chains) and all(c.done for c in self._chains)

    # -- bookkeeping -----------------------------------------------------------------------------
    def _end_round(self, chain: _Chain) -> None:
        if chain.round > 0:
            rewards = [chain.rewards[k] for k in range(len(chain.zs))]
            chain.mean, chain.sigma = policy.update(chain.mean, chain.sigma, chain.zs, rewards)
        chain.round += 1
        chain.rewards = {}
        chain.next_sample = 0
        if chain.round >= self.max_rounds or not chain.names:
            chain.done, chain.zs = True, []
            return
        size = self.samples_per_round or policy.default_population(len(chain.names))
        chain.zs = policy.draw(rng_for(self.seed, "rl", chain.index, chain.round), len(chain.names), size)

    def _pick(self) -> _Chain | None:
        for chain in self._chains:
            if not chain.started:
                return chain
        ready = [c for c in self._chains if c.pending]
        if not ready:
            return None
        return min(ready, key=lambda c: (c.best is None, -(c.best or 0.0), c.index))

    def _fill(self) -> list[Recommendation]:
        recs = []
        while len(self._in_flight) < self._workers:
            chain = self._pick()
            if chain is None:
                break
            chain.started = True
            k = chain.next_sample
            chain.next_sample += 1
            rec = self._recommend(self._point(chain, chain.zs[k]), chain=chain.index, round=chain.round, sample=k)
            self._in_flight[rec.rec_id] = (chain.index, chain.round, k)
            recs.append(rec)
        return recs

    def _point(self, chain: _Chain, z: list[float]) -> dict[str, Any]:
        assert self.space is not None
        point: dict[str, Any] = {**enum_point(self.space, chain.combo), **float_middles(self.space)}
        for j, name in enumerate(chain.names):
            dim = self.space[name]
            point[name] = from_unit(dim, chain.mean[j] + chain.sigma[j] * z[j])  # type: ignore[arg-type]
        return ordered(self.space, point)
