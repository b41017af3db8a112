"""Cost of MLflow tracking on a search: the same search of trivial jobs, MLflow off and on, side by side.

Runs ``mmar-automl run`` (the real engine, real job processes) with the run tests' torch-free light job
(tests/run/lightjobs.py: sleeps ``--sleep`` s per epoch, writes metrics.jsonl, train_stats.json, a model).
Modes, interleaved in each repeat so that machine load hits all alike:
  off          --no-mlflow
  sqlite-new   the embedded default store, created by this run (a fresh MMAR: the one-off ~4 s creation)
  sqlite       the embedded default store, existing (the usual case)
  server       a local ``mlflow server`` (with --server; its ~25 s start is not counted)
  down         a tracking URI where nothing listens (with --down): every write goes to the spool
Also measures how long the handler's event methods take with the server down (they only queue).
Prints a table and a JSON line; overhead = (median wall - median wall off) / median wall off. Two
search sizes split the overhead into a fixed cost per run (importing mlflow, opening the store, the
final flush) and a cost per job.

  .venv/bin/python scripts/bench_tracking.py [--sizes 4 16] [--workers 2] [--epochs 3] [--sleep 1] \
      [--repeats 2] [--server] [--down] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests" / "mlflow"), str(REPO / "tests" / "run")]


def _light_mmar(root: Path, jobs: int, epochs: int, sleep: float) -> Path:
    from mlflow_jobs import light_mmar

    return light_mmar(root, scores=tuple(round(0.1 + 0.8 * i / max(1, jobs - 1), 4) for i in range(jobs)),
                      sleep=sleep, epochs=epochs)


def _run(mmar: Path, run_id: str, workers: int, extra: list[str]) -> float:
    from mlflow_jobs import light_env

    cmd = [sys.executable, "-m", "mmar_automl", "run", str(mmar), "--workers", ":".join(["cpu"] * workers),
           "--seed", "1", "--run-id", run_id, *extra]
    t0 = time.perf_counter()
    out = subprocess.run(cmd, env=light_env(), capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({out.returncode}):\n{out.stderr[-2000:]}")
    return wall


def _server(root: Path) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    proc = subprocess.Popen([str(Path(sys.executable).with_name("mlflow")), "server", "--host", "127.0.0.1", "--port",
                             str(port), "--workers", "1", "--backend-store-uri", f"sqlite:///{root / 'server.db'}",
                             "--artifacts-destination", str(root / "artifacts")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, start_new_session=True)
    uri = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            with urllib.request.urlopen(f"{uri}/health", timeout=2):
                return proc, uri
        except OSError:
            time.sleep(0.5)
    raise SystemExit("mlflow server did not start")


def _event_latency(root: Path, jobs: int) -> dict:
    """Event methods with MLflow down (nothing listens on the port): they must only queue."""
    from mlflow_jobs import JobFactory, fire

    from mmar_automl.handlers.mlflow import MLflowHandler
    from mmar_automl.tracking.spool import Spool

    factory = JobFactory(root / "events_mmar")
    handler = MLflowHandler(flush_timeout=0.5, gpu_interval=3600)
    ctx = factory.ctx(tracking_uri="http://127.0.0.1:9", experiment="bench")
    fire(handler, ctx, "start_automl")
    times = []
    for n in range(1, jobs + 1):
        job = factory.job(n)
        for event, props in [("start_job", {"JOB": job})] + [
                ("job_metrics", {"JOB": job, "METRICS": job.lines[i:i + 2]}) for i in range(0, 6, 2)] + [
                ("end_job", {"JOB": job})]:
            t0 = time.perf_counter()
            fire(handler, ctx, event, **props)
            times.append(time.perf_counter() - t0)
    fire(handler, ctx, "end_automl")
    return {"events": len(times), "mean_ms": 1000 * statistics.mean(times), "max_ms": 1000 * max(times),
            "spooled_writes": Spool.in_run_dir(factory.run_dir).pending_count}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[4, 16], help="searches of this many jobs")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--sleep", type=float, default=1.0, help="seconds per epoch of each job")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--server", action="store_true", help="also track to a local mlflow server")
    parser.add_argument("--down", action="store_true", help="also track to a server that is down")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="bench_tracking_"))
    server = None
    walls: dict[tuple[int, str], list[float]] = {}
    try:
        modes = {"off": ["--no-mlflow"], "sqlite-new": [], "sqlite": []}
        if args.server:
            server, uri = _server(root)
            modes["server"] = ["--tracking-uri", uri, "--experiment", "bench"]
        if args.down:
            modes["down"] = ["--tracking-uri", "http://127.0.0.1:9", "--experiment", "bench"]
        for size in args.sizes:
            mmars = {m: _light_mmar(root / f"{m}{size}" / "mmar", size, args.epochs, args.sleep) for m in modes}
            _run(mmars["sqlite"], "warmup", args.workers, ["--max-jobs", "1"])  # creates the "existing" store
            for rep in range(args.repeats):
                for mode, extra in modes.items():
                    mmar = mmars[mode]
                    if mode == "sqlite-new":
                        shutil.rmtree(mmar.parent)
                        mmar = _light_mmar(mmar, size, args.epochs, args.sleep)
                    walls.setdefault((size, mode), []).append(_run(mmar, f"r{rep}", args.workers, extra))
        events = _event_latency(root, 8)
    finally:
        if server is not None:
            os.killpg(server.pid, signal.SIGKILL)
        shutil.rmtree(root, ignore_errors=True)

    rows = []
    print(f"jobs of {args.epochs} epochs x {args.sleep} s on {args.workers} CPU workers, {args.repeats} repeats, "
          "median wall of the whole `mmar-automl run` process")
    print(f"{'jobs':>4} {'mode':<11} {'median s':>9} {'min s':>7} {'max s':>7} {'overhead s':>11} {'overhead %':>11}")
    for (size, mode), values in walls.items():
        base = statistics.median(walls[(size, "off")])
        med = statistics.median(values)
        row = {"jobs": size, "mode": mode, "median_s": med, "min_s": min(values), "max_s": max(values),
               "overhead_s": med - base, "overhead_pct": 100 * (med - base) / base, "walls": values}
        rows.append(row)
        print(f"{size:>4} {mode:<11} {med:9.2f} {min(values):7.2f} {max(values):7.2f} {med - base:11.2f} "
              f"{row['overhead_pct']:10.1f}%")
    per_job = {}
    if len(args.sizes) >= 2:
        small, big = min(args.sizes), max(args.sizes)
        for mode in modes:
            if mode == "off":
                continue
            ovh = {r["jobs"]: r["overhead_s"] for r in rows if r["mode"] == mode}
            per_job[mode] = (ovh[big] - ovh[small]) / (big - small)
            print(f"{mode}: fixed cost ~{ovh[small] - per_job[mode] * small:.2f} s per run, "
                  f"{1000 * per_job[mode]:.0f} ms per job (from {small} vs {big} jobs)")
    print(f"event methods with MLflow down: {events['events']} events, mean {events['mean_ms']:.3f} ms, "
          f"max {events['max_ms']:.3f} ms; {events['spooled_writes']} writes left in the spool")
    result = {"config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}, "rows": rows,
              "per_job_overhead_s": per_job, "events_server_down": events}
    print(json.dumps(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
