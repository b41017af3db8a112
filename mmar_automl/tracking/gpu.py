"""Utilisation and memory of one job's own GPUs, read with NVML by the orchestrator.

MLflow's built-in system metrics log every GPU of the host, which is wrong when four jobs share a
machine; here each running job gets only the GPUs it was given. No driver
(``NVMLError_LibraryNotFound``) means "no GPU": the sampler is then off, never an error. NVML is never
touched through torch (a CUDA context in the orchestrator breaks forked jobs, DESIGN.md section 9). A job's GPUs are named by their CUDA index (what the user
wrote in ``--workers``) and read through their NVML index (the engine's ``Gpu.nvml_index``, matched by
PCI bus id): NVML ignores CUDA_VISIBLE_DEVICES.

Several jobs may share a GPU (``run --jobs-per-gpu``), so a job registered with its folder gets its own
numbers: ``utilization_pct`` is the SM utilisation of the job's processes (NVML's per-process samples) and
``memory_used_mb`` the memory they hold (the job's processes are those on the GPU whose working directory
is the job's folder, as the engine finds them); the whole device's numbers are ``device_utilization_pct``
and ``device_memory_used_mb``. Without a folder (or where NVML cannot tell processes apart, e.g. a
container that does not share the host's pids) only the device's numbers are logged, under those names.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger("mmar_automl.mlflow")

Reading = dict[str, float]            # metric name -> value for one GPU
Reader = Callable[..., Reading]       # (NVML index[, job folder]) -> reading


def open_nvml() -> Reader | None:
    """A reader of one GPU's utilisation and memory, or None where there is no NVML (no GPU, no driver).
    ``read(index)``: the device's numbers; ``read(index, folder)``: also those of the processes of the job
    running in ``folder``."""
    try:
        import pynvml  # the nvidia-ml-py package
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as err:  # NVMLError_LibraryNotFound, _DriverNotLoaded ...: no GPU here
        log.debug("NVML unavailable: %s", err)
        return None
    last_seen: dict[int, int] = {}  # NVML index -> timestamp (us) of the newest process sample read

    def read(index: int, folder: str | None = None) -> Reading:
        handle = pynvml.nvmlDeviceGetHandleByIndex(index)
        util = pynvml.nvmlDeviceGetUtilizationRates(handle)
        mem = pynvml.nvmlDeviceGetMemoryInfo(handle)
        reading = {"device_utilization_pct": float(util.gpu), "device_memory_used_mb": mem.used / 2**20,
                   "device_memory_pct": 100.0 * mem.used / mem.total if mem.total else 0.0}
        if folder is None:
            return reading
        procs = {p.pid: p for p in pynvml.nvmlDeviceGetComputeRunningProcesses(handle)}
        ours = processes_in(folder, set(procs))
        if not ours:
            return reading  # not (yet) on this GPU, or pids NVML reports that this namespace cannot see
        try:
            samples = pynvml.nvmlDeviceGetProcessUtilization(handle, last_seen.get(index, 0))
        except pynvml.NVMLError:  # NotFound: no sample since the last read; NotSupported: MIG mode
            samples = []
        if samples:
            last_seen[index] = max(sample.timeStamp for sample in samples)
        reading["utilization_pct"] = job_sm_utilization(samples, ours)
        reading["memory_used_mb"] = sum(procs[pid].usedGpuMemory or 0 for pid in ours) / 2**20
        return reading

    return read


def processes_in(folder: str, pids: set[int]) -> set[int]:
    """Those of ``pids`` whose working directory is ``folder`` (a job and its loader workers run there)."""
    target = os.path.realpath(folder)
    found = set()
    for pid in pids:
        try:
            if os.readlink(f"/proc/{pid}/cwd") == target:
                found.add(pid)
        except OSError:  # gone, another user's, or a pid of another namespace
            continue
    return found


def job_sm_utilization(samples: list[Any], pids: set[int]) -> float:
    """The SM utilisation (%) of ``pids`` from NVML process samples: per sampling instant, the sum over the
    job's processes; then the mean over the instants."""
    by_time: dict[int, float] = {}
    for sample in samples:
        if sample.pid in pids:
            by_time[sample.timeStamp] = by_time.get(sample.timeStamp, 0.0) + float(sample.smUtil)
    return min(100.0, sum(by_time.values()) / len(by_time)) if by_time else 0.0


def gpu_metrics(gpus: dict[int, int], reader: Reader, step: int, timestamp_ms: int,
                folder: str | None = None) -> list[list[Any]]:
    """Metric tuples ``[key, value, step, ts]`` for each of a job's GPUs (``{CUDA index: NVML index}``),
    e.g. ``gpu1/utilization_pct``; ``folder``: the job's folder, for its own processes' numbers. A GPU that
    cannot be read is left out (it may have fallen off the bus; the job will tell)."""
    out = []
    for index, nvml_index in gpus.items():
        try:
            reading = reader(nvml_index) if folder is None else reader(nvml_index, folder)
        except Exception as err:  # noqa: BLE001 - an NVML error must not stop tracking
            log.debug("NVML read of GPU %s failed: %s", index, err)
            continue
        out.extend([f"gpu{index}/{name}", float(value), step, timestamp_ms] for name, value in reading.items())
    return out


class GpuSampler:
    """Every ``interval`` s, calls ``emit(job_key, metrics)`` for each registered job with GPUs.

    ``reader`` defaults to NVML; where there is none the sampler does nothing (``active`` is False)."""

    def __init__(self, emit: Callable[[str, list[list[Any]]], None], interval: float = 10.0,
                 reader: Reader | None | bool = True):
        self._emit = emit
        self.interval = interval
        self._reader: Reader | None = open_nvml() if reader is True else (reader or None)
        self._jobs: dict[str, tuple[dict[int, int], int, str | None]] = {}  # key -> (GPUs, samples taken, folder)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def active(self) -> bool:
        return self._reader is not None

    def add(self, key: str, gpus: dict[int, int], folder: str | None = None) -> None:
        """Sample ``gpus`` (``{CUDA index: NVML index}``) for the job ``key`` until :meth:`remove`; with the
        job's ``folder``, its own processes' numbers too (jobs may share a GPU)."""
        if not self.active or not gpus:
            return
        with self._lock:
            self._jobs[key] = (dict(gpus), 0, folder)
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="mmar-automl-gpu", daemon=True)
            self._thread.start()

    def remove(self, key: str) -> None:
        with self._lock:
            self._jobs.pop(key, None)

    def sample_once(self, now_ms: int) -> None:
        """Take one sample of every registered job (the thread calls this; tests may too)."""
        if self._reader is None:
            return
        with self._lock:
            jobs = list(self._jobs.items())
        for key, (gpus, n, folder) in jobs:
            metrics = gpu_metrics(gpus, self._reader, n, now_ms, folder)
            with self._lock:
                if key in self._jobs:
                    self._jobs[key] = (gpus, n + 1, folder)
            if metrics:
                self._emit(key, metrics)

    def close(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        import time

        while not self._stop.wait(self.interval):
            try:
                self.sample_once(int(time.time() * 1000))
            except Exception as err:  # noqa: BLE001
                log.debug("GPU sampling failed: %s", err)
