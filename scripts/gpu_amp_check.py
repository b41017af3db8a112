"""On a CUDA machine: does AMP training work on the GPU, and what is an epoch's time CPU vs GPU?

Trains the same small Clara-format MMAR (tests/train/factory.py; synthetic volumes) twice through
``mmar_automl.train.run.main``: ``--device cpu`` (amp off: it needs a GPU) and ``--device cuda`` with
``amp=true``; prints a table and one JSON line; exit 1 when the GPU run did not complete with amp on.

    .venv/bin/python scripts/gpu_amp_check.py [--size 64] [--volumes 8] [--epochs 3]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "train"))


def epoch_times(models: Path) -> list[float]:
    """Seconds each training epoch took (``epoch_time`` of the train lines of metrics.jsonl)."""
    lines = [json.loads(x) for x in (models / "metrics.jsonl").read_text().splitlines()]
    return [line["epoch_time"] for line in lines if line["kind"] == "train"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--volumes", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--cpu-only", action="store_true", help="dry run of this script on a machine without GPU")
    args = parser.parse_args()

    import torch

    from factory import make_dataset, make_mmar, tiny_config
    from mmar_automl.run.outputs import JobOutputs
    from mmar_automl.train.run import main as train_main

    runs = (("cpu", False), ("cuda", True)) if not args.cpu_only else (("cpu", False), ("cpu ", True))
    if not torch.cuda.is_available() and not args.cpu_only:
        print("no CUDA device visible: nothing to compare", file=sys.stderr)
        return 1
    crop = min(args.size, 64)
    overrides = [f"epochs={args.epochs}", f"num_interval_per_valid={args.epochs}",
                 "train.model.args.channels=[16,32,64,128]", "train.model.args.strides=[2,2,2]",
                 f"train.pre_transforms[3].args.roi_size=[{crop},{crop},{crop}]"]
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        data = make_dataset(Path(tmp) / "data", n_train=args.volumes, n_val=2, size=args.size)
        for device, amp in runs:
            root = make_mmar(Path(tmp) / device.strip(), tiny_config(), data)
            code = train_main([str(root), "--device", device.strip(), "--set", *overrides, f"amp={str(amp).lower()}"])
            outputs = JobOutputs.of(root)
            stats = outputs.stats() or {}
            times = epoch_times(outputs.ckpt_dir)
            results[device] = {"exit": code, "status": stats["status"], "amp": stats.get("amp"),
                               "score": stats["best_validation_metric"], "epoch_s": times,
                               "epoch_s_after_first": (sum(times[1:]) / len(times[1:])) if len(times) > 1 else None}
    print(f"{'device':<8} {'amp':<6} {'status':<9} {'epoch 1 (s)':>11} {'later epochs (s)':>17} {'score':>7}")
    for device, r in results.items():
        later = r["epoch_s_after_first"]
        print(f"{device:<8} {str(r['amp']):<6} {r['status']:<9} {r['epoch_s'][0] if r['epoch_s'] else float('nan'):>11.3f} "
              f"{later if later is not None else float('nan'):>17.3f} {r['score'] if r['score'] is not None else float('nan'):>7.4f}")
    gpu_name = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    print(json.dumps({"gpu": gpu_name, "torch": torch.__version__, "size": args.size, "volumes": args.volumes,
                      **results}))
    gpu = results[runs[1][0]]
    return 0 if gpu["exit"] == 0 and gpu["status"] == "complete" and gpu["amp"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
