"""The packing policy with fake NVML readings (pure logic): free memory, measured peaks, OOM back-off."""

from __future__ import annotations

import pytest

from mmar_automl.errors import UsageError
from mmar_automl.run.packing import (AUTO, AUTO_MAX_PER_GPU, PackingPolicy, Reading, Resident, expand_workers, is_oom,
                                 parse_jobs_per_gpu)
from mmar_automl.run.workers import WorkerSpec

GIB = 2**30
H100 = 80 * GIB


def _policy(**kw) -> PackingPolicy:
    return PackingPolicy(mode=AUTO, context_bytes=GIB // 2, min_margin_bytes=GIB, margin_fraction=0.0, **kw)


def _settled(uid: str, peak: int) -> Resident:
    return Resident(uid, peak=peak, settled=True)


def test_parse():
    assert parse_jobs_per_gpu(None) == 1 and parse_jobs_per_gpu("3") == 3 and parse_jobs_per_gpu("AUTO") == AUTO
    for bad in ("0", "-1", "two", "1.5", ""):
        with pytest.raises(UsageError, match="--jobs-per-gpu"):
            parse_jobs_per_gpu(bad)


def test_one_job_per_gpu_until_a_peak_is_measured():
    policy = _policy()
    assert policy.admit(0, [], Reading(free=H100, total=H100))
    assert not policy.admit(0, [Resident("a")], Reading(free=H100, total=H100))  # nothing finished yet
    policy.job_ended(0, peak=4 * GIB, oom=False, sharing=1)
    assert policy.admit(0, [_settled("b", 4 * GIB)], Reading(free=70 * GIB, total=H100))
    assert not policy.admit(1, [Resident("c")], Reading(free=H100, total=H100))  # peaks are per GPU


def test_free_memory_minus_margin_must_hold_the_peak():
    policy = _policy()
    policy.job_ended(0, peak=10 * GIB, oom=False, sharing=1)   # need = 10.5 GiB, margin 1 GiB
    running = [_settled("a", 10 * GIB)]
    assert policy.admit(0, running, Reading(free=11 * GIB + GIB // 2, total=H100))
    assert not policy.admit(0, running, Reading(free=11 * GIB, total=H100))


def test_jobs_that_have_not_grown_yet_are_counted():
    """NVML's free memory still includes what a just-started job is about to take."""
    policy = _policy()
    policy.job_ended(0, peak=10 * GIB, oom=False, sharing=1)
    reading = Reading(free=20 * GIB, total=H100)
    assert policy.admit(0, [_settled("a", 10 * GIB)], reading)
    assert not policy.admit(0, [Resident("fresh")], reading)  # 20 - 10.5 (its growth) - 1 < 10.5
    assert not policy.admit(0, [_settled("a", 10 * GIB), Resident("fresh")], reading)


def test_a_job_below_the_run_peak_may_still_grow_to_it():
    policy = _policy()
    policy.job_ended(0, peak=10 * GIB, oom=False, sharing=1)
    reading = Reading(free=14 * GIB, total=H100)
    assert policy.admit(0, [_settled("big", 10 * GIB)], reading)           # 14 - 0 - 1 >= 10.5
    assert not policy.admit(0, [_settled("small", 6 * GIB)], reading)      # 14 - 4 - 1 < 10.5


def test_margin_is_a_fraction_of_big_gpus():
    policy = PackingPolicy(mode=AUTO, context_bytes=0, min_margin_bytes=GIB, margin_fraction=0.05)
    assert policy.margin(8 * GIB) == GIB and policy.margin(H100) == 4 * GIB


def test_no_nvml_reading_means_one_job():
    policy = _policy()
    policy.job_ended(0, peak=GIB, oom=False, sharing=1)
    assert not policy.admit(0, [_settled("a", GIB)], None)


def test_auto_stops_at_the_slot_cap():
    policy = _policy()
    policy.job_ended(0, peak=GIB, oom=False, sharing=1)
    running = [_settled(str(i), GIB) for i in range(AUTO_MAX_PER_GPU)]
    assert not policy.admit(0, running, Reading(free=H100, total=H100))
    assert policy.admit(0, running[:-1], Reading(free=H100, total=H100))


def test_oom_on_a_shared_gpu_backs_off_and_retries():
    policy = _policy()
    policy.job_ended(0, peak=GIB, oom=False, sharing=1)
    reading = Reading(free=H100, total=H100)
    assert policy.admit(0, [_settled(str(i), GIB) for i in range(3)], reading)
    assert policy.job_ended(0, peak=2 * GIB, oom=True, sharing=4) is True   # re-run it
    assert policy.caps[0] == 3 and policy.peaks[0] == 2 * GIB
    assert not policy.admit(0, [_settled(str(i), GIB) for i in range(3)], reading)
    assert policy.job_ended(0, peak=None, oom=True, sharing=3) is True
    assert policy.caps[0] == 2
    assert policy.job_ended(0, peak=None, oom=True, sharing=2) is True
    assert policy.caps[0] == 1
    assert not policy.admit(0, [_settled("a", GIB)], reading)
    assert policy.admit(0, [], reading)


def test_oom_alone_is_an_ordinary_failure():
    policy = _policy()
    assert policy.job_ended(0, peak=None, oom=True, sharing=1) is False
    assert 0 not in policy.caps


def test_fixed_n_admits_up_to_n_and_backs_off_too():
    policy = PackingPolicy(mode=3)
    assert policy.slots_per_worker == 3
    assert policy.admit(0, [Resident("a"), Resident("b")], None)  # N needs no measurement
    assert policy.job_ended(0, peak=None, oom=True, sharing=3)
    assert not policy.admit(0, [Resident("a"), Resident("b")], None)


@pytest.mark.parametrize("reason, tail, expected", [
    ("out of memory: CUDA out of memory. Tried to allocate 2.00 GiB", None, True),
    ("exit code 1: RuntimeError: CUDNN_STATUS_ALLOC_FAILED", None, True),
    ("killed by SIGSEGV", "torch.OutOfMemoryError: CUDA out of memory.", True),
    ("stopped: loss is nan at epoch 1 iteration 3", "epoch 1/2 ...", False),
    (None, None, False),
])
def test_is_oom(reason, tail, expected):
    assert is_oom(reason, tail) is expected


def test_expand_workers():
    out = expand_workers([WorkerSpec(1, [0]), WorkerSpec(2, [1]), WorkerSpec(3, [])], 2)
    assert [(w.number, w.gpus) for w in out] == [(1, [0]), (2, [0]), (3, [1]), (4, [1]), (5, []), (6, [])]
    # a worker with two GPUs runs 2-rank DDP jobs: packing it is refused (tests/train/test_distributed.py)


def test_host_memory_of_the_dataset_caches_limits_packing():
    """Each packed job holds its own CacheDataset in host RAM: GPU room alone would admit a job the host
    cannot hold (issue 19)."""
    policy = _policy(host_margin_bytes=GIB)
    policy.job_ended(0, peak=4 * GIB, oom=False, sharing=1, host_peak=20 * GIB)
    running = [Resident("a", peak=4 * GIB, settled=True, host_peak=20 * GIB)]
    gpu_room = Reading(free=70 * GIB, total=H100)
    assert policy.admit(0, running, gpu_room, host=Reading(free=21 * GIB + 1, total=64 * GIB))
    assert not policy.admit(0, running, gpu_room, host=Reading(free=20 * GIB, total=64 * GIB))
    growing = [Resident("b", peak=4 * GIB, settled=True, host_peak=5 * GIB)]  # will still take 15 GiB more
    assert not policy.admit(0, growing, gpu_room, host=Reading(free=30 * GIB, total=64 * GIB))
    assert policy.admit(0, running, gpu_room, host=None)  # no /proc/meminfo: GPU memory decides


def test_a_measured_cuda_context_replaces_the_allowance():
    policy = PackingPolicy(mode=AUTO)
    policy.job_ended(0, peak=10 * GIB, oom=False, sharing=1)
    assert policy.need(0) == 10 * GIB + 1536 * 2**20   # Hopper + CUDA 12 + cuDNN 9: 640 MiB was too little
    policy.job_ended(0, peak=10 * GIB, oom=False, sharing=1, context=900 * 2**20)
    assert policy.need(0) == 10 * GIB + 900 * 2**20


def test_cpu_threads_follow_the_jobs_that_can_run():
    """OMP_NUM_THREADS = cores / jobs at once: with auto, the 8 slots per GPU are a ceiling, not the jobs."""
    from mmar_automl.run.packing import Packer
    from mmar_automl.run.scheduler import Slot

    slots = [Slot(w) for w in expand_workers([WorkerSpec(1, [0]), WorkerSpec(2, [1])], AUTO_MAX_PER_GPU)]
    auto = Packer(PackingPolicy(mode=AUTO), reader=False)
    assert auto.concurrent_jobs(slots) == 2                 # the first job on each GPU
    slots[0].busy, slots[8].busy, slots[1].busy = "a", "b", "c"
    assert auto.concurrent_jobs(slots) == 4
    assert Packer(PackingPolicy(mode=3), reader=False).concurrent_jobs(slots[:6]) == 6
