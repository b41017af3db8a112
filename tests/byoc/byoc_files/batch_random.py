"""A BYOC controller written as for Clara Train 4.x (against Clara's API, nothing from mmar_automl):
random points, several recommendations per call, none on some calls, ``ctx.stop_work`` after N scores.

Deterministic given its seed (``random.Random(seed)``), so that ``run --resume`` can replay it.
"""

import random

from automl.components.controllers.controller import Controller
from automl.defs import Context, Outcome, Recommendation, SearchResult


class BatchRandomController(Controller):
    def __init__(self, batch=3, max_scores=5, seed=11):
        Controller.__init__(self)
        self.rng = random.Random(seed)
        self.batch = batch
        self.max_scores = max_scores
        self.next_id = 100  # Clara controllers numbered their own recommendations
        self.scores = {}

    def set_search_space(self, space, ctx: Context):
        self.space = space
        self.enums = {prl: t for prl, t in space.targets.items() if ".enum." in prl}
        self.floats = {prl: t for prl, t in space.targets.items() if ".float." in prl}

    def _draw(self):
        recs = []
        for _ in range(self.batch):
            values = {prl: self.rng.randint(0, len(choices) - 1) for prl, choices in self.enums.items()}
            for prl, ranges in self.floats.items():
                values[prl] = self.rng.uniform(ranges[0].min, ranges[0].max)
            recs.append(Recommendation(self.next_id, SearchResult(self.space, values)))
            self.next_id += 1
        return recs

    def initial_recommendation(self, ctx: Context):
        return self._draw()

    def refine_recommendation(self, outcome: Outcome, ctx: Context):
        self.scores[outcome.recommendation_id] = outcome.score
        if len(self.scores) >= self.max_scores:
            ctx.stop_work(self, "enough: {} jobs scored".format(len(self.scores)))
            return []
        if len(self.scores) % 2:
            return []  # zero recommendations this time: the queue still holds some
        return self._draw()


class UnseededRandomController(BatchRandomController):
    """The same without a seed: a resume cannot replay it."""

    def __init__(self, batch=3, max_scores=5):
        BatchRandomController.__init__(self, batch, max_scores)
        self.rng = random.Random()
