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


class ConfDict:
    """``@conf``: the whole config as an object that checkpoint savers can store (they need
    state_dict). Not a Mapping on purpose: ignite's Checkpoint descends into Mappings and would ask
    every config value for its state_dict. Reads like a dict in ``#`` expressions (``@conf['epochs']``)."""

    def __init__(self, config: dict) -> None:
        self._config = dict(config)

    def state_dict(self) -> dict:
        return dict(self._config)

    def load_state_dict(self, state: dict) -> None:
        self._config = dict(state)

    def __getitem__(self, key: str) -> Any:
        return self._config[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self._config.get(key, default)

    def __contains__(self, key: object) -> bool:
        return key in self._config

    def __iter__(self):  # noqa: ANN204
        return iter(self._config)

    def __len__(self) -> int:
        return len(self._config)

    def keys(self):  # noqa: ANN201
        return self._config.keys()

    def items(self):  # noqa: ANN201
        return self._config.items()
