"""The one writer: a background thread that spools every operation and sends them in batches.

``submit`` only puts the operation on a queue, so a slow or dead server never slows the search. The
thread appends what arrived to the spool (one fsync per batch), then applies everything pending
through the sink; on success it acknowledges it in the spool, on a transient failure it keeps it and
tries again every ``retry_interval`` seconds (a server that comes back is caught up automatically).
Whatever is still pending when the writer closes stays in the spool for ``sync`` or the next resume.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from mmar_automl.tracking.spool import Spool
from mmar_automl.tracking.sync import TransientError, is_transient

log = logging.getLogger("mmar_automl.mlflow")


class Sink(Protocol):
    def apply(self, ops: list[dict[str, Any]]) -> None: ...


class TrackingWriter:
    def __init__(self, spool: Spool, sink_factory: Callable[[], Sink], *, batch_wait: float = 0.2,
                 retry_interval: float = 5.0, max_batch: int = 500):
        self.spool = spool
        self._sink_factory = sink_factory
        self._sink: Sink | None = None
        self.batch_wait = batch_wait
        self.retry_interval = retry_interval
        self.max_batch = max_batch
        self._queue: queue.SimpleQueue[dict[str, Any] | None] = queue.SimpleQueue()
        self._pending: list[dict[str, Any]] = []
        self._next_try = 0.0
        self._idle = threading.Condition()
        self._busy = 0          # operations submitted and not yet acknowledged or left in the spool
        self._stop = False
        self._thread: threading.Thread | None = None
        self.online: bool | None = None   # None until the first attempt
        self.last_error: str | None = None
        self.sent = 0

    # -- API (any thread) ------------------------------------------------------------------------
    def start(self) -> None:
        self._pending = self.spool.pending()  # left by a crash or an outage: replayed first
        with self._idle:
            self._busy += len(self._pending)
        self._thread = threading.Thread(target=self._loop, name="mmar-automl-mlflow", daemon=True)
        self._thread.start()

    def submit(self, op: dict[str, Any]) -> None:
        """Queue one operation; returns at once and never raises."""
        with self._idle:
            self._busy += 1
        self._queue.put(op)

    def flush(self, timeout: float) -> bool:
        """Try to send everything now; wait at most ``timeout`` s. True when nothing is pending."""
        deadline = time.monotonic() + timeout
        self._next_try = 0.0
        self._queue.put({"op": "_wake"})
        with self._idle:
            while self._busy > 0 and self._thread is not None and self._thread.is_alive():
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._idle.wait(min(left, 0.5))
            return self._busy <= 0

    def close(self, timeout: float = 30.0) -> int:
        """Flush (at most ``timeout`` s), stop the thread, release the spool. Returns the writes left pending."""
        self.flush(timeout)
        self._stop = True
        self._queue.put(None)
        if self._thread is not None:
            self._thread.join(timeout=max(5.0, self.batch_wait * 4))
        left = self.spool.pending_count
        if left == 0:
            self.spool.compact()
        self.spool.unlock()
        return left

    @property
    def pending_count(self) -> int:
        return self._busy

    # -- the thread --------------------------------------------------------------------------------
    def _loop(self) -> None:
        while True:
            ops, stop = self._drain()
            try:
                if ops:
                    self._pending.extend(self.spool.append(ops))
                    self._settle(0)  # received ops are now counted through _pending
                if self._pending and time.monotonic() >= self._next_try:
                    self._send()
            except Exception as err:  # noqa: BLE001 - the writer must never die
                log.warning("MLflow writer error: %s", err)
                self._next_try = time.monotonic() + self.retry_interval
            if stop or self._stop:
                return

    def _drain(self) -> tuple[list[dict[str, Any]], bool]:
        """Block for the first operation (or until a retry is due), then take whatever else is queued.
        Returns the operations and whether close() asked the thread to stop."""
        wait = max(0.05, self._next_try - time.monotonic()) if self._pending else None
        try:
            items = [self._queue.get(timeout=wait)]
        except queue.Empty:
            return [], False
        if items[0] is not None:
            time.sleep(self.batch_wait)  # let a burst (4 jobs ending at once) gather
        while True:
            try:
                items.append(self._queue.get_nowait())
            except queue.Empty:
                break
        ops = [i for i in items if i is not None and i.get("op") != "_wake"]
        return ops, any(i is None for i in items)

    def _send(self) -> None:
        if self._sink is None:
            try:
                self._sink = self._sink_factory()
            except Exception as err:  # noqa: BLE001
                if not is_transient(err):
                    log.warning("MLflow tracking unavailable: %s", err)
                self._offline(err)
                return
        while self._pending:
            batch = self._pending[: self.max_batch]
            try:
                self._sink.apply(batch)
            except TransientError as err:
                self._offline(err)
                return
            self.spool.ack(batch[-1]["seq"])
            del self._pending[: len(batch)]
            self.sent += len(batch)
            self.online = True
            self._settle(-len(batch))

    def _offline(self, err: BaseException) -> None:
        if self.online is not False:
            log.warning("MLflow unreachable, writes go to the spool %s: %s", self.spool.path, err)
        self.online = False
        self.last_error = str(err)
        self._next_try = time.monotonic() + self.retry_interval

    def _settle(self, delta: int) -> None:
        with self._idle:
            self._busy += delta
            self._idle.notify_all()
