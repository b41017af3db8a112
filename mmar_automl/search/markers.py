"""Clara's search markers in one place: the key names, the arg notations and the walk that finds them.

parse.py (config -> space) and render.py (space + point -> concrete config) must agree on where a
``search`` or ``apply`` key is a marker and where it is just an arg that happens to carry that name;
both use :func:`iter_components` so they cannot drift apart.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
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



@dataclass(frozen=True)
class Dialect:
    """Where a config format keeps a component's args, and how it switches a component off.

    Clara 4.x (config_train.json): ``{"name": "UNet", "args": {...}, "disabled": false}``.
    A MONAI bundle (configs/train.json|yaml): ``{"_target_": "UNet", "channels": [...], "_disabled_": false}``,
    and a search-file arg may be a bundle id (``optimizer#lr``) naming an arg anywhere in the config.
    """

    name: str
    args_key: str | None           # the key holding the args; None: the component's own keys are its args
    disabled_key: str              # the attribute "@disabled" writes
    reserved: frozenset[str]       # keys of a component that are not args
    ids: bool                      # top-level args may be bundle ids "a#b#c"

    def args_of(self, node: dict[str, Any]) -> dict[str, Any] | None:
        """The component's args (None when it has none: a Clara component without "args")."""
        if self.args_key is not None:
            args = node.get(self.args_key)
            return args if isinstance(args, dict) else None
        return {k: v for k, v in node.items() if k not in self.reserved and k not in (SEARCH_KEY, APPLY_KEY)}

    def args_node(self, node: dict[str, Any]) -> dict[str, Any]:
        """The object an arg value is written into (created in Clara when missing)."""
        return node.setdefault(self.args_key, {}) if self.args_key is not None else node


CLARA = Dialect("clara", "args", DISABLED_KEY, frozenset(), ids=False)
BUNDLE_ID_SEP = "#"            # MONAI's id separator: "train#trainer#max_epochs"
MONAI_ID_SEP = "::"            # the same separator as MONAI >= 1.4 writes it ("train::trainer::max_epochs")


def bundle_id(text: str) -> str:
    """A bundle id with MONAI's "::" written as "#" (MONAI reads both alike)."""
    return text.replace(MONAI_ID_SEP, BUNDLE_ID_SEP)
BUNDLE = Dialect("bundle", None, "_disabled_", frozenset({"_target_", "_disabled_", "_requires_", "_desc_", "_mode_"}),
                 ids=True)

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
    (the class alone when it is dotted), else the class of its ``path`` or bundle ``_target_``; None when
    it has none of these."""
    if not isinstance(component, dict):
        return None
    target = component.get("_target_")
    if isinstance(target, str) and target and not target.startswith(("$", "@", "%")):
        return target.rpartition(".")[2]
    name = component.get("name")
    if isinstance(name, str) and name:
        base, alias = split_alias(name)
        return alias or base.rpartition(".")[2]     # "monai.transforms.RandFlipd" -> "RandFlipd", as `path`
    path = component.get("path")
    if isinstance(path, str) and path:
        return path.rpartition(".")[2]
    return None


def iter_components(config: Any, path: JsonPathParts = (), dialect: Dialect = CLARA
                    ) -> Iterator[tuple[JsonPathParts, dict[str, Any]]]:
    """Yield ``(json path, dict)`` for every object that may carry ``search``/``apply`` markers, in
    document order, the top level first.

    In Clara the object directly under an ``args`` key holds arg names, so a ``search`` or ``apply`` key
    there is an arg, not a marker; objects nested deeper (components passed as args) are walked again.
    A bundle has no such key: every object may carry markers. Marker values themselves are not walked.
    """
    yield from _walk(config, path, in_args=False, args_key=dialect.args_key)


def _walk(node: Any, path: JsonPathParts, in_args: bool, args_key: str | None
          ) -> Iterator[tuple[JsonPathParts, dict[str, Any]]]:
    if isinstance(node, dict):
        if not in_args:
            yield path, node
        for key, value in node.items():
            if not in_args and key in (SEARCH_KEY, APPLY_KEY):
                continue
            yield from _walk(value, (*path, key), not in_args and key == args_key, args_key)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _walk(value, (*path, i), False, args_key)
