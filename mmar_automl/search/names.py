"""Readable dimension names (tables, MLflow params), unique and stable for a given config.

A dimension whose every arg has a name (alias, free variable, searched first-level key) is called
by those names joined by "," (``myProb``, ``learning_rate``, ``mySearchLoss1,mySearchLoss2``).
Any other is ``<component>.<args joined by ",">`` where ``<component>`` is the component's key
(``model``) or, inside a list, its name (``RandGaussianNoised``); when two dimensions would share a
name, each of them takes the shortest suffix of its component's JSON path that tells them apart
(``train.model.channels`` / ``validate.model.channels``, ``pre_transforms[7].prob``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from mmar_automl.errors import format_json_path
from mmar_automl.search.space import JsonPathParts

NameRequest = tuple[JsonPathParts, "str | None", "str | None", Sequence[str]]


def candidates(component: JsonPathParts, label: str | None) -> list[str]:
    """Ever longer ways to call a component: its label, then JSON path suffixes, the whole path last."""
    out = [label] if label else []
    for m in range(1, len(component) + 1):
        suffix = component[-m:]
        if isinstance(suffix[0], str):       # "pre_transforms[7]", never a bare "[7]"
            out.append(format_json_path(suffix))
    return list(dict.fromkeys(out)) or [format_json_path(component)]


def readable_names(requests: Sequence[NameRequest]) -> list[str]:
    """One unique name per request ``(component path, label, fixed name or None, arg names)``."""
    fixed = {r[2] for r in requests if r[2]}
    options = [None if r[2] else [f"{c}.{','.join(r[3])}" for c in candidates(r[0], r[1])] for r in requests]
    level = [0] * len(requests)

    def current(i: int) -> str:
        opts = options[i]
        if opts is None:
            return requests[i][2]  # type: ignore[return-value]
        return opts[min(level[i], len(opts) - 1)]

    while True:
        counts = Counter(current(i) for i in range(len(requests)))
        clashing = [i for i, opts in enumerate(options)
                    if opts is not None and (counts[current(i)] > 1 or current(i) in fixed)
                    and level[i] < len(opts) - 1]
        if not clashing:
            break
        for i in clashing:
            level[i] += 1
    names = [current(i) for i in range(len(requests))]
    # Last resort (same component, same args: parse.py refuses that, but stay unique regardless).
    seen: Counter[str] = Counter()
    for i, name in enumerate(names):
        seen[name] += 1
        if seen[name] > 1:
            names[i] = f"{name}#{seen[name]}"
    return names
