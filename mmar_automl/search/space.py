"""Search dimensions as frozen value classes (validated when built, JSON round-trip, no sampling code).

A *point* is a dict ``{dimension name: value}``: a float for a FloatDimension, the chosen choice
itself (a list with one value per arg) for an EnumDimension. Sampling lives in controllers/.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Union

JsonPathParts = tuple[Union[str, int], ...]
DISABLED_ARG = "@disabled"


@dataclass(frozen=True)
class Consumer:
    """One place a dimension's value is written: ``arg`` of the component at ``component`` (a JSON path;
    ``()`` is the top level of config_train.json). ``index`` picks the value out of an enum choice
    (0 for floats). ``arg == "@disabled"`` writes the component's ``disabled`` attribute."""

    component: JsonPathParts
    arg: str
    index: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"component": list(self.component), "arg": self.arg, "index": self.index}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Consumer:
        return cls(tuple(data["component"]), data["arg"], data.get("index", 0))


@dataclass(frozen=True)
class FloatDimension:
    """A continuous range ``[low, high]``; the same value goes to every consumer."""

    prl: str
    name: str
    domain: str
    args: tuple[str, ...]
    low: float
    high: float
    consumers: tuple[Consumer, ...] = field(default=())

    type = "float"

    def __post_init__(self) -> None:
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (self.low, self.high)):
            raise ValueError(f"`low` and `high` must be numbers, but got (low={self.low!r}, high={self.high!r})")
        if not (math.isfinite(self.low) and math.isfinite(self.high)):
            raise ValueError(f"`low` and `high` must be finite, but got (low={self.low}, high={self.high})")
        if self.low > self.high:
            raise ValueError(f"`low <= high` must hold, but got (low={self.low}, high={self.high})")

    def contains(self, value: Any) -> bool:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and self.low <= value <= self.high

    # Clara's range objects had ``.min``/``.max`` (BYOC controllers read ``space.targets[prl][0].min``).
    @property
    def min(self) -> float:
        return self.low

    @property
    def max(self) -> float:
        return self.high

    def to_json(self) -> dict[str, Any]:
        return {
            "type": "float", "prl": self.prl, "name": self.name, "domain": self.domain,
            "args": list(self.args), "low": self.low, "high": self.high,
            "consumers": [c.to_json() for c in self.consumers],
        }


@dataclass(frozen=True)
class EnumDimension:
    """A list of choices; each choice holds one value per arg (``choices[k][i]`` goes to ``args[i]``).

    Values are JSON values as read (lists stay lists), so a list-valued arg such as UNet ``channels``
    is one value of a choice."""

    prl: str
    name: str
    domain: str
    args: tuple[str, ...]
    choices: tuple[tuple[Any, ...], ...]
    consumers: tuple[Consumer, ...] = field(default=())

    type = "enum"

    def __post_init__(self) -> None:
        if not self.choices:
            raise ValueError("an enum dimension needs at least one choice")
        for k, choice in enumerate(self.choices):
            if len(choice) != len(self.args):
                raise ValueError(f"choice {k} has {len(choice)} values but there are {len(self.args)} args")

    def index_of(self, value: Sequence[Any]) -> int:
        """Position of a choice (compared as JSON values: ``[1]`` and ``(1,)`` are the same choice)."""
        wanted = canonical_choice(value)
        for k, choice in enumerate(self.choices):
            if canonical_choice(choice) == wanted:
                return k
        raise ValueError(f"{list(value)!r} is not a choice of {self.name}")

    def contains(self, value: Any) -> bool:
        try:
            self.index_of(value)
        except (ValueError, TypeError):
            return False
        return True

    def to_json(self) -> dict[str, Any]:
        return {
            "type": "enum", "prl": self.prl, "name": self.name, "domain": self.domain,
            "args": list(self.args), "choices": [list(c) for c in self.choices],
            "consumers": [c.to_json() for c in self.consumers],
        }


Dimension = Union[FloatDimension, EnumDimension]


def dimension_from_json(data: Mapping[str, Any]) -> Dimension:
    common = dict(
        prl=data["prl"], name=data["name"], domain=data["domain"], args=tuple(data["args"]),
        consumers=tuple(Consumer.from_json(c) for c in data.get("consumers", ())),
    )
    if data["type"] == "float":
        return FloatDimension(low=data["low"], high=data["high"], **common)
    if data["type"] == "enum":
        return EnumDimension(choices=tuple(tuple(c) for c in data["choices"]), **common)
    raise ValueError(f"unknown dimension type {data['type']!r}")


@dataclass(frozen=True)
class SearchSpace:
    """The ordered dimensions of one MMAR's search; names and PRLs are unique."""

    dimensions: tuple[Dimension, ...]

    def __post_init__(self) -> None:
        for attr in ("name", "prl"):
            seen: set[str] = set()
            for dim in self.dimensions:
                key = getattr(dim, attr)
                if key in seen:
                    raise ValueError(f"two dimensions share the {attr} {key!r}")
                seen.add(key)

    def __iter__(self) -> Iterator[Dimension]:
        return iter(self.dimensions)

    def __len__(self) -> int:
        return len(self.dimensions)

    def __getitem__(self, name: str) -> Dimension:
        for dim in self.dimensions:
            if dim.name == name:
                return dim
        raise KeyError(name)

    @property
    def names(self) -> list[str]:
        return [d.name for d in self.dimensions]

    @property
    def enums(self) -> list[EnumDimension]:
        return [d for d in self.dimensions if isinstance(d, EnumDimension)]

    @property
    def continuous(self) -> list[FloatDimension]:
        return [d for d in self.dimensions if isinstance(d, FloatDimension)]

    @property
    def targets(self) -> dict[str, list[Any]]:
        """Clara's view, read by BYOC controllers: ``{PRL: list}``; a float PRL's list holds its range (the
        dimension, with ``.min``/``.max``), an enum PRL's list holds its choices (one value per arg each)."""
        return {d.prl: [d] if isinstance(d, FloatDimension) else [list(c) for c in d.choices] for d in self.dimensions}

    @property
    def grid_size(self) -> int:
        """Number of enum combinations (1 for a space without enums)."""
        return math.prod(len(d.choices) for d in self.enums)

    def inactive(self, point: Mapping[str, Any]) -> set[str]:
        """Names of dimensions whose every consumer is a component disabled at ``point``.

        Such a dimension does not influence the job (e.g. the args of a loss that the point switched
        off), so controllers need not sample it and reports need not show it.
        """
        disabled: dict[JsonPathParts, bool] = {}
        for dim in self.dimensions:
            if dim.name not in point:
                continue
            for c in dim.consumers:
                if c.arg == DISABLED_ARG:
                    value = point[dim.name][c.index] if isinstance(dim, EnumDimension) else point[dim.name]
                    disabled[c.component] = bool(value)
        out = set()
        for dim in self.dimensions:
            consumers = [c for c in dim.consumers if c.arg != DISABLED_ARG]
            if consumers and all(_is_disabled(c.component, disabled) for c in consumers):
                out.add(dim.name)
        return out

    def validate_point(self, point: Mapping[str, Any]) -> None:
        """Raise ValueError unless ``point`` has a value inside every dimension; a dimension that is
        inactive at ``point`` (see ``inactive``) may be left out: it changes nothing in the job."""
        inactive = None
        for dim in self.dimensions:
            if dim.name not in point:
                inactive = self.inactive(point) if inactive is None else inactive
                if dim.name in inactive:
                    continue
                raise ValueError(f"point has no value for {dim.name!r}")
            if not dim.contains(point[dim.name]):
                raise ValueError(f"{point[dim.name]!r} is outside {dim.name!r}")

    def to_json(self) -> dict[str, Any]:
        return {"dimensions": [d.to_json() for d in self.dimensions]}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SearchSpace:
        return cls(tuple(dimension_from_json(d) for d in data["dimensions"]))


def _is_disabled(component: JsonPathParts, disabled: Mapping[JsonPathParts, bool]) -> bool:
    # A component is off when it, or a component it sits inside, is disabled at this point.
    return any(disabled.get(component[:n], False) for n in range(len(component) + 1))


def canonical_choice(value: Any) -> str:
    """A choice as canonical JSON, so that ``[1]``, ``(1,)`` and a JSON-decoded copy compare equal."""
    return json.dumps(value, sort_keys=True, default=list)
