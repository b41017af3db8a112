"""The project a command works on: one MMAR folder, and every fact about it that several modules need.

``Mmar`` is the one owner of: the root; where the train config, config_automl.json and
environment.json are (one resolver, ``locate``, for a path given on the command line); environment.json
(read with the project's one strict JSON loader, config/jsonfile.py); the ``--set`` values (parsed,
checked and written in by config/overrides.py); ``{VAR}`` variables; ``MMAR_CKPT_DIR`` (``ckpt_dir``);
where runs go (``runs_dir``, ``run_dir``). No other module builds ``root / "automl"`` or reads
``MMAR_CKPT_DIR``. A job folder is an MMAR too: ``Mmar.at(job_folder).ckpt_dir`` is where that job
writes (run/outputs.py reads it there).

What a project provides (the interface a MONAI bundle will implement as a second kind of project; the
MMAR file names ``config/config_train.json``, ``config/environment.json``... stay inside this module):

    root: Path                        the project folder (absolute)
    train_config_file: Path           the training config, as located
    automl_config_file: Path          the search config (may not exist; ``automl_config_given`` says
                                      whether the user named it, which makes its absence an error)
    environment: dict                 the variables file as written (relative paths), --set values in
    train_config: dict | None         the training config as read, --set values written in, {VAR} kept
                                      (``open`` loads it; ``at`` does not)
    overrides: dict                   the checked --set values (``run`` journals them)
    run_keys: RunKeys                 Clara's run keys given as --set (run_id, trainconf, workers, traceout)
    label(path) -> str                a file as error messages name it
    variables() -> dict               the {VAR} values (paths made absolute against the root)
    substituted_config() -> dict      what the trainer builds objects from
    ckpt_dir: Path                    where training writes model.pt, train_stats.json, metrics.jsonl
    runs_dir: Path, run_dir(id)       where ``run`` writes its runs

Torch-free on purpose: the outer loop (validate, run, executor, report) imports it too. Clara semantics
(DESIGN.md section 2): config strings refer to first-level keys of config_train.json and to the keys of
environment.json as ``{NAME}``; ``--set NAME=value`` overrides both; paths are relative to the MMAR
root so that an MMAR can be zipped and moved.
"""

from __future__ import annotations

import logging
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from mmar_automl.config.jsonfile import load_json
from mmar_automl.config.overrides import (
    TRACEOUT_NOTE, RunKeys, apply_overrides, check_overrides, parse_overrides,
)
from mmar_automl.errors import ConfigError, UsageError

log = logging.getLogger("mmar_automl.config")

TRAIN_CONFIG = "config/config_train.json"
AUTOML_CONFIG = "config/config_automl.json"
ENVIRONMENT_FILE = "config/environment.json"
CONFIG_DIR = "config"            # Clara's trainconf=NAME is relative to it
DEFAULT_CKPT_DIR = "models"
RUNS_DIR = "automl"

# environment.json keys that hold paths (made absolute against the MMAR root for {VAR}).
PATH_VARIABLES = ("DATA_ROOT", "DATASET_JSON", "MMAR_CKPT_DIR", "MMAR_CKPT", "MMAR_EVAL_OUTPUT_PATH")

_VAR = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_WHOLE_VAR = re.compile(r"^\{([A-Za-z_][A-Za-z0-9_]*)\}$")


def locate(root: Path, given: str | Path | None, default: str) -> Path:
    """The file a command-line option names: ``default`` under ``root`` when not given; a relative path
    from the current folder when it exists there (shell habit), else relative to the MMAR root (Clara's
    commands/ scripts pass paths such as config/config_train.json)."""
    if given is None:
        return root / default
    path = Path(given)
    if path.is_absolute() or path.exists():
        return path.absolute()
    return root / path


def clara_automlconf(root: str | Path, automl_config: str | Path | None, automlconf: str | None) -> str | None:
    """The AutoML config a command line names: ``--automl-config FILE``, or Clara's ``--automlconf NAME``
    (its scripts pass a file of ``config/``, e.g. ``--automlconf config_automl_BYO_handler.json``)."""
    if automlconf is None:
        return None if automl_config is None else str(automl_config)
    path = Path(automlconf) if Path(automlconf).is_absolute() else Path(root) / CONFIG_DIR / automlconf
    if automl_config is not None and Path(locate(Path(root), automl_config, AUTOML_CONFIG)).resolve() != path.resolve():
        raise UsageError(f"--automlconf {automlconf} and --automl-config {automl_config} name different files: give one")
    return str(path)


def _in_config_dir_hint(root: Path, given: str | Path | None) -> str:
    """A train config named as Clara's ``trainconf`` names it (``other.json``, relative to config/) but given
    to ``--train-config`` (relative to the current folder or the MMAR root): say where it is."""
    if given is None or Path(given).is_absolute() or not (root / CONFIG_DIR / given).is_file():
        return ""
    return (f" (there is {CONFIG_DIR}/{given}: --train-config {CONFIG_DIR}/{given}, or Clara's "
            f"--set trainconf={given})")


def label_path(root: Path, path: str | Path, relative: bool = True) -> str:
    """A project's file as messages name it: relative to the project root when inside it (and ``relative``),
    else as located (Mmar and Bundle alike)."""
    path = Path(path)
    if relative:
        try:
            return str(path.resolve().relative_to(root))
        except ValueError:
            pass
    return str(path)


def ckpt_dir_name(environment: Mapping[str, Any]) -> str:
    """``MMAR_CKPT_DIR`` as written in environment.json, else ``models``."""
    value = environment.get("MMAR_CKPT_DIR")
    return value if isinstance(value, str) and value else DEFAULT_CKPT_DIR


@dataclass
class Mmar:
    """One MMAR folder (see the module docstring for what it provides)."""

    root: Path
    train_config_file: Path
    automl_config_file: Path
    environment: dict[str, Any] = field(default_factory=dict)
    train_config: dict[str, Any] | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    run_keys: RunKeys = field(default_factory=RunKeys)
    automl_config_given: bool = False
    relative_labels: bool = True   # errors name files relative to the root (run, train) or as located (validate)

    # -- opening ----------------------------------------------------------------------------------

    @classmethod
    def at(cls, root: str | Path, train_config: str | Path | None = None,
           automl_config: str | Path | None = None, *, relative_labels: bool = True) -> Mmar:
        """The MMAR at ``root``: files located, environment.json read (optional); the train config is
        not read (``open`` does). A root that is not a folder is a ConfigError."""
        given = Path(root)
        if not given.is_dir():
            raise ConfigError(root, None, "MMAR root is not a folder")
        mmar = cls(given.resolve(), locate(given, train_config, TRAIN_CONFIG),
                   locate(given, automl_config, AUTOML_CONFIG), automl_config_given=automl_config is not None,
                   relative_labels=relative_labels)
        env_file = given / ENVIRONMENT_FILE
        if env_file.is_file():
            environment = load_json(env_file, mmar.label(env_file))
            if not isinstance(environment, dict):
                raise ConfigError(mmar.label(env_file), None,
                                  f"expected a JSON object at the top level, got {type(environment).__name__}")
            for key in PATH_VARIABLES:  # a number or list here would only fail deep inside a job
                if key in environment and not isinstance(environment[key], str):
                    raise ConfigError(mmar.label(env_file), (key,),
                                      f"expected a path string, got {json.dumps(environment[key])}")
            mmar.environment = environment
        return mmar

    @classmethod
    def open(cls, root: str | Path, train_config: str | Path | None = None,
             automl_config: str | Path | None = None, overrides: Iterable[str] | Mapping[str, Any] = (), *,
             relative_labels: bool = True) -> Mmar:
        """``at`` plus the train config read and the ``--set`` values checked and written in.

        ``overrides``: ``KEY=VALUE`` items as typed, or values already parsed (a run's journal). Clara's
        ``trainconf=NAME`` names the train config (relative to config/). Raises ConfigError/UsageError
        (exit 2) before anything is written."""
        parsed = dict(overrides) if isinstance(overrides, Mapping) else parse_overrides(overrides)
        run_keys, values = RunKeys.split(parsed)
        if run_keys.trainconf is not None:
            trainconf = (Path(root) / CONFIG_DIR / run_keys.trainconf).absolute()  # never the current folder's
            if train_config is not None and locate(Path(root), train_config, TRAIN_CONFIG).resolve() != (
                    trainconf.resolve()):
                raise UsageError(f"--set trainconf={run_keys.trainconf} and --train-config {train_config} "
                                 "name different files: give one")
            train_config = trainconf
        if run_keys.traceout is not None:
            log.warning(TRACEOUT_NOTE.format(value=run_keys.traceout))
        mmar = cls.at(root, train_config, automl_config, relative_labels=relative_labels)
        file = mmar.label(mmar.train_config_file)
        if not mmar.train_config_file.is_file():
            raise ConfigError(file, None, "is a folder, expected a JSON file" if mmar.train_config_file.exists()
                              else "file not found" + _in_config_dir_hint(mmar.root, train_config))
        config = load_json(mmar.train_config_file, file)
        if not isinstance(config, dict):
            raise ConfigError(file, None, f"expected a JSON object at the top level, got {type(config).__name__}")
        check_overrides(values, config, mmar.environment, file)
        config, environment = apply_overrides(config, mmar.environment, values, file)
        return replace(mmar, train_config=config, environment=environment, overrides=values, run_keys=run_keys)

    # -- facts ------------------------------------------------------------------------------------

    def label(self, path: str | Path) -> str:
        """A file as errors name it: relative to the root when inside it (run, train), else as located."""
        return label_path(self.root, path, self.relative_labels)

    def resolve(self, path: str | Path) -> Path:
        """A path from a config, relative to the MMAR root unless absolute."""
        p = Path(path)
        return p if p.is_absolute() else self.root / p

    @property
    def ckpt_dir(self) -> Path:
        """Where training writes its checkpoint, train_stats.json and metrics.jsonl (``MMAR_CKPT_DIR``)."""
        return self.resolve(ckpt_dir_name(self.environment))

    @property
    def runs_dir(self) -> Path:
        """The folder that holds the runs: ``automl/``, or Clara's MMARHandler ``work_dir`` of
        config_automl.json (read there: config/automl_config.py ``runs_dir``)."""
        from mmar_automl.config.automl_config import runs_dir

        return runs_dir(self.root, self.automl_config_file)

    def run_dir(self, run_id: str) -> Path:
        return self.runs_dir / run_id

    def absolute_environment(self) -> dict[str, Any]:
        """environment.json with its path variables made absolute against the root."""
        return {k: str(self.resolve(v)) if k in PATH_VARIABLES and isinstance(v, str) and v else v
                for k, v in self.environment.items()}

    def variables(self) -> dict[str, Any]:
        """The ``{VAR}`` values: first-level scalar keys of the train config, then environment.json (wins)."""
        config = self.train_config or {}
        variables: dict[str, Any] = {k: v for k, v in config.items() if not isinstance(v, (dict, list))}
        variables.update(self.absolute_environment())
        variables.setdefault("MMAR_CKPT_DIR", str(self.ckpt_dir))
        return variables

    def config_values(self, space: Any) -> dict[str, Any]:
        """Each dimension's value in the train config itself (None where it holds none the dimension
        contains): what a job runs with when the dimension is not searched (run/warmstart.py)."""
        from mmar_automl.search.render import config_value

        return {d.name: config_value(self.train_config or {}, d) for d in space}

    def substituted_config(self) -> dict[str, Any]:
        """The train config with every ``{VAR}`` substituted: what the trainer builds from."""
        if self.train_config is None:
            raise RuntimeError("Mmar.at() does not read the train config: use Mmar.open()")
        return substitute(self.train_config, self.variables())


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


def referenced_variables(value: Any) -> set[str]:
    """Every ``{NAME}`` a config's strings refer to (``#`` expressions excluded: their braces are Python's)."""
    if isinstance(value, str):
        return set() if value.startswith("#") else set(_VAR.findall(value))
    if isinstance(value, list):
        return set().union(*(referenced_variables(v) for v in value)) if value else set()
    if isinstance(value, dict):
        return set().union(*(referenced_variables(v) for v in value.values())) if value else set()
    return set()


def unresolved_variable(value: Any) -> str | None:
    """The first ``{NAME}`` still in a string after substitution (the whole string or part of it, as in
    ``"models/{NAME}.pt"``), else None. Callers ask only about plain strings, never ``#`` expressions
    or lambdas, whose braces are Python's."""
    if isinstance(value, str):
        match = _VAR.search(value)
        if match:
            return match.group(1)
    return None
