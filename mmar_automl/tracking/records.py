"""Job files -> MLflow values: metrics.jsonl records to metric tuples, and where a job's artifacts lie.

A metric is ``[key, value, step, timestamp_ms]``. The timestamp is derived from the record itself
(job start + the record's ``time``), never from the clock, so that sending the same record twice
gives the identical metric, which MLflow's store deduplicates: replays stay idempotent.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from mmar_automl.run.outputs import JobOutputs
from mmar_automl.tracking.limits import safe_key

Metric = list  # [key: str, value: float, step: int, timestamp_ms: int]


_NOT_METRICS = ("kind", "epoch", "iteration", "time", "key_metric", "metrics", "status", "reason")


def metrics_from_records(records: Iterable[dict[str, Any]], started_at: float | None) -> list[Metric]:
    """Every number of every train and validation record, step = epoch: a train record's own fields
    (``train_loss``, ``lr``, ``epoch_time``, GPU memory, ...) and its ``metrics`` (``train_acc``), with
    its ``time`` as ``elapsed_time``; a validation record's ``metrics`` (``val_mean_dice``, ``val_acc``)."""
    base = started_at or 0.0
    out: list[Metric] = []
    for rec in records:
        kind = rec.get("kind")
        step = int(rec.get("epoch") or rec.get("iteration") or 0)
        ts = int(round((base + float(rec.get("time") or 0.0)) * 1000))
        nested = rec.get("metrics") if isinstance(rec.get("metrics"), dict) else {}
        if kind == "train":
            values = {k: v for k, v in rec.items() if k not in _NOT_METRICS}
            values["elapsed_time"] = rec.get("time")
            values.update(nested)
        elif kind == "validation":
            values = dict(nested)
        else:
            continue
        for key, value in values.items():
            if _is_number(value):
                out.append([safe_key(key), float(value), step, ts])
    return out


def job_artifacts(folder: str | Path, with_model: bool) -> list[tuple[str, str]]:
    """``(local file, artifact folder)`` pairs for a job: concrete config and environment (the job's data
    paths and --set values: without it MLflow cannot reproduce the job), log, stats, the model if asked.
    A file the job folder lacks is skipped by the writer."""
    outputs = JobOutputs.of(folder)
    files = [(outputs.config_file, "config"), (outputs.environment_file, "config"), (outputs.log_file, ""),
             (outputs.stats_file, "")]
    if with_model:
        files.append((outputs.model_file, "model"))
    return [(str(path), where) for path, where in files]


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and not (
        isinstance(value, float) and math.isinf(value))
