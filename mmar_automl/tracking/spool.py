"""The durable spool: every write meant for MLflow, on disk before it is sent, until MLflow has it.

One JSON line per operation (``{"seq": n, "op": ...}``) and one ``{"ack": n}`` line each time every
operation up to ``n`` is in MLflow; the pending writes are those after the last ack. Each append is
fsynced, so a crash or an outage loses nothing that reached the spool; ``sync`` and resume replay
what is pending (replay is idempotent, see sync.py). A torn last line (a crash mid-write) is skipped;
a bad line elsewhere is an error. Once everything is acknowledged the file is emptied.

Only one process may own a spool at a time (the live orchestrator, or ``sync``): :meth:`Spool.try_lock`.
"""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path
from typing import Any

from mmar_automl.errors import JournalError

SPOOL_NAME = "mlflow_spool.jsonl"
COMPACT_BYTES = 256 * 1024


class Spool:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._lock_file: Any = None
        self._drop_torn_tail()
        ops, acked = self._read()
        self._next_seq = max([op["seq"] for op in ops] + [acked]) + 1
        self._acked = acked
        self._pending_count = sum(1 for op in ops if op["seq"] > acked)

    @classmethod
    def in_run_dir(cls, run_dir: str | Path) -> Spool:
        return cls(Path(run_dir) / SPOOL_NAME)

    # -- ownership ---------------------------------------------------------------------------------
    def try_lock(self) -> bool:
        """Take the spool for this process; False when another live process holds it."""
        if self._lock_file is not None:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        f = open(self.path.with_suffix(".lock"), "w")
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.close()
            return False
        self._lock_file = f
        return True

    def unlock(self) -> None:
        if self._lock_file is not None:
            self._lock_file.close()  # closing releases the flock
            self._lock_file = None

    # -- writing -----------------------------------------------------------------------------------
    def append(self, ops: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Number the operations, write them in one fsynced append, return them with their ``seq``."""
        numbered = []
        for op in ops:
            numbered.append({"seq": self._next_seq, **op})
            self._next_seq += 1
        if numbered:
            self._write("".join(json.dumps(op, default=str) + "\n" for op in numbered))
            self._pending_count += len(numbered)
        return numbered

    def ack(self, seq: int) -> None:
        """Every operation up to ``seq`` is in MLflow."""
        if seq <= self._acked:
            return
        self._write(json.dumps({"ack": seq}) + "\n")
        self._acked = seq
        self._pending_count = max(0, self._next_seq - 1 - seq)
        if self._pending_count == 0 and self.path.stat().st_size > COMPACT_BYTES:
            self.compact()

    def compact(self) -> None:
        """Empty the file when nothing is pending (sequence numbers carry on in a fresh ack line)."""
        if self._pending_count:
            return
        tmp = self.path.with_suffix(".tmp")
        with open(tmp, "w") as f:
            f.write(json.dumps({"ack": self._next_seq - 1}) + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)

    # -- reading -----------------------------------------------------------------------------------
    @property
    def pending_count(self) -> int:
        return self._pending_count

    def pending(self) -> list[dict[str, Any]]:
        """The operations not yet acknowledged, in order."""
        ops, acked = self._read()
        return [op for op in ops if op["seq"] > acked]

    def _read(self) -> tuple[list[dict[str, Any]], int]:
        if not self.path.exists():
            return [], 0
        lines = self.path.read_text().split("\n")
        ops: list[dict[str, Any]] = []
        acked = 0
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                if number == len(lines):  # the torn last line of a crash: drop it
                    break
                raise JournalError(f"{self.path}:{number}: bad spool line ({err.msg})") from None
            if "ack" in record:
                acked = max(acked, int(record["ack"]))
            else:
                ops.append(record)
        return ops, acked

    def _drop_torn_tail(self) -> None:
        # A crash mid-append leaves a line without its newline; the next append must not glue onto it.
        if not self.path.exists():
            return
        data = self.path.read_bytes()
        if data and not data.endswith(b"\n"):
            with open(self.path, "r+b") as f:
                f.truncate(data.rfind(b"\n") + 1)

    def _write(self, text: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
