"""Markers written where Clara would silently ignore them, so that the search quietly would not happen.

A misspelt key (``"Search"``, ``"serach"``, ``"aply"``), ``lr_search`` below the first level, or a
``search``/``apply`` put one level too deep (inside ``args``) would go to the job's config unchanged:
no dimension, and a component that chokes on an unknown kwarg once training starts. parse.py asks
these functions for each component and turns an answer into a ConfigError.
"""

from __future__ import annotations

from collections.abc import Container
from typing import Any

from mmar_automl.errors import format_json_path
from mmar_automl.search import markers as mk
from mmar_automl.search.space import DISABLED_ARG, JsonPathParts
from mmar_automl.config.suggest import edit_distance

_MARKER_SHAPES: dict[str, type] = {mk.SEARCH_KEY: list, mk.APPLY_KEY: dict, mk.LEGACY_LR_KEY: list}

Problem = tuple[JsonPathParts, str]     # where, what is wrong and what is expected


def misspelt_marker(key: Any, value: Any, top_level: bool) -> str | None:
    """The marker that ``key`` was most likely meant to be, or None.

    Only keys one edit (case aside) from a marker and with its shape count (a list for ``search``
    and ``lr_search``, an object for ``apply``): "research" or "supply" are plausible keys of their own.
    """
    if not isinstance(key, str) or key in (mk.SEARCH_KEY, mk.APPLY_KEY) or (key == mk.LEGACY_LR_KEY and top_level):
        return None
    if key == mk.LEGACY_LR_KEY:
        return mk.LEGACY_LR_KEY
    for marker, shape in _MARKER_SHAPES.items():
        if edit_distance(key, marker) <= 1 and isinstance(value, shape):
            return marker
    return None


def in_component(path: JsonPathParts, node: dict[str, Any]) -> Problem | None:
    """A misspelt marker among the keys of ``node``, or search entries inside its ``args``."""
    for key, value in node.items():
        hit = misspelt_marker(key, value, top_level=not path)
        if hit == mk.LEGACY_LR_KEY and key == mk.LEGACY_LR_KEY:
            return (*path, key), ("'lr_search' is read only at the first level of config_train.json; in a "
                                  "component write \"search\": [{\"domain\": \"lr\", \"type\": \"float\", "
                                  "\"args\": [\"lr\"], \"targets\": [min, max]}]")
        if hit is not None:
            return (*path, key), (f"unknown key {key!r} (did you mean {hit!r}?): misspelt, it would be passed "
                                  "to the job as it is and the search would ignore it")
    args = node.get("args")
    block = args.get(mk.SEARCH_KEY) if isinstance(args, dict) else None
    if isinstance(block, list) and block and all(
            isinstance(e, dict) and "type" in e and set(e) <= {*mk.ENTRY_KEYS, *mk.OPTIONAL_ENTRY_KEYS} for e in block):
        return (*path, "args", mk.SEARCH_KEY), _one_level_up(path, mk.SEARCH_KEY)
    return None


def apply_in_args(path: JsonPathParts, node: dict[str, Any], variables: Container[str]) -> Problem | None:
    """An ``apply`` object inside ``args`` that is surely a marker: it has '@disabled' or its values all
    name variables (an arg that merely happens to be called ``apply`` does neither)."""
    args = node.get("args")
    apply = args.get(mk.APPLY_KEY) if isinstance(args, dict) else None
    if not isinstance(apply, dict) or not apply:
        return None
    refs = [v[len(mk.VAR_PREFIX):] if isinstance(v, str) and v.startswith(mk.VAR_PREFIX) else v
            for v in apply.values()]
    if DISABLED_ARG in apply or all(isinstance(r, str) and r in variables for r in refs):
        return (*path, "args", mk.APPLY_KEY), _one_level_up(path, mk.APPLY_KEY)
    return None


def _one_level_up(component: JsonPathParts, key: str) -> str:
    return (f"{key!r} is inside 'args', where it would be an arg named {key!r}: move it up one level, next to "
            f"\"args\" in {format_json_path(component)}")
