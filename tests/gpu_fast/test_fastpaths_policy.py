"""The fast-path decisions (pure logic: no GPU, no torch op): defaults per device, bf16 support,
determinism, config keys, the environment variable and the flags."""

from __future__ import annotations

import pytest

from mmar_automl.errors import ConfigError
from mmar_automl.train.fastpaths import ENV_VAR, decide

NO_ENV: dict[str, str] = {}


def test_every_path_is_off_by_default_on_gpus_too():
    """No GPU figure has been measured (docs/gpu.md): by default a GPU job is a plain MONAI job."""
    fast = decide({"amp": True}, "cuda", bf16_supported=True, env=NO_ENV)
    assert fast.amp_dtype is None and not fast.force_amp  # the config's amp, as MONAI does it (fp16 + scaler)
    assert not (fast.channels_last or fast.tf32 or fast.pin_memory or fast.non_blocking or fast.thread_loader)
    assert fast.cudnn_benchmark is None and fast.compile is False
    assert fast.describe() == "none"


def test_auto_picks_bf16_only_where_the_gpu_runs_it():
    auto = {"fast_paths": {"amp_dtype": "auto"}}
    assert decide(auto, "cuda", bf16_supported=True, env=NO_ENV).amp_dtype == "bfloat16"
    assert decide(auto, "cuda", bf16_supported=False, env=NO_ENV).amp_dtype == "float16"
    assert decide(auto, "cuda", bf16_supported=lambda: False, env=NO_ENV).amp_dtype == "float16"
    assert not decide(auto, "cuda", bf16_supported=True, env=NO_ENV).force_amp  # the config's amp stays the switch


def test_auto_asks_torch_without_emulation(monkeypatch):
    """torch counts emulated bf16 (V100, T4) as supported unless told not to; cuDNN has no bf16 convolutions there."""
    import torch

    asked = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: asked.append(including_emulation) or including_emulation)
    assert decide({"fast_paths": {"amp_dtype": "auto"}}, "cuda", env=NO_ENV).amp_dtype == "float16"
    assert asked == [False]


def test_cpu_is_plain_unless_asked():
    fast = decide({"amp": True, "fast_paths": {"amp_dtype": "auto"}}, "cpu", bf16_supported=True, env=NO_ENV)
    assert fast.amp_dtype is None
    assert not (fast.channels_last or fast.cudnn_benchmark or fast.tf32 or fast.pin_memory or fast.thread_loader)
    asked = decide({"fast_paths": {"amp_dtype": "bf16", "channels_last": True}}, "cpu", env=NO_ENV)
    assert asked.amp_dtype == "bfloat16" and asked.force_amp and asked.channels_last


def test_bf16_support_is_not_asked_on_cpu():
    def boom() -> bool:
        raise AssertionError("asked torch about bf16 on a CPU job")

    assert decide({"fast_paths": {"amp_dtype": "auto"}}, "cpu", bf16_supported=boom, env=NO_ENV).amp_dtype is None


def test_cudnn_benchmark_is_left_to_the_config_unless_asked():
    # The trainer applies the config's own cudnn_benchmark (and determinism); the fast path only when named.
    assert decide({"determinism": {"random_seed": 0}}, "cuda", bf16_supported=True, env=NO_ENV).cudnn_benchmark is None
    conf = {"cudnn_benchmark": False, "fast_paths": {"cudnn_benchmark": True}}
    assert decide(conf, "cuda", bf16_supported=True, env=NO_ENV).cudnn_benchmark is True


def test_each_path_has_a_key():
    keys = {"channels_last": True, "tf32": True, "pin_memory": True, "non_blocking": True,
            "thread_loader": True, "cudnn_benchmark": False, "amp_dtype": "off"}
    fast = decide({"fast_paths": keys, "amp": True}, "cuda", bf16_supported=True, env=NO_ENV)
    assert fast.amp_dtype == "off" and not fast.force_amp
    assert fast.channels_last and fast.tf32 and fast.pin_memory and fast.non_blocking and fast.thread_loader
    assert fast.cudnn_benchmark is False


@pytest.mark.parametrize("how", ["config", "flag", "env"])
def test_all_off(how):
    conf = {"fast_paths": False} if how == "config" else {}
    env = {ENV_VAR: "false"} if how == "env" else NO_ENV
    conf = {**conf, "amp": True} if conf else {"fast_paths": {"channels_last": True, "amp_dtype": "bf16"}}
    fast = decide(conf, "cuda", bf16_supported=True, enabled=how != "flag", env=env)
    assert fast.amp_dtype is None and not fast.channels_last and fast.cudnn_benchmark is None
    assert fast.describe() == "none"


def test_forced_fp16_and_compile_flag():
    fast = decide({"fast_paths": {"amp_dtype": "fp16"}}, "cuda", bf16_supported=True, compile=True, env=NO_ENV)
    assert fast.amp_dtype == "float16" and fast.force_amp and fast.compile


def test_environment_overrides_config():
    env = {ENV_VAR: '{"compile": true, "channels_last": false, "cpu_threads": 2}'}
    fast = decide({"fast_paths": {"channels_last": True}}, "cuda", bf16_supported=True, env=env)
    assert fast.compile and not fast.channels_last and fast.cpu_threads == 2


@pytest.mark.parametrize("conf, where", [
    ({"fast_paths": {"chanels_last": True}}, "fast_paths.chanels_last"),
    ({"fast_paths": {"amp_dtype": "fp8"}}, "fast_paths.amp_dtype"),
    ({"fast_paths": {"tf32": "yes"}}, "fast_paths.tf32"),
    ({"fast_paths": {"cpu_threads": 0}}, "fast_paths.cpu_threads"),
    ({"fast_paths": "on"}, "fast_paths"),
])
def test_bad_keys_are_config_errors(conf, where):
    with pytest.raises(ConfigError) as info:
        decide(conf, "cuda", "config/config_train.json", bf16_supported=True, env=NO_ENV)
    assert where in str(info.value) and "config/config_train.json" in str(info.value)


def test_misspelt_key_gets_a_suggestion():
    with pytest.raises(ConfigError, match="did you mean 'channels_last'"):
        decide({"fast_paths": {"chanels_last": True}}, "cuda", bf16_supported=True, env=NO_ENV)
