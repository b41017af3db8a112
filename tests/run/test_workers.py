"""--workers parsing (Clara syntax), GPU environment of a job, NVML absence."""

from __future__ import annotations

import pytest

from mmar_automl.errors import UsageError
from mmar_automl.run.workers import (
    Gpu,
    WorkerSpec,
    _apply_visible_devices,
    discover_gpus,
    gpus_released,
    job_environment,
    parse_workers,
    threads_per_job,
)

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


def test_visible_devices_by_uuid_and_mig_refused():
    """CUDA_VISIBLE_DEVICES may name GPUs by UUID (or a unique prefix); those were ignored (every GPU used)."""
    from mmar_automl.errors import UsageError

    gpus = [Gpu(0, 1, "00000000:3b:00.0", "A", 0, "GPU-8932f937-d72c-4106-c12f-20bd9faed9f6"),
            Gpu(1, 0, "00000000:af:00.0", "B", 1, "GPU-11b3a0c2-1d10-7e4a-8b4c-4f4ca2b3d6a1")]
    picked = _apply_visible_devices(gpus, "GPU-11b3a0c2-1d10-7e4a-8b4c-4f4ca2b3d6a1")
    assert [(g.index, g.physical, g.nvml_index) for g in picked] == [(0, 1, 0)]
    assert [g.physical for g in _apply_visible_devices(gpus, "GPU-11b3,8932f937")] == [1, 0]
    assert [g.physical for g in _apply_visible_devices(gpus, "0,GPU-ffff,1")] == [0]  # CUDA stops at an unknown entry
    with pytest.raises(UsageError, match="MIG instances"):
        _apply_visible_devices(gpus, "MIG-4b1f8a1e-6b4a-5d4f-9c3e-0a1b2c3d4e5f")


def test_no_driver_means_no_gpu():
    # This machine has no NVIDIA driver: NVMLError_LibraryNotFound must read as "no GPU", not fail.
    assert discover_gpus() == [] or all(isinstance(g, Gpu) for g in discover_gpus())
    assert gpus_released([], [], {1}) is True


class _FakeNvml:
    """A stand-in for the NVML bindings (this machine has no GPU): two GPUs whose NVML order differs
    from PCI bus order, and a compute process list we control."""

    class NVMLError(Exception):
        pass

    def __init__(self):
        self.buses = ["00000000:AF:00.0", "00000000:3B:00.0"]  # NVML index 0 sits on the higher bus
        self.procs = {0: [], 1: []}

    def nvmlInit(self):
        pass

    def nvmlShutdown(self):
        pass

    def nvmlDeviceGetCount(self):
        return 2

    def nvmlDeviceGetHandleByIndex(self, i):
        return i

    def nvmlDeviceGetPciInfo(self, h):
        return type("Pci", (), {"busId": self.buses[h].encode()})()

    def nvmlDeviceGetName(self, h):
        return b"Fake GPU"

    def nvmlDeviceGetUUID(self, h):
        return f"GPU-0000000{h}-fake"

    def nvmlDeviceGetComputeRunningProcesses(self, h):
        return [type("P", (), {"pid": p})() for p in self.procs[h]]

    def nvmlDeviceGetGraphicsRunningProcesses(self, h):
        return []


def test_nvml_order_and_memory_release(monkeypatch):
    import sys

    fake = _FakeNvml()
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    gpus = discover_gpus()
    # CUDA index (PCI_BUS_ID order) 0 is the 3B bus, which NVML calls 1
    assert [(g.index, g.nvml_index, g.pci_bus_id) for g in gpus] == [(0, 1, "00000000:3b:00.0"), (1, 0, "00000000:af:00.0")]
    fake.procs[1] = [4242]
    assert not gpus_released(gpus, [0], {4242})   # our job's pid still holds memory on CUDA GPU 0
    assert gpus_released(gpus, [1], {4242})
    fake.procs[1] = []
    assert gpus_released(gpus, [0], {4242})
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    visible = discover_gpus()
    assert [(g.index, g.nvml_index, g.physical) for g in visible] == [(0, 0, 1)]
    # worker GPU 0 is the orchestrator's visible GPU 0 = physical GPU 1 (bus order) for the job
    assert job_environment({}, parse_workers("0", visible)[0], visible)["CUDA_VISIBLE_DEVICES"] == "1"
    assert job_environment({}, parse_workers("0", gpus)[0], gpus)["CUDA_VISIBLE_DEVICES"] == "0"


def test_cpu_threads_are_shared_among_concurrent_jobs():
    assert threads_per_job(2, cpu_count=2) == 1
    assert threads_per_job(4, cpu_count=16) == 4
    assert threads_per_job(3, cpu_count=2) == 1          # never zero
    env = job_environment({}, WorkerSpec(1, []), threads=3)
    assert env["OMP_NUM_THREADS"] == "3"
    # the user's own setting wins
    assert job_environment({"OMP_NUM_THREADS": "8"}, WorkerSpec(1, []), threads=3)["OMP_NUM_THREADS"] == "8"
    assert "OMP_NUM_THREADS" not in job_environment({}, WorkerSpec(1, []))
