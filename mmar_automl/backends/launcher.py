"""Job processes: a preloaded zygote that forks one child per job, and a cold-spawn fallback.

``import torch, monai`` costs 10-15 s; a zygote pays it once. The zygote is a long-lived process
(``python -m mmar_automl.backends.launcher zygote``) that imports the heavy modules (``preload``) but never
runs a torch op or touches CUDA (a fork after either can hang or break CUDA in the child, DESIGN.md
section 9). For each job it forks a child that calls ``setsid()`` (own process group, so the
orchestrator can kill the whole job), takes the job's environment (``CUDA_VISIBLE_DEVICES``), cwd and
log file (stdout + stderr), runs the entry function ``module:function(argv) -> int`` and leaves with
``os._exit(code)``. The zygote single-threadedly reads requests and reaps children, reporting exit
statuses back; when its orchestrator dies (EOF on the request pipe, or SIGTERM), it kills every job
group it started and exits, so a ``kill -9`` of the orchestrator leaves no orphans.

Protocol (JSON lines): orchestrator -> zygote ``{"op": "spawn", "id", "entry", "argv", "cwd", "env",
"log"}`` and ``{"op": "exit"}``; zygote -> orchestrator ``{"op": "ready", "pid", "preload_s"}``,
``{"op": "spawned", "id", "pid"}``, ``{"op": "spawn_failed", "id", "error"}``, ``{"op": "exited",
"pid", "code"}`` (code as ``os.waitstatus_to_exitcode``: negative = killed by that signal).
"""

from __future__ import annotations

import importlib
import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

DEFAULT_ENTRY = "mmar_automl.train.run:main"
DEFAULT_PRELOAD = "mmar_automl.train.run:preload"
ENTRY_ENV = "MMAR_AUTOML_JOB_ENTRY"        # tests and benchmarks swap the job function
PRELOAD_ENV = "MMAR_AUTOML_JOB_PRELOAD"     # "" = preload nothing
KILL_GRACE_S = 10.0


class LauncherError(RuntimeError):
    """The zygote is not available; the caller falls back to a cold spawn."""


class SpawnCancelled(RuntimeError):
    """The caller gave up waiting for the zygote (Ctrl-C during its warm-up): start nothing."""


def resolve(target: str) -> Callable[..., Any]:
    """Import "package.module:function"."""
    module_name, sep, attr = target.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"entry point {target!r} must look like 'package.module:function'")
    return getattr(importlib.import_module(module_name), attr)


def default_entry() -> str:
    return os.environ.get(ENTRY_ENV) or DEFAULT_ENTRY


# The preload of each job entry this package ships (a test's or benchmark's entry preloads nothing).
KNOWN_PRELOADS = {DEFAULT_ENTRY: DEFAULT_PRELOAD, "mmar_automl.bundle.job:main": "mmar_automl.bundle.job:preload"}


def default_preload(entry: str | None = None) -> str | None:
    value = os.environ.get(PRELOAD_ENV)
    if value is None:
        return KNOWN_PRELOADS.get(entry or default_entry())
    return value or None


def set_parent_death_signal(sig: int) -> None:
    """Linux: deliver ``sig`` to this process when its parent dies (best effort)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(sig), 0, 0, 0)  # PR_SET_PDEATHSIG = 1
    except Exception:  # noqa: BLE001 - not Linux: the EOF on the request pipe still stops the zygote
        pass


def kill_group(pid: int, sig: int) -> bool:
    """Signal a job's whole process group (the job leader called setsid, so pgid == pid)."""
    try:
        os.killpg(pid, sig)
        return True
    except (ProcessLookupError, PermissionError):
        return False


def _kill_job(pid: int, sig: int) -> None:
    """Signal the job's group and the job itself: a child forked a moment ago may not have called
    setsid yet, and then its group does not exist."""
    kill_group(pid, sig)
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _exit_code(code: Any) -> int:
    if code is None:
        return 0
    if isinstance(code, bool):
        return int(code)
    if isinstance(code, int):
        return code & 0xFF
    print(code, file=sys.stderr)
    return 1


def run_entry(entry: str, argv: list[str]) -> int:
    """Call the job function and turn what it returns or raises into an exit code."""
    import traceback

    try:
        return _exit_code(resolve(entry)(list(argv)))
    except SystemExit as err:
        return _exit_code(err.code)
    except BaseException:  # noqa: BLE001 - the job's own failure: logged in log.txt, exit 1
        traceback.print_exc()
        return 1


# ---------------------------------------------------------------------------------------------------
# Zygote side
# ---------------------------------------------------------------------------------------------------


def _watch_orchestrator(pid: int, period: float = 1.0) -> None:
    """In a job: SIGKILL the job's process group once the orchestrator is gone. The zygote does that when
    the orchestrator dies, but not when both die at once (kill -9 of their process group, a closed terminal):
    then nothing else would stop the job. A zygote dying alone leaves the job running, as designed."""

    def watch() -> None:
        while True:
            time.sleep(period)
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                os.killpg(0, signal.SIGKILL)
            except PermissionError:
                pass

    threading.Thread(target=watch, daemon=True, name="orchestrator-watch").start()


def _child(request: dict[str, Any], fds: tuple[int, ...], orchestrator: int | None = None) -> None:
    """In the forked child: become the job, run it, never return."""
    code = 1
    try:
        os.setsid()
        if orchestrator is not None:
            _watch_orchestrator(orchestrator)
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGCHLD, signal.SIGPIPE):
            signal.signal(sig, signal.SIG_DFL)
        # Open first, then dup2 over 0/1/2 (the request pipe is fd 0: closing it first would hand its
        # number to the log file).
        log_fd = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        null_fd = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null_fd, 0)
        os.dup2(log_fd, 1)
        os.dup2(log_fd, 2)
        for fd in {log_fd, null_fd, *fds} - {0, 1, 2}:
            os.close(fd)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        sys.argv = [request["entry"], *request["argv"]]
        if "numpy" in sys.modules:  # every child would otherwise share the zygote's numpy RNG state
            sys.modules["numpy"].random.seed()
        code = run_entry(request["entry"], request["argv"])
    except BaseException:  # noqa: BLE001
        import traceback

        traceback.print_exc()
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def zygote_main(preload: str | None, parent: int | None = None) -> int:
    """Serve spawn requests on stdin, report on the original stdout, until EOF/SIGTERM/exit."""
    in_fd = 0
    out_fd = os.dup(1)
    os.dup2(2, 1)  # stray prints of preloaded libraries must not corrupt the protocol
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the orchestrator's to handle
    # Until the warm-up ends there is no job to clean up: SIGTERM (the parent-death signal) ends the zygote
    # at once instead of after the rest of a 15-60 s import.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    set_parent_death_signal(signal.SIGTERM)
    if parent is not None and os.getppid() != parent:
        return 0  # the orchestrator died before the parent-death signal was armed
    stopping = {"flag": False}

    def send(message: dict[str, Any]) -> None:
        try:
            os.write(out_fd, (json.dumps(message) + "\n").encode())
        except OSError:
            stopping["flag"] = True

    t0 = time.perf_counter()
    if preload:
        try:
            resolve(preload)()
        except Exception as err:  # noqa: BLE001 - jobs still run; they import lazily
            print(f"launcher: preload {preload} failed: {err!r}", file=sys.stderr)
    signal.signal(signal.SIGTERM, lambda *_: stopping.update(flag=True))  # from now on: kill the jobs first
    send({"op": "ready", "pid": os.getpid(), "preload_s": round(time.perf_counter() - t0, 3)})

    children: set[int] = set()
    buf = b""
    while not stopping["flag"]:
        try:
            ready, _, _ = select.select([in_fd], [], [], 0.05)
        except InterruptedError:
            ready = []
        if ready:
            data = os.read(in_fd, 1 << 16)
            if not data:
                break  # orchestrator gone
            buf += data
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                if not line.strip():
                    continue
                request = json.loads(line)
                if request.get("op") == "exit":
                    stopping["flag"] = True
                    break
                if request.get("op") == "spawn":
                    try:
                        resolve(request["entry"])  # import in the zygote: children start warm
                        sys.stdout.flush()
                        sys.stderr.flush()
                        pid = os.fork()
                    except Exception as err:  # noqa: BLE001
                        send({"op": "spawn_failed", "id": request.get("id"), "error": repr(err)})
                        continue
                    if pid == 0:
                        _child(request, (in_fd, out_fd), parent)
                    children.add(pid)
                    send({"op": "spawned", "id": request.get("id"), "pid": pid})
        _reap(children, send)
    _shutdown_children(children, send)
    return 0


def _reap(children: set[int], send: Callable[[dict[str, Any]], None]) -> None:
    while children:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            children.clear()
            return
        if pid == 0:
            return
        children.discard(pid)
        kill_group(pid, signal.SIGKILL)  # sweep what the job left in its group (loader workers)
        send({"op": "exited", "pid": pid, "code": os.waitstatus_to_exitcode(status)})


def _shutdown_children(children: set[int], send: Callable[[dict[str, Any]], None]) -> None:
    """The orchestrator is gone or asked us to exit: no job may outlive us."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in list(children):
            _kill_job(pid, sig)
        deadline = time.monotonic() + 3.0
        while children and time.monotonic() < deadline:
            _reap(children, send)
            time.sleep(0.05)


# ---------------------------------------------------------------------------------------------------
# Orchestrator side
# ---------------------------------------------------------------------------------------------------


class Launcher:
    """Client of one zygote process. Thread-safe spawn; exit statuses arrive on a reader thread."""

    def __init__(self, preload: str | None = None, log_path: str | Path | None = None,
                 env: dict[str, str] | None = None):
        self.preload = preload
        self.log_path = Path(log_path) if log_path else None
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None
        self.preload_s: float | None = None
        self._cond = threading.Condition()
        self._ready = False
        self._replies: dict[int, dict[str, Any]] = {}
        self._exits: dict[int, int] = {}
        self._next_id = 0
        self._reader: threading.Thread | None = None

    def start(self) -> None:
        """Start the zygote (non-blocking: it warms up while the orchestrator prepares)."""
        with self._cond:
            self._ready = False
        stderr = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        cmd = [sys.executable, "-m", "mmar_automl.backends.launcher", "zygote", "--parent", str(os.getpid())]
        if self.preload:
            cmd += ["--preload", self.preload]
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, env=self.env, close_fds=True,
        )
        if stderr is not subprocess.DEVNULL:
            stderr.close()
        self._reader = threading.Thread(target=self._read, args=(self.proc,), daemon=True, name="zygote-reader")
        self._reader.start()

    def _read(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            try:
                message = json.loads(raw)
            except ValueError:
                continue
            with self._cond:
                op = message.get("op")
                if op == "ready":
                    self._ready = True
                    self.preload_s = message.get("preload_s")
                elif op in ("spawned", "spawn_failed"):
                    self._replies[message.get("id")] = message
                elif op == "exited":
                    self._exits[int(message["pid"])] = int(message["code"])
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait_ready(self, timeout: float, cancel: Callable[[], bool] | None = None) -> bool:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not self._ready and self.alive():
                if cancel is not None and cancel():
                    raise SpawnCancelled("cancelled while the launcher warmed up")
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(min(left, 0.2))
            return self._ready and self.alive()

    def spawn(self, entry: str, argv: list[str], cwd: str, env: dict[str, str], log: str,
              timeout: float = 120.0, cancel: Callable[[], bool] | None = None) -> int:
        """Fork a job from the zygote; returns its pid (= its process group id)."""
        if not self.wait_ready(timeout, cancel):
            raise LauncherError("the launcher is not running")
        with self._cond:
            request_id = self._next_id
            self._next_id += 1
        request = {"op": "spawn", "id": request_id, "entry": entry, "argv": list(argv),
                   "cwd": str(cwd), "env": dict(env), "log": str(log)}
        try:
            assert self.proc is not None and self.proc.stdin is not None
            self.proc.stdin.write((json.dumps(request) + "\n").encode())
            self.proc.stdin.flush()
        except (OSError, ValueError) as err:
            raise LauncherError(f"the launcher died: {err}") from None
        deadline = time.monotonic() + 30.0
        with self._cond:
            while request_id not in self._replies:
                if not self.alive() or time.monotonic() > deadline:
                    raise LauncherError("the launcher did not answer a spawn request")
                self._cond.wait(0.5)
            reply = self._replies.pop(request_id)
        if reply["op"] != "spawned":
            raise LauncherError(f"spawn failed: {reply.get('error')}")
        return int(reply["pid"])

    def exit_code(self, pid: int) -> int | None:
        with self._cond:
            return self._exits.get(pid)

    def forget(self, pid: int) -> None:
        with self._cond:
            self._exits.pop(pid, None)

    def close(self, timeout: float = 5.0) -> None:
        """Ask the zygote to exit (it kills any job still running), then make sure it is gone."""
        proc = self.proc
        if proc is None:
            return
        with self._cond:
            ready = self._ready
        if not ready and proc.poll() is None:
            proc.kill()  # still warming up: it has no job yet, nothing to wait for
        try:
            if proc.stdin:
                proc.stdin.write(b'{"op": "exit"}\n')
                proc.stdin.flush()
                proc.stdin.close()
        except (OSError, ValueError):
            pass
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if self._reader is not None:
            self._reader.join(timeout=2.0)


def cold_command(entry: str, argv: list[str]) -> list[str]:
    """A fresh interpreter that runs the same entry (the fallback when the zygote is unavailable)."""
    return [sys.executable, "-m", "mmar_automl.backends.launcher", "run", "--entry", entry, "--", *argv]


def _preexec_cold() -> None:
    set_parent_death_signal(signal.SIGKILL)


def spawn_cold(entry: str, argv: list[str], cwd: str, env: dict[str, str], log: str) -> subprocess.Popen[bytes]:
    """Start a job in a fresh interpreter, own session (process group), cwd, env and log."""
    with open(log, "ab") as out:
        return subprocess.Popen(
            cold_command(entry, argv), cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out,
            stderr=subprocess.STDOUT, start_new_session=True, close_fds=True, preexec_fn=_preexec_cold,
        )


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m mmar_automl.backends.launcher")
    sub = parser.add_subparsers(dest="mode", required=True)
    zyg = sub.add_parser("zygote", help="serve fork requests (internal)")
    zyg.add_argument("--preload", default=None)
    zyg.add_argument("--parent", type=int, default=None, help="pid of the orchestrator (exit if it is gone)")
    run = sub.add_parser("run", help="run one job entry in this process")
    run.add_argument("--entry", required=True)
    run.add_argument("argv", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    if args.mode == "zygote":
        return zygote_main(args.preload, args.parent)
    job_argv = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
    return run_entry(args.entry, job_argv)


if __name__ == "__main__":
    sys.exit(main())
