"""Backends that start job processes somewhere other than this machine (the executor's ``Backend``).

``LocalBackend`` (this machine) lives in ``mmar_automl.backends.local``; ``RayBackend`` (a Ray cluster) in
``mmar_automl.backends.ray``. Nothing here imports Ray: ``--help`` and local runs never pay for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mmar_automl.errors import UsageError

if TYPE_CHECKING:
    from mmar_automl.backends.ray import RayBackend
    from mmar_automl.run.workers import WorkerSpec

BACKENDS = ("local", "ray")


def check_backend(name: str | None, ray_address: str | None = None) -> str:
    """The backend name of ``--backend`` (default local); UsageError for anything else."""
    name = (name or "local").strip().lower()
    if name not in BACKENDS:
        raise UsageError(f"--backend {name}: expected one of {', '.join(BACKENDS)}")
    if ray_address is not None and name != "ray":
        raise UsageError("--ray-address only applies to --backend ray")
    return name


def connect_ray(address: str | None, workers: str | None, *, cpus_per_job: float = 1.0,
                metrics: str = "models/metrics.jsonl", use_launcher: bool = True) -> tuple[RayBackend, list[WorkerSpec]]:
    """Connect to the Ray cluster and read ``--workers`` against its GPUs: ``0:0:1:1`` = four jobs at once,
    one GPU each; ``0,1:2,3`` = two jobs with two GPUs each; ``cpu:cpu`` = two CPU jobs. The indices only
    count GPUs: Ray picks the node and the GPUs. Default: one job per GPU of the cluster, else one CPU job
    per ``cpus_per_job`` CPUs of the cluster. ``use_launcher``: jobs fork from a preloaded launcher on their
    node (False: every job starts a fresh interpreter, as ``--no-launcher`` does locally)."""
    from mmar_automl.backends.ray import RayBackend, import_ray

    import_ray()
    backend = RayBackend(address, cpus_per_job=cpus_per_job, metrics=metrics, use_launcher=use_launcher)
    backend.start()
    try:
        return backend, ray_workers(workers, backend)
    except BaseException:
        backend.shutdown()
        raise


def provisional_workers(text: str | None) -> list[WorkerSpec]:
    """``--workers`` read before connecting (syntax errors exit 2 at once; checks that need a worker count
    get one); :func:`connect_ray` gives the real list, checked against the cluster."""
    import re

    from mmar_automl.run.workers import Gpu, WorkerSpec, parse_workers

    if text is None or not text.strip():
        return [WorkerSpec(1, [])]
    ids = [int(t) for t in re.findall(r"\d+", text)]
    return parse_workers(text, [Gpu(i, i, f"ray:{i}") for i in range(max(ids, default=-1) + 1)])


def ray_workers(text: str | None, backend: RayBackend) -> list[WorkerSpec]:
    from mmar_automl.run.workers import Gpu, WorkerSpec, parse_workers

    nodes = backend.alive_nodes()
    total_gpus = int(sum(n["resources"].get("GPU", 0) for n in nodes))
    if text is None or not text.strip():
        if total_gpus:
            workers = [WorkerSpec(k + 1, [k]) for k in range(total_gpus)]
        else:
            cpus = sum(n["resources"].get("CPU", 0) for n in nodes)
            workers = [WorkerSpec(k + 1, []) for k in range(max(1, int(cpus // backend.cpus_per_job)))]
    else:
        virtual = [Gpu(i, i, f"ray:{i}") for i in range(total_gpus)]
        try:
            workers = parse_workers(text, virtual)
        except UsageError as err:
            raise UsageError(str(err).replace("NVML sees", "the Ray cluster has")) from None
    backend.check_fits([len(w.gpus) for w in workers])
    return workers
