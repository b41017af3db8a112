"""Clara 4.1 names that MONAI 1.6 lacks or spells differently, as working equivalents.

Looked up before MONAI (components.SEARCH_MODULES), so keep this module to names Clara configs use.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def Accuracy(  # noqa: N802 - a Clara component name
    include_background: bool = True,
    reduction: str = "mean",
    output_transform: Callable = lambda x: x,
    save_details: bool = True,
) -> Any:
    """Clara's ``Accuracy`` metric: voxel accuracy of one-hot ``pred``/``label`` lists, as MONAI's
    ConfusionMatrix handler computes it (ignite's Accuracy cannot take MONAI's decollated batches)."""
    from monai.handlers import ConfusionMatrix

    return ConfusionMatrix(
        include_background=include_background,
        metric_name="accuracy",
        reduction=reduction,
        output_transform=output_transform,
        save_details=save_details,
    )


class ConfDict(dict):
    """``@conf``: the whole config as a dict that checkpoint savers can store (they need state_dict)."""

    def state_dict(self) -> dict:
        return dict(self)

    def load_state_dict(self, state: dict) -> None:
        self.clear()
        self.update(state)
