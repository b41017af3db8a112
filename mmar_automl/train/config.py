"""The shape of a Clara 4.x config_train.json: markers and predicates, no building.

Sections ``train`` and ``validate`` map keys to a component (``{"name"|"path", "args", ...}``), a
list of components, or a plain value. The markers live here (STYLE.md 2.3).
"""

from __future__ import annotations

import re
from typing import Any

from mmar_automl.errors import ConfigError, JsonPath
from mmar_automl.config.mmar import unresolved_variable

SECTIONS = ("train", "validate")
REF_PREFIX = "@"  # "@model": the sibling component of that name
EXPR_PREFIX = "#"  # "#@model.parameters()": a Python expression
CONF_REF = "conf"  # "@conf": the whole config
LAMBDA = re.compile(r"^\s*lambda\b[^:]*:")
REF_IN_EXPR = re.compile(r"@([A-Za-z_][A-Za-z0-9_]*)")

# Component keys besides name/path/args. search/apply belong to the search space and are ignored here
# (a rendered config has none; an unrendered one trains at its own values).
COMPONENT_KEYS = frozenset(
    {"name", "path", "args", "disabled", "rank", "search", "apply", "log_label", "ref", "is_key_metric",
     "data_list_file_path", "data_file_base_dir", "data_list_key"}
)


def is_component(node: Any) -> bool:
    return isinstance(node, dict) and ("name" in node or "path" in node)


def is_ref(node: Any) -> bool:
    return isinstance(node, dict) and set(node) == {"ref"}


def is_reference(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(REF_PREFIX) and REF_IN_EXPR.fullmatch(value) is not None


def is_expression(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(EXPR_PREFIX)


def is_lambda(value: Any) -> bool:
    return isinstance(value, str) and LAMBDA.match(value) is not None


def is_collection_key(key: str) -> bool:
    """Lists under these keys are collections (all enabled items are used: transforms, handlers,
    metrics); a list under any other key (``loss``, ``optimizer``) holds alternatives, one enabled."""
    return key.endswith(("transforms", "handlers", "metrics", "callbacks")) or key in ("handlers",)


def is_disabled(node: dict, file: str | None, path: JsonPath) -> bool:
    """``disabled``: a bool, ``"true"``/``"false"`` or a ``{VAR}`` already substituted."""
    value = node.get("disabled", False)
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    name = unresolved_variable(value)
    if name:
        raise ConfigError(file, (*path, "disabled"), f"unknown variable {{{name}}} (set it in environment.json or with --set)")
    raise ConfigError(file, (*path, "disabled"), f"disabled must be true or false, got {value!r}")


def skipped_by_rank(node: dict, file: str | None = None, path: JsonPath = (), rank: int | None = None,
                    every_rank: bool = False) -> bool:
    """``"rank": 0`` builds the component only on that process (default: this process's rank in a
    distributed job, train/distributed.py); single-process training is rank 0.
    ``every_rank``: the component must run on every rank of the job whatever its ``rank`` (the resolver
    decides which): a saver that collects from every rank before its rank writes (MONAI's MetricsSaver,
    ClassificationSaver: ``rank`` becomes its ``save_rank``), else that rank would wait forever for the
    others; a CheckpointLoader, else the other ranks would train their model copies from other weights.
    A rank that is not an integer is an error: skipping silently would drop, say, the ValidationHandler."""
    value = node.get("rank")
    if value is None:
        return False
    if isinstance(value, bool) or not isinstance(value, (int, str)) or not str(value).strip().isdigit():
        name = unresolved_variable(value)
        message = f"unknown variable {{{name}}} (set it in environment.json or with --set)" if name else \
            f"rank must be a process number (0 in a single-process run), got {value!r}"
        raise ConfigError(file, (*path, "rank"), message)
    from mmar_automl.train.distributed import current

    me = current()
    if every_rank and int(value) < me.world_size:
        return False
    return int(value) != (me.rank if rank is None else rank)


def validation_interval(config: dict) -> tuple[int, JsonPath] | None:
    """The epoch interval of the train section's enabled ValidationHandler and its JSON path (after
    substitution), or None when there is no such handler or its interval is not a whole number."""
    handlers = (config.get("train") or {}).get("handlers") if isinstance(config.get("train"), dict) else None
    for i, handler in enumerate(handlers if isinstance(handlers, list) else []):
        if not is_component(handler) or str(handler.get("name") or handler.get("path")).rpartition(".")[2] != "ValidationHandler":
            continue
        try:
            if is_disabled(handler, None, ("train", "handlers", i)) or skipped_by_rank(handler, None, ("train", "handlers", i)):
                continue
        except ConfigError:
            continue
        args = handler.get("args") if isinstance(handler.get("args"), dict) else {}
        if args.get("epoch_level", True) is False:
            return None
        interval = args.get("interval", 1)
        if isinstance(interval, int) and not isinstance(interval, bool):
            return interval, ("train", "handlers", i, "args", "interval")
    return None


def check_sections(config: dict, file: str | None, required: bool = True) -> None:
    """No ``train`` section: every job would fail on it at once; a misspelt one (``trian``) is named with its
    suggestion. One owner for ``train`` (``required``) and for ``validate`` and ``run`` (before a run folder
    exists), which refuse only a misspelt section: they also read search-space fragments and Clara's
    TensorFlow-era configs, whose spaces they show, so a whole search is not spent on a typo."""
    from mmar_automl.config.suggest import did_you_mean

    if isinstance(config.get("train"), dict):
        return
    suggestion = did_you_mean("train", [k for k, v in config.items() if isinstance(v, dict)])
    if required or suggestion:
        raise ConfigError(file, ("train",), f"missing: a Clara 4.x config needs a train section{suggestion}")
