"""Worker slots: Clara's ``--workers`` syntax, GPU discovery with NVML, and GPU memory release.

Never ask ``torch.cuda`` here: the orchestrator and the launcher must not touch CUDA, or forked job
processes fail ("Cannot re-initialize CUDA in forked subprocess", DESIGN.md section 9). NVML ignores
``CUDA_VISIBLE_DEVICES`` and may number GPUs differently from CUDA, so GPUs are ordered by PCI bus id
and every job gets ``CUDA_DEVICE_ORDER=PCI_BUS_ID``: worker GPU ``k`` is then the k-th visible GPU in
bus order, for CUDA and for us alike.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

from mmar_automl.errors import UsageError


@dataclass(frozen=True)
class Gpu:
    """One GPU: ``index`` as CUDA numbers it under PCI_BUS_ID order, ``nvml_index`` as NVML does."""

    index: int
    nvml_index: int
    pci_bus_id: str
    name: str = ""
    physical: int | None = None   # position among all GPUs in bus order (what a job's CUDA_VISIBLE_DEVICES names)
    uuid: str = ""                # NVML's "GPU-8932f937-..." (CUDA_VISIBLE_DEVICES may name GPUs so)


@dataclass
class WorkerSpec:
    """A worker slot: 1-based ``number`` and the CUDA indices of its GPUs (empty: a CPU worker).
    ``cpu_ranks``: processes of one distributed job on a CPU worker (``cpu,cpu`` = 2; gloo ranks)."""

    number: int
    gpus: list[int] = field(default_factory=list)
    cpu_ranks: int = 1

    @property
    def nproc(self) -> int:
        """Processes (DDP ranks) of each job on this worker: one per GPU, or ``cpu_ranks``."""
        return len(self.gpus) if self.gpus else self.cpu_ranks

    @property
    def label(self) -> str:
        return ",".join(map(str, self.gpus)) if self.gpus else ",".join(["cpu"] * self.cpu_ranks)


def discover_gpus() -> list[Gpu]:
    """GPUs visible to this process, in PCI bus order. No driver (NVMLError_LibraryNotFound) = no GPU."""
    try:
        import pynvml
    except ImportError:
        return []
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:
        # LibraryNotFound / DriverNotLoaded / NoPermission: all mean "no usable GPU here".
        return []
    try:
        found = []
        for i in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(i)
            bus = pynvml.nvmlDeviceGetPciInfo(handle).busId
            bus = bus.decode() if isinstance(bus, bytes) else str(bus)
            name = pynvml.nvmlDeviceGetName(handle)
            name = name.decode() if isinstance(name, bytes) else str(name)
            uuid = pynvml.nvmlDeviceGetUUID(handle)
            found.append((_normalise_bus_id(bus), i, name, uuid.decode() if isinstance(uuid, bytes) else str(uuid)))
    finally:
        pynvml.nvmlShutdown()
    found.sort()
    gpus = [Gpu(k, nvml, bus, name, k, uuid) for k, (bus, nvml, name, uuid) in enumerate(found)]
    return _apply_visible_devices(gpus, os.environ.get("CUDA_VISIBLE_DEVICES"))


def _normalise_bus_id(bus: str) -> str:
    # NVML reports "00000000:3B:00.0"; compare case-insensitively with an 8-digit domain.
    domain, _, rest = bus.strip().lower().partition(":")
    return f"{int(domain, 16):08x}:{rest}" if rest else bus.lower()


def _apply_visible_devices(gpus: list[Gpu], visible: str | None) -> list[Gpu]:
    """Honour a CUDA_VISIBLE_DEVICES set on the orchestrator: indices in bus order, or GPU UUIDs (a unique
    prefix is enough, as for CUDA). As CUDA does, the list ends at the first entry that names no GPU. MIG
    instances are refused: a job would get the whole GPU they are part of."""
    if visible is None:
        return gpus
    visible = visible.strip()
    if not visible:
        return []
    picked = []
    for token in visible.split(","):
        token = token.strip()
        if token.upper().startswith("MIG-"):
            raise UsageError(f"CUDA_VISIBLE_DEVICES={visible}: MIG instances ({token}) are not supported; "
                             "name whole GPUs (indices or GPU-UUIDs) or run without MIG")
        if token.isdigit():
            match = [gpus[int(token)]] if int(token) < len(gpus) else []
        else:
            match = [g for g in gpus if g.uuid and _uuid_key(g.uuid).startswith(_uuid_key(token))]
        if len(match) != 1:
            break  # unknown or ambiguous: CUDA stops at such an entry
        picked.append(match[0])
    return [Gpu(k, g.nvml_index, g.pci_bus_id, g.name, g.physical, g.uuid) for k, g in enumerate(picked)]


def _uuid_key(text: str) -> str:
    text = text.strip().lower()
    return text[4:] if text.startswith("gpu-") else text


def parse_workers(text: str | None, gpus: list[Gpu] | None = None) -> list[WorkerSpec]:
    """Clara syntax: ``0:0:1:1`` four workers (two per GPU), ``0,1:2,3`` two workers with two GPUs each
    (each job a 2-rank DDP job), ``cpu:cpu`` two CPU workers, ``cpu,cpu`` one CPU worker whose jobs run as
    two gloo ranks. A bare number N on a machine without GPUs means N CPU workers (with GPUs
    it is Clara's GPU index). Default (None): one worker per GPU found, else one CPU worker."""
    gpus = discover_gpus() if gpus is None else gpus
    if text is None or not text.strip():
        if gpus:
            return [WorkerSpec(k + 1, [g.index]) for k, g in enumerate(gpus)]
        return [WorkerSpec(1, [])]
    text = text.strip()
    if text.isdigit() and not gpus:
        count = int(text)
        if count < 1:
            raise UsageError(f"--workers {text}: need at least one worker")
        return [WorkerSpec(k + 1, []) for k in range(count)]
    workers = []
    for k, part in enumerate(text.split(":")):
        part = part.strip()
        tokens = [token.strip().lower() for token in part.split(",")]
        if tokens and all(token == "cpu" for token in tokens):
            workers.append(WorkerSpec(k + 1, [], cpu_ranks=len(tokens)))
            continue
        ids = []
        for token in part.split(","):
            token = token.strip()
            if not token.isdigit():
                raise UsageError(
                    f"--workers {text}: {token!r} is not a GPU index; expected e.g. 0:0:1:1, 0,1:2,3 or cpu:cpu")
            ids.append(int(token))
        if len(set(ids)) != len(ids):
            raise UsageError(f"--workers {text}: worker {k + 1} lists a GPU twice")
        missing = [i for i in ids if i >= len(gpus)]
        if missing:
            raise UsageError(
                f"--workers {text}: GPU {missing[0]} not found (NVML sees {len(gpus)} GPU(s)); "
                "use cpu:cpu or a worker count for CPU workers")
        workers.append(WorkerSpec(k + 1, ids))
    return workers


def job_environment(base: dict[str, str], worker: WorkerSpec, gpus: list[Gpu] | None = None,
                    threads: int | None = None) -> dict[str, str]:
    """The environment of a job process on ``worker``: its GPUs only, numbered in PCI bus order among
    all GPUs (so a CUDA_VISIBLE_DEVICES that restricted the orchestrator is translated, not reused).
    ``threads``: CPU threads for the job (OMP_NUM_THREADS, unless the user set it): jobs running side by
    side each taking every core oversubscribe the CPU (measured: up to 5x slower per job)."""
    env = dict(base)
    if threads is not None and "OMP_NUM_THREADS" not in base:
        env["OMP_NUM_THREADS"] = str(threads)
    env["CUDA_DEVICE_ORDER"] = "PCI_BUS_ID"
    by_index = {g.index: g for g in gpus or []}
    physical = [by_index[i].physical if i in by_index and by_index[i].physical is not None else i
                for i in worker.gpus]
    env["CUDA_VISIBLE_DEVICES"] = ",".join(map(str, physical))  # "" hides every GPU from a CPU job
    if worker.nproc > 1:  # one DDP rank per GPU / CPU slot (train/distributed.py)
        from mmar_automl.train.distributed import NPROC_ENV

        env[NPROC_ENV] = str(worker.nproc)
    return env


def gpu_processes(gpus: list[Gpu], indices: list[int]) -> set[int]:
    """Pids holding memory on the given GPUs (NVML; empty when NVML is unavailable)."""
    if not indices:
        return set()
    try:
        import pynvml

        pynvml.nvmlInit()
    except Exception:  # noqa: BLE001 - no NVML: nothing to wait for
        return set()
    pids: set[int] = set()
    try:
        by_index = {g.index: g for g in gpus}
        for i in indices:
            if i not in by_index:
                continue
            handle = pynvml.nvmlDeviceGetHandleByIndex(by_index[i].nvml_index)
            for getter in ("nvmlDeviceGetComputeRunningProcesses", "nvmlDeviceGetGraphicsRunningProcesses"):
                try:
                    pids.update(p.pid for p in getattr(pynvml, getter)(handle))
                except pynvml.NVMLError:
                    pass
    finally:
        pynvml.nvmlShutdown()
    return pids


def gpus_released(gpus: list[Gpu], indices: list[int], pids: set[int]) -> bool:
    """True when none of ``pids`` (a finished job's processes) still holds memory on these GPUs."""
    if not indices or not pids:
        return True
    return not (gpu_processes(gpus, indices) & pids)


def wait_gpus_released(gpus: list[Gpu], indices: list[int], pids: set[int], timeout: float = 60.0) -> bool:
    """Block until :func:`gpus_released` or ``timeout``; returns whether the memory was released."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if gpus_released(gpus, indices, pids):
            return True
        time.sleep(0.2)
    return gpus_released(gpus, indices, pids)


def threads_per_job(concurrent_jobs: int, cpu_count: int | None = None) -> int:
    """The CPU cores shared fairly among the jobs that may run at once (at least one each)."""
    cores = cpu_count or os.cpu_count() or 1
    return max(1, cores // max(1, concurrent_jobs))
