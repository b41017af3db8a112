"""Fast tests of the tracking pieces that need no MLflow: spool, limits, URIs, records, GPU sampler."""

from __future__ import annotations

import json
import os

import pytest

from mmar_automl.errors import ConfigError, JournalError
from mmar_automl.run.outputs import read_metrics_file
from mmar_automl.tracking import gpu, limits, records
from mmar_automl.tracking.spool import Spool
from mmar_automl.tracking.uri import resolve_tracking_uri, sqlite_path, ui_hint


# -- spool ------------------------------------------------------------------------------------------
def test_spool_pending_until_acked_and_survives_reopen(tmp_path):
    spool = Spool.in_run_dir(tmp_path)
    ops = spool.append([{"op": "log", "uid": "job:a"}, {"op": "log", "uid": "job:b"}])
    assert [o["seq"] for o in ops] == [1, 2]
    spool.ack(1)
    reopened = Spool.in_run_dir(tmp_path)
    assert [o["uid"] for o in reopened.pending()] == ["job:b"]
    assert reopened.append([{"op": "log", "uid": "job:c"}])[0]["seq"] == 3  # numbering carries on
    reopened.ack(3)
    assert reopened.pending() == [] and reopened.pending_count == 0


def test_spool_drops_torn_tail_but_refuses_damage_mid_file(tmp_path):
    spool = Spool.in_run_dir(tmp_path)
    spool.append([{"op": "log", "uid": "job:a"}])
    with open(spool.path, "a") as f:
        f.write('{"seq": 2, "op": "lo')  # a crash mid-append
    again = Spool.in_run_dir(tmp_path)
    assert [o["seq"] for o in again.pending()] == [1]
    again.append([{"op": "log", "uid": "job:b"}])
    assert [o["uid"] for o in Spool.in_run_dir(tmp_path).pending()] == ["job:a", "job:b"]
    spool.path.write_text('{"seq": 1, "op": "log"}\nnot json\n{"seq": 2, "op": "log"}\n')
    with pytest.raises(JournalError, match=r"mlflow_spool.jsonl:2"):
        Spool.in_run_dir(tmp_path)


def test_spool_compacts_when_all_sent(tmp_path):
    spool = Spool.in_run_dir(tmp_path)
    ops = spool.append([{"op": "log", "uid": "job:a", "pad": "x" * 1000} for _ in range(300)])
    spool.ack(ops[-1]["seq"])
    assert spool.path.stat().st_size < 100  # emptied, only the ack kept
    assert Spool.in_run_dir(tmp_path).append([{"op": "log"}])[0]["seq"] == 301


def test_spool_has_one_owner(tmp_path):
    first, second = Spool.in_run_dir(tmp_path), Spool.in_run_dir(tmp_path)
    assert first.try_lock()
    assert not second.try_lock()
    first.unlock()
    assert second.try_lock()
    second.unlock()


# -- limits -----------------------------------------------------------------------------------------
def test_limits_match_mlflow():
    from mlflow.utils import validation as v

    assert limits.MAX_PARAM_VAL_LENGTH == v.MAX_PARAM_VAL_LENGTH
    assert limits.MAX_TAG_VAL_LENGTH == v.MAX_TAG_VAL_LENGTH
    assert limits.MAX_KEY_LENGTH == v.MAX_ENTITY_KEY_LENGTH
    assert limits.MAX_PARAMS_TAGS_PER_BATCH == v.MAX_PARAMS_TAGS_PER_BATCH
    assert limits.MAX_METRICS_PER_BATCH == v.MAX_METRICS_PER_BATCH


def test_long_value_cut_with_marker_and_full_value_kept():
    params, full = limits.fit_params({"model.channels": "9" * 7000, "lr": "0.1"})
    assert len(params["model.channels"]) == limits.MAX_PARAM_VAL_LENGTH
    assert params["model.channels"].endswith("full value in artifact full_values/param/model.channels.txt]")
    assert "truncated 7000 chars" in params["model.channels"]
    assert full == {"full_values/param/model.channels.txt": "9" * 7000}
    assert params["lr"] == "0.1"


def test_safe_key_accepted_by_mlflow():
    from mlflow.utils.validation import _validate_metric_name

    for name in ["RandGaussianNoised.@disabled", "train.model$0:channels", "a/../b", "x" * 300, "@"]:
        key = limits.safe_key(name)
        _validate_metric_name(key)  # raises on a key MLflow refuses
        assert len(key) <= limits.MAX_KEY_LENGTH
    assert limits.safe_key("RandGaussianNoised.@disabled") == "RandGaussianNoised.disabled"
    assert limits.safe_key("train#dataloader#batch_size") == "train.dataloader.batch_size"   # a bundle id


# -- URIs -------------------------------------------------------------------------------------------
def test_uri_order_and_no_bare_file_store(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    uri = resolve_tracking_uri(tmp_path)
    assert uri == f"sqlite:///{tmp_path.resolve()}/automl/mlflow.db"
    assert sqlite_path(uri) == tmp_path.resolve() / "automl" / "mlflow.db"
    assert ui_hint(uri) == (f"mlflow ui --backend-store-uri {uri}, then open "
                            "http://127.0.0.1:5000/#/experiments?workflowType=machine_learning")
    assert ui_hint(uri, "3").endswith("/#/experiments/3/runs?workflowType=machine_learning")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    assert resolve_tracking_uri(tmp_path) == "http://127.0.0.1:5000"
    assert resolve_tracking_uri(tmp_path, "http://h:1") == "http://h:1"
    for bad in ("./mlruns", "file:///tmp/mlruns", "/abs/mlruns"):
        with pytest.raises(ConfigError, match="bare file store"):
            resolve_tracking_uri(tmp_path, bad)


# -- records ----------------------------------------------------------------------------------------
def test_metrics_from_records_are_deterministic(tmp_path):
    """Every number of the file is a metric (issue 16: train_acc, epoch_time were left out), the train
    record's ``time`` as ``elapsed_time``; an infinite loss is not."""
    recs = [{"kind": "train", "epoch": 1, "iteration": 8, "train_loss": 0.7, "lr": 2e-4, "time": 3.2,
             "epoch_time": 1.5, "metrics": {"train_acc": 0.8}},
            {"kind": "validation", "epoch": 1, "iteration": 8, "key_metric": "val_mean_dice",
             "metrics": {"val_mean_dice": 0.41, "val_acc": 0.93}, "time": 4.0},
            {"kind": "train", "epoch": 2, "train_loss": float("inf"), "lr": 1e-4, "time": 5.0},
            {"kind": "end", "status": "complete", "time": 9.1}]
    got = records.metrics_from_records(recs, 1000.0)
    assert got == [["train_loss", 0.7, 1, 1003200], ["lr", 2e-4, 1, 1003200], ["epoch_time", 1.5, 1, 1003200],
                   ["elapsed_time", 3.2, 1, 1003200], ["train_acc", 0.8, 1, 1003200],
                   ["val_mean_dice", 0.41, 1, 1004000], ["val_acc", 0.93, 1, 1004000],
                   ["lr", 1e-4, 2, 1005000], ["elapsed_time", 5.0, 2, 1005000]]
    assert records.metrics_from_records(recs, 1000.0) == got  # same records, same metrics: replay-safe
    path = tmp_path / "metrics.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in recs) + '{"kind": "tr')
    assert read_metrics_file(path) == recs[:2] + [{**recs[2], "train_loss": float("inf")}] + recs[3:]
    assert read_metrics_file(path, skip=2) == [{**recs[2], "train_loss": float("inf")}, recs[3]]


def test_job_artifacts_follow_ckpt_dir(tmp_path):
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "environment.json").write_text(json.dumps({"MMAR_CKPT_DIR": "ckpt"}))
    files = dict(records.job_artifacts(tmp_path, with_model=True))
    assert str(tmp_path / "ckpt" / "model.pt") in files and str(tmp_path / "ckpt" / "train_stats.json") in files
    assert str(tmp_path / "ckpt" / "model.pt") not in dict(records.job_artifacts(tmp_path, with_model=False))


# -- GPU --------------------------------------------------------------------------------------------
def test_no_nvml_means_no_gpu_sampling():
    """This machine has no NVIDIA driver: NVMLError_LibraryNotFound must mean "off", not an error."""
    if os.path.exists("/dev/nvidiactl"):
        pytest.skip("a GPU driver is present")
    assert gpu.open_nvml() is None
    emitted = []
    sampler = gpu.GpuSampler(lambda key, m: emitted.append((key, m)), interval=0.01)
    assert not sampler.active
    sampler.add("job:a", {0: 0})
    sampler.sample_once(0)
    assert emitted == []
    sampler.close()


def test_sampler_logs_only_the_jobs_own_gpus():
    readings = {0: {"utilization_pct": 50.0, "memory_used_mb": 100.0}, 1: {"utilization_pct": 7.0,
                                                                          "memory_used_mb": 9.0}}

    def reader(nvml_index):
        return readings[nvml_index]  # NVML index 2 "fell off the bus": KeyError, left out

    emitted = []
    sampler = gpu.GpuSampler(lambda key, m: emitted.append((key, m)), interval=3600, reader=reader)
    sampler.add("job:a", {3: 1, 5: 2})  # CUDA 3 is NVML 1 (CUDA_VISIBLE_DEVICES / PCI order differ)
    sampler.add("job:b", {})
    sampler.sample_once(5000)
    sampler.sample_once(6000)
    sampler.remove("job:a")
    sampler.sample_once(7000)
    sampler.close()
    assert emitted == [("job:a", [["gpu3/utilization_pct", 7.0, 0, 5000], ["gpu3/memory_used_mb", 9.0, 0, 5000]]),
                       ("job:a", [["gpu3/utilization_pct", 7.0, 1, 6000], ["gpu3/memory_used_mb", 9.0, 1, 6000]])]


def test_check_options_for_the_cli(tmp_path, monkeypatch):
    from mmar_automl.handlers.mlflow import MLflowHandler

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert MLflowHandler.check_options(tmp_path).startswith("sqlite:///")
    with pytest.raises(ConfigError, match="--log-models: 'some' is not one of best, all, none"):
        MLflowHandler.check_options(tmp_path, None, "some")
    with pytest.raises(ConfigError, match="--tracking-uri"):
        MLflowHandler.check_options(tmp_path, "mlruns")


def test_handler_module_imports_no_heavy_library():
    import subprocess
    import sys

    code = ("import sys, mmar_automl.cli, mmar_automl.handlers.mlflow, mmar_automl.cli.sync; "
            "print(sorted(m for m in ('mlflow', 'torch', 'monai', 'sqlalchemy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_sync_refuses_untracked_and_live_runs(tmp_path, capsys):
    from mmar_automl.cli import main

    run_dir = tmp_path / "automl" / "r1"
    assert main(["sync", str(tmp_path), "r0"]) == 2
    run_dir.mkdir(parents=True)
    assert main(["sync", str(tmp_path), "r1"]) == 2
    err = capsys.readouterr().err
    assert "no such run folder" in err and "never tracked in MLflow" in err
    (run_dir / "mlflow.json").write_text(json.dumps({"run_uid": "u", "tracking_uri": "http://127.0.0.1:9",
                                                     "experiment": "e"}))
    live = Spool.in_run_dir(run_dir)
    assert live.try_lock()  # the orchestrator owns the spool
    assert main(["sync", str(tmp_path), "r1"]) == 2
    assert "is running and syncs it itself" in capsys.readouterr().err
    live.unlock()


def test_sync_with_mlflow_unreachable_exits_1_and_keeps_the_spool(tmp_path, capsys):
    from mmar_automl.cli import main

    run_dir = tmp_path / "automl" / "r1"
    run_dir.mkdir(parents=True)
    (run_dir / "mlflow.json").write_text(json.dumps({"run_uid": "u", "tracking_uri": "http://127.0.0.1:9",
                                                     "experiment": "e"}))
    Spool.in_run_dir(run_dir).append([{"op": "open_run", "uid": "run:u", "name": "r1", "parent": None}])
    assert main(["sync", str(tmp_path), "r1"]) == 1
    assert "unreachable" in capsys.readouterr().err
    assert len(Spool.in_run_dir(run_dir).pending()) == 1


def test_a_job_registered_with_its_folder_gets_its_own_processes_numbers(tmp_path):
    """Packed jobs share a GPU: a job's numbers come from its own processes, found by their working
    directory (real processes here; the NVML process samples are NVML's record layout)."""
    import subprocess
    import sys
    from types import SimpleNamespace

    ours, theirs = tmp_path / "job1", tmp_path / "job2"
    ours.mkdir(), theirs.mkdir()
    procs = [subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"], cwd=str(folder))
             for folder in (ours, theirs)]
    try:
        pids = {p.pid for p in procs}
        assert gpu.processes_in(str(ours), pids) == {procs[0].pid}
        samples = [SimpleNamespace(pid=procs[0].pid, timeStamp=1, smUtil=30), SimpleNamespace(pid=procs[1].pid, timeStamp=1, smUtil=60),
                   SimpleNamespace(pid=procs[0].pid, timeStamp=2, smUtil=50)]
        assert gpu.job_sm_utilization(samples, {procs[0].pid}) == 40.0  # its own 30 and 50, not the neighbour's 60
        assert gpu.job_sm_utilization(samples, set()) == 0.0
    finally:
        for p in procs:
            p.kill()
            p.wait()

    calls = []
    sampler = gpu.GpuSampler(lambda key, m: None, interval=3600,
                             reader=lambda index, folder=None: calls.append((index, folder)) or {})
    sampler.add("job:a", {0: 1}, folder=str(ours))
    sampler.add("job:b", {1: 0})
    sampler.sample_once(0)
    assert sorted(calls, key=str) == [(0, None), (1, str(ours))]
