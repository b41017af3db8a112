"""`mmar-automl run --backend ray` on a real two-node local Ray cluster (ray.cluster_utils: a head and a
second node, each its own raylet/object store, 1 CPU each), with the light, torch-free job function of
tests/run (real processes, real files). The cluster is always stopped (fixture finalizer)."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("ray")

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
RUN_TESTS = REPO / "tests" / "run"
# Fast failure detection so a killed node is declared dead in ~1-2 s (Ray's default is ~30 s).
FAST_HEALTH = {"health_check_initial_delay_ms": 0, "health_check_period_ms": 500, "health_check_failure_threshold": 3}


def _run_fixtures():
    spec = importlib.util.spec_from_file_location("run_fixtures", RUN_TESTS / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


fixtures = _run_fixtures()


@pytest.fixture(scope="module")
def cluster():
    """Head (1 CPU) + node "second" (1 CPU): two jobs at once land on different nodes."""
    import ray
    from ray.cluster_utils import Cluster

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    c = Cluster(initialize_head=True, connect=False, head_node_args={
        "num_cpus": 1, "resources": {"head": 1}, "object_store_memory": 100_000_000, "include_dashboard": False,
        "_system_config": FAST_HEALTH})
    try:
        c.second = c.add_node(num_cpus=1, resources={"second": 1}, object_store_memory=100_000_000)
        c.wait_for_nodes()
        yield c
    finally:
        if ray.is_initialized():
            ray.shutdown()
        c.shutdown()


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return dict(os.environ, MMAR_AUTOML_JOB_ENTRY="lightjobs:main", MMAR_AUTOML_JOB_PRELOAD="",
                PYTHONPATH=os.pathsep.join([str(RUN_TESTS), str(REPO)]), LIGHTJOB_LEDGER=str(tmp_path / "ledger.jsonl"),
                RAY_USAGE_STATS_ENABLED="0", **extra)


def _cmd(mmar: Path, address: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "mmar_automl", "run", str(mmar), "--no-mlflow", "--seed", "1",
            "--workers", "cpu:cpu", "--backend", "ray", "--ray-address", address, *args]


def _ended(run_dir: Path) -> list[dict]:
    return [e["job"] for e in fixtures.journal(run_dir) if e["op"] == "job_ended"]


def _node_ids(cluster) -> dict[str, str]:
    return {cluster.head_node.node_id: "head", cluster.second.node_id: "second"}


@pytest.mark.parametrize("ship", [False, True], ids=["shared-folders", "shipped-folders"])
def test_four_jobs_across_both_nodes(cluster, tmp_path, ship):
    mmar = fixtures.write_mmar(tmp_path / "mmar", fixtures.light_config(sleep=0.4), automl={
        "controller": {"name": "GridController"},
        "handlers": [{"name": "MMARHandler"}, {"name": "StatsHandler"}]})
    env = _env(tmp_path, **({"MMAR_AUTOML_RAY_SHIP_FILES": "1"} if ship else {}))
    proc = subprocess.run(_cmd(mmar, cluster.address, "--run-id", "r4"), env=env, capture_output=True, text=True,
                          timeout=150)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    run_dir = mmar / "automl" / "r4"
    assert "best: " in proc.stdout and "score 0.4" in proc.stdout
    jobs = {f"W{j['worker']}_{j['worker_seq']}_J{j['number']}": j for j in _ended(run_dir)}
    assert len(jobs) == 4
    assert sorted(p.name for p in run_dir.iterdir() if p.name.startswith("W")) == sorted(jobs)
    nodes = _node_ids(cluster)
    ran_on, vias = set(), set()
    for name, job in jobs.items():
        folder = run_dir / name
        assert job["state"] == "COMPLETE", job
        assert job["score"] == pytest.approx(job["recommendation"]["point"]["score"][0])
        # metrics were followed while it ran (shipped: streamed back from the node)
        assert job["intermediate"] == [[1, pytest.approx(job["score"] / 2)], [2, pytest.approx(job["score"])]]
        stats = json.loads((folder / "models" / "train_stats.json").read_text())
        assert stats["best_validation_metric"] == pytest.approx(job["score"])
        lines = [json.loads(x) for x in (folder / "models" / "metrics.jsonl").read_text().splitlines()]
        assert [x["kind"] for x in lines] == ["train", "validation", "train", "validation", "end"]
        assert (folder / "log.txt").read_text().startswith("light job")
        placement = json.loads((folder / "ray_node.json").read_text())
        assert placement["shipped"] is ship
        ran_on.add(nodes[placement["node_id"]])
        vias.add(placement["via"])
        env_seen = json.loads((folder / "models" / "env.json").read_text())
        assert env_seen["env"]["CUDA_VISIBLE_DEVICES"] == ""
        if ship:  # it ran in a copy on the node, and its outputs came back
            assert env_seen["cwd"] != str(folder) and Path(env_seen["cwd"]).name == name
            assert not Path(env_seen["cwd"]).exists()  # the node's temporary copy is gone
            assert (folder / "models" / "model.pt").exists()
        else:
            assert env_seen["cwd"] == str(folder)
    assert ran_on == {"head", "second"}
    assert vias == {"launcher"}  # forked from a launcher on the node, as local workers are
    assert json.loads((run_dir / "best" / "best.json").read_text())["score"] == pytest.approx(0.4)
    events = fixtures.journal(run_dir)
    assert events[0]["op"] == "run_started" and events[-1]["op"] == "run_ended" and events[-1]["exit_code"] == 0


def test_one_worker_reuses_its_actor_and_warm_launcher(cluster, tmp_path):
    mmar = fixtures.write_mmar(tmp_path / "mmar", fixtures.light_config(scores=(0.1, 0.2, 0.3), sleep=0.1))
    proc = subprocess.run(_cmd(mmar, cluster.address, "--run-id", "one", "--workers", "cpu"), env=_env(tmp_path),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    placements = [json.loads((Path(j["folder"]) / "ray_node.json").read_text())
                  for j in sorted(_ended(mmar / "automl" / "one"), key=lambda j: j["number"])]
    assert [p["jobs_run"] for p in placements] == [1, 2, 3]          # one actor ran the three jobs in turn
    assert len({p["node_id"] for p in placements}) == 1 and len({p["pid"] for p in placements}) == 3
    assert {p["via"] for p in placements} == {"launcher"}


def test_failures_and_time_outs_on_the_cluster(cluster, tmp_path):
    mmar = fixtures.write_mmar(tmp_path / "mmar", fixtures.light_config(scores=(0.5,), modes=["ok", "hang", "raise"],
                                                                        sleep=0.2))
    proc = subprocess.run(_cmd(mmar, cluster.address, "--run-id", "f", "--job-timeout", "15"), env=_env(tmp_path),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stdout + proc.stderr   # the run ended with failed jobs
    by_mode = {j["recommendation"]["point"]["mode"][0]: j for j in _ended(mmar / "automl" / "f")}
    # (a generous time-out: the "ok" job must not time out on a loaded 2-core machine)
    assert by_mode["ok"]["state"] == "COMPLETE" and by_mode["ok"]["score"] == 0.5
    # the time-out's SIGTERM reached the job's process group on its node
    assert by_mode["hang"]["state"] == "TIMED_OUT" and "job-timeout" in by_mode["hang"]["reason"]
    assert by_mode["hang"]["exit_code"] == -15
    assert by_mode["raise"]["state"] == "FAILED" and by_mode["raise"]["exit_code"] == 1
    assert "light job failure on purpose" in by_mode["raise"]["reason"]
    assert "light job failure on purpose" in by_mode["raise"]["log_tail"]


def _wait_mid_job(run_dir: Path, proc: subprocess.Popen, node_id: str | None = None) -> Path | None:
    """The folder of a job that has written its first epoch (on ``node_id`` if given)."""
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and proc.poll() is None:
        for placement in run_dir.glob("W*/ray_node.json"):
            try:
                where = json.loads(placement.read_text())["node_id"]
            except ValueError:
                continue
            metrics = placement.parent / "models" / "metrics.jsonl"
            if (node_id is None or where == node_id) and metrics.exists() and metrics.read_text().count("\n") >= 1:
                return placement.parent
        time.sleep(0.05)
    return None


def test_a_dead_worker_process_fails_its_job_which_is_retried(cluster, tmp_path):
    mmar = fixtures.write_mmar(tmp_path / "mmar", fixtures.light_config(scores=(0.5,), sleep=0.5, epochs=4))
    run_dir = mmar / "automl" / "w"
    proc = subprocess.Popen(_cmd(mmar, cluster.address, "--run-id", "w", "--max-retries", "1", "--workers", "cpu"),
                            env=_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        victim = _wait_mid_job(run_dir, proc)
        assert victim is not None
        job_pid = json.loads((victim / "ray_node.json").read_text())["pid"]
        launcher_pid = int(Path(f"/proc/{job_pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        actor_pid = int(Path(f"/proc/{launcher_pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        assert "JobRunner" in Path(f"/proc/{actor_pid}/cmdline").read_text()
        os.kill(actor_pid, signal.SIGKILL)  # the Ray worker holding the job dies
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, out + err
    first, retry = sorted(_ended(run_dir), key=lambda j: j["number"])
    assert first["state"] == "FAILED" and first["exit_code"] is None and "lost on Ray node" in first["reason"]
    assert retry["state"] == "COMPLETE" and retry["retry_of"] == first["job_uid"] and retry["score"] == 0.5
    deadline = time.monotonic() + 10   # the job went down with its worker (launcher's parent-death signal)
    while Path(f"/proc/{job_pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not Path(f"/proc/{job_pid}").exists()


def test_a_node_killed_mid_job_is_retried_elsewhere(cluster, tmp_path):
    """Runs last in this module: it removes the second node."""
    mmar = fixtures.write_mmar(tmp_path / "mmar", fixtures.light_config(sleep=1.0, epochs=4))
    run_dir = mmar / "automl" / "k"
    proc = subprocess.Popen(_cmd(mmar, cluster.address, "--run-id", "k", "--max-retries", "1"), env=_env(tmp_path),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        victim = _wait_mid_job(run_dir, proc, cluster.second.node_id)
        assert victim is not None, "no job ran on the second node"
        pid = json.loads((victim / "ray_node.json").read_text())["pid"]
        cluster.remove_node(cluster.second, allow_graceful=False)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, out + err  # the retry completed: the run ended without errors
    # stdout holds the run's results only (Ray's "node ... marked dead" goes to stderr)
    assert all(line.startswith(("run id: ", "run folder: ", "best: ")) for line in out.splitlines()), out
    ended = _ended(run_dir)
    lost = [j for j in ended if j["state"] == "FAILED"]
    assert len(lost) == 1 and Path(lost[0]["folder"]) == victim
    assert "lost on Ray node" in lost[0]["reason"] and "died" in lost[0]["reason"]
    assert "mmar-automl: job lost on Ray node" in (victim / "log.txt").read_text()
    retry = [j for j in ended if j["retry_of"] == lost[0]["job_uid"]]
    assert len(retry) == 1 and retry[0]["state"] == "COMPLETE" and retry[0]["attempt"] == 1
    assert retry[0]["recommendation"] == lost[0]["recommendation"]
    placement = json.loads((Path(retry[0]["folder"]) / "ray_node.json").read_text())
    assert placement["node_id"] == cluster.head_node.node_id
    final = {j["recommendation"]["rec_id"]: j for j in sorted(ended, key=lambda j: j["number"])}
    assert len(final) == 4 and all(j["state"] == "COMPLETE" for j in final.values())
    # the killed job's process died with its node
    deadline = time.monotonic() + 10
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not Path(f"/proc/{pid}").exists()
