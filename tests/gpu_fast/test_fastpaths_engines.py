"""The fast paths against real MONAI engines, a real GradScaler and real MONAI networks, on the CPU (issue 19):
what a GPU job's decisions do to the engines, the layouts torch refuses, GPU transforms under pinned memory,
compile threads, and a job given GPUs whose CUDA cannot start."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "train"))
from factory import make_dataset, make_mmar, tiny_config  # noqa: E402

from mmar_automl.train.fastpaths import FastPaths, decide  # noqa: E402


def _segmentation_data(n: int = 4, size: int = 16):
    import torch

    torch.manual_seed(0)
    return [{"image": torch.rand(1, size, size, size), "label": (torch.rand(1, size, size, size) > 0.5).float()}
            for _ in range(n)]


def _trainer(fast: FastPaths, network, amp: bool = True):
    """A real SupervisedTrainer built the way the Builder builds one (before_build, then the factory)."""
    import torch
    from monai.data import DataLoader
    from monai.engines import SupervisedTrainer
    from monai.losses import DiceLoss

    factory, loader_args = fast.before_build("DataLoader", DataLoader, {"dataset": _segmentation_data(), "batch_size": 2})
    _, args = fast.before_build("SupervisedTrainer", SupervisedTrainer, {
        "device": torch.device("cpu"), "max_epochs": 2, "train_data_loader": factory(**loader_args), "network": network,
        "optimizer": torch.optim.Adam(network.parameters(), 1e-3), "loss_function": DiceLoss(sigmoid=True), "amp": amp})
    return fast.after_build("SupervisedTrainer", SupervisedTrainer(**args)), args


def _tiny_unet():
    from monai.networks.nets import UNet

    return UNet(spatial_dims=3, in_channels=1, out_channels=1, channels=[4, 8], strides=[2], num_res_units=0, norm="batch")


@pytest.mark.slow
def test_bf16_training_runs_without_loss_scaling():
    """MONAI's Trainer.run() creates an enabled GradScaler whenever the engine's amp is on: a bf16 job must
    reach its iterations with no scaler at all (no loss scaling, no host sync per step)."""
    import torch
    from ignite.engine import Events

    fast = decide({"amp": True, "fast_paths": {"amp_dtype": "auto"}}, "cuda", bf16_supported=True, env={})
    network = _tiny_unet()
    trainer, args = _trainer(fast, network)
    scalers = []
    trainer.add_event_handler(Events.ITERATION_COMPLETED, lambda engine: scalers.append(engine.scaler))
    trainer.run()
    assert args["amp"] is False and "amp_kwargs" not in args
    assert len(scalers) == 4 and all(s is None for s in scalers), scalers
    assert network._mmar_automl_fast["autocast"] == ("cuda", torch.bfloat16)  # the forward autocasts instead

    # fp16 needs its loss scaling: MONAI's AMP branch and GradScaler stay.
    fp16 = decide({"amp": True, "fast_paths": {"amp_dtype": "fp16"}}, "cuda", bf16_supported=True, env={})
    trainer, args = _trainer(fp16, _tiny_unet())
    seen = []
    trainer.add_event_handler(Events.ITERATION_COMPLETED, lambda engine: seen.append(engine.scaler))
    with pytest.warns(UserWarning):  # the CPU: torch disables the CUDA scaler and autocast, with a warning
        trainer.run()
    assert args["amp"] is True and args["amp_kwargs"] == {"dtype": torch.float16}
    assert all(isinstance(s, torch.amp.GradScaler) for s in seen) and len(seen) == 4


@pytest.mark.slow
def test_amp_evaluator_hands_float32_predictions_to_rocauc():
    """MONAI's evaluator leaves autocast predictions in bf16; ROCAUC calls .numpy() on them ("Got unsupported
    ScalarType BFloat16"). With the fast paths the network's forward hands float32 back, and MONAI's own
    evaluator AMP (which would not) is off, on the GPU as on the CPU."""
    import torch
    from ignite.engine import Events
    from monai.engines import SupervisedEvaluator
    from monai.handlers import ROCAUC, from_engine
    from monai.networks.nets import DenseNet121
    from monai.transforms import Activationsd, AsDiscreted, Compose

    on_gpu = decide({"fast_paths": {"amp_dtype": "bf16"}}, "cuda", env={})
    _, args = on_gpu.before_build("SupervisedEvaluator", SupervisedEvaluator, {"network": DenseNet121(2, 1, 2), "amp": True})
    assert args["amp"] is False and "amp_kwargs" not in args
    assert args["network"]._mmar_automl_fast["autocast"] == ("cuda", torch.bfloat16)

    on_cpu = decide({"fast_paths": {"amp_dtype": "bf16"}}, "cpu", env={})
    network = DenseNet121(spatial_dims=2, in_channels=1, out_channels=2, init_features=8, growth_rate=8,
                          block_config=(2, 2))
    data = [{"image": torch.rand(1, 32, 32), "label": torch.tensor(k % 2)} for k in range(6)]
    post = Compose([Activationsd(keys="pred", softmax=True), AsDiscreted(keys="label", to_onehot=2)])
    _, args = on_cpu.before_build("SupervisedEvaluator", SupervisedEvaluator, {
        "device": torch.device("cpu"), "val_data_loader": torch.utils.data.DataLoader(data, batch_size=3),
        "network": network, "postprocessing": post, "amp": False,
        "key_val_metric": {"auc": ROCAUC(output_transform=from_engine(["pred", "label"]))}})
    evaluator = SupervisedEvaluator(**args)
    dtypes = []
    evaluator.add_event_handler(Events.ITERATION_COMPLETED, lambda e: dtypes.append(e.state.output[0]["pred"].dtype))
    evaluator.run()
    assert dtypes == [torch.float32, torch.float32]
    assert 0.0 <= evaluator.state.metrics["auc"] <= 1.0


def test_pin_memory_skips_datasets_whose_transforms_put_data_on_the_gpu():
    """MONAI's fast-training recipe (EnsureTyped/ToDeviced to CUDA before a ThreadDataLoader): pinning CUDA
    tensors fails ("cannot pin 'torch.cuda.FloatTensor'"); such a loader keeps pin_memory off, with one line."""
    from monai.data import DataLoader, Dataset
    from monai.transforms import Compose, EnsureTyped, ToDeviced

    notes: list[str] = []
    fast = FastPaths(device="cuda", pin_memory=True, note=notes.append)
    for to_gpu in (EnsureTyped(keys="image", device="cuda:0"), ToDeviced(keys="image", device="cuda")):
        dataset = Dataset([{"image": 0}], transform=Compose([EnsureTyped(keys="image"), to_gpu]))
        _, args = fast.before_build("DataLoader", DataLoader, {"dataset": dataset})
        assert "pin_memory" not in args
    assert notes == ["pin_memory skipped: EnsureTyped puts the data on the GPU already",
                     "pin_memory skipped: ToDeviced puts the data on the GPU already"]
    _, args = fast.before_build("DataLoader", DataLoader, {"dataset": Dataset([{"image": 0}], transform=EnsureTyped(keys="image"))})
    assert args["pin_memory"] is True


def test_channels_last_skips_what_it_cannot_convert():
    """A Conv3d model with a 4-D parameter: Module.to(channels_last_3d) fails ("required rank 5 tensor");
    only the 5-D weights are converted. InstanceNorm/GroupNorm models are left plain, with one line."""
    import torch
    from monai.networks.nets import BasicUNet

    class WithBias4d(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv3d(1, 2, 3)
            self.scale = torch.nn.Parameter(torch.ones(1, 2, 1, 1))

        def forward(self, x):
            return self.conv(x) * self.scale.unsqueeze(-1)

    notes: list[str] = []
    fast = FastPaths(channels_last=True, note=notes.append)
    model = fast.after_build("WithBias4d", WithBias4d())
    assert model.conv.weight.is_contiguous(memory_format=torch.channels_last_3d)
    assert model(torch.rand(1, 1, 6, 6, 6)).shape == (1, 2, 4, 4, 4)
    assert notes == []
    instance = fast.after_build("BasicUNet", BasicUNet(3, 1, 2, features=(4, 4, 8, 8, 16, 4)))
    assert notes == ["channels_last skipped for BasicUNet: its InstanceNorm3d layers would copy layouts around every norm"]
    assert all(p.is_contiguous() for p in instance.parameters())


def test_compile_uses_the_jobs_threads():
    """Inductor sized its compile pool when torch was imported (the launcher, before the job's
    OMP_NUM_THREADS): a compiling job uses its own share of the cores."""
    import torch._inductor.config as inductor

    before = inductor.compile_threads
    try:
        inductor.compile_threads = 32  # what a 32-core launcher leaves its forked jobs
        FastPaths(compile=True, cpu_threads=1).apply_globals()
        assert inductor.compile_threads == 1
    finally:
        inductor.compile_threads = before


@pytest.mark.slow
def test_a_job_given_gpus_without_working_cuda_fails_in_one_line(tmp_path, monkeypatch, capsys):
    """Run gives a GPU job CUDA_VISIBLE_DEVICES; when CUDA cannot start there (a forked CUDA, a CPU-only torch)
    the job fails at once instead of training on the CPU for hours."""
    from mmar_automl.train.run import main

    data = make_dataset(tmp_path / "data", n_train=2, n_val=1, size=20)
    root = make_mmar(tmp_path / "m", tiny_config(use_gpu=True), data)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    assert main([str(root)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "CUDA_VISIBLE_DEVICES=0" in err[0] and "CUDA is unusable" in err[0], err
    assert not (root / "models" / "model.pt").exists()
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")  # what run gives a CPU job: trains on the CPU
    assert main([str(root)]) == 0


@pytest.mark.slow
def test_the_loss_is_read_to_the_host_once_per_epoch_not_per_step(tmp_path, monkeypatch):
    """Reading the loss every iteration (.item()) makes the CPU wait for the GPU each step; the recorder reads
    a batch of them at once (train/outputs.py LOSS_CHECK_EVERY) and at each epoch's end."""
    import inspect

    import torch

    import mmar_automl.train.outputs as outputs
    from mmar_automl.train.run import main

    reads = []
    for name in ("item", "tolist", "__float__"):
        plain = getattr(torch.Tensor, name)

        def counted(self, *args, _plain=plain, _name=name, **kwargs):
            if inspect.currentframe().f_back.f_code.co_filename == outputs.__file__:
                reads.append(_name)
            return _plain(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, counted)
    data = make_dataset(tmp_path / "data", n_train=8, n_val=1, size=20)
    root = make_mmar(tmp_path / "m", tiny_config(epochs=2, num_interval_per_valid=2), data)
    assert main([str(root), "--device", "cpu"]) == 0  # 4 iterations per epoch
    assert reads == ["tolist", "tolist"], reads


@pytest.mark.slow
def test_compiled_training_on_batches_of_meta_tensors(tmp_path, capsys):
    """MONAI's compile branch rebuilds MetaTensors from a batch's meta and failed on any batch of more than one
    loaded image ("Boolean value of Tensor with more than one value is ambiguous"): the compiled trainer gets
    plain tensors. With bf16 and channels_last on too, as a GPU job would run."""
    from mmar_automl.train.run import main

    data = make_dataset(tmp_path / "data", n_train=2, n_val=1, size=20)
    config = tiny_config(epochs=1, fast_paths={"amp_dtype": "bf16", "channels_last": True})
    config["train"]["model"]["args"]["norm"] = "batch"
    root = make_mmar(tmp_path / "m", config, data)  # batch_size 2 of LoadImaged MetaTensors
    assert main([str(root), "--device", "cpu", "--compile"]) == 0, capsys.readouterr().err
    assert "fast paths: amp_dtype bfloat16, channels_last, compile" in capsys.readouterr().out


def test_a_deep_copy_of_a_fast_network_runs_its_own_weights():
    """EMA/SWA-style copies (copy.deepcopy) keep the fast forward, bound to the copy, not to the original."""
    import copy

    import torch

    fast = FastPaths(amp_dtype="bfloat16", channels_last=True, note=lambda line: None)
    network = fast.after_build("UNet", _tiny_unet())
    fast.before_build("SupervisedEvaluator", lambda network=None, amp=False: None, {"network": network, "amp": True})
    twin = copy.deepcopy(network)
    with torch.no_grad():
        for p in twin.parameters():
            p.zero_()
    x = torch.rand(1, 1, 8, 8, 8)
    assert twin.eval()(x).abs().sum() == 0 and network.eval()(x).abs().sum() > 0
    assert twin(x).dtype == torch.float32 and twin._mmar_automl_fast["autocast"] == ("cpu", torch.bfloat16)


def test_thread_loader_over_an_uncached_dataset_is_skipped_with_one_line():
    from monai.data import CacheDataset, DataLoader, Dataset, ThreadDataLoader

    notes: list[str] = []
    fast = FastPaths(thread_loader=True, note=notes.append)
    assert fast.before_build("DataLoader", DataLoader, {"dataset": Dataset([{"x": 1}])})[0] is DataLoader
    assert notes == ["thread_loader skipped: Dataset is not a CacheDataset"]
    cached = CacheDataset([{"x": 1}], transform=None, progress=False)
    assert fast.before_build("DataLoader", DataLoader, {"dataset": cached})[0] is ThreadDataLoader


@pytest.mark.slow
def test_the_cpu_amp_note_is_true(tmp_path, capsys):
    """'amp needs a GPU: running in float32' is said only where the CPU job really runs in float32."""
    from mmar_automl.train.run import main

    data = make_dataset(tmp_path / "data", n_train=2, n_val=1, size=20)
    note = "amp (mixed precision) needs a GPU: running in float32 on the CPU"
    for fast_paths, said in (({}, True), ({"amp_dtype": "bf16"}, False)):
        root = make_mmar(tmp_path / f"m{int(said)}", tiny_config(amp=True, fast_paths=fast_paths), data)
        assert main([str(root), "--device", "cpu"]) == 0
        assert (note in capsys.readouterr().out) is said, fast_paths
