"""Start-up cost of one tiny training job: a fresh interpreter vs a child forked after ``preload()``.

Prints a table and one JSON line. No asserts: a measurement, not a test. Both runs train the same
tiny Clara-format MMAR (tests/train/factory.py: 32^3 synthetic volumes, 4 train + 2 val, 2 epochs).

    .venv/bin/python scripts/time_train.py [--repeat 2]
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

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "train"))


def fresh_process(root: Path, argv: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "mmar_automl.train.run", str(root), *argv], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def forked_after_preload(root: Path, argv: list[str]) -> tuple[float, float]:
    """(fork -> child exit as the parent sees it, time inside main() as the child measures it)."""
    read, write = os.pipe()
    t0 = time.perf_counter()
    pid = os.fork()
    if pid == 0:  # the child: what a launcher's job process does
        os.close(read)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        from mmar_automl.train.run import main

        t = time.perf_counter()
        code = main([str(root), *argv])
        os.write(write, json.dumps({"code": code, "main_s": time.perf_counter() - t}).encode())
        os._exit(code)
    os.close(write)
    data = b""
    while chunk := os.read(read, 4096):
        data += chunk
    _, status = os.waitpid(pid, 0)
    wall = time.perf_counter() - t0
    result = json.loads(data or b"{}")
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"forked job failed: {result}")
    return wall, result["main_s"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    from factory import make_mmar, tiny_config

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        # Made in another process: this one must import torch/monai first in preload(), to time it.
        subprocess.run([sys.executable, "-c", f"import sys; sys.path.insert(0, {str(REPO / 'tests' / 'train')!r}); "
                        f"from factory import make_dataset; from pathlib import Path; make_dataset(Path({str(data)!r}))"],
                       check=True)
        root = make_mmar(Path(tmp) / "mmar", tiny_config(), data)
        argv = ["--set", "epochs=2", "--device", "cpu"]
        fresh = [fresh_process(root, argv) for _ in range(args.repeat)]

        from mmar_automl.train.run import preload

        t0 = time.perf_counter()
        preload()
        preload_s = time.perf_counter() - t0
        forked = [forked_after_preload(root, argv) for _ in range(args.repeat)]

    rows = [("fresh interpreter: whole process", min(fresh)),
            ("preload() once in the parent", preload_s),
            ("forked child after preload: fork -> exit", min(w for w, _ in forked)),
            ("forked child after preload: inside main()", min(m for _, m in forked))]
    print(f"{'tiny training job (2 epochs, 4+2 volumes of 32^3, CPU)':<50} {'seconds':>8}")
    for label, value in rows:
        print(f"{label:<50} {value:>8.2f}")
    print(json.dumps({"fresh_process_s": fresh, "preload_s": preload_s,
                      "forked_wall_s": [w for w, _ in forked], "forked_main_s": [m for _, m in forked],
                      "python": sys.version.split()[0], "cpus": os.cpu_count()}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
