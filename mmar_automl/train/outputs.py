"""What a job leaves under MMAR_CKPT_DIR (docs/architecture.md, "The job process contract"):
``metrics.jsonl`` appended and flushed line by line, ``train_stats.json`` at the end, ``model.pt`` the
best-key-metric checkpoint; plus the progress lines on stdout and the NaN/inf loss guard."""

from __future__ import annotations

import json
import math
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

METRICS_FILE = "metrics.jsonl"
STATS_FILE = "train_stats.json"
MODEL_FILE = "model.pt"


LOSS_CHECK_EVERY = 32  # iterations between loss reads (one host sync each); a NaN stops the job within them


class NonFiniteLoss(RuntimeError):
    """The training loss became NaN or infinite: the job stops with this reason."""


def _number(value: Any) -> float | None:
    """A metric as a JSON number; NaN/inf (and non-numbers) become null, never a made-up value."""
    try:
        if hasattr(value, "item"):
            value = value.item()
        value = float(value)
    except (TypeError, ValueError, RuntimeError):  # RuntimeError: a tensor of several values
        return None
    return value if math.isfinite(value) else None


def _write_json_atomic(path: Path, data: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


class JobRecorder:
    """Follows a SupervisedTrainer (and its evaluator) and writes the job's files."""

    def __init__(self, ckpt_dir: Path, out: Callable[[str], None] = print) -> None:
        self.dir = Path(ckpt_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.out = out
        self.start = time.monotonic()
        # A new run starts a new file; lines are then appended and flushed as training goes.
        self._metrics = open(self.dir / METRICS_FILE, "w", encoding="utf-8")  # noqa: SIM115 - closed in finish
        self.key_metric: str | None = None
        self.best: float | None = None
        self.best_epoch: int | None = None
        self.validations: list[dict[str, Any]] = []
        self.epochs = 0
        self.iterations = 0
        self.max_epochs: int | None = None
        self._losses: list[float] = []
        self._pending: list[Any] = []   # this epoch's losses not yet read to the host (see LOSS_CHECK_EVERY)
        self._trainer: Any = None
        self._epoch_start = self.start
        self._save: dict[str, Any] = {}
        self._save_model = True
        self.extra: dict[str, Any] = {}  # more train_stats fields (device, amp)
        # Callables whose fields go on every metrics line and into train_stats (peak GPU memory)
        self.probes: list[Callable[[], dict[str, Any]]] = []
        self._finish_lock = threading.Lock()
        self._finished: dict[str, Any] | None = None

    def elapsed(self) -> float:
        return round(time.monotonic() - self.start, 3)

    def write(self, record: dict[str, Any]) -> None:
        for probe in self.probes:
            fields = probe()
            record.update(fields)
            self.extra.update(fields)
        self._metrics.write(json.dumps(record) + "\n")
        self._metrics.flush()

    # -- attaching -------------------------------------------------------------------------------

    def attach(self, trainer: Any, evaluator: Any | None, save_dict: dict[str, Any] | None = None,
               save_model: bool = True) -> None:
        """Hook the trainer's iterations and epochs and, when there is one, the evaluator's epochs.
        ``save_model=False``: the job saves its best model itself (a bundle's CheckpointSaver)."""
        self._save_model = save_model
        from ignite.engine import Events

        self._trainer = trainer
        self.max_epochs = trainer.state.max_epochs
        trainer.add_event_handler(Events.EPOCH_STARTED, self._on_epoch_start)
        trainer.add_event_handler(Events.ITERATION_COMPLETED, self._on_iteration)
        trainer.add_event_handler(Events.EPOCH_COMPLETED, self._on_epoch)
        # The train line of an epoch goes before its validation line, after the epoch's train metrics:
        # run right after the metric handlers and ahead of ValidationHandler, which the trainer attached
        # while it was built (ignite keeps handlers in a plain list).
        from ignite.metrics import Metric

        handlers = trainer._event_handlers[Events.EPOCH_COMPLETED]
        ours = handlers.pop()
        metric_ends = [i for i, (h, *_rest) in enumerate(handlers) if isinstance(getattr(h, "__self__", None), Metric)]
        handlers.insert(metric_ends[-1] + 1 if metric_ends else 0, ours)
        if evaluator is not None:
            evaluator.add_event_handler(Events.EPOCH_COMPLETED, self._on_validation)
            self._save = dict(save_dict or {"model": evaluator.network})
            self._save.setdefault("model", evaluator.network)

    def _on_epoch_start(self, engine: Any) -> None:
        self._epoch_start = time.monotonic()

    def _on_iteration(self, engine: Any) -> None:
        from monai.handlers import from_engine

        loss = from_engine(["loss"], first=True)(engine.state.output)
        # Kept as a tensor: reading it every step (.item()) would make the CPU wait for the GPU each iteration.
        self._pending.append(loss.detach() if hasattr(loss, "detach") else loss)
        self.iterations = engine.state.iteration
        if len(self._pending) >= LOSS_CHECK_EVERY:
            self._read_losses(engine)

    def _read_losses(self, engine: Any) -> None:
        """Read the pending losses in one host sync; a non-finite one stops the job (NonFiniteLoss)."""
        import torch

        pending, self._pending = self._pending, []
        if not pending:
            return
        tensors = [torch.as_tensor(v).float().reshape(()) for v in pending]
        values = torch.stack([t.to(tensors[-1].device) for t in tensors]).tolist()  # the one sync
        first = engine.state.iteration - len(values) + 1
        for k, value in enumerate(values):
            if not math.isfinite(value):
                raise NonFiniteLoss(f"loss is {value} at epoch {engine.state.epoch} iteration {first + k}")
        self._losses.extend(values)

    def _on_epoch(self, engine: Any) -> None:
        self._read_losses(engine)
        self.epochs = engine.state.epoch
        loss = sum(self._losses) / len(self._losses) if self._losses else None
        self._losses = []
        lr = None
        optimizer = getattr(engine, "optimizer", None)
        if optimizer is not None and optimizer.param_groups:
            lr = _number(optimizer.param_groups[0].get("lr"))
        record = {"kind": "train", "epoch": engine.state.epoch, "iteration": engine.state.iteration,
                  "train_loss": loss, "lr": lr, "time": self.elapsed(),
                  "epoch_time": round(time.monotonic() - self._epoch_start, 3)}
        train_metrics = {k: _number(v) for k, v in (engine.state.metrics or {}).items()}
        if train_metrics:
            record["metrics"] = train_metrics
        self.write(record)
        extra = "".join(f" {k} {v:.4f}" for k, v in train_metrics.items() if v is not None)
        self.out(f"epoch {engine.state.epoch}/{self.max_epochs} iteration {engine.state.iteration}"
                 f" train_loss {_fmt(loss)} lr {_fmt(lr)}{extra} ({record['time']:.1f}s)")

    def _on_validation(self, evaluator: Any) -> None:
        trainer = self._trainer
        epoch, iteration = trainer.state.epoch, trainer.state.iteration
        metrics = {k: _number(v) for k, v in (evaluator.state.metrics or {}).items()}
        key = getattr(evaluator.state, "key_metric_name", None) or (next(iter(metrics), None))
        self.key_metric = key
        record = {"kind": "validation", "epoch": epoch, "iteration": iteration, "key_metric": key,
                  "metrics": metrics, "time": self.elapsed()}
        self.write(record)
        self.validations.append({"epoch": epoch, "iteration": iteration, "metrics": metrics})
        value = metrics.get(key) if key else None
        improved = value is not None and (self.best is None or value > self.best)
        if improved:
            self.best, self.best_epoch = value, epoch
            if self._save_model:
                self._save_checkpoint(epoch, key, value)
        shown = " ".join(f"{k} {_fmt(v)}" for k, v in metrics.items())
        self.out(f"validation epoch {epoch}: {shown} (best {key} {_fmt(self.best)} at epoch {self.best_epoch})"
                 + (" saved model.pt" if improved and self._save_model else ""))

    def _save_checkpoint(self, epoch: int, key: str, value: float) -> None:
        import torch

        state = {name: (obj.state_dict() if hasattr(obj, "state_dict") else obj) for name, obj in self._save.items()}
        state.update({"epoch": epoch, "key_metric": key, "key_metric_value": value})
        tmp = self.dir / (MODEL_FILE + ".tmp")
        torch.save(state, tmp)
        os.replace(tmp, self.dir / MODEL_FILE)

    # -- the end -----------------------------------------------------------------------------------

    def finish(self, status: str, reason: str = "") -> dict[str, Any]:
        """Write the last metrics line and train_stats.json; returns the stats. The first call wins: in
        a distributed job rank 0's watcher thread may finish it (a rank died) while training unwinds."""
        with self._finish_lock:
            if self._finished is None:
                self._finished = self._finish(status, reason)
            return self._finished

    def _finish(self, status: str, reason: str) -> dict[str, Any]:
        total = self.elapsed()
        if not self.validations:
            reason = reason or "no score: training never validated"
        elif self.best is None:
            reason = reason or "no score: the key metric was never a finite number"
        self.write({"kind": "end", "status": status, "reason": reason, "time": total})
        self._metrics.close()
        stats = {
            "status": status,
            "reason": reason,
            "best_validation_metric": self.best,
            "best_validation_epoch": self.best_epoch,
            "key_metric": self.key_metric,
            "total_epochs": self.epochs,
            "total_iterations": self.iterations,
            "total_time": total,
            "validations": self.validations,
            **self.extra,
        }
        _write_json_atomic(self.dir / STATS_FILE, stats)
        return stats


def _fmt(value: float | None) -> str:
    return "none" if value is None else f"{value:.4g}"
