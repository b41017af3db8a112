"""MMARExecutor on its own: Clara's blocking execute(), scoring rules, metrics following."""

from __future__ import annotations

import json
import signal

import pytest

from conftest import light_config, write_mmar
from mmar_automl.context import Context, ContextKey
from mmar_automl.backends.local import LocalBackend
from mmar_automl.backends.protocol import UNKNOWN_EXIT
from mmar_automl.run.executor import MMARExecutor, judge
from mmar_automl.run.outputs import MetricsFollower
from mmar_automl.run.job import JobRecord
from mmar_automl.recommendation import JobState, Recommendation
from mmar_automl.config.mmar import Mmar


def test_judge():
    ok = {"best_validation_metric": 0.8, "status": "complete"}
    assert judge(0, ok, "") == (JobState.COMPLETE, 0.8, None)
    assert judge(0, {"best_validation_metric": None, "status": "complete"}, "")[:2] == (JobState.COMPLETE, None)
    assert judge(0, None, "")[0] is JobState.FAILED
    assert judge(0, {"best_validation_metric": float("nan"), "status": "complete"}, "")[1] is None
    state, score, reason = judge(1, {"status": "failed", "reason": "NaN loss at epoch 3"}, "")
    assert (state, score) == (JobState.FAILED, None) and "NaN loss" in reason
    assert "SIGSEGV" in judge(-signal.SIGSEGV, None, "")[2]
    assert "CUDA out of memory" in judge(1, None, "line\nRuntimeError: CUDA out of memory\n")[2]
    assert judge(UNKNOWN_EXIT, ok, "")[0] is JobState.COMPLETE


def test_metrics_follower_waits_for_whole_lines(tmp_path):
    path = tmp_path / "metrics.jsonl"
    follower = MetricsFollower(path)
    assert follower.read_new() == []
    path.write_text('{"kind": "train", "epoch": 1}\n{"kind": "valid')
    assert follower.read_new() == [{"kind": "train", "epoch": 1}]
    with open(path, "a") as f:
        f.write('ation", "epoch": 1}\nnot json\n')
    assert follower.read_new() == [{"kind": "validation", "epoch": 1}]
    assert follower.read_new() == []


def test_clara_execute_returns_the_score(tmp_path, light_env):
    mmar = write_mmar(tmp_path / "mmar", light_config(scores=(0.3, 0.7)))
    executor = MMARExecutor(remove_search_augs=True, msg_destination="file")
    backend = LocalBackend(use_launcher=False)
    executor.configure(mmar=Mmar.open(mmar, overrides=["epochs=3"]), backend=backend)
    ctx = Context()
    space = executor.determine_search_space(ctx)  # Clara's executor reads the space from the train config
    assert [(d.name, d.type, d.choices) for d in space] == [("score", "enum", ((0.3,), (0.7,)))]
    executor.set_space(space)
    rec = Recommendation(0, {"score": [0.7]})
    job = JobRecord("u", 1, 1, 1, str(tmp_path / "run" / "W1_1_J1"), rec)
    ctx.set_prop(ContextKey.JOB, job)
    try:
        assert executor.execute(rec, ctx) == pytest.approx(0.7)
    finally:
        executor.shutdown(ctx)
    assert job.state is JobState.COMPLETE and job.exit_code == 0
    concrete = json.loads((tmp_path / "run" / "W1_1_J1" / "config" / "config_train.json").read_text())
    assert concrete["score"] == 0.7 and concrete["epochs"] == 3 and "search" not in concrete
