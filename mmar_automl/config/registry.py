"""Names usable in config_automl.json, mapped to "module:Class" so nothing heavy is imported to list them.

Clara's own names are accepted; those that Clara needed but mmar-automl does not (e.g. StatsHandler,
which only printed to the console) map to a built-in equivalent. A ``path`` component ("module.Class")
bypasses this table and is imported from the MMAR (its root, ``custom/`` and ``BYOC/`` on sys.path).
"""

from __future__ import annotations

import importlib
from typing import Any

CONTROLLERS: dict[str, str] = {
    "GridController": "mmar_automl.controllers.grid:GridController",
    "RandomController": "mmar_automl.controllers.random:RandomController",
    "ReinforcementController": "mmar_automl.controllers.reinforcement:ReinforcementController",
    "OptunaController": "mmar_automl.controllers.optuna:OptunaController",
}

EXECUTORS: dict[str, str] = {
    "MMARExecutor": "mmar_automl.run.executor:MMARExecutor",
}

HANDLERS: dict[str, str] = {
    "MMARHandler": "mmar_automl.handlers.mmar:MMARHandler",
    "StatsHandler": "mmar_automl.handlers.stats:StatsHandler",
    "MMARStatsHandler": "mmar_automl.handlers.stats:MMARStatsHandler",
    "MMARTensorboardHandler": "mmar_automl.handlers.tensorboard:MMARTensorboardHandler",  # no effect (a note)
    "MLflowHandler": "mmar_automl.handlers.mlflow:MLflowHandler",
    "ConsoleHandler": "mmar_automl.handlers.console:ConsoleHandler",
}

KINDS: dict[str, dict[str, str]] = {"controller": CONTROLLERS, "executor": EXECUTORS, "handlers": HANDLERS}


def import_target(target: str) -> Any:
    """Import "package.module:Name" or "package.module.Name" and return the attribute."""
    module_name, _, attr = target.partition(":") if ":" in target else target.rpartition(".")
    return getattr(importlib.import_module(module_name), attr)
