"""Several jobs per GPU: ``run --jobs-per-gpu N|auto``.

``N``: each worker becomes N worker slots on the same GPU(s) (Clara's ``--workers 0:0`` written short).
``auto``: up to ``AUTO_MAX_PER_GPU`` slots per worker, and a slot may start a job on a GPU only where it
fits: NVML's free memory, minus what the jobs already there may still grow into, minus a margin, must
exceed the peak memory measured on that GPU by earlier jobs of the run (each job reports its own peak,
``peak_gpu_memory_bytes`` in its metrics lines and train_stats.json) plus its CUDA context, and the host's
available memory must hold the run's highest host peak (``peak_host_memory_bytes``: each job keeps its own
dataset cache). Before any job has finished on a GPU, it runs one job. A job that fails with CUDA out-of-memory while it shared its GPU backs the GPU
off (one job fewer there for the rest of the run) and is re-run; that retry does not count against
``--max-retries``. A job that runs out of memory alone on its GPU is an ordinary failure.

CPU workers: ``N`` gives each CPU worker slot N jobs; ``auto`` has nothing to measure and keeps one.

The policy (:class:`PackingPolicy`) is pure: it sees GPU readings and job records, so it is tested with
fake NVML readings. :class:`Packer` connects it to a run: setup builds it from the RunPlan and gives it to
the engine's constructor; the scheduler asks ``admit``, the engine asks ``job_ended`` whether an OOM
failure is re-run and passes it each running job's metrics lines (``job_metrics``).
NVML only, never torch.cuda (DESIGN.md section 9).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from dataclasses import dataclass, field
from typing import Any

from mmar_automl.errors import UsageError
from mmar_automl.run.outputs import JobOutputs

log = logging.getLogger("mmar_automl.run.packing")

AUTO = "auto"
AUTO_MAX_PER_GPU = 8
MIB = 2**20
# CUDA context + loaded cuDNN/cuBLAS kernels, outside torch's max_memory_reserved, until a job of the run has
# measured its own (``gpu_context_bytes``: NVML's memory of the process minus torch's reserved). 640 MiB was
# low for Hopper with CUDA 12 and cuDNN 9, whose lazily loaded kernels add hundreds of MiB to the context.
CONTEXT_BYTES = 1536 * MIB
MIN_MARGIN_BYTES = 1024 * MIB  # kept free on every GPU (fragmentation, the driver, a validation pass)
# Host RAM: a job's dataset caches (CacheDataset) live in its own process; N packed jobs hold N copies.
HOST_MARGIN_BYTES = 2048 * MIB
MARGIN_FRACTION = 0.05
OOM_MARKERS = ("out of memory", "outofmemoryerror", "cudnn_status_alloc_failed", "cublas_status_alloc_failed",
               "cuda error: out of memory")

Mode = int | str  # a number of jobs per GPU, or AUTO


def parse_jobs_per_gpu(text: str | int | None) -> Mode:
    """``--jobs-per-gpu``: a positive integer or ``auto`` (default 1)."""
    if text is None:
        return 1
    value = str(text).strip().lower()
    if value == AUTO:
        return AUTO
    if value.isdigit() and int(value) >= 1:
        return int(value)
    raise UsageError(f"--jobs-per-gpu {text}: expected a positive integer or auto")


def is_oom(reason: str | None, log_tail: str | None = None) -> bool:
    """Whether a failed job ran out of GPU memory (the trainer's reason, or the log tail of a crash)."""
    text = f"{reason or ''}\n{log_tail or ''}".lower()
    return any(marker in text for marker in OOM_MARKERS)


@dataclass
class Reading:
    """One GPU's memory as NVML reports it."""

    free: int
    total: int


@dataclass
class Resident:
    """A job running on a GPU, as the policy sees it."""

    uid: str
    peak: int | None = None    # the peak it reported so far (bytes; None until its first metrics line)
    settled: bool = False      # reported at least one training epoch: its memory is (nearly) all taken
    host_peak: int | None = None  # its peak host memory so far (peak_host_memory_bytes)
    context: int | None = None    # its CUDA context as it measured it (gpu_context_bytes)


@dataclass
class PackingPolicy:
    mode: Mode = AUTO
    max_per_gpu: int = AUTO_MAX_PER_GPU
    context_bytes: int = CONTEXT_BYTES
    min_margin_bytes: int = MIN_MARGIN_BYTES
    margin_fraction: float = MARGIN_FRACTION
    host_margin_bytes: int = HOST_MARGIN_BYTES
    peaks: dict[int, int] = field(default_factory=dict)   # GPU -> highest peak of a finished job there
    caps: dict[int, int] = field(default_factory=dict)    # GPU -> jobs allowed after an OOM back-off
    contexts: dict[int, int] = field(default_factory=dict)  # GPU -> largest context a job measured there
    host_peak: int | None = None                          # highest host memory peak of a finished job

    @property
    def slots_per_worker(self) -> int:
        return self.max_per_gpu if self.mode == AUTO else int(self.mode)

    def margin(self, total: int) -> int:
        return max(self.min_margin_bytes, int(total * self.margin_fraction))

    def need(self, gpu: int) -> int | None:
        """Memory one more job takes on ``gpu``: the measured peak plus its CUDA context (measured by a job
        of this run where one did, else ``context_bytes``)."""
        peak = self.peaks.get(gpu)
        return None if peak is None else peak + self.contexts.get(gpu, self.context_bytes)

    def host_fits(self, running: list[Resident], host: Reading | None) -> bool:
        """Does the host's available memory hold one more job's peak, after the running ones grew to theirs?"""
        if host is None or self.host_peak is None:
            return True  # nothing measured (or no /proc/meminfo): GPU memory decides alone
        need = self.host_peak
        growth = sum(max(0, need - (r.host_peak or 0)) for r in running)
        return host.free - growth - self.host_margin_bytes >= need

    def admit(self, gpu: int, running: list[Resident], reading: Reading | None, host: Reading | None = None) -> bool:
        """May one more job start on ``gpu`` where ``running`` jobs already are? ``host``: the host's
        available memory (a second job on a GPU must fit there too)."""
        if not running:
            return True                                  # every GPU always runs one job
        if len(running) >= self.caps.get(gpu, self.slots_per_worker):
            return False                                 # backed off after an OOM
        if self.mode != AUTO:
            return True                                  # a fixed N: the slots are the limit
        need = self.need(gpu)
        if need is None or reading is None:
            return False                                 # nothing measured yet, or no NVML: one job
        # Jobs that have not reached their peak yet will still take memory that NVML now calls free.
        context = self.contexts.get(gpu, self.context_bytes)
        growth = sum(max(0, need - ((r.peak + context) if r.peak and r.settled else 0)) for r in running)
        return reading.free - growth - self.margin(reading.total) >= need and self.host_fits(running, host)

    def job_ended(self, gpu: int, peak: int | None, oom: bool, sharing: int, host_peak: int | None = None,
                  context: int | None = None) -> bool:
        """Learn from a job that ended on ``gpu`` with ``sharing`` jobs there (itself included): its GPU peak,
        host peak and measured CUDA context. Returns whether an OOM failure is to be re-run (it shared the
        GPU; the GPU is now backed off)."""
        if peak:
            self.peaks[gpu] = max(self.peaks.get(gpu, 0), int(peak))
        if host_peak:
            self.host_peak = max(self.host_peak or 0, int(host_peak))
        if context:
            self.contexts[gpu] = max(self.contexts.get(gpu, 0), int(context))
        if not oom or sharing <= 1:
            return False
        cap = max(1, min(self.caps.get(gpu, self.slots_per_worker), sharing - 1))
        self.caps[gpu] = cap
        log.warning("GPU %s ran out of memory with %s jobs: at most %s from now on; the job is re-run", gpu, sharing, cap)
        return True


# -- NVML --------------------------------------------------------------------------------------------

def nvml_reader() -> Callable[[int], Reading | None] | None:
    """A reader of free/total memory by NVML index, or None where there is no NVML."""
    try:
        import pynvml

        pynvml.nvmlInit()
    except Exception:  # noqa: BLE001 - ImportError, NVMLError_LibraryNotFound ...: no GPU here
        return None

    def read(nvml_index: int) -> Reading | None:
        try:
            info = pynvml.nvmlDeviceGetMemoryInfo(pynvml.nvmlDeviceGetHandleByIndex(nvml_index))
        except pynvml.NVMLError as err:
            log.debug("NVML read of GPU %s failed: %s", nvml_index, err)
            return None
        return Reading(int(info.free), int(info.total))

    return read


# -- the engine's side ---------------------------------------------------------------------------------

class Packer:
    """Connects a :class:`PackingPolicy` to a run: ``admit`` for the scheduler, ``job_ended`` for the
    engine's retry decision, ``job_metrics`` for the running jobs' peaks."""

    def __init__(self, policy: PackingPolicy, gpus: list[Any] | None = None,
                 reader: Callable[[int], Reading | None] | None | bool = True):
        self.policy = policy
        self.nvml_of = {g.index: g.nvml_index for g in gpus or []}
        self._reader = nvml_reader() if reader is True else (reader or None)
        self.residents: dict[str, Resident] = {}

    # the scheduler's question
    def admit(self, slot: Any, slots: list[Any]) -> bool:
        for gpu in slot.spec.gpus:
            running = [self._resident(s.busy) for s in slots if s.busy is not None and gpu in s.spec.gpus]
            if not self.policy.admit(gpu, running, self.read(gpu), host_memory() if running else None):
                return False
        return True

    def concurrent_jobs(self, slots: list[Any]) -> int:
        """How many jobs share the CPU cores when one more starts (for its OMP_NUM_THREADS): every slot with a
        fixed N; with ``auto`` the slots are only a ceiling, so the jobs running plus this one, and at least
        one per worker GPU set (the first jobs of a run start side by side, one per GPU)."""
        if self.policy.mode != AUTO:
            return len(slots)
        busy = sum(1 for s in slots if s.busy is not None)
        return max(busy + 1, len({tuple(s.spec.gpus) for s in slots}))

    def read(self, gpu: int) -> Reading | None:
        if self._reader is None:
            return None
        return self._reader(self.nvml_of.get(gpu, gpu))

    def _resident(self, uid: str) -> Resident:
        return self.residents.setdefault(uid, Resident(uid))

    # the engine's question, before it records the end of ``job`` (its slot is still busy)
    def job_ended(self, job: Any, slots: list[Any]) -> bool:
        """Learn the job's peaks; True when it failed with OOM on a shared GPU and is to be re-run (the
        engine journals such a failure as forgiven: it does not count against --max-retries)."""
        resident = self.residents.pop(job.job_uid, None) or Resident(job.job_uid)
        stats = (JobOutputs.of(job.folder).stats() if job.folder else None) or {}
        peak = max(_int(stats.get("peak_gpu_memory_bytes")) or 0, resident.peak or 0) or None
        host_peak = max(_int(stats.get("peak_host_memory_bytes")) or 0, resident.host_peak or 0) or None
        context = max(_int(stats.get("gpu_context_bytes")) or 0, resident.context or 0) or None
        failed = str(getattr(job.state, "value", job.state)).upper() == "FAILED"
        oom = failed and is_oom(job.reason, job.log_tail)
        retry = False
        for gpu in job.gpus:
            sharing = sum(1 for s in slots if s.busy is not None and gpu in s.spec.gpus)
            retry = self.policy.job_ended(gpu, peak, oom, max(sharing, 1), host_peak, context) or retry
        return retry

    # the running jobs' metrics lines, as the engine reads them
    def job_metrics(self, job: Any, records: list[dict[str, Any]]) -> None:
        resident = self._resident(job.job_uid)
        for record in records:
            peak = _int(record.get("peak_gpu_memory_bytes"))
            if peak is not None:
                resident.peak = max(resident.peak or 0, peak)
            host_peak = _int(record.get("peak_host_memory_bytes"))
            if host_peak is not None:
                resident.host_peak = max(resident.host_peak or 0, host_peak)
            context = _int(record.get("gpu_context_bytes"))
            if context is not None:
                resident.context = max(resident.context or 0, context)
            if record.get("kind") in ("train", "validation"):
                resident.settled = True


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def host_memory() -> Reading | None:
    """The host's available and total memory (/proc/meminfo: MemAvailable, MemTotal), or None."""
    try:
        fields = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines() if ":" in line)
        return Reading(int(fields["MemAvailable"].split()[0]) * 1024, int(fields["MemTotal"].split()[0]) * 1024)
    except (OSError, KeyError, ValueError, IndexError):
        return None


def expand_workers(workers: list[Any], per_worker: int) -> list[Any]:
    """Each worker repeated ``per_worker`` times (same GPUs), renumbered 1..n in order. Packing shares one
    GPU between one-GPU jobs; a worker whose jobs are multi-rank DDP jobs (several GPUs, ``cpu,cpu``)
    is refused rather than placed silently wrong (docs/gpu.md)."""
    from mmar_automl.run.workers import WorkerSpec

    multi = next((w for w in workers if w.nproc > 1), None)
    if per_worker > 1 and multi is not None:
        raise UsageError(f"--jobs-per-gpu packs one-process jobs onto a GPU; worker {multi.number} ({multi.label}) "
                         f"runs {multi.nproc}-rank DDP jobs: use --jobs-per-gpu 1 with multi-GPU workers")
    out = []
    for w in workers:
        for _ in range(per_worker):
            out.append(WorkerSpec(len(out) + 1, list(w.gpus), cpu_ranks=w.cpu_ranks))
    return out


def slots_per_worker(mode: Mode, has_gpu: bool) -> int:
    """Worker slots per ``--workers`` worker: N, or for ``auto`` the most a GPU may hold (CPU workers have
    nothing to measure: one)."""
    if mode == AUTO:
        return AUTO_MAX_PER_GPU if has_gpu else 1
    return int(mode)


def make_packer(mode: Mode, gpus: list[Any], has_gpu: bool,
                reader: Callable[[int], Reading | None] | None | bool = True) -> Packer | None:
    """The Packer of a run with ``mode`` jobs per GPU (None for 1: nothing to decide)."""
    if mode == 1:
        return None
    return Packer(PackingPolicy(mode=mode), gpus, reader=reader if has_gpu else None)
