"""Assemble a run from an MMAR and the command line: everything is loaded and checked before anything
is created under ``automl/`` (a run that fails validation leaves no trace), then the engine is built.

``prepare_run`` is a few named steps, in this order:

1. ``check_options``       the command line alone (limits, backend, --jobs-per-gpu; --set parsed once, Clara's
                           run_id=/workers= taken as --run-id/--workers): UsageError
2. ``read_resumed``        ``--resume``: the journal's state; options left out default to the journaled
                           ones (``plan.journaled_defaults``), a different value is used with a note
3. ``load_inputs``         the MMAR as ``config.mmar.Mmar`` opened it (train config with --set written in,
                           environment.json), or the MONAI bundle as ``bundle.Bundle`` did (docs/bundles.md;
                           ``config.project.open_project`` picks the kind): search space, config_automl.json
4. ``check_resume`` / ``new_run``   the run folder, the seed, the --set values; on resume, the same
                           space, controller and config as journaled (JournalError naming what changed)
5. ``resolve_plan``        every run option into one frozen RunPlan (workers, GPUs, packing, limits ...)
6. ``check_components``    build and check the controller (it takes the space now), executor and
                           handlers of config_automl.json; ``validate`` calls this step too
7. ``run_handlers``        the run's own handlers (MLflow unless --no-mlflow, the console)
8. ``start_engine``        connect the backend, create the run folder, build the engine
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from mmar_automl.config.mmar import AUTOML_CONFIG, TRAIN_CONFIG, Mmar
from mmar_automl.config.overrides import RUN_KEYS, RunKeys, check_not_searched, parse_overrides
from mmar_automl.errors import ConfigError, JournalError, UsageError



def default_controller(space: Any, max_jobs: int | None = None, warm_start: bool = False) -> Any:
    """The controller of an MMAR without config_automl.json, picked from the space and the budget
    (``--max-jobs``) by the rule in controllers/default.py; a DefaultChoice (spec and a one-line reason)."""
    from mmar_automl.controllers.default import choose_default

    return choose_default(space, max_jobs, warm_start)


@dataclass
class RunOptions:
    """The command line of ``run``. None: not given (a new run takes the default, a resume the journaled value)."""

    mmar: str
    run_id: str | None = None
    resume: str | None = None
    train_config: str | None = None
    automl_config: str | None = None
    workers: str | None = None
    overrides: list[str] = field(default_factory=list)
    seed: int | None = None
    max_jobs: int | None = None
    time_limit: float | None = None
    job_timeout: float | None = None
    max_retries: int | None = None
    tracking_uri: str | None = None
    experiment: str | None = None
    log_models: str | None = None
    no_mlflow: bool | None = None       # default False
    launcher: bool | None = None        # default True
    backend: str | None = None          # local | ray (mmar_automl/backends); default local
    ray_address: str | None = None
    live: bool | None = None
    jobs_per_gpu: str | None = None     # N | auto; default 1
    fast_paths: bool | None = None      # default True
    compile: bool | None = None         # default False
    warm_start: str | None = None       # run id of an earlier run of the MMAR whose jobs seed this one


@dataclass
class PreparedRun:
    engine: Any
    run_id: str
    run_dir: Path
    resumed: bool
    notes: list[str] = field(default_factory=list)   # lines for the user: notes (an option changed on resume, a config key with no effect), the default's choice, warm start


@dataclass
class RunInputs:
    """What the MMAR holds for a run (read once; config/mmar.py's Mmar owns these facts)."""

    mmar: Mmar                          # train config and environment with the --set values written in (a Bundle
                                        # for a MONAI bundle: the same interface)
    train_name: str                     # as shown in messages and journaled (relative to the root)
    train_hash: str                     # of the train config file as written (resume refuses a changed one)
    space: Any
    automl_name: str
    automl_data: dict[str, Any]         # config_automl.json as read (or the default controller)
    controller_spec: Any
    executor_spec: Any
    handler_specs: list[Any]
    notes: list[str]                    # config_automl.json keys accepted with no effect (Clara's), one line each
    controller_choice: str | None = None  # why the default controller was picked (no config_automl.json)
    values_hash: str | None = None      # of the train config without its search markers (--warm-start compares it)

    @property
    def root(self) -> Path:
        return self.mmar.root


@dataclass
class RunSession:
    """The run folder and what a new run draws or a resume reads back."""

    run_id: str
    run_dir: Path
    seed: int
    overrides: dict[str, Any]
    state: Any = None                   # journal.RunState of the run resumed (None: a new run)


@dataclass
class Components:
    controller: Any
    executor: Any
    handlers: list[Any]


def prepare_run(opts: RunOptions, console: Any = None, *, gpus: list[Any] | None = None,
                nvml_reader: Any = True) -> PreparedRun:
    """Check everything, then build the engine. ``console``: the rich Console handlers print to (the CLI's);
    ``gpus``: the GPUs to use instead of asking NVML, and ``nvml_reader`` the packing policy's memory
    reader (tests give fake ones)."""
    from mmar_automl.config.project import open_project, project_at, project_kind
    from mmar_automl.context import ContextKey
    from mmar_automl.run.engine import run_context

    given = parse_overrides(opts.overrides)
    opts = _with_run_keys(opts, RunKeys.split(given)[0])  # before a resume's defaults: given, not journaled
    check_options(opts)
    state = read_resumed(opts, project_at(opts.mmar, opts.automl_config))  # its work_dir: where the run is
    notes: list[str] = []
    if state is not None:
        opts, notes = _with_journaled(opts, state)
    mmar = open_project(opts.mmar, opts.train_config, opts.automl_config, _overrides_of(given, state))
    inputs = load_inputs(opts, mmar)
    if state is not None:
        inputs = _journaled_default(inputs, state)
    session = check_resume(opts, inputs, state) if state is not None else new_run(opts, inputs)
    plan = resolve_plan(opts, inputs, session, gpus)
    ctx = run_context(plan, inputs.space, **{ContextKey.CONTROLLER: inputs.controller_spec.label,
                                             ContextKey.CONSOLE: console})
    specs = [s for s in inputs.handler_specs if not (opts.no_mlflow and s.name == "MLflowHandler")]
    components = check_components(inputs.root, inputs.space, inputs.controller_spec, inputs.executor_spec, specs, ctx,
                                  kind=project_kind(mmar))
    warm, warm_notes = warm_start(opts, inputs, session, components)
    ctx.set_prop(ContextKey.WARM_START, (warm or {}).get("trials", []))  # read by initial_recommendation
    handlers = run_handlers(components.handlers, opts, plan, console)
    lines = [f"note: {note}" for note in [*notes, *inputs.notes]] + warm_notes
    if inputs.controller_choice is not None:
        lines.insert(0, f"controller: {_describe(_controller_json(inputs.controller_spec))} "
                        f"(default: {inputs.controller_choice}; docs/controllers.md)")
    return start_engine(plan, inputs, session, components, handlers, ctx, lines, nvml_reader, warm)


# -- 1. the command line ----------------------------------------------------------------------------

def check_options(opts: RunOptions) -> None:
    from mmar_automl.backends import check_backend
    from mmar_automl.run.packing import parse_jobs_per_gpu

    for name, value, minimum in (("--max-jobs", opts.max_jobs, 1), ("--max-retries", opts.max_retries, 0)):
        if value is not None and value < minimum:
            raise UsageError(f"{name} {value}: must be >= {minimum}")
    for name, value in (("--time-limit", opts.time_limit), ("--job-timeout", opts.job_timeout)):
        if value is not None and not value > 0:
            raise UsageError(f"{name} {value}: must be > 0 seconds")
    if opts.log_models is not None and opts.log_models not in ("best", "all", "none"):
        raise UsageError(f"--log-models {opts.log_models}: expected best, all or none")
    if opts.run_id and opts.resume:
        raise UsageError("give either --run-id (a new run) or --resume RUN_ID, not both")
    if opts.jobs_per_gpu is not None:
        parse_jobs_per_gpu(opts.jobs_per_gpu)
    if opts.backend is not None or opts.ray_address is not None:
        check_backend(opts.backend, opts.ray_address)


# -- 2. a resume's journal ----------------------------------------------------------------------------

def read_resumed(opts: RunOptions, mmar: Mmar) -> Any:
    """The RunState of ``--resume RUN_ID`` (None for a new run); UsageError when there is no such run."""
    from mmar_automl.run.jobfolder import validate_run_id
    from mmar_automl.run.journal import load_run_state

    if not opts.resume:
        return None
    run_id = validate_run_id(opts.resume)
    run_dir = mmar.run_dir(run_id)
    if not _has_journal(run_dir):
        hint = f"; it never started: use --run-id {run_id}" if run_dir.is_dir() else (
            "; a run made with --automl-config FILE whose MMARHandler has a work_dir is found with the same "
            "--automl-config" if opts.automl_config is None else "")
        raise UsageError(f"--resume {run_id}: no run there ({run_dir / 'journal.jsonl'} not found){hint}")
    return load_run_state(run_dir / "journal.jsonl")


def _with_journaled(opts: RunOptions, state: Any) -> tuple[RunOptions, list[str]]:
    """Options left out on the command line take the journaled values (the config files too)."""
    from mmar_automl.run.plan import journaled_defaults

    opts, notes = journaled_defaults(opts, state.options, state.header.get("run_id", opts.resume))
    header = state.header
    # The header names the files as Mmar.label wrote them: relative to the MMAR root (or absolute). Made
    # absolute here, or locate() would take a same-named file in the current folder first.
    if opts.train_config is None and header.get("train_config") not in (None, TRAIN_CONFIG):
        opts = replace(opts, train_config=str((Path(opts.mmar) / header["train_config"]).absolute()))
    if opts.automl_config is None and header.get("automl_config") not in (None, AUTOML_CONFIG):
        opts = replace(opts, automl_config=str((Path(opts.mmar) / header["automl_config"]).absolute()))
    return opts, notes


def _overrides_of(given: dict[str, Any], state: Any) -> dict[str, Any]:
    """The --set values: those given, or on ``--resume`` without config values, the ones the run was
    started with (its journal header), so that resumed jobs train as the first ones did. Clara's run keys
    (``trainconf=``, ``workers=``...) are options, not config values: given alone, they keep the journaled
    values too."""
    run_keys = {k: v for k, v in given.items() if k in RUN_KEYS}
    if len(run_keys) < len(given) or state is None:
        return given
    saved = state.header.get("overrides")
    return {**(saved if isinstance(saved, dict) else {}), **run_keys}


def _with_run_keys(opts: RunOptions, keys: RunKeys) -> RunOptions:
    """Clara's ``--set run_id=... workers=...`` become --run-id and --workers (the option wins when both
    are given and agree; different values are a usage error)."""
    changes = {}
    for key, option, current in (("run_id", "--run-id", opts.run_id), ("workers", "--workers", opts.workers)):
        value = getattr(keys, key)
        if value is None:
            continue
        if current is not None and current != value:
            raise UsageError(f"--set {key}={value} and {option} {current} differ: give one")
        changes[key] = value
    return replace(opts, **changes) if changes else opts


# -- 3. the MMAR ----------------------------------------------------------------------------------

def load_inputs(opts: RunOptions, mmar: Mmar) -> RunInputs:
    """The search space and config_automl.json of the MMAR that ``Mmar.open`` read (the one owner of its
    files), or of the bundle that ``Bundle.open`` read (its space, its checks: bundle/project.py)."""
    from mmar_automl.bundle.files import load_config_file
    from mmar_automl.config.automl_config import ComponentSpec, check_runs_dir, load_automl_config, no_effect_notes
    from mmar_automl.config.jsonfile import load_json
    from mmar_automl.config.project import project_kind
    from mmar_automl.run.journal import config_hash
    from mmar_automl.search import markers as mk
    from mmar_automl.search import parse_search_space
    from mmar_automl.search.render import strip_markers
    from mmar_automl.train.config import check_sections

    train_name = mmar.label(mmar.train_config_file)
    if project_kind(mmar) == "bundle":
        dialect = mk.BUNDLE
        space = mmar.search_space()
        if len(space) == 0:
            raise ConfigError(train_name, None, "no search entries: nothing to search (add configs/search.json "
                              "or a \"search\" list beside a component's _target_)")
        mmar.check_not_searched(space)
        mmar.check()   # nothing to score, data not there: every job would fail the same way
    else:
        dialect = mk.CLARA
        space = parse_search_space(mmar.train_config, train_name)
        if len(space) == 0:
            raise ConfigError(train_name, None, "no search blocks: nothing to search (add a \"search\" list)")
        check_not_searched(mmar.overrides, space, train_name)
        check_sections(mmar.train_config, train_name, required=False)  # "trian": every job would fail on it
    written = load_config_file(mmar.train_config_file, train_name)
    train_hash = config_hash(written)
    strip_markers(written, dialect)       # what the jobs' configs share whatever the search (--warm-start)
    values_hash = config_hash(written)

    automl_file = mmar.automl_config_file
    if automl_file.is_file():
        acfg = load_automl_config(automl_file, mmar.root)
        controller_spec, executor_spec, handler_specs = acfg.controller, acfg.executor, list(acfg.handlers)
        automl_data = load_json(automl_file)
        notes = no_effect_notes(acfg)
    elif mmar.automl_config_given:
        raise ConfigError(mmar.label(automl_file), None, "file not found")
    else:
        default = default_controller(space, opts.max_jobs, warm_start=opts.warm_start is not None)
        controller_spec = ComponentSpec("controller", default.spec["name"], None, default.spec["args"],
                                        "controller", None)
        executor_spec, handler_specs, automl_data, notes, acfg = None, [], {"controller": default.spec}, [], None
    check_runs_dir(mmar.runs_dir, acfg)  # <MMAR>/automl, or Clara's MMARHandler work_dir: creatable?
    return RunInputs(mmar, train_name, train_hash, space, mmar.label(automl_file), automl_data,
                     controller_spec, executor_spec, handler_specs, notes,
                     None if automl_file.is_file() else default.reason, values_hash)


# -- 4. the run folder, seed and --set values ---------------------------------------------------------------

def new_run(opts: RunOptions, inputs: RunInputs) -> RunSession:
    from mmar_automl.run.jobfolder import validate_run_id

    overrides = inputs.mmar.overrides
    run_id = validate_run_id(opts.run_id or time.strftime("%Y%m%d_%H%M%S"))
    run_dir = inputs.mmar.run_dir(run_id)
    if run_dir.exists() and not _has_journal(run_dir) and {p.name for p in run_dir.iterdir()} <= {"launcher.log", "journal.jsonl"}:
        shutil.rmtree(run_dir)  # an attempt that died before its first event: nothing to keep
    if run_dir.exists():
        raise UsageError(f"run {run_id} exists in {run_dir}: use --resume {run_id} or another --run-id")
    seed = opts.seed if opts.seed is not None else random.SystemRandom().randrange(2**31)
    return RunSession(run_id, run_dir, seed, overrides)


def check_resume(opts: RunOptions, inputs: RunInputs, state: Any) -> RunSession:
    """The run resumes only with the space, controller and config it was started with."""
    overrides = inputs.mmar.overrides
    header = state.header
    if opts.warm_start is not None:
        raise UsageError(f"--warm-start: run {header.get('run_id') or opts.resume} keeps the warm start it started "
                         "with; resume without it")
    run_id = str(header.get("run_id") or opts.resume)
    train_name = inputs.train_name
    diff = _space_diff(header.get("space", {}), inputs.space.to_json())
    if diff:
        raise JournalError(f"{train_name}: {diff} since run {run_id} started; "
                           "resume needs the same space: start a new run instead")
    controller_json = _controller_json(inputs.controller_spec)
    if header.get("controller") != controller_json:
        raise JournalError(f"{inputs.automl_name}: controller changed since run {run_id} started "
                           f"({header.get('controller')} -> {controller_json}); start a new run instead")
    if header.get("config_hashes", {}).get("train") not in (None, inputs.train_hash):
        raise JournalError(f"{train_name}: changed outside the search blocks since run {run_id} started; "
                           "resume needs the same config: start a new run instead")
    seed = int(header["seed"])
    if opts.seed is not None and opts.seed != seed:
        raise UsageError(f"--seed {opts.seed}: run {run_id} was started with seed {seed}")
    if overrides != header.get("overrides", {}):  # none given: _overrides_of took the journaled ones
        raise UsageError(f"--set differs from run {run_id}'s ({header.get('overrides', {})}); "
                         "resume without --set to keep them")
    return RunSession(run_id, inputs.mmar.run_dir(run_id), seed, dict(overrides), state)


# -- 5. the plan ----------------------------------------------------------------------------------

def resolve_plan(opts: RunOptions, inputs: RunInputs, session: RunSession, gpus: list[Any] | None = None) -> Any:
    """Every option of the run, resolved and checked, in one frozen value (``opts`` already holds the
    journaled values a resume defaults to). ``gpus``: instead of NVML's (tests)."""
    from mmar_automl.backends import check_backend
    from mmar_automl.run.packing import parse_jobs_per_gpu
    from mmar_automl.run.plan import Limits, RunPlan, Tracking
    from mmar_automl.run.workers import discover_gpus, parse_workers

    backend = check_backend(opts.backend, opts.ray_address)
    if backend == "ray":  # --workers counts the cluster's GPUs (start_engine connects), not this machine's
        from mmar_automl.backends import provisional_workers

        gpus, workers = [], provisional_workers(opts.workers)
    else:
        gpus = discover_gpus() if gpus is None else list(gpus)
        workers = parse_workers(opts.workers, gpus)
    state = session.state
    first_workers = len(state.header.get("workers") or []) if state is not None else 0
    return RunPlan(
        run_id=session.run_id, run_dir=session.run_dir, mmar_root=inputs.root, seed=session.seed,
        workers=tuple(workers), gpus=tuple(gpus), workers_text=opts.workers,
        jobs_per_gpu=parse_jobs_per_gpu(opts.jobs_per_gpu), backend=backend, ray_address=opts.ray_address,
        launcher=opts.launcher is not False,
        fast_paths=True if opts.fast_paths is None else bool(opts.fast_paths), compile=bool(opts.compile),
        limits=Limits(max_jobs=opts.max_jobs, time_limit=opts.time_limit,  # time: this session's, never journaled
                      max_retries=opts.max_retries if opts.max_retries is not None else 0),
        job_timeout=opts.job_timeout, controller_workers=first_workers or None,
        tracking=Tracking(opts.tracking_uri, opts.experiment, opts.log_models, not opts.no_mlflow),  # None: on
        resumed=state is not None,
    )


# -- 6. components (validate runs this step too) -------------------------------------------------------

def check_components(root: Path, space: Any, controller_spec: Any, executor_spec: Any, handler_specs: list[Any],
                     ctx: Any, byoc: bool = True, kind: str = "mmar") -> Components:
    """Build the components of config_automl.json (BYOC classes imported from the MMAR) and check them:
    the controller takes the search space now (with the run's context: seed, number of workers), so a
    controller that cannot search it fails before anything is written; a custom executor must be an
    MMARExecutor. The place for further checks of component args and ``path`` imports.
    ``byoc=False`` (validate, for now): components given by ``path`` are neither imported nor built
    (their entries are None). ``kind="bundle"``: the executor is the bundle's (only MMARExecutor's args
    may be given)."""
    from mmar_automl.run.executor import MMARExecutor

    def wanted(spec: Any) -> bool:
        return byoc or not spec.path

    controller = None
    if wanted(controller_spec):
        controller = _instantiate(controller_spec.load_class(root), controller_spec.args, controller_spec)
        try:
            controller.set_search_space(space, ctx)
        except ConfigError as err:
            raise _in_spec_file(err, controller_spec) from err
        except (ValueError, TypeError, KeyError) as err:
            raise ConfigError(controller_spec.file, controller_spec.json_path,
                              f"{controller_spec.label} cannot search this space: {err}") from err
    if kind == "bundle":
        from mmar_automl.bundle.executor import BundleExecutor

        if executor_spec is not None and executor_spec.name != "MMARExecutor":
            raise ConfigError(executor_spec.file, executor_spec.json_path, f"{executor_spec.label}: a bundle search "
                              "runs its jobs with MONAI's bundle workflow; only MMARExecutor's args may be given")
        executor = _instantiate(BundleExecutor, executor_spec.args if executor_spec is not None else {},
                                executor_spec) if executor_spec is not None else BundleExecutor()
    elif executor_spec is not None and not wanted(executor_spec):
        executor = None
    elif executor_spec is not None:
        executor_cls = executor_spec.load_class(root)
        if not (isinstance(executor_cls, type) and issubclass(executor_cls, MMARExecutor)):
            raise ConfigError(executor_spec.file, executor_spec.json_path,
                              f"{executor_spec.label} must subclass mmar_automl.run.executor.MMARExecutor: "
                              "mmar-automl starts and scores the job processes itself, so a Clara Executor's own "
                              "execute() cannot run here (docs/byoc.md)")
        executor = _instantiate(executor_cls, executor_spec.args, executor_spec)
    else:
        executor = MMARExecutor()
    handlers = [_instantiate(spec.load_class(root), spec.args, spec) if wanted(spec) else None for spec in handler_specs]
    return Components(controller, executor, handlers)


def _instantiate(cls: Any, args: dict[str, Any], spec: Any) -> Any:
    try:
        return cls(**args)
    except TypeError as err:
        raise ConfigError(spec.file, f"{spec.json_path}.args", f"{spec.label}: {err}") from err
    except ConfigError as err:
        raise _in_spec_file(err, spec) from err


def _in_spec_file(err: ConfigError, spec: Any) -> ConfigError:
    """Components name the default config_automl.json in their errors; point at the file actually read."""
    if spec.file and err.file != str(spec.file):
        return ConfigError(spec.file, err.json_path, err.message)
    return err


def _journaled_default(inputs: RunInputs, state: Any) -> RunInputs:
    """No config_automl.json: the default was picked when the run started (it depends on --max-jobs and
    --warm-start), so a resume keeps that controller whatever this command line says."""
    from mmar_automl.config.automl_config import ComponentSpec

    journaled = state.header.get("controller")
    if inputs.controller_choice is None or not isinstance(journaled, dict):
        return inputs
    spec = ComponentSpec("controller", journaled["name"], None, journaled.get("args", {}), "controller", None)
    return replace(inputs, controller_spec=spec, automl_data={"controller": {"name": spec.name, "args": spec.args}},
                   controller_choice=state.header.get("controller_choice") or "the controller the run started with")


def warm_start(opts: RunOptions, inputs: RunInputs, session: RunSession, components: Components) -> tuple[Any, list[str]]:
    """``--warm-start RUN_ID``: the earlier run's finished jobs (journaled in the header; a resume reads
    them back there) and one line per dimension that changed (run/warmstart.py)."""
    if session.state is not None:
        return session.state.header.get("warm_start"), []
    if opts.warm_start is None:
        return None, []
    from mmar_automl.run.warmstart import load_warm_start

    if not getattr(components.controller, "accepts_warm_start", False):
        raise UsageError(f"--warm-start: {inputs.controller_spec.label} does not learn from earlier jobs; use "
                         "OptunaController (or no config_automl.json)")
    loaded = load_warm_start(inputs.mmar.runs_dir, opts.warm_start, inputs.space, inputs.values_hash,
                             inputs.mmar.config_values(inputs.space))
    return loaded.to_json(), list(loaded.notes)


# -- 7. the run's own handlers ----------------------------------------------------------------------------

def run_handlers(handlers: list[Any], opts: RunOptions, plan: Any, console: Any) -> list[Any]:
    """config_automl.json's handlers plus MLflow (unless --no-mlflow) and the console progress."""
    from mmar_automl.handlers.console import ConsoleHandler

    handlers = list(handlers)
    if plan.tracking.enabled and not any(type(h).__name__ == "MLflowHandler" for h in handlers):
        from mmar_automl.handlers.mlflow import MLflowHandler

        handlers.append(MLflowHandler())
    if not any(isinstance(h, ConsoleHandler) for h in handlers):
        handlers.append(ConsoleHandler(live=opts.live, console=console))
    mlflow_handlers = [h for h in handlers if type(h).__name__ == "MLflowHandler"]
    if mlflow_handlers:  # a bad --tracking-uri (e.g. a bare file store) is exit 2 now, not a warning later
        first = mlflow_handlers[0]
        first.check_options(plan.mmar_root, plan.tracking.tracking_uri or getattr(first, "tracking_uri", None))
    return handlers


# -- 8. the engine ----------------------------------------------------------------------------------

def start_engine(plan: Any, inputs: RunInputs, session: RunSession, components: Components, handlers: list[Any],
                 ctx: Any, notes: list[str], nvml_reader: Any = True, warm: Any = None) -> PreparedRun:
    """Connect the backend (Ray last: every check above runs without a cluster), create the run folder
    (nothing was created until here), configure the executor, build the engine."""
    from mmar_automl.backends.launcher import ENTRY_ENV, default_entry
    from mmar_automl.backends.local import LocalBackend
    from mmar_automl.run.engine import Engine, plan_props
    from mmar_automl.run.journal import config_hash
    from mmar_automl.run.packing import make_packer
    from mmar_automl.config.project import project_kind
    from mmar_automl.run.signals import Interrupts

    interrupts = Interrupts()
    use_launcher = plan.launcher and os.environ.get("MMAR_AUTOML_NO_LAUNCHER") != "1"
    if plan.backend == "ray":
        from mmar_automl.backends import connect_ray
        from mmar_automl.run.jobfolder import job_ckpt_subdir
        from mmar_automl.run.outputs import METRICS_FILE

        job_ckpt = job_ckpt_subdir(inputs.mmar.environment, inputs.root)
        backend, workers = connect_ray(plan.ray_address, plan.workers_text, use_launcher=use_launcher,
                                       metrics=f"{job_ckpt}/{METRICS_FILE}")
        plan = replace(plan, workers=tuple(workers))
        for key, value in plan_props(plan).items():  # the cluster's workers, not the provisional ones
            ctx.set_prop(key, value)
    else:
        backend = None
    entry, preload = default_entry(), None
    if getattr(inputs.mmar, "job_entry", None) and os.environ.get(ENTRY_ENV) is None:
        entry, preload = inputs.mmar.job_entry, inputs.mmar.job_preload   # a bundle's job: monai.bundle's workflow
    plan.run_dir.mkdir(parents=True, exist_ok=True)
    if backend is None:
        backend = LocalBackend(use_launcher=use_launcher, launcher_log=plan.run_dir / "launcher.log", cancel=interrupts,
                               preload=preload)
    backend.start()  # the zygote warms up (imports torch, monai) while the engine starts
    executor = components.executor
    executor.configure(mmar=inputs.mmar, backend=backend, entry=entry, job_timeout=plan.job_timeout,
                       run_marker=str(plan.run_dir), space=inputs.space)
    header = {
        "controller": _controller_json(inputs.controller_spec), "mmar_root": str(inputs.root),
        "config_hashes": {"train": inputs.train_hash, "train_values": inputs.values_hash,
                          "automl": config_hash(inputs.automl_data)},
        "train_config": inputs.train_name, "automl_config": inputs.automl_name, "entry": entry,
        "overrides": session.overrides, "project": project_kind(inputs.mmar),
    }
    if inputs.controller_choice is not None:
        header["controller_choice"] = inputs.controller_choice
    if warm is not None:
        header["warm_start"] = warm
    packer = make_packer(plan.jobs_per_gpu, list(plan.gpus), any(w.gpus for w in plan.workers), reader=nvml_reader)
    engine = Engine(plan=plan, space=inputs.space, controller=components.controller, executor=executor,
                    handlers=handlers, ctx=ctx, state=session.state, header=header, packer=packer,
                    interrupts=interrupts)
    return PreparedRun(engine, plan.run_id, plan.run_dir, session.state is not None, notes)


# -- helpers ---------------------------------------------------------------------------------------

def _controller_json(spec: Any) -> dict[str, Any]:
    return {"name": spec.name, "path": spec.path, "args": spec.args}


def _has_journal(run_dir: Path) -> bool:
    path = run_dir / "journal.jsonl"
    return path.is_file() and path.stat().st_size > 0


def _space_diff(old: dict[str, Any], new: dict[str, Any]) -> str | None:
    """Name the first dimension that differs between two spaces' JSON, or None."""
    olds = {d["name"]: d for d in old.get("dimensions", [])}
    news = {d["name"]: d for d in new.get("dimensions", [])}
    for name, dim in olds.items():
        if name not in news:
            return f"search dimension {name!r} was removed"
        if dim != news[name]:
            what = [k for k in dim if dim.get(k) != news[name].get(k)]
            key = what[0] if what else "definition"
            return f"search dimension {name!r} changed its {key}: {dim.get(key)!r} -> {news[name].get(key)!r}"
    for name in news:
        if name not in olds:
            return f"search dimension {name!r} was added"
    if [d["name"] for d in old.get("dimensions", [])] != [d["name"] for d in new.get("dimensions", [])]:
        return "search dimensions were reordered"
    return None


@contextlib.contextmanager
def clara_environment(root: str | Path) -> Iterator[None]:
    """The environment Clara's BYOC code ran in, while a run goes; a variable already set is kept:

    - ``MMAR_ROOT``, the MMAR's absolute path, as Clara's commands/set_env.sh exported it: BYOC handlers and
      controllers read ``os.getenv("MMAR_ROOT")``;
    - ``MLFLOW_ALLOW_FILE_STORE=true``: Clara-era handlers track to a folder
      (``mlflow.set_tracking_uri("/.../mlruns")``), which MLflow 3 refuses without it (one warning per job,
      nothing logged). mmar-automl's own tracking still refuses a folder (tracking/uri.py)."""
    added = {}
    for name, value in (("MMAR_ROOT", str(Path(root).resolve())), ("MLFLOW_ALLOW_FILE_STORE", "true")):
        if not os.environ.get(name):
            os.environ[name] = added[name] = value
    try:
        yield
    finally:
        for name in added:
            os.environ.pop(name, None)


def _describe(controller: dict[str, Any]) -> str:
    """``OptunaController(sampler=gp, n_startup_trials=5)``: a controller spec on one line."""
    args = dict(controller.get("args") or {})
    args.update(args.pop("sampler_args", None) or {})
    shown = ", ".join(f"{k}={v}" for k, v in args.items())
    return f"{controller['name']}({shown})" if shown else controller["name"]
