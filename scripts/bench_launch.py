"""Launch overhead: a fresh interpreter per job (cold) vs a fork of the preloaded launcher (zygote).

For each job we record the dispatch time (just before the spawn call) and, inside the job, the time
its function starts and the time its first training step ends (a tiny 3D UNet, Adam, one forward and
backward pass on a 16^3 volume). Both ways run the same job function through the same code paths as
`mmar-automl run` (launcher.spawn_cold / Launcher.spawn), one job at a time, side by side in one run.

    .venv/bin/python scripts/bench_launch.py [--jobs 20] [--cold-jobs 20] [--json out.json]

Prints a table of medians (seconds) and the ratio, then the JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))


def job(argv: list[str]) -> int:
    """The benchmark job: what a trainer does before and in its first step."""
    entered = time.time()
    import torch
    from monai.networks.nets import UNet

    model = UNet(spatial_dims=3, in_channels=1, out_channels=2, channels=(4, 8), strides=(2,), num_res_units=0)
    optimizer = torch.optim.Adam(model.parameters(), 1e-3)
    x = torch.rand(1, 1, 16, 16, 16)
    y = torch.randint(0, 2, (1, 16, 16, 16))
    started = time.time()  # the first training step begins: everything before is launch overhead
    loss = torch.nn.functional.cross_entropy(model(x), y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    stepped = time.time()
    Path(argv[0]).write_text(json.dumps({"entered": entered, "started": started, "stepped": stepped}))
    return 0


def _wait_file(path: Path, timeout: float = 600) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            try:
                return json.loads(path.read_text())
            except ValueError:
                pass
        time.sleep(0.005)
    raise TimeoutError(path)


def _row(result: dict, dispatched: float, ended: float) -> dict:
    return {"to_entry": result["entered"] - dispatched, "to_first_step": result["started"] - dispatched,
            "first_step_done": result["stepped"] - dispatched, "total": ended - dispatched}


KEYS = ("to_entry", "to_first_step", "first_step_done", "total")


def run_cold(n: int, work: Path, env: dict) -> list[dict]:
    from mmar_automl.backends.launcher import spawn_cold

    rows = []
    for i in range(n):
        out = work / f"cold{i}.json"
        t0 = time.time()
        proc = spawn_cold("bench_launch:job", [str(out)], str(work), env, str(work / f"cold{i}.log"))
        result = _wait_file(out)
        proc.wait()
        ended = time.time()
        rows.append(_row(result, t0, ended))
    return rows


def run_launcher(n: int, work: Path, env: dict, preload: str) -> tuple[list[dict], float]:
    from mmar_automl.backends.launcher import Launcher

    lau = Launcher(preload, work / "launcher.log", env=env)
    t0 = time.time()
    lau.start()
    assert lau.wait_ready(600), "launcher did not start"
    warmup = time.time() - t0
    rows = []
    try:
        for i in range(n):
            out = work / f"zyg{i}.json"
            t0 = time.time()
            pid = lau.spawn("bench_launch:job", [str(out)], str(work), env, str(work / f"zyg{i}.log"))
            result = _wait_file(out)
            while lau.exit_code(pid) is None:
                time.sleep(0.005)
            ended = time.time()
            rows.append(_row(result, t0, ended))
    finally:
        lau.close()
    return rows, warmup


def trivial(argv: list[str]) -> int:
    """A job that trains nothing: writes the trainer's files at once (engine overhead benchmark)."""
    models = Path(argv[0]) / "models"
    models.mkdir(exist_ok=True)
    (models / "metrics.jsonl").write_text(json.dumps({"kind": "validation", "epoch": 1, "iteration": 1,
                                                      "key_metric": "m", "metrics": {"m": 0.5}, "time": 0}) + "\n")
    (models / "train_stats.json").write_text(json.dumps({"best_validation_metric": 0.5, "status": "complete"}))
    return 0


def run_engine(n: int, workers: int) -> dict:
    """n trivial jobs through the whole outer loop (job folders, journal, events, zygote forks)."""
    from mmar_automl.run.setup import RunOptions, prepare_run

    os.environ["MMAR_AUTOML_JOB_ENTRY"] = "bench_launch:trivial"
    os.environ["MMAR_AUTOML_JOB_PRELOAD"] = ""
    with tempfile.TemporaryDirectory(prefix="bench_engine_") as tmp:
        root = Path(tmp) / "mmar"
        (root / "config").mkdir(parents=True)
        (root / "config" / "config_train.json").write_text(json.dumps({
            "epochs": 1, "x": 0, "search": [{"domain": "net", "type": "enum", "args": ["x"],
                                              "targets": [[i] for i in range(n)]}]}))
        t0 = time.perf_counter()
        prepared = prepare_run(RunOptions(mmar=str(root), workers=str(workers), no_mlflow=True, run_id="bench"))
        prepared.engine.handlers = []
        result = prepared.engine.run()
        wall = time.perf_counter() - t0
    assert result.exit_code == 0, result.reason
    return {"jobs": n, "workers": workers, "wall_s": wall, "per_job_s": wall / n}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--cold-jobs", type=int, default=None, help="default: --jobs (at least 1)")
    parser.add_argument("--preload", default="mmar_automl.train.run:preload")
    parser.add_argument("--json", default=None)
    parser.add_argument("--engine-jobs", type=int, default=50, help="trivial jobs through the engine (0: skip)")
    args = parser.parse_args()
    cold_n = max(1, args.jobs if args.cold_jobs is None else args.cold_jobs)
    os.environ["PYTHONPATH"] = os.pathsep.join([str(HERE), str(HERE.parent)])
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="")
    with tempfile.TemporaryDirectory(prefix="bench_launch_") as tmp:
        work = Path(tmp)
        zyg, warmup = run_launcher(args.jobs, work, env, args.preload)
        cold = run_cold(cold_n, work, env)
    med = {name: {k: statistics.median(r[k] for r in rows) for k in KEYS}
           for name, rows in (("cold", cold), ("launcher", zyg))}
    print("median seconds from dispatch: to the job function, to the start of its first training step, "
          "to the end of that step, to the process exit")
    print(f"{'':>10} {'jobs':>5} {'to entry':>10} {'to 1st step':>12} {'step done':>10} {'exited':>10}")
    for name, rows in (("cold", cold), ("launcher", zyg)):
        print(f"{name:>10} {len(rows):>5} " + " ".join(f"{med[name][k]:>{w}.3f}" for k, w in zip(KEYS, (10, 12, 10, 10))))
    ratio = med["launcher"]["to_first_step"] / med["cold"]["to_first_step"]
    print(f"{'ratio':>10} {'':>5} " + " ".join(f"{med['launcher'][k] / med['cold'][k]:>{w}.4f}"
                                             for k, w in zip(KEYS, (10, 12, 10, 10))) + "   (launcher / cold)")
    print(f"launcher warm-up (one-off, preload {args.preload}): {warmup:.2f} s; "
          f"target: launcher median to first step <= 0.5 s: {'met' if med['launcher']['to_first_step'] <= 0.5 else 'NOT met'}")
    engine = run_engine(args.engine_jobs, 2) if args.engine_jobs else None
    if engine:
        print(f"engine: {engine['jobs']} trivial jobs on {engine['workers']} CPU workers through the whole loop: "
              f"{engine['wall_s']:.2f} s wall, {engine['per_job_s'] * 1000:.0f} ms per job (zygote start included)")
    report = {"engine": engine, "jobs": {"cold": len(cold), "launcher": len(zyg)}, "median_s": med, "ratio_first_step": ratio,
              "launcher_warmup_s": warmup, "preload": args.preload, "cold_rows": cold, "launcher_rows": zyg}
    print(json.dumps({k: v for k, v in report.items() if not k.endswith("_rows")}, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
