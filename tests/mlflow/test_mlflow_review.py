"""Regression tests from the review of issue 6, fast (MLflow unreachable: a closed port, no server)."""

from __future__ import annotations

import json

from mlflow_jobs import end, fire, start

from mmar_automl.context import ContextKey
from mmar_automl.recommendation import JobState
from mmar_automl.tracking.spool import Spool
from mmar_automl.tracking.sync import MlflowSink
from mmar_automl.tracking.writer import TrackingWriter

DEAD = "http://127.0.0.1:9"  # nothing listens: every request is refused at once


def test_best_job_is_the_engines_best_whatever_order_jobs_end_in(jobs):
    """Ties go to the lower job number and only COMPLETE jobs count, as in the engine, the report and
    export-best: the parent's best_job tag and the model logged for `--log-models best` name the job
    that export-best exports (a tiny search often ties at 1.0, and job 2 may end before job 1)."""
    from mmar_automl.handlers.mlflow import MLflowHandler

    handler = MLflowHandler(flush_timeout=1, retry_interval=0.05)
    ctx = jobs.ctx(tracking_uri=DEAD)
    fire(handler, ctx, "start_automl")
    first, second = jobs.job(1, score=1.0), jobs.job(2, score=1.0)
    pruned = jobs.job(3, score=2.0, state=JobState.PRUNED)
    for job in (first, second, pruned):
        start(handler, ctx, job)
    for job in (second, first, pruned):  # job 2 ends first
        end(handler, ctx, job)
    assert handler._state["best"]["job"] == first.name
    fire(handler, ctx, "end_automl")
    assert json.loads((jobs.run_dir / "mlflow.json").read_text())["best"]["job_uid"] == first.job_uid
    model_ops = [op for op in Spool.in_run_dir(jobs.run_dir).pending() if op["op"] == "pytorch_model"]
    assert [op["uid"] for op in model_ops] == [f"job:{first.job_uid}"]


class CountingSink:
    """A real MlflowSink to a closed port, counting the send attempts."""

    def __init__(self):
        self.sink = MlflowSink(DEAD, "e")
        self.attempts = 0

    def apply(self, ops):
        self.attempts += 1
        self.sink.apply(ops)


def test_close_does_not_wait_out_the_timeout_for_a_dead_server(tmp_path):
    """With MLflow down, closing makes one more attempt (two if it was not yet known to be down) and
    leaves the rest in the spool, instead of retrying until the flush timeout ends the search late."""
    sinks: list[CountingSink] = []

    def factory():
        sinks.append(CountingSink())
        return sinks[-1]

    spool = Spool(tmp_path / "spool.jsonl")
    assert spool.try_lock()
    writer = TrackingWriter(spool, factory, batch_wait=0.01, retry_interval=0.05)
    writer.start()
    for i in range(3):
        writer.submit({"op": "open_run", "uid": f"job:{i}", "name": f"J{i}", "parent": None})
    before = sum(s.attempts for s in sinks)
    left = writer.close(timeout=20)  # without the fix: an attempt every 0.05 s for 20 s
    assert left == 3
    assert len(Spool(tmp_path / "spool.jsonl").pending()) == 3
    assert sum(s.attempts for s in sinks) - before <= 2


def test_new_sqlite_store_is_created_quietly(tmp_path):
    """Creating the embedded store prints none of MLflow's INFO lines on the search's console."""
    import subprocess
    import sys

    db = tmp_path / "automl" / "mlflow.db"
    code = f"from mmar_automl.tracking.uri import prepare_store; prepare_store('sqlite:///{db}')"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert db.is_file() and db.stat().st_size > 0
    assert "database tables" not in out.stderr + out.stdout, out.stderr


def test_sync_refuses_a_bare_file_store_in_one_line(tmp_path, capsys):
    """`sync --tracking-uri ./mlruns` is bad input (exit 2, one line, spool kept), as for `run`; it was
    an MLflow traceback message and exit 1 (or a file store written, with MLFLOW_ALLOW_FILE_STORE)."""
    from mmar_automl.cli import main

    run_dir = tmp_path / "automl" / "r1"
    run_dir.mkdir(parents=True)
    (run_dir / "mlflow.json").write_text(json.dumps({"run_uid": "u", "tracking_uri": DEAD, "experiment": "e"}))
    Spool.in_run_dir(run_dir).append([{"op": "open_run", "uid": "run:u", "name": "r1", "parent": None}])
    assert main(["sync", str(tmp_path), "r1", "--tracking-uri", str(tmp_path / "mlruns")]) == 2
    err = capsys.readouterr().err
    assert "--tracking-uri" in err and "bare file store" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "mlruns").exists()
    assert len(Spool.in_run_dir(run_dir).pending()) == 1


def test_resume_takes_the_best_from_jobs_that_ended_while_the_orchestrator_was_down(jobs):
    """Such jobs get no end_job event (the engine settles them quietly and passes them as PREVIOUS_JOBS):
    the best job and the model logged must still be theirs when they scored highest."""
    from mmar_automl.handlers.mlflow import MLflowHandler

    first, settled = jobs.job(1, score=0.5), jobs.job(2, score=0.9)
    handler = MLflowHandler(flush_timeout=1, retry_interval=0.05)
    ctx = jobs.ctx(tracking_uri=DEAD)
    fire(handler, ctx, "start_automl")
    start(handler, ctx, first)
    start(handler, ctx, settled)
    end(handler, ctx, first)
    handler._close()  # kill -9 here: job 2 finishes meanwhile

    settled.state, settled.score, settled.ended_at = JobState.COMPLETE, 0.9, settled.started_at + 1
    first.state = JobState.COMPLETE
    resumed = MLflowHandler(flush_timeout=1, retry_interval=0.05)
    ctx = jobs.ctx(tracking_uri=DEAD, resume=True)
    ctx.set_prop(ContextKey.PREVIOUS_JOBS, [first, settled])
    fire(resumed, ctx, "start_automl")
    fire(resumed, ctx, "end_automl")
    assert json.loads((jobs.run_dir / "mlflow.json").read_text())["best"]["job_uid"] == settled.job_uid
    model_ops = [op for op in Spool.in_run_dir(jobs.run_dir).pending() if op["op"] == "pytorch_model"]
    assert [op["uid"] for op in model_ops] == [f"job:{settled.job_uid}"]


def _descriptions(run_dir) -> dict[str, str]:
    """job uid -> the last description queued for its MLflow run."""
    out = {}
    for op in Spool.in_run_dir(run_dir).pending():
        text = (op.get("tags") or {}).get("mlflow.note.content")
        if text and str(op.get("uid", "")).startswith("job:"):
            out[op["uid"][4:]] = text
    return out


def test_a_retry_names_the_job_it_re_runs(jobs):
    """Review of issue 16: a retry's MLflow description read 're-runs a09b64e254f24874', a uid the UI
    shows nowhere; it names the job (W1_1_J1), also when that job ran before a resume."""
    from mmar_automl.handlers.mlflow import MLflowHandler

    handler = MLflowHandler(flush_timeout=1, retry_interval=0.05)
    ctx = jobs.ctx(tracking_uri=DEAD)
    earlier = jobs.job(1, state=JobState.ABORTED)       # interrupted in an earlier session
    earlier.state = JobState.ABORTED
    fire(handler, ctx, "start_automl", PREVIOUS_JOBS=[earlier])
    failed = jobs.job(2, state=JobState.FAILED)
    start(handler, ctx, failed)
    end(handler, ctx, failed)
    retries = []
    for number, of in ((3, earlier), (4, failed)):
        retry = jobs.job(number, point_value=dict(of.recommendation.point))
        retry.attempt, retry.retry_of = 1, of.job_uid
        start(handler, ctx, retry)
        end(handler, ctx, retry)
        retries.append(retry)
    fire(handler, ctx, "end_automl")  # the queued writes reach the spool
    texts = _descriptions(jobs.run_dir)
    assert "attempt 2 (re-runs W1_1_J1)" in texts[retries[0].job_uid]
    assert "attempt 2 (re-runs W1_2_J2)" in texts[retries[1].job_uid]


def test_a_bundle_jobs_fixed_keys_are_params_and_its_epochs_are_shown(tmp_path):
    """Review of issue 16 after the bundle merge (issue 15): a bundle job's concrete config is
    configs/train.json, but MLflow and the live view read config/config_train.json, so a bundle child had
    no fixed params (its epochs, val_interval) and the live view no epoch total."""
    import io

    from rich.console import Console

    from mlflow_jobs import JobFactory
    from mmar_automl.handlers.console import ConsoleHandler
    from mmar_automl.handlers.mlflow import MLflowHandler

    jobs = JobFactory(tmp_path / "bundle")
    handler = MLflowHandler(flush_timeout=1, retry_interval=0.05)
    ctx = jobs.ctx(tracking_uri=DEAD)
    fire(handler, ctx, "start_automl")
    job = jobs.job(1)
    folder = tmp_path / "bundle" / "automl" / jobs.run_id / job.name
    (folder / "config" / "config_train.json").unlink()
    (folder / "configs").mkdir()
    (folder / "configs" / "train.json").write_text(json.dumps({
        "imports": ["$import json"], "bundle_root": ".", "ckpt_dir": "$@bundle_root + '/models'",
        "epochs": 4, "val_interval": 2, "learning_rate": 1e-4, "network_def": {"_target_": "UNet"}}))
    start(handler, ctx, job)
    fire(handler, ctx, "end_automl")
    params = {}
    for op in Spool.in_run_dir(jobs.run_dir).pending():
        if op["op"] == "open_run" and op["uid"] == f"job:{job.job_uid}":
            params.update(op.get("params") or {})
    assert params.get("epochs") == "4" and params.get("val_interval") == "2" and params.get("bundle_root") == "."
    assert "imports" not in params and "ckpt_dir" not in params    # bundle code and references are no values
    console = ConsoleHandler(live=False, console=Console(file=io.StringIO(), markup=False))
    assert console._epochs(job) == 4
