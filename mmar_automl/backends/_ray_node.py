"""The node side of the Ray backend: one ``JobRunner`` actor per job, holding the job's GPUs and CPUs.

The actor does not run the job in its own process: it starts the same job entry as a local cold start
does (``python -m mmar_automl.launcher run``, own session = own process group, cwd = the job folder,
stdout+stderr to log.txt, PR_SET_PDEATHSIG so the job dies with the actor) and answers short method
calls (``start``, ``poll``, ``signal``, ``collect``), so the orchestrator never blocks on a job and a kill
reaches the job's whole process group. Imported by Ray workers by reference: no ray import at the top.

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
    GPUs Ray assigned to this actor as ``CUDA_VISIBLE_DEVICES`` ("" for a CPU job hides every GPU)."""
    env = {k: v for k, v in node_env.items() if not k.startswith("RAY_")}
    env.update({k: v for k, v in job_env.items() if k not in HOST_ENV_KEYS and not k.startswith("RAY_")})
    env["CUDA_VISIBLE_DEVICES"] = ",".join(gpu_ids)
    env.setdefault("CUDA_DEVICE_ORDER", "PCI_BUS_ID")
    return env


class JobRunner:
    """One job on one node (a Ray actor; see the module docstring)."""

    def __init__(self) -> None:
        self.popen: subprocess.Popen[bytes] | None = None
        self.folder: Path | None = None
        self.tmp: Path | None = None
        self.inputs: Manifest | None = None
        self.offsets = {"metrics": 0, "log": 0}
        self.metrics_rel = "models/metrics.jsonl"
        self.code: int | None = None

    # -- calls from the orchestrator ---------------------------------------------------------------
    def start(self, spec: dict[str, Any], files: bytes | None = None, ship: bool | None = None) -> dict[str, Any]:
        """Start the job. ``spec``: JobSpec fields plus ``metrics`` (path of metrics.jsonl relative to the
        job folder). ``ship``: None = use the shared folder when visible, True = always run in a copy."""
        import ray

        from mmar_automl.launcher import spawn_cold

        if self.popen is not None:
            return self._info(spec)
        cwd = spec["cwd"]
        self.metrics_rel = spec.get("metrics") or self.metrics_rel
        if files is None:
            if ship or not job_folder_visible(cwd, spec["job_uid"]):
                return {"status": "need_files", "node_id": _node_id(), "node_ip": _node_ip()}
            folder = Path(cwd)
        else:
            self.tmp = Path(tempfile.mkdtemp(prefix=f"mmar-automl-{spec['job_uid']}-"))
            folder = self.tmp / Path(cwd).name
            unpack(files, folder)
            self.inputs = manifest(folder)
        self.folder = folder
        gpu_ids = [str(g) for g in ray.get_gpu_ids()]
        env = node_environment(spec["env"], dict(os.environ), gpu_ids)
        argv = [str(folder) if a == cwd else a for a in spec["argv"]]
        for key, value in list(env.items()):
            if value == cwd:  # MMAR_ROOT and friends name the job folder: point them at the copy
                env[key] = str(folder)
        log = str(folder / "log.txt") if self.tmp is not None else spec["log"]
        self.popen = spawn_cold(spec["entry"], argv, str(folder), env, log)
        return self._info(spec, gpu_ids)

    def _info(self, spec: dict[str, Any], gpu_ids: list[str] | None = None) -> dict[str, Any]:
        return {"status": "started", "node_id": _node_id(), "node_ip": _node_ip(),
                "pid": self.popen.pid if self.popen else None, "shipped": self.tmp is not None,
                "folder": str(self.folder), "gpu_ids": gpu_ids}

    def poll(self) -> dict[str, Any]:
        """Exit code (None while running) and, for a shipped job, the new complete lines of its metrics and log."""
        from mmar_automl.launcher import kill_group

        if self.popen is not None and self.code is None:
            code = self.popen.poll()
            if code is not None:
                kill_group(self.popen.pid, signal.SIGKILL)  # sweep the job's leftovers (loader workers)
                self.code = code
        answer: dict[str, Any] = {"code": self.code}
        if self.tmp is not None and self.folder is not None:
            # read after the exit check: lines written before the exit are all in this answer
            answer["metrics"] = self._new_bytes("metrics", self.folder / self.metrics_rel, whole_lines=True)
            answer["log"] = self._new_bytes("log", self.folder / "log.txt", whole_lines=False)
        return answer

    def signal(self, sig: int) -> bool:
        """Signal the job's whole process group (the job leader called setsid: pgid == pid)."""
        from mmar_automl.launcher import kill_group

        if self.popen is None or self.code is not None:
            return False
        return kill_group(self.popen.pid, int(sig))

    def collect(self) -> bytes:
        """The files the job created or changed (a tar), once it has ended; the temporary copy is removed."""
        if self.folder is None or self.tmp is None:
            return b""
        data = pack(self.folder, unchanged=self.inputs or {})
        self.cleanup()
        return data

    def cleanup(self) -> None:
        if self.tmp is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)

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

    def __del__(self) -> None:  # the actor is killed or the job ended: nothing stays on the node
        popen = getattr(self, "popen", None)  # Ray may collect a half-built instance
        try:
            if popen is not None and getattr(self, "code", None) is None:
                os.killpg(popen.pid, signal.SIGKILL)
        except OSError:
            pass
        if getattr(self, "tmp", None) is not None:
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
