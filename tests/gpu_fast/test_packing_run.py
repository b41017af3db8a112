"""--jobs-per-gpu through the real outer loop (real job processes: tests/gpu_fast/packjobs.py, no torch).

The machine has no GPU, so the OOM back-off test gives the engine one fake GPU (its jobs get
CUDA_VISIBLE_DEVICES=0, which the light job ignores) and a fake NVML reading."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent
REPO = HERE.parents[1]
GIB = 2**30


@pytest.fixture
def pack_env(monkeypatch, tmp_path):
    ledger = tmp_path / "ledger.jsonl"
    monkeypatch.setenv("MMAR_AUTOML_JOB_ENTRY", "packjobs:main")
    monkeypatch.setenv("MMAR_AUTOML_JOB_PRELOAD", "")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(HERE), str(REPO)]))
    monkeypatch.setenv("PACKJOB_LEDGER", str(ledger))
    monkeypatch.delenv("MMAR_AUTOML_FAST_PATHS", raising=False)
    if str(HERE) not in sys.path:
        sys.path.insert(0, str(HERE))
    return ledger


def _mmar(root: Path, points: list[list]) -> Path:
    """Points are [score, oom_on_attempt, sleep]."""
    config = {"score": 0.1, "oom_on_attempt": -1, "sleep": 0.5, "peak": GIB,
              "search": [{"domain": "net", "type": "enum", "args": ["score", "oom_on_attempt", "sleep"],
                          "targets": points}],
              "train": {"model": {"name": "UNet", "args": {"channels": [4, 8]}}}}
    (root / "config").mkdir(parents=True)
    (root / "config" / "config_train.json").write_text(json.dumps(config))
    (root / "config" / "config_automl.json").write_text(json.dumps({"controller": {"name": "GridController"}}))
    (root / "config" / "environment.json").write_text(json.dumps({"MMAR_CKPT_DIR": "models"}))
    return root


def _ledger(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _intervals(events: list[dict]) -> list[tuple[float, float, dict]]:
    starts = {}
    out = []
    for e in events:
        key = (e["score"], e["attempt"])
        if e["event"] == "start":
            starts[key] = e
        else:
            out.append((starts[key]["t"], e["t"], e))
    return sorted(out, key=lambda x: x[0])


def test_oom_on_a_shared_gpu_is_retried_and_backs_off(tmp_path, pack_env):
    from mmar_automl.run.packing import Reading
    from mmar_automl.run.setup import RunOptions, prepare_run
    from mmar_automl.run.workers import Gpu

    mmar = _mmar(tmp_path / "mmar", [[0.1, -1, 2.5], [0.2, 0, 0.5], [0.3, -1, 0.5]])
    prepared = prepare_run(RunOptions(mmar=str(mmar), run_id="pack", workers="0", no_mlflow=True, seed=1,
                                      launcher=False, jobs_per_gpu="2"),
                           gpus=[Gpu(0, 0, "00000000:00:00.0", "fake", 0)],
                           nvml_reader=lambda nvml_index: Reading(free=80 * GIB, total=80 * GIB))
    engine = prepared.engine
    packer = engine.packer
    assert [s.spec.gpus for s in engine.scheduler.slots] == [[0], [0]]

    result = engine.run()
    assert result.exit_code == 0, result.reason  # the OOM job was re-run, not lost (and --max-retries is 0)

    events = _ledger(pack_env)
    oom = [e for e in events if e.get("state") == "oom"]
    assert [(e["score"], e["attempt"]) for e in oom] == [(0.2, 0)]
    ok = sorted((e["score"], e["attempt"]) for e in events if e.get("state") == "ok")
    assert ok == [(0.1, 0), (0.2, 1), (0.3, 0)]
    assert packer.policy.caps == {0: 1}
    # Before the OOM two jobs shared the GPU; after it, one at a time.
    spans = _intervals(events)
    first, second = spans[0], spans[1]
    assert second[0] < first[1], "the first two jobs should have shared the GPU"
    later = [s for s in spans if s[0] >= oom[0]["t"]]
    for a, b in zip(later, later[1:]):
        assert b[0] >= a[1], f"jobs overlapped after the back-off: {a} {b}"
    assert all(e.get("gpus") == "0" for e in events if e["event"] == "start")

    ended = [json.loads(line) for line in (prepared.run_dir / "journal.jsonl").read_text().splitlines()]
    states = [(e["job"]["recommendation"]["point"], e["job"]["state"], e["told"], e.get("forgiven"))
              for e in ended if e["op"] == "job_ended"]
    assert [(told, forgiven) for _, state, told, forgiven in states if state == "FAILED"] == [(False, True)]


def test_oom_alone_on_the_gpu_is_an_ordinary_failure(tmp_path, pack_env):
    from mmar_automl.run.packing import Reading
    from mmar_automl.run.setup import RunOptions, prepare_run
    from mmar_automl.run.workers import Gpu

    mmar = _mmar(tmp_path / "mmar", [[0.2, 0, 0.3]])
    prepared = prepare_run(RunOptions(mmar=str(mmar), run_id="alone", workers="0", no_mlflow=True, seed=1,
                                      launcher=False, jobs_per_gpu="auto"),
                           gpus=[Gpu(0, 0, "00000000:00:00.0", "fake", 0)],
                           nvml_reader=lambda nvml_index: Reading(free=80 * GIB, total=80 * GIB))
    result = prepared.engine.run()
    assert result.exit_code == 1
    assert [(e["score"], e["attempt"], e.get("state")) for e in _ledger(pack_env) if e["event"] == "end"] == [
        (0.2, 0, "oom")]


def test_cli_jobs_per_gpu_on_cpu_workers(tmp_path, pack_env, capsys):
    """On CPU workers --jobs-per-gpu N runs N jobs per worker slot; the flags reach the jobs."""
    from mmar_automl.cli import main

    mmar = _mmar(tmp_path / "mmar", [[0.1, -1, 1.5], [0.2, -1, 1.5]])
    code = main(["run", str(mmar), "--no-mlflow", "--workers", "cpu", "--seed", "1", "--run-id", "cpu2",
                 "--jobs-per-gpu", "2", "--compile", "--no-launcher"])
    assert code == 0, capsys.readouterr().err
    header = json.loads((mmar / "automl" / "cpu2" / "journal.jsonl").read_text().splitlines()[0])
    assert header["workers"] == ["cpu", "cpu"]
    spans = _intervals(_ledger(pack_env))
    assert spans[1][0] < spans[0][1], "the two jobs should have run at the same time"
    start = next(e for e in _ledger(pack_env) if e["event"] == "start")
    flags = json.loads(start["fast_paths"])
    assert flags["compile"] is True and flags["enabled"] is True
    if "OMP_NUM_THREADS" not in os.environ:  # the cores are shared by the 2 slots
        assert start["omp_threads"] == str(max(1, (os.cpu_count() or 1) // 2))


@pytest.mark.parametrize("value", ["0", "lots"])
def test_cli_bad_jobs_per_gpu_is_a_usage_error(tmp_path, pack_env, capsys, value):
    from mmar_automl.cli import main

    mmar = _mmar(tmp_path / "mmar", [[0.1, -1, 0.1]])
    code = main(["run", str(mmar), "--no-mlflow", "--workers", "cpu", "--jobs-per-gpu", value])
    err = capsys.readouterr().err
    assert code == 2 and "--jobs-per-gpu" in err and len(err.strip().splitlines()) == 1
    assert not (mmar / "automl").exists()
