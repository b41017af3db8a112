"""Controllers: decide which points of the search space to evaluate (Clara's interface, see base.py).

Importing this package is cheap: Optuna is imported only when an OptunaController or a pruner is built.
"""

from __future__ import annotations

from mmar_automl.controllers.base import Controller
from mmar_automl.controllers.grid import GridController
from mmar_automl.controllers.optuna import OptunaController
from mmar_automl.controllers.pruning import Pruner, learning_score
from mmar_automl.controllers.random import RandomController
from mmar_automl.controllers.reinforcement import ReinforcementController

__all__ = [
    "Controller", "GridController", "OptunaController", "Pruner", "RandomController", "ReinforcementController",
    "learning_score",
]
