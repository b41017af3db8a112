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
        """Appends each item's image path to seen/<section>_rank<RANK>.txt; KILL_RANK=r SIGKILLs rank r,
        RAISE_RANK=r makes rank r fail with an error."""

        def __init__(self, section):
            self.section = section

        def __call__(self, data):
            rank = os.environ.get("RANK", "0")
            if os.environ.get("KILL_RANK") == rank and self.section == "train":
                os.kill(os.getpid(), signal.SIGKILL)
            if os.environ.get("RAISE_RANK") == rank and self.section == "train":
                raise ValueError(f"rank {rank} broke")
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


def _as_rank(monkeypatch, rank: int, world_size: int) -> None:
    """This test process seen as one rank of a distributed job (train/distributed.py ``current``)."""
    monkeypatch.setenv("MMAR_AUTOML_DDP", "1")
    monkeypatch.setenv("RANK", str(rank))
    monkeypatch.setenv("WORLD_SIZE", str(world_size))


def test_fewer_validation_items_than_ranks_are_validated_by_every_rank(monkeypatch):
    """2 items on 3 ranks: padding would count one item twice in the reduced metric (a, b, a)."""
    from mmar_automl.train.distributed import partition

    items = [{"image": "a"}, {"image": "b"}]
    shares = []
    for rank in range(3):
        _as_rank(monkeypatch, rank, 3)
        shares.append(partition(items, "validate"))
    assert shares == [items, items, items]
    five = [{"image": str(i)} for i in range(5)]   # enough items: disjoint, not padded
    split = []
    for rank in range(2):
        _as_rank(monkeypatch, rank, 2)
        split.append([item["image"] for item in partition(five, "validate")])
    assert sorted(split[0] + split[1]) == ["0", "1", "2", "3", "4"] and not set(split[0]) & set(split[1])


def test_rank_0_components_that_must_run_on_every_rank(monkeypatch, tmp_path):
    """MetricsSaver gathers from every rank before rank 0 writes: with ``"rank": 0`` it is built on rank 1
    too (writing on rank 0: save_rank), else rank 0 would wait forever. A CheckpointLoader with ``"rank": 0``
    loads on every rank (a model copy left at its initial weights would train apart). StatsHandler stays
    rank 0's."""
    from mmar_automl.train.resolver import Builder

    handlers = [{"name": "StatsHandler", "rank": 0, "args": {"output_transform": "lambda x: None"}},
                {"name": "MetricsSaver", "rank": 0, "args": {"save_dir": "eval", "metrics": "*"}},
                {"name": "MetricsSaver", "rank": 2, "args": {"save_dir": "eval", "metrics": "*"}},
                {"name": "CheckpointLoader", "rank": 0, "args": {"load_path": "m.pt", "load_dict": {"model": "@model"}}}]
    config = {"validate": {"handlers": handlers, "model": {"name": "Linear", "args": {"in_features": 1, "out_features": 1}}}}
    _as_rank(monkeypatch, 1, 2)
    notes: list[str] = []
    built = Builder(config, "c.json", tmp_path, "cpu", warn=notes.append).get("validate", "handlers")
    assert [type(h).__name__ for h in built] == ["MetricsSaver", "CheckpointLoader"] and built[0].save_rank == 0
    assert any("CheckpointLoader runs on every rank" in note for note in notes), notes
    _as_rank(monkeypatch, 0, 2)
    built = Builder(config, "c.json", tmp_path, "cpu", warn=lambda m: None).get("validate", "handlers")
    assert [type(h).__name__ for h in built] == ["StatsHandler", "MetricsSaver", "CheckpointLoader"]


def _mmar(tmp_path: Path, multi_gpu: bool = False, rank0_savers: bool = False) -> Path:
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
    if rank0_savers:  # components built on rank 0 only that talk to ignite.distributed / gather over ranks
        handlers = config["validate"]["handlers"]
        saver = next(h for h in handlers if h["name"] == "CheckpointSaver")
        saver["args"]["save_final"] = True
        handlers.append({"name": "MetricsSaver", "rank": 0, "args": {
            "save_dir": "eval", "metrics": ["val_mean_dice"], "metric_details": ["val_mean_dice"]}})
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
    """Also: rank-0 savers (CheckpointSaver save_final, MetricsSaver) neither hang the job nor write twice,
    and models/model.pt loads strictly into the plain network."""
    root = _mmar(tmp_path, rank0_savers=True)
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
    assert len(list((root / "models").glob("*final_iteration=*.pt"))) == 1
    validation = json.loads((root / "data" / "dataset.json").read_text())["validation"]
    raw = (root / "eval" / "val_mean_dice_raw.csv").read_text().splitlines()
    assert len(raw) == 1 + len(validation)      # header + every item, gathered from both ranks
    import torch
    from monai.networks.nets import UNet

    model = json.loads((root / "config" / "config_train.json").read_text())["train"]["model"]
    net = UNet(**model["args"])
    net.load_state_dict(torch.load(root / "models" / "model.pt", weights_only=True)["model"], strict=True)


@pytest.mark.slow
@pytest.mark.parametrize(("how", "reason"), [("KILL_RANK", "rank 1 killed by SIGKILL"),
                                             ("RAISE_RANK", "rank 1 failed: ValueError: rank 1 broke")])
def test_a_failed_rank_fails_the_job_with_one_line_and_no_orphan(tmp_path, how, reason):
    """Killed or crashed: one reason, one ``train failed`` line (not one per rank), no process left."""
    root = _mmar(tmp_path)
    marker = f"DDP_TEST_{os.getpid()}_{tmp_path.name}"
    done = _cli("train", str(root), "--nproc", "2", "--set", "epochs=2", "--device", "cpu",
                env={how: "1", marker: "1"})
    assert done.returncode == 1, done.stderr
    stats = json.loads((root / "models" / "train_stats.json").read_text())
    assert (stats["status"], stats["reason"]) == ("failed", reason), done.stderr
    failures = [line for line in done.stderr.splitlines() if line.startswith("train failed")]
    assert failures == [f"train failed: {reason}"], done.stderr
    assert _no_process_with(marker)


@pytest.mark.slow
def test_ctrl_c_of_a_two_rank_training_is_an_interruption(tmp_path):
    """Ctrl-C reaches every process of the group: the job ends "interrupted" with exit 130, not as a rank
    that failed (rank 1 or its DataLoader worker dying of the SIGINT first), and leaves no rank behind."""
    import signal
    import time

    root = _mmar(tmp_path)
    config = root / "config" / "config_train.json"
    conf = json.loads(config.read_text())
    conf["train"]["dataloader"]["args"]["num_workers"] = 1
    config.write_text(json.dumps(conf))
    marker = f"DDP_TEST_{os.getpid()}_{tmp_path.name}"
    proc = subprocess.Popen([sys.executable, "-m", "mmar_automl", "train", str(root), "--nproc", "2", "--device", "cpu",
                             "--set", "epochs=200"], env={**os.environ, "OMP_NUM_THREADS": "1", marker: "1"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    metrics = root / "models" / "metrics.jsonl"
    deadline = time.monotonic() + 300
    while not (metrics.exists() and '"train"' in metrics.read_text()) and proc.poll() is None:
        assert time.monotonic() < deadline, "no epoch trained"
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    stats = json.loads((root / "models" / "train_stats.json").read_text())
    assert (stats["status"], stats["reason"]) == ("failed", "interrupted"), err
    time.sleep(1)
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
