"""The outer loop: Optuna's ask/tell shape with Clara's events.

ask = the controller's recommendations (queued), run = the scheduler gives each a worker and the
executor a process, tell = each finished job's Outcome goes back to ``refine_recommendation``. The
engine alone writes the journal (before acting: a job is journaled before its process exists) and
fires handler events; each handler's errors are logged and skipped, never fatal. Signals only set
flags; the loop does the work (terminate process groups, SIGKILL after the grace period).
"""

from __future__ import annotations

import copy
import json
import logging
import os
import signal
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mmar_automl.context import Context, ContextKey
from mmar_automl.errors import JournalError
from mmar_automl.run.executor import MMARExecutor, RunningJob, judge
from mmar_automl.run.outputs import JobOutputs
from mmar_automl.handlers.base import EventType, Handler
from mmar_automl.run.job import JobRecord, best_job
from mmar_automl.run.journal import FORMAT_VERSION, JournalWriter, Op, RunState, outcome_of
from mmar_automl.backends.launcher import kill_group
from mmar_automl.recommendation import JobState, Recommendation
from mmar_automl.run.scheduler import QueuedRec, Scheduler
from mmar_automl.search.space import SearchSpace
from mmar_automl.run.workers import Gpu, WorkerSpec, job_environment, threads_per_job

log = logging.getLogger("mmar_automl.run.engine")
POLL_S = 0.05
EXIT_OK, EXIT_ERRORS, EXIT_INTERRUPTED = 0, 1, 130


@dataclass
class Limits:
    max_jobs: int | None = None        # distinct recommendations started (retries do not count)
    time_limit: float | None = None    # seconds of this session; running jobs are aborted at the limit
    max_retries: int = 0               # re-runs of a FAILED / TIMED_OUT job


@dataclass
class RunResult:
    exit_code: int
    reason: str
    jobs: list[JobRecord] = field(default_factory=list)
    best: JobRecord | None = None


class Engine:
    def __init__(
        self,
        *,
        run_id: str,
        run_dir: Path,
        mmar_root: Path,
        space: SearchSpace,
        controller: Any,
        executor: MMARExecutor,
        handlers: list[Handler],
        workers: list[WorkerSpec],
        gpus: list[Gpu] | None = None,
        seed: int,
        limits: Limits | None = None,
        header: dict[str, Any] | None = None,
        resume: RunState | None = None,
        props: dict[str, Any] | None = None,
        install_signals: bool = True,
    ):
        self.run_id = run_id
        self.run_dir = Path(run_dir)
        self.mmar_root = Path(mmar_root)
        self.space = space
        self.controller = controller
        self.executor = executor
        self.handlers = handlers
        self.workers = workers
        self.gpus = gpus or []
        self.seed = seed
        self.limits = limits or Limits()
        self.header = header or {}
        self.resume = resume
        self.install_signals = install_signals
        self.ctx = Context(**(props or {}))
        for key, value in {
            ContextKey.RUN_ID: run_id, ContextKey.RUN_DIR: str(self.run_dir), ContextKey.MMAR_ROOT: str(self.mmar_root),
            ContextKey.NUM_WORKERS: len(workers), ContextKey.SEED: seed,
            ContextKey.GPUS: sorted({g for w in workers for g in w.gpus}), "WORKERS": [w.label for w in workers],
            "RESUMED": resume is not None, "ENGINE": self,
        }.items():
            self.ctx.set_prop(key, value)
        self.scheduler = Scheduler(workers, self.gpus, resume.worker_seq() if resume else None)
        self.journal: JournalWriter | None = None
        self.jobs: dict[str, JobRecord] = {}            # every job of the run (previous sessions included)
        self.running: dict[str, RunningJob] = {}
        self.started_recs: set[int] = set()
        self.next_number = resume.next_job_number() if resume else 1
        self.interrupts = 0
        self.stopping: str | None = None
        self.session_start = time.monotonic()
        self.base_env = dict(os.environ)
        self.handler_errors = 0
        self._old_handlers: dict[int, Any] = {}
        self._recs: dict[int, Recommendation] = {}
        self._told: set[int] = set()
        self._quiet = False
        self._error_code = EXIT_ERRORS
        self._started = False  # start_automl fired: end_automl and shutdown must follow

    # ------------------------------------------------------------------------------------------------
    def run(self) -> RunResult:
        if self.install_signals:
            self._install_signals()
        backend = getattr(self.executor, "backend", None)
        if backend is not None and hasattr(backend, "cancel"):
            backend.cancel = lambda: self.interrupts > 0
        reason = "done"
        try:
            self.journal = JournalWriter(self.run_dir / "journal.jsonl")
            if self.resume is None:
                self._start_new()
            else:
                self._start_resumed()
            self._loop()
            reason = self.stopping or "no more recommendations"
        except BaseException as err:
            reason = f"error: {err}"
            self._error_code = getattr(err, "exit_code", EXIT_ERRORS)
            raise
        finally:
            result = self._finish(reason)
            if self.install_signals:
                self._restore_signals()
        return result

    # -- start -----------------------------------------------------------------------------------
    def _start_new(self) -> None:
        assert self.journal is not None
        self.journal.append(Op.RUN_STARTED, version=FORMAT_VERSION, run_id=self.run_id, seed=self.seed,
                            space=self.space.to_json(), workers=[w.label for w in self.workers], **self.header)
        self._fire(EventType.START_AUTOML)
        self._set_space()
        recs = self.controller.initial_recommendation(self.ctx)
        self._accept(recs, after=None)

    def _set_space(self) -> None:
        self.ctx.set_prop(ContextKey.SEARCH_SPACE, self.space)
        self.executor.set_space(self.space)
        self.controller.set_search_space(self.space, self.ctx)
        self._fire(EventType.SEARCH_SPACE_AVAILABLE)

    def _start_resumed(self) -> None:
        """Replay first (silently: handlers have not started), then tell the handlers what exists."""
        state = self.resume
        assert state is not None and self.journal is not None
        self._kill_leftovers(state)
        self.journal.append(Op.RESUMED, session=state.sessions + 1, workers=[w.label for w in self.workers])
        self.jobs = {u: state.jobs[u] for u in state.job_order}
        self.started_recs = {j.recommendation.rec_id for j in self.jobs.values()}
        # NUM_WORKERS sizes a controller's batches (its initial one): the controller sees the run's first
        # worker count in every session, else a resume on other workers could not replay the journaled batches.
        first_workers = len(state.header.get("workers") or [])
        if first_workers:
            self.ctx.set_prop(ContextKey.NUM_WORKERS, first_workers)
        self.ctx.set_prop(ContextKey.SEARCH_SPACE, self.space)
        self.executor.set_space(self.space)
        self.controller.set_search_space(self.space, self.ctx)
        self._quiet = True
        try:
            self._replay_controller(state)
            # Jobs the dead orchestrator left RUNNING: keep a result they finished, else re-run them.
            for job in state.running():
                self._settle_interrupted(job)
        finally:
            self._quiet = False
        self.ctx.set_prop("PREVIOUS_JOBS", [copy.deepcopy(j) for j in self.jobs.values()])
        self._fire(EventType.START_AUTOML)
        self._fire(EventType.SEARCH_SPACE_AVAILABLE)
        for rec_id in sorted(self._pending_rec_ids()):
            rec = self._recs[rec_id]
            previous = [j for j in self.jobs.values() if j.recommendation.rec_id == rec_id]
            last = max(previous, key=lambda j: j.number, default=None)
            self.scheduler.enqueue(QueuedRec(rec, (last.attempt + 1) if last else 0, last.job_uid if last else None))

    def _replay_controller(self, state: RunState) -> None:
        """Rebuild the controller by replay; its recommendations must equal the journaled ones.

        Batches are keyed by the rec_id of the outcome that produced them (None: the initial batch), so a
        batch the dead orchestrator never journaled is simply journaled now."""
        self._recs = {}
        self._told = set()
        batches = {after: recs for after, recs in state.batches}
        produced = self.controller.initial_recommendation(self.ctx)
        self._check_batch(None, produced, batches, "initial_recommendation")
        for outcome in state.told:
            self._told.add(outcome.recommendation.rec_id)
            produced = self.controller.refine_recommendation(outcome, self.ctx)
            self._check_batch(outcome.recommendation.rec_id, produced, batches,
                              f"refine_recommendation after {outcome.job_name}")

    def _check_batch(self, after: int | None, produced: list[Recommendation],
                     batches: dict[int | None, list[Recommendation]], where: str) -> None:
        if after in batches:
            journaled = batches[after]
            if _canon([r.to_json() for r in produced]) != _canon([r.to_json() for r in journaled]):
                raise JournalError(
                    f"{self.run_dir / 'journal.jsonl'}: on resume the controller's {where} gave "
                    f"{[r.to_json() for r in produced][:3]} but the journal has {[r.to_json() for r in journaled][:3]}; "
                    "the controller is not deterministic given its args and seed (start a new run)")
            for rec in journaled:
                self._recs[rec.rec_id] = rec
        else:  # the orchestrator stopped between telling and journaling: journal it now
            self._accept(list(produced), after=after, queue=False)

    def _pending_rec_ids(self) -> list[int]:
        return [r for r in self._recs if r not in self._told]

    def _settle_interrupted(self, job: JobRecord) -> None:
        outputs = JobOutputs.of(job.folder)
        stats = outputs.stats()
        job = copy.deepcopy(job)
        if stats is not None and str(stats.get("status", "")).lower() == "complete":
            state, score, reason = judge(0, stats, "")
            job.state, job.score, job.reason = state, score, (reason or "") + " (finished while the orchestrator was down)"
            job.ended_at = job.ended_at or time.time()
            self._record_end(job, told=True, fire=False)
        else:
            job.state = JobState.ABORTED
            job.reason = "interrupted: the orchestrator stopped while it ran"
            job.log_tail = outputs.log_tail()
            job.ended_at = time.time()
            self._record_end(job, told=False, fire=False)

    def _kill_leftovers(self, state: RunState) -> None:
        """Job processes of this run that outlived their orchestrator are killed before anything re-runs.

        Found by their working directory (a job folder of a RUNNING job; children such as DataLoader
        workers inherit it), which also covers a job forked just before the orchestrator died, before
        its pid reached the journal; the process must be ours (``mmar_automl`` in its command line)."""
        folders = {str(Path(j.folder).resolve()) for j in state.running()}
        victims = job_processes(folders)
        for pid, pgid in victims:
            log.warning("killing process %d left running in a job folder by the previous orchestrator", pid)
            kill_group(pgid, signal.SIGKILL)
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        deadline = time.monotonic() + 10
        while victims and job_processes(folders) and time.monotonic() < deadline:
            time.sleep(0.05)

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
                self._stop(f"max jobs {self.limits.max_jobs}")
            else:
                exhausted = bool(getattr(self.controller, "is_exhausted", lambda: False)())
                self.stopping = "controller exhausted" if exhausted else "no more recommendations"

    def _dispatchable(self) -> bool:
        return any(self._may_start(item) for item in self.scheduler.queue)

    def _may_start(self, item: QueuedRec) -> bool:
        if item.recommendation.rec_id in self.started_recs or self.limits.max_jobs is None:
            return True
        return len(self.started_recs) < self.limits.max_jobs

    def _check_stop_conditions(self) -> None:
        if self.ctx.stop_requested:
            self._stop(f"stop_work by {self.ctx.stop_issuer}: {self.ctx.stop_message}".rstrip(": "))
        elif self.limits.time_limit is not None and time.monotonic() - self.session_start > self.limits.time_limit:
            self._stop(f"time limit {self.limits.time_limit:g} s")
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
        while self.scheduler.queue and not self.interrupts and self.stopping is None:
            slot = self.scheduler.free_slot()
            if slot is None:
                return
            item = next((i for i in self.scheduler.queue if self._may_start(i)), None)
            if item is None:
                return
            self.scheduler.queue.remove(item)
            self._start_job(item, slot)

    def _start_job(self, item: QueuedRec, slot) -> None:
        assert self.journal is not None
        uid = uuid.uuid4().hex[:16]
        number = self.next_number
        self.next_number += 1
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
        self.jobs[uid] = job
        self.started_recs.add(item.recommendation.rec_id)
        self.journal.append(Op.JOB_STARTED, job=job.to_json())
        try:
            self.executor.prepare(job)
        except Exception as err:  # noqa: BLE001 - a broken job folder fails this job, not the search
            self._fire_job(EventType.START_JOB, job)
            self._job_failed_to_start(job, f"could not write the job folder: {err}")
            return
        self._fire_job(EventType.START_JOB, job)
        try:
            threads = threads_per_job(len(self.scheduler.slots))
            running = self.executor.start(job, self.ctx, env=job_environment(self.base_env, slot.spec, self.gpus, threads))
        except Exception as err:  # noqa: BLE001
            if self.interrupts:  # Ctrl-C while the launcher warmed up: re-run on resume, not a failure
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
        self.ctx.set_prop("METRICS", records)
        self._fire_job(EventType.JOB_METRICS, job)

    def _should_prune(self, rec: Recommendation, step: int, value: float) -> bool:
        try:
            return bool(self.controller.should_prune(rec, step, value, self.ctx))
        except Exception as err:  # noqa: BLE001 - a pruner bug must not kill the job or the search
            log.warning("should_prune of %s failed: %s", type(self.controller).__name__, err)
            return False

    # -- the end of a job ----------------------------------------------------------------------------
    def _end_job(self, job: JobRecord, pids: set[int]) -> None:
        rec_id = job.recommendation.rec_id
        told = job.state is not JobState.ABORTED
        retry = False
        # --jobs-per-gpu (packing.Packer): an out-of-memory failure on a shared GPU backs the GPU off and is
        # re-run; such re-runs do not count against --max-retries.
        packing = getattr(self, "packing", None)
        oom_retry = packing is not None and packing.job_ended(job)
        forgiven = packing.forgiven if packing is not None else set()
        if job.state in (JobState.FAILED, JobState.TIMED_OUT) and self.stopping is None:
            failures = sum(1 for j in self.jobs.values()
                           if j.recommendation.rec_id == rec_id and j.state in (JobState.FAILED, JobState.TIMED_OUT)
                           and j.job_uid != job.job_uid and j.job_uid not in forgiven) + 1
            if oom_retry or failures <= self.limits.max_retries:
                retry, told = True, False
        self._record_end(job, told=told)
        self.scheduler.release(job.job_uid, pids)
        if retry:
            self.scheduler.queue.appendleft(QueuedRec(job.recommendation, job.attempt + 1, job.job_uid))
        if told and not self.interrupts:
            recs = self.controller.refine_recommendation(outcome_of(job), self.ctx)
            self._accept(recs, after=rec_id)
            self._fire(EventType.ROUND_ENDED)

    def _record_end(self, job: JobRecord, told: bool, fire: bool = True) -> None:
        assert self.journal is not None
        self.jobs[job.job_uid] = job
        self.journal.append(Op.JOB_ENDED, job=job.to_json(), told=told)
        if told:
            self._told.add(job.recommendation.rec_id)
            self.ctx.set_prop(ContextKey.OUTCOME, outcome_of(job))
        if fire:
            self.ctx.set_prop(ContextKey.SCORE, job.score)
            self.ctx.set_prop(ContextKey.JOB_STATUS, job.state.value)
            self._fire_job(EventType.END_JOB, job)
        elif told and not self.interrupts and self.resume is not None:
            # a job that finished while the orchestrator was down: the controller still learns from it
            # (not queued here: the resume queues every pending recommendation once, after settling)
            recs = self.controller.refine_recommendation(outcome_of(job), self.ctx)
            self._accept(recs, after=job.recommendation.rec_id, queue=False)

    def _accept(self, recs: list[Recommendation], after: int | None, queue: bool = True) -> None:
        assert self.journal is not None
        recs = list(recs or [])
        self.journal.append(Op.RECOMMENDED, after=after, recs=[r.to_json() for r in recs])
        for rec in recs:
            self._recs[rec.rec_id] = rec
            if queue:
                self.scheduler.enqueue(QueuedRec(rec))
        if recs:
            self.ctx.set_prop(ContextKey.RECOMMENDATIONS, recs)
            self._fire(EventType.RECOMMENDATIONS_AVAILABLE)

    # -- events ----------------------------------------------------------------------------------
    def _fire_job(self, event: str, job: JobRecord) -> None:
        self.ctx.set_prop(ContextKey.JOB, copy.deepcopy(job))
        self.ctx.set_prop(ContextKey.JOB_NAME, job.name)
        self.ctx.set_prop(ContextKey.CONCRETE_SEARCH_VALUE, dict(job.recommendation.point))
        self._fire(event)

    def _fire(self, event: str) -> None:
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
        self.interrupts += 1

    def _install_signals(self) -> None:
        def on_signal(signum, frame):  # noqa: ARG001
            self.interrupts += 1

        import threading

        if threading.current_thread() is not threading.main_thread():
            return  # signals reach the main thread only; an embedding caller handles them
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._old_handlers[sig] = signal.signal(sig, on_signal)

    def _restore_signals(self) -> None:
        for sig, old in self._old_handlers.items():
            signal.signal(sig, old)

    def _handle_interrupts(self) -> None:
        if not self.interrupts:
            return
        if self.stopping is None or not self.stopping.startswith("interrupted"):
            self.stopping = None
            self._stop("interrupted")
            for running in self.running.values():
                self.executor.terminate(running, JobState.ABORTED, "interrupted")
        if self.interrupts >= 2:
            for running in self.running.values():
                if not running.killed_hard:
                    running.kill_reason = running.kill_reason or JobState.ABORTED
                    self.executor.kill_now(running)

    # -- the end -------------------------------------------------------------------------------------
    def _finish(self, reason: str) -> RunResult:
        # Whatever happened, no job process outlives the run.
        for running in self.running.values():
            self.executor.terminate(running, JobState.ABORTED, "the run stopped")
        deadline = time.monotonic() + 12
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
        for running in self.running.values():
            self.executor.kill_now(running)
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
        jobs = list(self.jobs.values())
        final = _final_jobs(jobs)
        if self.interrupts:
            code = EXIT_INTERRUPTED
        elif reason.startswith("error"):
            code = self._error_code
        elif any(j.state in (JobState.FAILED, JobState.TIMED_OUT) for j in final):
            code = EXIT_ERRORS
        else:
            code = EXIT_OK
        best = best_job(final)
        if self.journal is not None:
            self.journal.append(Op.RUN_ENDED, reason=reason, exit_code=code,
                                best=best.name if best else None, best_score=best.score if best else None)
            self.journal.close()
        return RunResult(code, reason, jobs, best)


def job_processes(folders: set[str]) -> list[tuple[int, int]]:
    """(pid, pgid) of live processes whose cwd is one of ``folders`` and that run mmar_automl code."""
    found = []
    if not folders:
        return found
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cwd = os.readlink(proc / "cwd")
            if cwd not in folders:
                continue
            fields = (proc / "stat").read_text().split(")")[-1].split()
            if fields[0] == "Z" or b"mmar_automl" not in (proc / "cmdline").read_bytes():
                continue
            found.append((int(proc.name), int(fields[2])))
        except (OSError, ValueError, IndexError):
            continue
    return found


def _final_jobs(jobs: list[JobRecord]) -> list[JobRecord]:
    """The last job of each recommendation (a retry supersedes the failure it re-ran)."""
    last: dict[int, JobRecord] = {}
    for job in sorted(jobs, key=lambda j: j.number):
        last[job.recommendation.rec_id] = job
    return list(last.values())


def _canon(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=list)
