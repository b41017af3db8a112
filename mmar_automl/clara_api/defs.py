"""``automl.defs``: Clara's data types, as mmar-automl's own where they are the same thing.

- ``Context``, ``ContextKey``: mmar_automl.context (ContextKey values are Clara's strings, ``_jobName`` ...).
- ``SearchSpace``: mmar_automl.search.space.SearchSpace; ``.targets`` is Clara's ``{PRL: list}`` view.
- ``Outcome``: mmar_automl.recommendation.Outcome (``.score``, ``.recommendation_id``).
- ``Status``: mmar_automl.recommendation.JobState (what ``ctx.get_prop(ContextKey.JOB_STATUS)`` holds).
- ``Recommendation(rec_id, search_result)``: a subclass of mmar-automl's Recommendation that keeps Clara's
  ``SearchResult`` as ``.result`` and derives the point (``{dimension name: value}``) the engine runs.
- ``SearchResult(space, values)``: Clara's values, ``{PRL: enum choice index or float}``.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from typing import Any

from mmar_automl.context import Context, ContextKey
from mmar_automl.recommendation import JobState as Status
from mmar_automl.recommendation import Outcome
from mmar_automl.recommendation import Recommendation as _Recommendation
from mmar_automl.search.space import EnumDimension, SearchSpace

__all__ = ["Context", "ContextKey", "Outcome", "Recommendation", "SearchResult", "SearchSpace", "Status",
           "concrete_search_value", "as_clara_recommendation"]


class SearchResult:
    """One point in Clara's terms: ``values`` maps each PRL (or dimension name) to an enum choice index
    or a float. ``point`` is the same point in mmar-automl's terms. Wrong keys or values raise ValueError."""

    def __init__(self, space: SearchSpace, values: Mapping[str, Any]):
        self.space = space
        self.values = dict(values)
        self.point = _point_of(space, self.values)

    @classmethod
    def from_point(cls, space: SearchSpace, point: Mapping[str, Any]) -> SearchResult:
        """Clara's view of a point the engine already runs: never raises (an enum value that is not one of
        the choices, which no controller should produce, stays as it is rather than stop the run)."""
        values: dict[str, Any] = {}
        for dim in space:
            if dim.name in point:
                value = point[dim.name]
                if isinstance(dim, EnumDimension):
                    try:
                        value = dim.index_of(value)
                    except (ValueError, TypeError):
                        pass
                values[dim.prl] = value
        result = cls.__new__(cls)
        result.space, result.values, result.point = space, values, dict(point)
        return result

    def dump(self) -> None:
        """Print one line per PRL: its Clara value and the concrete value(s) it stands for."""
        concrete = concrete_search_value(self.space, self.point)
        for prl, value in self.values.items():
            print(f"{prl}: {value} -> {concrete.get(prl)}")

    def __repr__(self) -> str:
        return f"SearchResult({self.values!r})"


class Recommendation(_Recommendation):
    """Clara's ``Recommendation(rec_id, search_result)``; to the engine, an ordinary Recommendation."""

    def __init__(self, rec_id: int, result: SearchResult, meta: Mapping[str, Any] | None = None):
        if not isinstance(result, SearchResult):
            raise TypeError(f"Recommendation({rec_id!r}, ...) needs a SearchResult, got {type(result).__name__}")
        if isinstance(rec_id, bool) or not isinstance(rec_id, numbers.Integral):
            raise TypeError(f"Recommendation({rec_id!r}, ...): the id must be an integer, unique in the run")
        object.__setattr__(self, "rec_id", int(rec_id))  # a numpy integer would not go into the journal
        object.__setattr__(self, "point", result.point)
        object.__setattr__(self, "meta", dict(meta or {}))
        object.__setattr__(self, "result", result)

    def __repr__(self) -> str:
        return f"Recommendation({self.rec_id!r}, {self.result!r})"


def as_clara_recommendation(rec: _Recommendation, space: SearchSpace) -> Recommendation:
    """Any recommendation (a built-in controller's too) as Clara's, with ``.result``, for Clara handlers."""
    if isinstance(rec, Recommendation):
        return rec
    return Recommendation(rec.rec_id, SearchResult.from_point(space, rec.point), rec.meta)


def concrete_search_value(space: SearchSpace, point: Mapping[str, Any]) -> dict[str, list[Any]]:
    """Clara's ``CONCRETE_SEARCH_VALUE``: ``{PRL: [one concrete value per arg]}`` (a float goes to every
    arg). Clara code takes the arg names as ``prl.split(":")[1]`` and the value as ``values[0]``."""
    out: dict[str, list[Any]] = {}
    for dim in space:
        if dim.name not in point:
            continue  # inactive at this point (its component is disabled)
        value = point[dim.name]
        if isinstance(dim, EnumDimension):
            out[dim.prl] = list(value) if isinstance(value, (list, tuple)) else [value]
        else:
            out[dim.prl] = [value] * len(dim.args)
    return out


def _point_of(space: SearchSpace, values: Mapping[str, Any]) -> dict[str, Any]:
    by_key = {**{d.name: d for d in space}, **{d.prl: d for d in space}}
    point: dict[str, Any] = {}
    for key, value in values.items():
        dim = by_key.get(key)
        if dim is None:
            known = ", ".join(d.prl for d in space)
            raise ValueError(f"SearchResult: {key!r} is not a PRL of the search space; known: {known}")
        if isinstance(dim, EnumDimension):
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not 0 <= value < len(dim.choices):
                raise ValueError(f"SearchResult: {key!r} takes an enum choice index "
                                 f"0..{len(dim.choices) - 1}, got {value!r}")
            point[dim.name] = list(dim.choices[int(value)])
        else:
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise ValueError(f"SearchResult: {key!r} takes a float, got {value!r}")
            value = float(value)
            if not dim.contains(value):
                raise ValueError(f"SearchResult: {key!r} = {value!r} is outside [{dim.low}, {dim.high}]")
            point[dim.name] = value
    return point
