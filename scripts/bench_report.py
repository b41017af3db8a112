"""Benchmark `mmar-automl report` on a synthetic 1000-job run (target: under 3 s per command).

Builds the run with the journal's own writer and real job folders (tests/report/synthetic_runs.py),
then times whole processes side by side: the CLI start-up alone (the floor), the table, --json,
--html, each with PED-ANOVA importance (the default), and as baselines without importance and with
fANOVA. Prints a table and one JSON line. Usage: .venv/bin/python scripts/bench_report.py [--jobs N]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests" / "report")]


def timed(argv: list[str], repeat: int) -> tuple[float, float, float, int]:
    """(median wall s, min wall s, median CPU s of the child: user + sys), stdout size. CPU time is what
    the command costs whatever else the machine is doing; wall time is what a user waits."""
    times, cpus = [], []
    size = 0
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        proc = subprocess.run(argv, capture_output=True, cwd=REPO)
        times.append(time.perf_counter() - t)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        if proc.returncode != 0:
            raise SystemExit(f"{argv} failed ({proc.returncode}): {proc.stderr.decode()[-500:]}")
        size = len(proc.stdout)
    return statistics.median(times), min(times), statistics.median(cpus), size


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    from synthetic_runs import synthetic_run

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "mmar"
        t = time.perf_counter()
        synthetic_run(root, args.jobs)
        build = time.perf_counter() - t
        py = sys.executable
        cli = [py, "-m", "mmar_automl"]
        html = Path(tmp) / "report.html"
        cases = [
            ("floor: import mmar_automl.cli", [py, "-c", "import mmar_automl.cli"]),
            ("report (table, top 20)", [*cli, "report", str(root)]),
            ("report --importance ped-anova (table)", [*cli, "report", str(root), "--importance", "ped-anova"]),
            ("report --json", [*cli, "report", str(root), "--json"]),
            ("report --html", [*cli, "report", str(root), "--html", str(html)]),
            ("baseline: --json --importance none", [*cli, "report", str(root), "--json", "--importance", "none"]),
            ("baseline: --html --importance fanova", [*cli, "report", str(root), "--html", str(html), "--importance", "fanova"]),
        ]
        rows = []
        for name, argv in cases:
            median, best, cpu, size = timed(argv, args.repeat)
            rows.append({"case": name, "median_s": round(median, 3), "min_s": round(best, 3),
                         "cpu_s": round(cpu, 3), "stdout_bytes": size})
        html_size = html.stat().st_size
    load = os.getloadavg()[0]
    print(f"{args.jobs}-job synthetic run (built in {build:.1f} s); whole processes, median of {args.repeat}; "
          f"load average {load:.1f} on {os.cpu_count()} CPUs")
    print(f"{'case':40} {'wall s':>7} {'min s':>7} {'CPU s':>7} {'stdout bytes':>13}")
    for r in rows:
        print(f"{r['case']:40} {r['median_s']:7.3f} {r['min_s']:7.3f} {r['cpu_s']:7.3f} {r['stdout_bytes']:13d}")
    print(f"HTML file: {html_size} bytes")
    print(json.dumps({"jobs": args.jobs, "repeat": args.repeat, "load_average": round(load, 2), "html_bytes": html_size, "results": rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
