"""The contract between the executor and whatever starts job processes (this machine, a Ray cluster).

The executor writes a job folder and hands a backend a ``JobSpec``; the backend starts the process and
answers ``poll``/``kill``. Backends depend on this module only, never on the executor.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Protocol




@dataclass
class JobSpec:
    """What a backend needs to start one job process."""

    job_uid: str
    entry: str                 # "module:function" called with argv
    argv: list[str]
    cwd: str                   # the job folder
    env: dict[str, str]
    log: str                   # stdout + stderr


@dataclass
class Handle:
    spec: JobSpec
    pid: int                   # also the process group id (the job leader called setsid)
    via: str                   # "launcher" or "cold"
    popen: Any = None
    started: float = field(default_factory=time.monotonic)


class Backend(Protocol):
    def submit(self, spec: JobSpec) -> Handle: ...
    def poll(self, handle: Handle) -> int | None: ...   # exit code (negative: signal) or None while running
    def kill(self, handle: Handle, sig: int) -> None: ...
    def shutdown(self) -> None: ...


UNKNOWN_EXIT = -1000  # the process is gone but nobody could tell its status (its zygote died)
