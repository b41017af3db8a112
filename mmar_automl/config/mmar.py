"""MMAR paths, environment.json, ``--set`` overrides and ``{VAR}`` substitution.

Torch-free on purpose: the outer loop (validate, run, executor) imports it too. Clara semantics
(DESIGN.md section 2): config strings refer to first-level keys of config_train.json and to the keys
of environment.json as ``{NAME}``; ``--set NAME=value`` overrides both; paths are relative to the MMAR
root so that an MMAR can be zipped and moved.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mmar_automl.errors import ConfigError

DEFAULT_TRAIN_CONFIG = "config/config_train.json"
ENVIRONMENT_FILE = "config/environment.json"
DEFAULT_CKPT_DIR = "models"

# environment.json keys that hold paths (made absolute against the MMAR root when relative).
PATH_VARIABLES = ("DATA_ROOT", "DATASET_JSON", "MMAR_CKPT_DIR", "MMAR_CKPT", "MMAR_EVAL_OUTPUT_PATH")

_VAR = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_WHOLE_VAR = re.compile(r"^\{([A-Za-z_][A-Za-z0-9_]*)\}$")
_PATH_TOKEN = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def read_json(path: Path) -> Any:
    """Load a JSON file strictly (config/jsonfile.py: line and column on bad JSON, NaN and duplicate keys
    refused): one owner for how user JSON is read."""
    from mmar_automl.config.jsonfile import load_json

    return load_json(path)


def parse_value(text: str) -> Any:
    """A ``--set`` value: JSON when it parses (2, 1e-3, true, [32,32,32], "x"), else the plain string."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def parse_overrides(items: Iterable[str]) -> dict[str, Any]:
    """``["epochs=2", "train.model.args.channels=[4,8]"]`` -> ordered {key: value}."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(None, None, f"--set expects KEY=VALUE, got {item!r}")
        out[key.strip()] = parse_value(value)
    return out


def split_json_path(path: str) -> list[str | int]:
    """``train.pre_transforms[5].args.spatial_size`` -> ["train", "pre_transforms", 5, "args", "spatial_size"]."""
    parts: list[str | int] = []
    for name, index in _PATH_TOKEN.findall(path):
        parts.append(int(index) if index else name)
    return parts


def set_json_path(config: Any, path: str, value: Any, file: str | Path | None = None) -> None:
    """Write ``value`` at a dotted JSON path; every container on the way must exist."""
    parts = split_json_path(path)
    node = config
    for depth, part in enumerate(parts[:-1]):
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            raise ConfigError(file, parts[: depth + 1], f"--set {path}: no such key in the config") from None
    last = parts[-1]
    if isinstance(last, int):
        if not isinstance(node, list) or last >= len(node):
            raise ConfigError(file, parts, f"--set {path}: no such list item in the config")
    elif not isinstance(node, dict):
        raise ConfigError(file, parts[:-1], f"--set {path}: not an object")
    node[last] = value


def substitute(value: Any, variables: Mapping[str, Any]) -> Any:
    """Replace ``{NAME}`` in every string. A string that is exactly ``"{NAME}"`` takes the variable's
    typed value (``"{epochs}"`` -> 2); inside a longer string the value is formatted in. Unknown names
    stay as written: the trainer reports them only where a component that is actually built uses them
    (a disabled CheckpointLoader may name an unset ``{MMAR_CKPT}``)."""
    if isinstance(value, str):
        whole = _WHOLE_VAR.match(value)
        if whole:
            return variables[whole.group(1)] if whole.group(1) in variables else value
        return _VAR.sub(lambda m: str(variables[m.group(1)]) if m.group(1) in variables else m.group(0), value)
    if isinstance(value, list):
        return [substitute(v, variables) for v in value]
    if isinstance(value, dict):
        return {k: substitute(v, variables) for k, v in value.items()}
    return value


def unresolved_variable(value: Any) -> str | None:
    """The first ``{NAME}`` still in a string after substitution (the whole string or part of it, as in
    ``"models/{NAME}.pt"``), else None. Callers ask only about plain strings, never ``#`` expressions
    or lambdas, whose braces are Python's."""
    if isinstance(value, str):
        match = _VAR.search(value)
        if match:
            return match.group(1)
    return None


@dataclass
class Mmar:
    """One MMAR folder: its root, the train config file and the variables for ``{VAR}``."""

    root: Path
    config_file: Path
    environment: dict[str, Any] = field(default_factory=dict)

    @property
    def ckpt_dir(self) -> Path:
        return self.resolve(self.environment.get("MMAR_CKPT_DIR") or DEFAULT_CKPT_DIR)

    def resolve(self, path: str | Path) -> Path:
        """A path from a config, relative to the MMAR root unless absolute."""
        p = Path(path)
        return p if p.is_absolute() else self.root / p


def open_mmar(root: str | Path, config: str | Path | None = None) -> Mmar:
    """Locate the MMAR's files and load environment.json (optional; paths in it made absolute)."""
    root_path = Path(root).resolve()
    if not root_path.is_dir():
        raise ConfigError(root, None, "MMAR root is not a folder")
    if config is None:
        config_file = root_path / DEFAULT_TRAIN_CONFIG
    else:
        config_file = Path(config)
        if not config_file.is_absolute():
            # Relative to the cwd when it exists there (shell habit), else to the MMAR root.
            config_file = config_file.resolve() if config_file.exists() else root_path / config_file
    env_file = root_path / ENVIRONMENT_FILE
    environment: dict[str, Any] = {}
    if env_file.exists():
        loaded = read_json(env_file)
        if not isinstance(loaded, dict):
            raise ConfigError(env_file, None, "environment.json must be a JSON object")
        for key in PATH_VARIABLES:
            if key in loaded and not isinstance(loaded[key], str):
                raise ConfigError(env_file, (key,), f"expected a path string, got {json.dumps(loaded[key])}")
        environment = loaded
    mmar = Mmar(root_path, config_file, environment)
    mmar.environment = {k: _absolute(mmar, k, v) for k, v in environment.items()}
    return mmar


def _absolute(mmar: Mmar, key: str, value: Any) -> Any:
    if key in PATH_VARIABLES and isinstance(value, str) and value:
        return str(mmar.resolve(value))
    return value


def load_train_config(mmar: Mmar, overrides: Mapping[str, Any] | None = None) -> tuple[dict, dict[str, Any]]:
    """Read config_train.json, apply ``--set`` and substitute ``{VAR}``.

    Override keys without ``.``/``[`` set a variable: the first-level config key of that name (when it
    exists or is not an environment key) and the environment value. Keys with a JSON path
    (``train.model.args.channels``) edit the config in place before substitution.
    Returns (the substituted config, the variables used)."""
    config = read_json(mmar.config_file)
    if not isinstance(config, dict):
        raise ConfigError(mmar.config_file, None, "config_train.json must be a JSON object")
    environment = dict(mmar.environment)
    for key, value in (overrides or {}).items():
        if "." in key or "[" in key:
            set_json_path(config, key, value, mmar.config_file)
        else:
            if key in environment:
                environment[key] = _absolute(mmar, key, value)
            if key in config or key not in environment:
                config[key] = value
    variables: dict[str, Any] = {k: v for k, v in config.items() if not isinstance(v, (dict, list))}
    variables.update(environment)
    variables.setdefault("MMAR_CKPT_DIR", str(mmar.resolve(DEFAULT_CKPT_DIR)))
    mmar.environment = environment
    return substitute(config, variables), variables
