"""Evaluation and export of a trained MMAR: ``mmar-automl evaluate`` (Clara's ``validate.sh`` and
``infer.sh``, ``medl.apps.evaluate``) and ``mmar-automl export`` (Clara's ``export.sh``).

``evaluate`` runs the evaluator of ``config/config_validation.json`` (or ``config_inference.json``, or
the ``validate`` section of a config_train.json) over its datalist. A flat Clara validation config (the
components at the top level) is read as a ``validate`` section; Clara 4.0's implicit wiring applies
(train/wiring.py). The model comes from the config's ``model`` entry:
- a component (``{"name": "UNet", ...}``): built, then loaded by the config's ``CheckpointLoader`` when it
  has one, else from ``MMAR_CKPT`` (unless ``dont_load_ckpt_model`` is true);
- ``{"ts_path": "{MMAR_TORCHSCRIPT}"}``: the TorchScript model;
- ``{"ckpt_path": "{MMAR_CKPT}"}``: the train config's model loaded with that checkpoint;
- a list of these with ``disabled`` flags (Clara 4.1's ``dont_load_ts_model``/``dont_load_ckpt_model``):
  the first enabled one.
Handlers write what they write (MetricsSaver under ``MMAR_EVAL_OUTPUT_PATH``, Clara's SegmentationSaver
the predictions); the result is the key metric.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mmar_automl.errors import ConfigError
from mmar_automl.train import config as cfg

DEFAULT_EVAL_CONFIG = "config/config_validation.json"
DEFAULT_TORCHSCRIPT = "models/model.ts"
TOP_LEVEL_DICTS = ("determinism",)  # first-level objects of a flat config that are settings, not components


@dataclass
class EvaluationResult:
    key_metric: str | None
    value: float | None
    metrics: dict[str, float | None] = field(default_factory=dict)
    items: int = 0


def as_sections(config: dict) -> dict:
    """A flat Clara validation/inference config as ``{..., "validate": {components}}``; a config that
    already has sections is returned as is."""
    if any(s in config for s in cfg.SECTIONS):
        return config
    section = {k: v for k, v in config.items()
               if k not in TOP_LEVEL_DICTS and (isinstance(v, list) or isinstance(v, dict))}
    rest = {k: v for k, v in config.items() if k not in section}
    return {**rest, "validate": section}


def _model_entries(conf: dict, root: Path) -> None:
    """Rewrite ``ts_path``/``ckpt_path`` model entries into components the Builder can build."""
    section = conf["validate"] if "model" in conf.get("validate", {}) else conf.get("train", {})
    node = section.get("model")
    nodes = node if isinstance(node, list) else [node]
    for item in nodes:
        if not isinstance(item, dict) or cfg.is_component(item):
            continue
        if "ts_path" in item:
            item["path"] = "mmar_automl.train.clara_compat.load_torchscript"
            item["args"] = {"ts_path": item.pop("ts_path")}
        elif "ckpt_path" in item:
            item["path"] = "mmar_automl.train.clara_compat.load_checkpoint_model"
            item["args"] = {"ckpt_path": item.pop("ckpt_path"), "mmar_root": str(root)}


def evaluate(mmar_root: str | Path, config: str | Path | None = None, overrides: list[str] | None = None,
             device: str | None = None, out: Any = print) -> EvaluationResult:
    """Evaluate a trained MMAR; raises ConfigError/UsageError on bad input, anything else on failure."""
    from mmar_automl.config.mmar import Mmar
    from mmar_automl.train.run import _determinism, _device, _inside_mmar, one_line_logs
    from mmar_automl.train.wiring import wire

    located = Mmar.at(mmar_root, config or DEFAULT_EVAL_CONFIG)
    if not located.train_config_file.is_file():
        raise ConfigError(located.label(located.train_config_file), None, "file not found: evaluate needs a "
                          "config_validation.json (or --config config/config_train.json)")
    mmar = Mmar.open(mmar_root, config or DEFAULT_EVAL_CONFIG, overrides=overrides or [])
    variables = mmar.variables()
    conf = wire(as_sections(mmar.substituted_config()), variables)
    file = mmar.label(mmar.train_config_file)
    if not isinstance(conf.get("validate"), dict) or "evaluator" not in conf["validate"]:
        raise ConfigError(file, ("evaluator",), "missing: evaluate needs an evaluator (SupervisedEvaluator)")
    _model_entries(conf, mmar.root)

    from mmar_automl.train.resolver import Builder

    chosen = _device(conf, device, file)
    out(f"evaluate {mmar.root} config {file} on {chosen}")
    with _inside_mmar(mmar.root):
        _determinism(conf, file)
        builder = Builder(conf, file, mmar.root, chosen, warn=out)
        builder.check()
        evaluator = builder.get("validate", "evaluator")
        _load_weights_unless_loaded(builder, evaluator, conf, variables, file)
        with one_line_logs():
            evaluator.run()
    metrics = {k: _number(v) for k, v in (evaluator.state.metrics or {}).items()}
    key = getattr(evaluator.state, "key_metric_name", None)
    items = len(getattr(evaluator.data_loader, "dataset", []) or [])
    return EvaluationResult(key, metrics.get(key) if key else None, metrics, items)


def _load_weights_unless_loaded(builder: Any, evaluator: Any, conf: dict, variables: dict, file: str) -> None:
    """A model built from its component (not TorchScript, not ``ckpt_path``) with no CheckpointLoader in
    the handlers gets ``MMAR_CKPT``: evaluating random weights is never what was meant."""
    import torch

    handlers = builder.built.get(("validate", "handlers")) or []
    loaders = [h for h in handlers if type(h).__name__ == "CheckpointLoader"]
    for loader in loaders:
        if not Path(str(loader.load_path)).is_file():
            raise ConfigError(file, ("handlers",), f"no checkpoint to evaluate: CheckpointLoader load_path "
                              f"{str(loader.load_path)!r} not found (train first, or --set MMAR_CKPT=...)")
    if loaders:
        return
    network = evaluator.network
    if isinstance(network, torch.jit.ScriptModule) or getattr(network, "_mmar_loaded_from", None):
        return
    if conf.get("dont_load_ckpt_model") is True:
        return
    ckpt = variables.get("MMAR_CKPT")
    if not ckpt or not Path(ckpt).is_file():
        raise ConfigError(file, ("model",), f"no checkpoint to evaluate: MMAR_CKPT {ckpt!r} not found "
                          "(train first, or set MMAR_CKPT in environment.json or with --set)")
    from mmar_automl.train.clara_compat import load_state

    load_state(network, ckpt)


def _number(value: Any) -> float | None:
    from mmar_automl.train.outputs import _number as number

    return number(value)


def export_torchscript(mmar_root: str | Path, config: str | Path | None = None, overrides: list[str] | None = None,
                       out: Any = print) -> Path:
    """Build ``train.model`` of config_train.json, load ``MMAR_CKPT`` into it and save it as TorchScript at
    ``MMAR_TORCHSCRIPT`` (default models/model.ts). Written to a temporary file, then renamed."""
    import os

    import torch

    from mmar_automl.config.mmar import Mmar
    from mmar_automl.train.clara_compat import load_state
    from mmar_automl.train.resolver import Builder
    from mmar_automl.train.run import _inside_mmar
    from mmar_automl.train.wiring import wire

    mmar = Mmar.open(mmar_root, config, overrides=overrides or [])
    variables = mmar.variables()
    conf = wire(mmar.substituted_config(), variables)
    file = mmar.label(mmar.train_config_file)
    if "model" not in (conf.get("train") or {}):
        raise ConfigError(file, ("train", "model"), "missing: export needs the train model")
    ckpt = variables.get("MMAR_CKPT") or str(mmar.ckpt_dir / "model.pt")
    if not Path(ckpt).is_file():
        raise ConfigError(file, None, f"no checkpoint to export: MMAR_CKPT {ckpt!r} not found (train first)")
    target = mmar.resolve(variables.get("MMAR_TORCHSCRIPT") or DEFAULT_TORCHSCRIPT)
    with _inside_mmar(mmar.root):
        network = Builder(conf, file, mmar.root, "cpu", warn=out).get("train", "model")
        load_state(network, ckpt)
        network.eval()
        try:
            scripted = torch.jit.script(network)
        except Exception as err:  # noqa: BLE001 - a network TorchScript cannot compile: one line
            first = str(err).strip().splitlines()[0] if str(err).strip() else ""
            raise ConfigError(file, ("train", "model"), f"cannot export to TorchScript: {type(err).__name__}: {first}") from err
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".tmp")
        scripted.save(str(tmp))
        os.replace(tmp, target)
    out(f"exported {ckpt} -> {target}")
    return target


def describe(result: EvaluationResult) -> str:
    """The line ``evaluate`` prints on stdout."""
    if result.key_metric is None:
        return f"evaluated {result.items} item(s): no metric in this config"
    shown = "none" if result.value is None else f"{result.value:.4f}"
    others = {k: v for k, v in result.metrics.items() if k != result.key_metric}
    return f"{result.key_metric} {shown} over {result.items} item(s)" + (f"; {json.dumps(others)}" if others else "")
