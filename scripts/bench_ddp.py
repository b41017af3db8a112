"""One training job on 1 rank against the same job on N ranks (DDP): samples/s and scaling efficiency.

Both runs train the same template model on the same synthetic data through ``mmar-automl train``; only
``--nproc`` (and, on GPUs, CUDA_VISIBLE_DEVICES) differ. Samples/s counts training items per second of
the epochs after the first (the first pays data caching and CUDA/cuDNN warm-up). Efficiency = (N-rank
samples/s / 1-rank samples/s) / N: 1.0 is perfect scaling.

    python scripts/bench_ddp.py --device cuda --nproc 2            # a machine with 2+ GPUs (NCCL)
    python scripts/bench_ddp.py --device cpu --nproc 2 --items 16  # gloo ranks: the CPU path, no GPU needed

Prints a table and, last, one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path


def run_train(root: Path, nproc: int, device: str, epochs: int, env: dict[str, str]) -> dict:
    cmd = [sys.executable, "-m", "mmar_automl", "train", str(root), "--device", device, "--nproc", str(nproc),
           "--set", f"epochs={epochs}", "num_interval_per_valid=1000"]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=3600)
    if done.returncode != 0:
        raise SystemExit(f"train --nproc {nproc} failed: {done.stderr.strip().splitlines()[-1:]}")
    lines = [json.loads(x) for x in (root / "models" / "metrics.jsonl").read_text().splitlines() if x.strip()]
    times = [x["time"] for x in lines if x["kind"] == "train"]
    epochs_after_first = [b - a for a, b in zip(times, times[1:])]
    return {"epoch_s": sum(epochs_after_first) / max(1, len(epochs_after_first)), "epochs": len(times)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", choices=("cpu", "cuda"), default="cuda")
    p.add_argument("--nproc", type=int, default=2)
    p.add_argument("--items", type=int, default=32, help="synthetic training volumes")
    p.add_argument("--epochs", type=int, default=4)
    args = p.parse_args()

    from mmar_automl.scaffold.init import init_mmar

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "mmar"
        init_mmar(root, template="segmentation_3d", synthetic_data=args.items, seed=0)
        training = len(json.loads((root / "data" / "dataset.json").read_text())["training"])
        rows = []
        for nproc in (1, args.nproc):
            env = dict(os.environ)
            if args.device == "cuda":
                env["CUDA_VISIBLE_DEVICES"] = ",".join(map(str, range(nproc)))
            else:  # the same CPU cores for both: one rank with all threads, or N ranks sharing them
                env["OMP_NUM_THREADS"] = str(os.cpu_count() or 1)
            result = run_train(root, nproc, args.device, args.epochs, env)
            rows.append({"nproc": nproc, "epoch_s": result["epoch_s"], "samples_per_s": training / result["epoch_s"]})
    base = rows[0]["samples_per_s"]
    for row in rows:
        row["speedup"] = row["samples_per_s"] / base
        row["efficiency"] = row["speedup"] / row["nproc"]
    print(f"device {args.device}, {training} training volumes, {args.epochs} epochs (first one not timed)")
    print(f"{'ranks':>5} {'epoch s':>9} {'samples/s':>10} {'speedup':>8} {'efficiency':>10}")
    for row in rows:
        print(f"{row['nproc']:>5} {row['epoch_s']:>9.3f} {row['samples_per_s']:>10.2f} {row['speedup']:>8.2f} "
              f"{row['efficiency']:>10.2f}")
    print(json.dumps({"device": args.device, "training_items": training, "rows": rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
