"""config_automl.json: which controller, executor and handlers a search uses (DESIGN.md section 4).

The file is checked against ``schemas/config_automl.schema.json`` (its shape) and against
``registry.py`` (the names). Component args are not checked here: each component checks its own,
and Clara's ``{trainconf}``-style placeholders are legal values. ``path`` components (bring your own
code) are only imported when a run needs them: ``ComponentSpec.load_class``.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import sys
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from mmar_automl.config import registry
from mmar_automl.config.mmar import AUTOML_CONFIG, RUNS_DIR
from mmar_automl.errors import ConfigError
from mmar_automl.config.jsonfile import load_json
from mmar_automl.config.suggest import did_you_mean

SCHEMA_PATH = Path(__file__).parent / "schemas" / "config_automl.schema.json"
BYOC_DIRS = ("custom", "BYOC")   # folders of an MMAR (besides its root) that ``path`` components import from


@dataclass(frozen=True)
class ComponentSpec:
    """One component of config_automl.json as written.

    ``kind`` is the registry key: "controller", "executor" or "handlers". ``path`` ("module.Class"),
    when given, wins over ``name`` (Clara's BYO example has both; the name is then just a label).
    ``json_path`` locates it in ``file`` for error messages, e.g. ``handlers[3]``.
    """

    kind: str
    name: str | None
    path: str | None
    args: dict[str, Any]
    json_path: str
    file: str | None = None

    @property
    def label(self) -> str:
        """What to call it in messages and tables: the name, else the class of the path."""
        return self.name or (self.path or "").rpartition(".")[2]

    @property
    def target(self) -> str:
        """What gets imported: the user's "module.Class", or the registry's "package.module:Class"."""
        return self.path or registry.KINDS[self.kind][self.name or ""]

    def load_class(self, mmar_root: str | Path | None = None) -> Any:
        """Import the component's class. A ``path`` is imported with the MMAR root, its ``custom/`` and
        its ``BYOC/`` folders on sys.path. Raises ConfigError (naming ``<json_path>.path``) on failure."""
        if self.path:
            if mmar_root is not None:
                add_mmar_to_sys_path(mmar_root)
            from mmar_automl.clara_api import install_alias

            install_alias()  # Clara's ``automl.*`` names for BYOC code (a real ``automl`` package still wins)
            where = f"{self.json_path}.path"
            module_name, _, attr = self.path.rpartition(".")
            try:
                module = importlib.import_module(module_name)
            except Exception as err:  # noqa: BLE001 - user code: any failure is a config problem
                searched = f" (searched {mmar_root} and its {', '.join(BYOC_DIRS)} folders)" if mmar_root else ""
                raise ConfigError(self.file, where, f"cannot import module {module_name!r}{searched}: "
                                  f"{type(err).__name__}: {err}") from err
            if not hasattr(module, attr):
                raise ConfigError(self.file, where, f"module {module_name!r} has no {attr!r}"
                                  f"{did_you_mean(attr, [n for n in dir(module) if not n.startswith('_')])}")
            return getattr(module, attr)
        try:
            return registry.import_target(self.target)
        except (ImportError, AttributeError) as err:
            raise ConfigError(self.file, f"{self.json_path}.name",
                              f"{self.name} is not available in this installation: {type(err).__name__}: {err}") from err

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "json_path": self.json_path}
        if self.name is not None:
            out["name"] = self.name
        if self.path is not None:
            out["path"] = self.path
        out["args"] = self.args
        return out


@dataclass(frozen=True)
class AutomlConfig:
    """A loaded config_automl.json. ``executor`` is None when the file has none (the run's default)."""

    file: str
    controller: ComponentSpec
    executor: ComponentSpec | None
    handlers: list[ComponentSpec] = field(default_factory=list)
    mmar_root: str | None = None

    @property
    def components(self) -> list[ComponentSpec]:
        return [self.controller, *([self.executor] if self.executor else []), *self.handlers]

    def to_json(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "controller": self.controller.to_json(),
            "executor": self.executor.to_json() if self.executor else None,
            "handlers": [h.to_json() for h in self.handlers],
        }


def add_mmar_to_sys_path(mmar_root: str | Path) -> None:
    """Put the MMAR root and its custom/ and BYOC/ folders at the front of sys.path (once each)."""
    root = Path(mmar_root).resolve()
    for folder in reversed([root, *(root / d for d in BYOC_DIRS)]):
        text = str(folder)
        if folder.is_dir() and text not in sys.path:
            sys.path.insert(0, text)




def runs_dir(mmar_root: str | Path, automl_file: str | Path | None = None) -> Path:
    """The folder that holds an MMAR's runs (``<runs dir>/<run_id>``): Clara's MMARHandler ``work_dir`` of
    config_automl.json (relative to the MMAR root unless absolute) when it names one, else ``<MMAR>/automl``.

    The one owner of that fact: run (new and resumed), report, export-best and sync all ask here.
    ``automl_file`` defaults to the MMAR's config/config_automl.json; a missing file means the default."""
    root = Path(mmar_root).resolve()
    file = Path(automl_file) if automl_file is not None else root / AUTOML_CONFIG
    work_dir = mmar_handler_work_dir(file) if file.is_file() else None
    if work_dir is None:
        return root / RUNS_DIR
    path = Path(work_dir).expanduser()
    return (path if path.is_absolute() else root / path).resolve()


def check_runs_dir(runs: Path, config: AutomlConfig | None) -> None:
    """The runs folder must exist or be creatable: run and validate check it before anything is written.
    The error names MMARHandler's ``work_dir`` when that is where the folder comes from."""
    existing = runs
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if existing.is_dir() and os.access(existing, os.W_OK | os.X_OK):
        return
    why = "not a folder" if not existing.is_dir() else "no write permission"
    spec = next((s for s in (config.handlers if config else []) if s.name == "MMARHandler" and not s.path
                 and "work_dir" in s.args), None)
    raise ConfigError(spec.file if spec else None, f"{spec.json_path}.args.work_dir" if spec else None,
                      f"runs go to {runs}, which cannot be created ({existing}: {why})")


def mmar_handler_work_dir(file: str | Path) -> str | None:
    """MMARHandler's ``work_dir`` arg in a config_automl.json, or None. Read without the schema check, so
    that report and sync stay light; a work_dir that is not a non-empty string is a ConfigError."""
    data = load_json(file)
    handlers = data.get("handlers") if isinstance(data, dict) else None
    for i, handler in enumerate(handlers if isinstance(handlers, list) else []):
        if not isinstance(handler, dict) or handler.get("name") != "MMARHandler" or handler.get("path"):
            continue
        args = handler.get("args") if isinstance(handler.get("args"), dict) else {}
        value = args.get("work_dir")
        if value is None:
            return None
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(str(file), f"handlers[{i}].args.work_dir",
                              f"expected the folder that holds the runs (a path), got {json.dumps(value)}")
        return value
    return None


def no_effect_notes(config: AutomlConfig) -> list[str]:
    """One line per built-in component or arg of one that is accepted (Clara files have it) but changes nothing
    here, with the reason: no key of a Clara file is dropped without a word. ``path`` components are the
    user's own: their args are theirs to use."""
    import inspect

    notes = []
    for spec in config.components:
        if spec.path:
            continue
        cls = spec.load_class()
        if getattr(cls, "clara_no_effect", None):  # a whole Clara component that does nothing here
            notes.append(f"{spec.file}: {spec.json_path} {spec.label} is accepted and has no effect: {cls.clara_no_effect}")
        reasons = dict(cls.clara_notes(spec.args)) if hasattr(cls, "clara_notes") else {}
        named = {n for n, p in inspect.signature(cls).parameters.items() if p.kind is not p.VAR_KEYWORD}
        for arg in spec.args:
            if arg not in named and arg not in reasons:
                reasons[arg] = f"{spec.label} does not use it{did_you_mean(arg, named)}"  # a typo is named
        for arg, why in reasons.items():
            notes.append(f"{spec.file}: {spec.json_path}.args.{arg} is accepted and has no effect: {why}")
    return notes


def load_automl_config(path: str | Path, mmar_root: str | Path | None = None) -> AutomlConfig:
    """Load and check config_automl.json; raise ConfigError(file, JSON path, message) when it is wrong."""
    file = str(path)
    data = load_json(path)
    check_schema(data, file)
    controller = _spec("controller", data["controller"], "controller", file, mmar_root)
    executor = _spec("executor", data["executor"], "executor", file, mmar_root) if "executor" in data else None
    handlers = [_spec("handlers", h, f"handlers[{i}]", file, mmar_root) for i, h in enumerate(data.get("handlers", []))]
    return AutomlConfig(file, controller, executor, handlers, str(mmar_root) if mmar_root is not None else None)


def _spec(kind: str, raw: dict[str, Any], json_path: str, file: str, mmar_root: str | Path | None) -> ComponentSpec:
    """One component, checked as far as is cheap: a built-in's name, and the arg names and value types of
    its class. A ``path`` (bring your own) is imported when the MMAR is known (``mmar_root``: validate
    and run), so that a module that is not there fails here, naming ``<json_path>.path``."""
    name, path = raw.get("name"), raw.get("path")
    if path is None:
        known = registry.KINDS[kind]
        if name not in known:
            what = "handler" if kind == "handlers" else kind
            raise ConfigError(file, f"{json_path}.name",
                              f"unknown {what} {name!r}{did_you_mean(name, known)}; known: {', '.join(known)} "
                              "(or give \"path\": \"module.Class\" for your own)")
    spec = ComponentSpec(kind, name, path, dict(raw.get("args", {})), json_path, file)
    if path is None or mmar_root is not None:
        cls = spec.load_class(mmar_root)
        if kind == "executor":
            base = registry.import_target(registry.EXECUTORS["MMARExecutor"])
            if not (isinstance(cls, type) and issubclass(cls, base)):
                raise ConfigError(file, json_path, f"{spec.label} must subclass mmar_automl.run.executor.MMARExecutor")
        _check_arg_names(spec, cls)
        _check_arg_values(spec, cls)
    return spec


def _parameters(cls: Any) -> dict[str, Any]:
    import inspect

    try:
        return dict(inspect.signature(cls).parameters)
    except (TypeError, ValueError):  # a class whose signature cannot be read: nothing to check against
        return {}


def _check_arg_names(spec: ComponentSpec, cls: Any) -> None:
    """Args a component does not take are errors now, not when ``run`` builds it (by signature: importing
    our modules is cheap, building an Optuna controller is not). A component taking ``**kwargs`` (Clara's
    extra args) takes any."""
    params = _parameters(cls)
    if not params or any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return
    for arg in spec.args:
        if arg not in params:
            raise ConfigError(spec.file, f"{spec.json_path}.args.{arg}",
                              f"{spec.label} takes no arg {arg!r}{did_you_mean(arg, params)}; "
                              f"its args: {', '.join(params)}")


def _check_arg_values(spec: ComponentSpec, cls: Any) -> None:
    """An arg value of the wrong JSON type for the class's annotation (or, unannotated, its default):
    ``"max_rounds": "ten"`` for an int. What the annotation leaves open (Any, a class of the user's)
    passes; ranges and choices stay with the component, which checks them when built. A Clara
    ``{placeholder}`` string passes too (``"train_config_file": "{trainconf}"``)."""
    import inspect
    import typing

    params = _parameters(cls)
    try:
        hints = typing.get_type_hints(cls.__init__ if inspect.isclass(cls) else cls)
    except Exception:  # noqa: BLE001 - annotations that do not resolve: check by defaults only
        hints = {}
    for arg, value in spec.args.items():
        if arg not in params or (isinstance(value, str) and _PLACEHOLDER.fullmatch(value)):
            continue
        hint = hints.get(arg)
        default = params[arg].default
        if hint is None and default is not inspect.Parameter.empty and default is not None:
            hint = type(default)
            if hint not in (bool, int, float, str, list, dict):
                continue
        if hint is not None and _json_type_ok(value, hint) is False:
            raise ConfigError(spec.file, f"{spec.json_path}.args.{arg}",
                              f"{spec.label}: {arg} must be {_shown(hint)}, got {json.dumps(value)}")


_PLACEHOLDER = re.compile(r"\{[A-Za-z_][A-Za-z0-9_]*\}")  # Clara's "{trainconf}"


def _json_type_ok(value: Any, hint: Any) -> bool | None:
    """Whether a JSON value fits an annotation: True, False, or None (cannot tell: passes)."""
    import collections.abc
    import types
    import typing

    if hint is Any or isinstance(hint, (str, typing.TypeVar)):
        return None
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        verdicts = [_json_type_ok(value, h) for h in typing.get_args(hint)]
        return True if True in verdicts else (None if None in verdicts else False)
    if origin is typing.Literal:
        return value in typing.get_args(hint)
    target = origin or hint
    if target is type(None):
        return value is None
    if target is bool:
        return isinstance(value, bool)
    if target is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if target is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if target is str:
        return isinstance(value, str)
    if isinstance(target, type) and issubclass(target, (dict, collections.abc.Mapping)):
        return isinstance(value, dict)
    if isinstance(target, type) and target is not str and issubclass(target, (list, tuple, collections.abc.Sequence)):
        return isinstance(value, list)
    return None


def _shown(hint: Any) -> str:
    text = hint.__name__ if isinstance(hint, type) else str(hint)
    return text.replace("typing.", "").replace("NoneType", "None")


@lru_cache(maxsize=1)
def _schema() -> dict[str, Any]:
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


def check_schema(data: Any, file: str) -> None:
    """Validate ``data`` against the JSON Schema; the first problem becomes a one-line ConfigError."""
    import jsonschema  # imported here: only validate/run need it

    validator = jsonschema.Draft202012Validator(_schema())
    # At one place, an unknown key goes first: "controler" is reported with its suggestion, not as a
    # missing "controller".
    errors = sorted(validator.iter_errors(data), key=lambda e: (len(e.absolute_path), list(map(str, e.absolute_path)),
                                                                e.validator != "additionalProperties"))
    if errors:
        raise _translate(errors[0], file)


def _translate(err: Any, file: str) -> ConfigError:
    """A jsonschema error in our words: what is wrong here and what is expected."""
    where = list(err.absolute_path)
    inst, kind = err.instance, err.validator
    if kind == "required":
        missing = err.message.split("'")[1] if "'" in err.message else "?"
        return ConfigError(file, where, f"missing {missing!r}: config_automl.json needs a controller, "
                           "e.g. \"controller\": {\"name\": \"GridController\"}")
    if kind == "additionalProperties" and isinstance(inst, dict):
        allowed = list(err.schema.get("properties", {}))
        extra = next(k for k in inst if k not in allowed)
        return ConfigError(file, [*where, extra], f"unknown key {extra!r}{did_you_mean(extra, allowed)}: "
                           f"expected {', '.join(allowed)}")
    if kind == "anyOf":
        return ConfigError(file, where, "a component needs \"name\" (a built-in) or \"path\" (\"module.Class\" "
                           "from the MMAR)")
    if kind == "type":
        want = {"object": "an object", "array": "a list", "string": "a string"}.get(err.validator_value, err.validator_value)
        return ConfigError(file, where, f"expected {want}, got {json.dumps(inst)[:60]}")
    if kind == "pattern":
        return ConfigError(file, where, f"path must be a dotted 'module.Class', got {inst!r}")
    if kind == "minLength":
        return ConfigError(file, where, "must not be empty")
    return ConfigError(file, where, err.message)

