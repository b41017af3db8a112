"""Job processes that outlived their orchestrator, found through ``/proc`` and killed before a resume
re-runs anything.

Found by their working directory (the folder of a job the journal says is RUNNING; children such as
DataLoader workers inherit it), which also covers a job forked just before the orchestrator died, before
its pid reached the journal; the process must be ours (``mmar_automl`` in its command line).
"""

from __future__ import annotations

import logging
import os
import signal
import time
from pathlib import Path

from mmar_automl.backends.launcher import kill_group

log = logging.getLogger("mmar_automl.run.procscan")
KILL_WAIT_S = 10.0


def job_processes(folders: set[str]) -> list[tuple[int, int]]:
    """(pid, pgid) of live processes whose cwd is one of ``folders`` and that run mmar_automl code."""
    found: list[tuple[int, int]] = []
    if not folders:
        return found
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cwd = os.readlink(proc / "cwd")
            if cwd not in folders:
                continue
            fields = (proc / "stat").read_text().split(")")[-1].split()
            if fields[0] == "Z" or b"mmar_automl" not in (proc / "cmdline").read_bytes():
                continue
            found.append((int(proc.name), int(fields[2])))
        except (OSError, ValueError, IndexError):
            continue
    return found


def kill_leftovers(job_folders: list[str]) -> None:
    """SIGKILL every process group left running in ``job_folders``; wait (a bounded time) until gone."""
    folders = {str(Path(f).resolve()) for f in job_folders}
    victims = job_processes(folders)
    for pid, pgid in victims:
        log.warning("killing process %d left running in a job folder by the previous orchestrator", pid)
        kill_group(pgid, signal.SIGKILL)
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    deadline = time.monotonic() + KILL_WAIT_S
    while victims and job_processes(folders) and time.monotonic() < deadline:
        time.sleep(0.05)
