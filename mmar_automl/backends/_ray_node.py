"""The node side of the Ray backend: one ``JobRunner`` actor per job, holding the job's GPUs and CPUs.

The actor does not run the job in its own process: it starts the job entry the way the local backend
does, forked from its own launcher (``mmar_automl.backends.launcher``: a zygote with torch and monai preloaded,
started on the actor's first job) or else cold; either way in its own session (process group), cwd =
the job folder, stdout+stderr to log.txt; the zygote and cold jobs die with the actor (parent-death
signals). The actor answers short method calls (``start``, ``poll``, ``signal``, ``collect``), so the
orchestrator never blocks on a job, and a kill reaches the job's whole process group. Imported by Ray
workers by reference: no ray import at the top.

Where the job folder is not visible on the node (no shared filesystem, or ``ship`` forced), ``start``
answers ``need_files``; the orchestrator then sends the folder as a tar, the job runs in a temporary
folder, ``poll`` returns the new complete lines of ``models/metrics.jsonl`` and ``log.txt``, and
``collect`` returns the files the job created or changed.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from mmar_automl.backends._ship import Manifest, manifest, pack, unpack

# The orchestrator's values of these describe its own host; the node keeps its own.
HOST_ENV_KEYS = frozenset({"HOSTNAME", "PWD", "OLDPWD", "SHLVL", "_", "TMPDIR", "DISPLAY", "SSH_CONNECTION",
                           "SSH_CLIENT", "SSH_TTY", "XDG_RUNTIME_DIR"})
STREAM_CHUNK = 1 << 20  # at most this many bytes of metrics/log per poll answer


def job_folder_visible(cwd: str, job_uid: str) -> bool:
    """True when ``cwd`` on this node is the orchestrator's job folder (shared filesystem): the folder's
    ``automl_job.json`` names this job. A same-named folder of another machine does not count."""
    try:
        data = json.loads((Path(cwd) / "automl_job.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and data.get("job_uid") == job_uid


def node_environment(job_env: dict[str, str], node_env: dict[str, str], gpu_ids: list[str]) -> dict[str, str]:
    """The job's environment on this node: the orchestrator's job environment (entry, PYTHONPATH, run
    marker ...) over the node's own, host-specific keys and Ray's internals left to the node, and the
    GPUs Ray assigned to this actor as ``CUDA_VISIBLE_DEVICES`` ("" for a CPU job hides every GPU), in
    the node's device order."""
    env = {k: v for k, v in node_env.items() if not k.startswith("RAY_")}
    env.update({k: v for k, v in job_env.items() if k not in HOST_ENV_KEYS and not k.startswith("RAY_")})
    env["CUDA_VISIBLE_DEVICES"] = ",".join(gpu_ids)
    # Ray's GPU ids number the node's devices in the node's CUDA order; the orchestrator's PCI_BUS_ID
    # (chosen to match NVML on its own machine) could name other devices here on mixed-GPU nodes.
    env.pop("CUDA_DEVICE_ORDER", None)
    if node_env.get("CUDA_DEVICE_ORDER"):
        env["CUDA_DEVICE_ORDER"] = node_env["CUDA_DEVICE_ORDER"]
    return env


class JobRunner:
    """Runs jobs on one node, one at a time (a Ray actor; see the module docstring).

    The actor is reused for the search's next job with the same GPU count, so its job launcher (a zygote
    with torch and monai preloaded, as on a local machine) is paid for once per actor, not once per job."""

    def __init__(self, use_launcher: bool = True, ready_timeout: float = 300.0) -> None:
        self.use_launcher = use_launcher
        self.ready_timeout = ready_timeout
        self.launcher: Any = None
        self.launcher_key: tuple[str | None, str] | None = None
        self.jobs_run = 0
        self._reset()

    def _reset(self) -> None:
        self.popen: subprocess.Popen[bytes] | None = None
        self.pid: int | None = None
        self.job_uid: str | None = None
        self.folder: Path | None = None
        self.tmp: Path | None = None
        self.inputs: Manifest | None = None
        self.offsets = {"metrics": 0, "log": 0}
        self.metrics_rel = "models/metrics.jsonl"
        self.code: int | None = None
        self.via = ""

    # -- calls from the orchestrator ---------------------------------------------------------------
    def start(self, spec: dict[str, Any], files: bytes | None = None, ship: bool | None = None) -> dict[str, Any]:
        """Start a job. ``spec``: JobSpec fields plus ``metrics`` (path of metrics.jsonl relative to the
        job folder) and ``preload``. ``ship``: None = use the shared folder when visible, True = always run
        in a copy (then ``files`` holds the folder as a tar)."""
        import ray

        if self.job_uid == spec["job_uid"] and self.pid is not None:
            return self._info()  # a repeated call
        if self.pid is not None and self.code is None:
            raise RuntimeError(f"job runner busy with job {self.job_uid}")
        self.cleanup()
        self._reset()
        cwd = spec["cwd"]
        if files is None:
            if ship or not job_folder_visible(cwd, spec["job_uid"]):
                return {"status": "need_files", "node_id": _node_id(), "node_ip": _node_ip()}
            folder = Path(cwd)
        else:
            self.tmp = Path(tempfile.mkdtemp(prefix=f"mmar-automl-{spec['job_uid']}-"))
            folder = self.tmp / Path(cwd).name
            unpack(files, folder)
            self.inputs = manifest(folder)
        self.job_uid = spec["job_uid"]
        self.metrics_rel = spec.get("metrics") or self.metrics_rel
        self.folder = folder
        gpu_ids = [str(g) for g in ray.get_gpu_ids()]
        env = node_environment(spec["env"], dict(os.environ), gpu_ids)
        argv = [str(folder) if a == cwd else a for a in spec["argv"]]
        for key, value in list(env.items()):
            if value == cwd:  # MMAR_ROOT and friends name the job folder: point them at the copy
                env[key] = str(folder)
        log = str(folder / "log.txt") if self.tmp is not None else spec["log"]
        self.pid = self._spawn(spec["entry"], argv, str(folder), env, log, spec.get("preload"))
        self.jobs_run += 1
        info = self._info()
        info["gpu_ids"] = gpu_ids
        return info

    def _spawn(self, entry: str, argv: list[str], cwd: str, env: dict[str, str], log: str,
               preload: str | None) -> int:
        """Fork the job from this actor's launcher (started on first use), else start it cold."""
        from mmar_automl.backends.launcher import Launcher, LauncherError, spawn_cold

        if self.use_launcher:
            key = (preload or None, env.get("PYTHONPATH", ""))
            if self.launcher is None or not self.launcher.alive() or self.launcher_key != key:
                if self.launcher is not None:
                    self.launcher.close()
                # The launcher imports job code: it needs the job's PYTHONPATH; each job brings its own env.
                self.launcher = Launcher(preload or None, None, env=env)
                self.launcher.start()
                self.launcher_key = key
            try:
                pid = self.launcher.spawn(entry, argv, cwd, env, log, timeout=self.ready_timeout)
                self.via = "launcher"
                return pid
            except LauncherError:
                pass  # start this one cold; the next job restarts the launcher
        self.popen = spawn_cold(entry, argv, cwd, env, log)
        self.via = "cold"
        return self.popen.pid

    def _info(self) -> dict[str, Any]:
        return {"status": "started", "node_id": _node_id(), "node_ip": _node_ip(), "pid": self.pid,
                "shipped": self.tmp is not None, "folder": str(self.folder), "via": self.via,
                "jobs_run": self.jobs_run}

    def poll(self) -> dict[str, Any]:
        """Exit code (None while running) and, for a shipped job, the new complete lines of its metrics and log."""
        if self.pid is not None and self.code is None:
            self.code = self._exit_code()
        answer: dict[str, Any] = {"code": self.code}
        if self.tmp is not None and self.folder is not None:
            # read after the exit check: lines written before the exit are all in this answer
            answer["metrics"] = self._new_bytes("metrics", self.folder / self.metrics_rel, whole_lines=True)
            answer["log"] = self._new_bytes("log", self.folder / "log.txt", whole_lines=False)
        return answer

    def _exit_code(self) -> int | None:
        from mmar_automl.backends.protocol import UNKNOWN_EXIT
        from mmar_automl.backends.launcher import kill_group

        assert self.pid is not None
        if self.popen is not None:
            code = self.popen.poll()
            if code is not None:
                kill_group(self.pid, signal.SIGKILL)  # sweep the job's leftovers (loader workers)
            return code
        code = self.launcher.exit_code(self.pid)
        if code is not None:
            self.launcher.forget(self.pid)
            return code
        if not self.launcher.alive():
            try:
                os.kill(self.pid, 0)
            except ProcessLookupError:
                return UNKNOWN_EXIT
        return None

    def signal(self, sig: int) -> bool:
        """Signal the job's whole process group (the job leader called setsid: pgid == pid)."""
        from mmar_automl.backends.launcher import kill_group

        if self.pid is None or self.code is not None:
            return False
        return kill_group(self.pid, int(sig))

    def collect(self) -> bytes:
        """The files the job created or changed (a tar), once it has ended; the temporary copy is removed."""
        if self.folder is None or self.tmp is None:
            return b""
        data = pack(self.folder, unchanged=self.inputs or {})
        self.cleanup()
        return data

    def cleanup(self) -> None:
        tmp = getattr(self, "tmp", None)
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
            self.tmp = None

    # -- helpers ------------------------------------------------------------------------------------
    def _new_bytes(self, key: str, path: Path, whole_lines: bool) -> bytes:
        try:
            with open(path, "rb") as f:
                f.seek(self.offsets[key])
                data = f.read(STREAM_CHUNK)
        except OSError:
            return b""
        if whole_lines:
            end = data.rfind(b"\n")
            data = data[: end + 1] if end >= 0 else b""
        self.offsets[key] += len(data)
        return data

    def __del__(self) -> None:  # nothing stays on the node (Ray may also collect a half-built instance)
        pid, code = getattr(self, "pid", None), getattr(self, "code", None)
        try:
            if pid is not None and code is None:
                os.killpg(pid, signal.SIGKILL)
        except OSError:
            pass
        launcher = getattr(self, "launcher", None)
        if launcher is not None:
            launcher.close()
        self.cleanup()


def _node_id() -> str:
    import ray

    return ray.get_runtime_context().get_node_id()


def _node_ip() -> str:
    import ray

    try:
        return ray.util.get_node_ip_address()
    except Exception:  # noqa: BLE001
        return ""
