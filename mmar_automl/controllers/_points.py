"""Point helpers shared by the controllers: the enum grid, range middles, unit-cube mapping (on each
dimension's scale: linear or log; ints rounded), seeds.

Pure Python (no numpy/optuna) so that importing a controller stays cheap for the CLI.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Iterator, Sequence
from typing import Any

from mmar_automl.search.space import EnumDimension, IntDimension, RangeDimension, SearchSpace


def enum_combinations(space: SearchSpace) -> Iterator[tuple[int, ...]]:
    """Every combination of enum choice indices, in a stable order: the space's enum dimensions in
    their order, the last one varying fastest (``itertools.product``). One empty tuple without enums."""
    return itertools.product(*(range(len(d.choices)) for d in space.enums))


def choice_value(dim: EnumDimension, index: int) -> list[Any]:
    """An enum value as it goes into a point: the choice as a JSON list (one value per arg)."""
    return list(dim.choices[index])


def middle(dim: RangeDimension) -> float | int:
    """The middle of a range on its own scale (the geometric mean on a log scale; for ints the value
    nearest to it): Clara's starting value for a float dimension, the grid's value for a large int range."""
    if isinstance(dim, IntDimension):
        return _snap(dim, _scale_from(dim.low, dim.values[-1], dim.log, 0.5))
    return from_unit(dim, 0.5)


def from_unit(dim: RangeDimension, u: float) -> float | int:
    """Map ``u`` in [0, 1] onto the dimension's range on its scale (linear, or log for ``log``), clipped
    so that rounding never leaves it. Ints: each value owns an equal share of [0, 1] on that scale
    (the range widened by half a step at each end, then rounded: Optuna's rule), so a uniform ``u`` is a
    uniform (or log-uniform) integer."""
    u = min(1.0, max(0.0, u))
    if isinstance(dim, IntDimension):
        last = dim.values[-1]
        half = dim.step / 2.0
        return _snap(dim, _scale_from(dim.low - half, last + half, dim.log, u))
    return min(dim.high, max(dim.low, _scale_from(dim.low, dim.high, dim.log, u)))


def to_unit(dim: RangeDimension, value: float) -> float:
    """The inverse of ``from_unit`` (an int maps to the middle of its share): where ``value`` sits in
    [0, 1] on the dimension's scale. Reports draw log axes with it; warm starts seed policies with it."""
    if isinstance(dim, IntDimension):
        half = dim.step / 2.0
        low, high = dim.low - half, dim.values[-1] + half
    else:
        low, high = dim.low, dim.high
    if high <= low:
        return 0.5
    if dim.log:
        return min(1.0, max(0.0, (math.log(value) - math.log(low)) / (math.log(high) - math.log(low))))
    return min(1.0, max(0.0, (value - low) / (high - low)))


def _snap(dim: IntDimension, x: float) -> int:
    """The value of ``dim`` nearest to ``x``."""
    k = round((x - dim.low) / dim.step)
    return int(min(dim.values[-1], max(dim.low, dim.low + k * dim.step)))


def _scale_from(low: float, high: float, log: bool, u: float) -> float:
    if log:
        return math.exp(math.log(low) + u * (math.log(high) - math.log(low)))
    return low + u * (high - low)


def float_middles(space: SearchSpace) -> dict[str, float | int]:
    """Every float and int dimension at the middle of its range: what the grid and the Reinforcement
    controller give ranges they do not search."""
    return {d.name: middle(d) for d in space.ranges}


def enum_point(space: SearchSpace, combo: Sequence[int]) -> dict[str, Any]:
    """The enum part of a point for a combination of choice indices (see ``enum_combinations``)."""
    return {d.name: choice_value(d, k) for d, k in zip(space.enums, combo)}


def ordered(space: SearchSpace, point: dict[str, Any]) -> dict[str, Any]:
    """The point with its keys in the space's dimension order (stable JSON, readable journals)."""
    return {d.name: point[d.name] for d in space.dimensions if d.name in point}


def rng_for(seed: int | None, *keys: Any) -> random.Random:
    """An independent random stream for (seed, keys): e.g. one per recommendation, so a point does not
    depend on the order in which outcomes arrived. ``random.Random`` seeded by a string is stable
    across Python versions and processes (it hashes the string with SHA-512, not ``hash()``)."""
    return random.Random("|".join(str(k) for k in (seed if seed is not None else 0, *keys)))
