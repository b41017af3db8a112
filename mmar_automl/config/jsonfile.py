"""Read a user's JSON file strictly: one-line ConfigError with line/column, duplicate keys are errors.

Python's ``json`` keeps the last of two equal keys silently; in a config that is almost always an
edit gone wrong (two ``"args"`` in one component), so we refuse it and name the JSON path.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from mmar_automl.errors import ConfigError, JsonPath


class _Pairs(list):
    """An object as read, before duplicate keys are checked (object_pairs_hook result)."""


def load_json(path: str | Path, label: str | Path | None = None) -> Any:
    """Parse the JSON file at ``path``; errors name it as ``label`` (default: ``path``).

    The project's one strict JSON reader (configs, environment.json). Raises ConfigError(file, None, ...)
    when the file is missing, unreadable or not JSON (the message gives line and column; NaN and
    Infinity are refused), and ConfigError(file, json path, ...) for a key that appears twice in one object.
    """
    path = Path(path)
    file = path if label is None else label
    try:
        text = path.read_text(encoding="utf-8-sig")  # -sig: a BOM written by some editors is harmless
    except FileNotFoundError:
        raise ConfigError(file, None, "file not found") from None
    except IsADirectoryError:
        raise ConfigError(file, None, "is a folder, expected a JSON file") from None
    except UnicodeDecodeError as err:
        raise ConfigError(file, None, f"not UTF-8 text (byte {err.start}): expected a JSON file") from None
    except OSError as err:
        raise ConfigError(file, None, f"cannot read: {err.strerror}") from None
    return loads_json(text, file)


def loads_json(text: str, file: str | Path | None = None) -> Any:
    """Parse JSON text with the same checks as :func:`load_json`; ``file`` only labels the errors."""
    if not text.strip():
        # no example: the same reader loads environment.json and config_automl.json, which hold no "train"
        raise ConfigError(file, None, "file is empty: expected a JSON object")
    try:
        return _build(json.loads(text, object_pairs_hook=_Pairs, parse_constant=_reject_constant,
                                 parse_float=_finite_float), (), file)
    except json.JSONDecodeError as err:
        raise ConfigError(file, None, f"invalid JSON at line {err.lineno} column {err.colno}: {err.msg}") from None
    except _ConstantError as err:
        line, column = _constant_position(text, str(err))
        raise ConfigError(file, None, f"invalid JSON at line {line} column {column}: {err} is not a JSON number "
                          "(use null or a finite number)") from None
    except RecursionError:
        raise ConfigError(file, None, "JSON nested too deeply (more than ~900 levels of [ or {)") from None


class _ConstantError(ValueError):
    pass


class _Huge(str):
    """A number literal too large for a float (``1e400``), kept as text until _build knows its JSON path."""


def _constant_position(text: str, name: str) -> tuple[int, int]:
    """Line and column (1-based) of the first ``name`` (NaN, Infinity, -Infinity) outside a string: the
    json module calls parse_constant without telling where."""
    in_string = escaped = False
    for i, char in enumerate(text):
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif text.startswith(name, i):
            before = text[:i]
            return before.count("\n") + 1, i - (before.rfind("\n") + 1) + 1
    return 1, 1


def _reject_constant(name: str) -> Any:
    # NaN and Infinity are Python extensions to JSON; other tools (and JSON Schema) reject them.
    raise _ConstantError(name)


def _finite_float(text: str) -> float | _Huge:
    # "1e400" parses to inf in Python, which `--json` would print back as the non-JSON word Infinity.
    value = float(text)
    return _Huge(text) if math.isinf(value) else value


def _build(value: Any, path: JsonPath, file: str | Path | None) -> Any:
    if isinstance(value, _Pairs):
        out: dict[str, Any] = {}
        for key, item in value:
            if key in out:
                raise ConfigError(file, (*path, key), f"duplicate key {key!r} in one object: keep only one")
            out[key] = _build(item, (*path, key), file)
        return out
    if isinstance(value, list):
        return [_build(item, (*path, i), file) for i, item in enumerate(value)]
    if isinstance(value, _Huge):
        shown = value if len(value) <= 20 else value[:17] + "..."
        raise ConfigError(file, path, f"number {shown} is too large (it would be Infinity): use a finite number")
    return value
