"""Start-up time of `mmar-automl --help` and `mmar-automl validate`, next to baselines, in one run.

Each command runs REPEAT times in a fresh interpreter; the table shows min and median wall seconds,
then the same as JSON. Baselines: a bare interpreter and `import typer` (the floor for any typer CLI).
Usage: .venv/bin/python scripts/bench_validate_startup.py [REPEAT]
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CLARA = REPO / "tests" / "search" / "clara"


def timed(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    repeat = int(sys.argv[1]) if len(sys.argv) > 1 else 7
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "mmar"
        (root / "config").mkdir(parents=True)
        shutil.copy(CLARA / "PyTorch__trn_autoML_Enum.json", root / "config" / "config_train.json")
        shutil.copy(CLARA / "PyTorch__config_automl.json", root / "config" / "config_automl.json")
        py = sys.executable
        cases = {
            "python -c pass (baseline)": [py, "-c", "pass"],
            "import typer (baseline)": [py, "-c", "import typer"],
            "mmar-automl --help": [py, "-m", "mmar_automl", "--help"],
            "mmar-automl validate": [py, "-m", "mmar_automl", "validate", str(root)],
            "mmar-automl validate --json": [py, "-m", "mmar_automl", "validate", str(root), "--json"],
        }
        timed(cases["mmar-automl validate"])          # warm the file cache once
        results = {}
        for name, cmd in cases.items():
            times = [timed(cmd) for _ in range(repeat)]
            results[name] = {"min_s": round(min(times), 3), "median_s": round(statistics.median(times), 3)}
    width = max(map(len, results))
    print(f"{'command':<{width}}  {'min s':>7}  {'median s':>8}   (n={repeat})")
    for name, r in results.items():
        print(f"{name:<{width}}  {r['min_s']:>7.3f}  {r['median_s']:>8.3f}")
    print(json.dumps({"repeat": repeat, "results": results}))


if __name__ == "__main__":
    main()
