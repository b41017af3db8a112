"""Several jobs per GPU: ``run --jobs-per-gpu N|auto``.

``N``: each worker becomes N worker slots on the same GPU(s) (Clara's ``--workers 0:0`` written short).
``auto``: up to ``AUTO_MAX_PER_GPU`` slots per worker, and a slot may start a job on a GPU only where it
fits: NVML's free memory, minus what the jobs already there may still grow into, minus a margin, must
exceed the peak memory measured on that GPU by earlier jobs of the run (each job reports its own peak,
``peak_gpu_memory_bytes`` in its metrics lines and train_stats.json). Before any job has finished on a
GPU, it runs one job. A job that fails with CUDA out-of-memory while it shared its GPU backs the GPU
off (one job fewer there for the rest of the run) and is re-run; that retry does not count against
``--max-retries``. A job that runs out of memory alone on its GPU is an ordinary failure.

CPU workers: ``N`` gives each CPU worker slot N jobs; ``auto`` has nothing to measure and keeps one.

The policy (:class:`PackingPolicy`) is pure: it sees GPU readings and job records, so it is tested with
fake NVML readings. :class:`Packer` connects it to the engine: the scheduler asks ``admit``, the engine
asks ``job_ended`` whether an OOM failure is re-run, and as a handler it follows the jobs' metrics lines.
NVML only, never torch.cuda (DESIGN.md section 9).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mmar_automl.errors import UsageError
from mmar_automl.handlers.base import Handler
from mmar_automl.run.outputs import JobOutputs

log = logging.getLogger("mmar_automl.run.packing")

AUTO = "auto"
AUTO_MAX_PER_GPU = 8
MIB = 2**20
CONTEXT_BYTES = 640 * MIB      # CUDA context + cuDNN/cuBLAS handles: outside torch's max_memory_reserved
MIN_MARGIN_BYTES = 1024 * MIB  # kept free on every GPU (fragmentation, the driver, a validation pass)
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


@dataclass
class PackingPolicy:
    mode: Mode = AUTO
    max_per_gpu: int = AUTO_MAX_PER_GPU
    context_bytes: int = CONTEXT_BYTES
    min_margin_bytes: int = MIN_MARGIN_BYTES
    margin_fraction: float = MARGIN_FRACTION
    peaks: dict[int, int] = field(default_factory=dict)   # GPU -> highest peak of a finished job there
    caps: dict[int, int] = field(default_factory=dict)    # GPU -> jobs allowed after an OOM back-off

    @property
    def slots_per_worker(self) -> int:
        return self.max_per_gpu if self.mode == AUTO else int(self.mode)

    def margin(self, total: int) -> int:
        return max(self.min_margin_bytes, int(total * self.margin_fraction))

    def need(self, gpu: int) -> int | None:
        """Memory one more job takes on ``gpu``: the measured peak plus its CUDA context."""
        peak = self.peaks.get(gpu)
        return None if peak is None else peak + self.context_bytes

    def admit(self, gpu: int, running: list[Resident], reading: Reading | None) -> bool:
        """May one more job start on ``gpu`` where ``running`` jobs already are?"""
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
        growth = sum(max(0, need - ((r.peak + self.context_bytes) if r.peak and r.settled else 0)) for r in running)
        return reading.free - growth - self.margin(reading.total) >= need

    def job_ended(self, gpu: int, peak: int | None, oom: bool, sharing: int) -> bool:
        """Learn from a job that ended on ``gpu`` with ``sharing`` jobs there (itself included). Returns
        whether an OOM failure is to be re-run (it shared the GPU; the GPU is now backed off)."""
        if peak:
            self.peaks[gpu] = max(self.peaks.get(gpu, 0), int(peak))
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

class Packer(Handler):
    """Connects a :class:`PackingPolicy` to a run: ``admit`` for the scheduler, ``job_ended`` for the
    engine's retry decision, and (as a handler) the jobs' metrics lines for their peaks."""

    def __init__(self, policy: PackingPolicy, gpus: list[Any] | None = None,
                 reader: Callable[[int], Reading | None] | None | bool = True):
        self.policy = policy
        self.nvml_of = {g.index: g.nvml_index for g in gpus or []}
        self._reader = nvml_reader() if reader is True else (reader or None)
        self.residents: dict[str, Resident] = {}
        self.forgiven: set[str] = set()   # job uids re-run after an OOM back-off: not counted as failures
        self.scheduler: Any = None

    # the scheduler's question
    def admit(self, slot: Any, slots: list[Any]) -> bool:
        for gpu in slot.spec.gpus:
            running = [self._resident(s.busy) for s in slots if s.busy is not None and gpu in s.spec.gpus]
            if not self.policy.admit(gpu, running, self.read(gpu)):
                return False
        return True

    def read(self, gpu: int) -> Reading | None:
        if self._reader is None:
            return None
        return self._reader(self.nvml_of.get(gpu, gpu))

    def _resident(self, uid: str) -> Resident:
        return self.residents.setdefault(uid, Resident(uid))

    # the engine's question, before it records the end of ``job``
    def job_ended(self, job: Any) -> bool:
        """Learn the job's peak; True when it failed with OOM on a shared GPU and is to be re-run."""
        resident = self.residents.pop(job.job_uid, None)
        peak = _peak_of(JobOutputs.of(job.folder)) if job.folder else None
        peak = max(peak or 0, (resident.peak if resident else 0) or 0) or None
        failed = str(getattr(job.state, "value", job.state)).upper() == "FAILED"
        oom = failed and is_oom(job.reason, job.log_tail)
        retry = False
        for gpu in job.gpus:
            sharing = sum(1 for s in (self.scheduler.slots if self.scheduler else [])
                          if s.busy is not None and gpu in s.spec.gpus)
            retry = self.policy.job_ended(gpu, peak, oom, max(sharing, 1)) or retry
        if retry:
            self.forgiven.add(job.job_uid)
        return retry

    # handler: follow the running jobs' metrics lines
    def job_metrics(self, ctx: Any) -> None:
        job = ctx.get_prop("JOB")
        if job is None:
            return
        resident = self._resident(job.job_uid)
        for record in ctx.get_prop("METRICS") or []:
            peak = record.get("peak_gpu_memory_bytes")
            if isinstance(peak, int):
                resident.peak = max(resident.peak or 0, peak)
            if record.get("kind") in ("train", "validation"):
                resident.settled = True


def _peak_of(outputs: JobOutputs) -> int | None:
    stats = outputs.stats()
    peak = stats.get("peak_gpu_memory_bytes") if stats is not None else None
    return peak if isinstance(peak, int) else None


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
            out.append(WorkerSpec(len(out) + 1, list(w.gpus)))
    return out


def install(engine: Any, mode: Mode, reader: Callable[[int], Reading | None] | None | bool = True) -> Packer | None:
    """Give ``engine`` (built by runsetup.prepare_run, not yet run) ``mode`` jobs per GPU. Returns the Packer
    (None for 1). Also caps each job's CPU threads so that packed jobs do not fight over the cores."""
    if mode == 1:
        return None
    from mmar_automl.context import ContextKey
    from mmar_automl.run.scheduler import Scheduler

    policy = PackingPolicy(mode=mode)
    has_gpu = any(w.gpus for w in engine.workers)
    per_worker = policy.slots_per_worker if (has_gpu or mode != AUTO) else 1
    workers = expand_workers(engine.workers, per_worker)
    engine.workers = workers
    resume = getattr(engine, "resume", None)
    engine.scheduler = Scheduler(workers, engine.gpus, resume.worker_seq() if resume else None)
    engine.ctx.set_prop(ContextKey.NUM_WORKERS, len(workers))
    engine.ctx.set_prop("WORKERS", [w.label for w in workers])
    packer = Packer(policy, engine.gpus, reader=reader if has_gpu else None)
    packer.scheduler = engine.scheduler
    engine.scheduler.admit = packer.admit
    engine.packing = packer
    engine.handlers.append(packer)
    return packer  # the engine shares the CPU cores among all slots (workers.threads_per_job)

