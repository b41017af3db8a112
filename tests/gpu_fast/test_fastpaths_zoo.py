"""MONAI zoo networks trained by the real trainer on the CPU with every fast path forced on through the
``fast_paths`` key (compile aside: minutes of compiling per network on two cores): none crashes, a path
that cannot apply is skipped with one ``note:`` line, and the checkpoint reloads into the plain network."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "train"))
from factory import make_dataset, make_mmar, read_metrics, read_stats, tiny_config  # noqa: E402

EVERY = {"amp_dtype": "bf16", "channels_last": True, "cudnn_benchmark": True, "tf32": True, "pin_memory": True,
         "non_blocking": True, "thread_loader": True}

# name, args, volume size, the note channels_last leaves in the log (None: converted and trained so)
NETWORKS = [
    ("UNETR", {"in_channels": 1, "out_channels": 2, "img_size": [32, 32, 32], "feature_size": 4, "hidden_size": 48,
               "mlp_dim": 96, "num_heads": 4}, 32, "channels_last skipped for UNETR: its InstanceNorm3d layers"),
    ("SwinUNETR", {"in_channels": 1, "out_channels": 2, "feature_size": 12}, 64,
     "channels_last skipped for SwinUNETR: its InstanceNorm3d layers"),
    ("DynUNet", {"spatial_dims": 3, "in_channels": 1, "out_channels": 2, "kernel_size": [3, 3, 3], "strides": [1, 2, 2],
                 "upsample_kernel_size": [2, 2], "norm_name": "batch"}, 32, None),
    ("BasicUNet", {"spatial_dims": 3, "in_channels": 1, "out_channels": 2, "features": [4, 4, 8, 8, 16, 4],
                   "norm": "batch"}, 32, None),
]


def _segmentation(name: str, args: dict, size: int) -> dict:
    config = tiny_config(epochs=1, fast_paths=EVERY)
    config["train"]["model"] = {"name": name, "args": args}
    config["train"]["pre_transforms"][3]["args"]["roi_size"] = [size] * 3
    for section in ("train", "validate"):
        config[section]["dataset"]["name"] = "CacheDataset"
        config[section]["dataset"]["args"].update({"cache_rate": 1.0, "num_workers": 0})
    return config


@pytest.mark.slow
def test_zoo_networks_train_with_every_fast_path_forced_on(tmp_path, capsys):
    import monai.networks.nets as nets
    import torch

    from mmar_automl.train.run import main

    data = {size: make_dataset(tmp_path / f"data{size}", n_train=2, n_val=1, size=size) for size in (32, 64)}
    for name, args, size, note in NETWORKS:
        root = make_mmar(tmp_path / name, _segmentation(name, args, size), data[size])
        code = main([str(root), "--device", "cpu"])
        out = capsys.readouterr()
        assert code == 0, (name, out.err)
        stats = read_stats(root)
        assert stats["status"] == "complete" and stats["fast_paths"]["amp_dtype"] == "bfloat16", name
        assert isinstance(stats["best_validation_metric"], float), name
        notes = [ln for ln in out.out.splitlines() if ln.startswith("note: channels_last")]
        assert notes == ([] if note is None else [notes[0]]) and (note is None or note in notes[0]), (name, notes)
        state = torch.load(root / "models" / "model.pt", weights_only=True)["model"]
        getattr(nets, name)(**args).load_state_dict(state)


@pytest.mark.slow
def test_2d_classifier_with_rocauc_trains_with_every_fast_path_forced_on(tmp_path, capsys):
    """The classification template validates with ROCAUC, which calls .numpy() on the predictions."""
    from mmar_automl.scaffold.init import init_mmar
    from mmar_automl.train.run import main

    root = init_mmar(tmp_path / "cls", "classification_2d", synthetic_data=8).root
    code = main([str(root), "--device", "cpu", "--set", "epochs=2", "--set", f"fast_paths={json.dumps(EVERY)}"])
    out = capsys.readouterr()
    assert code == 0, out.err
    stats = read_stats(root)
    assert stats["status"] == "complete" and stats["fast_paths"]["amp_dtype"] == "bfloat16"
    assert [r["kind"] for r in read_metrics(root)].count("validation") == 2
    assert 0.0 <= stats["best_validation_metric"] <= 1.0


@pytest.mark.slow
def test_segresnetvae_trains_channels_last_by_falling_back(tmp_path):
    """SegResNetVAE .view()s a channels_last_3d activation ("view size is not compatible"): the first forward
    puts the model back in the plain layout, says so in one line, and training goes on. Its (prediction,
    VAE loss) output needs a loss of its own, so the real engines are built here as the Builder builds them."""
    import torch
    from monai.data import CacheDataset, DataLoader
    from monai.engines import SupervisedTrainer
    from monai.losses import DiceLoss
    from monai.networks.nets import SegResNetVAE

    from mmar_automl.train.fastpaths import decide

    notes: list[str] = []
    fast = decide({"fast_paths": EVERY}, "cpu", env={})
    object.__setattr__(fast, "note", notes.append)
    torch.manual_seed(0)
    network = fast.after_build("SegResNetVAE", SegResNetVAE(input_image_size=(32, 32, 32), spatial_dims=3, in_channels=1,
                                                            out_channels=1, init_filters=8, norm="batch"))
    data = [{"image": torch.rand(1, 32, 32, 32), "label": (torch.rand(1, 32, 32, 32) > 0.5).float()} for _ in range(4)]
    factory, loader_args = fast.before_build("DataLoader", DataLoader, {
        "dataset": CacheDataset(data, transform=None, progress=False), "batch_size": 2})
    dice = DiceLoss(sigmoid=True)
    _, args = fast.before_build("SupervisedTrainer", SupervisedTrainer, {
        "device": torch.device("cpu"), "max_epochs": 2, "train_data_loader": factory(**loader_args), "network": network,
        "optimizer": torch.optim.Adam(network.parameters(), 1e-3), "amp": False,
        "loss_function": lambda pred, label: dice(pred[0], label) + pred[1]})
    trainer = SupervisedTrainer(**args)
    trainer.run()
    assert trainer.state.iteration == 4 and torch.isfinite(torch.tensor(trainer.state.output[0]["loss"]))
    assert len(notes) == 1 and notes[0].startswith("channels_last skipped for SegResNetVAE: view size is not compatible")
    assert all(p.is_contiguous() for p in network.parameters())
