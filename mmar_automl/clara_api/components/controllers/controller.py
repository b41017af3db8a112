"""``automl.components.controllers.controller``: Clara's Controller is mmar-automl's own base class
(same method names: ``set_search_space``, ``initial_recommendation``, ``refine_recommendation``,
``shutdown``), so a BYOC controller runs in the engine as it is."""

from mmar_automl.controllers.base import Controller

__all__ = ["Controller"]
