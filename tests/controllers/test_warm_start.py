"""`run --warm-start RUN_ID` through the CLI: a new run of the same MMAR whose space was widened and
gained a dimension learns from the earlier run's jobs (Optuna trials added before the first ask),
names what changed, journals the warm start; bad uses are exit 2 with one line and nothing written."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from test_controllers_cli import _cli, _env, _events
from test_optuna_study_file import LOG_LR_INT_CONFIG, _load, _mmar

TPE = {"name": "OptunaController", "args": {"sampler": "tpe", "sampler_args": {"n_startup_trials": 2}}}


def _run(mmar: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(_cli(mmar, "--workers", "1", *args), env=_env(), capture_output=True, text=True,
                          timeout=120)


def _set_space(mmar: Path, **changes) -> None:
    config = json.loads(json.dumps(LOG_LR_INT_CONFIG))
    search = {e["args"][0]: e for e in config["search"]}
    for arg, entry in changes.items():
        if entry is None:
            config["search"].remove(search[arg])
        elif arg in search:
            search[arg].update(entry)
        else:
            config[arg] = entry["targets"][0]
            config["search"].append({"domain": "x", "args": [arg], **entry})
    (mmar / "config" / "config_train.json").write_text(json.dumps(config))


def test_widened_space_keeps_earlier_jobs_and_names_changes(tmp_path):
    import optuna

    mmar = _mmar(tmp_path / "m", TPE)
    _set_space(mmar, score={"targets": [0.0, 0.6]})
    assert _run(mmar, "--seed", "3", "--max-jobs", "4", "--run-id", "a").returncode == 0
    # widen 'score', add an int dimension 'depth', stop searching 'batch'
    _set_space(mmar, score={"targets": [0.0, 1.0]}, depth={"type": "int", "targets": [1, 4]}, batch=None)
    proc = _run(mmar, "--seed", "4", "--max-jobs", "6", "--run-id", "b", "--warm-start", "a")
    assert proc.returncode == 0, proc.stderr
    err = proc.stderr
    assert "'depth' is new" in err and "'batch' is no longer searched" in err
    assert "4 finished job(s) of a seed the search" in err
    header = _events(mmar, "b")[0]
    warm = header["warm_start"]
    assert warm["run_id"] == "a" and len(warm["trials"]) == 4
    earlier = {e["job"]["recommendation"]["point"]["score"]: e["job"]["score"]
               for e in _events(mmar, "a") if e["op"] == "job_ended"}
    assert {t["point"]["score"]: t["score"] for t in warm["trials"]} == earlier
    assert all("batch" not in t["point"] for t in warm["trials"])
    # the earlier jobs ran with the config's own depth (1): they carry it, so the new dimension is
    # in every trial (the GP sampler models only the parameters all trials have)
    assert "'depth' is new: the jobs of a ran with the config's value 1, which they carry" in err
    assert all(t["point"]["depth"] == 1 for t in warm["trials"])
    assert "config_train.json changed outside the search blocks since a" in err   # the new 'depth': 1 key
    study = _load(mmar / "automl" / "b")
    seeded = [t for t in study.trials if t.user_attrs.get("warm_start")]
    assert len(seeded) == 4 and all(t.state == optuna.trial.TrialState.COMPLETE for t in seeded)
    assert [t.number for t in seeded] == [0, 1, 2, 3]                  # before the run's own trials
    complete = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert len(complete) == 4 + 6
    assert not study.get_trials(states=(optuna.trial.TrialState.RUNNING,))   # none left running
    # resume replays the journaled warm start (the earlier run is gone by then)
    import shutil

    shutil.rmtree(mmar / "automl" / "a")
    again = _run(mmar, "--resume", "b", "--max-jobs", "7")
    assert again.returncode == 0, again.stderr
    rebuilt = _load(mmar / "automl" / "b").get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert len(rebuilt) == 4 + 7


def test_narrowed_range_leaves_out_jobs_outside_it(tmp_path):
    mmar = _mmar(tmp_path / "m", TPE)
    assert _run(mmar, "--seed", "5", "--max-jobs", "5", "--run-id", "a").returncode == 0
    scores = [e["job"]["recommendation"]["point"]["score"] for e in _events(mmar, "a") if e["op"] == "job_ended"]
    _set_space(mmar, score={"targets": [0.0, 0.5]})
    proc = _run(mmar, "--seed", "6", "--max-jobs", "1", "--run-id", "b", "--warm-start", "a")
    assert proc.returncode == 0, proc.stderr
    assert "changed outside the search blocks" not in proc.stderr      # only a search block changed
    outside = sum(s > 0.5 for s in scores)
    kept = _events(mmar, "b")[0]["warm_start"]["trials"]
    assert len(kept) == len(scores) - outside
    if outside:
        assert f"{outside} job(s) of a left out: their 'score' is outside the new search space" in proc.stderr


def test_bad_warm_starts_are_exit_2_one_line_nothing_written(tmp_path):
    mmar = _mmar(tmp_path / "m", TPE)
    proc = _run(mmar, "--max-jobs", "1", "--run-id", "x", "--warm-start", "nope")
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
    assert "--warm-start nope: no run there" in proc.stderr and not (mmar / "automl" / "x").exists()
    assert _run(mmar, "--max-jobs", "1", "--run-id", "a").returncode == 0
    grid = {"controller": {"name": "GridController", "args": {}}}
    (mmar / "config" / "grid.json").write_text(json.dumps(grid))
    proc = _run(mmar, "--max-jobs", "1", "--run-id", "g", "--warm-start", "a",
                "--automl-config", str(mmar / "config" / "grid.json"))
    assert proc.returncode == 2 and "GridController does not learn from earlier jobs" in proc.stderr
    assert not (mmar / "automl" / "g").exists()
    proc = _run(mmar, "--resume", "a", "--warm-start", "a")
    assert proc.returncode == 2 and "resume without it" in proc.stderr
