"""Event hooks of a search (Clara's handler events); see base.Handler."""

from mmar_automl.handlers.base import EventType, Handler

__all__ = ["EventType", "Handler"]
