"""Handlers: event hooks with Clara's names. ``handle_event(event, ctx)`` dispatches to the method of
the same name, so a handler overrides only the events it cares about (Clara BYOC handlers that
override ``handle_event`` itself keep working). The engine isolates each handler's errors: a failing
handler is reported and skipped, it never stops the search.
"""

from __future__ import annotations

from mmar_automl.context import Context


class EventType:
    START_AUTOML = "start_automl"
    STARTUP = "startup"  # Clara blog's name for start_automl: accepted as an alias
    SEARCH_SPACE_AVAILABLE = "search_space_available"
    RECOMMENDATIONS_AVAILABLE = "recommendations_available"
    START_JOB = "start_job"
    JOB_METRICS = "job_metrics"  # ours: new metrics.jsonl records of a running job (ctx "METRICS")
    END_JOB = "end_job"
    ROUND_ENDED = "round_ended"
    END_AUTOML = "end_automl"
    SHUTDOWN = "shutdown"

    ALL = (START_AUTOML, SEARCH_SPACE_AVAILABLE, RECOMMENDATIONS_AVAILABLE, START_JOB, JOB_METRICS,
           END_JOB, ROUND_ENDED, END_AUTOML, SHUTDOWN)


class Handler:
    """Base class; every event is a no-op unless overridden.

    Context properties per event: ``JOB`` (a JobRecord snapshot) with start_job / job_metrics / end_job;
    ``METRICS`` (list of metrics.jsonl records) with job_metrics; ``SEARCH_SPACE`` from
    search_space_available on; ``RECOMMENDATIONS`` with recommendations_available; ``RUN_ID``,
    ``RUN_DIR``, ``MMAR_ROOT`` always.
    """

    def handle_event(self, event: str, ctx: Context) -> None:
        if event == EventType.START_AUTOML:
            self.startup(ctx)
        method = getattr(self, event, None)
        if callable(method):
            method(ctx)

    def startup(self, ctx: Context) -> None:
        """Alias of start_automl (called before it)."""
