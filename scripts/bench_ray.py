"""Per-job overhead of the Ray backend vs local workers, on trivial jobs, side by side in one run.

Each variant is a real `mmar-automl run` (a subprocess) of the same MMAR: N jobs of the torch-free light
job function (tests/run/lightjobs.py, 1 epoch, no sleep: the job itself does ~nothing), W workers.
Variants: local workers forked from the launcher (the default), local cold starts (--no-launcher), the
Ray backend on a two-node local Ray cluster (ray.cluster_utils, started once, not counted) with job
folders on the shared filesystem, and the same with job folders shipped through the object store.

Figures per variant (seconds, from the run's journal): the median job wall time (journaled start to
journaled end: dispatch, process start, the job, exit detection, outputs back), the search time per
job (first job start to last job end, divided by N: what a search pays per job), and the whole command.

    .venv/bin/python scripts/bench_ray.py [--jobs 12] [--workers 1] [--json out.json]

Prints a table and then the JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RUN_TESTS = REPO / "tests" / "run"
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from mmar_automl.config.mmar import Mmar  # noqa: E402 - after the repo is on sys.path


def write_mmar(root: Path, jobs: int) -> Path:
    sys.path.insert(0, str(RUN_TESTS))
    import importlib.util

    spec = importlib.util.spec_from_file_location("run_fixtures", RUN_TESTS / "conftest.py")
    fixtures = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fixtures)
    scores = tuple(round(0.01 * (k + 1), 4) for k in range(jobs))
    return fixtures.write_mmar(root, fixtures.light_config(scores=scores, sleep=0.0, epochs=1))


def run_variant(name: str, mmar: Path, args: list[str], env: dict[str, str]) -> dict:
    run_id = name.replace(" ", "_").replace("(", "").replace(")", "")
    cmd = [sys.executable, "-m", "mmar_automl", "run", str(mmar), "--no-mlflow", "--seed", "1", "--run-id", run_id,
           *args]
    t0 = time.time()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    wall = time.time() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{name}: exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    events = [json.loads(x) for x in (Mmar.at(mmar).run_dir(run_id) / "journal.jsonl").read_text().splitlines() if x]
    started = {e["job"]["job_uid"]: e["t"] for e in events if e["op"] == "job_started"}
    ended = {e["job"]["job_uid"]: e["t"] for e in events if e["op"] == "job_ended"}
    states = [e["job"]["state"] for e in events if e["op"] == "job_ended"]
    assert all(s == "COMPLETE" for s in states), states
    durations = [ended[u] - started[u] for u in ended]
    span = max(ended.values()) - min(started.values())
    return {"variant": name, "jobs": len(ended), "job_median_s": round(statistics.median(durations), 3),
            "job_p90_s": round(sorted(durations)[int(0.9 * (len(durations) - 1))], 3),
            "search_per_job_s": round(span / len(ended), 3), "command_s": round(wall, 2),
            "to_first_job_s": round(min(started.values()) - t0, 2)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=12)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--json", default=None, help="also write the results here")
    opts = parser.parse_args()

    import ray
    from ray.cluster_utils import Cluster

    work = Path(tempfile.mkdtemp(prefix="bench_ray_"))
    env = dict(os.environ, MMAR_AUTOML_JOB_ENTRY="lightjobs:main", MMAR_AUTOML_JOB_PRELOAD="",
               PYTHONPATH=os.pathsep.join([str(RUN_TESTS), str(REPO)]), RAY_USAGE_STATS_ENABLED="0")
    workers = ":".join(["cpu"] * opts.workers)
    results = []
    results.append(run_variant("local (launcher)", write_mmar(work / "a", opts.jobs), ["--workers", workers], env))
    results.append(run_variant("local (cold)", write_mmar(work / "b", opts.jobs),
                               ["--workers", workers, "--no-launcher"], env))
    t0 = time.time()
    cluster = Cluster(initialize_head=True, connect=False, head_node_args={
        "num_cpus": 1, "object_store_memory": 100_000_000, "include_dashboard": False})
    cluster.add_node(num_cpus=1, object_store_memory=100_000_000)
    cluster_s = time.time() - t0
    try:
        ray_args = ["--workers", workers, "--backend", "ray", "--ray-address", cluster.address]
        results.append(run_variant("ray (shared folders)", write_mmar(work / "c", opts.jobs), ray_args, env))
        results.append(run_variant("ray (shipped folders)", write_mmar(work / "d", opts.jobs), ray_args,
                                   dict(env, MMAR_AUTOML_RAY_SHIP_FILES="1")))
    finally:
        ray.shutdown()
        cluster.shutdown()
        shutil.rmtree(work, ignore_errors=True)
    base = results[0]["search_per_job_s"]
    for r in results:
        r["overhead_vs_local_s"] = round(r["search_per_job_s"] - base, 3)
    cols = ["variant", "jobs", "job_median_s", "job_p90_s", "search_per_job_s", "overhead_vs_local_s",
            "to_first_job_s", "command_s"]
    widths = [max(len(c), *(len(str(r[c])) for r in results)) for c in cols]
    print("  ".join(c.ljust(w) for c, w in zip(cols, widths)))
    for r in results:
        print("  ".join(str(r[c]).ljust(w) for c, w in zip(cols, widths)))
    out = {"jobs": opts.jobs, "workers": opts.workers, "cluster_start_s": round(cluster_s, 2),
           "cpus": os.cpu_count(), "results": results}
    print(f"(two-node Ray cluster started in {cluster_s:.1f} s, not counted; {os.cpu_count()} CPU cores)")
    print(json.dumps(out, indent=1))
    if opts.json:
        Path(opts.json).write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
