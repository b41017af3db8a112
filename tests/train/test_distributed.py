"""Multi-process (DDP) jobs on the CPU: gloo ranks forked by the job (train/distributed.py), through the
real trainer and the real ``run`` loop. Each rank records the items it loads, so disjointness is checked
on what the ranks really saw, not on the partition function."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mmar_automl.errors import UsageError
from mmar_automl.run.packing import expand_workers
from mmar_automl.run.workers import job_environment, parse_workers
from mmar_automl.train.distributed import NPROC_ENV, resolve_nproc

RECORDER = textwrap.dedent('''
    import os
    import signal


    class RecordSeen:
        """Appends each item's image path to seen/<section>_rank<RANK>.txt; KILL_RANK=r SIGKILLs rank r."""

        def __init__(self, section):
            self.section = section

        def __call__(self, data):
            rank = os.environ.get("RANK", "0")
            if os.environ.get("KILL_RANK") == rank and self.section == "train":
                os.kill(os.getpid(), signal.SIGKILL)
            os.makedirs("seen", exist_ok=True)
            with open(f"seen/{self.section}_rank{rank}.txt", "a") as f:
                f.write(os.path.basename(str(data["image"])) + "\\n")
            return data
''')


def test_cpu_rank_workers_parse_and_reach_the_job():
    workers = parse_workers("cpu,cpu:cpu,cpu", [])
    assert [(w.number, w.nproc, w.label) for w in workers] == [(1, 2, "cpu,cpu"), (2, 2, "cpu,cpu")]
    assert parse_workers("cpu:cpu", [])[0].nproc == 1
    env = job_environment({}, workers[0], [], threads=2)
    assert env[NPROC_ENV] == "2" and env["CUDA_VISIBLE_DEVICES"] == ""
    assert NPROC_ENV not in job_environment({}, parse_workers("cpu", [])[0], [])


def test_packing_refuses_multi_rank_workers():
    with pytest.raises(UsageError, match="worker 1 .*2-rank DDP jobs"):
        expand_workers(parse_workers("cpu,cpu", []), 2)
    assert [w.nproc for w in expand_workers(parse_workers("cpu,cpu", []), 1)] == [2]  # ranks kept


def test_nproc_resolution(monkeypatch):
    monkeypatch.delenv(NPROC_ENV, raising=False)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1,2")
    assert resolve_nproc(None, True, None) == 3        # Clara's multi_gpu: every visible GPU
    assert resolve_nproc(None, True, "cpu") == 1       # multi_gpu on the CPU: one process
    assert resolve_nproc(None, False, None) == 1
    assert resolve_nproc(2, False, "cpu") == 2         # --nproc wins
    monkeypatch.setenv(NPROC_ENV, "4")
    assert resolve_nproc(None, False, None) == 4       # the outer loop's worker


def _mmar(tmp_path: Path, multi_gpu: bool = False) -> Path:
    from mmar_automl.scaffold.init import init_mmar

    root = tmp_path / "mmar"
    init_mmar(root, template="segmentation_3d", synthetic_data=8, seed=0)
    (root / "custom").mkdir(exist_ok=True)
    (root / "custom" / "seen.py").write_text(RECORDER)
    path = root / "config" / "config_train.json"
    config = json.loads(path.read_text())
    config["multi_gpu"] = multi_gpu
    config["train"]["pre_transforms"].insert(0, {"path": "seen.RecordSeen", "args": {"section": "train"}})
    config["validate"]["pre_transforms"].insert(0, {"path": "seen.RecordSeen", "args": {"section": "validate"}})
    path.write_text(json.dumps(config, indent=1))
    return root


def _cli(*args: str, env: dict | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    full = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    return subprocess.run([sys.executable, "-m", "mmar_automl", *args], capture_output=True, text=True,
                          env=full, cwd=cwd, timeout=600)


def _seen(folder: Path, section: str, rank: int) -> list[str]:
    file = folder / "seen" / f"{section}_rank{rank}.txt"
    return file.read_text().split() if file.exists() else []


def _no_process_with(marker: str) -> bool:
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            if marker.encode() in Path(f"/proc/{pid}/environ").read_bytes():
                return False
        except OSError:
            continue
    return True


@pytest.mark.slow
def test_two_rank_training_sees_disjoint_data_and_writes_once(tmp_path):
    root = _mmar(tmp_path)
    done = _cli("train", str(root), "--nproc", "2", "--set", "epochs=2", "--device", "cpu")
    assert done.returncode == 0, done.stderr
    stats = json.loads((root / "models" / "train_stats.json").read_text())
    assert stats["status"] == "complete" and stats["world_size"] == 2
    assert isinstance(stats["best_validation_metric"], float)
    training = json.loads((root / "data" / "dataset.json").read_text())["training"]
    names = {Path(item["image"]).name for item in training}
    rank0, rank1 = set(_seen(root, "train", 0)), set(_seen(root, "train", 1))
    assert rank0 and rank1 and not rank0 & rank1 and rank0 | rank1 == names
    v0, v1 = set(_seen(root, "validate", 0)), set(_seen(root, "validate", 1))
    assert v0 and v1 and not v0 & v1            # validation split too, reduced over ranks
    assert done.stdout.count("done in") == 1     # one summary line: rank 0's
    lines = (root / "models" / "metrics.jsonl").read_text().splitlines()
    assert sum(json.loads(line)["kind"] == "end" for line in lines) == 1


@pytest.mark.slow
def test_a_killed_rank_fails_the_job_with_one_line_and_no_orphan(tmp_path):
    root = _mmar(tmp_path)
    marker = f"DDP_TEST_{os.getpid()}_{tmp_path.name}"
    done = _cli("train", str(root), "--nproc", "2", "--set", "epochs=2", "--device", "cpu",
                env={"KILL_RANK": "1", marker: "1"})
    assert done.returncode == 1, done.stderr
    stats = json.loads((root / "models" / "train_stats.json").read_text())
    assert (stats["status"], stats["reason"]) == ("failed", "rank 1 killed by SIGKILL"), done.stderr
    failures = [line for line in done.stderr.splitlines() if line.startswith("train failed")]
    assert failures == ["train failed: rank 1 killed by SIGKILL"], done.stderr
    assert _no_process_with(marker)


@pytest.mark.slow
def test_run_with_cpu_rank_workers_gives_scores(tmp_path):
    """``run --workers cpu,cpu`` on an MMAR with multi_gpu: true: each job is a 2-rank job with a score."""
    root = _mmar(tmp_path, multi_gpu=True)
    done = _cli("run", str(root), "--workers", "cpu,cpu", "--max-jobs", "2", "--seed", "0", "--no-mlflow",
                "--set", "epochs=1", "--run-id", "ddp")
    assert done.returncode == 0, done.stdout + done.stderr
    run_dir = root / "automl" / "ddp"
    jobs = sorted(p for p in run_dir.iterdir() if p.name.startswith("W"))
    assert len(jobs) == 2
    for job in jobs:
        stats = json.loads((job / "models" / "train_stats.json").read_text())
        assert stats["world_size"] == 2 and isinstance(stats["best_validation_metric"], float)
        assert set(_seen(job, "train", 0)).isdisjoint(_seen(job, "train", 1)) and _seen(job, "train", 1)


def _gpu_count() -> int:
    from mmar_automl.run.workers import discover_gpus

    return len(discover_gpus())


@pytest.mark.gpu
@pytest.mark.slow
@pytest.mark.skipif(_gpu_count() < 2, reason="needs 2 NVIDIA GPUs")
def test_two_gpu_job_with_nccl(tmp_path):
    """``run --workers 0,1``: one job over two GPUs (NCCL), one train_stats.json with world_size 2."""
    root = _mmar(tmp_path, multi_gpu=True)
    done = _cli("run", str(root), "--workers", "0,1", "--max-jobs", "1", "--seed", "0", "--no-mlflow",
                "--set", "epochs=2", "--run-id", "nccl")
    assert done.returncode == 0, done.stdout + done.stderr
    job = next(p for p in (root / "automl" / "nccl").iterdir() if p.name.startswith("W"))
    stats = json.loads((job / "models" / "train_stats.json").read_text())
    assert stats["world_size"] == 2 and stats["device"] == "cuda"
    assert set(_seen(job, "train", 0)).isdisjoint(_seen(job, "train", 1)) and _seen(job, "train", 1)
