"""What a user finds in MLflow after `mmar-automl run` (issue 16), read back with MlflowClient from the
run's embedded SQLite store: jobs that end out of order, a `--set` value, `--max-jobs`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mlflow_jobs import light_env, light_mmar

from mmar_automl.run.journal import load_run_state

pytestmark = pytest.mark.slow
RUN = [sys.executable, "-m", "mmar_automl", "run"]


def _out_of_order_mmar(root):
    """Job 1 sleeps longest and scores lowest, so jobs 2 and 3 end first."""
    mmar = light_mmar(root, epochs=2)
    config = json.loads((mmar / "config" / "config_train.json").read_text())
    config["search"] = [{"domain": "net", "type": "enum", "args": ["score", "sleep"],
                         "targets": [[0.2, 1.5], [0.7, 0.1], [0.5, 0.1], [0.9, 0.1], [0.1, 0.1]]},
                        {"domain": "transform", "type": "enum", "args": ["@flip"], "targets": [[True]]}]
    config["train"]["flip"] = {"name": "RandFlipd", "args": {}, "apply": {"@disabled": "flip"}}
    (mmar / "config" / "config_train.json").write_text(json.dumps(config, indent=1))
    return mmar


@pytest.fixture(scope="module")
def tracked_run(tmp_path_factory):
    from mlflow.tracking import MlflowClient

    mmar = _out_of_order_mmar(tmp_path_factory.mktemp("content") / "outoforder")
    out = subprocess.run([*RUN, str(mmar), "--workers", "cpu:cpu", "--seed", "3", "--run-id", "r",
                          "--max-jobs", "4", "--set", "mode=ok"],
                         env=light_env(), capture_output=True, text=True, timeout=400)
    assert out.returncode == 0, out.stderr[-3000:]
    client = MlflowClient(tracking_uri=f"sqlite:///{mmar / 'automl' / 'mlflow.db'}")
    exp = client.get_experiment_by_name("outoforder")
    runs = client.search_runs([exp.experiment_id], max_results=100)
    parent = next(r for r in runs if r.data.tags.get("mmar_automl.role") == "parent")
    children = sorted((r for r in runs if "mmar_automl.job_uid" in r.data.tags),
                      key=lambda r: int(r.data.tags["mmar_automl.job_number"]))
    state = load_run_state(mmar / "automl" / "r" / "journal.jsonl")
    return mmar, client, exp, parent, children, state, out


def test_best_score_never_goes_down_though_jobs_end_out_of_order(tracked_run):
    _mmar, client, _exp, parent, children, state, _out = tracked_run
    ended = sorted((j for j in state.jobs.values()), key=lambda j: j.ended_at)
    assert [j.number for j in ended] != sorted(j.number for j in ended)  # the setup: out of order
    history = sorted(client.get_metric_history(parent.info.run_id, "best_score"), key=lambda m: m.step)
    assert [m.step for m in history] == list(range(1, len(ended) + 1))
    expected, best = [], float("-inf")
    for job in ended:  # completion order: the best of the jobs ended so far
        best = max(best, job.score)
        expected.append(best)
    assert [m.value for m in history] == pytest.approx(expected)
    scores = {m.step: m.value for m in client.get_metric_history(parent.info.run_id, "job_score")}
    assert scores == pytest.approx({j.number: j.score for j in ended})


def test_parent_params_say_how_the_search_ran(tracked_run):
    mmar, _client, exp, parent, _children, _state, out = tracked_run
    params = parent.data.params
    assert params["controller"] == "OptunaController"  # the default: a 5-point grid does not fit --max-jobs 4
    assert params["seed"] == "3" and params["workers"] == "cpu cpu" and params["backend"] == "local"
    assert params["max_jobs"] == "4" and params["set.mode"] == "ok"
    assert "OptunaController" in parent.data.tags["mlflow.note.content"]
    assert exp.tags["mlflow.experimentKind"] == "custom_model_development"
    # the printed link lands on the experiment's runs in the "Model training" view
    assert f"/#/experiments/{exp.experiment_id}/runs?workflowType=machine_learning" in out.stderr


def test_children_hold_searched_and_fixed_values_under_the_reports_names(tracked_run):
    mmar, _client, _exp, _parent, children, state, _out = tracked_run
    assert len(children) == 4  # --max-jobs 4
    for child in children:
        params = child.data.params
        job = state.jobs[child.data.tags["mmar_automl.job_uid"]]
        assert params["score/sleep"] == ",".join(str(v) for v in job.recommendation.point["score,sleep"])
        assert params["flip"] == "true"
        assert params["epochs"] == "2" and params["mode"] == "ok"  # fixed first-level keys, --set applied
        assert "score" not in params and "sleep" not in params  # searched: under the dimension's name
        assert child.data.tags["mlflow.note.content"].startswith(f"Job {job.number} ({job.name})")
        assert "Ended COMPLETE" in child.data.tags["mlflow.note.content"]
    report = subprocess.run([sys.executable, "-m", "mmar_automl", "report", str(mmar)], env=light_env(),
                            capture_output=True, text=True, timeout=120)
    assert "score/sleep" in report.stdout and "score,sleep" not in report.stdout


def test_every_metric_and_one_duration(tracked_run):
    _mmar, client, _exp, _parent, children, state, _out = tracked_run
    for child in children:
        assert {"train_loss", "lr", "elapsed_time", "val_mean_dice", "score"} <= set(child.data.metrics)
        assert len(client.get_metric_history(child.info.run_id, "train_loss")) == 2
        job = state.jobs[child.data.tags["mmar_automl.job_uid"]]
        # MLflow's duration is the journal's (the report's and the console's)
        assert (child.info.end_time - child.info.start_time) / 1000 == pytest.approx(job.duration, abs=0.002)


def test_report_and_model_are_attached(tracked_run):
    _mmar, client, _exp, parent, children, state, _out = tracked_run
    assert "report.html" in [a.path for a in client.list_artifacts(parent.info.run_id)]
    best = max(children, key=lambda c: c.data.metrics["score"])
    assert best.data.tags["mmar_automl.job_uid"] == parent.data.tags["mmar_automl.best_job_uid"]
    # the light job's model.pt is not a network: logged as the raw file, and saying so
    assert "model" in [a.path for a in client.list_artifacts(best.info.run_id)]
    assert best.data.tags["mmar_automl.model"].startswith("raw model.pt")


def test_console_counts_against_max_jobs(tracked_run):
    """The plain progress lines (stderr is not a terminal): N/M with M = --max-jobs, never more."""
    out = tracked_run[-1]
    counts = [line.split("; ")[1] for line in out.stderr.splitlines() if "finished" in line and line.startswith("[")]
    assert counts == ["1/4 finished", "2/4 finished", "3/4 finished", "4/4 finished"]


def test_a_job_that_ended_while_the_orchestrator_was_down_has_one_duration(tmp_path):
    """Issue 16: such a job showed ~20 s in MLflow (the reap's clock) against a total_time of 2.4 s. It
    ends when it wrote train_stats.json, in the journal (report) and in MLflow alike."""
    import time

    from mlflow.tracking import MlflowClient

    mmar = light_mmar(tmp_path / "down", scores=(0.1, 0.2), epochs=2)
    base = [*RUN, str(mmar), "--workers", "1", "--seed", "1"]
    assert subprocess.run([*base, "--run-id", "d"], env=light_env(), capture_output=True, timeout=300).returncode == 0
    run_dir = mmar / "automl" / "d"
    # As if the orchestrator died while job 2 ran: its end is not journaled, its MLflow run is RUNNING.
    lines = (run_dir / "journal.jsonl").read_text().splitlines()
    last_pid = max(i for i, line in enumerate(lines) if '"op": "job_pid"' in line)
    (run_dir / "journal.jsonl").write_text("\n".join(lines[: last_pid + 1]) + "\n")
    client = MlflowClient(tracking_uri=f"sqlite:///{mmar / 'automl' / 'mlflow.db'}")
    exp = client.get_experiment_by_name("down")
    child = client.search_runs([exp.experiment_id], "attributes.run_name = 'W1_2_J2'")[0]
    client.update_run(child.info.run_id, status="RUNNING")
    time.sleep(2)  # the downtime, which must not count
    out = subprocess.run([*base, "--resume", "d"], env=light_env(), capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    job = next(j for j in load_run_state(run_dir / "journal.jsonl").jobs.values() if j.number == 2)
    assert "finished while the orchestrator was down" in job.reason
    assert job.ended_at == pytest.approx((run_dir / "W1_2_J2" / "models" / "train_stats.json").stat().st_mtime)
    child = client.get_run(child.info.run_id)
    assert child.info.status == "FINISHED"
    assert (child.info.end_time - child.info.start_time) / 1000 == pytest.approx(job.duration, abs=0.002)


def test_each_child_holds_the_jobs_concrete_config_and_environment(tracked_run):
    """Review of issue 16 (a job reproducible from MLflow alone): the child had config_train.json but not
    the job's environment.json (its data paths, an environment --set such as DATA_ROOT=...)."""
    import tempfile

    _mmar, client, _exp, _parent, children, state, _out = tracked_run
    for child in children:
        folder = Path(state.jobs[child.data.tags["mmar_automl.job_uid"]].folder)
        with tempfile.TemporaryDirectory() as tmp:
            got = Path(client.download_artifacts(child.info.run_id, "config", tmp))
            for name in ("config_train.json", "environment.json"):
                assert (got / name).read_bytes() == (folder / "config" / name).read_bytes(), name


def test_parent_params_of_bundle_ids_are_keys_mlflow_accepts():
    """--set train#preprocessing#transforms#3={...} on a bundle: "#" in a param key made MLflow refuse the
    parent run's whole params batch (controller, seed, workers... all lost)."""
    from mlflow.utils.validation import _validate_param_name

    from mmar_automl.tracking.content import parent_params

    params = parent_params({"controller": {"name": "RandomController"}, "overrides": {
        "train#preprocessing#transforms#3": {"_target_": "Identityd"}, "dataset_dir": "/data"}})
    assert params["set.train.preprocessing.transforms.3"] == "{'_target_': 'Identityd'}"
    assert params["set.dataset_dir"] == "/data"
    for key in params:
        _validate_param_name(key)
