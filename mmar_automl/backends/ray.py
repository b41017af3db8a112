"""Run the jobs of a search on a Ray cluster (``mmar-automl run MMAR --backend ray``).

Each job runs in a ``JobRunner`` actor (``_ray_node.py``) asking Ray for the job's GPUs (``num_gpus`` =
the worker's GPU count) and ``cpus_per_job`` CPUs, so Ray places it on a node with free GPUs; the actor
starts the usual job entry in a child process group there (forked from its own preloaded launcher). A
finished job's actor, launcher still warm, runs the search's next job with the same GPU count. Everything
else stays with the executor: job folders, metrics following, scores, journal, handlers, MLflow.

Never blocking: every call to an actor is fire-and-forget; ``poll`` looks at the outstanding answer with
``ray.wait(timeout=0)``. A job whose actor or node dies answers ``UNKNOWN_EXIT`` with a one-line reason
(``Handle.lost_reason``, also appended to its log.txt), so the engine records it FAILED and retries it
per ``--max-retries``; an actor silent for ``lost_after`` seconds counts as lost too (a partitioned node).

Files: by default the job folder is on a filesystem every node sees (NFS, Lustre). Where a node does not
see it, the folder is shipped there as a tar through the object store, metrics and log lines are streamed
back into the orchestrator's copy while the job runs, and the created files come back at its end.

Ray is an optional extra, imported only inside functions (``pip install 'mmar-automl[ray]'``).
"""

from __future__ import annotations

import logging
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mmar_automl.errors import UsageError
from mmar_automl.backends.protocol import UNKNOWN_EXIT, Handle, JobSpec

log = logging.getLogger("mmar_automl.backends.ray")
INSTALL_HINT = "pip install 'mmar-automl[ray]'"
SHIP_ENV = "MMAR_AUTOML_RAY_SHIP_FILES"     # "1": always ship job folders (tests a cluster without shared files)
FORCE_KILL_AFTER_S = 5.0                    # after a SIGKILL request, the actor itself is killed


def import_ray() -> Any:
    """``import ray``, or a UsageError (exit 2) saying how to install it."""
    try:
        import ray
    except ImportError:
        raise UsageError(f"--backend ray needs Ray, which is not installed: {INSTALL_HINT}") from None
    return ray


@dataclass
class RayHandle(Handle):
    """A job on the cluster. ``pid`` is 0: the process lives on another node (nothing to signal here)."""

    actor: Any = None
    gpus: int = 0
    reused: bool = False                # the actor ran an earlier job of this search
    ref: Any = None                     # the outstanding actor call
    stage: str = "starting"             # starting -> running -> collecting -> done
    asked_at: float = 0.0               # monotonic time of the outstanding call
    code: int | None = None             # the job's exit code once known
    lost_reason: str | None = None
    call: tuple[str, tuple[Any, ...]] = ("", ())   # the outstanding actor call, to ask again
    unavailable_since: float | None = None
    shipped: bool = False
    node_id: str | None = None
    node_ip: str | None = None
    kill_sent: int | None = None
    force_kill_at: float | None = None
    info: dict[str, Any] = field(default_factory=dict)


class RayBackend:
    """The executor's Backend on a Ray cluster (see the module docstring).

    ``address``: ``auto`` (default: the cluster of ``ray start`` or $RAY_ADDRESS), ``local`` (a private Ray
    instance on this machine) or ``HOST:PORT`` / ``ray://HOST:PORT``. ``ship_files``: None = ship only to
    nodes that do not see the job folder, True = always. ``metrics`` is the path of metrics.jsonl in a job
    folder (the MMAR's ``MMAR_CKPT_DIR``)."""

    def __init__(self, address: str | None = "auto", *, cpus_per_job: float = 1.0, ship_files: bool | None = None,
                 poll_interval: float = 0.1, lost_after: float = 60.0, metrics: str = "models/metrics.jsonl",
                 use_launcher: bool = True, reuse_actors: bool = True, init_kwargs: dict[str, Any] | None = None):
        self.address = address or "auto"
        self.use_launcher = use_launcher
        self.reuse_actors = reuse_actors
        self.cpus_per_job = cpus_per_job
        if ship_files is None and os.environ.get(SHIP_ENV) == "1":
            ship_files = True
        self.ship_files = ship_files
        self.poll_interval = poll_interval
        self.lost_after = lost_after
        self.metrics = metrics
        self.init_kwargs = dict(init_kwargs or {})
        self._owns_ray = False
        self._actor_cls: Any = None
        self._handles: list[RayHandle] = []
        self._idle: list[tuple[int, Any, str | None]] = []   # (GPU count, actor, node id) ready for a next job
        self._alive: tuple[float, set[str]] = (0.0, set())

    # -- connection ------------------------------------------------------------------------------------
    def start(self) -> None:
        """Connect to the cluster (idempotent); UsageError (exit 2) when none is reachable."""
        ray = import_ray()
        if not ray.is_initialized():
            _probe(self.address)
            _cluster_messages_to_stderr()
            kwargs = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.WARNING,
                      **self.init_kwargs}
            try:
                ray.init(address=self.address, **kwargs)
            except (ConnectionError, ValueError, RuntimeError) as err:
                first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
                raise UsageError(f"--ray-address {self.address}: cannot connect to a Ray cluster ({first}); "
                                 "start one with `ray start --head` or use --ray-address local") from None
            self._owns_ray = True
        if self._actor_cls is None:
            from mmar_automl.backends._ray_node import JobRunner

            self._actor_cls = ray.remote(max_restarts=0, max_task_retries=0)(JobRunner)

    def alive_nodes(self) -> list[dict[str, Any]]:
        """The cluster's live nodes as ``{"id", "ip", "resources"}``."""
        ray = import_ray()
        self.start()
        return [{"id": n["NodeID"], "ip": n.get("NodeManagerAddress", ""), "resources": dict(n.get("Resources", {}))}
                for n in ray.nodes() if n.get("Alive")]

    def cluster_gpus(self) -> int:
        return int(sum(n["resources"].get("GPU", 0) for n in self.alive_nodes()))

    def check_fits(self, gpu_counts: list[int]) -> None:
        """UsageError when some worker asks for more GPUs/CPUs than any live node has (it would wait for ever)."""
        nodes = self.alive_nodes()
        for count in sorted(set(gpu_counts)):
            if not any(n["resources"].get("GPU", 0) >= count and n["resources"].get("CPU", 0) >= self.cpus_per_job
                       for n in nodes):
                best = max((n["resources"].get("GPU", 0) for n in nodes), default=0)
                raise UsageError(f"--workers: a job asks for {count} GPU(s) and {self.cpus_per_job:g} CPU(s) but no "
                                 f"live Ray node has that much (the largest has {best:g} GPU(s))")

    # -- Backend protocol ---------------------------------------------------------------------------------
    def submit(self, spec: JobSpec) -> RayHandle:
        self.start()
        gpus = job_gpu_count(spec)
        actor = self._take_idle(gpus)
        handle = RayHandle(spec, 0, "ray", actor=actor or self._new_actor(gpus), gpus=gpus, reused=actor is not None)
        self._ask_start(handle, None)
        self._handles.append(handle)
        return handle

    def _new_actor(self, gpus: int) -> Any:
        # Idle actors asking for another GPU count hold resources this one may need: let them go.
        for entry in [e for e in self._idle if e[0] != gpus]:
            self._idle.remove(entry)
            _kill_actor(entry[1])
        return self._actor_cls.options(num_cpus=self.cpus_per_job, num_gpus=gpus).remote(self.use_launcher)

    def _take_idle(self, gpus: int) -> Any:
        """An idle actor with this GPU count on a live node (its launcher is warm), or None."""
        if not self._idle:
            return None
        alive = self._alive_node_ids()
        for entry in list(self._idle):
            if entry[2] is not None and entry[2] not in alive:
                self._idle.remove(entry)
                _kill_actor(entry[1])
        for entry in self._idle:
            if entry[0] == gpus:
                self._idle.remove(entry)
                return entry[1]
        return None

    def _alive_node_ids(self) -> set[str]:
        at, ids = self._alive
        if time.monotonic() - at > 1.0:
            ray = import_ray()
            ids = {n["NodeID"] for n in ray.nodes() if n.get("Alive")}
            self._alive = (time.monotonic(), ids)
        return ids

    def poll(self, handle: Handle) -> int | None:
        assert isinstance(handle, RayHandle)
        if handle.stage == "done":
            return handle.code
        now = time.monotonic()
        if handle.force_kill_at is not None and now >= handle.force_kill_at:
            self._lost(handle, None, killed=True)
            return handle.code
        if isinstance(handle.ref, _Later):
            if now >= handle.ref.at:
                name, args = handle.call if handle.unavailable_since is not None else ("poll", ())
                self._ask(handle, getattr(handle.actor, name).remote(*args), (name, args))
            return None
        ray = import_ray()
        ready, _ = ray.wait([handle.ref], timeout=0)
        if not ready:
            if handle.stage in ("running", "collecting") and now - handle.asked_at > self.lost_after:
                self._lost(handle, f"its Ray actor on node {handle.node_ip or '?'} did not answer for "
                                   f"{self.lost_after:g} s")
                return handle.code
            return None
        try:
            answer = ray.get(handle.ref)
        except Exception as err:  # noqa: BLE001 - actor/node died, task failed: the job is lost, not the run
            if type(err).__name__ == "ActorUnavailableError":
                # "temporarily unavailable": ask again; a dead node's actors are soon declared dead (ActorDiedError)
                handle.unavailable_since = handle.unavailable_since or now
                if now - handle.unavailable_since < self.lost_after:
                    handle.ref = _Later(now + 1.0)
                    return None
                self._lost(handle, f"its Ray actor was unreachable for {self.lost_after:g} s")
                return handle.code
            if handle.stage == "starting" and handle.reused:
                # an idle actor died with its node before this job reached it: start on a fresh one
                _kill_actor(handle.actor)
                handle.actor, handle.reused = self._new_actor(handle.gpus), False
                self._ask_start(handle, None)
                return None
            self._lost(handle, _describe(err))
            return handle.code
        return self._advance(handle, answer, now)

    def kill(self, handle: Handle, sig: int) -> None:
        assert isinstance(handle, RayHandle)
        if handle.stage == "done":
            return
        handle.kill_sent = int(sig)
        if handle.stage == "starting":
            # not running yet (waiting for resources, or shipping): nothing to signal, end it here
            self._lost(handle, None, killed=True)
            return
        handle.actor.signal.remote(int(sig))
        if sig == signal.SIGKILL and handle.force_kill_at is None:
            handle.force_kill_at = time.monotonic() + FORCE_KILL_AFTER_S

    def shutdown(self) -> None:
        ray = import_ray() if self._handles or self._idle or self._owns_ray else None
        for handle in self._handles:
            if handle.stage != "done" and handle.actor is not None:
                _kill_actor(handle.actor)
        for _gpus, actor, _node in self._idle:
            _kill_actor(actor)
        self._handles, self._idle = [], []
        if self._owns_ray and ray is not None and ray.is_initialized():
            ray.shutdown()
        self._owns_ray = False

    # -- the stages of a job ---------------------------------------------------------------------------------
    def _advance(self, handle: RayHandle, answer: Any, now: float) -> int | None:
        ray = import_ray()
        handle.unavailable_since = None
        if handle.stage == "starting":
            if answer.get("status") == "need_files":
                from mmar_automl.backends._ship import pack

                self._ask_start(handle, ray.put(pack(Path(handle.spec.cwd))))
                return None
            handle.info = answer
            handle.shipped = bool(answer.get("shipped"))
            handle.node_id, handle.node_ip = answer.get("node_id"), answer.get("node_ip")
            _write_placement(handle)
            handle.stage = "running"
            if handle.kill_sent is not None:
                handle.actor.signal.remote(handle.kill_sent)
            self._ask(handle, handle.actor.poll.remote())
            return None
        if handle.stage == "running":
            if handle.shipped:
                folder = Path(handle.spec.cwd)
                _append(folder / self.metrics, answer.get("metrics") or b"")
                _append(folder / "log.txt", answer.get("log") or b"")
            code = answer.get("code")
            if code is None:  # ask again after poll_interval (the engine polls every 50 ms)
                handle.ref = _Later(now + self.poll_interval)
                return None
            handle.code = int(code)
            if handle.shipped:
                handle.stage = "collecting"
                self._ask(handle, handle.actor.collect.remote(), ("collect", ()))
                return None
            return self._done(handle)
        if handle.stage == "collecting":
            from mmar_automl.backends._ship import unpack

            if answer:
                unpack(answer, Path(handle.spec.cwd))
            return self._done(handle)
        return handle.code

    def _ask_start(self, handle: RayHandle, files: Any) -> None:
        args = (self._spec_dict(handle.spec), files, True if files is not None else self.ship_files)
        self._ask(handle, handle.actor.start.remote(*args), ("start", args))

    def _ask(self, handle: RayHandle, ref: Any, call: tuple[str, tuple[Any, ...]] = ("poll", ())) -> None:
        handle.ref = ref
        handle.call = call
        handle.asked_at = time.monotonic()

    def _done(self, handle: RayHandle) -> int | None:
        handle.stage = "done"
        if handle in self._handles:
            self._handles.remove(handle)
        # Keep the actor warm for the next job, unless a fresh actor waits (maybe for these very resources:
        # an idle actor would starve it, e.g. a retry after a node loss on a now smaller cluster).
        waiting = any(h.stage == "starting" and not h.reused for h in self._handles)
        if self.reuse_actors and not waiting:
            self._idle.append((handle.gpus, handle.actor, handle.node_id))
        else:
            _kill_actor(handle.actor)  # frees its GPUs and CPUs now
        return handle.code

    def _lost(self, handle: RayHandle, reason: str | None, killed: bool = False) -> None:
        """End a job whose actor died, hung or was killed before its process ran."""
        _kill_actor(handle.actor)
        handle.stage = "done"
        if handle in self._handles:
            self._handles.remove(handle)
        if handle.node_id is not None:  # idle actors on a dead node are dead too
            for entry in [e for e in self._idle if e[2] == handle.node_id and not killed]:
                self._idle.remove(entry)
                _kill_actor(entry[1])
        if killed and reason is None:
            handle.code = -int(handle.kill_sent or signal.SIGKILL)
            return
        handle.code = UNKNOWN_EXIT
        where = f"Ray node {handle.node_ip or '?'} ({(handle.node_id or '?')[:12]})" if handle.node_id else "Ray"
        handle.lost_reason = f"lost on {where}: {reason}"
        _append(Path(handle.spec.cwd) / "log.txt", f"\nmmar-automl: job {handle.lost_reason}\n".encode())
        log.warning("job %s %s", Path(handle.spec.cwd).name, handle.lost_reason)

    def _spec_dict(self, spec: JobSpec) -> dict[str, Any]:
        from mmar_automl.backends.launcher import default_preload

        return {"job_uid": spec.job_uid, "entry": spec.entry, "argv": list(spec.argv), "cwd": spec.cwd,
                "env": dict(spec.env), "log": spec.log, "metrics": self.metrics, "preload": default_preload(spec.entry)}


class _Later:
    """A not-yet-issued poll; ``ray.wait`` is never given one (see RayBackend.poll)."""

    def __init__(self, at: float):
        self.at = at


def _cluster_messages_to_stderr() -> None:
    """Ray prints cluster errors ("node ... marked dead") on the driver's stdout; ours holds results only."""
    try:
        from ray._private import worker as ray_worker
    except ImportError:
        return
    original = getattr(ray_worker, "print_to_stdstream", None)
    if original is None or getattr(original, "_to_stderr", False):
        return

    def to_stderr(data: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        return original({**data, "is_err": True}, *args, **kwargs)

    to_stderr._to_stderr = True  # type: ignore[attr-defined]
    ray_worker.print_to_stdstream = to_stderr


def _probe(address: str, timeout: float = 5.0) -> None:
    """Fail fast on a HOST:PORT nobody listens on (ray.init would retry for minutes)."""
    import socket

    given = address
    if address == "auto":  # what ray.init("auto") will use: $RAY_ADDRESS, else the last `ray start` here
        try:
            from ray._private.services import canonicalize_bootstrap_address

            address = canonicalize_bootstrap_address("auto") or "local"
        except ConnectionError:
            return  # none at all: ray.init says so at once
        except Exception:  # noqa: BLE001 - a private helper that moved: let ray.init decide
            return
    if address in ("auto", "local") or "://" in address:
        return
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise UsageError(f"--ray-address {address}: expected auto, local, HOST:PORT or ray://HOST:PORT")
    try:
        socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout).close()
    except OSError as err:
        shown = address if given == address else f"{given} (= {address})"
        raise UsageError(f"--ray-address {shown}: no Ray cluster answers there ({err.strerror or err}); "
                         "start one with `ray start --head` or check the address") from None


def job_gpu_count(spec: JobSpec) -> int:
    """GPUs a job asks Ray for: ``spec.num_gpus`` when the executor sets it, else the worker's GPU list as the
    executor wrote it into CUDA_VISIBLE_DEVICES (on a Ray cluster those indices only count GPUs)."""
    count = getattr(spec, "num_gpus", None)
    if isinstance(count, int):
        return count
    visible = spec.env.get("CUDA_VISIBLE_DEVICES", "")
    return len([g for g in visible.split(",") if g.strip()])


def _kill_actor(actor: Any) -> None:
    ray = import_ray()
    try:
        ray.kill(actor, no_restart=True)
    except Exception:  # noqa: BLE001 - already dead
        pass


def _describe(err: BaseException) -> str:
    text = str(err)
    if "node has died" in text or "node died" in text.lower():
        return f"the node died ({type(err).__name__})"
    first = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    return f"{type(err).__name__}: {first.split('. ')[0]}"[:200]


def _append(path: Path, data: bytes) -> None:
    if not data:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "ab") as f:
        f.write(data)


def _write_placement(handle: RayHandle) -> None:
    """``ray_node.json`` in the job folder: where the job ran (for people and tests)."""
    import json

    info = {k: handle.info.get(k) for k in ("node_id", "node_ip", "pid", "shipped", "gpu_ids", "folder", "via",
                                            "jobs_run")}
    try:
        (Path(handle.spec.cwd) / "ray_node.json").write_text(json.dumps(info, indent=1) + "\n", encoding="utf-8")
    except OSError:
        pass
