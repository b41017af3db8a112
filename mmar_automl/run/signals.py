"""Ctrl-C and SIGTERM: the handlers only count; the engine's loop does the work (terminate the jobs'
process groups, SIGKILL after the grace period or at the second interrupt).

One :class:`Interrupts` is shared by the engine (it stops) and the local backend (it stops waiting for
a launcher that is still warming up): both are given it when they are built.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class Interrupts:
    """How many interrupts arrived; calling it answers "stop waiting?" (a backend's ``cancel``)."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> bool:
        return self.count > 0

    def interrupt(self) -> None:
        self.count += 1

    @contextmanager
    def on_signals(self) -> Iterator[None]:
        """SIGINT and SIGTERM count as interrupts while the block runs (main thread only: signals reach
        only it; an embedding caller calls :meth:`interrupt` itself)."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        old: dict[int, Any] = {}

        def on_signal(signum, frame):  # noqa: ARG001
            self.interrupt()

        for sig in (signal.SIGINT, signal.SIGTERM):
            old[sig] = signal.signal(sig, on_signal)
        try:
            yield
        finally:
            for sig, handler in old.items():
                signal.signal(sig, handler)
