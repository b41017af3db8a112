"""Points of a template's search space for the init tests (imported by module name: tests/ has no packages)."""

from __future__ import annotations


def last_point(space) -> dict:
    """The last choice of every enum and the middle of every float range: the non-default alternatives."""
    from mmar_automl.search.space import EnumDimension

    return {
        d.name: list(d.choices[-1]) if isinstance(d, EnumDimension) else (d.low + d.high) / 2 for d in space
    }
