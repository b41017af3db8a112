"""Real MONAI training on the CPU with the fast paths on (bf16 autocast, channels_last_3d, ThreadDataLoader,
non-blocking copies) versus off: the losses stay within AMP tolerance, the paths really ran, and the job's
files keep their contract (model.pt reloads into the plain network)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "train"))
from factory import make_dataset, make_mmar, read_metrics, read_stats, tiny_config  # noqa: E402

ON = {"amp_dtype": "bf16", "channels_last": True, "thread_loader": True, "non_blocking": True, "pin_memory": False}


def _cached(config: dict) -> dict:
    config["train"]["model"]["args"]["norm"] = "batch"  # channels_last skips InstanceNorm models (layout copies)
    for section in ("train", "validate"):
        config[section]["dataset"]["name"] = "CacheDataset"
        config[section]["dataset"]["args"].update({"cache_rate": 1.0, "num_workers": 0, "progress": False})
    return config


def _train(root: Path, data: Path, fast_paths, capsys) -> tuple[list[float], dict, str]:
    from mmar_automl.train.run import main

    config = _cached(tiny_config(epochs=3, fast_paths=fast_paths))
    make_mmar(root, config, data)
    code = main([str(root), "--device", "cpu"])
    out = capsys.readouterr()
    assert code == 0, out.err
    losses = [r["train_loss"] for r in read_metrics(root) if r["kind"] == "train"]
    return losses, read_stats(root), out.out


@pytest.mark.slow
def test_losses_with_fast_paths_stay_within_amp_tolerance(tmp_path, capsys):
    import torch
    from monai.networks.nets import UNet

    data = make_dataset(tmp_path / "data", n_train=4, n_val=1, size=24)
    plain, plain_stats, _ = _train(tmp_path / "plain", data, False, capsys)
    again, _, _ = _train(tmp_path / "again", data, False, capsys)
    fast, fast_stats, log = _train(tmp_path / "fast", data, ON, capsys)

    assert plain == again, "the plain path must be reproducible, else the comparison means nothing"
    assert len(fast) == len(plain) == 3
    assert fast != plain, "bf16 autocast left the losses bit-identical: the fast paths did not run"
    for a, b in zip(plain, fast):
        assert abs(a - b) <= 0.02 + 0.02 * abs(a), (plain, fast)  # bf16 has 8 bits of mantissa

    summary = fast_stats["fast_paths"]
    assert summary["amp_dtype"] == "bfloat16" and summary["channels_last"] and summary["thread_loader"]
    assert plain_stats["fast_paths"]["amp_dtype"] is None and not plain_stats["fast_paths"]["channels_last"]
    assert "fast paths: amp_dtype bfloat16, channels_last" in log
    assert "peak_gpu_memory_bytes" not in fast_stats  # a CPU job has no GPU peak to report

    # The checkpoint is the plain module's (autocast wraps the instance's forward, not the module).
    net = UNet(spatial_dims=3, in_channels=1, out_channels=2, channels=[4, 8], strides=[2], num_res_units=0, norm="batch")
    net.load_state_dict(torch.load(tmp_path / "fast" / "models" / "model.pt", weights_only=True)["model"])


@pytest.mark.slow
def test_fast_path_objects_on_cpu(tmp_path):
    """What the builder gets with the paths on: ThreadDataLoader over a CacheDataset, a channels_last_3d model,
    bf16 forward, channels_last batches from prepare_batch."""
    import torch
    from monai.data import ThreadDataLoader

    from mmar_automl.config.mmar import Mmar
    from mmar_automl.train.fastpaths import decide
    from mmar_automl.train.resolver import Builder

    data = make_dataset(tmp_path / "data", n_train=2, n_val=1, size=20)
    root = make_mmar(tmp_path / "m", _cached(tiny_config(fast_paths=ON)), data)
    conf = Mmar.open(root).substituted_config()
    builder = Builder(conf, "config/config_train.json", root, "cpu", warn=lambda m: None)
    builder.fast_paths = decide(conf, "cpu", env={})
    trainer = builder.get("train", "trainer")
    assert isinstance(builder.get("train", "dataloader"), ThreadDataLoader)
    model = builder.get("train", "model")
    conv = next(m for m in model.modules() if isinstance(m, torch.nn.Conv3d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last_3d)
    out = model(torch.rand(1, 1, 16, 16, 16))
    assert out.dtype == torch.float32  # computed in bf16, handed back in float32 for the loss
    batch = {"image": torch.rand(2, 1, 8, 8, 8), "label": torch.zeros(2, 1, 8, 8, 8)}
    image, _ = trainer.prepare_batch(batch, torch.device("cpu"), trainer.non_blocking)
    assert image.is_contiguous(memory_format=torch.channels_last_3d) and trainer.non_blocking


@pytest.mark.slow
@pytest.mark.parametrize("name, args", [
    ("UNet", {"spatial_dims": 3, "in_channels": 1, "out_channels": 2, "channels": [4, 8, 16], "strides": [2, 2],
              "num_res_units": 2, "norm": "batch"}),
    ("SegResNet", {"spatial_dims": 3, "in_channels": 1, "out_channels": 2, "init_filters": 8}),
    ("DynUNet", {"spatial_dims": 3, "in_channels": 1, "out_channels": 2, "kernel_size": [3, 3, 3],
                 "strides": [1, 2, 2], "upsample_kernel_size": [2, 2]}),
    ("BasicUNet", {"spatial_dims": 3, "in_channels": 1, "out_channels": 2, "features": [4, 4, 8, 16, 32, 4], "norm": "batch"}),
])
def test_channels_last_3d_runs_the_common_3d_networks(name, args):
    """channels_last_3d is on by default on GPUs: the usual MONAI 3-D networks must train with it."""
    import monai.networks.nets as nets
    import torch

    torch.manual_seed(0)
    net = getattr(nets, name)(**args)
    x = torch.rand(2, 1, 32, 32, 32)
    ref = net(x)
    net = net.to(memory_format=torch.channels_last_3d)
    out = net(x.contiguous(memory_format=torch.channels_last_3d))
    out.float().mean().backward()
    assert torch.allclose(ref, out, atol=1e-4)


@pytest.mark.slow
def test_cuda_decisions_reach_the_engines_and_loaders():
    """What a CUDA job's builder would pass (checked on the CPU: nothing here touches CUDA)."""
    import torch
    from monai.data import CacheDataset, DataLoader, Dataset, ThreadDataLoader
    from monai.engines import SupervisedEvaluator, SupervisedTrainer
    from monai.networks.nets import UNet

    from mmar_automl.train.fastpaths import FastBatch, decide

    every = {"amp_dtype": "auto", "channels_last": True, "non_blocking": True, "pin_memory": True, "thread_loader": True}
    fast = decide({"fast_paths": every}, "cuda", bf16_supported=True, env={})
    net = fast.after_build("UNet", UNet(3, 1, 2, channels=[4, 8], strides=[2], norm="batch"))
    _, args = fast.before_build("SupervisedTrainer", SupervisedTrainer, {"amp": True, "network": net})
    assert args["amp"] is False and args["non_blocking"] is True  # bf16: the forward autocasts, no GradScaler
    assert isinstance(args["prepare_batch"], FastBatch) and "compile" not in args
    _, args = fast.before_build("SupervisedEvaluator", SupervisedEvaluator, {"amp": False, "network": net})
    assert args["amp"] is False and "amp_kwargs" not in args  # the config's amp stays the switch
    fp16 = decide({"fast_paths": {"amp_dtype": "fp16"}}, "cuda", bf16_supported=True, compile=True, env={})
    _, args = fp16.before_build("SupervisedTrainer", SupervisedTrainer, {"amp": False, "network": UNet(3, 1, 2, [4, 8], [2])})
    assert args["amp"] is True and args["amp_kwargs"] == {"dtype": torch.float16} and args["compile"] is True
    _, args = fp16.before_build("SupervisedEvaluator", SupervisedEvaluator, {"network": UNet(3, 1, 2, [4, 8], [2])})
    assert "compile" not in args and args["amp"] is False  # the evaluator and the checkpoints keep the plain module

    cached = CacheDataset([{"x": 1}], transform=None, progress=False)
    factory, args = fast.before_build("DataLoader", DataLoader, {"dataset": cached, "batch_size": 2})
    assert factory is ThreadDataLoader and args == {"dataset": cached, "batch_size": 2, "pin_memory": True}
    factory, args = fast.before_build("DataLoader", DataLoader, {"dataset": Dataset([{"x": 1}]), "pin_memory": False})
    assert factory is DataLoader and args["pin_memory"] is False  # not cached: no thread; the config's choice wins
