"""On a GPU (skipped without one, tests/conftest.py): the fast paths train and the job reports its peak memory."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "train"))
from factory import make_dataset, make_mmar, read_metrics, read_stats, tiny_config  # noqa: E402


@pytest.mark.gpu
@pytest.mark.slow
def test_fast_paths_on_a_gpu_report_peak_memory(tmp_path):
    import torch

    from mmar_automl.train.run import main

    data = make_dataset(tmp_path / "data", n_train=4, n_val=1, size=32)
    config = tiny_config(epochs=2, use_gpu=True, amp=True)
    for section in ("train", "validate"):
        config[section]["dataset"]["name"] = "CacheDataset"
    root = make_mmar(tmp_path / "m", config, data)
    assert main([str(root), "--device", "cuda"]) == 0
    stats = read_stats(root)
    expected = "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
    assert stats["fast_paths"]["amp_dtype"] == expected and stats["fast_paths"]["channels_last"]
    assert stats["peak_gpu_memory_bytes"] > 0
    assert all(r.get("peak_gpu_memory_bytes", 0) > 0 for r in read_metrics(root) if r["kind"] == "train")
