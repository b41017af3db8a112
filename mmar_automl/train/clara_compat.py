"""Clara 4.1 names that MONAI 1.6 lacks or spells differently, as working equivalents.

Looked up before MONAI (components.SEARCH_MODULES), so keep this module to names Clara configs use.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
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


# -- models for evaluation (train/evaluate.py) ------------------------------------------------------------


def load_state(network: Any, ckpt_path: str | Path) -> Any:
    """Load a checkpoint into ``network``: our ``model.pt`` ({"model": state_dict, ...}), a Clara/MONAI
    CheckpointSaver file with a ``model`` key, or a bare state_dict."""
    checkpoint = read_checkpoint(ckpt_path)
    state = checkpoint["model"] if isinstance(checkpoint, dict) and "model" in checkpoint else checkpoint
    try:
        network.load_state_dict(state)
    except RuntimeError as err:  # torch's message: a header line, then one line per missing/mismatched key
        lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
        detail = lines[1] if len(lines) > 1 else (lines[0] if lines else "")
        raise RuntimeError(f"checkpoint {ckpt_path} does not fit the model {type(network).__name__} "
                           f"(trained with other args?): {detail[:300]}") from None
    network._mmar_loaded_from = str(ckpt_path)  # evaluate: weights loaded, no CheckpointLoader needed
    return network


def read_checkpoint(ckpt_path: str | Path) -> Any:
    """``torch.load`` on the CPU; a damaged file is one line that names it (torch's own words do not: a text
    file gives "ValueError: invalid literal for int() with base 10: ...")."""
    import torch

    try:
        return torch.load(str(ckpt_path), map_location="cpu", weights_only=False)
    except Exception as err:  # noqa: BLE001 - whatever torch raised, the file is what the user must fix
        first = next((ln.strip() for ln in str(err).splitlines() if ln.strip()), "")
        raise RuntimeError(f"cannot read checkpoint {ckpt_path} (damaged, or not a PyTorch checkpoint): "
                           f"{type(err).__name__}: {first}") from None


def load_torchscript(ts_path: str) -> Any:
    """Clara's ``"model": {"ts_path": "{MMAR_TORCHSCRIPT}"}``."""
    import torch

    if not Path(ts_path).is_file():
        raise FileNotFoundError(f"TorchScript model {ts_path} not found (run `mmar-automl export` first)")
    return torch.jit.load(str(ts_path), map_location="cpu")


def load_checkpoint_model(ckpt_path: str, mmar_root: str) -> Any:
    """Clara's ``"model": {"ckpt_path": "{MMAR_CKPT}"}``: the network of the config the checkpoint was
    trained with (``train_conf`` in it, as Clara saved) or else of the MMAR's config_train.json, with the
    checkpoint's weights."""
    from mmar_automl.config.mmar import Mmar
    from mmar_automl.train.resolver import Builder
    from mmar_automl.train.wiring import wire

    if not Path(ckpt_path).is_file():
        raise FileNotFoundError(f"checkpoint {ckpt_path} not found (train first)")
    checkpoint = read_checkpoint(ckpt_path)
    mmar = Mmar.open(mmar_root)
    conf, variables = mmar.substituted_config(), mmar.variables()
    if isinstance(checkpoint, dict) and isinstance(checkpoint.get("train_conf"), dict):
        conf = checkpoint["train_conf"]
    network = Builder(wire(conf, variables), str(mmar.train_config_file), mmar.root, "cpu", warn=lambda m: None).get(
        "train", "model")
    return load_state(network, ckpt_path)


class SegmentationSaver:
    """Clara's SegmentationSaver handler (MONAI removed it in 1.0): saves each prediction of an iteration
    with MONAI's SaveImage; the image metadata travels with the prediction (MetaTensor), so
    ``batch_transform`` is accepted and not needed."""

    def __init__(self, output_dir: str = "./", output_postfix: str = "seg", output_ext: str = ".nii.gz",
                 resample: bool = True, mode: str = "nearest", padding_mode: str = "border", scale: int | None = None,
                 dtype: Any = None, output_dtype: Any = None, squeeze_end_dims: bool = True,
                 data_root_dir: str = "", separate_folder: bool = True,
                 batch_transform: Callable = lambda x: x, output_transform: Callable = lambda x: x,
                 name: str | None = None) -> None:
        import numpy as np
        from monai.transforms import SaveImage

        self.output_transform = output_transform
        self.saver = SaveImage(output_dir=output_dir, output_postfix=output_postfix, output_ext=output_ext,
                               resample=resample, mode=mode, padding_mode=padding_mode, scale=scale,
                               dtype=dtype or np.float64, output_dtype=output_dtype or np.float32,
                               squeeze_end_dims=squeeze_end_dims, data_root_dir=data_root_dir,
                               separate_folder=separate_folder, print_log=False)

    def attach(self, engine: Any) -> None:
        from ignite.engine import Events

        engine.add_event_handler(Events.ITERATION_COMPLETED, self)

    def __call__(self, engine: Any) -> None:
        preds = self.output_transform(engine.state.output)
        for pred in preds if isinstance(preds, list) else [preds]:
            self.saver(pred)
