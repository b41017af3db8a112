"""Synthetic runs of any size, written with the journal's own writer (so the format is the real one) and
real job folders (concrete config, models/metrics.jsonl, train_stats.json): for the 1000-job benchmark
(scripts/bench_report.py) and for report tests that need a known score function."""

from __future__ import annotations

import json
import math
import random
import time
from pathlib import Path

from mmar_automl.run.job import JobRecord
from mmar_automl.run.journal import FORMAT_VERSION, JournalWriter, Op, config_hash
from mmar_automl.recommendation import JobState, Recommendation
from mmar_automl.search import parse_search_space, render_config

BASE_CONFIG = {
    "epochs": 5, "learning_rate": 1e-3, "dont_load_ckpt_model": True,
    "search": [{"domain": "lr", "type": "float", "args": ["learning_rate"], "targets": [1e-4, 1e-2]}],
    "train": {
        "model": {"name": "UNet", "args": {"channels": [8, 16, 32]},
                  "search": [{"domain": "net", "type": "enum", "args": ["channels"],
                              "targets": [[[8, 16, 32]], [[16, 32, 64]], [[32, 64, 128]]]}]},
        "pre_transforms": [
            {"name": "RandFlipd", "args": {"prob": 0.5},
             "search": [{"domain": "transform", "type": "enum", "args": ["@disabled"], "targets": [[True], [False]]}]},
            {"name": "RandGaussianNoised", "args": {"prob": 0.1},
             "search": [{"domain": "transform", "type": "float", "args": ["prob"], "targets": [0.0, 0.5]}]},
        ],
    },
}


def score_of(point: dict) -> float:
    """Known truth for importance tests: the learning rate matters most, the flip a little, noise not."""
    lr = point["learning_rate"]
    flip = 0.05 if point["RandFlipd.@disabled"] == [False] else 0.0
    return round(0.9 - 0.5 * abs(math.log10(lr) + 2.5) / 1.5 + flip, 6)


def synthetic_run(root: Path, n_jobs: int, run_id: str = "synthetic", seed: int = 0, epochs: int = 5,
                  fail_every: int = 25, workers: int = 4) -> Path:
    """An MMAR at ``root`` with one finished run of ``n_jobs`` random points; returns the run folder."""
    rng = random.Random(seed)
    (root / "config").mkdir(parents=True, exist_ok=True)
    (root / "config" / "config_train.json").write_text(json.dumps(BASE_CONFIG, indent=1))
    (root / "config" / "environment.json").write_text(json.dumps({"MMAR_CKPT_DIR": "models"}))
    space = parse_search_space(BASE_CONFIG, "config/config_train.json")
    run_dir = root / "automl" / run_id
    run_dir.mkdir(parents=True)
    journal = JournalWriter(run_dir / "journal.jsonl")
    journal.append(Op.RUN_STARTED, version=FORMAT_VERSION, run_id=run_id, seed=seed, space=space.to_json(),
                   workers=["cpu"] * workers, controller={"name": "RandomController", "path": None, "args": {}},
                   config_hashes={"train": config_hash(BASE_CONFIG)}, mmar_root=str(root),
                   train_config="config/config_train.json", options={})
    t0 = time.time() - n_jobs * 10
    seq = [0] * workers
    best = None
    for j in range(1, n_jobs + 1):
        point = {}
        for dim in space:
            if dim.type == "float":
                point[dim.name] = rng.uniform(dim.low, dim.high)
            else:
                point[dim.name] = list(rng.choice(dim.choices))
        rec = Recommendation(j - 1, point)
        journal.append(Op.RECOMMENDED, after=j - 2 if j > 1 else None, recs=[rec.to_json()])
        w = (j - 1) % workers
        seq[w] += 1
        job = JobRecord(job_uid=f"{j:016x}", number=j, worker=w + 1, worker_seq=seq[w], folder="",
                        recommendation=rec, state=JobState.RUNNING, started_at=t0 + j * 10)
        job.folder = str(run_dir / job.name)
        journal.append(Op.JOB_STARTED, job=job.to_json())
        folder = Path(job.folder)
        (folder / "config").mkdir(parents=True)
        (folder / "models").mkdir()
        (folder / "config" / "config_train.json").write_text(json.dumps(render_config(BASE_CONFIG, space, point)))
        failed = fail_every and j % fail_every == 0
        final = score_of(point)
        lines, curve = [], []
        for e in range(1, epochs + 1):
            lines.append({"kind": "train", "epoch": e, "iteration": e * 4, "train_loss": 1.0 / e, "lr": point["learning_rate"], "time": e})
            if failed and e == 2:
                break
            value = round(final * (1 - 0.6 ** e), 6)
            curve.append((e, value))
            lines.append({"kind": "validation", "epoch": e, "iteration": e * 4, "key_metric": "val_mean_dice",
                          "metrics": {"val_mean_dice": value}, "time": e + 0.5})
        lines.append({"kind": "end", "status": "failed" if failed else "complete", "reason": "", "time": epochs + 1})
        (folder / "models" / "metrics.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
        score = max(v for _, v in curve) if curve and not failed else None
        (folder / "models" / "train_stats.json").write_text(json.dumps({
            "best_validation_metric": score, "status": "failed" if failed else "complete"}))
        (folder / "log.txt").write_text(f"job {job.name}\n" + ("RuntimeError: synthetic failure\n" if failed else ""))
        if not failed:
            (folder / "models" / "model.pt").write_bytes(b"weights of " + job.name.encode())
        job.state = JobState.FAILED if failed else JobState.COMPLETE
        job.score = score
        job.exit_code = 1 if failed else 0
        job.reason = "exit code 1: RuntimeError: synthetic failure" if failed else None
        job.log_tail = "RuntimeError: synthetic failure" if failed else None
        job.ended_at = job.started_at + 8.5
        job.intermediate = curve
        journal.append(Op.JOB_ENDED, job=job.to_json(), told=True)
        if score is not None and (best is None or score > best.score):
            best = job
    journal.append(Op.RUN_ENDED, reason="max jobs", exit_code=1 if fail_every else 0,
                   best=best.name if best else None, best_score=best.score if best else None)
    journal.close()
    return run_dir
