"""Clara's search markers in one place: the key names, the arg notations and the walk that finds them.

parse.py (config -> space) and render.py (space + point -> concrete config) must agree on where a
``search`` or ``apply`` key is a marker and where it is just an arg that happens to carry that name;
both use :func:`iter_components` so they cannot drift apart.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from mmar_automl.search.space import DISABLED_ARG, JsonPathParts

SEARCH_KEY = "search"          # list of search entries in a component or at the top level
APPLY_KEY = "apply"            # {"arg" | "@disabled": "variable"} in a component
LEGACY_LR_KEY = "lr_search"    # first-level [min, max]: a float search of learning_rate (Clara 2.x/3.x)
LEGACY_LR_ARG = "learning_rate"
ENTRY_KEYS = ("domain", "type", "args", "targets")
# mmar-automl's extensions of Clara's grammar (docs/search-space.md): an "int" type, and two optional
# entry keys, "log" (float and int: search on a log scale) and "step" (int: the spacing of the values).
TYPES = ("float", "enum", "int")
OPTIONAL_ENTRY_KEYS = ("log", "step")
ALIAS_SEP = "#"                # "arg#alias" in search args; "Name#alias" in Clara 3.x component names
VAR_PREFIX = "@"               # "@myVar": a free variable at the top level (the "@" is stripped)
DISABLED_KEY = "disabled"      # the component attribute that "@disabled" searches

_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")
_DOMAIN_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")


def is_disabled_arg(text: str) -> bool:
    return text == DISABLED_ARG


def is_variable_name(text: str) -> bool:
    """A valid alias or free-variable name (what ``apply`` can refer to)."""
    return bool(_NAME_RE.match(text))


def is_domain(text: str) -> bool:
    return bool(_DOMAIN_RE.match(text))


def split_alias(text: str) -> tuple[str, str | None]:
    """``"probability#myProb"`` -> ``("probability", "myProb")``; no ``#`` -> ``(text, None)``."""
    arg, sep, alias = text.partition(ALIAS_SEP)
    return arg, (alias if sep else None)


def component_label(component: Any) -> str | None:
    """What a component in a list is called: the alias of a Clara 3.x ``Name#alias``, else its ``name``
    (the class alone when it is dotted), else the class of its ``path``; None when it has none of these."""
    if not isinstance(component, dict):
        return None
    name = component.get("name")
    if isinstance(name, str) and name:
        base, alias = split_alias(name)
        return alias or base.rpartition(".")[2]     # "monai.transforms.RandFlipd" -> "RandFlipd", as `path`
    path = component.get("path")
    if isinstance(path, str) and path:
        return path.rpartition(".")[2]
    return None


def iter_components(config: Any, path: JsonPathParts = ()) -> Iterator[tuple[JsonPathParts, dict[str, Any]]]:
    """Yield ``(json path, dict)`` for every object that may carry ``search``/``apply`` markers, in
    document order, the top level first.

    The object directly under an ``args`` key holds arg names, so a ``search`` or ``apply`` key there
    is an arg, not a marker; objects nested deeper (components passed as args) are walked again.
    Marker values themselves are not walked.
    """
    yield from _walk(config, path, in_args=False)


def _walk(node: Any, path: JsonPathParts, in_args: bool) -> Iterator[tuple[JsonPathParts, dict[str, Any]]]:
    if isinstance(node, dict):
        if not in_args:
            yield path, node
        for key, value in node.items():
            if not in_args and key in (SEARCH_KEY, APPLY_KEY):
                continue
            yield from _walk(value, (*path, key), in_args=(not in_args and key == "args"))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _walk(value, (*path, i), in_args=False)
