"""Clara's AutoML context: a property bag shared by engine, controller, executor and handlers."""

from __future__ import annotations

import threading
from typing import Any


class ContextKey:
    """Property names. Clara's keys carry Clara's own strings, so that BYOC code that uses the member or
    the literal (``ctx.get_prop("_jobName")``) reads the same value; the rest are mmar-automl's."""

    # Clara's (values as in Clara Train 4.x; shapes in docs/byoc.md):
    JOB_NAME = "_jobName"                          # "W1_2_J3"
    CONCRETE_SEARCH_VALUE = "_concreteSearchValue"  # {PRL: [one concrete value per arg]}
    SCORE = "_score"                               # the job's score, None when it has none
    JOB_STATUS = "_jobStatus"                      # recommendation.JobState (a str: "COMPLETE" ...)
    PROCESS_EXIT_STATUS = "_processExitStatus"     # the job process's exit code (None: unknown)
    RECOMMENDATION = "_recommendation"             # the job's clara_api.defs.Recommendation
    RECOMMENDATIONS = "_recommendations"           # the new batch (clara_api.defs.Recommendation)
    SEARCH_SPACE = "_searchSpace"                  # search.space.SearchSpace (Clara's ``.targets`` too)
    GPUS = "_gpus"
    NUM_WORKERS = "_numWorkers"
    # mmar-automl's:
    SEED = "SEED"
    RUN_ID = "RUN_ID"
    RUN_DIR = "RUN_DIR"
    MMAR_ROOT = "MMAR_ROOT"
    OUTCOME = "OUTCOME"
    JOB = "JOB"
    # ours, set by the engine (mmar_automl.run.engine) for handlers:
    WORKERS = "WORKERS"                # worker labels ("cpu", "0", "0,1"), one per slot
    GPU_DEVICES = "GPU_DEVICES"        # the run's GPUs (workers.Gpu: CUDA index, NVML index, PCI bus id)
    RESUMED = "RESUMED"                # this session continues a run (run --resume)
    PREVIOUS_JOBS = "PREVIOUS_JOBS"    # on resume: JobRecords of earlier sessions, at start_automl
    METRICS = "METRICS"                # new metrics.jsonl records of a running job, at job_metrics
    OPTIONS = "OPTIONS"                # the run's options as a dict (run.plan.RunPlan.options_json())
    CONTROLLER = "CONTROLLER"          # the controller's label from config_automl.json
    STOP_REASON = "STOP_REASON"        # why the run stopped (None: it ran out of work), at end_automl
    INTERRUPTED = "INTERRUPTED"        # the run was interrupted (Ctrl-C, SIGTERM), at end_automl
    CONSOLE = "CONSOLE"                # the rich Console that handlers print to (the CLI's stderr)
    WARM_START = "WARM_START"          # earlier jobs to learn from: [{"point", "score", "job"}] (run/warmstart.py)


class Context:
    """``get_prop``/``set_prop`` plus ``stop_work``: any participant may ask the engine to stop."""

    def __init__(self, **props: Any):
        self._props: dict[str, Any] = dict(props)
        self._lock = threading.Lock()
        self.stop_requested = False
        self.stop_issuer: str | None = None
        self.stop_message: str | None = None

    def get_prop(self, key: str, default: Any = None) -> Any:
        with self._lock:
            return self._props.get(key, default)

    def set_prop(self, key: str, value: Any) -> None:
        with self._lock:
            self._props[key] = value

    def stop_work(self, issuer: Any, msg: str = "") -> None:
        """Stop scheduling; running jobs finish. ``issuer`` is a name or (Clara code passes ``self``) an object.
        The first request is the run's stop reason: a controller told of the jobs that finish after it may
        ask again."""
        if self.stop_requested:
            return
        self.stop_requested = True
        self.stop_issuer = issuer if isinstance(issuer, str) else type(issuer).__name__
        self.stop_message = msg

    # Clara's names for the same facts (its Context API: a controller may check them before recommending)
    def stop_work_asked(self) -> bool:
        """Whether someone asked to stop work (Clara's name)."""
        return self.stop_requested

    def get_stop_message(self) -> str | None:
        """The first stop request's message (Clara's name); None when no stop was asked."""
        return self.stop_message
