"""The zygote launcher and the cold fallback: isolation (pid, process group, env, cwd, log), exit
statuses, killing whole groups, and no job outliving a dead orchestrator."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mmar_automl.backends.local import LocalBackend
from mmar_automl.backends.protocol import JobSpec
from mmar_automl.backends.launcher import Launcher, kill_group, spawn_cold

HERE = Path(__file__).parent


@pytest.fixture
def env(monkeypatch):
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(HERE), str(HERE.parent.parent)]))
    return dict(os.environ, PROCJOB_X="from-env")


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):   # gone before the open, or between open and read
        return False


def _wait(pred, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.05)
    return pred()


def _lines(log: Path):
    return [json.loads(x) for x in log.read_text().splitlines() if x.startswith("{")]


@pytest.fixture
def launcher(env, tmp_path):
    lau = Launcher(None, tmp_path / "launcher.log", env=env)
    lau.start()
    assert lau.wait_ready(60)
    yield lau
    lau.close()


def test_zygote_child_is_isolated(launcher, env, tmp_path):
    job = tmp_path / "job"
    job.mkdir()
    pid = launcher.spawn("procjobs:report", ["3"], str(job), env, str(job / "log.txt"))
    assert _wait(lambda: launcher.exit_code(pid) is not None)
    assert launcher.exit_code(pid) == 3
    info = _lines(job / "log.txt")[0]
    assert info["pid"] == pid == info["pgid"] == info["sid"] != launcher.proc.pid
    assert info["cwd"] == str(job) and info["argv"] == ["3"] and info["x"] == "from-env"
    assert "to stderr" in (job / "log.txt").read_text()


def test_exit_statuses(launcher, env, tmp_path):
    codes = {}
    for entry in ("procjobs:aborter", "procjobs:raiser", "procjobs:report"):
        pid = launcher.spawn(entry, [], str(tmp_path), env, str(tmp_path / f"{entry}.log"))
        assert _wait(lambda: launcher.exit_code(pid) is not None)
        codes[entry] = launcher.exit_code(pid)
    assert codes == {"procjobs:aborter": -signal.SIGABRT, "procjobs:raiser": 1, "procjobs:report": 0}
    assert "ValueError: bad value on purpose" in (tmp_path / "procjobs:raiser.log").read_text()


def test_kill_group_kills_the_jobs_children(launcher, env, tmp_path):
    pid = launcher.spawn("procjobs:sleeper", [], str(tmp_path), env, str(tmp_path / "log.txt"))
    assert _wait(lambda: (tmp_path / "log.txt").exists() and _lines(tmp_path / "log.txt"))
    child = _lines(tmp_path / "log.txt")[0]["child"]
    assert _alive(child)
    kill_group(pid, signal.SIGTERM)
    assert _wait(lambda: launcher.exit_code(pid) is not None)
    assert launcher.exit_code(pid) == -signal.SIGTERM
    assert _wait(lambda: not _alive(child), 5)


def test_dead_orchestrator_leaves_no_job(env, tmp_path):
    """The orchestrator is SIGKILLed: its zygote sees EOF and kills every job group it started."""
    script = (
        "import os, sys, time\n"
        "from mmar_automl.backends.launcher import Launcher\n"
        f"lau = Launcher(None, None, env=dict(os.environ)); lau.start(); assert lau.wait_ready(60)\n"
        f"pid = lau.spawn('procjobs:sleeper', [], {str(tmp_path)!r}, dict(os.environ), {str(tmp_path / 'log.txt')!r})\n"
        "print(pid, lau.proc.pid, flush=True); time.sleep(3600)\n"
    )
    orch = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, env=env, text=True)
    job_pid, zygote_pid = map(int, orch.stdout.readline().split())
    assert _wait(lambda: (tmp_path / "log.txt").exists() and _lines(tmp_path / "log.txt"))
    grandchild = _lines(tmp_path / "log.txt")[0]["child"]
    orch.kill()
    orch.wait()
    assert _wait(lambda: not _alive(job_pid) and not _alive(grandchild) and not _alive(zygote_pid), 15)


def test_cold_spawn(env, tmp_path):
    proc = spawn_cold("procjobs:report", ["0"], str(tmp_path), env, str(tmp_path / "log.txt"))
    assert proc.wait(60) == 0
    info = _lines(tmp_path / "log.txt")[0]
    assert info["pid"] == info["pgid"] == proc.pid and info["cwd"] == str(tmp_path)


def test_backend_falls_back_when_the_zygote_dies(env, tmp_path, monkeypatch):
    monkeypatch.setenv("MMAR_AUTOML_JOB_PRELOAD", "")
    backend = LocalBackend(preload="")
    backend.start()
    try:
        assert backend.launcher.wait_ready(60)
        spec = JobSpec("u1", "procjobs:report", ["0"], str(tmp_path), env, str(tmp_path / "a.log"))
        h1 = backend.submit(spec)
        assert h1.via == "launcher"
        assert _wait(lambda: backend.poll(h1) is not None) and backend.poll(h1) == 0
        backend.launcher.proc.kill()
        backend.launcher.proc.wait()
        h2 = backend.submit(JobSpec("u2", "procjobs:report", ["4"], str(tmp_path), env, str(tmp_path / "b.log")))
        assert h2.via == "cold"
        assert _wait(lambda: backend.poll(h2) is not None, 60) and backend.poll(h2) == 4
        assert backend.restarts == 1 and backend.launcher.wait_ready(60)  # restarted for the next jobs
        h3 = backend.submit(JobSpec("u3", "procjobs:report", ["0"], str(tmp_path), env, str(tmp_path / "c.log")))
        assert h3.via == "launcher"
        assert _wait(lambda: backend.poll(h3) is not None)
    finally:
        backend.shutdown()


def test_a_zygote_still_warming_up_dies_with_its_orchestrator(env, tmp_path):
    """kill -9 of the orchestrator during the warm-up (the real preload takes 15-60 s): the zygote must
    not linger as an orphan until its imports end."""
    script = (
        "import os, time\n"
        "from mmar_automl.backends.launcher import Launcher\n"
        "lau = Launcher('lightjobs:slow_preload', None, env=dict(os.environ)); lau.start()\n"
        "print(lau.proc.pid, flush=True); time.sleep(3600)\n"
    )
    orch = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, env=env, text=True)
    zygote_pid = int(orch.stdout.readline())
    assert _wait(lambda: "slow_preload" in Path(f"/proc/{zygote_pid}/cmdline").read_text(), 10)
    time.sleep(1.0)  # well into the preload (it sleeps 60 s)
    orch.kill()
    orch.wait()
    assert _wait(lambda: not _alive(zygote_pid), 10)


def test_a_job_dies_when_orchestrator_and_zygote_die_together(env, tmp_path):
    """kill -9 of the orchestrator's process group (the zygote is in it): nobody is left to stop the job,
    so the job stops itself."""
    script = (
        "import os, time\n"
        "from mmar_automl.backends.launcher import Launcher\n"
        "lau = Launcher(None, None, env=dict(os.environ)); lau.start(); assert lau.wait_ready(60)\n"
        f"pid = lau.spawn('procjobs:sleeper', [], {str(tmp_path)!r}, dict(os.environ), {str(tmp_path / 'log.txt')!r})\n"
        "print(pid, lau.proc.pid, flush=True); time.sleep(3600)\n"
    )
    orch = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, env=env, text=True,
                            start_new_session=True)
    job_pid, zygote_pid = map(int, orch.stdout.readline().split())
    assert _wait(lambda: (tmp_path / "log.txt").exists() and _lines(tmp_path / "log.txt"))
    grandchild = _lines(tmp_path / "log.txt")[0]["child"]
    os.killpg(orch.pid, signal.SIGKILL)  # orchestrator and zygote at once
    orch.wait()
    assert _wait(lambda: not _alive(zygote_pid), 5)
    assert _wait(lambda: not _alive(job_pid) and not _alive(grandchild), 10)


def test_no_cold_start_once_the_engine_cancelled(env, tmp_path, monkeypatch):
    """A SIGTERM to the orchestrator's group kills the warming zygote too: the job must not start cold."""
    from mmar_automl.backends.launcher import SpawnCancelled

    monkeypatch.setenv("MMAR_AUTOML_JOB_PRELOAD", "")
    backend = LocalBackend(preload="")
    backend.cancel = lambda: True
    backend.start()
    try:
        backend.launcher.proc.kill()
        backend.launcher.proc.wait()
        with pytest.raises(SpawnCancelled):
            backend.submit(JobSpec("u1", "procjobs:report", ["0"], str(tmp_path), env, str(tmp_path / "a.log")))
        assert not (tmp_path / "a.log").exists()
    finally:
        backend.shutdown()
