"""--workers parsing (Clara syntax), GPU environment of a job, NVML absence."""

from __future__ import annotations

import pytest

from mmar_automl.errors import UsageError
from mmar_automl.workers import Gpu, WorkerSpec, _apply_visible_devices, discover_gpus, gpus_released, job_environment, parse_workers

GPUS = [Gpu(0, 1, "00000000:3b:00.0"), Gpu(1, 0, "00000000:af:00.0")]


def test_clara_syntax():
    assert [w.gpus for w in parse_workers("0:0:1:1", GPUS)] == [[0], [0], [1], [1]]
    assert [w.gpus for w in parse_workers("0,1:1,0", GPUS)] == [[0, 1], [1, 0]]
    assert [w.number for w in parse_workers("0:1", GPUS)] == [1, 2]


def test_cpu_workers():
    assert [w.gpus for w in parse_workers("cpu:cpu", [])] == [[], []]
    assert [w.gpus for w in parse_workers("3", [])] == [[], [], []]
    assert [w.gpus for w in parse_workers(None, [])] == [[]]
    assert [w.gpus for w in parse_workers(None, GPUS)] == [[0], [1]]
    assert [w.gpus for w in parse_workers("1", GPUS)] == [[1]]  # with GPUs a bare number is a GPU index


@pytest.mark.parametrize("text", ["0:2", "x:0", "0,0", "0:", "1"])
def test_bad_workers(text):
    gpus = GPUS if text != "1" else []
    if text == "1":
        assert len(parse_workers(text, gpus)) == 1  # one CPU worker
        return
    with pytest.raises(UsageError, match="--workers"):
        parse_workers(text, gpus)


def test_gpu_index_without_gpus_is_an_error():
    with pytest.raises(UsageError, match="GPU 0 not found"):
        parse_workers("0:0", [])


def test_job_environment():
    env = job_environment({"PATH": "/bin", "CUDA_VISIBLE_DEVICES": "0,1,2"}, WorkerSpec(1, [1, 0]))
    assert env["CUDA_VISIBLE_DEVICES"] == "1,0" and env["CUDA_DEVICE_ORDER"] == "PCI_BUS_ID"
    assert job_environment({}, WorkerSpec(1, []))["CUDA_VISIBLE_DEVICES"] == ""


def test_visible_devices_restrict_and_renumber():
    assert [g.pci_bus_id for g in _apply_visible_devices(GPUS, "1")] == ["00000000:af:00.0"]
    assert [g.index for g in _apply_visible_devices(GPUS, "1")] == [0]
    assert _apply_visible_devices(GPUS, "") == []
    assert _apply_visible_devices(GPUS, None) == GPUS


def test_no_driver_means_no_gpu():
    # This machine has no NVIDIA driver: NVMLError_LibraryNotFound must read as "no GPU", not fail.
    assert discover_gpus() == [] or all(isinstance(g, Gpu) for g in discover_gpus())
    assert gpus_released([], [], {1}) is True
