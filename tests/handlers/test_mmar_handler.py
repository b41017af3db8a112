"""MMARHandler housekeeping: best/ and num_mmars_to_keep over jobs of every state."""

from __future__ import annotations

import json
from pathlib import Path

from mmar_automl.context import Context, ContextKey
from mmar_automl.handlers.mmar import MMARHandler
from mmar_automl.run.job import JobRecord
from mmar_automl.recommendation import JobState, Recommendation


def _job(run_dir: Path, number: int, state: JobState, score: float | None) -> JobRecord:
    folder = run_dir / f"W1_{number}_J{number}"
    (folder / "config").mkdir(parents=True)
    (folder / "config" / "config_train.json").write_text("{}")
    (folder / "models").mkdir()
    (folder / "models" / "model.pt").write_bytes(b"weights")
    (folder / "models" / "metrics.jsonl").write_text("")
    return JobRecord(job_uid=f"u{number}", number=number, worker=1, worker_seq=number, folder=str(folder),
                     recommendation=Recommendation(number - 1, {"x": [number]}), state=state, score=score,
                     started_at=1.0, ended_at=2.0)


def test_only_the_best_n_jobs_keep_a_model_whatever_the_state_of_the_others(tmp_path):
    handler = MMARHandler(num_mmars_to_keep=1)
    ctx = Context()
    ctx.set_prop(ContextKey.RUN_DIR, str(tmp_path))
    jobs = [_job(tmp_path, 1, JobState.COMPLETE, 0.3), _job(tmp_path, 2, JobState.PRUNED, None),
            _job(tmp_path, 3, JobState.TIMED_OUT, None), _job(tmp_path, 4, JobState.COMPLETE, 0.5),
            _job(tmp_path, 5, JobState.FAILED, None)]
    for job in jobs:
        ctx.set_prop(ContextKey.JOB, job)
        handler.end_job(ctx)
    kept = [j.name for j in jobs if (Path(j.folder) / "models" / "model.pt").exists()]
    assert kept == ["W1_4_J4"]
    assert all((Path(j.folder) / "models" / "metrics.jsonl").exists() for j in jobs)  # metrics stay
    assert json.loads((tmp_path / "best" / "best.json").read_text())["job"] == "W1_4_J4"
    assert (tmp_path / "best" / "models" / "model.pt").exists()


def test_resume_catches_best_up_with_a_job_that_ended_while_the_orchestrator_was_down(tmp_path):
    """best/ names its job in best.json (read_best_info, also read by export-best): on resume the handler
    rewrites best/ when the journal's best job is another one, and leaves it when it is the same."""
    from mmar_automl.handlers.mmar import read_best_info, write_best

    assert read_best_info(tmp_path) is None
    first, second = _job(tmp_path, 1, JobState.COMPLETE, 0.3), _job(tmp_path, 2, JobState.COMPLETE, 0.6)
    write_best(tmp_path, first)
    assert read_best_info(tmp_path)["job_uid"] == "u1"
    ctx = Context()
    ctx.set_prop(ContextKey.RUN_DIR, str(tmp_path))
    ctx.set_prop(ContextKey.PREVIOUS_JOBS, [first, second])
    MMARHandler().start_automl(ctx)
    assert read_best_info(tmp_path)["job_uid"] == "u2" and (tmp_path / "best" / "models" / "model.pt").is_file()
    stamp = (tmp_path / "best" / "best.json").stat().st_mtime_ns
    MMARHandler().start_automl(ctx)
    assert (tmp_path / "best" / "best.json").stat().st_mtime_ns == stamp  # the same job: not rewritten
    (tmp_path / "best" / "best.json").write_text("not json")
    assert read_best_info(tmp_path) is None
