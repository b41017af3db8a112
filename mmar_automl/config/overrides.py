"""``--set KEY=VALUE``: the one parser, the one key check and the one rule that writes the values in.

``run``, ``train`` and ``validate`` all go through here (via ``Mmar.open``), so a key means the same
thing to each command and a mistake is the same exit-2 line everywhere. A key is one of:

- a first-level key of the train config (``epochs``), or a key the trainer itself reads (``use_gpu``...);
- an environment.json key, or one of Clara's standard ones (``DATA_ROOT``, ``MMAR_CKPT_DIR``...);
- a variable the config refers to as ``{NAME}`` without defining it;
- a JSON path into the train config (``train.model.args.channels``): every container on the way must
  exist, and so must the last key, except inside an ``args`` object (a component's argument may be new)
  and for a component's ``disabled``/``rank``;
- one of Clara's run keys (``run_id``, ``trainconf``, ``workers``, ``traceout``; its ``automl.sh``
  passes them as ``--set``): they are run options, not config values (``RunKeys``).
Anything else is exit 2 with a did-you-mean. Values are JSON when they parse (2, 1e-3, true,
[8,16]), else the plain string.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from mmar_automl.config.suggest import did_you_mean
from mmar_automl.errors import ConfigError, UsageError

# Clara's environment.json keys: accepted by --set even where an MMAR's file lacks them.
ENVIRONMENT_KEYS = ("DATA_ROOT", "DATASET_JSON", "MMAR_CKPT_DIR", "MMAR_CKPT", "MMAR_EVAL_OUTPUT_PATH",
                    "PROCESSING_TASK")
# First-level keys the trainer reads with a default (train/run.py, train/fastpaths.py, report/export.py):
# Clara's train.sh passes some of them (multi_gpu=false cudnn_benchmark=false dont_load_ckpt_model=true).
# final_validation (train/run.py): docs/training.md and the job's own note say "--set final_validation=false".
TRAINER_KEYS = ("use_gpu", "multi_gpu", "cudnn_benchmark", "determinism", "dont_load_ckpt_model", "fast_paths",
                "final_validation")
COMPONENT_ATTRIBUTES = ("disabled", "rank")   # optional keys of a component, beside name/path/args
# Clara's automl.sh: --set run_id=a trainconf=config_train.json workers=0:1 traceout=both
RUN_KEYS = ("run_id", "trainconf", "workers", "traceout")
TRACEOUT_NOTE = ("--set traceout={value}: has no effect here: each job's output goes to its log.txt and the "
                 "run's progress to the console")


def parse_value(text: str) -> Any:
    """A ``--set`` value: JSON when it parses strictly (2, 1e-3, true, [32,32,32], "x"), else the plain
    string (``NaN`` stays the word: a config holding NaN would not be JSON)."""
    from mmar_automl.config.jsonfile import loads_json

    try:
        return loads_json(text)
    except ConfigError:
        return text


def parse_overrides(items: Iterable[str]) -> dict[str, Any]:
    """``["epochs=2", "train.model.args.channels=[4,8]"]`` -> ordered {key: value}; a malformed item is
    a UsageError (exit 2)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--set {item!r}: expected KEY=VALUE (e.g. --set epochs=2)")
        out[key.strip()] = parse_value(value)
    return out


def set_items(options: Iterable[str] | None, extra: Iterable[str] | None, command: str) -> list[str]:
    """The ``--set`` items of a command line: those after each ``--set`` plus the further KEY=VALUE words
    (``--set a=1 b=2``: typer gives ``b=2`` as an extra argument); a word without ``=`` is a UsageError."""
    extra = list(extra or [])
    for item in extra:
        if "=" not in item:
            raise UsageError(f"{command}: unexpected extra argument {item!r} (overrides are KEY=VALUE after --set)")
    return [*(options or []), *extra]


@dataclass(frozen=True)
class RunKeys:
    """Clara's run keys given as ``--set``: values for run options, never written into a config."""

    run_id: str | None = None
    trainconf: str | None = None      # a train config file, relative to the MMAR's config/ folder
    workers: str | None = None
    traceout: str | None = None

    @classmethod
    def split(cls, overrides: Mapping[str, Any]) -> tuple[RunKeys, dict[str, Any]]:
        """(the run keys, the other overrides)."""
        run = {k: str(v) for k, v in overrides.items() if k in RUN_KEYS}
        return cls(**run), {k: v for k, v in overrides.items() if k not in RUN_KEYS}


def is_json_path(key: str) -> bool:
    return "." in key or "[" in key


def check_overrides(overrides: Mapping[str, Any], config: dict[str, Any], environment: Mapping[str, Any],
                    file: str) -> None:
    """Every plain key must name something (module docstring); JSON paths are checked by
    ``apply_overrides``. ``file`` labels the errors (the train config)."""
    from mmar_automl.config.mmar import referenced_variables

    known = [*config, *environment, *ENVIRONMENT_KEYS, *TRAINER_KEYS, *referenced_variables(config), *RUN_KEYS]
    for key in overrides:
        if is_json_path(key):
            continue  # checked where it is written: apply_overrides -> set_json_path
        if key not in known:
            hint = did_you_mean(key, known) or ("; a JSON path such as train.model.args.channels edits a "
                                                "nested value")
            raise UsageError(f"--set {key}: not a key of {file} or environment.json{hint}")


def check_not_searched(overrides: Mapping[str, Any], space: Any, file: str) -> None:
    """A searched key fixed with --set would hide the search: exit 2. ``space`` is a SearchSpace; a
    consumer's value goes where search/render.py writes it (``args.<arg>``, ``disabled``, a top-level key)."""
    searched: dict[tuple, str] = {}
    for dim in space:
        for consumer in dim.consumers:
            if consumer.arg == "@disabled":
                where = (*consumer.component, "disabled")
            elif not consumer.component:
                where = (consumer.arg,)
            else:
                where = (*consumer.component, "args", consumer.arg)
            searched[where] = dim.name
    for key in overrides:
        dim = searched.get(tuple(split_json_path(key)))
        if dim is not None:
            raise UsageError(f"--set {key}: this key is searched ({file} search blocks, dimension {dim!r}); "
                             "a fixed value would hide the search")


def apply_overrides(config: dict[str, Any], environment: dict[str, Any], overrides: Mapping[str, Any],
                    file: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Write checked ``--set`` values in; returns new (config, environment), the inputs untouched.

    A JSON path edits the config. A plain key sets the environment value when it is an environment key
    (in the file, or a Clara one the config does not define), and the first-level config key when the
    config has it or it is no environment key."""
    import copy

    config, environment = copy.deepcopy(config), dict(environment)
    for key, value in overrides.items():
        if is_json_path(key):
            set_json_path(config, key, value, file)
            continue
        is_env = key in environment or (key in ENVIRONMENT_KEYS and key not in config)
        if is_env:
            environment[key] = value
        if key in config or not is_env:
            config[key] = value
    return config, environment


def split_json_path(path: str) -> list[str | int]:
    """``train.pre_transforms[5].args.spatial_size`` -> ["train", "pre_transforms", 5, "args", "spatial_size"]."""
    import re

    parts: list[str | int] = []
    for name, index in re.findall(r"([^.\[\]]+)|\[(\d+)\]", path):
        parts.append(int(index) if index else name)
    return parts


def set_json_path(config: Any, path: str, value: Any, file: str | None = None) -> None:
    """Write ``value`` at a dotted JSON path; every container on the way must exist, and the last key
    too unless it is a new argument in an ``args`` object or a component attribute (``disabled``, ``rank``)."""
    parts = split_json_path(path)
    node = config
    for depth, part in enumerate(parts[:-1]):
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            raise ConfigError(file, parts[: depth + 1], f"--set {path}: {_missing(node, part)}") from None
    last = parts[-1]
    if isinstance(last, int):
        if not isinstance(node, list) or last >= len(node):
            raise ConfigError(file, parts, f"--set {path}: {_missing(node, last)}")
    elif not isinstance(node, dict):
        raise ConfigError(file, parts[:-1], f"--set {path}: not an object")
    elif last not in node and last not in COMPONENT_ATTRIBUTES and not (len(parts) >= 2 and parts[-2] == "args"):
        raise ConfigError(file, parts, f"--set {path}: no such key in the config{did_you_mean(last, node)}")
    node[last] = value


def _missing(node: Any, part: str | int) -> str:
    """Why ``node[part]`` does not exist, for a --set error."""
    if isinstance(node, list) and isinstance(part, int):
        return f"no such list item in the config (the list has {len(node)})"
    if isinstance(node, dict) and isinstance(part, str):
        return f"no such key in the config{did_you_mean(part, node)}"
    return f"no such key in the config (a {type(node).__name__} is there)"
