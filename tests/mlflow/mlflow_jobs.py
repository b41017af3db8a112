"""Real job folders and real JobRecords for driving MLflowHandler's events, as the engine does.

Each job folder is what a finished job leaves: config/config_train.json (concrete), log.txt,
models/metrics.jsonl, models/train_stats.json, models/model.pt.
"""

from __future__ import annotations

import json
import pickle
import time
import uuid
from pathlib import Path

from mmar_automl.context import Context, ContextKey
from mmar_automl.run.job import JobRecord
from mmar_automl.recommendation import JobState, Recommendation
from mmar_automl.search.space import Consumer, EnumDimension, FloatDimension, SearchSpace

SPACE = SearchSpace((
    FloatDimension("lr.float.learning_rate$0:learning_rate", "learning_rate", "lr", ("learning_rate",),
                   1e-4, 1e-3, (Consumer((), "learning_rate"),)),
    EnumDimension("net.enum.train.model$0:channels", "model.channels", "net", ("channels",),
                  (([16, 32, 64],), ([8, 16, 32],)), (Consumer(("train", "model"), "channels"),)),
    EnumDimension("transform.enum.train.pre_transforms[3]$0:@disabled", "RandGaussianNoised.@disabled",
                  "transform", ("@disabled",), ((True,), (False,)),
                  (Consumer(("train", "pre_transforms", 3), "@disabled"),)),
))


def point(n: int) -> dict:
    return {"learning_rate": 1e-4 * n, "model.channels": [[16, 32, 64]] if n % 2 else [[8, 16, 32]],
            "RandGaussianNoised.@disabled": [n % 2 == 0]}


class JobFactory:
    def __init__(self, root: Path, run_id: str = "20261128_0700"):
        self.root = root
        self.run_id = run_id
        self.run_dir = root / "automl" / run_id
        (root / "config").mkdir(parents=True, exist_ok=True)
        (root / "config" / "config_train.json").write_text(json.dumps({"epochs": 2, "learning_rate": 1e-4}))
        self.run_dir.mkdir(parents=True, exist_ok=True)

    def ctx(self, **options) -> Context:
        return Context(**{ContextKey.RUN_ID: self.run_id, ContextKey.RUN_DIR: str(self.run_dir),
                          ContextKey.MMAR_ROOT: str(self.root), ContextKey.SEARCH_SPACE: SPACE,
                          "OPTIONS": dict(options), "CONTROLLER": "GridController"})

    def job(self, number: int, score: float | None = None, worker: int = 1, seq: int | None = None,
            epochs: int = 3, point_value: dict | None = None, state: JobState = JobState.COMPLETE,
            stats_status: str | None = None) -> JobRecord:
        """A job with its folder written; ``score`` defaults to 0.5 + number/100."""
        score = 0.5 + number / 100 if score is None and state == JobState.COMPLETE else score
        rec = Recommendation(number - 1, point_value or point(number))
        job = JobRecord(job_uid=uuid.uuid4().hex, number=number, worker=worker, worker_seq=seq or number,
                        folder="", recommendation=rec, gpus=[0] if worker % 2 else [], state=JobState.RUNNING,
                        started_at=time.time())
        folder = self.run_dir / job.name
        job.folder = str(folder)
        (folder / "config").mkdir(parents=True)
        (folder / "models").mkdir()
        (folder / "config" / "config_train.json").write_text(json.dumps({"job": job.name, **rec.point}))
        (folder / "log.txt").write_text(f"training {job.name}\n")
        self.records = []
        lines = []
        for epoch in range(1, epochs + 1):
            lines.append({"kind": "train", "epoch": epoch, "iteration": 8 * epoch, "train_loss": 1.0 / epoch,
                          "lr": 1e-4 * number, "time": 0.5 * epoch})
            lines.append({"kind": "validation", "epoch": epoch, "iteration": 8 * epoch, "key_metric": "val_mean_dice",
                          "metrics": {"val_mean_dice": (score or 0.3) * epoch / epochs, "val_acc": 0.9},
                          "time": 0.5 * epoch + 0.1})
        lines.append({"kind": "end", "status": "complete", "time": 0.5 * epochs + 0.2})
        (folder / "models" / "metrics.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
        (folder / "models" / "train_stats.json").write_text(json.dumps(
            {"best_validation_metric": score, "key_metric": "val_mean_dice", "total_epochs": epochs,
             **({"status": stats_status} if stats_status else {})}))
        (folder / "models" / "model.pt").write_bytes(pickle.dumps({"model": {"w": [number] * 10}}))
        job.lines = lines  # type: ignore[attr-defined]
        job.final = dict(state=state, score=score, exit_code=0 if state == JobState.COMPLETE else 1)  # type: ignore
        return job


def fire(handler, ctx: Context, event: str, **props) -> None:
    for key, value in props.items():
        ctx.set_prop(getattr(ContextKey, key, key), value)  # JOB -> ContextKey.JOB, whatever its value
    handler.handle_event(event, ctx)


def start(handler, ctx: Context, job: JobRecord) -> None:
    fire(handler, ctx, "start_job", JOB=job)


def metrics(handler, ctx: Context, job: JobRecord) -> None:
    """job_metrics events, one per epoch (the records of that epoch)."""
    lines = [x for x in job.lines if x["kind"] != "end"]  # type: ignore[attr-defined]
    for i in range(0, len(lines), 2):
        fire(handler, ctx, "job_metrics", JOB=job, METRICS=lines[i:i + 2])


def end(handler, ctx: Context, job: JobRecord) -> None:
    for key, value in job.final.items():  # type: ignore[attr-defined]
        setattr(job, key, value)
    job.ended_at = time.time()
    fire(handler, ctx, "end_job", JOB=job)


def run_job(handler, ctx: Context, job: JobRecord) -> None:
    start(handler, ctx, job)
    metrics(handler, ctx, job)
    end(handler, ctx, job)


# -- `mmar-automl run` with the run tests' light job (tests/run/lightjobs.py: a real process, no torch) --
REPO = Path(__file__).resolve().parents[2]
LIGHT_DIR = REPO / "tests" / "run"


def light_mmar(root: Path, scores=(0.1, 0.2, 0.3, 0.4), sleep: float = 0.1, epochs: int = 2) -> Path:
    """An MMAR whose top-level search is a grid of the light job's final scores."""
    (root / "config").mkdir(parents=True)
    (root / "models").mkdir()
    (root / "data").mkdir()
    (root / "data" / "dataset.json").write_text("{}")
    config = {"epochs": epochs, "sleep": sleep, "score": scores[0], "mode": "ok",
              "search": [{"domain": "net", "type": "enum", "args": ["score"], "targets": [[s] for s in scores]}],
              "train": {"model": {"name": "UNet", "args": {"channels": [4, 8]}}}}
    (root / "config" / "config_train.json").write_text(json.dumps(config, indent=1))
    (root / "config" / "environment.json").write_text(json.dumps(
        {"DATA_ROOT": "data", "DATASET_JSON": "data/dataset.json", "MMAR_CKPT_DIR": "models"}))
    return root


def light_env() -> dict:
    import os

    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env.update(MMAR_AUTOML_JOB_ENTRY="lightjobs:main", MMAR_AUTOML_JOB_PRELOAD="",
               PYTHONPATH=os.pathsep.join([str(LIGHT_DIR), str(REPO)]))
    return env
