"""The maths of the ReinforcementController: a diagonal Gaussian policy over the unit cube, updated by
the policy gradient of its log-likelihood with rank-based advantages (REINFORCE with a baseline, in
its natural-gradient form: the separable natural evolution strategy, SNES). See docs/controllers.md.

Pure Python: a chain has a handful of dimensions, and numpy would cost more to import than it saves.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence


def default_population(num_dims: int) -> int:
    """Samples per round: SNES's default 4 + floor(3 ln d) (d = searched dimensions)."""
    return 4 + int(math.floor(3 * math.log(max(1, num_dims))))


def draw(rng: random.Random, num_dims: int, count: int) -> list[list[float]]:
    """``count`` standard-normal vectors, mirrored in pairs (z, -z): the same expected gradient with less
    variance, and a symmetric round around the mean."""
    out: list[list[float]] = []
    while len(out) < count:
        z = [rng.gauss(0.0, 1.0) for _ in range(num_dims)]
        out.append(z)
        if len(out) < count:
            out.append([-v for v in z])
    return out


def utilities(rewards: Sequence[float | None]) -> list[float]:
    """Rank-based advantages: the best sample gets the largest weight, weights sum to 0 (the baseline
    is the round's own average), ties share their weight, and a missing reward (failed job) ranks last.
    Invariant to the metric's scale, so one learning rate fits Dice, accuracy or a negated loss."""
    n = len(rewards)
    raw = [max(0.0, math.log(n / 2 + 1) - math.log(i + 1)) for i in range(n)]
    total = sum(raw)
    raw = [r / total - 1.0 / n for r in raw]
    keys = [(-math.inf if r is None or r != r else float(r)) for r in rewards]
    order = sorted(range(n), key=lambda k: (-keys[k], k))
    out = [0.0] * n
    pos = 0
    while pos < n:  # average the weights of tied rewards
        end = pos
        while end + 1 < n and keys[order[end + 1]] == keys[order[pos]]:
            end += 1
        share = sum(raw[pos:end + 1]) / (end + 1 - pos)
        share = 0.0 if abs(share) < 1e-12 else share  # an all-tied round must be an exact no-op
        for k in order[pos:end + 1]:
            out[k] = share
        pos = end + 1
    return out


def update(mean: Sequence[float], sigma: Sequence[float], zs: Sequence[Sequence[float]],
           rewards: Sequence[float | None]) -> tuple[list[float], list[float]]:
    """One policy-gradient step for the Gaussian N(mean, diag(sigma^2)) from a round of samples
    ``x_k = mean + sigma * z_k`` and their rewards:

        mean  <- mean + eta_mu * sigma * sum_k u_k z_k
        sigma <- sigma * exp(eta_sigma / 2 * sum_k u_k (z_k^2 - 1))

    with ``u_k`` the rank utilities, eta_mu = 1, eta_sigma = (3 + ln d) / (5 sqrt d)."""
    d = len(mean)
    u = utilities(rewards)
    eta_sigma = (3 + math.log(max(1, d))) / (5 * math.sqrt(max(1, d)))
    new_mean, new_sigma = [], []
    for j in range(d):
        g_mu = sum(uk * z[j] for uk, z in zip(u, zs))
        g_sigma = sum(uk * (z[j] * z[j] - 1.0) for uk, z in zip(u, zs))
        new_mean.append(min(1.0, max(0.0, mean[j] + sigma[j] * g_mu)))
        new_sigma.append(min(1.0, max(1e-4, sigma[j] * math.exp(eta_sigma / 2 * g_sigma))))
    return new_mean, new_sigma
