"""The engine on its own: built by its constructor with a fake backend (no processes), a real executor
writing real job folders, the real grid controller and journal. Each test runs in milliseconds."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from conftest import light_config, write_mmar
from mmar_automl.backends.protocol import Handle, JobSpec
from mmar_automl.context import ContextKey
from mmar_automl.controllers.grid import GridController
from mmar_automl.errors import JournalError, MmarAutomlError
from mmar_automl.handlers.base import Handler
from mmar_automl.recommendation import JobState
from mmar_automl.run import engine as engine_module
from mmar_automl.config.mmar import Mmar
from mmar_automl.run.engine import Engine, run_context
from mmar_automl.run.executor import MMARExecutor
from mmar_automl.run.journal import load_run_state
from mmar_automl.run.plan import Limits, RunPlan
from mmar_automl.run.workers import WorkerSpec
from mmar_automl.search import parse_search_space


class FakeBackend:
    """Jobs that end at their first poll (or never: "hang"), writing what a trainer writes. ``outcomes``:
    score -> the behaviour of each successive attempt ("ok", "fail", "hang", "prune_me"); default "ok"."""

    def __init__(self, outcomes: dict[float, list[str]] | None = None):
        self.outcomes = {k: list(v) for k, v in (outcomes or {}).items()}
        self.submitted: list[JobSpec] = []
        self.killed: dict[int, int] = {}
        self.exits: dict[int, int | None] = {}

    def start(self) -> None:
        pass

    def submit(self, spec: JobSpec) -> Handle:
        self.submitted.append(spec)
        pid = 100000 + len(self.submitted)
        score = json.loads((Path(spec.cwd) / "config" / "config_train.json").read_text())["score"]
        queue = self.outcomes.get(score) or []
        behaviour = queue.pop(0) if queue else "ok"
        models = Path(spec.cwd) / "models"
        models.mkdir(parents=True, exist_ok=True)
        if behaviour in ("ok", "prune_me"):
            with open(models / "metrics.jsonl", "w") as f:
                for epoch, value in ((1, score / 2), (2, score)):
                    f.write(json.dumps({"kind": "validation", "epoch": epoch, "key_metric": "dice",
                                        "metrics": {"dice": value}}) + "\n")
            (models / "train_stats.json").write_text(json.dumps(
                {"best_validation_metric": score, "status": "complete", "key_metric": "dice"}))
            self.exits[pid] = 0
        elif behaviour == "fail":
            Path(spec.log).write_text("Traceback ...\nRuntimeError: boom\n")
            self.exits[pid] = 1
        else:  # hang: ends only when killed
            self.exits[pid] = None
        return Handle(spec, pid, "fake")

    def poll(self, handle: Handle) -> int | None:
        if handle.pid in self.killed:
            return -self.killed[handle.pid]
        return self.exits[handle.pid]

    def kill(self, handle: Handle, sig: int) -> None:
        self.killed.setdefault(handle.pid, int(sig))

    def shutdown(self) -> None:
        pass


class Recorder(Handler):
    def __init__(self, on_end=None, on_start=None):
        self.events: list[str] = []
        self.on_end, self.on_start = on_end, on_start

    def handle_event(self, event, ctx):
        self.events.append(event)
        super().handle_event(event, ctx)

    def start_job(self, ctx):
        if self.on_start:
            self.on_start(ctx)

    def end_job(self, ctx):
        if self.on_end:
            self.on_end(ctx)


@pytest.fixture(autouse=True)
def fast_polls(monkeypatch):
    monkeypatch.setattr(engine_module, "POLL_S", 0.001)
    monkeypatch.setattr(engine_module, "FINISH_WAIT_S", 0.2)


def make_engine(root: Path, backend: FakeBackend, *, scores=(0.1, 0.2, 0.3, 0.4), workers: int = 1,
                handlers=(), state=None, controller=None, **limits) -> Engine:
    if not (root / "config").exists():
        write_mmar(root, light_config(scores=scores))
    mmar = Mmar.open(root)
    space = parse_search_space(mmar.train_config, "config/config_train.json")
    plan = RunPlan(run_id="t", run_dir=root / "automl" / "t", mmar_root=root, seed=1,
                   workers=tuple(WorkerSpec(i + 1) for i in range(workers)), limits=Limits(**limits),
                   resumed=state is not None)
    ctx = run_context(plan, space)
    controller = controller or GridController()
    controller.set_search_space(space, ctx)
    executor = MMARExecutor()
    executor.configure(mmar=mmar, backend=backend, run_marker=str(plan.run_dir), space=space)
    plan.run_dir.mkdir(parents=True, exist_ok=True)
    return Engine(plan=plan, space=space, controller=controller, executor=executor, handlers=list(handlers),
                  ctx=ctx, state=state, install_signals=False)


def names(result) -> list[tuple[str, str, float | None]]:
    return [(j.name, j.state.value, j.score) for j in result.jobs]


def test_two_workers_take_the_queue_in_order(tmp_path):
    backend = FakeBackend()
    result = make_engine(tmp_path / "m", backend, workers=2).run()
    assert result.exit_code == 0 and result.reason == "controller exhausted"
    assert names(result) == [("W1_1_J1", "COMPLETE", 0.1), ("W2_1_J2", "COMPLETE", 0.2),
                             ("W1_2_J3", "COMPLETE", 0.3), ("W2_2_J4", "COMPLETE", 0.4)]
    assert result.best.name == "W2_2_J4"
    assert [Path(s.cwd).name for s in backend.submitted] == ["W1_1_J1", "W2_1_J2", "W1_2_J3", "W2_2_J4"]


def test_the_engine_state_is_the_journal_replayed(tmp_path):
    """Each event the engine appends is applied to its RunState: reading the file back gives the same."""
    engine = make_engine(tmp_path / "m", FakeBackend({0.2: ["fail"]}), workers=2)
    engine.run()
    replayed = load_run_state(engine.run_dir / "journal.jsonl")
    assert replayed.job_order == engine.state.job_order
    assert {u: j.to_json() for u, j in replayed.jobs.items()} == {u: j.to_json() for u, j in engine.state.jobs.items()}
    assert [o.job_name for o in replayed.told] == [o.job_name for o in engine.state.told]
    assert replayed.ended == engine.state.ended and replayed.ended["exit_code"] == 1


def test_events_fire_in_clara_order(tmp_path):
    recorder = Recorder()
    make_engine(tmp_path / "m", FakeBackend(), scores=(0.1,), handlers=[recorder]).run()
    assert [e for e in recorder.events if e != "job_metrics"] == [
        "start_automl", "search_space_available", "recommendations_available", "start_job", "end_job",
        "round_ended", "end_automl", "shutdown"]


def test_a_failure_is_recorded_and_the_search_goes_on_exit_1(tmp_path):
    result = make_engine(tmp_path / "m", FakeBackend({0.2: ["fail"]})).run()
    assert result.exit_code == 1
    assert [s for _, s, _ in names(result)] == ["COMPLETE", "FAILED", "COMPLETE", "COMPLETE"]
    failed = result.jobs[1]
    assert failed.reason == "exit code 1: RuntimeError: boom" and "Traceback" in failed.log_tail


def test_retries_rerun_a_failure_and_count_against_max_retries(tmp_path):
    result = make_engine(tmp_path / "a", FakeBackend({0.2: ["fail", "ok"]}), max_retries=1).run()
    assert result.exit_code == 0  # the retry supersedes the failure
    retried = [j for j in result.jobs if j.recommendation.point == {"score": [0.2]}]
    assert [(j.attempt, j.state) for j in retried] == [(0, JobState.FAILED), (1, JobState.COMPLETE)]
    assert retried[1].retry_of == retried[0].job_uid

    result = make_engine(tmp_path / "b", FakeBackend({0.2: ["fail", "fail", "ok"]}), max_retries=1).run()
    assert result.exit_code == 1
    assert [j.state for j in result.jobs if j.recommendation.point == {"score": [0.2]}] == [JobState.FAILED] * 2


def test_max_jobs_counts_recommendations_not_retries(tmp_path):
    result = make_engine(tmp_path / "m", FakeBackend({0.1: ["fail", "ok"]}), max_jobs=2, max_retries=1).run()
    assert result.reason == "max jobs 2"
    assert [(j.recommendation.rec_id, j.attempt) for j in result.jobs] == [(0, 0), (0, 1), (1, 0)]
    assert result.exit_code == 0


def test_stop_work_stops_starting_jobs(tmp_path):
    def stop_at_02(ctx):
        if (ctx.get_prop(ContextKey.SCORE) or 0) >= 0.2:
            ctx.stop_work("threshold", "score 0.2 reached")

    result = make_engine(tmp_path / "m", FakeBackend(), handlers=[Recorder(on_end=stop_at_02)]).run()
    assert result.reason == "stop_work by threshold: score 0.2 reached"
    assert len(result.jobs) == 2 and result.exit_code == 0
    ops = [json.loads(line)["op"] for line in (tmp_path / "m" / "automl" / "t" / "journal.jsonl").read_text().splitlines()]
    assert ops.count("stopped") == 1 and ops[-1] == "run_ended"


def test_stop_threshold_of_the_mmar_handler(tmp_path):
    from mmar_automl.handlers.mmar import MMARHandler

    result = make_engine(tmp_path / "m", FakeBackend(), handlers=[MMARHandler(stop_threshold=0.3)]).run()
    assert result.reason == "stop_work by MMARHandler: W1_3_J3 scored 0.3 >= stop_threshold 0.3"
    assert [j.score for j in result.jobs] == [0.1, 0.2, 0.3] and result.best.name == "W1_3_J3"


def test_time_limit_aborts_running_jobs(tmp_path):
    backend = FakeBackend({0.1: ["hang"], 0.2: ["hang"]})
    result = make_engine(tmp_path / "m", backend, workers=2, time_limit=0.05).run()
    assert result.reason == "time limit 0.05 s"
    assert [(s, j.reason) for j, (_, s, _) in zip(result.jobs, names(result))] == [
        ("ABORTED", "stopped at the time limit")] * 2
    assert set(backend.killed.values()) == {int(signal.SIGTERM)}
    assert result.exit_code == 0  # aborted jobs are not failures; a resume re-runs them


def test_an_interrupt_exits_130_and_leaves_the_rest_for_resume(tmp_path):
    engine = None

    def interrupt(ctx):
        engine.interrupt()

    backend = FakeBackend({0.1: ["hang"]})
    engine = make_engine(tmp_path / "m", backend, handlers=[Recorder(on_start=interrupt)])
    result = engine.run()
    assert result.exit_code == 130 and result.reason == "interrupted"
    assert names(result) == [("W1_1_J1", "ABORTED", None)]
    assert engine.state.pending_rec_ids() == [0, 1, 2, 3]


def test_resume_continues_where_the_first_session_stopped(tmp_path):
    """A session stopped by --max-jobs, then a resume from the journal: together the same jobs as one run,
    the controller told every outcome once, in order."""
    root = tmp_path / "m"
    first = make_engine(root, FakeBackend(), max_jobs=2).run()
    assert [j.name for j in first.jobs] == ["W1_1_J1", "W1_2_J2"]
    state = load_run_state(root / "automl" / "t" / "journal.jsonl")
    backend = FakeBackend()
    second = make_engine(root, backend, state=state).run()
    assert [Path(s.cwd).name for s in backend.submitted] == ["W1_3_J3", "W1_4_J4"]
    assert [(j.name, j.score) for j in second.jobs] == [("W1_1_J1", 0.1), ("W1_2_J2", 0.2), ("W1_3_J3", 0.3),
                                                        ("W1_4_J4", 0.4)]
    final = load_run_state(root / "automl" / "t" / "journal.jsonl")
    assert final.sessions == 2 and [o.job_name for o in final.told] == ["W1_1_J1", "W1_2_J2", "W1_3_J3", "W1_4_J4"]


def test_resume_refuses_a_controller_that_recommends_otherwise(tmp_path):
    root = tmp_path / "m"
    make_engine(root, FakeBackend(), max_jobs=1).run()
    state = load_run_state(root / "automl" / "t" / "journal.jsonl")

    class Reversed(GridController):
        def initial_recommendation(self, ctx):
            recs = super().initial_recommendation(ctx)
            return [type(r)(r.rec_id, recs[-1 - i].point, r.meta) for i, r in enumerate(recs)]

    journal = root / "automl" / "t" / "journal.jsonl"
    before = journal.read_text()
    with pytest.raises(JournalError, match="not deterministic"):
        make_engine(root, FakeBackend(), state=state, controller=Reversed()).run()
    # the refused resume wrote nothing: the run keeps its stop reason (it was "resumed", then "error: ...")
    assert journal.read_text() == before


def test_values_after_the_prune_decision_are_not_recorded(tmp_path):
    class PruneAtFirst(GridController):
        def should_prune(self, rec, step, value, ctx):
            return step == 1

    backend = FakeBackend({0.1: ["prune_me"]})
    engine = make_engine(tmp_path / "m", backend, scores=(0.1,), controller=PruneAtFirst())
    result = engine.run()
    job = result.jobs[0]
    assert job.intermediate == [(1, 0.05)]  # epoch 2's value came after the decision
    assert backend.killed == {100001: int(signal.SIGTERM)}
    assert (job.state, job.score, job.reason) == (JobState.PRUNED, None, "pruned at epoch 1 (dice=0.05)")


def test_a_controller_error_names_the_controller_the_method_and_the_job(tmp_path):
    """Clara's example controller does ``-outcome.score``: on a job without a score the run ended with
    "error (TypeError): bad operand type for unary -: 'NoneType'", naming nothing. It still ends the run
    (exit 1), and its line says whose code failed, on which job's outcome, and why the score is None."""

    class Negating(GridController):
        def refine_recommendation(self, outcome, ctx):
            self.best = -outcome.score
            return super().refine_recommendation(outcome, ctx)

    engine = make_engine(tmp_path / "m", FakeBackend({0.1: ["fail"]}), controller=Negating())
    with pytest.raises(MmarAutomlError) as caught:
        engine.run()
    assert str(caught.value) == (
        "controller Negating.refine_recommendation failed with the outcome of W1_1_J1 (the job has no score: "
        "outcome.score is None): TypeError: bad operand type for unary -: 'NoneType'")
    assert caught.value.exit_code == 1
    assert load_run_state(engine.run_dir / "journal.jsonl").jobs  # the journal holds the job and the end
