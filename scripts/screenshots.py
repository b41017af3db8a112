"""Screenshots of what a user sees, for docs/mlflow.md and docs/report.md: a small real search tracked
by a local `mlflow server`, then headless Chromium on MLflow's run list, the best child run and its
model, the compare view, the parent and its charts, and the HTML report. PNGs go to docs/img/ (quantised to 256 colours to
stay small); a table and a JSON line of what was taken, with timings, go to stdout.

    python scripts/screenshots.py [--out docs/img] [--keep DIR] [--jobs 6]

Needs /usr/bin/chromium and the `mlflow` command of this environment. Takes ~3 minutes on 2 cores
(the server's start ~25 s, the search ~60 s, the best model's export ~20 s, each page ~10 s).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
         # MLflow's charts draw only after compositor frames: without this they are still spinners
         "--run-all-compositor-stages-before-draw"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(work: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    mlflow = Path(sys.executable).with_name("mlflow")
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"
    proc = subprocess.Popen(
        [str(mlflow), "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
         "--backend-store-uri", f"sqlite:///{work / 'server.db'}", "--artifacts-destination", str(work / "artifacts")],
        stdout=open(work / "server.log", "ab"), stderr=subprocess.STDOUT, env=env, start_new_session=True)
    uri = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"mlflow server exited: {(work / 'server.log').read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{uri}/health", timeout=2) as r:
                if r.status == 200:
                    return proc, uri
        except OSError:
            time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGKILL)
    raise SystemExit("mlflow server did not answer in 180 s")


def cli(*args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-m", "mmar_automl", *args], capture_output=True, text=True,
                         timeout=timeout, env=env)
    if out.returncode not in (0, 1):
        raise SystemExit(f"mmar-automl {' '.join(args)} exited {out.returncode}:\n{out.stderr[-3000:]}")
    return out


def make_mmar(work: Path) -> Path:
    """The segmentation_3d template with synthetic data, made tiny (a UNet [4,8], 3 epochs)."""
    root = work / "spleen_demo"
    cli("init", str(root), "--template", "segmentation_3d", "--synthetic-data", "8")
    path = root / "config" / "config_train.json"
    config = json.loads(path.read_text())
    search = config["train"]["model"].get("search") or []
    config["train"]["model"]["args"].update(channels=[4, 8], strides=[2], num_res_units=0)
    for entry in search:  # keep the channel search, with tiny choices
        entry["targets"] = [[[4, 8]], [[8, 16]]]
    path.write_text(json.dumps(config, indent=1))
    return root


def shoot(url: str, png: Path, profile: Path, size: str, wait_ms: int) -> float:
    t0 = time.monotonic()
    subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", f"--window-size={size}",
                    f"--virtual-time-budget={wait_ms}", f"--screenshot={png}", url],
                   capture_output=True, timeout=180)
    if not png.is_file():
        raise SystemExit(f"no screenshot of {url}")
    return time.monotonic() - t0


def shrink(png: Path) -> None:
    """256 colours: a UI screenshot stays legible at a fraction of the size."""
    try:
        from PIL import Image
    except ImportError:
        return
    image = Image.open(png).convert("RGB")
    image.quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(png, optimize=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(REPO / "docs" / "img"))
    parser.add_argument("--keep", help="work in this folder and keep it (default: a temporary one, removed)")
    parser.add_argument("--jobs", type=int, default=6)
    parser.add_argument("--wait-ms", type=int, default=60000, help="virtual time Chromium gives each page")
    args = parser.parse_args()
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="mmar_shots_"))
    work.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    t0 = time.monotonic()
    server, uri = start_server(work)
    timings["server start"] = time.monotonic() - t0
    try:
        t0 = time.monotonic()
        root = make_mmar(work)
        timings["init"] = time.monotonic() - t0
        t0 = time.monotonic()
        run = cli("run", str(root), "--workers", "cpu:cpu", "--max-jobs", str(args.jobs), "--seed", "7",
                  "--set", "epochs=3", "--run-id", "demo", "--tracking-uri", uri, "--experiment", "spleen_demo")
        timings["search"] = time.monotonic() - t0
        html = work / "report.html"
        cli("report", str(root), "--html", str(html))

        from mlflow.tracking import MlflowClient

        client = MlflowClient(tracking_uri=uri)
        exp = client.get_experiment_by_name("spleen_demo")
        runs = client.search_runs([exp.experiment_id], max_results=100)
        parent = next(r for r in runs if r.data.tags.get("mmar_automl.role") == "parent")
        children = sorted((r for r in runs if "mmar_automl.job_uid" in r.data.tags),
                          key=lambda r: int(r.data.tags["mmar_automl.job_number"]))
        best = next(c for c in children if c.data.tags["mmar_automl.job_uid"] == parent.data.tags["mmar_automl.best_job_uid"])
        base, eid = uri, exp.experiment_id
        compare = urllib.parse.quote(json.dumps([c.info.run_id for c in children]))
        pages = {
            # the jobs are nested under the parent row (its "+" expands them); MLflow keeps that choice in
            # the browser, which a headless screenshot cannot click
            "mlflow_runs.png": (f"{base}/#/experiments/{eid}/runs?workflowType=machine_learning", "1600,700"),
            "mlflow_child.png": (f"{base}/#/experiments/{eid}/runs/{best.info.run_id}?workflowType=machine_learning",
                                 "1440,1500"),
            "mlflow_model.png": (f"{base}/#/experiments/{eid}/runs/{best.info.run_id}/artifacts/model"
                                 "?workflowType=machine_learning", "1440,800"),
            "mlflow_compare.png": (f"{base}/#/compare-runs?runs={compare}&experiments={urllib.parse.quote(json.dumps([eid]))}"
                                   "&workflowType=machine_learning", "1440,1600"),
            "mlflow_parent.png": (f"{base}/#/experiments/{eid}/runs/{parent.info.run_id}?workflowType=machine_learning",
                                  "1440,1500"),
            "mlflow_parent_charts.png": (f"{base}/#/experiments/{eid}/runs/{parent.info.run_id}/model-metrics"
                                         "?workflowType=machine_learning", "1440,800"),
            "report.png": (html.as_uri(), "1250,2600"),
        }
        rows = []
        for name, (url, size) in pages.items():
            png = out_dir / name
            seconds = shoot(url, png, work / "chromium", size, args.wait_ms)
            shrink(png)
            rows.append({"file": str(png.relative_to(REPO) if png.is_relative_to(REPO) else png), "url": url,
                         "seconds": round(seconds, 1), "kb": round(png.stat().st_size / 1024)})
    finally:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=30)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print(f"{'file':34} {'KB':>5} {'s':>6}  url")
    for row in rows:
        print(f"{row['file']:34} {row['kb']:>5} {row['seconds']:>6}  {row['url'][:90]}")
    for step, seconds in timings.items():
        print(f"{step:34} {'':>5} {seconds:6.1f}")
    print(json.dumps({"screenshots": rows, "timings_s": {k: round(v, 1) for k, v in timings.items()},
                      "search_stderr_tail": run.stderr.splitlines()[-3:]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
