"""The outer loop: Optuna's ask/tell shape with Clara's events.

ask = the controller's recommendations (queued), run = the scheduler gives each a worker slot and the
executor a process, tell = each finished job's Outcome goes back to ``refine_recommendation``. The
engine alone writes the journal (before acting: a job is journaled before its process exists), and its
view of the run is the journal's ``RunState``, updated by each event it appends (journal.JournalWriter):
a resumed session starts from the replayed state and then runs the same loop. Handler events go out
through one method, ``_fire``; each handler's errors are logged and skipped, never fatal.

Everything the engine needs is given to its constructor (setup.prepare_run builds it from a RunPlan);
its neighbours: resume.py (replay, settling), procscan.py (leftover processes), signals.py (Ctrl-C),
exits.py (the exit code).
"""

from __future__ import annotations

import copy
import logging
import os
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mmar_automl.backends.protocol import UNKNOWN_EXIT
from mmar_automl.clara_api.defs import as_clara_recommendation, concrete_search_value
from mmar_automl.context import Context, ContextKey
from mmar_automl.errors import MmarAutomlError
from mmar_automl.handlers.base import EventType, Handler
from mmar_automl.recommendation import JobState, Recommendation
from mmar_automl.run import resume as resuming
from mmar_automl.run.executor import MMARExecutor, RunningJob
from mmar_automl.run.exits import EXIT_ERRORS, exit_code, final_jobs
from mmar_automl.run.job import JobRecord, best_job
from mmar_automl.run.journal import FORMAT_VERSION, JOURNAL_NAME, JournalWriter, Op, RunState, outcome_of
from mmar_automl.run.plan import RunPlan
from mmar_automl.run.procscan import kill_leftovers
from mmar_automl.run.scheduler import QueuedRec, Scheduler, Slot
from mmar_automl.run.signals import Interrupts
from mmar_automl.run.workers import job_environment, threads_per_job
from mmar_automl.search.space import SearchSpace

log = logging.getLogger("mmar_automl.run.engine")
POLL_S = 0.05
FINISH_WAIT_S = 12.0


@dataclass
class RunResult:
    exit_code: int
    reason: str
    jobs: list[JobRecord] = field(default_factory=list)
    best: JobRecord | None = None


def run_context(plan: RunPlan, space: SearchSpace, **props: Any) -> Context:
    """The run's Context: what every participant may read from the start (``props``: the caller's extra
    keys, ContextKey members). The controller receives it in ``set_search_space`` (setup) and every call."""
    ctx = Context()
    for key, value in {**plan_props(plan), ContextKey.SEARCH_SPACE: space, **props}.items():
        ctx.set_prop(key, value)
    return ctx


def plan_props(plan: RunPlan) -> dict[str, Any]:
    """The context keys that come from the plan (the one place they are computed)."""
    slots = plan.slots
    return {
        ContextKey.RUN_ID: plan.run_id, ContextKey.RUN_DIR: str(plan.run_dir), ContextKey.MMAR_ROOT: str(plan.mmar_root),
        ContextKey.NUM_WORKERS: plan.num_workers, ContextKey.SEED: plan.seed,
        ContextKey.GPUS: sorted({g for w in slots for g in w.gpus}), ContextKey.GPU_DEVICES: list(plan.gpus),
        ContextKey.WORKERS: [w.label for w in slots], ContextKey.RESUMED: plan.resumed,
        ContextKey.OPTIONS: plan.options_json(),
        ContextKey.RECOMMENDATIONS: [],  # Clara handlers iterate it at any event (a resume starts with none new)
    }


class Engine:
    """``state``: the replayed journal of the run to resume (None: a new run). ``header``: what the run's
    first event journals besides the plan (controller spec, config hashes, ...). ``packer``:
    packing.Packer for --jobs-per-gpu (None: one job per slot). ``interrupts``: shared with the backend."""

    def __init__(
        self,
        *,
        plan: RunPlan,
        space: SearchSpace,
        controller: Any,
        executor: MMARExecutor,
        handlers: list[Handler],
        ctx: Context,
        state: RunState | None = None,
        header: dict[str, Any] | None = None,
        packer: Any = None,
        interrupts: Interrupts | None = None,
        install_signals: bool = True,
    ):
        self.plan = plan
        self.run_dir = Path(plan.run_dir)
        self.space = space
        self.controller = controller
        self.executor = executor
        self.handlers = handlers
        self.ctx = ctx
        self.resumed = state is not None
        self.header = header or {}
        self.packer = packer
        self.interrupts = interrupts or Interrupts()
        self.install_signals = install_signals
        self.state = state if state is not None else RunState()
        self.scheduler = Scheduler(plan.slots, list(plan.gpus), self.state.worker_seq(),
                                   admit=packer.admit if packer is not None else None)
        self.base_env = {**os.environ, **plan.job_env()}
        self.journal: JournalWriter | None = None
        self.running: dict[str, RunningJob] = {}
        self.stopping: str | None = None
        self.session_start = time.monotonic()
        self.handler_errors = 0
        self._quiet = False
        self._started = False  # start_automl fired: end_automl and shutdown must follow

    # ------------------------------------------------------------------------------------------------
    def run(self) -> RunResult:
        if self.install_signals:
            with self.interrupts.on_signals():
                return self._run()
        return self._run()

    def _run(self) -> RunResult:
        reason, error_code = "done", None
        try:
            # A resume replays the controller before the journal opens: a controller that does not replay
            # (JournalError) leaves the run's journal, and so its report and stop reason, as they were.
            missing = self._replay() if self.resumed else []
            self.journal = JournalWriter(self.run_dir / JOURNAL_NAME, self.state)
            if self.resumed:
                self._start_resumed(missing)
            else:
                self._start_new()
            self._loop()
            reason = self.stopping or "no more recommendations"
        except BaseException as err:
            reason = f"error: {err}"
            error_code = getattr(err, "exit_code", EXIT_ERRORS)
            raise
        finally:
            result = self._finish(reason, error_code)
        return result

    # -- start -----------------------------------------------------------------------------------
    def _start_new(self) -> None:
        assert self.journal is not None
        self.journal.append(Op.RUN_STARTED, version=FORMAT_VERSION, run_id=self.plan.run_id, seed=self.plan.seed,
                            space=self.space.to_json(), workers=self.ctx.get_prop(ContextKey.WORKERS),
                            options=self.plan.options_json(), **self.header)
        self._fire(EventType.START_AUTOML)
        self._fire(EventType.SEARCH_SPACE_AVAILABLE)
        self._accept(self._ask_controller("initial_recommendation", None), after=None)

    def _replay(self) -> list[resuming.Batch]:
        """The controller rebuilt from the journal; the batches it made that the journal lacks."""
        self._quiet = True  # handlers have not started
        try:
            return resuming.replay_controller(self.controller, self.ctx, self.state, self.run_dir / JOURNAL_NAME)
        finally:
            self._quiet = False

    def _start_resumed(self, missing: list[resuming.Batch]) -> None:
        """Journal the replayed batches the dead orchestrator never journaled, settle its jobs, then tell
        the handlers what exists."""
        assert self.journal is not None
        state = self.state
        kill_leftovers([j.folder for j in state.running()])
        self.journal.append(Op.RESUMED, session=state.sessions + 1, workers=self.ctx.get_prop(ContextKey.WORKERS),
                            options=self.plan.options_json())
        self._quiet = True
        try:
            for after, recs in missing:
                self._accept(recs, after=after, queue=False)  # the dead orchestrator never journaled it
            # Jobs the dead orchestrator left RUNNING: keep a result they finished, else re-run them.
            for job in state.running():
                settled, told = resuming.settle_interrupted(job)
                self._record_end(settled, told=told)
                if told and not self.interrupts():  # the controller still learns from it (queued below)
                    self._accept(self.controller.refine_recommendation(outcome_of(settled), self.ctx),
                                 after=settled.recommendation.rec_id, queue=False)
        finally:
            self._quiet = False
        self.ctx.set_prop(ContextKey.PREVIOUS_JOBS, [copy.deepcopy(j) for j in state.ordered_jobs()])
        self._fire(EventType.START_AUTOML)
        self._fire(EventType.SEARCH_SPACE_AVAILABLE)
        for rec_id in state.pending_rec_ids():
            last = max(state.jobs_of(rec_id), key=lambda j: j.number, default=None)
            self.scheduler.enqueue(QueuedRec(state.recommendations[rec_id], (last.attempt + 1) if last else 0,
                                             last.job_uid if last else None))

    # -- the loop ----------------------------------------------------------------------------------
    def _loop(self) -> None:
        while True:
            self._handle_interrupts()
            if self.stopping is None:
                self._check_stop_conditions()
            if self.stopping is None:
                self._dispatch()
            ended = self._poll()
            if not self.running:
                if self.stopping is not None or not self._dispatchable():
                    break
            if not ended:  # a job just ended: its worker takes the next job at once
                time.sleep(POLL_S)
        if self.stopping is None:
            # --max-jobs is no stop signal: new recommendations just stop starting (retries go on)
            if self.scheduler.queue:
                self._stop(f"max jobs {self.plan.limits.max_jobs}")
            else:
                exhausted = bool(getattr(self.controller, "is_exhausted", lambda: False)())
                self.stopping = "controller exhausted" if exhausted else "no more recommendations"

    def _dispatchable(self) -> bool:
        return any(self._may_start(item) for item in self.scheduler.queue)

    def _may_start(self, item: QueuedRec) -> bool:
        """--max-jobs counts recommendations started: a retry of a started one may always start."""
        started, max_jobs = self.state.started_rec_ids(), self.plan.limits.max_jobs
        return max_jobs is None or item.recommendation.rec_id in started or len(started) < max_jobs

    def _check_stop_conditions(self) -> None:
        limit = self.plan.limits.time_limit
        if self.ctx.stop_requested:
            self._stop(f"stop_work by {self.ctx.stop_issuer}: {self.ctx.stop_message}".rstrip(": "))
        elif limit is not None and time.monotonic() - self.session_start > limit:
            self._stop(f"time limit {limit:g} s")
            for running in list(self.running.values()):
                self.executor.terminate(running, JobState.ABORTED, "stopped at the time limit")

    def _stop(self, reason: str) -> None:
        if self.stopping is None:
            self.stopping = reason
            assert self.journal is not None
            self.journal.append(Op.STOPPED, reason=reason)

    def _dispatch(self) -> None:
        # A Ctrl-C that arrives while a job waits for the launcher's warm-up ends that job ABORTED and
        # frees its slot: stop here, else every queued recommendation would get a job folder and end ABORTED.
        while self.scheduler.queue and not self.interrupts() and self.stopping is None:
            slot = self.scheduler.free_slot()
            if slot is None:
                return
            item = next((i for i in self.scheduler.queue if self._may_start(i)), None)
            if item is None:
                return
            self.scheduler.queue.remove(item)
            self._start_job(item, slot)

    def _start_job(self, item: QueuedRec, slot: Slot) -> None:
        assert self.journal is not None
        uid = uuid.uuid4().hex[:16]
        number = self.state.next_job_number()
        seq = self.scheduler.occupy(slot, uid)
        job = JobRecord(
            job_uid=uid, number=number, worker=slot.spec.number, worker_seq=seq, folder="",
            recommendation=item.recommendation, gpus=list(slot.spec.gpus), attempt=item.attempt,
            retry_of=item.retry_of, state=JobState.RUNNING, started_at=time.time(),
        )
        folder = self.run_dir / job.name
        if folder.exists():  # a stale folder nobody journaled: keep it aside, never reuse it
            folder.rename(self.run_dir / f".{job.name}.stale.{int(time.time())}")
        job.folder = str(folder)
        self.journal.append(Op.JOB_STARTED, job=job.to_json())
        try:
            self.executor.prepare(job)
        except Exception as err:  # noqa: BLE001 - a broken job folder fails this job, not the search
            self._fire_job(EventType.START_JOB, job)
            self._job_failed_to_start(job, f"could not write the job folder: {err}")
            return
        self._fire_job(EventType.START_JOB, job)
        try:
            # with --jobs-per-gpu auto the slots are only a ceiling: the packer counts the jobs that can run
            concurrent = self.packer.concurrent_jobs(self.scheduler.slots) if self.packer else len(self.scheduler.slots)
            env = job_environment(self.base_env, slot.spec, list(self.plan.gpus), threads_per_job(concurrent))
            running = self.executor.start(job, self.ctx, env=env)
        except Exception as err:  # noqa: BLE001
            if self.interrupts():  # Ctrl-C while the launcher warmed up: re-run on resume, not a failure
                job.state, job.reason, job.ended_at = JobState.ABORTED, "interrupted before it started", time.time()
                self._end_job(job, pids=set())
                return
            self._job_failed_to_start(job, f"could not start the job process: {err}")
            return
        job.started_at = time.time()  # the process exists now: a launcher warm-up is no part of the job's time
        self.running[uid] = running
        self.journal.append(Op.JOB_PID, job_uid=uid, pid=running.handle.pid, via=running.handle.via)

    def _job_failed_to_start(self, job: JobRecord, reason: str) -> None:
        job.state, job.reason, job.ended_at = JobState.FAILED, reason, time.time()
        self._end_job(job, pids=set())

    def _poll(self) -> int:
        ended = 0
        for uid, running in list(self.running.items()):
            self._follow(running)
            code = self.executor.poll(running)
            if code is None:
                continue
            self._follow(running)  # the last lines written before exit
            del self.running[uid]
            job = self.executor.finish(running, code)
            self._end_job(job, pids={running.handle.pid})
            ended += 1
        return ended

    def _follow(self, running: RunningJob) -> None:
        records = self.executor.read_metrics(running)
        if not records:
            return
        job = running.job
        if self.packer is not None:
            self.packer.job_metrics(job, records)
        for record in records:
            if record.get("kind") != "validation" or running.kill_reason is JobState.PRUNED:
                continue  # values a pruned job wrote after the decision are not part of its curve
            metrics = record.get("metrics") or {}
            value = metrics.get(record.get("key_metric")) if isinstance(metrics, dict) else None
            if not isinstance(value, (int, float)) or value != value:
                continue
            step = int(record.get("epoch") or len(job.intermediate) + 1)
            job.intermediate.append((step, float(value)))
            if running.kill_reason is None and self._should_prune(job.recommendation, step, float(value)):
                self.executor.terminate(running, JobState.PRUNED, f"pruned at epoch {step} ({record.get('key_metric')}={value:.4g})")
        self.ctx.set_prop(ContextKey.METRICS, records)
        self._fire_job(EventType.JOB_METRICS, job)

    def _should_prune(self, rec: Recommendation, step: int, value: float) -> bool:
        try:
            return bool(self.controller.should_prune(rec, step, value, self.ctx))
        except Exception as err:  # noqa: BLE001 - a pruner bug must not kill the job or the search
            log.warning("should_prune of %s failed: %s", type(self.controller).__name__, err)
            return False

    # -- the end of a job ----------------------------------------------------------------------------
    def _end_job(self, job: JobRecord, pids: set[int]) -> None:
        """Journal the end, free the slot, then retry (queue first) or tell the controller."""
        rec_id = job.recommendation.rec_id
        # --jobs-per-gpu: an out-of-memory failure on a shared GPU backs the GPU off and is re-run outside
        # --max-retries (journaled as forgiven).
        oom_on_shared_gpu = self.packer is not None and self.packer.job_ended(job, self.scheduler.slots)
        retry = False
        if job.state in (JobState.FAILED, JobState.TIMED_OUT) and self.stopping is None:
            retry = oom_on_shared_gpu or self.state.failures(rec_id) + 1 <= self.plan.limits.max_retries
        forgiven = retry and oom_on_shared_gpu
        told = job.state is not JobState.ABORTED and not retry
        self._record_end(job, told=told, forgiven=forgiven)
        self.scheduler.release(job.job_uid, pids)
        if retry:
            self.scheduler.queue.appendleft(QueuedRec(job.recommendation, job.attempt + 1, job.job_uid))
        if told and not self.interrupts():
            self._accept(self._ask_controller("refine_recommendation", job), after=rec_id)
            self._fire(EventType.ROUND_ENDED)

    def _ask_controller(self, method: str, job: JobRecord | None) -> list[Recommendation]:
        """``initial_recommendation`` (job None) or ``refine_recommendation`` with the job's outcome. An error
        of the controller's own code (a BYOC controller's, say ``-outcome.score`` on a job without a score)
        still ends the run (exit 1), its one line naming the controller, the method and the job."""
        try:
            if job is None:
                return self.controller.initial_recommendation(self.ctx)
            return self.controller.refine_recommendation(outcome_of(job), self.ctx)
        except MmarAutomlError:
            raise
        except Exception as err:
            told = f" with the outcome of {job.name}" if job is not None else ""
            unscored = " (the job has no score: outcome.score is None)" if job is not None and job.score is None else ""
            raise MmarAutomlError(f"controller {type(self.controller).__name__}.{method} failed{told}{unscored}: "
                                  f"{type(err).__name__}: {err}") from err

    def _record_end(self, job: JobRecord, told: bool, forgiven: bool = False) -> None:
        assert self.journal is not None
        extra = {"forgiven": True} if forgiven else {}
        self.journal.append(Op.JOB_ENDED, job=job.to_json(), told=told, **extra)
        if told:
            self.ctx.set_prop(ContextKey.OUTCOME, outcome_of(job))
        self.ctx.set_prop(ContextKey.SCORE, job.score)
        self.ctx.set_prop(ContextKey.JOB_STATUS, job.state)
        self.ctx.set_prop(ContextKey.PROCESS_EXIT_STATUS, job.exit_code)
        self._fire_job(EventType.END_JOB, job)

    def _accept(self, recs: list[Recommendation], after: int | None, queue: bool = True) -> None:
        assert self.journal is not None
        recs = list(recs or [])
        self.journal.append(Op.RECOMMENDED, after=after, recs=[r.to_json() for r in recs])
        if queue:
            for rec in recs:
                self.scheduler.enqueue(QueuedRec(rec))
        if recs:  # Clara's shape (``.result``) for Clara handlers; still mmar-automl Recommendations
            self.ctx.set_prop(ContextKey.RECOMMENDATIONS, [as_clara_recommendation(r, self.space) for r in recs])
            self._fire(EventType.RECOMMENDATIONS_AVAILABLE)

    # -- events ----------------------------------------------------------------------------------
    def _fire_job(self, event: str, job: JobRecord) -> None:
        self.ctx.set_prop(ContextKey.JOB, copy.deepcopy(job))
        self.ctx.set_prop(ContextKey.JOB_NAME, job.name)
        self.ctx.set_prop(ContextKey.RECOMMENDATION, as_clara_recommendation(job.recommendation, self.space))
        self.ctx.set_prop(ContextKey.CONCRETE_SEARCH_VALUE, concrete_search_value(self.space, job.recommendation.point))
        self._fire(event)

    def _fire(self, event: str) -> None:
        """The one place handler events go out (quiet while a resume replays)."""
        if self._quiet or (event in (EventType.END_AUTOML, EventType.SHUTDOWN) and not self._started):
            return
        if event == EventType.START_AUTOML:
            self._started = True
        for handler in self.handlers:
            try:
                handler.handle_event(event, self.ctx)
            except Exception as err:  # noqa: BLE001 - STYLE.md: a handler never stops the search
                self.handler_errors += 1
                log.warning("handler %s failed on %s: %s: %s", type(handler).__name__, event, type(err).__name__, err)

    # -- interrupts ----------------------------------------------------------------------------------
    def interrupt(self) -> None:
        """What Ctrl-C does, for callers that run the engine outside the main thread."""
        self.interrupts.interrupt()

    def _handle_interrupts(self) -> None:
        if not self.interrupts():
            return
        if self.stopping is None or not self.stopping.startswith("interrupted"):
            self.stopping = None
            self._stop("interrupted")
            for running in self.running.values():
                self.executor.terminate(running, JobState.ABORTED, "interrupted")
        if self.interrupts.count >= 2:
            for running in self.running.values():
                if not running.killed_hard:
                    running.kill_reason = running.kill_reason or JobState.ABORTED
                    self.executor.kill_now(running)

    # -- the end -------------------------------------------------------------------------------------
    def _finish(self, reason: str, error_code: int | None) -> RunResult:
        self._stop_jobs()
        self.ctx.set_prop(ContextKey.STOP_REASON, self.stopping or reason)
        self.ctx.set_prop(ContextKey.INTERRUPTED, self.interrupts() > 0)
        self._fire(EventType.END_AUTOML)
        try:
            self.controller.shutdown(self.ctx)
        except Exception as err:  # noqa: BLE001
            log.warning("controller shutdown failed: %s", err)
        self._fire(EventType.SHUTDOWN)
        try:
            self.executor.shutdown(self.ctx)
        except Exception as err:  # noqa: BLE001
            log.warning("executor shutdown failed: %s", err)
        jobs = self.state.ordered_jobs()
        code = exit_code(jobs, interrupted=self.interrupts(), error_code=error_code)
        best = best_job(final_jobs(jobs))
        if self.journal is not None:
            self.journal.append(Op.RUN_ENDED, reason=reason, exit_code=code,
                                best=best.name if best else None, best_score=best.score if best else None)
            self.journal.close()
        return RunResult(code, reason, jobs, best)

    def _stop_jobs(self) -> None:
        """Whatever happened, no job process outlives the run: SIGTERM, then SIGKILL after a wait."""
        for running in self.running.values():
            self.executor.terminate(running, JobState.ABORTED, "the run stopped")
        deadline = time.monotonic() + FINISH_WAIT_S
        while self.running and time.monotonic() < deadline:
            self._handle_interrupts()
            for uid, running in list(self.running.items()):
                code = self.executor.poll(running)
                if code is not None:
                    del self.running[uid]
                    job = self.executor.finish(running, code)
                    if self.journal is not None:
                        self._record_end(job, told=job.state is not JobState.ABORTED)
                        self.scheduler.release(uid, set())
            time.sleep(POLL_S)
        for uid, running in list(self.running.items()):  # past the grace period: killed, and end_job still follows
            self.executor.kill_now(running)
            del self.running[uid]
            job = self.executor.finish(running, UNKNOWN_EXIT)
            if self.journal is not None:
                self._record_end(job, told=False)
