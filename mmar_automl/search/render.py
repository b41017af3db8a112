"""Space + one point -> the concrete config_train.json of a job (Clara's ``remove_search_augs``)."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from mmar_automl.search import markers as mk
from mmar_automl.search.space import DISABLED_ARG, EnumDimension, SearchSpace


def render_config(train_config: dict[str, Any], space: SearchSpace, point: Mapping[str, Any],
                  dialect: mk.Dialect = mk.CLARA) -> dict[str, Any]:
    """A new config with each dimension's value written at each of its consumers, ``disabled`` (a
    bundle's ``_disabled_``) set for ``@disabled`` consumers, and every ``search``/``apply`` marker (and
    ``lr_search``) removed.

    ``train_config`` is left untouched. A dimension inactive at ``point`` (all its consumers disabled)
    may be missing: its consumers keep the config's own value. Raises ValueError when ``point`` lacks
    an active dimension or holds a value outside one (a bug in the caller, not a user error).
    """
    space.validate_point(point)
    out = copy.deepcopy(train_config)
    for dim in space:
        if dim.name not in point:
            continue
        value = point[dim.name]
        for c in dim.consumers:
            v = value[c.index] if isinstance(dim, EnumDimension) else value
            node = _at(out, c.component)
            if c.arg == DISABLED_ARG:
                node[dialect.disabled_key] = copy.deepcopy(v)
            elif not c.component:
                node[c.arg] = copy.deepcopy(v)
            else:
                dialect.args_node(node)[c.arg] = copy.deepcopy(v)
    strip_markers(out, dialect)
    return out


def config_value(train_config: dict[str, Any], dim: Any, dialect: mk.Dialect = mk.CLARA) -> Any:
    """The value ``dim`` has in ``train_config`` itself (what a job runs with when the dimension is not
    searched): ``render_config``'s inverse, read where it writes. None when the config holds no
    value there, or one the dimension does not contain (an enum: no choice matches every consumer)."""
    found = []
    for c in dim.consumers:
        try:
            node = _at(train_config, c.component)
        except (KeyError, IndexError, TypeError):
            return None
        if c.arg == DISABLED_ARG:
            found.append(bool(node.get(dialect.disabled_key, False)) if isinstance(node, dict) else None)
            continue
        args = node if not c.component else dialect.args_of(node)
        if not isinstance(args, dict) or c.arg not in args:
            return None
        found.append(args[c.arg])
    if isinstance(dim, EnumDimension):
        for choice in dim.choices:
            if all(choice[c.index] == v for c, v in zip(dim.consumers, found)):
                return list(choice)
        return None
    value = found[0] if found else None
    return value if value is not None and all(v == value for v in found) and dim.contains(value) else None


def strip_markers(config: dict[str, Any], dialect: mk.Dialect = mk.CLARA) -> None:
    """Delete, in place, every ``search`` and ``apply`` marker and the legacy ``lr_search``."""
    found = list(mk.iter_components(config, dialect=dialect))  # collect first: we delete while walking otherwise
    for path, node in found:
        node.pop(mk.SEARCH_KEY, None)
        node.pop(mk.APPLY_KEY, None)
        if not path:
            node.pop(mk.LEGACY_LR_KEY, None)


def _at(config: Any, path: tuple) -> Any:
    node = config
    for part in path:
        node = node[part]
    return node
