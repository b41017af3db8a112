"""A light, torch-free job for the packing tests: a real process following the trainer's contract, that
reports a GPU peak and can fail the way a CUDA out-of-memory does. Driven by its concrete config:
``score``, ``sleep`` (seconds of "training"), ``peak`` (bytes reported), ``oom_on_attempt`` (fail with
the trainer's OOM reason on that attempt number, read from automl_job.json)."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path


def main(argv: list[str]) -> int:
    root = Path(argv[0])
    config = json.loads((root / "config" / "config_train.json").read_text())
    attempt = json.loads((root / "automl_job.json").read_text()).get("attempt", 0)
    models = root / "models"
    models.mkdir(exist_ok=True)
    start = time.time()
    _ledger("start", score=config["score"], attempt=attempt, gpus=os.environ.get("CUDA_VISIBLE_DEVICES"),
            fast_paths=os.environ.get("MMAR_AUTOML_FAST_PATHS"), omp_threads=os.environ.get("OMP_NUM_THREADS"))
    peak = int(config.get("peak", 2**30))
    with open(models / "metrics.jsonl", "a") as metrics:
        time.sleep(float(config.get("sleep", 0.5)))
        metrics.write(json.dumps({"kind": "train", "epoch": 1, "iteration": 1, "train_loss": 0.5, "lr": 0.1,
                                  "time": time.time() - start, "peak_gpu_memory_bytes": peak}) + "\n")
        metrics.flush()
        if config.get("oom_on_attempt") == attempt:
            reason = "out of memory: CUDA out of memory. Tried to allocate 2.00 GiB"
            _stats(models, None, "failed", reason, peak)
            print(f"train failed: {reason}", file=sys.stderr, flush=True)
            _ledger("end", score=config["score"], attempt=attempt, state="oom")
            return 1
        value = float(config["score"])
        metrics.write(json.dumps({"kind": "validation", "epoch": 1, "iteration": 1, "key_metric": "val_mean_dice",
                                  "metrics": {"val_mean_dice": value}, "time": time.time() - start}) + "\n")
    _stats(models, value, "complete", "", peak)
    _ledger("end", score=config["score"], attempt=attempt, state="ok")
    return 0


def _stats(models: Path, best, status: str, reason: str, peak: int) -> None:
    stats = {"best_validation_metric": best, "best_validation_epoch": 1 if best is not None else None,
             "key_metric": "val_mean_dice", "total_epochs": 1, "total_iterations": 1, "total_time": 0.0,
             "validations": [], "status": status, "reason": reason, "peak_gpu_memory_bytes": peak}
    (models / "train_stats.json").write_text(json.dumps(stats))


def _ledger(event: str, **data) -> None:
    line = json.dumps({"event": event, "t": time.time(), **data}) + "\n"
    fd = os.open(os.environ["PACKJOB_LEDGER"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.write(fd, line.encode())
    os.close(fd)
