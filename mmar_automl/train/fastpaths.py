"""Trainer fast paths: one small policy object, decided once per job from the config and the flags.

Each path is on by default where it is safe and off by a key of the first-level ``fast_paths`` object
(``"fast_paths": false`` or ``{"enabled": false}`` switches them all off), by ``--no-fast-paths``, or by ``MMAR_AUTOML_FAST_PATHS``
(a JSON object merged over the config's; the outer loop passes ``run``'s flags to its jobs this way):

| key | default | what |
|---|---|---|
| ``amp_dtype`` | ``"auto"`` | with ``amp`` on a GPU: bf16 where the GPU supports it, else fp16 + GradScaler; ``"bf16"``/``"fp16"`` force one (and turn AMP on); ``"off"`` disables AMP. On the CPU only an explicit ``"bf16"`` autocasts. |
| ``channels_last`` | on with CUDA | models with 3-D convolutions and their 5-D inputs in ``channels_last_3d`` |
| ``cudnn_benchmark`` | on with CUDA unless ``determinism`` is set | ``torch.backends.cudnn.benchmark``; the config's own ``cudnn_benchmark`` key wins |
| ``tf32`` | on with CUDA | float32 matmuls in TF32 (``torch.set_float32_matmul_precision("high")``) |
| ``pin_memory`` | on with CUDA | ``DataLoader(pin_memory=True)`` |
| ``non_blocking`` | on with CUDA | engines copy batches with ``non_blocking=True`` |
| ``thread_loader`` | on with CUDA | ``DataLoader`` over a ``CacheDataset``/``SmartCacheDataset`` becomes MONAI's ``ThreadDataLoader`` |
| ``compile`` | off | ``torch.compile`` of the trained network (``--compile``) |
| ``cpu_threads`` | unset | ``torch.set_num_threads`` (a manual knob; ``run`` sets OMP_NUM_THREADS per job already) |

Decisions are pure (``decide``); torch is touched only when the paths are applied, inside the job process
(``torch.cuda.is_bf16_supported()`` is asked there, never in the orchestrator).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from mmar_automl.errors import ConfigError

ENV_VAR = "MMAR_AUTOML_FAST_PATHS"
KEY = "fast_paths"
AMP_DTYPES = {"auto": "auto", "bf16": "bfloat16", "bfloat16": "bfloat16", "fp16": "float16", "float16": "float16",
              "off": "off"}
BOOL_KEYS = ("enabled", "channels_last", "cudnn_benchmark", "tf32", "pin_memory", "non_blocking", "thread_loader", "compile")
_ENGINES = ("SupervisedTrainer", "SupervisedEvaluator")
_LOADERS = ("DataLoader", "ThreadDataLoader")


@dataclass(frozen=True)
class FastPaths:
    """What one job does; built by :func:`decide`. ``amp_dtype``: None (no AMP), "bfloat16" or "float16"
    when the config's ``amp`` is on (or forced by an explicit dtype); ``cudnn_benchmark`` None = leave it."""

    device: str = "cpu"
    amp_dtype: str | None = None
    force_amp: bool = False          # an explicit amp_dtype: AMP even when the config's amp is false
    channels_last: bool = False
    cudnn_benchmark: bool | None = None
    tf32: bool = False
    pin_memory: bool = False
    non_blocking: bool = False
    thread_loader: bool = False
    compile: bool = False
    cpu_threads: int | None = None

    def summary(self) -> dict[str, Any]:
        """The decisions, for train_stats.json and the job log."""
        return {k: v for k, v in asdict(self).items() if k != "force_amp"}

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

    def before_build(self, short: str, factory: Any, args: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        """Adjust a component's factory and args just before it is built (args already resolved and checked)."""
        if short in _LOADERS:
            return self._loader(factory, args)
        if short in _ENGINES:
            return factory, self._engine(short, factory, args)
        return factory, args

    def after_build(self, short: str, obj: Any) -> Any:
        """Adjust a built component: 3-D models to channels_last_3d, the bf16 trainer's no-op GradScaler."""
        import torch

        if self.channels_last and isinstance(obj, torch.nn.Module) and has_conv3d(obj):
            obj = obj.to(memory_format=torch.channels_last_3d)
        if (short == "SupervisedTrainer" and getattr(obj, "scaler", None) is not None
                and (getattr(obj, "amp_kwargs", None) or {}).get("dtype") == torch.bfloat16):
            # bf16 has float32's range: loss scaling only costs time. A disabled scaler keeps MONAI's AMP
            # branch (which autocasts only while a scaler is set) and makes scale/step/update plain calls.
            obj.scaler = torch.amp.GradScaler("cuda", enabled=False)
        return obj

    def _loader(self, factory: Any, args: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        args = dict(args)
        if self.pin_memory:
            args.setdefault("pin_memory", True)
        if self.thread_loader and getattr(factory, "__name__", "") == "DataLoader" and _is_cached(args.get("dataset")):
            from monai.data import ThreadDataLoader

            factory = ThreadDataLoader
        return factory, args

    def _engine(self, short: str, factory: Any, args: dict[str, Any]) -> dict[str, Any]:
        import inspect

        import torch

        accepted = inspect.signature(factory).parameters
        args = dict(args)
        if self.non_blocking and "non_blocking" in accepted:
            args.setdefault("non_blocking", True)
        if self.channels_last and "prepare_batch" in accepted and "prepare_batch" not in args:
            args["prepare_batch"] = channels_last_prepare_batch
        if self.amp_dtype and self.device == "cuda" and "amp" in accepted:
            if args.get("amp") or self.force_amp:
                args["amp"] = True
                kwargs = dict(args.get("amp_kwargs") or {})
                kwargs.setdefault("dtype", getattr(torch, self.amp_dtype))
                args["amp_kwargs"] = kwargs
        if self.amp_dtype and self.device == "cpu" and args.get("network") is not None:
            autocast_forward(args["network"], "cpu", getattr(torch, self.amp_dtype))
        if self.compile and short == "SupervisedTrainer" and "compile" in accepted:
            args.setdefault("compile", True)  # the trainer's copy only: checkpoints keep the plain module's keys
        return args

    def memory_probe(self) -> dict[str, Any]:
        """Fields for the job's metrics lines and train_stats.json: the process's peak GPU memory."""
        if self.device != "cuda":
            return {}
        import torch

        if not torch.cuda.is_initialized():
            return {}
        return {"peak_gpu_memory_bytes": int(torch.cuda.max_memory_reserved()),
                "peak_gpu_memory_allocated_bytes": int(torch.cuda.max_memory_allocated())}


def decide(conf: dict[str, Any], device: str, file: str | None = None, *, compile: bool = False,
           enabled: bool = True, bf16_supported: bool | Callable[[], bool] | None = None,
           env: dict[str, str] | None = None) -> FastPaths:
    """The fast paths of one job: defaults for ``device``, then the config's ``fast_paths``, then the
    environment's ``MMAR_AUTOML_FAST_PATHS``, then the flags. ``bf16_supported`` defaults to asking torch
    (call this only inside the job process); a bad key or value is a ConfigError."""
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

    gpu = device == "cuda"
    seeded = isinstance(conf.get("determinism"), dict) and conf["determinism"].get("random_seed") is not None
    explicit_bench = isinstance(conf.get("cudnn_benchmark"), bool)
    if not enabled:
        # everything off, but an explicit --compile / compile key still compiles
        return FastPaths(device=device, compile=bool(settings.get("compile")), cpu_threads=settings.get("cpu_threads"))

    amp_pref = settings.get("amp_dtype", "auto")
    amp_dtype: str | None
    if amp_pref == "off":
        amp_dtype = None
    elif amp_pref == "auto":
        amp_dtype = (_ask(bf16_supported) and "bfloat16" or "float16") if gpu else None
    else:
        amp_dtype = amp_pref
    bench_default = None if (explicit_bench or not gpu) else not seeded
    return FastPaths(
        device=device,
        amp_dtype=amp_dtype,
        force_amp=amp_pref not in ("auto", "off"),
        channels_last=settings.get("channels_last", gpu),
        cudnn_benchmark=settings.get("cudnn_benchmark", bench_default),
        tf32=settings.get("tf32", gpu),
        pin_memory=settings.get("pin_memory", gpu),
        non_blocking=settings.get("non_blocking", gpu),
        thread_loader=settings.get("thread_loader", gpu),
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

        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    return bool(bf16_supported() if callable(bf16_supported) else bf16_supported)


def _is_cached(dataset: Any) -> bool:
    try:
        from monai.data import CacheDataset
    except ImportError:  # pragma: no cover - monai is a dependency
        return False
    return isinstance(dataset, CacheDataset)  # SmartCacheDataset is one too


def has_conv3d(module: Any) -> bool:
    import torch

    kinds = (torch.nn.Conv3d, torch.nn.ConvTranspose3d)
    return any(isinstance(m, kinds) for m in module.modules())


def channels_last_prepare_batch(batchdata: Any, device: Any = None, non_blocking: bool = False, **kwargs: Any) -> Any:
    """MONAI's default_prepare_batch, with a 5-D image in channels_last_3d (matching the model's weights:
    cuDNN then runs NDHWC kernels with no layout conversion per layer)."""
    import torch
    from monai.engines.utils import default_prepare_batch

    out = default_prepare_batch(batchdata, device, non_blocking, **kwargs)
    if isinstance(out, tuple) and out and isinstance(out[0], torch.Tensor) and out[0].ndim == 5:
        out = (out[0].contiguous(memory_format=torch.channels_last_3d), *out[1:])
    return out


def autocast_forward(network: Any, device_type: str, dtype: Any) -> None:
    """Run ``network``'s forward under ``torch.autocast(device_type, dtype)`` and return float32 outputs.

    For the CPU, where MONAI's engines autocast only for "cuda". The instance's ``forward`` is
    replaced (once), so its state_dict and checkpoints are those of the plain module."""
    import torch

    if getattr(network, "_mmar_automl_autocast", False):
        return
    plain = network.forward

    def forward(*args: Any, **kwargs: Any) -> Any:
        with torch.autocast(device_type, dtype=dtype):
            out = plain(*args, **kwargs)
        return _to_float(out)

    network.forward = forward
    network._mmar_automl_autocast = True


def _to_float(out: Any) -> Any:
    import torch

    if isinstance(out, torch.Tensor):
        return out.float() if out.is_floating_point() and out.dtype != torch.float32 else out
    if isinstance(out, (list, tuple)):
        return type(out)(_to_float(o) for o in out)
    if isinstance(out, dict):
        return {k: _to_float(v) for k, v in out.items()}
    return out
