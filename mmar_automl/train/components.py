"""Component names -> Python classes, and the Clara 4.1 -> MONAI 1.6 translation table.

A Clara component is ``{"name": "UNet", "args": {...}}`` (looked up in MONAI, torch and ignite, in
the order of ``SEARCH_MODULES``) or ``{"path": "module.Class", "args": {...}}`` (imported, e.g. from the
MMAR's ``custom/`` folder). MONAI renamed or dropped some names and args since Clara 4.1: every known
case goes through ``translate`` with one warning; anything else unknown is a ConfigError naming the
JSON path, with the nearest name as a suggestion.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import types
import typing
from collections.abc import Callable
from typing import Any

from mmar_automl.errors import ConfigError, JsonPath

# Where a bare ``name`` is looked up, first match wins. Trainer-side helpers of our own come first so
# that Clara names MONAI lacks (``Accuracy`` on decollated batches) resolve to a working equivalent.
SEARCH_MODULES = (
    "mmar_automl.train.clara_compat",
    "monai.transforms",
    "monai.networks.nets",
    "monai.losses",
    "monai.handlers",
    "monai.metrics",
    "monai.inferers",
    "monai.data",
    "monai.optimizers",
    "monai.engines",
    "torch.optim",
    "torch.optim.lr_scheduler",
    "torch.nn",
    "ignite.metrics",
    "ignite.handlers",
)

# Clara 4.x component names that MONAI 1.6 no longer has: name -> (new name, args to add). Surveyed from
# MONAI's CHANGELOG 0.5 -> 1.6 for the components Clara 4.0/4.1 MMARs used (docs/training.md lists them).
RENAMED_COMPONENTS: dict[str, tuple[str, dict[str, Any]]] = {
    "LoadNiftid": ("LoadImaged", {}),        # 0.5: the format-specific loaders became LoadImage(d)
    "LoadNumpyd": ("LoadImaged", {}),
    "LoadPNGd": ("LoadImaged", {}),
    "LoadNifti": ("LoadImage", {}),
    "LoadNumpy": ("LoadImage", {}),
    "LoadPNG": ("LoadImage", {}),
    "TorchVisionFullyConvModel": ("TorchVisionFCModel", {"use_conv": True}),  # 0.9 (pathology MMARs)
    "AddChanneld": ("EnsureChannelFirstd", {"channel_dim": "no_channel"}),
    "AddChannel": ("EnsureChannelFirst", {"channel_dim": "no_channel"}),
    "AsChannelFirstd": ("EnsureChannelFirstd", {}),
    "AsChannelFirst": ("EnsureChannelFirst", {}),
    "SplitChanneld": ("SplitDimd", {}),
    "SplitChannel": ("SplitDim", {}),
}

# Clara 4.1 names MONAI 1.6 dropped with no drop-in equivalent: the error says what to use instead.
REMOVED_COMPONENTS: dict[str, str] = {
    "TransformInverter": "removed from MONAI: invert transforms with an Invertd post transform",
}

# Clara names MONAI 1.6 dropped that mmar-automl provides itself (train/clara_compat.py), with a note.
REPLACED_COMPONENTS: dict[str, str] = {
    "SegmentationSaver": "removed from MONAI 1.0: predictions saved with MONAI's SaveImage (mmar-automl's equivalent)",
}

# (component name or "*", old arg) -> new arg name.
RENAMED_ARGS: dict[tuple[str, str], str] = {
    ("UNet", "dimensions"): "spatial_dims",
    ("BasicUNet", "dimensions"): "spatial_dims",
    ("DynUNet", "dimensions"): "spatial_dims",
    ("SegResNet", "dimensions"): "spatial_dims",
    ("DenseNet121", "dimensions"): "spatial_dims",
    ("DenseNet", "dimensions"): "spatial_dims",
    ("HighResNet", "dimensions"): "spatial_dims",
    ("VNet", "dimensions"): "spatial_dims",
    ("AHNet", "dimensions"): "spatial_dims",
    ("SplitDimd", "channel_dim"): "dim",
    ("SplitDim", "channel_dim"): "dim",
    ("SupervisedTrainer", "post_transform"): "postprocessing",  # 0.6
    ("SupervisedEvaluator", "post_transform"): "postprocessing",
    ("EnsembleEvaluator", "post_transform"): "postprocessing",
    ("DiceCELoss", "ce_weight"): "weight",  # 1.2
    ("DiceFocalLoss", "focal_weight"): "weight",
    ("TorchVisionFCModel", "n_classes"): "num_classes",
}

# Args MONAI removed because they no longer do anything: dropped with a note when the MONAI class no
# longer takes them. ``batched`` (deepgrow transforms): batches are decollated before post transforms
# since 0.6; ``as_tensor_output`` (affine/elastic transforms): outputs are always tensors since 1.0;
# ``meta_keys``/``meta_key_postfix`` (Spacingd, Orientationd, RandCropByPosNegLabeld...): MetaTensor
# carries the metadata since 1.0.
DROPPED_ARGS: dict[str, str] = {
    "batched": "batches are decollated before transforms run since MONAI 0.6",
    "as_tensor_output": "outputs are always tensors since MONAI 1.0",
    "meta_keys": "images carry their metadata (MetaTensor) since MONAI 1.0",
    "meta_key_postfix": "images carry their metadata (MetaTensor) since MONAI 1.0",
}

# Args Clara configs used that MONAI dropped while changing what the component does: no translation
# keeps the meaning, so the error says what to write instead.
_WSI = ("was MONAI 0.8's pathology PatchWSIDataset (a region cut into a grid of patches); MONAI 1.6's "
        "takes patch_size, patch_level and reader: rewrite the dataset's args")
_DICE = "was removed from MONAI's MeanDice in 0.5: put Activationsd/AsDiscreted in post_transforms instead"
CHANGED_ARGS: dict[tuple[str, str], str] = {
    ("PatchWSIDataset", "region_size"): _WSI,
    ("PatchWSIDataset", "grid_shape"): _WSI,
    ("PatchWSIDataset", "image_reader_name"): _WSI,
    ("MeanDice", "mutually_exclusive"): _DICE,
    ("MeanDice", "sigmoid"): _DICE,
    ("MeanDice", "logit_thresh"): _DICE,
    ("MeanDice", "to_onehot_y"): _DICE,
}

# Clara's deepgrow MMARs import their transforms as ``deepgrow.transforms.X``: the package moved into
# MONAI. Used only when no such module can be imported (an MMAR shipping its own copy keeps it).
RENAMED_MODULES: dict[str, str] = {
    "deepgrow": "monai.apps.deepgrow",
}


def _warn(warn: Callable[[str], None] | None, message: str) -> None:
    if warn is not None:
        warn(message)


def translate(name: str, args: dict[str, Any], warn: Callable[[str], None] | None = None) -> tuple[str, dict]:
    """Rewrite a Clara 4.1 (name, args) into MONAI 1.6 spelling, calling ``warn`` for each rewrite."""
    args = dict(args)
    if name in REPLACED_COMPONENTS:
        _warn(warn, f"Clara name {name}: {REPLACED_COMPONENTS[name]}")
    if name in RENAMED_COMPONENTS:
        new, extra = RENAMED_COMPONENTS[name]
        _warn(warn, f"Clara name {name} is {new} in MONAI 1.6: translated")
        for key, value in extra.items():
            args.setdefault(key, value)
        name = new
    for (owner, old), new in RENAMED_ARGS.items():
        if owner in (name, "*") and old in args and old != new:
            _warn(warn, f"{name}: arg {old!r} is {new!r} in MONAI 1.6: translated")
            args.setdefault(new, args.pop(old))
    if name in ("AsDiscreted", "AsDiscrete"):
        args = _as_discrete(name, args, warn)
    if name == "TorchVisionFCModel" and ("pool_size" in args or "pool_stride" in args):
        size, stride = args.pop("pool_size", 7), args.pop("pool_stride", 1)
        _warn(warn, f"{name}: pool_size/pool_stride is pool=('avg', {{kernel_size, stride}}) in MONAI 1.6: translated")
        args.setdefault("pool", ["avg", {"kernel_size": size, "stride": stride}])
    return name, args


# Arg renames MONAI made across many classes: applied to any class that takes the new name and not the
# old one (AttentionUnet, Regressor... took ``dimensions`` in Clara 4.1, as UNet did).
SIGNATURE_RENAMES = {"dimensions": "spatial_dims", "ndims": "spatial_dims", "n_classes": "num_classes"}  # 0.7


def translate_by_signature(factory: Any, name: str, args: dict, warn: Callable[[str], None] | None = None) -> dict:
    """Rename ``SIGNATURE_RENAMES`` args the class no longer takes but takes under the new name."""
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return args
    for old, new in SIGNATURE_RENAMES.items():
        if old in args and old not in params and new in params and new not in args:
            _warn(warn, f"{name}: arg {old!r} is {new!r} in MONAI 1.6: translated")
            args = {(new if k == old else k): v for k, v in args.items()}
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    if str(getattr(factory, "__module__", "")).startswith("monai.") and not takes_any:
        for old, why in DROPPED_ARGS.items():
            if old in args and old not in params:
                _warn(warn, f"{name}: arg {old!r} was removed from MONAI ({why}): dropped")
                args = {k: v for k, v in args.items() if k != old}
    return args


def _as_discrete(name: str, args: dict, warn: Callable[[str], None] | None) -> dict:
    """Clara 4.1 spelled one-hot as ``to_onehot: true, n_classes: N``; MONAI 1.6 wants ``to_onehot: N``.
    ``threshold_values: true, logit_thresh: t`` became ``threshold: t``."""
    if "n_classes" in args or "num_classes" in args:
        n = args.pop("n_classes", None)
        n = args.pop("num_classes", n)
        _warn(warn, f"{name}: n_classes is folded into to_onehot in MONAI 1.6: translated")
        onehot = args.get("to_onehot")
        if onehot is True:
            args["to_onehot"] = n
        elif isinstance(onehot, list):
            args["to_onehot"] = [n if v is True else (None if v is False else v) for v in onehot]
    if "threshold_values" in args:
        flag = args.pop("threshold_values")
        thresh = args.pop("logit_thresh", 0.5)
        _warn(warn, f"{name}: threshold_values/logit_thresh is threshold in MONAI 1.6: translated")
        if isinstance(flag, list):
            args["threshold"] = [thresh if v else None for v in flag]
        elif flag:
            args["threshold"] = thresh
    return args


def lookup_name(name: str, file: str | None, path: JsonPath) -> Any:
    """The class or function called ``name``; a dotted name is imported as ``module.Attr``."""
    if "." in name:
        return import_path(name, file, path, key="name")
    for module_name in SEARCH_MODULES:
        module = importlib.import_module(module_name)
        obj = getattr(module, name, None)
        if obj is not None and callable(obj):
            return obj
    if name in REMOVED_COMPONENTS:
        raise ConfigError(file, (*path, "name"), f"{name} was {REMOVED_COMPONENTS[name]}")
    suggestion = difflib.get_close_matches(name, sorted(_all_names()), n=1, cutoff=0.6)
    hint = f" (did you mean {suggestion[0]!r}?)" if suggestion else ""
    raise ConfigError(file, (*path, "name"), f"unknown component {name!r}: not in MONAI, torch.optim or ignite{hint}")


def import_path(target: str, file: str | None, path: JsonPath, key: str = "path",
                warn: Callable[[str], None] | None = None) -> Any:
    """Import ``package.module.Class`` (the MMAR's root, custom/ and BYOC/ are on sys.path meanwhile)."""
    module_name, _, attr = target.rpartition(".")
    if not module_name:
        raise ConfigError(file, (*path, key), f"{target!r} must be module.Class")
    moved = _moved_module(module_name)
    try:
        module = importlib.import_module(moved)
    except ImportError as err:
        where = f" (nor {moved!r}, where MONAI moved Clara's {module_name.partition('.')[0]})" if moved != module_name else ""
        raise ConfigError(file, (*path, key), f"cannot import {module_name!r}{where}: {err}") from None
    except Exception as err:  # noqa: BLE001 - user code failing at import time is their config's problem
        raise ConfigError(file, (*path, key), f"importing {module_name!r} failed: {type(err).__name__}: {err}") from None
    if moved != module_name:
        _warn(warn, f"Clara module {module_name} is {moved} in MONAI 1.6: translated")
        module_name = moved
    try:
        return getattr(module, attr)
    except AttributeError:
        names = [n for n in dir(module) if not n.startswith("_")]
        suggestion = difflib.get_close_matches(attr, names, n=1)
        hint = f" (did you mean {suggestion[0]!r}?)" if suggestion else ""
        raise ConfigError(file, (*path, key), f"module {module_name!r} has no {attr!r}{hint}") from None


def _moved_module(module_name: str) -> str:
    """``deepgrow.transforms`` -> ``monai.apps.deepgrow.transforms`` when the old package is not importable."""
    import importlib.util

    top = module_name.partition(".")[0]
    if top in RENAMED_MODULES:
        try:
            found = importlib.util.find_spec(top) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            return RENAMED_MODULES[top] + module_name[len(top):]
    return module_name


def _all_names() -> set[str]:
    names: set[str] = set()
    for module_name in SEARCH_MODULES:
        module = importlib.import_module(module_name)
        names.update(n for n in dir(module) if not n.startswith("_") and n[:1].isupper())
    names.update(RENAMED_COMPONENTS)
    return names


def check_args(cls: Any, name: str, args: dict, file: str | None, path: JsonPath) -> None:
    """Unknown argument names are ConfigErrors (with the nearest real one), unless the callable takes
    ``**kwargs``, in which case it checks them itself."""
    try:
        sig = inspect.signature(cls)
    except (TypeError, ValueError):
        return
    params = sig.parameters
    for arg in args:
        if arg not in params and (name, arg) in CHANGED_ARGS:  # even where **kwargs would swallow it
            raise ConfigError(file, (*path, "args", arg), f"{name}: {arg!r} {CHANGED_ARGS[name, arg]}")
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    accepted = [n for n, p in params.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    for arg in args:
        if arg not in accepted:
            suggestion = difflib.get_close_matches(arg, accepted, n=1)
            hint = f" (did you mean {suggestion[0]!r}?)" if suggestion else f" (it takes: {', '.join(accepted)})"
            raise ConfigError(file, (*path, "args", arg), f"{name} has no argument {arg!r}{hint}")


def check_arg_types(cls: Any, name: str, args: dict, file: str | None, path: JsonPath) -> None:
    """A string where the callable's annotation takes only numbers, bools or containers of numbers
    (``"max_epochs": "two"``, ``"lr": "fast"``) is a ConfigError at its JSON path: otherwise it fails
    later, deep in the training loop, naming neither. Anything not clearly wrong passes."""
    try:
        hints = typing.get_type_hints(cls.__init__ if inspect.isclass(cls) else cls)
    except Exception:  # noqa: BLE001 - unresolvable annotations: nothing to check against
        return
    for arg, value in args.items():
        if isinstance(value, str) and arg in hints and _rejects_str(hints[arg]):
            hint = hints[arg]
            shown = hint.__name__ if isinstance(hint, type) else str(hint)
            shown = shown.replace("typing.", "").replace("collections.abc.", "")
            raise ConfigError(file, (*path, "args", arg), f"{name}: {arg} must be {shown}, got the string {value!r}")


_NUMERIC = (int, float, bool, complex, type(None))


def _rejects_str(hint: Any) -> bool:
    """True when no member of ``hint`` can be a string: numbers, None, tensors, containers of those."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return all(_rejects_str(h) for h in typing.get_args(hint))
    if origin is not None:  # Sequence[int], tuple[float, float], list[int]...: a str is a Sequence of str
        members = [h for h in typing.get_args(hint) if h is not Ellipsis]
        return bool(members) and all(_rejects_str(h) for h in members)
    if hint in _NUMERIC:
        return True
    return getattr(hint, "__module__", "") == "torch" and getattr(hint, "__name__", "") == "Tensor"
