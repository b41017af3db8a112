"""Resume reads the run's options from the journal (issue 16 point 11): workers, backend, jobs per GPU,
fast paths and limits left out on the command line are the run's own; a different value is used, with
one line saying so. Through the CLI, real job processes (the light job)."""

from __future__ import annotations

import json

from conftest import journal, ledger_lines, light_config, write_mmar
from mmar_automl.cli import main


def _run(capsys, *args: str) -> tuple[int, str]:
    code = main(["run", *args])
    return code, capsys.readouterr().err


def test_resume_defaults_to_the_journaled_options(tmp_path, light_env, capsys):
    mmar = write_mmar(tmp_path / "mmar", light_config(scores=(0.1, 0.2, 0.3, 0.4, 0.5, 0.6), sleep=0.05))
    code, err = _run(capsys, str(mmar), "--run-id", "r", "--no-mlflow", "--seed", "1", "--workers", "cpu:cpu",
                     "--jobs-per-gpu", "2", "--no-fast-paths", "--max-jobs", "2", "--no-launcher")
    assert code == 0, err
    run_dir = mmar / "automl" / "r"
    header = journal(run_dir)[0]
    assert header["workers"] == ["cpu"] * 4
    assert {k: header["options"][k] for k in ("workers", "jobs_per_gpu", "backend", "fast_paths", "max_jobs")} == {
        "workers": "cpu:cpu", "jobs_per_gpu": 2, "backend": "local", "fast_paths": False, "max_jobs": 2}

    # No flags but --resume (what the Ctrl-C hint prints): the same workers, packing, fast paths, launcher,
    # MLflow choice and limit.
    code, err = _run(capsys, str(mmar), "--resume", "r")
    assert code == 0, err
    assert "note:" not in err and "MLflow" not in err
    assert not (run_dir / "mlflow.json").exists()
    resumed = [e for e in journal(run_dir) if e["op"] == "resumed"]
    assert resumed[-1]["workers"] == ["cpu"] * 4
    assert resumed[-1]["options"]["fast_paths"] is False and resumed[-1]["options"]["jobs_per_gpu"] == 2
    assert resumed[-1]["options"]["launcher"] is False and resumed[-1]["options"]["no_mlflow"] is True
    assert len([e for e in journal(run_dir) if e["op"] == "job_started"]) == 2  # --max-jobs 2 still holds
    starts = [e for e in ledger_lines(light_env) if e["event"] == "start"]
    assert len(starts) == 2

    # A different value on the command line wins, with one line saying so.
    code, err = _run(capsys, str(mmar), "--resume", "r", "--workers", "cpu", "--max-jobs", "4", "--fast-paths")
    assert code == 0, err
    notes = [line for line in err.splitlines() if line.startswith("note:")]
    assert notes == ["note: --workers cpu: run r was started with --workers cpu:cpu; using --workers cpu",
                     "note: --fast-paths: run r was started with --no-fast-paths; using --fast-paths",
                     "note: --max-jobs 4: run r was started with --max-jobs 2; using --max-jobs 4"]
    assert journal(run_dir)[-1]["op"] == "run_ended"
    assert [e for e in journal(run_dir) if e["op"] == "resumed"][-1]["workers"] == ["cpu"] * 2
    assert len([e for e in journal(run_dir) if e["op"] == "job_started"]) == 4
    # What the options did to the job processes: the first session's jobs ran without fast paths, the
    # last session's with them (the default); all started cold (--no-launcher, journaled).
    flags = {p.name: json.loads((p / "models" / "env.json").read_text())["env"]["MMAR_AUTOML_FAST_PATHS"]
             for p in sorted(run_dir.glob("W*"))}
    assert flags == {"W1_1_J1": '{"enabled": false, "compile": false}', "W2_1_J2": '{"enabled": false, "compile": false}',
                     "W1_2_J3": None, "W2_2_J4": None}
    assert {e["via"] for e in journal(run_dir) if e["op"] == "job_pid"} == {"cold"}


def test_a_resume_from_an_older_journal_without_options_keeps_the_command_line(tmp_path, light_env, capsys):
    """Journals written before the options were journaled: nothing to default to, no note."""
    mmar = write_mmar(tmp_path / "mmar", light_config(scores=(0.1, 0.2, 0.3), sleep=0.05))
    code, err = _run(capsys, str(mmar), "--run-id", "o", "--no-mlflow", "--seed", "1", "--workers", "cpu",
                     "--max-jobs", "1", "--no-launcher")
    assert code == 0, err
    path = mmar / "automl" / "o" / "journal.jsonl"
    events = [json.loads(line) for line in path.read_text().splitlines()]
    events[0]["options"] = {k: events[0]["options"][k] for k in ("max_jobs", "time_limit", "max_retries", "job_timeout")}
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    code, err = _run(capsys, str(mmar), "--resume", "o", "--no-mlflow", "--no-launcher", "--workers", "cpu:cpu")
    assert code == 0, err
    assert "note:" not in err
    assert [e for e in journal(mmar / "automl" / "o") if e["op"] == "resumed"][-1]["workers"] == ["cpu"] * 2


def test_resume_reads_the_journaled_config_files_in_the_mmar_not_the_current_folder(tmp_path, light_env, capsys,
                                                                                   monkeypatch):
    """A run started with ``--train-config config/other.json`` resumed from a folder that holds a file of
    the same relative name (another MMAR): the journaled name is the resumed MMAR's file."""
    mmar = write_mmar(tmp_path / "mmar", light_config(sleep=0.05))
    (mmar / "config" / "other.json").write_text((mmar / "config" / "config_train.json").read_text())
    (mmar / "config" / "other_automl.json").write_text(json.dumps({"controller": {"name": "GridController"}}))
    elsewhere = write_mmar(tmp_path / "elsewhere", light_config(sleep=0.05, epochs=7))
    (elsewhere / "config" / "other.json").write_text((elsewhere / "config" / "config_train.json").read_text())
    (elsewhere / "config" / "other_automl.json").write_text(json.dumps({"controller": {"name": "RandomController"}}))
    code, err = _run(capsys, str(mmar), "--run-id", "r", "--no-mlflow", "--seed", "1", "--workers", "cpu",
                     "--train-config", "config/other.json", "--automl-config", "config/other_automl.json",
                     "--max-jobs", "1")
    assert code == 0, err
    monkeypatch.chdir(elsewhere)
    code, err = _run(capsys, str(mmar), "--resume", "r", "--max-jobs", "2")
    assert code == 0, err
    run_dir = mmar / "automl" / "r"
    assert len([e for e in journal(run_dir) if e["op"] == "job_started"]) == 2
    assert {json.loads((p / "config" / "config_train.json").read_text())["epochs"] for p in run_dir.glob("W*")} == {2}


def test_resume_with_clara_run_keys_keeps_the_journaled_set_values(tmp_path, light_env, capsys):
    """Clara's automl.sh passes ``--set trainconf=... workers=...`` on every call: on ``--resume`` they are
    options (a different workers= wins with a note, as --workers does), not config values that would
    replace the run's --set epochs=3."""
    mmar = write_mmar(tmp_path / "mmar", light_config(sleep=0.05))
    (mmar / "config" / "other.json").write_text((mmar / "config" / "config_train.json").read_text())
    code, err = _run(capsys, str(mmar), "--run-id", "r", "--no-mlflow", "--seed", "1", "--workers", "cpu:cpu",
                     "--max-jobs", "2", "--set", "trainconf=other.json", "epochs=3")
    assert code == 0, err
    code, err = _run(capsys, str(mmar), "--resume", "r", "--max-jobs", "3", "--set", "trainconf=other.json",
                     "workers=cpu")
    assert code == 0, err
    assert [line for line in err.splitlines() if line.startswith("note:")] == [
        "note: --workers cpu: run r was started with --workers cpu:cpu; using --workers cpu",
        "note: --max-jobs 3: run r was started with --max-jobs 2; using --max-jobs 3"]
    run_dir = mmar / "automl" / "r"
    assert [e for e in journal(run_dir) if e["op"] == "resumed"][-1]["workers"] == ["cpu"]
    jobs = sorted(run_dir.glob("W*"))
    assert len(jobs) == 3
    assert {json.loads((p / "config" / "config_train.json").read_text())["epochs"] for p in jobs} == {3}
    # config values given on resume are still checked against the run's
    code, err = _run(capsys, str(mmar), "--resume", "r", "--set", "trainconf=other.json", "epochs=4")
    assert code == 2 and "--set differs from run r's ({'epochs': 3})" in err


def test_a_job_the_dead_orchestrator_left_running_ends_with_its_last_write(tmp_path):
    """Review of issue 16 (point 10): after kill -9 and a resume 30 s later, a job killed 4 s into
    training was reported ABORTED after 37.4 s (report and MLflow): its end was the resume's clock."""
    import os
    import time

    from mmar_automl.recommendation import JobState, Recommendation
    from mmar_automl.run.job import JobRecord
    from mmar_automl.run.resume import settle_interrupted

    started = time.time() - 40
    folder = tmp_path / "W1_1_J1"
    (folder / "models").mkdir(parents=True)
    (folder / "log.txt").write_text("epoch 1\n")
    (folder / "models" / "metrics.jsonl").write_text('{"kind": "train", "epoch": 1}\n')
    os.utime(folder / "log.txt", (started + 4.0, started + 4.0))
    os.utime(folder / "models" / "metrics.jsonl", (started + 3.5, started + 3.5))
    job = JobRecord(job_uid="u", number=1, worker=1, worker_seq=1, folder=str(folder),
                    recommendation=Recommendation(0, {"lr": 0.1}), state=JobState.RUNNING, started_at=started)
    settled, told = settle_interrupted(job)
    assert settled.state is JobState.ABORTED and not told
    assert abs(settled.duration - 4.0) < 0.01
