"""The one writer: background threads that spool every operation and send them in batches.

``submit`` only puts the operation on a queue, so a slow or dead server never slows the search. A
spooler thread appends what arrived to the spool (one fsync per burst), so an operation is durable
within ~``batch_wait`` s even while a send is stuck; a sender thread applies everything pending
through the sink, acknowledges it in the spool on success, and on a transient failure keeps it and
tries again every ``retry_interval`` s (a server that comes back is caught up automatically).
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
        self._pending: list[dict[str, Any]] = []   # spooled, not yet acknowledged (guarded by _cond)
        self._cond = threading.Condition()
        self._spool_lock = threading.Lock()
        self._submitted = 0      # submitted and not yet acknowledged
        self._next_try = 0.0
        self._stopping = False
        self._threads: list[threading.Thread] = []
        self.online: bool | None = None   # None until the first attempt
        self._failures = 0       # failed send attempts so far (guarded by _cond)
        self.last_error: str | None = None
        self.sent = 0

    # -- API (any thread) ------------------------------------------------------------------------
    def start(self) -> None:
        left = self.spool.pending()  # left by a crash or an outage: replayed first
        with self._cond:
            self._pending.extend(left)
            self._submitted += len(left)
        for target, name in ((self._spool_loop, "mmar-automl-spool"), (self._send_loop, "mmar-automl-mlflow")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def submit(self, op: dict[str, Any]) -> None:
        """Queue one operation; returns at once and never raises."""
        with self._cond:
            self._submitted += 1
        self._queue.put(op)

    def flush(self, timeout: float) -> bool:
        """Try to send everything now; wait at most ``timeout`` s. True when nothing is pending.

        Gives up early when MLflow stays unreachable: after one failed attempt if it was already
        offline, else after two (a brief blip gets a retry). Waiting out ``timeout`` for a server that
        is down would only delay the end of the search; the spool keeps the writes for ``sync``."""
        deadline = time.monotonic() + timeout
        with self._cond:
            self._next_try = 0.0
            self._cond.notify_all()
            give_up_at = self._failures + (1 if self.online is False else 2)
            while (self._submitted > 0 and self._failures < give_up_at
                   and all(t.is_alive() for t in self._threads)):
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(min(left, 0.5))
            return self._submitted <= 0

    def close(self, timeout: float = 30.0) -> int:
        """Flush (at most ``timeout`` s), stop the threads, release the spool. Returns the writes left pending."""
        self.flush(timeout)
        self._queue.put(None)  # the spooler writes what is queued, then stops
        self._threads[0].join(timeout=10)
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._threads[1].join(timeout=5)  # a send stuck in a slow request is left behind (daemon)
        with self._spool_lock:
            left = self.spool.pending_count
            if left == 0:
                self.spool.compact()
            self.spool.unlock()
        return left

    @property
    def pending_count(self) -> int:
        return self._submitted

    # -- spooler thread ----------------------------------------------------------------------------
    def _spool_loop(self) -> None:
        while True:
            items = [self._queue.get()]
            if items[0] is not None:
                time.sleep(self.batch_wait)  # let a burst (4 jobs ending at once) gather: one fsync
            while True:
                try:
                    items.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            ops = [i for i in items if i is not None]
            if ops:
                try:
                    with self._spool_lock:
                        numbered = self.spool.append(ops)
                except Exception as err:  # noqa: BLE001 - a full disk must not stop the search
                    log.warning("MLflow spool write failed, %d writes kept in memory only: %s", len(ops), err)
                    numbered = [{"seq": None, **op} for op in ops]
                with self._cond:
                    self._pending.extend(numbered)
                    self._cond.notify_all()
            if any(i is None for i in items):
                return

    # -- sender thread -----------------------------------------------------------------------------
    def _send_loop(self) -> None:
        while True:
            with self._cond:
                while not self._stopping and (not self._pending or time.monotonic() < self._next_try):
                    wait = None if not self._pending else max(0.05, self._next_try - time.monotonic())
                    self._cond.wait(wait)
                if self._stopping:
                    return
                batch = self._pending[: self.max_batch]
            try:
                ok = self._send(batch)
            except Exception as err:  # noqa: BLE001 - the writer must never die
                log.warning("MLflow writer error: %s", err)
                ok = False
                self._next_try = time.monotonic() + self.retry_interval
                self._failed()
            if ok:
                seqs = [op["seq"] for op in batch if op.get("seq") is not None]
                if seqs:
                    with self._spool_lock:
                        self.spool.ack(max(seqs))
                with self._cond:
                    del self._pending[: len(batch)]
                    self._submitted -= len(batch)
                    self.sent += len(batch)
                    self._cond.notify_all()

    def _send(self, batch: list[dict[str, Any]]) -> bool:
        if self._sink is None:
            try:
                self._sink = self._sink_factory()
            except Exception as err:  # noqa: BLE001
                if not is_transient(err):
                    log.warning("MLflow tracking unavailable: %s", err)
                self._offline(err)
                return False
        try:
            self._sink.apply([{k: v for k, v in op.items() if k != "seq"} for op in batch])
        except TransientError as err:
            self._offline(err)
            return False
        self.online = True
        return True

    def _offline(self, err: BaseException) -> None:
        if self.online is not False:
            log.warning("MLflow unreachable, writes go to the spool %s: %s", self.spool.path, err)
        self.online = False
        self.last_error = str(err)
        self._next_try = time.monotonic() + self.retry_interval
        self._failed()

    def _failed(self) -> None:
        with self._cond:
            self._failures += 1
            self._cond.notify_all()  # a waiting flush may give up now
