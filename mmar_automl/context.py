"""Clara's AutoML context: a property bag shared by engine, controller, executor and handlers."""

from __future__ import annotations

import threading
from typing import Any


class ContextKey:
    """Property names (Clara's, so that ported BYOC code keeps working)."""

    JOB_NAME = "JOB_NAME"
    CONCRETE_SEARCH_VALUE = "CONCRETE_SEARCH_VALUE"
    SCORE = "SCORE"
    JOB_STATUS = "JOB_STATUS"
    RECOMMENDATIONS = "RECOMMENDATIONS"
    SEARCH_SPACE = "SEARCH_SPACE"
    GPUS = "GPUS"
    NUM_WORKERS = "NUM_WORKERS"
    SEED = "SEED"
    RUN_ID = "RUN_ID"
    RUN_DIR = "RUN_DIR"
    MMAR_ROOT = "MMAR_ROOT"
    OUTCOME = "OUTCOME"
    JOB = "JOB"
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

    def stop_work(self, issuer: str, msg: str = "") -> None:
        self.stop_requested = True
        self.stop_issuer = issuer
        self.stop_message = msg
