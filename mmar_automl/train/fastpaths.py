"""Trainer fast paths: one small policy object, decided once per job from the config and the flags.

Every path is **off by default**, on the CPU and on GPUs alike: no GPU figure has been measured for this
project yet (docs/gpu.md), and a path is on by default only where a measurement says it helps. Each is
switched on by a key of the first-level ``fast_paths`` object, or by ``MMAR_AUTOML_FAST_PATHS`` (a JSON
object merged over the config's; the outer loop passes ``run``'s flags to its jobs this way);
``"fast_paths": false``, ``{"enabled": false}`` or ``--no-fast-paths`` switch them all off again.

| key | when on |
|---|---|
| ``amp_dtype`` | ``"auto"``: bf16 where the GPU runs it natively, else fp16; ``"bf16"``/``"fp16"`` force one (and turn AMP on); ``"off"`` turns the config's ``amp`` off. Unset: the config's ``amp`` as MONAI does it (fp16 + GradScaler on a GPU, float32 on the CPU). |
| ``channels_last`` | models with 3-D convolutions and BatchNorm (or no norm) and their 5-D inputs in ``channels_last_3d`` |
| ``cudnn_benchmark`` | ``torch.backends.cudnn.benchmark`` (the config's own first-level ``cudnn_benchmark`` key otherwise) |
| ``tf32`` | float32 matmuls in TF32 (``torch.set_float32_matmul_precision("high")``) |
| ``pin_memory`` | ``DataLoader(pin_memory=True)``, except over transforms that put the data on a GPU |
| ``non_blocking`` | engines copy batches with ``non_blocking=True`` |
| ``thread_loader`` | ``DataLoader`` over a ``CacheDataset``/``SmartCacheDataset`` becomes MONAI's ``ThreadDataLoader`` |
| ``compile`` | ``torch.compile`` of the trained network (``--compile``), with the job's CPU threads for compiling |
| ``cpu_threads`` | ``torch.set_num_threads`` (a manual knob; ``run`` sets OMP_NUM_THREADS per job already) |

A component a path cannot apply to is skipped with one ``note:`` line in the job log, never a crash.
Decisions are pure (``decide``); torch is touched only when the paths are applied, inside the job process
(bf16 support is asked there, never in the orchestrator).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from mmar_automl.errors import ConfigError

ENV_VAR = "MMAR_AUTOML_FAST_PATHS"
KEY = "fast_paths"
AMP_DTYPES = {"auto": "auto", "bf16": "bfloat16", "bfloat16": "bfloat16", "fp16": "float16", "float16": "float16",
              "off": "off"}
BOOL_KEYS = ("enabled", "channels_last", "cudnn_benchmark", "tf32", "pin_memory", "non_blocking", "thread_loader", "compile")
_ENGINES = ("SupervisedTrainer", "SupervisedEvaluator")
_LOADERS = ("DataLoader", "ThreadDataLoader")
# Norm layers whose kernels want NCDHW: with channels_last_3d each one copies its input and output to the
# other layout (InstanceNorm runs as a batch norm over a reshaped, contiguous tensor; GroupNorm's kernel
# takes a contiguous input), so the conversions cost more than the NDHWC convolutions gain.
_LAYOUT_HOSTILE_NORMS = ("InstanceNorm1d", "InstanceNorm2d", "InstanceNorm3d", "GroupNorm")
# What a forward says when an op cannot take a channels_last_3d tensor (SegResNetVAE's .view, a 4-D weight).
_LAYOUT_ERRORS = ("view size is not compatible", "required rank", "channels_last")
_ATTR = "_mmar_automl_fast"  # the network's per-instance state: {"autocast": (device, dtype) | None, "layout": ...}


def _print_note(line: str) -> None:
    print(f"note: {line}", flush=True)


@dataclass(frozen=True)
class FastPaths:
    """What one job does; built by :func:`decide`. ``amp_dtype``: None (the config's ``amp`` as MONAI does
    it), "off", "bfloat16" or "float16"; ``cudnn_benchmark`` None = leave it to the config."""

    device: str = "cpu"
    amp_dtype: str | None = None
    force_amp: bool = False          # an explicit bf16/fp16: AMP even when the config's amp is false
    channels_last: bool = False
    cudnn_benchmark: bool | None = None
    tf32: bool = False
    pin_memory: bool = False
    non_blocking: bool = False
    thread_loader: bool = False
    compile: bool = False
    cpu_threads: int | None = None
    note: Callable[[str], None] = field(default=_print_note, compare=False, repr=False)

    def summary(self) -> dict[str, Any]:
        """The decisions, for train_stats.json and the job log."""
        return {k: v for k, v in asdict(self).items() if k not in ("force_amp", "note")}

    def describe(self) -> str:
        """One line for the job log: the paths that are on."""
        on = [f"amp_dtype {self.amp_dtype}" if self.amp_dtype else ""]
        on += [k for k in BOOL_KEYS if getattr(self, k, None) is True]
        if self.cpu_threads:
            on.append(f"cpu_threads {self.cpu_threads}")
        return ", ".join(x for x in on if x) or "none"

    # -- applying (inside the job process) ----------------------------------------------------------

    def apply_globals(self) -> None:
        """Process-wide switches; call after the config's determinism was applied."""
        import torch

        if self.cpu_threads:
            torch.set_num_threads(self.cpu_threads)
        if self.cudnn_benchmark is not None:
            torch.backends.cudnn.benchmark = self.cudnn_benchmark
        if self.tf32:
            torch.set_float32_matmul_precision("high")
        if self.compile:
            # Inductor sized its compile pool when the launcher imported torch (up to 32 workers); a packed
            # job compiles with its own share of the cores.
            import torch._inductor.config as inductor

            inductor.compile_threads = max(1, self.cpu_threads or torch.get_num_threads())

    def before_build(self, short: str, factory: Any, args: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        """Adjust a component's factory and args just before it is built (args already resolved and checked)."""
        if short in _LOADERS:
            return self._loader(factory, args)
        if short in _ENGINES:
            return factory, self._engine(short, factory, args)
        return factory, args

    def after_build(self, short: str, obj: Any) -> Any:
        """Adjust a built component: a 3-D model goes to channels_last_3d where it can."""
        import torch

        if self.channels_last and isinstance(obj, torch.nn.Module) and has_conv3d(obj):
            try:
                to_channels_last(obj, short, self.note)
            except RuntimeError as err:  # a tensor layout torch refuses: the model stays as it was built
                _to_contiguous(obj)
                _state(obj)["layout"] = None
                self.note(f"channels_last skipped for {short}: {str(err).strip().splitlines()[0]}")
        return obj

    def _loader(self, factory: Any, args: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        args = dict(args)
        if self.pin_memory and "pin_memory" not in args:
            where = gpu_transform(args.get("dataset"))
            if where:  # MONAI's fast-training recipe: "cannot pin 'torch.cuda.FloatTensor'"
                self.note(f"pin_memory skipped: {where} puts the data on the GPU already")
            else:
                args["pin_memory"] = True
        if self.thread_loader and getattr(factory, "__name__", "") == "DataLoader":
            if _is_cached(args.get("dataset")):
                from monai.data import ThreadDataLoader

                factory = ThreadDataLoader
            else:  # uncached transforms are the slow part: a thread would take them off the worker processes
                self.note(f"thread_loader skipped: {type(args.get('dataset')).__name__} is not a CacheDataset")
        return factory, args

    def _engine(self, short: str, factory: Any, args: dict[str, Any]) -> dict[str, Any]:
        import inspect

        import torch

        accepted = inspect.signature(factory).parameters
        args = dict(args)
        network = args.get("network")
        if self.non_blocking and "non_blocking" in accepted:
            args.setdefault("non_blocking", True)
        compiled = self.compile and short == "SupervisedTrainer" and "compile" in accepted
        if (_state(network).get("layout") == "channels_last" or compiled) and "prepare_batch" in accepted \
                and "prepare_batch" not in args:
            # compiled: plain tensors, since MONAI's compile branch rebuilds MetaTensors from the batch's meta and
            # fails on a batch of more than one ("Boolean value of Tensor with more than one value is ambiguous")
            args["prepare_batch"] = FastBatch(network, plain=compiled)
        if self.amp_dtype == "off" and "amp" in accepted:
            args["amp"] = False
        elif self.amp_dtype and "amp" in accepted and (args.get("amp") or self.force_amp) and network is not None:
            dtype = getattr(torch, self.amp_dtype)
            # The network's forward autocasts and hands float32 back, for the trainer and the evaluator alike:
            # MONAI's evaluator would leave bf16 predictions (ROCAUC, SaveImage: "unsupported ScalarType
            # BFloat16"). MONAI's own AMP branch stays on only where loss scaling is needed (fp16 training on
            # a GPU); for bf16 it is off, so Trainer.run() creates no GradScaler (it makes an enabled one).
            autocast_forward(network, self.device, dtype)
            scaled = short == "SupervisedTrainer" and self.device == "cuda" and dtype == torch.float16
            args["amp"] = scaled
            if scaled:
                args["amp_kwargs"] = {**(args.get("amp_kwargs") or {}), "dtype": dtype}
            else:
                args.pop("amp_kwargs", None)
        if self.compile and short == "SupervisedTrainer" and "compile" in accepted:
            args.setdefault("compile", True)  # the trainer's copy only: checkpoints keep the plain module's keys
        return args

    def memory_probe(self) -> dict[str, Any]:
        """Fields for the job's metrics lines and train_stats.json: the process's peak GPU and host memory."""
        import resource
        import sys

        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
        out: dict[str, Any] = {"peak_host_memory_bytes": int(rss if sys.platform == "darwin" else rss * 1024)}
        if self.device != "cuda":
            return out
        import torch

        if torch.cuda.is_initialized():
            out.update({"peak_gpu_memory_bytes": int(torch.cuda.max_memory_reserved()),
                        "peak_gpu_memory_allocated_bytes": int(torch.cuda.max_memory_allocated())})
            used = _nvml_process_memory(os.getpid())
            if used is not None:  # the CUDA context and loaded kernels: what torch's allocator does not see
                out["gpu_context_bytes"] = max(0, used - int(torch.cuda.memory_reserved()))
        return out


def _nvml_process_memory(pid: int) -> int | None:
    """GPU memory NVML counts for process ``pid`` over all GPUs, or None (no NVML, or no per-process numbers)."""
    try:
        import pynvml

        pynvml.nvmlInit()
    except Exception:  # noqa: BLE001 - ImportError, no driver: nothing to report
        return None
    try:
        used = [p.usedGpuMemory for i in range(pynvml.nvmlDeviceGetCount())
                for p in pynvml.nvmlDeviceGetComputeRunningProcesses(pynvml.nvmlDeviceGetHandleByIndex(i)) if p.pid == pid]
    except pynvml.NVMLError:
        return None
    finally:
        pynvml.nvmlShutdown()
    return sum(used) if used and all(u is not None for u in used) else None


def decide(conf: dict[str, Any], device: str, file: str | None = None, *, compile: bool = False,
           enabled: bool = True, bf16_supported: bool | Callable[[], bool] | None = None,
           env: dict[str, str] | None = None) -> FastPaths:
    """The fast paths of one job: all off, then the config's ``fast_paths``, then the environment's
    ``MMAR_AUTOML_FAST_PATHS``, then the flags. ``bf16_supported`` (for ``amp_dtype: auto``) defaults to
    asking torch (call this only inside the job process); a bad key or value is a ConfigError."""
    raw = conf.get(KEY, True)
    if isinstance(raw, bool):
        enabled = enabled and raw
        raw = {}
    elif not isinstance(raw, dict):
        raise ConfigError(file, (KEY,), f"must be true, false or an object, got {raw!r}")
    settings = _check(raw, file, (KEY,))
    env_text = (os.environ if env is None else env).get(ENV_VAR, "").strip()
    if env_text:
        try:
            from_env = json.loads(env_text)
        except json.JSONDecodeError as err:
            raise ConfigError(None, None, f"{ENV_VAR}: not JSON ({err.msg})") from None
        if from_env is False:
            enabled = False
        elif isinstance(from_env, dict):
            settings.update(_check(from_env, ENV_VAR, ()))
        else:
            raise ConfigError(None, None, f"{ENV_VAR}: must be false or a JSON object, got {env_text!r}")
    if compile:
        settings["compile"] = True
    enabled = enabled and settings.pop("enabled", True)
    if not enabled:
        # everything off, but an explicit --compile / compile key still compiles
        return FastPaths(device=device, compile=bool(settings.get("compile")), cpu_threads=settings.get("cpu_threads"))

    amp_pref = settings.get("amp_dtype")
    amp_dtype = amp_pref
    if amp_pref == "auto":
        if device == "cuda":
            amp_dtype = "bfloat16" if _ask(bf16_supported) else "float16"
        else:
            amp_dtype = None  # the CPU: autocast only where asked for by name (bf16)
    return FastPaths(
        device=device,
        amp_dtype=amp_dtype,
        force_amp=amp_pref in ("bfloat16", "float16"),
        channels_last=settings.get("channels_last", False),
        cudnn_benchmark=settings.get("cudnn_benchmark"),
        tf32=settings.get("tf32", False),
        pin_memory=settings.get("pin_memory", False),
        non_blocking=settings.get("non_blocking", False),
        thread_loader=settings.get("thread_loader", False),
        compile=settings.get("compile", False),
        cpu_threads=settings.get("cpu_threads"),
    )


def _check(raw: dict[str, Any], file: str | None, path: tuple) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in raw.items():
        where = (*path, key)
        if key == "amp_dtype":
            if not isinstance(value, str) or value.lower() not in AMP_DTYPES:
                raise ConfigError(file, where, f"must be one of auto, bf16, fp16, off; got {value!r}")
            out[key] = AMP_DTYPES[value.lower()]
        elif key in BOOL_KEYS:
            if not isinstance(value, bool):
                raise ConfigError(file, where, f"must be true or false, got {value!r}")
            out[key] = value
        elif key == "cpu_threads":
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
                raise ConfigError(file, where, f"must be a positive integer, got {value!r}")
            out[key] = value
        else:
            from mmar_automl.config.suggest import did_you_mean

            known = ["amp_dtype", "cpu_threads", *BOOL_KEYS]
            raise ConfigError(file, where, f"unknown fast path{did_you_mean(key, known)}; known: {', '.join(known)}")
    return out


def _ask(bf16_supported: bool | Callable[[], bool] | None) -> bool:
    if bf16_supported is None:
        import torch

        # including_emulation=False: V100/T4 "support" bf16 by emulation, but cuDNN has no bf16 convolutions there.
        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported(including_emulation=False))
    return bool(bf16_supported() if callable(bf16_supported) else bf16_supported)


def _is_cached(dataset: Any) -> bool:
    try:
        from monai.data import CacheDataset
    except ImportError:  # pragma: no cover - monai is a dependency
        return False
    return isinstance(dataset, CacheDataset)  # SmartCacheDataset is one too


def gpu_transform(dataset: Any) -> str | None:
    """The name of a transform of ``dataset`` that puts data on a GPU (``ToDeviced``, ``EnsureTyped(device=
    "cuda")``, ...), or None. Pinned memory is for CPU tensors only."""
    for top in _transforms(getattr(dataset, "transform", None)):
        # a dictionary transform keeps its array transform (the one holding ``device``) as ``converter``
        if any("cuda" in str(getattr(t, "device", None) or "") for t in (top, getattr(top, "converter", None))):
            return type(top).__name__
    return None


def _transforms(transform: Any) -> list[Any]:
    """A transform chain as a flat list (Compose inside Compose included)."""
    inner = getattr(transform, "transforms", None)
    if inner is None:
        return [] if transform is None else [transform]
    return [t for part in inner for t in _transforms(part)]


def has_conv3d(module: Any) -> bool:
    import torch

    kinds = (torch.nn.Conv3d, torch.nn.ConvTranspose3d)
    return any(isinstance(m, kinds) for m in module.modules())


def _state(network: Any) -> dict[str, Any]:
    return getattr(network, _ATTR, None) or {}


def to_channels_last(network: Any, name: str, note: Callable[[str], None]) -> bool:
    """Put the 5-D weights of ``network`` in channels_last_3d (other tensors are left alone: ``Module.to``
    would fail on a 4-D one). Models with InstanceNorm/GroupNorm are skipped (layout copies around every
    norm). Returns whether the model was converted; a skip is one ``note`` line."""
    import torch

    hostile = sorted({type(m).__name__ for m in network.modules() if type(m).__name__ in _LAYOUT_HOSTILE_NORMS})
    if hostile:
        note(f"channels_last skipped for {name}: its {'/'.join(hostile)} layers would copy layouts around every norm")
        return False
    network._apply(lambda t: t.contiguous(memory_format=torch.channels_last_3d) if t.dim() == 5 else t)
    _install_forward(network).update(layout="channels_last", name=name, note=note)
    return True


def _to_contiguous(network: Any) -> None:
    import torch

    network._apply(lambda t: t.contiguous() if t.dim() == 5 else t)


class FastBatch:
    """MONAI's default_prepare_batch, with a 5-D image in channels_last_3d while ``network`` is (cuDNN then runs
    NDHWC kernels with no layout conversion per layer; plain again once the network fell back), and with
    ``plain`` the image and label as plain tensors (no MetaTensor: for the compiled trainer)."""

    def __init__(self, network: Any, plain: bool = False):
        self.network = network
        self.plain = plain

    def __call__(self, batchdata: Any, device: Any = None, non_blocking: bool = False, **kwargs: Any) -> Any:
        import torch
        from monai.engines.utils import default_prepare_batch

        out = default_prepare_batch(batchdata, device, non_blocking, **kwargs)
        if not isinstance(out, tuple) or not out:
            return out
        if self.plain:
            out = tuple(x.as_tensor() if hasattr(x, "as_tensor") else x for x in out)
        if (_state(self.network).get("layout") == "channels_last" and isinstance(out[0], torch.Tensor)
                and out[0].ndim == 5):
            out = (out[0].contiguous(memory_format=torch.channels_last_3d), *out[1:])
        return out


def autocast_forward(network: Any, device_type: str, dtype: Any) -> None:
    """Run ``network``'s forward under ``torch.autocast(device_type, dtype)`` and return float32 outputs
    (the loss, the metrics and the saved predictions then see float32, as without AMP).

    The instance's ``forward`` is replaced (once), so its state_dict and checkpoints are those of the plain module."""
    _install_forward(network)["autocast"] = (device_type, dtype)


def _install_forward(network: Any) -> dict[str, Any]:
    """Give the instance (once) a forward that applies its fast-path state: autocast with float32 outputs,
    and a fall-back to the plain layout the first time an op rejects channels_last_3d. A bound method of a
    module-level function, so that a deep copy of the network (EMA, SWA) runs its own weights."""
    import types

    state = getattr(network, _ATTR, None)
    if state is None:
        state = {"autocast": None, "layout": None, "name": type(network).__name__, "note": _print_note}
        setattr(network, _ATTR, state)
        network.forward = types.MethodType(_fast_forward, network)
    return state


def _fast_forward(network: Any, *args: Any, **kwargs: Any) -> Any:
    import torch

    state = getattr(network, _ATTR)
    try:
        return _plain_forward(network, state, args, kwargs)
    except RuntimeError as err:
        if state["layout"] != "channels_last" or not any(m in str(err) for m in _LAYOUT_ERRORS):
            raise
        message = str(err).strip().splitlines()[0]
    _to_contiguous(network)  # the same Parameter objects: the optimizer keeps them
    state["layout"] = "plain"
    state["note"](f"channels_last skipped for {state['name']}: {message}")
    args = tuple(a.contiguous() if isinstance(a, torch.Tensor) else a for a in args)
    return _plain_forward(network, state, args, kwargs)


def _plain_forward(network: Any, state: dict[str, Any], args: tuple, kwargs: dict) -> Any:
    import torch

    forward = type(network).forward
    if state["autocast"] is None:
        return forward(network, *args, **kwargs)
    device_type, dtype = state["autocast"]
    with torch.autocast(device_type, dtype=dtype):
        out = forward(network, *args, **kwargs)
    return _to_float(out)


def _to_float(out: Any) -> Any:
    import torch

    if isinstance(out, torch.Tensor):
        return out.float() if out.is_floating_point() and out.dtype != torch.float32 else out
    if isinstance(out, (list, tuple)):
        return type(out)(_to_float(o) for o in out)
    if isinstance(out, dict):
        return {k: _to_float(v) for k, v in out.items()}
    return out
