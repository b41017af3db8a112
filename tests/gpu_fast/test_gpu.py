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
