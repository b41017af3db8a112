"""Build the objects of a Clara 4.x config on demand, resolving ``@name``, ``@conf``, ``#expr``,
``"lambda ..."`` strings and ``{"ref": "Name"}``.

Our own small layer rather than a translation into ``monai.bundle.ConfigParser`` (docs/training.md says
why): every node is built lazily from its JSON path, results are cached, cycles are caught, and every
error is one ConfigError naming the file, the JSON path and the component.
A reference looks in its own section first, then in the other one: train handlers name the
validate ``@evaluator``, validate names the train ``@model``.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mmar_automl.errors import ConfigError, JsonPath, format_json_path
from mmar_automl.config.mmar import unresolved_variable
from mmar_automl.train import config as cfg
from mmar_automl.train import distributed
from mmar_automl.train.components import (
    check_arg_types,
    check_args,
    import_path,
    lookup_name,
    translate,
    translate_by_signature,
)
from mmar_automl.train.data import DATALIST_KEYS, has_datalist, load_datalist

_ENGINES = ("SupervisedTrainer", "SupervisedEvaluator", "EnsembleEvaluator", "GanTrainer")


class Builder:
    """Turns the sections of one substituted config into objects; one instance per training run."""

    def __init__(
        self,
        config: dict,
        file: str | Path,
        root: Path,
        device: str,
        warn: Callable[[str], None] = print,
    ) -> None:
        self.config = config
        self.file = str(file)
        self.root = root
        self.device = device
        self._warn_to = warn
        self._warned: set[str] = set()
        self.built: dict[tuple[str, str], Any] = {}
        self._building: list[tuple[str, str]] = []
        # Setters to call once an entry is built: a component whose arg refers back to an entry still
        # being built (EarlyStopHandler's ``trainer`` in validate handlers) gets it through ``set_<arg>``.
        self._deferred: dict[tuple[str, str], list[Callable[[Any], Any]]] = {}
        self.checkpoint_dict: dict[str, Any] | None = None  # save_dict of the key-metric CheckpointSaver
        self.amp = False  # whether an engine was built with mixed precision
        self.fast_paths: Any = None  # train.fastpaths.FastPaths, set by train.run: adjusts loaders, engines, models
        self._conf: Any = None
        for section in cfg.SECTIONS:
            if section in config and not isinstance(config[section], dict):
                raise ConfigError(self.file, (section,), "must be an object of components")

    def warn(self, message: str) -> None:
        """Each note once per run (a renamed arg shows up in train and validate alike)."""
        if message not in self._warned:
            self._warned.add(message)
            self._warn_to(message)

    # -- entries -------------------------------------------------------------------------------

    def section(self, name: str) -> dict:
        return self.config.get(name) or {}

    def get(self, section: str, key: str) -> Any:
        """The built object of ``section.key`` (cached)."""
        ident = (section, key)
        if ident in self.built:
            return self.built[ident]
        if ident in self._building:
            cycle = " -> ".join(f"{s}.{k}" for s, k in [*self._building[self._building.index(ident):], ident])
            raise ConfigError(self.file, ident, f"circular reference: {cycle}")
        self._building.append(ident)
        try:
            value = self._build_entry(section, key, self.section(section)[key])
        finally:
            self._building.pop()
        self.built[ident] = value
        for setter in self._deferred.pop(ident, []):
            setter(value)
        return value

    def has(self, section: str, key: str) -> bool:
        return key in self.section(section)

    def _build_entry(self, section: str, key: str, node: Any) -> Any:
        path: JsonPath = (section, key)
        if isinstance(node, list) and cfg.is_collection_key(key):
            items = self._build_list(node, section, path)
            if key.endswith("transforms"):
                from monai.transforms import Compose

                return Compose(items)
            if key.endswith("metrics"):
                merged: dict[str, Any] = {}
                for item in items:
                    merged.update(item)
                return merged
            return items
        if isinstance(node, list) and any(cfg.is_component(n) for n in node):
            return self._alternative(node, section, path)
        if cfg.is_component(node):
            if cfg.is_skipped(node, self.file, path):
                return None
            obj = self.build_component(node, section, path)
            return self._metric_entry(node, obj) if key.endswith("metric") else obj
        return self.value(node, section, path)

    def _alternative(self, node: list, section: str, path: JsonPath) -> Any:
        """``"loss": [DiceLoss, FocalLoss]`` with ``disabled`` set by the search: the enabled one."""
        enabled = [i for i, n in enumerate(node) if cfg.is_component(n) and not cfg.is_disabled(n, self.file, (*path, i))]
        if not enabled:
            raise ConfigError(self.file, path, "every alternative is disabled; enable exactly one")
        if len(enabled) > 1:
            names = ", ".join(str(node[i].get("name") or node[i].get("path")) for i in enabled)
            self.warn(f"note: {format_json_path(path)}: {len(enabled)} alternatives enabled ({names}); using the first")
        i = enabled[0]
        obj = self.build_component(node[i], section, (*path, i))
        return self._metric_entry(node[i], obj) if str(path[-1]).endswith("metric") else obj

    def _build_list(self, node: list, section: str, path: JsonPath) -> list:
        out = []
        for i, item in enumerate(node):
            item_path = (*path, i)
            if cfg.is_ref(item):
                obj = self._train_ref(item["ref"], section, item_path)
            elif cfg.is_component(item):
                if cfg.is_skipped(item, self.file, item_path):
                    continue
                obj = self.build_component(item, section, item_path)
                if str(path[-1]).endswith("metrics"):
                    obj = self._metric_entry(item, obj)
            else:
                obj = self.value(item, section, item_path)
            if obj is not None:
                out.append(obj)
        return out

    @staticmethod
    def _metric_entry(node: dict, obj: Any) -> dict[str, Any]:
        """Clara metrics carry their log name: ``{"name": "MeanDice", "log_label": "val_mean_dice"}``."""
        label = node.get("log_label") or node.get("name") or str(node.get("path")).rpartition(".")[2]
        return {label: obj}

    def _train_ref(self, name: Any, section: str, path: JsonPath) -> Any:
        """``{"ref": "Spacingd"}``: the train component of that name (same list key first), built again
        from its config: validate gets its own object."""
        key = path[1]
        train = self.section("train")
        candidates = [key] + [k for k in train if k != key]
        names: list[str] = []
        for k in candidates:
            node = train.get(k)
            if not isinstance(node, list):
                continue
            for i, item in enumerate(node):
                if cfg.is_component(item):
                    names.append(str(item.get("name")))
                    if item.get("name") == name or item.get("path") == name:
                        if cfg.is_disabled(item, self.file, ("train", k, i)):
                            return None  # disabled in train (e.g. by the search): left out here too
                        return self._train_item(k, i, item)
        suggestion = difflib.get_close_matches(str(name), names, n=1)
        hint = f" (did you mean {suggestion[0]!r}?)" if suggestion else ""
        raise ConfigError(self.file, (*path, "ref"), f"no train component named {name!r} to refer to{hint}")

    def _train_item(self, key: str, index: int, node: dict) -> Any:
        ident = ("train", f"{key}[{index}]")
        if ident not in self.built:
            self.built[ident] = self.build_component(node, "train", ("train", key, index))
        return self.built[ident]

    # -- static check ----------------------------------------------------------------------------

    def check(self) -> None:
        """Find the mistakes that need no data before any is loaded: unknown names and args, bad
        ``@references`` and ``{"ref"}``s, unset ``{VAR}``s, in every enabled component of both sections."""
        for section in cfg.SECTIONS:
            for key, node in self.section(section).items():
                self._check(node, section, (section, key))

    def _check(self, node: Any, section: str, path: JsonPath) -> None:
        if isinstance(node, list):
            for i, item in enumerate(node):
                self._check(item, section, (*path, i))
        elif cfg.is_ref(node):
            if section != "train":
                self._ref_exists(node["ref"], path)
        elif cfg.is_component(node):
            if cfg.is_skipped(node, self.file, path):
                return
            raw = node.get("args") or {}
            if not isinstance(raw, dict):
                raise ConfigError(self.file, (*path, "args"), f"args must be an object, got {type(raw).__name__}")
            if "path" in node:
                factory, label = import_path(str(node["path"]), self.file, path), str(node["path"])
                raw = translate_by_signature(factory, label.rpartition(".")[2], raw)
            else:
                if not isinstance(node["name"], str):
                    raise ConfigError(self.file, (*path, "name"), "name must be a string")
                label, raw = translate(node["name"], raw)
                factory = lookup_name(label, self.file, path)
                real = getattr(factory, "__name__", label)
                if real != label:
                    _, raw = translate(real, raw)
                raw = translate_by_signature(factory, label, raw)
            short = label.rpartition(".")[2]
            extra = {"device": None} if short in _ENGINES else {}
            if has_datalist(node):
                extra["data"] = None
            check_args(factory, short, {**raw, **extra}, self.file, path)
            literal = {k: v for k, v in raw.items()
                       if not (cfg.is_reference(v) or cfg.is_expression(v) or cfg.is_lambda(v)
                               or unresolved_variable(v))}
            check_arg_types(factory, short, literal, self.file, path)  # now, not after a CacheDataset filled
            for k, v in raw.items():
                self._check(v, section, (*path, "args", k))
        elif isinstance(node, dict):
            for k, v in node.items():
                self._check(v, section, (*path, k))
        elif isinstance(node, str):
            if cfg.is_reference(node) or cfg.is_expression(node):
                for name in cfg.REF_IN_EXPR.findall(node):
                    if name != cfg.CONF_REF and self._find(name, section) is None:
                        raise self._bad_reference(name, section, path)
            elif not cfg.is_lambda(node) and unresolved_variable(node):
                name = unresolved_variable(node)
                raise ConfigError(self.file, path, f"unknown variable {{{name}}} (set it in environment.json or with --set)")

    def _ref_exists(self, name: Any, path: JsonPath) -> None:
        for node in self.section("train").values():
            if isinstance(node, list) and any(cfg.is_component(i) and name in (i.get("name"), i.get("path")) for i in node):
                return
        self._train_ref(name, "validate", path)  # raises with the suggestion

    # -- components ----------------------------------------------------------------------------

    def build_component(self, node: dict, section: str, path: JsonPath) -> Any:
        for extra in node:
            if extra not in cfg.COMPONENT_KEYS:
                self.warn(f"note: {self.file}: {format_json_path((*path, extra))}: unknown component key ignored")
        raw_args = node.get("args") or {}
        if not isinstance(raw_args, dict):
            raise ConfigError(self.file, (*path, "args"), f"args must be an object, got {type(raw_args).__name__}")
        if "path" in node:
            target = node["path"]
            if not isinstance(target, str):
                raise ConfigError(self.file, (*path, "path"), "path must be a string module.Class")
            label = target
            factory = import_path(target, self.file, path, warn=lambda m: self.warn(f"note: {m}"))
            raw = translate_by_signature(factory, target.rpartition(".")[2], dict(raw_args),
                                         warn=lambda m: self.warn(f"note: {m}"))
        else:
            name = node["name"]
            if not isinstance(name, str):
                raise ConfigError(self.file, (*path, "name"), "name must be a string")
            label, raw = translate(name, raw_args, warn=lambda m: self.warn(f"note: {m}"))
            factory = lookup_name(label, self.file, path)
            real = getattr(factory, "__name__", label)
            if real != label:  # an alias such as Unet = UNet: its renamed args are UNet's
                _, raw = translate(real, raw, warn=lambda m: self.warn(f"note: {m}"))
            raw = translate_by_signature(factory, label, raw, warn=lambda m: self.warn(f"note: {m}"))

        if label.rpartition(".")[2] == "CheckpointSaver" and raw.get("save_key_metric"):
            return self._checkpoint_saver(raw, section, path)

        args, later = {}, []
        for k, v in raw.items():
            pending = self._being_built(v, section)
            if pending is not None and callable(getattr(factory, f"set_{k}", None)):
                later.append((k, pending))  # a cycle the component breaks itself: set after both exist
            else:
                args[k] = self.value(v, section, (*path, "args", k))
        if has_datalist(node):
            args.setdefault("data", distributed.partition(load_datalist(node, self.root, self.file, path), section))
            if "progress" in inspect.signature(factory).parameters:
                args.setdefault("progress", False)  # a tqdm bar per dataset is noise in a job's log
        elif any(k in node for k in DATALIST_KEYS):
            raise ConfigError(self.file, path, "data_list_key/data_file_base_dir need data_list_file_path")
        short = label.rpartition(".")[2]
        if short in _ENGINES:
            args.setdefault("device", self._torch_device())
            if args.get("amp") and self.device == "cpu":
                args["amp"] = False
                if not getattr(self.fast_paths, "force_amp", False):  # fast_paths.amp_dtype bf16 autocasts on the CPU
                    self.warn("note: amp (mixed precision) needs a GPU: running in float32 on the CPU")
            self.amp = self.amp or bool(args.get("amp"))
        check_args(factory, short, args, self.file, path)
        check_arg_types(factory, short, args, self.file, path)
        if self.fast_paths is not None:
            factory, args = self.fast_paths.before_build(short, factory, args)
        if short == "SupervisedTrainer" and args.get("network") is not None:
            args["network"] = distributed.wrap(args["network"], self.device)  # DDP in a multi-rank job
        try:
            obj = factory(**args)
        except ConfigError:
            raise
        except Exception as err:  # noqa: BLE001 - the component's own message, with where it came from
            from mmar_automl.train.failures import failure_reason, root_cause

            # The real cause: a CacheDataset's "applying transform <LoadImaged>" hides the corrupt file.
            raise ConfigError(self.file, path, f"{short}: {failure_reason(root_cause(err))}") from err
        obj = self._to_device(obj)
        for k, pending in later:
            self._deferred.setdefault(pending, []).append(getattr(obj, f"set_{k}"))
        return self.fast_paths.after_build(short, obj) if self.fast_paths is not None else obj

    def _being_built(self, value: Any, section: str) -> tuple[str, str] | None:
        """The entry an ``"@name"`` value refers to when that entry is still being built (a cycle)."""
        if not cfg.is_reference(value) or value[1:] == cfg.CONF_REF:
            return None
        where = self._find(value[1:], section)
        ident = (where, value[1:]) if where else None
        return ident if ident in self._building else None

    def _checkpoint_saver(self, raw: dict, section: str, path: JsonPath) -> Any:
        """The key-metric checkpoint is ours (``models/model.pt``, contract of the job process); any
        other saving the config asks for (final, interval) stays with MONAI's CheckpointSaver."""
        save_dict = self.value(raw.get("save_dict") or {}, section, (*path, "args", "save_dict"))
        if not isinstance(save_dict, dict):
            raise ConfigError(self.file, (*path, "args", "save_dict"), "save_dict must be an object")
        self.checkpoint_dict = save_dict
        if not (raw.get("save_final") or raw.get("save_interval")):
            return None
        from monai.handlers import CheckpointSaver

        rest = {k: self.value(v, section, (*path, "args", k)) for k, v in raw.items() if not k.startswith("key_metric")}
        rest["save_key_metric"] = False
        return CheckpointSaver(**rest)

    def _torch_device(self) -> Any:
        import torch

        return torch.device(self.device)

    def _to_device(self, obj: Any) -> Any:
        import torch

        if isinstance(obj, torch.nn.Module):
            return obj.to(self._torch_device())
        return obj

    # -- values ----------------------------------------------------------------------------------

    def value(self, node: Any, section: str, path: JsonPath) -> Any:
        if isinstance(node, str):
            if cfg.is_reference(node):
                return self.reference(node[1:], section, path)
            if cfg.is_expression(node):
                return self.expression(node[1:], section, path)
            if cfg.is_lambda(node):
                fn = self.expression(node, section, path)
                if path and path[-1] in ("output_transform", "batch_transform"):
                    from mmar_automl.train.clara_compat import on_decollated

                    return on_decollated(fn)  # Clara 4.0's ``lambda x: x['loss']`` on MONAI's decollated output/batch
                return fn
            name = unresolved_variable(node)
            if name:
                raise ConfigError(self.file, path, f"unknown variable {{{name}}} (set it in environment.json or with --set)")
            return node
        if isinstance(node, list):
            # A disabled component inside a list arg (OneOf's transforms...) is left out, as in sections.
            return [self.value(v, section, (*path, i)) for i, v in enumerate(node)
                    if not (cfg.is_component(v) and cfg.is_skipped(v, self.file, (*path, i)))]
        if isinstance(node, dict):
            if cfg.is_component(node):
                if cfg.is_skipped(node, self.file, path):
                    return None
                return self.build_component(node, section, path)
            return {k: self.value(v, section, (*path, k)) for k, v in node.items()}
        return node

    def reference(self, name: str, section: str, path: JsonPath) -> Any:
        if name == cfg.CONF_REF:
            if self._conf is None:
                from mmar_automl.train.clara_compat import ConfDict

                self._conf = ConfDict(self.config)
            return self._conf
        where = self._find(name, section)
        if where is None:
            raise self._bad_reference(name, section, path)
        return self.get(where, name)

    def _find(self, name: str, section: str) -> str | None:
        for where in (section, *(s for s in cfg.SECTIONS if s != section)):
            if self.has(where, name):
                return where
        return None

    def _bad_reference(self, name: str, section: str, path: JsonPath) -> ConfigError:
        others = [s for s in cfg.SECTIONS if s != section]
        known = [k for s in cfg.SECTIONS for k in self.section(s)]
        suggestion = difflib.get_close_matches(name, [*known, cfg.CONF_REF], n=1)
        hint = f" (did you mean '@{suggestion[0]}'?)" if suggestion else ""
        return ConfigError(self.file, path, f"bad reference '@{name}': no component {name!r} in {section} or {others[0]}{hint}")

    def expression(self, text: str, section: str, path: JsonPath) -> Any:
        """Evaluate ``#...`` with monai, torch, numpy and the referenced components in scope."""
        import math

        import monai
        import numpy
        import torch

        scope: dict[str, Any] = {"monai": monai, "torch": torch, "np": numpy, "numpy": numpy, "math": math}
        refs = {}
        for name in dict.fromkeys(cfg.REF_IN_EXPR.findall(text)):
            refs[f"__ref_{name}"] = self.reference(name, section, path)
        code = cfg.REF_IN_EXPR.sub(lambda m: f"__ref_{m.group(1)}", text)
        try:
            # One namespace, so that a lambda in the expression sees the references too.
            return eval(code, {**scope, **refs})  # noqa: S307 - configs are the user's own code, as in Clara
        except Exception as err:  # noqa: BLE001
            raise ConfigError(self.file, path, f"bad expression {text!r}: {type(err).__name__}: {err}") from None
