"""Journal: append, replay, torn tail, damaged lines, consistent state for resume."""

from __future__ import annotations

import json

import pytest

from mmar_automl.errors import JournalError
from mmar_automl.run.job import JobRecord
from mmar_automl.run.journal import JournalWriter, Op, load_run_state, read_events
from mmar_automl.recommendation import JobState, Recommendation


def _job(uid: str, number: int, rec: Recommendation, state: JobState = JobState.RUNNING, score=None) -> JobRecord:
    return JobRecord(uid, number, 1, number, f"/x/W1_{number}_J{number}", rec, state=state, score=score)


def _write_run(path):
    recs = [Recommendation(i, {"a": [i]}) for i in range(3)]
    w = JournalWriter(path)
    w.append(Op.RUN_STARTED, run_id="r", seed=3, space={"dimensions": []})
    w.append(Op.RECOMMENDED, after=None, recs=[r.to_json() for r in recs])
    w.append(Op.JOB_STARTED, job=_job("u1", 1, recs[0]).to_json())
    w.append(Op.JOB_PID, job_uid="u1", pid=123)
    w.append(Op.JOB_STARTED, job=_job("u2", 2, recs[1]).to_json())
    w.append(Op.JOB_ENDED, job=_job("u1", 1, recs[0], JobState.COMPLETE, 0.7).to_json(), told=True)
    w.append(Op.RECOMMENDED, after=0, recs=[])
    w.close()
    return recs


def test_replay_rebuilds_the_state(tmp_path):
    path = tmp_path / "journal.jsonl"
    _write_run(path)
    state = load_run_state(path)
    assert state.header["seed"] == 3
    assert [o.recommendation.rec_id for o in state.told] == [0]
    assert state.told[0].score == 0.7 and state.told[0].state is JobState.COMPLETE
    assert [j.job_uid for j in state.running()] == ["u2"]
    assert state.pending_rec_ids() == [1, 2]
    assert state.pids == {"u1": 123}
    assert state.next_job_number() == 3
    assert [after for after, _ in state.batches] == [None, 0]


def test_torn_last_line_is_skipped(tmp_path):
    path = tmp_path / "journal.jsonl"
    _write_run(path)
    with open(path, "a") as f:
        f.write('{"op": "job_ended", "job": {"job_u')  # the orchestrator died mid-write
    events = read_events(path)
    assert events[-1]["op"] == "recommended"
    assert load_run_state(path).pending_rec_ids() == [1, 2]


def test_bad_line_mid_file_names_file_and_line(tmp_path):
    path = tmp_path / "journal.jsonl"
    _write_run(path)
    lines = path.read_text().splitlines()
    lines[3] = "{not json"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(JournalError, match=r"journal.jsonl:4: damaged"):
        load_run_state(path)


def test_unknown_op_and_missing_header_are_errors(tmp_path):
    path = tmp_path / "journal.jsonl"
    path.write_text(json.dumps({"op": "recommended", "after": None, "recs": []}) + "\n")
    with pytest.raises(JournalError, match="no run_started"):
        load_run_state(path)
    path.write_text(json.dumps({"op": "bogus"}) + "\n" + json.dumps({"op": "run_ended"}) + "\n")
    with pytest.raises(JournalError, match=":1:"):
        load_run_state(path)


def test_missing_journal(tmp_path):
    with pytest.raises(JournalError, match="no journal"):
        load_run_state(tmp_path / "nope.jsonl")
