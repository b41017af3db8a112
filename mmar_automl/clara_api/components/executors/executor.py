"""``automl.components.executors.executor``: Clara's abstract Executor, for imports and type checks.

mmar-automl starts, follows and scores job processes itself (``mmar_automl.run.executor.MMARExecutor``),
so a BYOC executor that implements Clara's blocking ``execute`` is refused when a run is set up, with a
clear line; a BYOC executor that subclasses MMARExecutor runs (docs/byoc.md)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any


class Executor(ABC):
    """Clara's executor contract: find the search space, run one recommendation, return its score."""

    @abstractmethod
    def determine_search_space(self, ctx: Any) -> Any:
        """The search space of the MMAR."""

    @abstractmethod
    def execute(self, recommendation: Any, ctx: Any) -> Any:
        """Run one job to its end; return its score."""

    def abort(self, ctx: Any) -> None:
        """Stop running jobs."""

    def shutdown(self, ctx: Any) -> None:
        """Release resources."""


__all__ = ["Executor"]
