"""Clara 4.0 implicit wiring: fill in the arguments that Clara 4.0 configs leave out, as references to
the sections' own entries, before anything is built.

Clara 4.0 (its federated-learning and deepgrow MMARs) wrote ``"trainer": {"name": "SupervisedTrainer"}``
with no args, an optimizer without ``params``, a ``StepLR`` without ``optimizer``, a ``ValidationHandler``
without ``validator``, ``save_dict: ["model", "optimizer"]`` and a ``metrics`` list whose
``is_key_metric`` entry is the key metric: Clara connected them by role. Here each left-out arg becomes
the reference a Clara 4.1 config would have written (``"network": "@model"``), so the Builder then
treats both styles alike. An arg the config gives (``"network": "@my_net"``) always wins: only missing
args are added. A pure pass over the substituted config (no imports, no building): ``validate`` can
run it too.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from mmar_automl.train import config as cfg

KEY_METRIC = "<key metric>"  # placeholder in the tables below: key_metric, else the metrics list

# Engine arg -> the section entry that plays that role. ``model`` may live in the other section (validate
# uses train's model); every other role must be in the engine's own section.
ENGINE_ROLES: dict[str, dict[str, str]] = {
    "SupervisedTrainer": {
        "train_data_loader": "dataloader", "network": "model", "optimizer": "optimizer", "loss_function": "loss",
        "inferer": "inferer", "postprocessing": "post_transforms", "key_train_metric": KEY_METRIC,
        "additional_metrics": "additional_metrics", "train_handlers": "handlers", "iteration_update": "iteration",
    },
    "SupervisedEvaluator": {
        "val_data_loader": "dataloader", "network": "model", "inferer": "inferer",
        "postprocessing": "post_transforms", "key_val_metric": KEY_METRIC,
        "additional_metrics": "additional_metrics", "val_handlers": "handlers", "iteration_update": "iteration",
    },
}
SHARED_ROLES = ("model",)

# Section entry (by key) -> (arg it needs, the entry that provides it).
ENTRY_ROLES: dict[str, tuple[str, str]] = {
    "optimizer": ("params", "#@model.parameters()"),
    "lr_scheduler": ("optimizer", "@optimizer"),
    "dataset": ("transform", "@pre_transforms"),
    "dataloader": ("dataset", "@dataset"),
}

# Handler (by name) -> (arg, the entry that provides it).
HANDLER_ROLES: dict[str, tuple[str, str]] = {
    "LrScheduleHandler": ("lr_scheduler", "@lr_scheduler"),
    "ValidationHandler": ("validator", "@evaluator"),
}
NAMED_DICTS = {"CheckpointSaver": "save_dict", "CheckpointLoader": "load_dict"}


def wire(config: dict, variables: Mapping[str, Any] | None = None) -> dict:
    """A copy of ``config`` with Clara 4.0's implicit args written out; ``variables`` gives the
    values of ``epochs``, ``amp``, ``MMAR_CKPT``, ``MMAR_CKPT_DIR`` (environment and first-level keys)."""
    out = copy.deepcopy(config)
    values = {**{k: v for k, v in out.items() if not isinstance(v, (dict, list))}, **(variables or {})}
    for section in cfg.SECTIONS:
        if isinstance(out.get(section), dict):
            _wire_section(out, section, values)
    _legacy_meta_dicts(out)
    return out


LOADERS = ("LoadImaged", "LoadNiftid", "LoadNumpyd", "LoadPNGd")


def _legacy_meta_dicts(config: dict) -> None:
    """Clara-era LoadImaged (MONAI <= 0.8) put each image's metadata beside it as ``image_meta_dict``;
    MONAI 1.x keeps it on the image (MetaTensor) unless ``image_only`` is false. A config that reads those
    dicts (Clara's deepgrow transforms, a ``lambda x: x['image_meta_dict']``) gets them back."""
    import json

    text = json.dumps(config)
    if "_meta_dict" not in text and "deepgrow" not in text:
        return
    stack: list[Any] = [config]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if _short_name(node) in LOADERS and isinstance(node.get("args", {}), dict):
                node.setdefault("args", {}).setdefault("image_only", False)
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)


def _wire_section(config: dict, section: str, values: Mapping[str, Any]) -> None:
    entries = config[section]
    _order_metrics(entries)
    for key, node in entries.items():
        for component in _components(node):
            name = _short_name(component)
            args = component.setdefault("args", {}) if isinstance(component.get("args", {}), dict) else None
            if args is None:
                continue  # not an object: the Builder reports it
            if name in ENGINE_ROLES:
                _wire_engine(config, section, name, args, values)
            elif key in ENTRY_ROLES and not key.endswith("handlers"):
                arg, ref = ENTRY_ROLES[key]
                needed = ref.lstrip("#@").split(".")[0]
                if arg not in args and _has(config, section, needed, shared=needed in SHARED_ROLES):
                    args[arg] = ref
                if key == "dataset" and name == "PersistentDataset" and "cache_dir" not in args:
                    # Clara kept the cache with the run's outputs; MONAI needs the folder named.
                    args["cache_dir"] = f"{values.get('MMAR_CKPT_DIR', 'models')}/persistent_cache"
        if cfg.is_collection_key(key) and key.endswith("handlers") and isinstance(node, list):
            for handler in node:
                if cfg.is_component(handler) and isinstance(handler.get("args", {}), dict):
                    _wire_handler(config, section, handler, values)


def _wire_engine(config: dict, section: str, name: str, args: dict, values: Mapping[str, Any]) -> None:
    entries = config[section]
    for arg, role in ENGINE_ROLES[name].items():
        if arg in args:
            continue
        if role == KEY_METRIC:
            for candidate in ("key_metric", "metrics"):
                if candidate in entries:
                    args[arg] = f"@{candidate}"
                    break
        elif _has(config, section, role, shared=role in SHARED_ROLES):
            args[arg] = f"@{role}"
    if name == "SupervisedTrainer" and "max_epochs" not in args and "epochs" in values:
        args["max_epochs"] = values["epochs"]
    if "amp" not in args and isinstance(values.get("amp"), bool):
        args["amp"] = values["amp"]


def _wire_handler(config: dict, section: str, handler: dict, values: Mapping[str, Any]) -> None:
    name = _short_name(handler)
    args = handler.setdefault("args", {})
    if name in HANDLER_ROLES:
        arg, ref = HANDLER_ROLES[name]
        if arg not in args and _has(config, section, ref[1:], shared=True):
            args[arg] = ref
    if name in NAMED_DICTS:
        arg = NAMED_DICTS[name]
        if isinstance(args.get(arg), list) and all(isinstance(n, str) for n in args[arg]):
            args[arg] = {n: f"@{n}" for n in args[arg]}  # ["model", "optimizer"] -> {"model": "@model", ...}
        elif arg not in args and _has(config, section, "model", shared=True):
            args[arg] = {"model": "@model"}
    if name == "CheckpointLoader" and "load_path" not in args and values.get("MMAR_CKPT"):
        args["load_path"] = values["MMAR_CKPT"]


def _order_metrics(entries: dict) -> None:
    """A Clara 4.0 ``metrics`` list names its key metric with ``is_key_metric``; MONAI takes the first
    entry of the key-metric dict as the key metric, so that entry moves to the front."""
    metrics = entries.get("metrics")
    if "key_metric" in entries or not isinstance(metrics, list):
        return
    flagged = [i for i, m in enumerate(metrics) if isinstance(m, dict) and m.get("is_key_metric") is True]
    if flagged and flagged[0] != 0:
        i = flagged[0]
        entries["metrics"] = [metrics[i], *metrics[:i], *metrics[i + 1:]]


def _has(config: dict, section: str, key: str, shared: bool) -> bool:
    sections = [section, *(s for s in cfg.SECTIONS if s != section)] if shared else [section]
    return any(isinstance(config.get(s), dict) and key in config[s] for s in sections)


def _components(node: Any) -> list[dict]:
    """The component(s) of an entry: itself, or each alternative of a list (``loss``/``optimizer`` lists)."""
    if cfg.is_component(node):
        return [node]
    if isinstance(node, list) and not any(cfg.is_ref(n) for n in node):
        return [n for n in node if cfg.is_component(n)]
    return []


def _short_name(component: dict) -> str:
    return str(component.get("name") or component.get("path") or "").rpartition(".")[2]
