"""Point helpers shared by the controllers: the enum grid, float middles, unit-cube mapping, seeds.

Pure Python (no numpy/optuna) so that importing a controller stays cheap for the CLI.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator, Sequence
from typing import Any

from mmar_automl.search.space import EnumDimension, FloatDimension, SearchSpace


def enum_combinations(space: SearchSpace) -> Iterator[tuple[int, ...]]:
    """Every combination of enum choice indices, in a stable order: the space's enum dimensions in
    their order, the last one varying fastest (``itertools.product``). One empty tuple without enums."""
    return itertools.product(*(range(len(d.choices)) for d in space.enums))


def choice_value(dim: EnumDimension, index: int) -> list[Any]:
    """An enum value as it goes into a point: the choice as a JSON list (one value per arg)."""
    return list(dim.choices[index])


def middle(dim: FloatDimension) -> float:
    """The middle of a float range: Clara's starting value for a float dimension."""
    return dim.low + (dim.high - dim.low) / 2.0


def from_unit(dim: FloatDimension, u: float) -> float:
    """Map ``u`` in [0, 1] onto the dimension's range (clipped, so rounding never leaves it)."""
    u = min(1.0, max(0.0, u))
    return min(dim.high, max(dim.low, dim.low + u * (dim.high - dim.low)))


def float_middles(space: SearchSpace) -> dict[str, float]:
    """Every float dimension at the middle of its range: what the grid and the Reinforcement controller
    give floats they do not search."""
    return {d.name: middle(d) for d in space.continuous}


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
