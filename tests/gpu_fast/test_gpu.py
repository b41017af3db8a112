"""On a GPU (skipped without one, tests/conftest.py): the fast paths train and the job reports its peak memory."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "train"))
from factory import make_dataset, make_mmar, read_metrics, read_stats, tiny_config  # noqa: E402


EVERY = {"amp_dtype": "auto", "channels_last": True, "cudnn_benchmark": True, "tf32": True, "pin_memory": True,
         "non_blocking": True, "thread_loader": True}


@pytest.mark.gpu
@pytest.mark.slow
def test_fast_paths_on_a_gpu_report_peak_memory(tmp_path):
    import torch

    from mmar_automl.train.run import main

    data = make_dataset(tmp_path / "data", n_train=4, n_val=1, size=32)
    config = tiny_config(epochs=2, use_gpu=True, amp=True, fast_paths=EVERY)
    config["train"]["model"]["args"]["norm"] = "batch"  # channels_last skips InstanceNorm models
    for section in ("train", "validate"):
        config[section]["dataset"]["name"] = "CacheDataset"
    root = make_mmar(tmp_path / "m", config, data)
    assert main([str(root), "--device", "cuda"]) == 0
    stats = read_stats(root)
    expected = "bfloat16" if torch.cuda.is_bf16_supported(including_emulation=False) else "float16"
    assert stats["fast_paths"]["amp_dtype"] == expected and stats["fast_paths"]["channels_last"]
    assert stats["peak_gpu_memory_bytes"] > 0 and stats["peak_host_memory_bytes"] > 0
    assert all(r.get("peak_gpu_memory_bytes", 0) > 0 for r in read_metrics(root) if r["kind"] == "train")
    assert stats.get("gpu_context_bytes", 1) > 0  # NVML's memory of the process beyond torch's reserved


@pytest.mark.gpu
@pytest.mark.slow
def test_bf16_classifier_with_rocauc_on_a_gpu(tmp_path):
    """MONAI's evaluator left bf16 predictions and ROCAUC's .numpy() failed (issue 19)."""
    import json

    from mmar_automl.scaffold.init import init_mmar
    from mmar_automl.train.run import main

    root = init_mmar(tmp_path / "cls", "classification_2d", synthetic_data=8).root
    keys = json.dumps({**EVERY, "amp_dtype": "bf16"})
    assert main([str(root), "--device", "cuda", "--set", "epochs=2", "--set", "amp=true", "--set", f"fast_paths={keys}"]) == 0
    assert 0.0 <= read_stats(root)["best_validation_metric"] <= 1.0


@pytest.mark.gpu
@pytest.mark.slow
def test_bf16_trainer_has_no_grad_scaler_on_a_gpu():
    """MONAI's Trainer.run() made an enabled GradScaler for every AMP job, bf16 included (issue 19)."""
    import torch
    from ignite.engine import Events
    from monai.engines import SupervisedTrainer
    from monai.losses import DiceLoss
    from monai.networks.nets import UNet

    from mmar_automl.train.fastpaths import decide

    fast = decide({"amp": True, "fast_paths": {"amp_dtype": "bf16"}}, "cuda", env={})
    net = UNet(3, 1, 1, channels=[8, 16], strides=[2], norm="batch").cuda()
    data = [{"image": torch.rand(1, 32, 32, 32), "label": (torch.rand(1, 32, 32, 32) > 0.5).float()} for _ in range(4)]
    _, args = fast.before_build("SupervisedTrainer", SupervisedTrainer, {
        "device": torch.device("cuda"), "max_epochs": 1, "network": net, "amp": True,
        "train_data_loader": torch.utils.data.DataLoader(data, batch_size=2),
        "optimizer": torch.optim.Adam(net.parameters()), "loss_function": DiceLoss(sigmoid=True)})
    trainer = SupervisedTrainer(**args)
    seen = []
    trainer.add_event_handler(Events.ITERATION_COMPLETED, lambda e: seen.append((e.scaler, e.state.output[0]["pred"].dtype)))
    trainer.run()
    assert seen == [(None, torch.float32)] * 2
    assert all(p.dtype == torch.float32 for p in net.parameters())


@pytest.mark.gpu
@pytest.mark.slow
def test_pin_memory_with_monai_fast_training_recipe(tmp_path):
    """CacheDataset + EnsureTyped(device="cuda") + ThreadDataLoader with pin_memory asked for: pinning CUDA
    tensors failed ("cannot pin 'torch.cuda.FloatTensor'"); the loader now skips pinning."""
    import torch
    from monai.data import CacheDataset, DataLoader
    from monai.transforms import EnsureTyped

    from mmar_automl.train.fastpaths import decide

    fast = decide({"fast_paths": {"pin_memory": True, "thread_loader": True}}, "cuda", env={})
    data = [{"image": torch.rand(1, 8, 8, 8)} for _ in range(4)]
    dataset = CacheDataset(data, transform=EnsureTyped(keys="image", device="cuda:0"), progress=False)
    factory, args = fast.before_build("DataLoader", DataLoader, {"dataset": dataset, "batch_size": 2})
    batches = list(factory(**args))
    assert len(batches) == 2 and batches[0]["image"].is_cuda


@pytest.mark.gpu
def test_auto_dtype_matches_native_bf16():
    import torch

    from mmar_automl.train.fastpaths import decide

    native = torch.cuda.is_bf16_supported(including_emulation=False)
    assert decide({"fast_paths": {"amp_dtype": "auto"}}, "cuda", env={}).amp_dtype == ("bfloat16" if native else "float16")


@pytest.mark.gpu
@pytest.mark.slow
def test_a_forked_job_with_a_broken_cuda_fails_instead_of_training_on_the_cpu(tmp_path):
    """The forked-CUDA failure (a parent that initialised CUDA forks the job): a failure, not hours on the CPU."""
    import multiprocessing
    import os

    import torch

    data = make_dataset(tmp_path / "data", n_train=2, n_val=1, size=20)
    root = make_mmar(tmp_path / "m", tiny_config(use_gpu=True), data)
    torch.zeros(1, device="cuda")  # this process now holds a CUDA context

    def child(queue):
        from mmar_automl.train.run import main

        os.environ["CUDA_VISIBLE_DEVICES"] = "0"
        queue.put(main([str(root)]))

    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    proc = ctx.Process(target=child, args=(queue,))
    proc.start()
    proc.join(300)
    code = queue.get(timeout=5)
    # 2: CUDA reported unavailable (the H200 case: is_available() False with a warning); 1: torch saw the
    # device but could not initialise it, a one-line failure on "cuda". Never a job trained on the CPU.
    assert code in (1, 2)
    stats = root / "models" / "train_stats.json"
    assert not stats.exists() or read_stats(root)["device"] == "cuda"


@pytest.mark.gpu
@pytest.mark.slow
def test_per_job_gpu_memory_is_the_jobs_own(tmp_path):
    """Two processes on one GPU, each in its own job folder: each job's memory_used_mb is its own."""
    import subprocess
    import sys
    import time

    from mmar_automl.run.workers import discover_gpus
    from mmar_automl.tracking.gpu import open_nvml

    gpu = discover_gpus()[0]
    code = "import torch, time; x = torch.empty({n} * 2**20, dtype=torch.uint8, device='cuda'); print('ok', flush=True); time.sleep(60)"
    folders = [tmp_path / "a", tmp_path / "b"]
    procs = []
    for folder, mib in zip(folders, (256, 2048)):
        folder.mkdir()
        procs.append(subprocess.Popen([sys.executable, "-c", code.format(n=mib)], cwd=folder, stdout=subprocess.PIPE, text=True))
    try:
        assert [p.stdout.readline().strip() for p in procs] == ["ok", "ok"]
        time.sleep(1)
        read = open_nvml()
        small, large = (read(gpu.nvml_index, str(f)) for f in folders)
        assert 256 <= small["memory_used_mb"] < 2048 <= large["memory_used_mb"]
        assert small["device_memory_used_mb"] >= small["memory_used_mb"] + large["memory_used_mb"] - 1
    finally:
        for p in procs:
            p.kill()
            p.wait()


def _max_concurrent(jobs: list[dict]) -> int:
    events = sorted([(j["started_at"], 1) for j in jobs] + [(j["ended_at"], -1) for j in jobs])
    now = best = 0
    for _, delta in events:
        now += delta
        best = max(best, now)
    return best


@pytest.mark.slow
@pytest.mark.parametrize("where", [pytest.param("gpu", marks=pytest.mark.gpu), "cpu"])
def test_template_search_with_several_jobs_per_device(tmp_path, where, monkeypatch):
    """A real 4-job search of the segmentation_3d template (launcher, trainer): ``auto`` on a GPU starts
    one job, learns its peak, then runs the others side by side; ``2`` per CPU worker likewise."""
    import json

    from mmar_automl.cli import main
    from mmar_automl.scaffold.init import init_mmar

    for var in ("MMAR_AUTOML_JOB_ENTRY", "MMAR_AUTOML_JOB_PRELOAD", "MMAR_AUTOML_FAST_PATHS"):
        monkeypatch.delenv(var, raising=False)
    root = init_mmar(tmp_path / "mmar", "segmentation_3d", synthetic_data=8).root
    automl = tmp_path / "automl.json"
    automl.write_text(json.dumps({"controller": {"name": "RandomController", "args": {"num_samples": 4}},
                                  "handlers": [{"name": "StatsHandler"}]}))
    flags = ["--jobs-per-gpu", "auto"] if where == "gpu" else ["--workers", "cpu", "--jobs-per-gpu", "2"]
    code = main(["run", str(root), "--no-mlflow", "--seed", "3", "--run-id", "packed", "--automl-config", str(automl),
                 "--set", "epochs=3", "--set", "num_interval_per_valid=1", *flags])
    assert code == 0
    lines = [json.loads(x) for x in (root / "automl" / "packed" / "journal.jsonl").read_text().splitlines()]
    jobs = [x["job"] for x in lines if x["op"] == "job_ended"]
    assert [j["state"] for j in jobs] == ["COMPLETE"] * 4
    assert _max_concurrent(jobs) >= 2
    if where == "gpu":
        stats = [json.loads((Path(j["folder"]) / "models" / "train_stats.json").read_text()) for j in jobs]
        assert all(s["peak_gpu_memory_bytes"] > 0 for s in stats)
        first = min(jobs, key=lambda j: j["started_at"])
        others = [j for j in jobs if j is not first]
        assert all(j["started_at"] >= first["ended_at"] - 1.0 for j in others), "auto started a 2nd job before a peak"
