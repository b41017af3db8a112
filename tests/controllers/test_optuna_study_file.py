"""The Optuna controller keeps its study in the run folder (Optuna's journal file storage): after a CLI
run, and after a resumed one, ``optuna.load_study`` sees one trial per job, with the job's parameters
and score, as the journal has them."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from test_controllers_cli import _cli, _env, _events

LOG_LR_INT_CONFIG = {
    "epochs": 1, "sleep": 0.0, "score": 0.5, "mode": "ok", "learning_rate": 0.001, "batch": 2,
    "search": [{"domain": "x", "type": "float", "args": ["score"], "targets": [0.0, 1.0]},
               {"domain": "lr", "type": "float", "args": ["learning_rate"], "targets": [1e-5, 1e-2], "log": True},
               {"domain": "net", "type": "int", "args": ["batch"], "targets": [2, 16], "step": 2}],
}


def _mmar(root: Path, controller: dict | None) -> Path:
    files = {"config/config_train.json": LOG_LR_INT_CONFIG,
             "config/environment.json": {"DATA_ROOT": "data", "DATASET_JSON": "data/dataset.json",
                                         "MMAR_CKPT_DIR": "models"},
             "data/dataset.json": {}}
    if controller is not None:
        files["config/config_automl.json"] = {"controller": controller}
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(json.dumps(data))
    (root / "models").mkdir(exist_ok=True)
    return root


def _load(run_dir: Path):
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    storage = JournalStorage(JournalFileBackend(str(run_dir / "optuna_journal.log")))
    return optuna.load_study(study_name=None, storage=storage)


def _check_study_matches_journal(mmar: Path, run_id: str, jobs: int) -> None:
    import optuna

    study = _load(mmar / "automl" / run_id)
    assert study.study_name == run_id and study.user_attrs["mmar_run_id"] == run_id
    ended = {e["job"]["recommendation"]["rec_id"]: e["job"] for e in _events(mmar, run_id) if e["op"] == "job_ended"}
    recommended = {r["rec_id"]: r for e in _events(mmar, run_id) if e["op"] == "recommended" for r in e["recs"]}
    complete = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert len(ended) == jobs and len(complete) == jobs
    for trial in complete:
        rec = next(r for r in recommended.values() if r["meta"].get("trial") == trial.number)
        job = ended[rec["rec_id"]]
        assert trial.params == rec["point"]                          # same names, same values
        assert trial.value == job["score"] and trial.user_attrs["job"] in job["folder"]
        assert isinstance(trial.params["batch"], int)
    dists = complete[0].distributions
    assert dists["learning_rate"] == optuna.distributions.FloatDistribution(1e-5, 1e-2, log=True)
    assert dists["batch"] == optuna.distributions.IntDistribution(2, 16, step=2)


def test_study_loadable_after_a_run_and_after_resume(tmp_path):
    controller = {"name": "OptunaController", "args": {"sampler": "tpe", "sampler_args": {"n_startup_trials": 2}}}
    mmar = _mmar(tmp_path / "m", controller)
    first = subprocess.run(_cli(mmar, "--seed", "5", "--workers", "1", "--max-jobs", "3", "--run-id", "s"),
                           env=_env(), capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    _check_study_matches_journal(mmar, "s", 3)
    again = subprocess.run(_cli(mmar, "--resume", "s", "--max-jobs", "5"),
                           env=_env(), capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    _check_study_matches_journal(mmar, "s", 5)       # rebuilt by the replay, then two more trials
