"""A light, torch-free job function for the engine tests: a real process in a real job folder that
follows the trainer's contract (<MMAR_CKPT_DIR>/metrics.jsonl line by line, train_stats.json, model.pt, exit
codes), driven by first-level keys of its concrete config:

- ``score``: the validation value reached at the last epoch (the job's score); ``null`` = never validates
- ``mode``: ok | raise | hang | stubborn (hangs, ignores SIGTERM) | abort | exit3 | nan
- ``epochs``, ``sleep`` (seconds per epoch)
- ``fall_at_end``: true = the last validation value is half the score (a curve that falls at the end)
Each start and end is appended to the file named by $LIGHTJOB_LEDGER (one JSON line, O_APPEND).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path


def _ledger(event: str, **data) -> None:
    path = os.environ.get("LIGHTJOB_LEDGER")
    if path:
        line = json.dumps({"event": event, "pid": os.getpid(), "cwd": os.getcwd(), **data}) + "\n"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.write(fd, line.encode())
        os.close(fd)


def main(argv: list[str]) -> int:
    root = Path(argv[0])
    config = json.loads((root / "config" / "config_train.json").read_text())
    mode, score = config.get("mode", "ok"), config.get("score", 0.5)
    epochs, sleep = int(config.get("epochs", 2)), float(config.get("sleep", 0.1))
    from mmar_automl.config.mmar import Mmar

    models = Mmar.at(root).ckpt_dir  # MMAR_CKPT_DIR of the job folder, as the trainer writes
    models.mkdir(exist_ok=True)
    (models / "env.json").write_text(json.dumps({
        "cwd": os.getcwd(), "argv": argv, "pgid": os.getpgid(0), "pid": os.getpid(),
        "env": {k: os.environ.get(k) for k in ("CUDA_VISIBLE_DEVICES", "CUDA_DEVICE_ORDER", "MMAR_AUTOML_RUN_MARKER",
                                                   "MMAR_AUTOML_FAST_PATHS")},
        "environment": json.loads((root / "config" / "environment.json").read_text())
        if (root / "config" / "environment.json").exists() else None,
    }))
    if mode == "stubborn":  # ignores SIGTERM: only SIGKILL stops it
        import signal

        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    _ledger("start", score=score, mode=mode)
    print(f"light job {root.name}: mode={mode} score={score}", flush=True)
    t0 = time.time()
    best, validations = None, []
    with open(models / "metrics.jsonl", "a") as metrics:
        for epoch in range(1, epochs + 1):
            if mode in ("hang", "stubborn"):
                time.sleep(3600)
            time.sleep(sleep)
            loss = float("nan") if mode == "nan" else 1.0 / epoch
            metrics.write(json.dumps({"kind": "train", "epoch": epoch, "iteration": epoch * 2, "train_loss": loss,
                                      "lr": 0.001, "time": time.time() - t0}) + "\n")
            metrics.flush()
            if mode == "raise" and epoch == 1:
                raise RuntimeError("light job failure on purpose")
            if mode == "abort":
                os.abort()
            if mode == "exit3":
                return 3
            if mode == "nan":
                metrics.write(json.dumps({"kind": "end", "status": "failed", "reason": "NaN loss", "time": 0}) + "\n")
                _stats(models, None, [], "failed", "NaN loss at epoch 1", epochs)
                print("error: NaN loss at epoch 1", file=sys.stderr)
                return 1
            if score is not None:
                value = float(score) * epoch / epochs
                if config.get("fall_at_end") and epoch == epochs and epochs > 1:  # the curve drops at the end
                    value = float(score) * 0.5
                best = value if best is None else max(best, value)
                validations.append({"epoch": epoch, "iteration": epoch * 2, "metrics": {"val_mean_dice": value}})
                metrics.write(json.dumps({"kind": "validation", "epoch": epoch, "iteration": epoch * 2,
                                          "key_metric": "val_mean_dice", "metrics": {"val_mean_dice": value},
                                          "time": time.time() - t0}) + "\n")
                metrics.flush()
        metrics.write(json.dumps({"kind": "end", "status": "complete", "reason": "", "time": time.time() - t0}) + "\n")
    (models / "model.pt").write_bytes(b"not a real model: " + json.dumps(config.get("score")).encode())
    _stats(models, best, validations, "complete", "", epochs)
    _ledger("end", score=score, mode=mode)
    return 0


def _stats(models: Path, best, validations, status: str, reason: str, epochs: int) -> None:
    stats = {"best_validation_metric": best, "best_validation_epoch": epochs if best is not None else None,
             "key_metric": "val_mean_dice", "total_epochs": epochs, "total_iterations": 2 * epochs,
             "total_time": 0.0, "validations": validations, "status": status, "reason": reason}
    tmp = models / "train_stats.json.tmp"
    tmp.write_text(json.dumps(stats))
    os.replace(tmp, models / "train_stats.json")


def slow_preload() -> None:
    """Stands for the real preload's 15-40 s of imports."""
    time.sleep(60)
