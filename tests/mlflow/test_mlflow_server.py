"""MLflowHandler against a real ``mlflow server``: events driven as the engine fires them, with real
JobRecords and real job folders. Counts parents, children, params, metrics and artifacts."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from mlflow_jobs import end, fire, metrics, run_job, start
from mmar_automl.handlers.mlflow import MLflowHandler
from mmar_automl.tracking.gpu import GpuSampler
from mmar_automl.tracking.spool import Spool

pytestmark = pytest.mark.slow
CLI = Path(sys.executable).with_name("mmar-automl")


def _runs(server, experiment):
    client = server.client()
    exp = client.get_experiment_by_name(experiment)
    runs = client.search_runs([exp.experiment_id], max_results=1000) if exp else []
    parents = [r for r in runs if r.data.tags.get("mmar_automl.role") == "parent"]
    children = sorted((r for r in runs if "mmar_automl.job_uid" in r.data.tags),
                      key=lambda r: int(r.data.tags.get("mmar_automl.job_number", 0)))
    return client, parents, children


def _handler(**kw):
    return MLflowHandler(retry_interval=0.5, gpu_interval=3600, **kw)


def _begin(handler, jobs, server, experiment, **options):
    ctx = jobs.ctx(tracking_uri=server.uri, experiment=experiment, **options)
    fire(handler, ctx, "start_automl")
    fire(handler, ctx, "search_space_available")
    return ctx


def _artifacts(client, run_id, path=None):
    return sorted(a.path for a in client.list_artifacts(run_id, path))


def test_four_jobs_one_parent_four_children(live_server, jobs, tmp_path):
    handler = _handler()
    ctx = _begin(handler, jobs, live_server, tmp_path.name)
    # NVML stand-in (no GPU here): the sampler's reading -> the job's own child run, GPU workers only
    handler.sampler = GpuSampler(handler._emit_gpu, interval=3600,
                                 reader=lambda nvml, folder=None: {"utilization_pct": 40.0 + nvml, "memory_used_mb": 512.0})
    records = [jobs.job(n, worker=1 + (n - 1) % 2) for n in range(1, 5)]
    for job in records:
        start(handler, ctx, job)
        handler.sampler.sample_once(int(time.time() * 1000))
        metrics(handler, ctx, job)
        end(handler, ctx, job)
    fire(handler, ctx, "end_automl")

    client, parents, children = _runs(live_server, tmp_path.name)
    assert len(parents) == 1 and len(children) == 4
    parent = parents[0]
    assert parent.info.run_name == jobs.run_id and parent.info.status == "FINISHED"
    assert [c.info.run_name for c in children] == [j.name for j in records]
    for child, job in zip(children, records):
        assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert child.info.status == "FINISHED"
        # the searched values as the report spells them (floats in full), then the config's fixed keys
        assert child.data.params == {
            "learning_rate": repr(job.recommendation.point["learning_rate"]),
            "model.channels": json.dumps(job.recommendation.point["model.channels"][0], separators=(",", ":")),
            "RandGaussianNoised.disabled": json.dumps(job.recommendation.point["RandGaussianNoised.@disabled"][0]),
            "job": job.name,
        }
        tags = child.data.tags
        assert tags["prl.model.channels"] == "net.enum.train.model$0:channels"
        assert tags["mmar_automl.worker"] == str(job.worker) and tags["mmar_automl.folder"] == job.folder
        assert tags["mmar_automl.gpus"] == ("0" if job.worker == 1 else "cpu")
        assert tags["mmar_automl.status"] == "COMPLETE" and tags["mmar_automl.controller"] == "GridController"
        assert child.data.metrics["score"] == pytest.approx(job.score)
        history = client.get_metric_history(child.info.run_id, "train_loss")
        assert sorted((m.step, m.value) for m in history) == [(1, 1.0), (2, 0.5), (3, pytest.approx(1 / 3))]
        assert len(client.get_metric_history(child.info.run_id, "val_mean_dice")) == 3
        assert len(client.get_metric_history(child.info.run_id, "val_acc")) == 3
        if job.gpus:
            assert child.data.metrics["gpu0/utilization_pct"] == 40.0
        else:
            assert not [k for k in child.data.metrics if k.startswith("gpu")]
        expected = sorted(["config", "log.txt", "train_stats.json"] + (["model"] if job.number == 4 else []))
        assert _artifacts(client, child.info.run_id) == expected  # --log-models best: only the best job's
        assert _artifacts(client, child.info.run_id, "config") == ["config/config_train.json"]
    best = client.get_metric_history(parent.info.run_id, "best_score")
    assert sorted((m.step, round(m.value, 4)) for m in best) == [(1, 0.51), (2, 0.52), (3, 0.53), (4, 0.54)]
    assert parent.data.tags["mmar_automl.best_job"] == "W2_4_J4"
    assert "search_space.json" in _artifacts(client, parent.info.run_id)
    assert Spool.in_run_dir(jobs.run_dir).pending() == []


def test_server_down_mid_run_then_sync_twice(live_server, jobs, tmp_path):
    handler = _handler(flush_timeout=2, log_models="all")
    ctx = _begin(handler, jobs, live_server, tmp_path.name)
    records = [jobs.job(n) for n in range(1, 5)]
    for job in records[:2]:
        run_job(handler, ctx, job)
    assert handler.writer.flush(60)
    live_server.stop()
    for job in records[2:]:
        run_job(handler, ctx, job)  # the search goes on: events only queue
    fire(handler, ctx, "end_automl")  # cannot flush: the rest stays in the spool
    assert Spool.in_run_dir(jobs.run_dir).pending_count > 0

    live_server.start()
    _, _, children = _runs(live_server, tmp_path.name)
    assert len(children) == 2
    counts = []
    for _ in range(2):  # sync twice: the second finds nothing to send and duplicates nothing
        out = subprocess.run([str(CLI), "sync", str(jobs.root), jobs.run_id], capture_output=True, text=True,
                             timeout=300)
        assert out.returncode == 0, out.stderr
        assert "1 parent run, 4 job runs" in out.stdout
        client, parents, children = _runs(live_server, tmp_path.name)
        assert len(parents) == 1 and len(children) == 4
        assert parents[0].info.status == "FINISHED"
        assert all(c.info.status == "FINISHED" for c in children)
        counts.append([len(client.get_metric_history(c.info.run_id, "val_mean_dice")) for c in children])
        assert all("model" in _artifacts(client, c.info.run_id) for c in children)  # --log-models all
    assert counts == [[3, 3, 3, 3], [3, 3, 3, 3]]
    assert Spool.in_run_dir(jobs.run_dir).pending() == []


def test_long_param_values_truncated_with_artifact(live_server, jobs, tmp_path):
    handler = _handler(log_models="none")
    ctx = _begin(handler, jobs, live_server, tmp_path.name)
    channels = list(range(100000, 101500))  # ~10,000 characters as JSON
    job = jobs.job(1, point_value={"learning_rate": 1e-4, "model.channels": [channels],
                                   "RandGaussianNoised.@disabled": [True]})
    job.reason = "r" * 9000  # over the tag limit too
    run_job(handler, ctx, job)
    fire(handler, ctx, "end_automl")
    client, _, children = _runs(live_server, tmp_path.name)
    assert len(children) == 1
    child = children[0]
    value = child.data.params["model.channels"]
    assert len(value) == 6000 and value.endswith("full value in artifact full_values/param/model.channels.txt]")
    path = client.download_artifacts(child.info.run_id, "full_values/param/model.channels.txt", str(tmp_path))
    assert json.loads(Path(path).read_text()) == channels
    assert len(child.data.tags["mmar_automl.reason"]) == 8000
    path = client.download_artifacts(child.info.run_id, "full_values/tag/mmar_automl.reason.txt", str(tmp_path))
    assert Path(path).read_text() == "r" * 9000
    assert "model" not in _artifacts(client, child.info.run_id)  # --log-models none


def test_four_workers_finish_at_the_same_moment(live_server, jobs, tmp_path):
    handler = _handler()
    ctx = _begin(handler, jobs, live_server, tmp_path.name)
    records = [jobs.job(n, worker=n, seq=1) for n in range(1, 5)]
    contexts = []
    for job in records:
        own = jobs.ctx(tracking_uri=live_server.uri, experiment=tmp_path.name)
        start(handler, own, job)
        metrics(handler, own, job)
        contexts.append(own)
    barrier = threading.Barrier(4)
    errors = []

    def finish(job, own):
        try:
            barrier.wait()
            end(handler, own, job)
        except Exception as err:  # noqa: BLE001
            errors.append(err)

    threads = [threading.Thread(target=finish, args=(j, c)) for j, c in zip(records, contexts)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    fire(handler, ctx, "end_automl")
    assert errors == []
    client, parents, children = _runs(live_server, tmp_path.name)
    assert len(parents) == 1 and len(children) == 4
    assert all(c.info.status == "FINISHED" and "score" in c.data.metrics for c in children)
    scores = client.get_metric_history(parents[0].info.run_id, "job_score")
    assert sorted(m.step for m in scores) == [1, 2, 3, 4]
    best = client.get_metric_history(parents[0].info.run_id, "best_score")
    assert max(m.value for m in best) == pytest.approx(0.54)
    assert parents[0].data.tags["mmar_automl.best_job"] == "W4_1_J4"


CRASHING_ORCHESTRATOR = textwrap.dedent("""
    import os, signal, sys
    from pathlib import Path
    from mlflow_jobs import JobFactory, fire, metrics, run_job, start
    from mmar_automl.handlers.mlflow import MLflowHandler
    root, uri, experiment = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
    jobs = JobFactory(root)
    handler = MLflowHandler(retry_interval=0.5)
    ctx = jobs.ctx(tracking_uri=uri, experiment=experiment)
    fire(handler, ctx, "start_automl")
    run_job(handler, ctx, jobs.job(1))
    second = jobs.job(2)
    start(handler, ctx, second)
    metrics(handler, ctx, second)
    start(handler, ctx, jobs.job(3, stats_status="complete"))  # will have finished while we were dead
    assert handler.writer.flush(60)
    os.kill(os.getpid(), signal.SIGKILL)
""")


def test_resume_after_kill_9(live_server, jobs, tmp_path):
    out = subprocess.run([sys.executable, "-c", CRASHING_ORCHESTRATOR, str(jobs.root), live_server.uri, tmp_path.name],
                         cwd=Path(__file__).parent, capture_output=True, text=True, timeout=300)
    assert out.returncode == -signal.SIGKILL, out.stderr
    _, parents, children = _runs(live_server, tmp_path.name)
    assert [c.info.status for c in children] == ["FINISHED", "RUNNING", "RUNNING"]

    handler = _handler()  # the resumed orchestrator: same run folder
    ctx = _begin(handler, jobs, live_server, tmp_path.name, resume=True)
    retry = jobs.job(4)
    retry.retry_of = children[1].data.tags["mmar_automl.job_uid"]
    run_job(handler, ctx, retry)
    fire(handler, ctx, "end_automl")
    client, parents, children = _runs(live_server, tmp_path.name)
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    assert [(c.info.run_name, c.info.status) for c in children] == [
        ("W1_1_J1", "FINISHED"), ("W1_2_J2", "KILLED"), ("W1_3_J3", "FINISHED"), ("W1_4_J4", "FINISHED")]
    assert children[1].data.tags["mmar_automl.status"] == "KILLED"
    assert children[2].data.metrics["score"] == pytest.approx(0.53)  # completed from its folder
    assert children[2].data.tags["mmar_automl.status"] == "COMPLETE"
    assert len(client.get_metric_history(children[2].info.run_id, "val_mean_dice")) == 3
    assert children[3].data.tags["mmar_automl.retry_of"] == children[1].data.tags["mmar_automl.job_uid"]


def test_a_refused_write_is_skipped_and_never_blocks_the_stream(live_server, tmp_path):
    from mmar_automl.tracking.sync import MlflowSink

    sink = MlflowSink(live_server.uri, tmp_path.name)
    ops = [
        {"op": "open_run", "uid": "run:p", "name": "p", "parent": None, "tags": {}},
        {"op": "open_run", "uid": "job:a", "name": "A", "parent": "run:p", "tags": {}, "params": {"x": "1"}},
        {"op": "log", "uid": "job:a", "params": {"x": "2"}, "metrics": [["m", 1.0, 1, 1000]]},  # refused
        {"op": "close_run", "uid": "job:a", "status": "FINISHED", "end_time": 2000},
        {"op": "open_run", "uid": "job:b", "name": "B", "parent": "run:gone", "tags": {}},  # parent missing
        {"op": "log", "uid": "job:b", "metrics": [["m", 2.0, 1, 1000]]},
        {"op": "close_run", "uid": "job:b", "status": "FINISHED", "end_time": 2000},
    ]
    sink.apply(ops[:2])  # x = 1 is in MLflow
    sink.apply(ops)      # now x = 2 is refused (params never change), the rest goes on
    sink.apply(ops)      # a replay changes nothing
    client, parents, children = _runs(live_server, tmp_path.name)
    assert len(parents) == 1
    by_name = {c.info.run_name: c for c in children}
    assert sorted(by_name) == ["A", "B"]
    assert by_name["A"].info.status == "FINISHED" and by_name["A"].data.params == {"x": "1"}
    assert "mlflow.parentRunId" not in by_name["B"].data.tags and by_name["B"].data.metrics == {"m": 2.0}
    assert len(client.get_metric_history(by_name["B"].info.run_id, "m")) == 1
