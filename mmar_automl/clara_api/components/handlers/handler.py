"""``automl.components.handlers.handler``: Clara's Handler is mmar-automl's own base class; it calls the
method named after each event (``startup``, ``start_job``, ``end_job``, ``round_ended``, ``shutdown`` ...)."""

from mmar_automl.handlers.base import Handler

__all__ = ["Handler"]
