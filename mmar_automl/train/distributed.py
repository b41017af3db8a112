"""One training job over several processes: PyTorch DistributedDataParallel, Clara's ``multi_gpu``.

A job whose worker has N > 1 GPUs (or N CPU slots, ``--workers cpu,cpu``), ``train --nproc N``, or a
config with ``"multi_gpu": true`` and N visible GPUs trains as N ranks. The job process itself is rank
0; it forks ranks 1..N-1 before any torch op has run (the same rule that makes the launcher's fork safe,
DESIGN.md section 9), so every rank is a process of the job's process group: killing the job (time-out,
Ctrl-C, pruning, ``kill -9`` of the orchestrator) kills every rank. Rendezvous: ``env://`` on a free
port of 127.0.0.1; NCCL on GPUs (rank r uses the r-th visible GPU), gloo on the CPU.

Failure is job-level. Each rank > 0 reports its one-line reason to rank 0 through a pipe; a watcher
thread in rank 0 notices a rank that exited non-zero (or was killed) and ends the whole job: the other
ranks are killed, rank 0's recorder writes the failed rank's reason, and the process exits 1. A rank
that hangs is the job's time-out's business, as for a one-process job.

What changes inside a rank (train/resolver.py, train/run.py): datalists are partitioned per rank
(MONAI's ``partition_dataset``: training shuffled with a fixed seed and evenly divisible, validation in
order and not padded), the trainer's network is wrapped in DDP (the evaluator and the checkpoint keep
the plain module), components with ``"rank": R`` are built on rank R only, and only rank 0 writes
``metrics.jsonl``, ``train_stats.json`` (with ``world_size``), the checkpoint and the summary lines.
Validation metrics are reduced over the ranks by MONAI/ignite (``evenly_divisible_all_gather``).
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

NPROC_ENV = "MMAR_AUTOML_NPROC"   # set by the outer loop for a worker with several GPUs / CPU slots
_RANK_ENV, _WORLD_ENV = "RANK", "WORLD_SIZE"
_MARK_ENV = "MMAR_AUTOML_DDP"      # "1" inside ranks started here (RANK alone may come from elsewhere)
_JOIN_GRACE_S = 30.0               # rank 0 done: how long the other ranks may take to finish


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world_size: int = 1

    @property
    def active(self) -> bool:
        return self.world_size > 1


def current() -> Dist:
    """This process's rank and world size (single process unless started by :func:`launch`)."""
    if os.environ.get(_MARK_ENV) != "1":
        return Dist()
    return Dist(int(os.environ.get(_RANK_ENV, "0")), int(os.environ.get(_WORLD_ENV, "1")))


def visible_gpu_count() -> int:
    """GPUs this process may use, without initialising CUDA (the ranks are forked after this)."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return len([t for t in visible.split(",") if t.strip()])
    try:
        import torch

        return torch.cuda.device_count()  # NVML-based: does not create a CUDA context
    except Exception:  # noqa: BLE001 - no usable CUDA: no GPU
        return 0


def resolve_nproc(requested: int | None, multi_gpu: object, device: str | None) -> int:
    """How many ranks: ``--nproc`` (or the outer loop's ``MMAR_AUTOML_NPROC``) wins; else Clara's
    ``multi_gpu: true`` takes every visible GPU; else one."""
    if requested is None and os.environ.get(NPROC_ENV, "").isdigit():
        requested = int(os.environ[NPROC_ENV])
    if requested is not None:
        return max(1, requested)
    if multi_gpu is True and device != "cpu":
        return max(1, visible_gpu_count())
    return 1


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Ranks:
    """Rank 0's view of ranks 1..N-1: their pids, their reason pipes, the first failure."""

    def __init__(self) -> None:
        self.pids: dict[int, int] = {}       # rank -> pid
        self.pipes: dict[int, int] = {}      # rank -> read end of its reason pipe
        self.failure: str | None = None
        self.done = threading.Event()
        self.lock = threading.Lock()

    def reason_of(self, rank: int, status: int) -> str:
        text = b""
        try:
            while chunk := os.read(self.pipes[rank], 4096):
                text += chunk
        except OSError:
            pass
        line = text.decode(errors="replace").strip().splitlines()
        if line:
            return f"rank {rank} failed: {line[-1]}"
        if os.WIFSIGNALED(status):
            return f"rank {rank} killed by {signal.Signals(os.WTERMSIG(status)).name}"
        return f"rank {rank} exited with code {os.waitstatus_to_exitcode(status)}"

    def kill_all(self) -> None:
        for pid in self.pids.values():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


_ranks: _Ranks | None = None  # set in rank 0 while a distributed job runs


def peer_failure(wait: float = 5.0) -> str | None:
    """In rank 0: the reason of a rank that failed first, else None. Rank 0's own error is often only
    the echo of a dead peer ("Connection closed by peer"): wait briefly for the watcher to see it (on a
    loaded machine it may take a while; this wait is only paid by a failing job)."""
    if _ranks is None:
        return None
    deadline = time.monotonic() + wait
    while _ranks.failure is None and time.monotonic() < deadline:
        time.sleep(0.05)
    return _ranks.failure


def launch(nproc: int, run_rank: Callable[[], int], on_peer_failure: Callable[[str], None]) -> int:
    """Run ``run_rank`` as ranks 0..nproc-1 (this process is rank 0) and return rank 0's exit code, or 1
    when another rank failed. Must be called before any torch op has run in this process.
    ``on_peer_failure(reason)`` runs in rank 0's watcher thread when a rank failed first (it records
    the reason); then the job ends with exit code 1."""
    global _ranks
    saved = {k: os.environ.get(k) for k in (_RANK_ENV, _WORLD_ENV, "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT",
                                            _MARK_ENV, "OMP_NUM_THREADS")}
    os.environ.update({_WORLD_ENV: str(nproc), "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(_free_port()),
                       _MARK_ENV: "1"})
    threads = os.environ.get("OMP_NUM_THREADS")
    if threads and threads.isdigit():  # the job's CPU share is split between its ranks
        os.environ["OMP_NUM_THREADS"] = str(max(1, int(threads) // nproc))
    ranks = _Ranks()
    for rank in range(1, nproc):
        read, write = os.pipe()
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the forked rank (its exit code is what tests see)
            os.close(read)
            os._exit(_rank_main(rank, write, run_rank))
        os.close(write)
        ranks.pids[rank], ranks.pipes[rank] = pid, read
    os.environ.update({_RANK_ENV: "0", "LOCAL_RANK": "0"})
    _ranks = ranks
    watcher = threading.Thread(target=_watch, args=(ranks, on_peer_failure), name="ddp-ranks", daemon=True)
    watcher.start()
    try:
        code = run_rank()
        if code != 0 or ranks.failure is not None:
            ranks.kill_all()
            return 1 if ranks.failure is not None else code
        ranks.done.wait(_JOIN_GRACE_S)   # the others finish their last collective and exit
        if ranks.failure is not None:
            return 1
        return code
    finally:
        ranks.kill_all()
        _reap(ranks)
        _ranks = None
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _rank_main(rank: int, reason_fd: int, run_rank: Callable[[], int]) -> int:
    """A forked rank > 0: its own RANK, stdout silenced (rank 0 writes the log's lines), stderr kept
    for a traceback, its one failure line sent to rank 0; dies with rank 0."""
    from mmar_automl.backends.launcher import set_parent_death_signal

    set_parent_death_signal(signal.SIGKILL)
    os.environ.update({_RANK_ENV: str(rank), "LOCAL_RANK": str(rank)})
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    reason = os.fdopen(reason_fd, "w")
    code = 1
    try:
        code = run_rank()
    except BaseException as err:  # noqa: BLE001 - one line to rank 0, whatever happened
        print(f"{type(err).__name__}: {err}".splitlines()[0], file=reason, flush=True)
        return 1
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except Exception:  # noqa: BLE001
            pass
    if code != 0:
        print(_my_failure or f"exit code {code}", file=reason, flush=True)
    reason.close()
    return code


_my_failure: str | None = None  # this rank's failure line (note_failure), sent to rank 0 at exit


def note_failure(reason: str) -> None:
    """Remember this process's one-line failure reason (a rank > 0 sends it to rank 0)."""
    global _my_failure
    _my_failure = reason


def _watch(ranks: _Ranks, on_peer_failure: Callable[[str], None]) -> None:
    """Rank 0's watcher: reap ranks as they end; the first one that failed ends the job."""
    alive = dict(ranks.pids)
    while alive:
        for rank, pid in list(alive.items()):
            try:
                got, status = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                alive.pop(rank)
                continue
            if got == 0:
                continue
            alive.pop(rank)
            if os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0:
                continue
            with ranks.lock:
                if ranks.failure is not None or ranks.done.is_set():
                    continue
                ranks.failure = ranks.reason_of(rank, status)
            ranks.kill_all()
            on_peer_failure(ranks.failure)
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(1)  # rank 0 may be stuck in a collective with the dead rank (NCCL waits forever)
        time.sleep(0.1)
    ranks.done.set()


def _reap(ranks: _Ranks) -> None:
    for pid in ranks.pids.values():
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass
    for fd in ranks.pipes.values():
        try:
            os.close(fd)
        except OSError:
            pass


def init_process_group(device: str) -> None:
    """Join the job's process group (NCCL on GPUs, gloo on the CPU); rank r takes the r-th visible GPU."""
    import datetime

    import torch
    import torch.distributed as dist

    me = current()
    if device.startswith("cuda"):
        torch.cuda.set_device(me.rank)
    dist.init_process_group("nccl" if device.startswith("cuda") else "gloo", init_method="env://",
                            rank=me.rank, world_size=me.world_size, timeout=datetime.timedelta(minutes=30))


def destroy_process_group() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def partition(items: list, section: str) -> list:
    """This rank's share of a datalist: training shuffled (fixed seed, the same on every rank, so the
    shares are disjoint) and evenly divisible; validation in order, not padded (no item counted twice)."""
    me = current()
    if not me.active:
        return items
    from monai.data import partition_dataset

    train = section == "train"
    even = train or len(items) < me.world_size  # a rank with no item would have nothing to validate
    parts = partition_dataset(items, num_partitions=me.world_size, shuffle=train, seed=0, even_divisible=even)
    return list(parts[me.rank])


def wrap(network, device: str):  # noqa: ANN001, ANN201 - a torch.nn.Module in, DDP out
    """The trainer's network in DDP (the evaluator and the checkpoint keep the plain module)."""
    me = current()
    if not me.active:
        return network
    import torch

    if not any(p.requires_grad for p in network.parameters()):
        return network
    ids = [me.rank] if device.startswith("cuda") else None
    return torch.nn.parallel.DistributedDataParallel(network, device_ids=ids)
