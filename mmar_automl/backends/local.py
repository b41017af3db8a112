"""``LocalBackend``: job processes on this machine, forked from the preloaded launcher (zygote), else a
fresh interpreter (cold) when the zygote is gone (restarting it)."""

from __future__ import annotations

import logging
import os
import signal
from pathlib import Path
from typing import Callable

from mmar_automl.backends.launcher import (
    Launcher,
    LauncherError,
    SpawnCancelled,
    default_preload,
    kill_group,
    spawn_cold,
)
from mmar_automl.backends.protocol import UNKNOWN_EXIT, Handle, JobSpec

log = logging.getLogger("mmar_automl.backends.local")


class LocalBackend:
    """Processes on this machine: forked from the zygote, else a fresh ``python`` (cold)."""

    def __init__(self, use_launcher: bool = True, preload: str | None = None, launcher_log: str | Path | None = None,
                 ready_timeout: float = 180.0, cancel: Callable[[], bool] | None = None):
        self.use_launcher = use_launcher
        self.preload = default_preload() if preload is None else (preload or None)
        self.launcher_log = launcher_log
        self.ready_timeout = ready_timeout
        self.launcher: Launcher | None = None
        self.restarts = 0
        self.cancel = cancel  # "stop waiting" for the launcher (run.signals.Interrupts: Ctrl-C)

    def start(self) -> None:
        if self.use_launcher and self.launcher is None:
            self.launcher = Launcher(self.preload, self.launcher_log)
            self.launcher.start()

    def submit(self, spec: JobSpec) -> Handle:
        self.start()
        if self.launcher is not None:
            if not self.launcher.alive():
                log.warning("the job launcher died; restarting it (this job starts cold)")
                self.restarts += 1
                self.launcher = Launcher(self.preload, self.launcher_log)
                self.launcher.start()
            else:
                try:
                    pid = self.launcher.spawn(spec.entry, spec.argv, spec.cwd, spec.env, spec.log,
                                              timeout=self.ready_timeout, cancel=self.cancel)
                    return Handle(spec, pid, "launcher")
                except LauncherError as err:
                    log.warning("job launcher unavailable (%s); starting %s cold", err, spec.job_uid)
        if self.cancel is not None and self.cancel():  # e.g. SIGTERM to our group killed the warming zygote
            raise SpawnCancelled("cancelled: no cold start")
        popen = spawn_cold(spec.entry, spec.argv, spec.cwd, spec.env, spec.log)
        return Handle(spec, popen.pid, "cold", popen)

    def poll(self, handle: Handle) -> int | None:
        if handle.popen is not None:
            code = handle.popen.poll()
            if code is not None:
                kill_group(handle.pid, signal.SIGKILL)  # sweep the job's leftovers
            return code
        assert self.launcher is not None
        code = self.launcher.exit_code(handle.pid)
        if code is not None:
            return code
        if not self.launcher.alive():
            try:
                os.kill(handle.pid, 0)
            except ProcessLookupError:
                return UNKNOWN_EXIT
        return None

    def kill(self, handle: Handle, sig: int) -> None:
        kill_group(handle.pid, sig)

    def shutdown(self) -> None:
        if self.launcher is not None:
            self.launcher.close()
            self.launcher = None
