"""Clara's MMARTensorboardHandler, accepted so that Clara's config_automl.json files (its BYO example
lists it) run unchanged. Clara's wrote each job's recommendation to TensorBoard; here each job's search
values are already in MLflow (params), the journal and the report, and each job's own TensorBoard events
(when its train config has a TensorBoardStatsHandler) are in its job folder, so
``tensorboard --logdir <run folder>`` shows the jobs side by side. It does nothing itself: ``run`` and
``validate`` say so on a ``note:`` line (``clara_no_effect``)."""

from __future__ import annotations

from typing import Any

from mmar_automl.handlers.base import Handler


class MMARTensorboardHandler(Handler):
    clara_no_effect = ("each job's search values are in MLflow and the report, and its TensorBoard events "
                       "(if its config writes them) in its job folder: tensorboard --logdir <run folder>")

    def __init__(self, **clara_args: Any):
        pass
