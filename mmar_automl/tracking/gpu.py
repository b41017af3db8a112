"""Utilisation and memory of one job's own GPUs, read with NVML by the orchestrator.

MLflow's built-in system metrics log every GPU of the host, which is wrong when four jobs share a
machine; here each running job gets only the GPUs it was given. No driver
(``NVMLError_LibraryNotFound``) means "no GPU": the sampler is then off, never an error. NVML is never
touched through torch (a CUDA context in the orchestrator breaks forked jobs, DESIGN.md section 9). A job's GPUs are named by their CUDA index (what the user
wrote in ``--workers``) and read through their NVML index (the engine's ``Gpu.nvml_index``, matched by
PCI bus id): NVML ignores CUDA_VISIBLE_DEVICES.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger("mmar_automl.mlflow")

Reading = dict[str, float]            # metric name -> value for one GPU
Reader = Callable[[int], Reading]     # NVML index -> reading


def open_nvml() -> Reader | None:
    """A reader of one GPU's utilisation and memory, or None where there is no NVML (no GPU, no driver)."""
    try:
        import pynvml  # the nvidia-ml-py package
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as err:  # NVMLError_LibraryNotFound, _DriverNotLoaded ...: no GPU here
        log.debug("NVML unavailable: %s", err)
        return None

    def read(index: int) -> Reading:
        handle = pynvml.nvmlDeviceGetHandleByIndex(index)
        util = pynvml.nvmlDeviceGetUtilizationRates(handle)
        mem = pynvml.nvmlDeviceGetMemoryInfo(handle)
        return {"utilization_pct": float(util.gpu), "memory_used_mb": mem.used / 2**20,
                "memory_pct": 100.0 * mem.used / mem.total if mem.total else 0.0}

    return read


def gpu_metrics(gpus: dict[int, int], reader: Reader, step: int, timestamp_ms: int) -> list[list[Any]]:
    """Metric tuples ``[key, value, step, ts]`` for each of a job's GPUs (``{CUDA index: NVML index}``),
    e.g. ``gpu1/utilization_pct``. A GPU that cannot be read is left out (it may have fallen off the
    bus; the job will tell)."""
    out = []
    for index, nvml_index in gpus.items():
        try:
            reading = reader(nvml_index)
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
        self._jobs: dict[str, tuple[dict[int, int], int]] = {}  # key -> ({CUDA: NVML index}, samples taken)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def active(self) -> bool:
        return self._reader is not None

    def add(self, key: str, gpus: dict[int, int]) -> None:
        """Sample ``gpus`` (``{CUDA index: NVML index}``) for the job ``key`` until :meth:`remove`."""
        if not self.active or not gpus:
            return
        with self._lock:
            self._jobs[key] = (dict(gpus), 0)
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
        for key, (gpus, n) in jobs:
            metrics = gpu_metrics(gpus, self._reader, n, now_ms)
            with self._lock:
                if key in self._jobs:
                    self._jobs[key] = (gpus, n + 1)
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
