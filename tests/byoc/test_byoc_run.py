"""Clara BYOC code (our own files in byoc_files/, written against Clara's API) run unchanged from an MMAR's
BYOC/ folder by ``path``, as real ``mmar-automl run`` processes; MLflow checked with MlflowClient."""

from __future__ import annotations

import pytest
from mlflow.tracking import MlflowClient

from byoc_mmar import byoc_mmar, cli, events, journal, light_train_config

WORKERS = ("--workers", "cpu:cpu", "--seed", "3")


def _ended(run_dir):
    return [e["job"] for e in journal(run_dir) if e["op"] == "job_ended"]


def test_clara_random_controller_and_locked_mlflow_handler(tmp_path):
    """A BYOC controller returning batches and calling stop_work; a BYOC handler logging to MLflow under a
    lock; Clara's MMARHandler work_dir holds the run; report, export-best and resume find it there."""
    store = f"sqlite:///{tmp_path / 'byoc.db'}"
    automl = {
        "controller": {"name": "myController", "path": "batch_random.BatchRandomController",
                       "args": {"batch": 3, "max_scores": 5}},
        "executor": {"name": "MMARExecutor", "args": {"msg_destination": "file", "remove_search_augs": True}},
        "handlers": [
            {"name": "MMARHandler", "args": {"num_mmars_to_keep": 2, "train_config_file": "{trainconf}",
                                             "work_dir": "trials", "key_mmar_content_only": True}},
            {"path": "locked_mlflow.LockedMLflowHandler"},
        ],
    }
    mmar = byoc_mmar(tmp_path / "mmar", automl, {"batch_random.py": None, "locked_mlflow.py": store})
    done = cli("run", str(mmar), "--run-id", "r1", "--no-mlflow", *WORKERS)
    assert done.returncode == 0, done.stderr
    # Clara keys that change nothing are named, one line each; the run went to <work_dir>/<run_id>
    notes = [ln for ln in done.stderr.splitlines() if ln.startswith("note: ")]
    assert len(notes) == 2, notes
    assert any("handlers[0].args.train_config_file is accepted and has no effect" in n for n in notes)
    assert any("executor.args.msg_destination is accepted and has no effect" in n for n in notes)
    run_dir = mmar / "trials" / "r1"
    assert f"run folder: {run_dir}" in done.stdout and not (mmar / "automl" / "r1").exists()

    # stop_work after 5 scores: scheduling stops, the job still running then finishes (6 jobs, 2 workers)
    ended = _ended(run_dir)
    assert len(ended) == 6 and all(j["state"] == "COMPLETE" for j in ended)
    assert sorted(j["recommendation"]["rec_id"] for j in ended) == list(range(100, 106))
    assert journal(run_dir)[-1]["reason"] == "stop_work by BatchRandomController: enough: 5 jobs scored"
    recommended = [len(e["recs"]) for e in journal(run_dir) if e["op"] == "recommended"]
    assert recommended[:5] == [3, 0, 3, 0, 3]  # several at once, or none

    # the handler saw Clara's shapes and events; end_job followed every start_job
    seen = events(mmar)
    assert seen[0] == ["startup", 2, []]
    names = [e[1] for e in seen if e[0] == "start_job"]
    assert sorted(names) == sorted(e[1] for e in seen if e[0] == "end_job") and len(names) == 6
    assert all(e[2] == 0 for e in seen if e[0] == "end_job")  # _processExitStatus
    assert [e[0] for e in seen][-1] == "shutdown" and "round_ended" in [e[0] for e in seen]
    prls = next(e[2] for e in seen if e[0] == "recommendation")
    assert [p.split(":")[1] for p in prls] == ["learning_rate", "score"]

    # MLflow: one run per job, params named by k.split(":")[1], values v[0]
    client = MlflowClient(tracking_uri=store)
    runs = client.search_runs([client.get_experiment_by_name("Default").experiment_id])
    assert sorted(r.info.run_name for r in runs) == sorted(names)
    by_name = {f"W{j['worker']}_{j['worker_seq']}_J{j['number']}": j for j in ended}
    for run in runs:
        job = by_name[run.info.run_name]
        assert run.data.metrics["Acc"] == pytest.approx(job["score"])
        assert float(run.data.params["score"]) == pytest.approx(job["recommendation"]["point"]["score"][0])
        assert float(run.data.params["learning_rate"]) == pytest.approx(job["recommendation"]["point"]["learning_rate"])
        assert run.data.tags["status"] == "ok"

    # report, export-best and resume find the run in work_dir
    report = cli("report", str(mmar), "--run", "r1")
    assert report.returncode == 0, report.stderr
    assert all(name in report.stdout for name in names)
    export = cli("export-best", str(mmar), str(tmp_path / "best"), "--run", "r1")
    assert export.returncode == 0, export.stderr
    assert (tmp_path / "best" / "config" / "config_train.json").is_file()
    resumed = cli("run", str(mmar), "--resume", "r1", "--no-mlflow", "--workers", "cpu:cpu")
    assert resumed.returncode == 0, resumed.stderr  # the seeded controller replays; its stop_work holds
    assert sum(1 for e in journal(run_dir) if e["op"] == "resumed") == 1 and len(_ended(run_dir)) == 6


def test_clara_handler_tracking_to_a_folder_reaches_mlflow(tmp_path, monkeypatch):
    """Clara's example handler tracks to a folder (mlflow.set_tracking_uri("/claraDevDay/AutoML/mlruns")),
    which MLflow 3 refuses unless MLFLOW_ALLOW_FILE_STORE is set: each end_job was one warning and nothing
    reached MLflow. ``run`` sets it (as it sets MMAR_ROOT) for code written for Clara."""
    folder = tmp_path / "mlruns"
    automl = {"controller": {"path": "batch_random.BatchRandomController", "args": {"batch": 2, "max_scores": 2}},
              "handlers": [{"path": "locked_mlflow.LockedMLflowHandler"}]}
    mmar = byoc_mmar(tmp_path / "mmar", automl, {"batch_random.py": None, "locked_mlflow.py": str(folder)})
    done = cli("run", str(mmar), "--run-id", "f", "--no-mlflow", "--workers", "1")
    assert done.returncode == 0, done.stderr
    assert "warning" not in done.stderr
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # to read the folder store here
    client = MlflowClient(tracking_uri=str(folder))
    runs = client.search_runs([client.get_experiment_by_name("Default").experiment_id])
    assert sorted(r.info.run_name for r in runs) == sorted(j["name"] for j in _ended_named(mmar / "automl" / "f"))
    assert all(set(r.data.params) == {"score", "learning_rate"} and "Acc" in r.data.metrics for r in runs)


def _ended_named(run_dir):
    return [{"name": f"W{j['worker']}_{j['worker_seq']}_J{j['number']}"} for j in _ended(run_dir)]


def test_resume_finds_a_work_dir_run_of_another_automl_config(tmp_path):
    """Clara's scripts pick the AutoML config (``--automlconf config_automl_BYO_handler.json``); its
    MMARHandler work_dir holds the run. ``--resume`` with the same --automl-config looked under
    <MMAR>/automl (the default config's runs) and said there was no run."""
    automl = {"controller": {"path": "batch_random.BatchRandomController", "args": {"batch": 2, "max_scores": 2}},
              "handlers": [{"name": "MMARHandler", "args": {"work_dir": "elsewhere"}}]}
    mmar = byoc_mmar(tmp_path / "mmar", {"controller": {"name": "RandomController"}}, {"batch_random.py": None})
    (mmar / "config" / "config_automl_BYO.json").write_text(__import__("json").dumps(automl))
    given = ("--automl-config", str(mmar / "config" / "config_automl_BYO.json"))
    first = cli("run", str(mmar), "--run-id", "w", "--no-mlflow", "--workers", "1", "--max-jobs", "1", *given)
    assert first.returncode == 0, first.stderr
    assert len(_ended(mmar / "elsewhere" / "w")) == 1
    resumed = cli("run", str(mmar), "--resume", "w", "--no-mlflow", "--max-jobs", "2", *given)
    assert resumed.returncode == 0, resumed.stderr
    assert len(_ended(mmar / "elsewhere" / "w")) == 2 and not (mmar / "automl" / "w").exists()


def test_unseeded_byoc_controller_cannot_resume(tmp_path):
    automl = {"controller": {"path": "batch_random.UnseededRandomController", "args": {"max_scores": 2}}}
    mmar = byoc_mmar(tmp_path / "mmar", automl, {"batch_random.py": None})
    assert cli("run", str(mmar), "--run-id", "u", "--no-mlflow", *WORKERS).returncode == 0
    before = (mmar / "automl" / "u" / "journal.jsonl").read_text()
    resumed = cli("run", str(mmar), "--resume", "u", "--no-mlflow", "--workers", "cpu:cpu")
    assert resumed.returncode == 2
    assert (mmar / "automl" / "u" / "journal.jsonl").read_text() == before  # the run is as it was
    assert "the controller is not deterministic given its args and seed" in resumed.stderr.strip().splitlines()[-1]


def test_seed_style_handler_with_builtin_controller_and_mlflow(tmp_path):
    """The handler this project grew from: its experiment is named after $MMAR_ROOT in startup. It runs
    next to the built-in MLflowHandler (another store) and a built-in controller."""
    seed_store, our_store = f"sqlite:///{tmp_path / 'seed.db'}", f"sqlite:///{tmp_path / 'ours.db'}"
    automl = {"controller": {"name": "GridController"},
              "handlers": [{"name": "MMARHandler", "args": {"work_dir": str(tmp_path / "elsewhere")}},
                           {"path": "seed_experiment.SeedExperimentHandler"},
                           {"path": "locked_mlflow.LockedMLflowHandler"}]}
    train = light_train_config(scores=(0.2, 0.7))
    train["search"] = train["search"][:1]  # enums only: the grid
    mmar = byoc_mmar(tmp_path / "clara_spleen", automl,
                     {"seed_experiment.py": seed_store, "locked_mlflow.py": f"sqlite:///{tmp_path / 'locked.db'}"},
                     train)
    done = cli("run", str(mmar), "--run-id", "g", "--tracking-uri", our_store, *WORKERS)
    assert done.returncode == 0, done.stderr
    client = MlflowClient(tracking_uri=seed_store)
    experiment = client.get_experiment_by_name("clara_spleen")
    runs = client.search_runs([experiment.experiment_id])
    assert sorted((r.info.run_name, r.data.params["score"], r.data.metrics["score"]) for r in runs) == sorted(
        [(n, str(s), pytest.approx(s)) for n, s in _names_scores(tmp_path / "elsewhere" / "g")])
    # the built-in MLflowHandler wrote its own store; the BYOC fluent-API handler did not leak into it
    ours = MlflowClient(tracking_uri=our_store)
    assert ours.get_experiment_by_name("clara_spleen") is not None
    assert ours.get_experiment_by_name("Default") is None or not ours.search_runs(["0"])
    synced = cli("sync", str(mmar), "g")  # finds the run in the absolute work_dir
    assert synced.returncode == 0, synced.stderr
    assert "experiment 'clara_spleen': 1 parent run, 2 job runs" in synced.stdout
    # a built-in controller's recommendations reach Clara handlers with .result (Clara's values: enum indices)
    assert [e[1] for e in events(mmar) if e[0] == "recommendation"] == [0, 1]


def _names_scores(run_dir):
    return [(f"W{j['worker']}_{j['worker_seq']}_J{j['number']}", j["recommendation"]["point"]["score"][0])
            for j in _ended(run_dir)]


@pytest.mark.parametrize("work_dir,message", [
    ("config/config_train.json/runs", "which cannot be created"),
    (17, "handlers[0].args.work_dir: MMARHandler: work_dir must be str | None, got 17"),  # the arg type check, first
])
def test_a_bad_work_dir_is_one_line_and_creates_nothing(tmp_path, work_dir, message):
    automl = {"controller": {"name": "GridController"},
              "handlers": [{"name": "MMARHandler", "args": {"work_dir": work_dir}}]}
    mmar = byoc_mmar(tmp_path / "mmar", automl, {})
    before = sorted(p.relative_to(mmar) for p in mmar.rglob("*"))
    for command in (["run", str(mmar), "--no-mlflow"], ["validate", str(mmar)]):
        done = cli(*command)
        assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
        assert message in done.stderr and "config_automl.json" in done.stderr
    assert sorted(p.relative_to(mmar) for p in mmar.rglob("*")) == before
