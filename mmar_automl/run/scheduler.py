"""Worker slots and the queue of recommendations waiting for one (decides *where* and *when*, not *what*).

A worker that ran a GPU job becomes free for its next job only once that job's processes no longer
hold memory on its GPUs (checked with NVML, with a cap so a stuck driver cannot block the search).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from mmar_automl.recommendation import Recommendation
from mmar_automl.run.workers import Gpu, WorkerSpec, gpus_released

GPU_RELEASE_WAIT_S = 60.0


@dataclass
class QueuedRec:
    recommendation: Recommendation
    attempt: int = 0
    retry_of: str | None = None


@dataclass
class Slot:
    spec: WorkerSpec
    seq: int = 0                              # jobs this worker has started (n in W<w>_<n>_J<j>)
    busy: str | None = None                   # job_uid running here
    release_pids: set[int] = field(default_factory=set)
    release_since: float = 0.0

    def ready(self, gpus: list[Gpu]) -> bool:
        if self.busy is not None:
            return False
        if not self.release_pids:
            return True
        if (time.monotonic() - self.release_since > GPU_RELEASE_WAIT_S
                or gpus_released(gpus, self.spec.gpus, self.release_pids)):
            self.release_pids = set()
            return True
        return False


class Scheduler:
    def __init__(self, workers: list[WorkerSpec], gpus: list[Gpu] | None = None, worker_seq: dict[int, int] | None = None,
                 admit: Callable[[Slot, list[Slot]], bool] | None = None):
        self.slots = [Slot(w, (worker_seq or {}).get(w.number, 0)) for w in workers]
        self.gpus = gpus or []
        self.queue: deque[QueuedRec] = deque()
        # May a free slot start a job now? (packing.Packer.admit for --jobs-per-gpu; None: always)
        self.admit = admit

    def enqueue(self, item: QueuedRec) -> None:
        self.queue.append(item)

    def free_slot(self) -> Slot | None:
        for slot in self.slots:
            if slot.ready(self.gpus) and (self.admit is None or self.admit(slot, self.slots)):
                return slot
        return None

    def occupy(self, slot: Slot, job_uid: str) -> int:
        """Mark ``slot`` busy; returns the worker's job sequence number n."""
        slot.busy = job_uid
        slot.seq += 1
        return slot.seq

    def release(self, job_uid: str, pids: set[int] | None = None) -> None:
        for slot in self.slots:
            if slot.busy == job_uid:
                slot.busy = None
                if slot.spec.gpus and pids:
                    slot.release_pids = set(pids)
                    slot.release_since = time.monotonic()

    @property
    def busy_count(self) -> int:
        return sum(1 for s in self.slots if s.busy is not None)
