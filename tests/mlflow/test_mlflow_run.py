"""`mmar-automl run` end to end with MLflow on: the engine fires the events, the light job function
(tests/run/lightjobs.py) trains. The embedded SQLite default with Ctrl-C and ``--resume``, and a real
server with a kill -9 and ``--resume``."""

from __future__ import annotations

import subprocess
import sys
import time
from collections import Counter

import pytest

from mlflow_jobs import light_env, light_mmar

pytestmark = pytest.mark.slow
RUN = [sys.executable, "-m", "mmar_automl", "run"]
BASE = ["--workers", "cpu:cpu", "--seed", "1"]


def _runs(client, experiment):
    exp = client.get_experiment_by_name(experiment)
    runs = client.search_runs([exp.experiment_id], max_results=1000)
    parents = [r for r in runs if r.data.tags.get("mmar_automl.role") == "parent"]
    children = [r for r in runs if "mmar_automl.job_uid" in r.data.tags]
    return parents, children


def test_embedded_sqlite_store_ctrl_c_then_resume(tmp_path):
    """No --tracking-uri: the store is MMAR/automl/mlflow.db. Ctrl-C: the parent is KILLED until
    --resume finishes it; every point ends with one FINISHED child carrying its params and metrics."""
    import signal

    from mlflow.tracking import MlflowClient

    mmar = light_mmar(tmp_path / "lightmmar", sleep=1.0, epochs=3)
    orch = subprocess.Popen([*RUN, str(mmar), *BASE, "--run-id", "r1"], env=light_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    journal = mmar / "automl" / "r1" / "journal.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (journal.exists() and '"job_started"' in journal.read_text()):
        time.sleep(0.1)
    time.sleep(1.0)
    orch.send_signal(signal.SIGINT)
    stdout, stderr = orch.communicate(timeout=120)
    assert orch.returncode == 130, stderr[-3000:]
    db = mmar / "automl" / "mlflow.db"
    assert db.is_file()
    assert f"mlflow ui --backend-store-uri sqlite:///{db}" in stderr
    # the console does not count the jobs Ctrl-C aborted as finished (they run again on resume)
    ends = [line for line in stderr.splitlines() if line.startswith("[W") and " finished" in line]
    complete = 0
    for line in ends:
        complete += " COMPLETE " in line
        assert line.rsplit("; ", 2)[-1 if "best" not in line else -2].startswith(f"{complete}/4 finished"), line
    assert any(" ABORTED " in line for line in ends)
    assert "View run" not in stdout
    client = MlflowClient(tracking_uri=f"sqlite:///{db}")
    parents, children = _runs(client, "lightmmar")  # experiment = the MMAR folder name
    assert len(parents) == 1 and parents[0].info.status == "KILLED"
    assert parents[0].data.tags["mmar_automl.status"] == "INTERRUPTED"
    assert children and not [c for c in children if c.info.status == "RUNNING"]

    out = subprocess.run([*RUN, str(mmar), *BASE, "--resume", "r1"], env=light_env(), capture_output=True,
                         text=True, timeout=400)
    assert out.returncode == 0, out.stderr[-3000:]
    parents, children = _runs(client, "lightmmar")
    assert len(parents) == 1 and parents[0].info.run_name == "r1" and parents[0].info.status == "FINISHED"
    assert parents[0].data.tags["mmar_automl.status"] == "COMPLETE"
    finished = [c for c in children if c.info.status == "FINISHED"]
    assert sorted(float(c.data.params["score"]) for c in finished) == [0.1, 0.2, 0.3, 0.4]
    for child in finished:
        assert child.data.metrics["score"] == pytest.approx(float(child.data.params["score"]))
        assert child.data.tags["prl.score"].startswith("net.enum.")
        assert len(client.get_metric_history(child.info.run_id, "train_loss")) == 3
    best = max(finished, key=lambda c: c.data.metrics["score"])
    assert "model" in [a.path for a in client.list_artifacts(best.info.run_id)]
    assert (mmar / "automl" / "mlartifacts").is_dir()  # artifacts beside the store, not in the cwd


def test_kill_9_then_resume_against_a_server(live_server, tmp_path):
    scores = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6)
    mmar = light_mmar(tmp_path / "mmar", scores=scores, sleep=0.5, epochs=2)
    args = [*BASE, "--tracking-uri", live_server.uri, "--experiment", tmp_path.name]
    orch = subprocess.Popen([*RUN, str(mmar), *args, "--run-id", "k"], env=light_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    journal = mmar / "automl" / "k" / "journal.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        text = journal.read_text() if journal.exists() else ""
        if text.count('"op": "job_ended"') >= 1 and text.count('"op": "job_started"') >= 3:
            break
        time.sleep(0.1)
    time.sleep(1.0)  # let the writer send the running jobs' live metrics
    orch.kill()
    orch.wait()
    out = subprocess.run([*RUN, str(mmar), *args, "--resume", "k"], env=light_env(), capture_output=True,
                         text=True, timeout=400)
    assert out.returncode == 0, out.stderr[-3000:]
    client = live_server.client()
    parents, children = _runs(client, tmp_path.name)
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    assert not [c for c in children if c.info.status == "RUNNING"]
    finished = Counter(float(c.data.params["score"]) for c in children if c.info.status == "FINISHED")
    assert finished == Counter(scores)  # one finished child per point
    uids = [c.data.tags["mmar_automl.job_uid"] for c in children]
    assert len(uids) == len(set(uids))  # never a second MLflow run for a job
    for child in children:
        if child.info.status == "KILLED":  # an interrupted job: its retry is another child
            assert [c for c in children if c.data.tags.get("mmar_automl.retry_of") == child.data.tags[
                "mmar_automl.job_uid"]]
