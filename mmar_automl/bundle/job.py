"""The job process of a bundle: MONAI's own ConfigWorkflow runs the bundle, the recorder follows it.

``main(argv)`` is the job entry (``mmar_automl.bundle.job:main``, started by the launcher in the job
folder exactly like ``mmar_automl.train.run:main``) and ``mmar-automl train BUNDLE``. It writes the
same models/metrics.jsonl, train_stats.json as an MMAR job (train/outputs.py's JobRecorder, attached
to the bundle's ``train#trainer`` and ``validate#evaluator``); the score is the evaluator's key metric.
Exit codes as ``train``: 0 trained, 1 failed, 2 configuration error.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from mmar_automl.bundle.project import ID_SEP
from mmar_automl.errors import ConfigError, UsageError


def preload() -> None:
    """The MMAR trainer's preload (torch, monai, ignite...) plus MONAI's bundle machinery."""
    import importlib

    from mmar_automl.train.run import preload as preload_trainer

    preload_trainer()
    for name in ("monai.bundle", "mmar_automl.bundle.files", "yaml"):
        try:
            importlib.import_module(name)
        except ImportError:
            pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override] - raise, never sys.exit
        raise UsageError(f"train: {message}")


def main(argv: list[str]) -> int:
    """``BUNDLE_ROOT [--config FILE] [--set ID=VALUE ...]``; never raises, never exits."""
    from mmar_automl.train.run import one_line_entry

    parser = _Parser(prog="mmar-automl train", add_help=False)
    parser.add_argument("bundle_root")
    parser.add_argument("--config", default=None)
    parser.add_argument("--set", dest="overrides", nargs="+", action="extend", default=[], metavar="ID=VALUE")
    parser.add_argument("--device", choices=("cpu", "cuda"), default=None)
    def call() -> int:
        opts, _unknown = parser.parse_known_args(argv)
        return train(opts.bundle_root, config=opts.config, overrides=opts.overrides, device=opts.device)

    return one_line_entry(call)


def train(root: str | Path, config: str | Path | None = None, overrides: list[str] | None = None,
          device: str | None = None) -> int:
    """Run one bundle's training workflow with the recorder attached; returns the exit code."""
    from mmar_automl.bundle.project import Bundle, evaluator_id, trainer_id, workflow_run_id
    from mmar_automl.search import markers as mk
    from mmar_automl.search.render import strip_markers

    bundle = Bundle.open(root, config, overrides=list(overrides or []))
    conf = bundle.train_config
    assert conf is not None
    strip_markers(conf, mk.BUNDLE)          # `train` on a bundle with search lists: they are not kwargs
    if device is not None:
        conf["device"] = f"$torch.device({device!r})"
    bundle.check(conf)
    conf["bundle_root"] = str(bundle.root)  # MONAI's bundle_root property: outputs land in this folder

    import torch

    if os.environ.get("OMP_NUM_THREADS", "").isdigit():
        torch.set_num_threads(max(1, int(os.environ["OMP_NUM_THREADS"])))
    from monai.bundle import ConfigWorkflow

    from mmar_automl.train.outputs import JobRecorder
    # The MMAR trainer's process hygiene and job end, shared rather than copied: cwd and sys.path in the
    # project (undone afterwards, the launcher's next job may be another), library logs to stdout, one
    # failure line.
    from mmar_automl.train.run import (_failed, _inside_mmar, _last_epoch_unvalidated, _out, job_completed, job_failed,
                                       one_line_logs)

    recorder = JobRecorder(bundle.ckpt_dir)
    _out(f"train bundle {bundle.root} config {bundle.config_name} with monai.bundle.ConfigWorkflow")
    with _inside_mmar(bundle.root):
        try:
            workflow = ConfigWorkflow(config_file=str(bundle.train_config_file), meta_file=str(bundle.meta_file),
                                      workflow_type="train", run_id=workflow_run_id(conf) or "run")
            workflow.parser.read_config(f=conf)   # the config as checked above (markers gone, --set applied)
            workflow.initialize()
            run_at = workflow_run_id(conf) or "run"
            for i in _leading_plain_items(conf.get(run_at)):
                # e.g. the run list's "$monai.utils.set_determinism(seed=123)" before "$@train#trainer.run()":
                # run as MONAI runs it, before the trainer (its network's initial weights) is built below;
                # workflow.run() finds it resolved and does not run it again.
                workflow.parser.get_parsed_content(f"{run_at}{ID_SEP}{i}")
            trainer = workflow.parser.get_parsed_content(trainer_id(conf))
            evaluator_at = evaluator_id(conf)
            evaluator = workflow.parser.get_parsed_content(evaluator_at) if evaluator_at else None
            empty = _empty_loader(conf, trainer_id(conf), trainer, "train_data_loader") or (
                _empty_loader(conf, evaluator_at, evaluator, "val_data_loader") if evaluator_at else None)
            if empty:   # MONAI skips an empty run with a warning: the job would "complete" with no score
                return _failed(recorder, empty)
            network = getattr(evaluator, "network", None) or getattr(trainer, "network", None)
            # The bundle's own CheckpointSaver writes models/model.pt in the bundle's format (what its
            # inference.json loads); the recorder writes it only when no saver puts the best model there.
            recorder.attach(trainer, evaluator, {"model": network},
                            save_model=not _saves_best(evaluator, recorder.dir))
            device_type = getattr(getattr(trainer, "device", None), "type", "cpu")
            recorder.extra = {"device": device_type, "amp": bool(getattr(trainer, "amp", False)),
                              "workflow": "monai.bundle.ConfigWorkflow"}
            # Peak GPU memory on every metrics line, as an MMAR job's: what --jobs-per-gpu auto packs by.
            # The bundle's own config is run as written: none of the trainer's fast paths are applied.
            from mmar_automl.train.fastpaths import decide

            recorder.probes.append(decide({}, device_type, enabled=False).memory_probe)
            with one_line_logs():
                workflow.run()
                if evaluator is not None and _last_epoch_unvalidated(trainer, evaluator):
                    # e.g. val_interval 5 with --set epochs=2: the job would have no score at all
                    _out(f"final validation: epoch {trainer.state.epoch} was not validated")
                    evaluator.run(trainer.state.epoch)
            workflow.finalize()
        except (Exception, KeyboardInterrupt) as err:  # noqa: BLE001 - a failed job is one line and exit 1
            return job_failed(recorder, err)
    return job_completed(recorder)


EVALUATE_NAMES = ("configs/evaluate.json", "configs/evaluate.yaml", "configs/evaluate.yml")


def evaluate(root: str | Path, config: str | Path | None = None, overrides: list[str] | None = None,
             device: str | None = None) -> Any:
    """``mmar-automl evaluate BUNDLE``: the trained bundle's evaluator over its validation data, as
    ``python -m monai.bundle run --config_file "['configs/train.json','configs/evaluate.json']"`` runs it
    (the evaluate config's ids written over the train config: MONAI's merge; its CheckpointLoader loads
    models/model.pt), the ``--set`` ids last. Returns train/evaluate.py's EvaluationResult."""
    from mmar_automl.bundle.files import load_config_file
    from mmar_automl.bundle.project import Bundle, apply_ids, evaluator_id, find_id
    from mmar_automl.config.overrides import parse_overrides
    from mmar_automl.search import markers as mk
    from mmar_automl.search.markers import bundle_id
    from mmar_automl.search.render import strip_markers

    bundle = Bundle.at(root)
    if config is not None:
        eval_file = Path(config) if Path(config).is_absolute() or Path(config).exists() else bundle.root / config
    else:
        eval_file = next((bundle.root / n for n in EVALUATE_NAMES if (bundle.root / n).is_file()), None)
        if eval_file is None:
            raise ConfigError(bundle.root, None, "no configs/evaluate.json (or .yaml): the bundle's evaluation "
                              "config, whose CheckpointLoader loads the trained model; name one with --config")
    eval_name = bundle.label(eval_file)
    evaluation = load_config_file(eval_file, eval_name)
    if not isinstance(evaluation, dict):
        raise ConfigError(eval_name, None, "a bundle config must be a mapping of ids at the top level")
    from monai.bundle import ConfigParser

    merged = ConfigParser(bundle.load_config())
    for key, value in evaluation.items():
        if ID_SEP in key:
            find_id(merged.get(), key.rpartition(ID_SEP)[0], eval_name, what=key)  # its parent must exist
        merged[key] = value
    conf = merged.get()
    strip_markers(conf, mk.BUNDLE)
    values = {bundle_id(k): v for k, v in parse_overrides(list(overrides or [])).items()}
    for key in values:
        find_id(conf, key, bundle.config_name, what=f"--set {key}")
    conf = apply_ids(conf, values)
    if device is not None:
        conf["device"] = f"$torch.device({device!r})"
    conf["bundle_root"] = str(bundle.root)
    at = evaluator_id(conf)
    if at is None:
        raise ConfigError(eval_name, "validate#evaluator", "missing: no evaluator to run")

    import torch
    from monai.bundle import ConfigWorkflow

    from mmar_automl.train.evaluate import EvaluationResult
    from mmar_automl.train.outputs import _number
    from mmar_automl.train.run import _inside_mmar, one_line_logs

    if os.environ.get("OMP_NUM_THREADS", "").isdigit():
        torch.set_num_threads(max(1, int(os.environ["OMP_NUM_THREADS"])))
    with _inside_mmar(bundle.root):
        workflow = ConfigWorkflow(config_file=str(bundle.train_config_file), meta_file=str(bundle.meta_file),
                                  workflow_type=None)
        workflow.parser.read_config(f=conf)
        workflow.initialize()
        evaluator = workflow.parser.get_parsed_content(at)
        with one_line_logs():
            evaluator.run()
        workflow.finalize()
    metrics = {k: _number(v) for k, v in (evaluator.state.metrics or {}).items()}
    key = getattr(evaluator.state, "key_metric_name", None) or next(iter(metrics), None)
    items = len(getattr(evaluator.data_loader, "dataset", []) or [])
    return EvaluationResult(key, metrics.get(key) if key else None, metrics, items)


def _leading_plain_items(items: Any) -> range:
    """Indices of the run list's first items that refer to no id (``@``/``%``): what MONAI evaluates before
    the item that builds the trainer."""
    if not isinstance(items, list):
        return range(0)
    count = 0
    for item in items:
        if not isinstance(item, str) or "@" in item or "%" in item:
            break
        count += 1
    return range(count)


def _empty_loader(conf: dict[str, Any], at: str, engine: Any, arg: str) -> str | None:
    """The failure line when ``engine`` (at id ``at``) has no data: its data loader is empty, mostly a
    data location that is not there (the Model Zoo's ``dataset_dir``, globbed by a ``$`` expression)."""
    from mmar_automl.bundle.project import _lookup

    if getattr(getattr(engine, "state", None), "epoch_length", None) != 0:
        return None
    node = _lookup(conf, at)
    ref = node.get(arg) if isinstance(node, dict) else None
    # MONAI's parser rewrote the config it read in place: "@train#dataloader" is now "@train::dataloader"
    what = f"{at}#{arg}" + (f" ({ref.replace('::', ID_SEP)})" if isinstance(ref, str) else "")
    return (f"no data: {what} is empty; check the data location the bundle reads "
            "(e.g. --set dataset_dir=/path/to/data)")


def _saves_best(evaluator: Any, ckpt_dir: Path) -> bool:
    """Whether a MONAI CheckpointSaver with save_key_metric follows the evaluator and writes into
    ``ckpt_dir`` (a saver writing elsewhere, e.g. a timestamped results/ folder, leaves models/ empty)."""
    if evaluator is None:
        return False
    from monai.handlers import CheckpointSaver

    for handlers in evaluator._event_handlers.values():
        for handler, *_ in handlers:
            owner = getattr(handler, "__self__", None)
            if (isinstance(owner, CheckpointSaver) and getattr(owner, "_key_metric_checkpoint", None) is not None
                    and Path(owner.save_dir).resolve() == Path(ckpt_dir).resolve()):
                return True
    return False


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(sys.argv[1:]))
