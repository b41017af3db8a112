"""AMP training on a GPU (skipped without one): the same contract as on CPU, with mixed precision on."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from factory import make_dataset, make_mmar, read_metrics, read_stats, tiny_config  # noqa: E402


def _cuda() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


@pytest.mark.gpu
@pytest.mark.slow
@pytest.mark.skipif(not _cuda(), reason="needs an NVIDIA GPU")
def test_amp_training_on_gpu(tmp_path):
    import torch
    from monai.networks.nets import UNet

    from mmar_automl.train.run import main

    data = make_dataset(tmp_path / "data")
    root = make_mmar(tmp_path / "m", tiny_config(amp=True, use_gpu=True), data)
    assert main([str(root), "--set", "epochs=2"]) == 0  # use_gpu + a visible GPU -> cuda
    stats = read_stats(root)
    assert stats["device"] == "cuda" and stats["amp"] is True and stats["status"] == "complete"
    assert 0.0 <= stats["best_validation_metric"] <= 1.0
    assert [ln["kind"] for ln in read_metrics(root)] == ["train", "validation", "train", "validation", "end"]
    state = torch.load(root / "models" / "model.pt", map_location="cpu", weights_only=True)["model"]
    UNet(spatial_dims=3, in_channels=1, out_channels=2, channels=[4, 8], strides=[2]).load_state_dict(state)
