"""Time one training job of each `init` template in a fresh `mmar-automl train` process, side by side with
the torch thread count left at its default and pinned to 1 (OMP_NUM_THREADS=1), in one run.

Why: on a 2-core machine shared by several processes, torch's default thread pool oversubscribes the
cores; this shows what a job costs each way. Prints a table and, last, one JSON line.

    .venv/bin/python scripts/time_templates.py [--templates segmentation_3d classification_2d] [--repeat 1]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mmar_automl.scaffold.init import init_mmar, list_templates

PAIRS = {"segmentation_3d": 16, "classification_2d": 40}
SETTINGS = {"default threads": {}, "OMP_NUM_THREADS=1": {"OMP_NUM_THREADS": "1"}}


def one_job(root: Path, extra_env: dict[str, str]) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"} | extra_env
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "mmar_automl", "train", str(root), "--device", "cpu"],
                          env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    from mmar_automl.run.outputs import JobOutputs

    stats = (JobOutputs.of(root).stats() or {}) if proc.returncode == 0 else {}
    return {"exit": proc.returncode, "wall_s": round(wall, 1), "train_s": stats.get("total_time"),
            "score": stats.get("best_validation_metric")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--templates", nargs="*", default=list_templates())
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for template in args.templates:
            root = init_mmar(Path(tmp) / template, template, synthetic_data=PAIRS[template]).root
            for _ in range(args.repeat):
                for label, extra in SETTINGS.items():  # interleaved, so that load changes hit both alike
                    rows.append({"template": template, "setting": label, **one_job(root, extra)})
    print(f"{'template':<20}{'setting':<20}{'exit':>5}{'wall s':>9}{'train s':>9}{'score':>8}")
    for r in rows:
        score = f"{r['score']:.3f}" if r["score"] is not None else "-"
        print(f"{r['template']:<20}{r['setting']:<20}{r['exit']:>5}{r['wall_s']:>9}{r['train_s'] or '-':>9}{score:>8}")
    print(json.dumps({"load_average_1min": os.getloadavg()[0], "cpus": os.cpu_count(), "rows": rows}))


if __name__ == "__main__":
    main()
