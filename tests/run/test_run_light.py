"""`mmar-automl run` end to end with the light job function (real processes, real files, no torch)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from conftest import journal, ledger_lines, light_config, write_mmar
from mmar_automl.cli import main

BASE = ["--no-mlflow", "--workers", "cpu:cpu", "--seed", "1"]


def _run(mmar: Path, *args: str) -> int:
    return main(["run", str(mmar), *BASE, *args])


def _ended(run_dir: Path) -> list[dict]:
    return [e["job"] for e in journal(run_dir) if e["op"] == "job_ended"]


def test_full_grid_two_workers(tmp_path, light_env, capsys):
    mmar = write_mmar(tmp_path / "mmar", light_config(), automl={
        "controller": {"name": "GridController"},
        "handlers": [{"name": "MMARHandler", "args": {"num_mmars_to_keep": 2}}, {"name": "StatsHandler"},
                     {"name": "MMARStatsHandler"}]})
    assert _run(mmar, "--run-id", "grid") == 0
    out = capsys.readouterr().out
    run_dir = mmar / "automl" / "grid"
    assert f"run id: grid\nrun folder: {run_dir}" in out
    jobs = {j["job_uid"]: j for j in _ended(run_dir)}
    names = {f"W{j['worker']}_{j['worker_seq']}_J{j['number']}": j for j in jobs.values()}
    # which worker frees up first (and so takes J3) depends on the machine's load
    assert sorted(j["number"] for j in jobs.values()) == [1, 2, 3, 4]
    for w in (1, 2):
        assert sorted(j["worker_seq"] for j in jobs.values() if j["worker"] == w) == [1, 2]
    assert {"W1_1_J1", "W2_1_J2"} <= set(names)
    by_score = {round(j["score"], 6): name for name, j in names.items()}
    assert f"best: {by_score[0.4]} score 0.4" in out
    assert sorted(p.name for p in run_dir.iterdir() if p.name.startswith("W")) == sorted(names)
    for name, job in names.items():
        assert job["state"] == "COMPLETE"
        assert job["score"] == pytest.approx(job["recommendation"]["point"]["score"][0])
        stats = json.loads((run_dir / name / "models" / "train_stats.json").read_text())
        assert stats["best_validation_metric"] == pytest.approx(job["score"])
        assert job["intermediate"] == [[1, pytest.approx(job["score"] / 2)], [2, pytest.approx(job["score"])]]
        env = json.loads((run_dir / name / "models" / "env.json").read_text())
        assert env["cwd"] == str(run_dir / name) and env["env"]["CUDA_VISIBLE_DEVICES"] == ""
        assert env["environment"]["DATA_ROOT"] == str(mmar / "data")
        assert (run_dir / name / "log.txt").read_text().startswith("light job")
        assert json.loads((run_dir / name / "job_stats.json").read_text())["state"] == "COMPLETE"
    # best/ holds the best job's config and model; only the 2 best jobs keep their checkpoints
    best = json.loads((run_dir / "best" / "best.json").read_text())
    assert best["job"] == by_score[0.4] and best["score"] == pytest.approx(0.4)
    assert json.loads((run_dir / "best" / "config" / "config_train.json").read_text())["score"] == 0.4
    assert (run_dir / "best" / "models" / "model.pt").exists()
    kept = sorted(n for n in names if (run_dir / n / "models" / "model.pt").exists())
    assert kept == sorted([by_score[0.3], by_score[0.4]])
    stats = json.loads((run_dir / "stats.json").read_text())
    assert stats["states"] == {"COMPLETE": 4} and stats["best"]["job"] == by_score[0.4] and stats["finished"]
    events = journal(run_dir)
    assert events[0]["op"] == "run_started" and events[-1]["op"] == "run_ended"
    assert events[-1]["reason"] == "controller exhausted"


def test_failures_are_recorded_and_the_search_goes_on(tmp_path, light_env):
    config = light_config(scores=(0.5,), modes=["ok", "raise", "hang", "abort", "exit3", "nan"], sleep=0.05)
    mmar = write_mmar(tmp_path / "mmar", config)
    assert _run(mmar, "--run-id", "f", "--job-timeout", "3") == 1
    run_dir = mmar / "automl" / "f"
    by_mode = {j["recommendation"]["point"]["mode"][0]: j for j in _ended(run_dir)}
    assert by_mode["ok"]["state"] == "COMPLETE" and by_mode["ok"]["score"] == 0.5
    assert by_mode["raise"]["state"] == "FAILED" and by_mode["raise"]["exit_code"] == 1
    assert "light job failure on purpose" in by_mode["raise"]["log_tail"]
    assert "light job failure on purpose" in by_mode["raise"]["reason"]
    assert by_mode["hang"]["state"] == "TIMED_OUT" and "job-timeout" in by_mode["hang"]["reason"]
    assert by_mode["abort"]["state"] == "FAILED" and by_mode["abort"]["exit_code"] == -signal.SIGABRT
    assert "SIGABRT" in by_mode["abort"]["reason"]
    assert by_mode["exit3"]["state"] == "FAILED" and by_mode["exit3"]["exit_code"] == 3
    assert by_mode["nan"]["state"] == "FAILED" and "NaN" in by_mode["nan"]["reason"]
    assert all(j["score"] is None for m, j in by_mode.items() if m != "ok")
    assert journal(run_dir)[-1]["exit_code"] == 1


def test_max_retries(tmp_path, light_env):
    mmar = write_mmar(tmp_path / "mmar", light_config(scores=(0.5,), modes=["raise"]))
    assert _run(mmar, "--run-id", "r", "--max-retries", "2", "--workers", "1") == 1
    ended = _ended(mmar / "automl" / "r")
    assert [j["attempt"] for j in ended] == [0, 1, 2]
    assert ended[1]["retry_of"] == ended[0]["job_uid"] and ended[2]["retry_of"] == ended[1]["job_uid"]
    told = [e["told"] for e in journal(mmar / "automl" / "r") if e["op"] == "job_ended"]
    assert told == [False, False, True]  # the controller hears of the failure once, after the last try


def test_resume_on_another_number_of_workers(tmp_path, light_env):
    """The initial batch is one point per worker: a resume with more workers still replays it."""
    mmar = write_mmar(tmp_path / "mmar", light_config(scores=(0.1, 0.2, 0.3, 0.4, 0.5, 0.6)),
                      automl={"controller": {"name": "RandomController", "args": {"num_samples": 5}}})
    assert _run(mmar, "--run-id", "n", "--max-jobs", "2") == 0
    assert _run(mmar, "--resume", "n", "--workers", "3", "--max-jobs", "5") == 0
    ended = _ended(mmar / "automl" / "n")
    assert len(ended) == 5 and all(j["state"] == "COMPLETE" for j in ended)
    assert len({j["recommendation"]["rec_id"] for j in ended}) == 5


def test_max_jobs_and_stop_threshold(tmp_path, light_env):
    mmar = write_mmar(tmp_path / "mmar", light_config(scores=(0.1, 0.2, 0.3, 0.4, 0.5, 0.6)))
    assert _run(mmar, "--run-id", "m", "--max-jobs", "3", "--workers", "1") == 0
    assert len(_ended(mmar / "automl" / "m")) == 3
    assert journal(mmar / "automl" / "m")[-1]["reason"] == "max jobs 3"
    # resume with a higher limit continues where it stopped, re-running nothing
    assert _run(mmar, "--resume", "m", "--max-jobs", "5", "--workers", "1") == 0
    scores = [j["recommendation"]["point"]["score"][0] for j in _ended(mmar / "automl" / "m")]
    assert scores == [0.1, 0.2, 0.3, 0.4, 0.5]

    mmar2 = write_mmar(tmp_path / "mmar2", light_config(scores=(0.1, 0.9, 0.2, 0.3)),
                       automl={"controller": {"name": "GridController"},
                               "handlers": [{"name": "MMARHandler", "args": {"stop_threshold": 0.85}}]})
    assert _run(mmar2, "--run-id", "t", "--workers", "1") == 0
    assert [j["score"] for j in _ended(mmar2 / "automl" / "t")] == [0.1, 0.9]
    assert "stop_work by MMARHandler" in journal(mmar2 / "automl" / "t")[-1]["reason"]


BYOC = '''
import json, os
from mmar_automl.context import ContextKey
from mmar_automl.controllers.grid import GridController
from mmar_automl.handlers.base import Handler

LOG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "calls.jsonl")

def _log(*what):
    with open(LOG, "a") as f:
        f.write(json.dumps(what) + "\\n")

class MyController(GridController):
    def __init__(self, prune_below=None, **kw):
        super().__init__(**kw)
        self.prune_below = prune_below
    def initial_recommendation(self, ctx):
        recs = super().initial_recommendation(ctx)
        _log("initial", len(recs))
        return recs
    def refine_recommendation(self, outcome, ctx):
        _log("refine", outcome.job_name, outcome.state.value)
        return super().refine_recommendation(outcome, ctx)
    def should_prune(self, rec, step, value, ctx):
        return self.prune_below is not None and value < self.prune_below

class MyHandler(Handler):
    def handle_event(self, event, ctx):   # a Clara-style handler overriding handle_event itself
        _log("event", event, ctx.get_prop(ContextKey.JOB_NAME) if event.endswith("_job") else None)

class BrokenHandler(Handler):
    def end_job(self, ctx):
        raise RuntimeError("handler bug")
'''


def test_byoc_controller_and_handler_from_the_mmar(tmp_path, light_env):
    automl = {"controller": {"name": "mine", "path": "myautoml.MyController", "args": {"prune_below": 0.1}},
              "handlers": [{"path": "myautoml.BrokenHandler"}, {"path": "myautoml.MyHandler"}]}
    mmar = write_mmar(tmp_path / "mmar", light_config(scores=(0.1, 0.4), epochs=3, sleep=0.3), automl=automl)
    (mmar / "custom").mkdir()
    (mmar / "custom" / "myautoml.py").write_text(BYOC)
    assert _run(mmar, "--run-id", "b") == 0
    calls = [json.loads(x) for x in (mmar / "custom" / "calls.jsonl").read_text().splitlines()]
    assert calls[0] == ["event", "start_automl", None]
    assert ["initial", 2] in calls
    events = [c[1] for c in calls if c[0] == "event"]
    for event in ("search_space_available", "recommendations_available", "start_job", "job_metrics", "end_job",
                  "round_ended", "end_automl", "shutdown"):
        assert event in events, event
    assert events.count("start_job") == events.count("end_job") == 2
    refined = {c[1]: c[2] for c in calls if c[0] == "refine"}
    ended = {f"W{j['worker']}_{j['worker_seq']}_J{j['number']}": j for j in _ended(mmar / "automl" / "b")}
    # score 0.1 reaches 0.033 at epoch 1 (< 0.1): pruned; the other completes despite the broken handler
    pruned = [n for n, j in ended.items() if j["state"] == "PRUNED"]
    assert len(pruned) == 1 and refined[pruned[0]] == "PRUNED"
    assert ended[pruned[0]]["recommendation"]["point"]["score"] == [0.1]
    assert "pruned at epoch 1" in ended[pruned[0]]["reason"]
    assert sorted(refined.values()) == ["COMPLETE", "PRUNED"]


def test_bad_input_exits_2_and_creates_nothing(tmp_path, light_env, capsys):
    mmar = write_mmar(tmp_path / "mmar", light_config())
    bad = light_config()
    bad["search"][0]["type"] = "floaty"
    (mmar / "config" / "config_train.json").write_text(json.dumps(bad))
    assert _run(mmar) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "config_train.json" in err[0]
    assert not (mmar / "automl").exists()
    (mmar / "config" / "config_train.json").write_text(json.dumps(light_config()))
    for args in (["--run-id", "../x"], ["--workers", "0:1"], ["--max-jobs", "0"], ["--set", "novalue"],
                 ["--automl-config", "missing.json"], ["--resume", "nope"]):
        assert _run(mmar, *args) == 2, args
        assert len(capsys.readouterr().err.strip().splitlines()) == 1
    assert not (mmar / "automl").exists()
    # MLflow on: a bare file store is refused before anything is created
    for uri in ("./mlruns", "file:///tmp/mlruns"):
        assert main(["run", str(mmar), "--workers", "cpu:cpu", "--tracking-uri", uri]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "bare file store" in err[0], err
    assert not (mmar / "automl").exists()


def test_resume_with_a_changed_dimension_is_refused(tmp_path, light_env, capsys):
    mmar = write_mmar(tmp_path / "mmar", light_config(scores=(0.1, 0.2)))
    assert _run(mmar, "--run-id", "c", "--max-jobs", "1") == 0
    (mmar / "config" / "config_train.json").write_text(json.dumps(light_config(scores=(0.1, 0.3))))
    capsys.readouterr()
    assert _run(mmar, "--resume", "c") == 2
    err = capsys.readouterr().err
    assert "'score' changed" in err and len(err.strip().splitlines()) == 1
    assert _run(mmar, "--run-id", "c") == 2  # an existing run id is never overwritten


# ------------------------------------------------------------------------------------------------------
# Process-level tests: the orchestrator is a real subprocess that we kill / interrupt.
# ------------------------------------------------------------------------------------------------------

def _orchestrator(mmar: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "mmar_automl", "run", str(mmar), *BASE, *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ))


def _marked_processes(run_dir: Path) -> list[int]:
    """Live processes of this run's jobs: working in one of its job folders, in the process group of a
    job pid the journal recorded, or carrying the run's marker in their environment (cold-started jobs)."""
    groups = set()
    try:
        for line in (run_dir / "journal.jsonl").read_text().splitlines():
            if '"op": "job_pid"' in line:
                groups.add(json.loads(line)["pid"])
    except (FileNotFoundError, ValueError):
        pass
    marker = f"MMAR_AUTOML_RUN_MARKER={run_dir}::".encode()
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            fields = (proc / "stat").read_text().split(")")[-1].split()
            if fields[0] == "Z":
                continue
            in_run = os.readlink(proc / "cwd").startswith(str(run_dir) + os.sep)
            if in_run or int(fields[2]) in groups or marker in (proc / "environ").read_bytes():
                found.append(int(proc.name))
        except (OSError, ValueError, IndexError):
            continue
    return found


def _children(pid: int) -> list[int]:
    out = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if int((proc / "stat").read_text().split(")")[-1].split()[1]) == pid:  # ppid
                    out.append(int(proc.name))
            except (OSError, ValueError, IndexError):
                pass
    return out


def _alive(pid: int) -> bool:
    try:
        return (Path(f"/proc/{pid}") / "stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def _wait_for(pred, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.1)
    return pred()


def _count_ops(run_dir: Path, op: str) -> int:
    try:
        return sum(1 for line in (run_dir / "journal.jsonl").read_text().splitlines() if f'"op": "{op}"' in line)
    except FileNotFoundError:
        return 0


@pytest.mark.parametrize("op,count,launcher", [("job_ended", 1, "--launcher"), ("job_ended", 3, "--launcher"),
                                               ("job_started", 5, "--launcher"), ("job_pid", 2, "--launcher"),
                                               ("job_pid", 3, "--no-launcher")])
def test_kill_9_then_resume_trains_each_point_once(tmp_path, light_env, op, count, launcher):
    scores = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6)
    mmar = write_mmar(tmp_path / "mmar", light_config(scores=scores, sleep=0.4, epochs=2))
    run_dir = mmar / "automl" / "k"
    orch = _orchestrator(mmar, "--run-id", "k", launcher)
    assert _wait_for(lambda: _count_ops(run_dir, op) >= count, 60)
    helpers = _children(orch.pid)
    orch.kill()
    orch.wait()
    assert _wait_for(lambda: not _marked_processes(run_dir), 15), "a job outlived its orchestrator"
    assert _wait_for(lambda: not any(_alive(p) for p in helpers), 15), "the launcher outlived its orchestrator"
    assert main(["run", str(mmar), *BASE, "--resume", "k"]) == 0
    events = journal(run_dir)
    complete = Counter(e["job"]["recommendation"]["point"]["score"][0] for e in events
                       if e["op"] == "job_ended" and e["job"]["state"] == "COMPLETE")
    assert complete == Counter(scores)  # every point completed exactly once
    ends = Counter(x["score"] for x in ledger_lines(light_env) if x["event"] == "end")
    assert ends == Counter(scores)  # and was trained to the end exactly once
    for e in events:
        if e["op"] == "job_ended" and e["job"]["state"] == "ABORTED":
            retried = [x for x in events if x["op"] == "job_started" and x["job"]["retry_of"] == e["job"]["job_uid"]]
            assert len(retried) == 1 and retried[0]["job"]["folder"] != e["job"]["folder"]
    assert sum(1 for e in events if e["op"] == "resumed") == 1
    assert not _marked_processes(run_dir)


@pytest.mark.parametrize("launcher", ["--launcher", "--no-launcher"])
def test_sigint_stops_jobs_and_leaves_no_process(tmp_path, light_env, launcher):
    mmar = write_mmar(tmp_path / "mmar", light_config(scores=(0.1, 0.2, 0.3), sleep=30, epochs=2))
    run_dir = mmar / "automl" / "i"
    orch = _orchestrator(mmar, "--run-id", "i", launcher)
    assert _wait_for(lambda: _count_ops(run_dir, "job_pid") >= 2 and len(_marked_processes(run_dir)) >= 2, 60)
    helpers = _children(orch.pid)  # the launcher (zygote) when there is one
    assert helpers or launcher == "--no-launcher"
    t0 = time.monotonic()
    orch.send_signal(signal.SIGINT)
    out, err = orch.communicate(timeout=30)
    assert orch.returncode == 130, err
    assert _wait_for(lambda: not any(_alive(p) for p in helpers), 10)
    assert time.monotonic() - t0 < 15
    assert "--resume i" in err
    assert not _marked_processes(run_dir)
    events = journal(run_dir)
    assert events[-1]["op"] == "run_ended" and events[-1]["exit_code"] == 130
    aborted = [e["job"] for e in events if e["op"] == "job_ended"]
    assert len(aborted) == 2 and all(j["state"] == "ABORTED" for j in aborted)


NONDET = '''
import random
from mmar_automl.controllers.grid import GridController

class Shuffled(GridController):
    """Not deterministic given its seed: resume must notice."""
    def initial_recommendation(self, ctx):
        recs = super().initial_recommendation(ctx)
        random.shuffle(recs)
        return [self.__class__._renumber(r, i) for i, r in enumerate(recs)]
    @staticmethod
    def _renumber(rec, i):
        from mmar_automl.recommendation import Recommendation
        return Recommendation(i, rec.point, rec.meta)
'''


def test_resume_refuses_a_nondeterministic_controller(tmp_path, light_env, capsys):
    automl = {"controller": {"path": "nondet.Shuffled"}}
    mmar = write_mmar(tmp_path / "mmar", light_config(scores=tuple(i / 10 for i in range(1, 9))), automl=automl)
    (mmar / "custom").mkdir()
    (mmar / "custom" / "nondet.py").write_text(NONDET)
    assert _run(mmar, "--run-id", "n", "--max-jobs", "1") == 0
    capsys.readouterr()
    codes = {_run(mmar, "--resume", "n") for _ in range(3)}  # 1 in 40320 that a shuffle repeats
    assert codes == {2}
    err = capsys.readouterr().err
    assert "not deterministic" in err and "journal.jsonl" in err
    assert len(err.strip().splitlines()) == 3  # one line per refused resume


def test_a_job_that_finished_while_the_orchestrator_was_down_is_not_rerun(tmp_path, light_env):
    mmar = write_mmar(tmp_path / "mmar", light_config(scores=(0.1, 0.2)),
                      automl={"controller": {"name": "GridController"}, "handlers": [{"name": "MMARHandler"}]})
    assert _run(mmar, "--run-id", "d", "--workers", "1") == 0
    (mmar / "automl" / "d" / "best" / "best.json").unlink()  # as if it died before best/ was written
    run_dir = mmar / "automl" / "d"
    # Cut the journal just after the second job's pid: as if the orchestrator died while it ran.
    lines = (run_dir / "journal.jsonl").read_text().splitlines()
    last_pid = max(i for i, line in enumerate(lines) if '"op": "job_pid"' in line)
    (run_dir / "journal.jsonl").write_text("\n".join(lines[: last_pid + 1]) + "\n")
    assert _run(mmar, "--resume", "d", "--workers", "1") == 0
    ended = _ended(run_dir)
    assert [(j["number"], j["state"], j["score"]) for j in ended] == [(1, "COMPLETE", 0.1), (2, "COMPLETE", 0.2)]
    assert "finished while the orchestrator was down" in ended[1]["reason"]
    assert len([x for x in ledger_lines(light_env) if x["event"] == "end"]) == 2  # nothing trained twice
    assert json.loads((run_dir / "best" / "best.json").read_text())["job"] == "W1_2_J2"
    # resuming a finished run does nothing
    assert _run(mmar, "--resume", "d", "--workers", "1") == 0
    assert len(_ended(run_dir)) == 2


def test_time_limit_aborts_and_resume_finishes(tmp_path, light_env):
    mmar = write_mmar(tmp_path / "mmar", light_config(scores=(0.1, 0.2), sleep=2, epochs=2))
    assert _run(mmar, "--run-id", "t", "--time-limit", "1") == 0
    run_dir = mmar / "automl" / "t"
    assert [j["state"] for j in _ended(run_dir)] == ["ABORTED", "ABORTED"]
    assert journal(run_dir)[-1]["reason"] == "time limit 1 s"
    assert _run(mmar, "--resume", "t") == 0
    ended = _ended(run_dir)
    assert [j["state"] for j in ended[2:]] == ["COMPLETE", "COMPLETE"]
    assert {j["retry_of"] for j in ended[2:]} == {j["job_uid"] for j in ended[:2]}


def test_live_console_renders(tmp_path, light_env):
    import io

    from rich.console import Console

    from mmar_automl.handlers.console import ConsoleHandler
    from mmar_automl.run.setup import RunOptions, prepare_run

    mmar = write_mmar(tmp_path / "mmar", light_config(scores=(0.1, 0.2)))
    prepared = prepare_run(RunOptions(mmar=str(mmar), workers="cpu:cpu", no_mlflow=True, run_id="live"))
    buf = io.StringIO()
    prepared.engine.handlers = [ConsoleHandler(live=True, console=Console(file=buf, force_terminal=True, width=120, highlight=False, markup=False))]
    assert prepared.engine.run().exit_code == 0
    text = buf.getvalue()
    for piece in ("workers", "finished jobs", "best: W2_1_J2 0.2000", "2/2 jobs finished"):
        assert piece in text, piece


def test_set_overrides_reach_the_job_and_stick_on_resume(tmp_path, light_env, capsys):
    """--set values are written into each job folder's config and environment.json (the folder
    reproduces the job by itself; no --set in the job's argv), journaled, and reused by --resume."""
    mmar = write_mmar(tmp_path / "mmar", light_config(scores=(0.1, 0.2)))
    assert _run(mmar, "--set", "score=0.9") == 2  # a searched key cannot be fixed
    assert "searched" in capsys.readouterr().err
    assert _run(mmar, "--run-id", "s", "--set", "DATA_ROOT=data", "epochs=3", "--max-jobs", "1") == 0
    run_dir = mmar / "automl" / "s"

    def job_files(name):
        folder = run_dir / name
        return (json.loads((folder / "models" / "env.json").read_text())["argv"],
                json.loads((folder / "config" / "config_train.json").read_text()),
                json.loads((folder / "config" / "environment.json").read_text()))

    argv, config, env = job_files("W1_1_J1")
    assert argv[1:] == ["--config", "config/config_train.json"]
    assert config["epochs"] == 3 and env["DATA_ROOT"] == str((mmar / "data").resolve())
    assert _run(mmar, "--resume", "s", "--set", "epochs=4") == 2
    assert _run(mmar, "--resume", "s", "--max-jobs", "2") == 0
    argv, config, env = job_files("W1_2_J2")
    assert argv[1:] == ["--config", "config/config_train.json"]
    assert config["epochs"] == 3 and env["DATA_ROOT"] == str((mmar / "data").resolve())


def test_a_run_that_died_before_its_first_event_can_start_again(tmp_path, light_env, capsys):
    mmar = write_mmar(tmp_path / "mmar", light_config(scores=(0.1,)))
    (mmar / "automl" / "e").mkdir(parents=True)
    (mmar / "automl" / "e" / "launcher.log").write_text("")
    assert _run(mmar, "--resume", "e") == 2
    assert "never started: use --run-id e" in capsys.readouterr().err
    assert _run(mmar, "--run-id", "e") == 0


@pytest.mark.slow
def test_repeated_kill_9_at_random_moments(tmp_path, light_env):
    """Kill the orchestrator at seeded random moments, several sessions in a row (resumes killed too),
    then let a last resume finish: every point completed once and trained to the end once."""
    import random

    rng = random.Random(int(os.environ.get("RUN_KILL_SEED", "4")))
    scores = tuple(round(0.05 * i, 2) for i in range(1, 11))
    mmar = write_mmar(tmp_path / "mmar", light_config(scores=scores, sleep=0.15, epochs=2))
    run_dir = mmar / "automl" / "rk"
    args = ["--run-id", "rk"]
    for _ in range(5):
        orch = _orchestrator(mmar, *args)
        time.sleep(rng.uniform(0.8, 3.0))  # interpreter start-up is ~1 s of this
        orch.kill()
        orch.wait()
        assert _wait_for(lambda: not _marked_processes(run_dir), 15), "a job outlived its orchestrator"
        if (run_dir / "journal.jsonl").exists() and (run_dir / "journal.jsonl").stat().st_size:
            args = ["--resume", "rk"]
    assert main(["run", str(mmar), *BASE, *args]) == 0
    events = journal(run_dir)
    complete = Counter(e["job"]["recommendation"]["point"]["score"][0] for e in events
                       if e["op"] == "job_ended" and e["job"]["state"] == "COMPLETE")
    assert complete == Counter(scores)
    ends = Counter(x["score"] for x in ledger_lines(light_env) if x["event"] == "end")
    assert ends == Counter(scores)
    assert not _marked_processes(run_dir)


def test_second_ctrl_c_kills_jobs_that_ignore_sigterm(tmp_path, light_env):
    mmar = write_mmar(tmp_path / "mmar", light_config(scores=(0.1, 0.2), modes=["stubborn"]))
    run_dir = mmar / "automl" / "s2"
    orch = _orchestrator(mmar, "--run-id", "s2")
    assert _wait_for(lambda: len([x for x in ledger_lines(light_env) if x["event"] == "start"]) >= 2, 60)
    orch.send_signal(signal.SIGINT)
    time.sleep(1.0)
    assert orch.poll() is None  # the jobs ignore SIGTERM: it waits (up to 10 s) ...
    t0 = time.monotonic()
    orch.send_signal(signal.SIGINT)  # ... unless Ctrl-C comes again
    orch.communicate(timeout=30)
    assert orch.returncode == 130 and time.monotonic() - t0 < 5
    assert not _marked_processes(run_dir)
    assert [e["job"]["state"] for e in journal(run_dir) if e["op"] == "job_ended"] == ["ABORTED", "ABORTED"]


def test_journal_format_v1_still_loads():
    """A journal written by format version 1 (frozen in assets/) must keep loading."""
    from mmar_automl.run.journal import load_run_state

    state = load_run_state(Path(__file__).parent / "assets" / "journal_v1.jsonl")
    assert state.header["version"] == 1 and state.header["run_id"] == "r1"
    assert [o.score for o in state.told] == [0.1, 0.2, 0.3, 0.4]
    assert state.pending_rec_ids() == [] and state.ended["exit_code"] == 0


def test_ctrl_c_while_the_launcher_warms_up(tmp_path, light_env, monkeypatch):
    """A slow preload (the real one takes 15-40 s): Ctrl-C must not wait for it."""
    monkeypatch.setenv("MMAR_AUTOML_JOB_PRELOAD", "lightjobs:slow_preload")
    mmar = write_mmar(tmp_path / "mmar", light_config(scores=(0.1, 0.2)))
    run_dir = mmar / "automl" / "w"
    orch = _orchestrator(mmar, "--run-id", "w")
    assert _wait_for(lambda: _count_ops(run_dir, "job_started") >= 1, 60)
    t0 = time.monotonic()
    orch.send_signal(signal.SIGINT)
    orch.communicate(timeout=60)
    assert orch.returncode == 130 and time.monotonic() - t0 < 10
    ended = [e["job"] for e in journal(run_dir) if e["op"] == "job_ended"]
    assert ended and all(j["state"] == "ABORTED" for j in ended)
    assert len(ended) == 1  # only the job that waited: the rest of the queue starts nothing
    assert [p.name for p in run_dir.iterdir() if p.name.startswith("W")] == [ended[0]["folder"].rsplit("/", 1)[-1]]
    assert not ledger_lines(light_env)  # nothing ran


def test_a_controller_that_rejects_the_space_fails_before_anything_is_written(tmp_path, light_env, capsys):
    code = ("from mmar_automl.controllers.grid import GridController\n"
            "class FloatsOnly(GridController):\n"
            "    def set_search_space(self, space, ctx):\n"
            "        if not space.continuous:\n"
            "            raise ValueError('needs a float dimension')\n"
            "        super().set_search_space(space, ctx)\n")
    mmar = write_mmar(tmp_path / "mmar", light_config(), automl={"controller": {"path": "floatsonly.FloatsOnly"}})
    (mmar / "custom").mkdir()
    (mmar / "custom" / "floatsonly.py").write_text(code)
    assert _run(mmar) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "config_automl.json: controller: FloatsOnly cannot search this space" in err[0]
    assert not (mmar / "automl").exists()


def test_the_search_survives_a_dead_launcher(tmp_path, light_env):
    """The zygote is SIGKILLed while jobs run: those jobs still end with their scores (read from their
    folders), later jobs start cold, then from a restarted zygote."""
    from mmar_automl.handlers.base import Handler
    from mmar_automl.run.setup import RunOptions, prepare_run

    mmar = write_mmar(tmp_path / "mmar", light_config(scores=(0.1, 0.2, 0.3, 0.4, 0.5, 0.6), sleep=0.3))
    prepared = prepare_run(RunOptions(mmar=str(mmar), workers="cpu:cpu", no_mlflow=True, run_id="z"))
    backend = prepared.engine.executor.backend

    class KillLauncher(Handler):
        done = False

        def job_metrics(self, ctx):
            if not self.done:
                self.done = True
                os.kill(backend.launcher.proc.pid, signal.SIGKILL)

    prepared.engine.handlers.append(KillLauncher())
    result = prepared.engine.run()
    assert result.exit_code == 0, [(j.name, j.state, j.reason) for j in result.jobs]
    assert sorted(j.score for j in result.jobs) == [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]
    vias = [e["via"] for e in journal(mmar / "automl" / "z") if e["op"] == "job_pid"]
    assert vias[:2] == ["launcher", "launcher"] and "cold" in vias
    assert not _marked_processes(mmar / "automl" / "z")


CHAIN = '''
from mmar_automl.controllers.base import Controller

class Chain(Controller):
    """One point at a time: each outcome brings the next score, up to 4 jobs."""
    def initial_recommendation(self, ctx):
        return [self._recommend({"score": [0.1]})]
    def refine_recommendation(self, outcome, ctx):
        nxt = round(outcome.recommendation.point["score"][0] + 0.1, 1)
        return [self._recommend({"score": [nxt]})] if nxt <= 0.4 else []
'''


def test_resume_after_a_job_finished_while_down_queues_its_successor_once(tmp_path, light_env):
    config = light_config(scores=(0.1, 0.2, 0.3, 0.4))
    mmar = write_mmar(tmp_path / "mmar", config, automl={"controller": {"path": "chain.Chain"}})
    (mmar / "custom").mkdir()
    (mmar / "custom" / "chain.py").write_text(CHAIN)
    assert _run(mmar, "--run-id", "c") == 0
    run_dir = mmar / "automl" / "c"
    lines = (run_dir / "journal.jsonl").read_text().splitlines()
    second_pid = [i for i, line in enumerate(lines) if '"op": "job_pid"' in line][1]
    (run_dir / "journal.jsonl").write_text("\n".join(lines[: second_pid + 1]) + "\n")
    # folders of J3/J4 are left on disk: the journal never saw them, so they are moved aside, not reused
    ended_before = len([x for x in ledger_lines(light_env) if x["event"] == "end"])
    assert _run(mmar, "--resume", "c") == 0
    complete = Counter(e["job"]["recommendation"]["point"]["score"][0] for e in journal(run_dir)
                       if e["op"] == "job_ended" and e["job"]["state"] == "COMPLETE")
    assert complete == Counter([0.1, 0.2, 0.3, 0.4])
    # the resume trained only 0.3 and 0.4 (0.2 had finished while "down")
    assert len([x for x in ledger_lines(light_env) if x["event"] == "end"]) == ended_before + 2
    assert any(p.name.startswith(".W") and ".stale." in p.name for p in run_dir.iterdir())


def test_default_controller_without_config_automl():
    from mmar_automl.run.setup import default_controller
    from mmar_automl.search.space import EnumDimension, FloatDimension, SearchSpace

    enum = EnumDimension("net.enum.$0:a", "a", "net", ("a",), ((1,), (2,)))
    flt = FloatDimension("lr.float.$1:b", "b", "lr", ("b",), 0.0, 1.0)
    assert default_controller(SearchSpace((enum,)))["name"] == "GridController"
    mixed = default_controller(SearchSpace((enum, flt)))
    assert mixed["name"] == "OptunaController" and mixed["args"]["sampler"] == "tpe"
    assert mixed["args"]["n_trials"] == 30


def test_controller_arg_errors_name_the_automl_file_actually_read(tmp_path, light_env, capsys):
    mmar = write_mmar(tmp_path / "mmar", light_config())
    other = tmp_path / "elsewhere.json"
    other.write_text(json.dumps({"controller": {"name": "OptunaController", "args": {"sampler": "bayes"}}}))
    assert _run(mmar, "--automl-config", str(other)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {other}: controller.args.sampler:"), err
    assert not (mmar / "automl").exists()


@pytest.mark.parametrize("command", ["run", "train", "validate"])
def test_an_unknown_set_key_is_one_line_with_a_suggestion_and_creates_nothing(tmp_path, light_env, capsys, command):
    """One parser and one key check for run, train and validate: `--set epoch=2` when the config has
    `epochs` is exit 2 naming the key and suggesting the right one, before anything is written."""
    mmar = write_mmar(tmp_path / "mmar", light_config())
    extra = BASE if command == "run" else []
    assert main([command, str(mmar), *extra, "--set", "epochs=2", "epoch=2"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: --set epoch: not a key of ")
    assert "config_train.json or environment.json (did you mean 'epochs'?)" in err[0]
    assert main([command, str(mmar), *extra, "--set", "train.model.args.chanels=[1]", "--set", "train.modl.x=1"]) == 2
    assert "train.modl: --set train.modl.x: no such key in the config (did you mean 'model'?)" in capsys.readouterr().err
    if command != "train":  # train runs one point: there, a searched key is just a value
        assert main([command, str(mmar), *extra, "--set", "mode=ok", "score=0.5"]) == 2
        assert "--set score: this key is searched" in capsys.readouterr().err
    assert not (mmar / "automl").exists() and not (mmar / "models" / "train_stats.json").exists()


def test_clara_run_keys_and_several_pairs_after_one_set(tmp_path, light_env, capsys, caplog):
    """Clara's automl.sh passes `--set run_id=a trainconf=config_train.json workers=0:1 traceout=both`:
    they become --run-id, --train-config (relative to config/) and --workers; traceout says it does nothing."""
    mmar = write_mmar(tmp_path / "mmar", light_config(scores=(0.1, 0.2)))
    other = light_config(scores=(0.7, 0.8))
    (mmar / "config" / "other_train.json").write_text(json.dumps(other))
    assert main(["run", str(mmar), "--no-mlflow", "--seed", "1", "--set", "run_id=clara", "trainconf=other_train.json",
                 "workers=cpu:cpu", "traceout=both", "epochs=1", "--set", "sleep=0.01"]) == 0
    run_dir = mmar / "automl" / "clara"
    ended = _ended(run_dir)
    assert sorted(j["score"] for j in ended) == [0.7, 0.8] and {j["worker"] for j in ended} <= {1, 2}
    header = journal(run_dir)[0]
    assert header["overrides"] == {"epochs": 1, "sleep": 0.01} and header["train_config"] == "config/other_train.json"
    assert any("traceout=both: has no effect" in r.getMessage() for r in caplog.records)
    for job in run_dir.glob("W*"):
        config = json.loads((job / "config" / "config_train.json").read_text())
        assert config["epochs"] == 1 and config["sleep"] == 0.01 and "run_id" not in config
    assert main(["run", str(mmar), *BASE, "--run-id", "x", "--set", "run_id=y"]) == 2
    assert "--set run_id=y and --run-id x differ" in capsys.readouterr().err
