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


def on_decollated(fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """A Clara 4.0 ``output_transform`` lambda (``lambda x: x['loss']``, ``lambda x: (x['pred'], x['label'])``)
    was written for a batch dict; since MONAI 0.6 an engine's output is a list with one dict per item.
    On such a list the lambda sees a view where ``x[key]`` is the per-item list (what MONAI's
    ``from_engine`` gives) or, when every item holds the same number (the loss), that number."""

    def transform(output: Any) -> Any:
        if isinstance(output, list) and output and all(isinstance(o, dict) for o in output):
            return fn(_Decollated(output))
        return fn(output)

    return transform


class _Decollated:
    """Read-only batch-dict view of a decollated engine output."""

    def __init__(self, items: list[dict]) -> None:
        self._items = items

    def __getitem__(self, key: str) -> Any:
        values = [item[key] for item in self._items]
        first = values[0]
        if isinstance(first, (int, float)) and all(v == first for v in values):
            return first
        if getattr(first, "ndim", None) == 0 and all(v is first for v in values):
            return first
        return values

    def get(self, key: str, default: Any = None) -> Any:
        return self[key] if key in self._items[0] else default

    def __contains__(self, key: object) -> bool:
        return key in self._items[0]

    def keys(self):  # noqa: ANN201
        return self._items[0].keys()
