"""Assemble a run from an MMAR and the command line: everything is loaded and checked before anything
is created under ``automl/`` (a run that fails validation leaves no trace), then the engine is built.

Resume: the journal's first event holds the space, the controller spec, the seed and hashes of the
configs; a changed search dimension (or a changed config) is a JournalError naming it (exit 2).
"""

from __future__ import annotations

import importlib.util
import inspect
import os
import random
import shutil
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from mmar_automl.config.mmar import ckpt_dir_name
from mmar_automl.config.overrides import RunKeys, check_not_searched
from mmar_automl.errors import ConfigError, JournalError, UsageError

DEFAULT_TRIALS = 30


def default_controller(space: Any) -> dict[str, Any]:
    """The controller of an MMAR without config_automl.json: an enum-only space is finite, so every
    combination is tried once (Clara's grid); a space with floats gets Optuna's TPE, which reached
    random search's 100-trial best within ~20 trials in scripts/bench_search.py, for 30 jobs."""
    if not space.continuous:
        return {"name": "GridController", "args": {}}
    return {"name": "OptunaController", "args": {"sampler": "tpe", "n_trials": DEFAULT_TRIALS}}


@dataclass
class RunOptions:
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
    no_mlflow: bool = False
    launcher: bool = True
    backend: str = "local"              # local | ray (mmar_automl/backends)
    ray_address: str | None = None
    live: bool | None = None


@dataclass
class PreparedRun:
    engine: Any
    run_id: str
    run_dir: Path
    resumed: bool


def _has_journal(run_dir: Path) -> bool:
    path = run_dir / "journal.jsonl"
    return path.is_file() and path.stat().st_size > 0


def _open_mmar(opts: RunOptions) -> Any:   # an Mmar or a Bundle (config/project.py)
    """The MMAR (or MONAI bundle, config/project.py) with the ``--set`` values written in: those given,
    or on ``--resume`` without any, the ones the run was started with (its journal header), so that
    resumed jobs train as the first ones."""
    from mmar_automl.config.project import open_project

    mmar = open_project(opts.mmar, opts.train_config, opts.automl_config, opts.overrides)
    if opts.resume and not mmar.overrides:
        from mmar_automl.run.jobfolder import validate_run_id
        from mmar_automl.run.journal import load_run_state

        journal = mmar.run_dir(validate_run_id(opts.resume)) / "journal.jsonl"
        try:
            saved = load_run_state(journal).header.get("overrides") if _has_journal(journal.parent) else None
        except JournalError:
            saved = None  # reported where the run is resumed
        if isinstance(saved, dict) and saved:
            mmar = open_project(opts.mmar, opts.train_config, opts.automl_config, saved)
    return mmar


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


def _check_limits(opts: RunOptions) -> None:
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


def _instantiate(cls: Any, args: dict[str, Any], spec: Any, seed: int | None = None) -> Any:
    kwargs = dict(args)
    if seed is not None:
        try:
            params = inspect.signature(cls).parameters
            if "seed" in params or any(p.kind is p.VAR_KEYWORD for p in params.values()):
                kwargs.setdefault("seed", seed)
        except (TypeError, ValueError):
            pass
    try:
        obj = cls(**kwargs)
    except TypeError as err:
        raise ConfigError(spec.file, f"{spec.json_path}.args", f"{spec.label}: {err}") from err
    except ConfigError as err:
        raise _in_spec_file(err, spec) from err
    if seed is not None and getattr(obj, "seed", None) is None:
        try:
            obj.seed = seed
        except AttributeError:
            pass
    return obj


def _check_controller(cls: Any, spec: Any, space: Any, seed: int, num_workers: int) -> None:
    """A throwaway instance takes the space now, so that a controller that cannot search it fails
    before anything is written (e.g. a float-only controller on an enum-only space)."""
    from mmar_automl.context import Context, ContextKey

    probe = _instantiate(cls, spec.args, spec, seed)
    try:
        probe.set_search_space(space, Context(**{ContextKey.SEED: seed, ContextKey.NUM_WORKERS: num_workers}))
    except ConfigError as err:
        raise _in_spec_file(err, spec) from err
    except (ValueError, TypeError, KeyError) as err:
        raise ConfigError(spec.file, spec.json_path, f"{spec.label} cannot search this space: {err}") from err


def _in_spec_file(err: ConfigError, spec: Any) -> ConfigError:
    """Components name the default config_automl.json in their errors; point at the file actually read."""
    if spec.file and err.file != str(spec.file):
        return ConfigError(spec.file, err.json_path, err.message)
    return err


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


def prepare_run(opts: RunOptions) -> PreparedRun:
    from mmar_automl.config.automl_config import ComponentSpec, load_automl_config
    from mmar_automl.run.engine import Engine, Limits
    from mmar_automl.backends.local import LocalBackend
    from mmar_automl.run.executor import MMARExecutor
    from mmar_automl.handlers.console import ConsoleHandler
    from mmar_automl.run.jobfolder import validate_run_id
    from mmar_automl.run.journal import config_hash, load_run_state
    from mmar_automl.config.jsonfile import load_json
    from mmar_automl.backends.launcher import ENTRY_ENV, default_entry
    from mmar_automl.bundle.files import load_config_file
    from mmar_automl.config.project import is_bundle_project
    from mmar_automl.search import parse_search_space
    from mmar_automl.run.workers import discover_gpus, parse_workers

    _check_limits(opts)
    from mmar_automl.backends import check_backend

    backend_name = check_backend(opts.backend, opts.ray_address)
    mmar = _open_mmar(opts)
    opts = _with_run_keys(opts, mmar.run_keys)
    root = mmar.root
    train_config = mmar.train_config
    train_name = mmar.label(mmar.train_config_file)
    bundle = is_bundle_project(mmar)   # a MONAI bundle (docs/bundles.md)
    if bundle:
        space = mmar.search_space()
        if len(space) == 0:
            raise ConfigError(train_name, None, "no search entries: nothing to search (add configs/search.json "
                              "or a \"search\" list beside a component's _target_)")
        mmar.check_not_searched(space)
        mmar.check()   # nothing to score, data not there: every job would fail the same way
    else:
        space = parse_search_space(train_config, train_name)
        if len(space) == 0:
            raise ConfigError(train_name, None, "no search blocks: nothing to search (add a \"search\" list)")
        check_not_searched(mmar.overrides, space, train_name)

    automl_file = mmar.automl_config_file
    if automl_file.is_file():
        acfg = load_automl_config(automl_file, root)
        controller_spec, executor_spec, handler_specs = acfg.controller, acfg.executor, list(acfg.handlers)
        automl_data = load_json(automl_file)
    elif mmar.automl_config_given:
        raise ConfigError(mmar.label(automl_file), None, "file not found")
    else:
        default = default_controller(space)
        controller_spec = ComponentSpec("controller", default["name"], None, default["args"], "controller", None)
        executor_spec, handler_specs, automl_data = None, [], {"controller": default}
    overrides = mmar.overrides
    if backend_name == "ray":  # --workers counts the cluster's GPUs (connect_ray, below), not this machine's
        from mmar_automl.backends import provisional_workers

        gpus, workers = [], provisional_workers(opts.workers)
    else:
        gpus = discover_gpus()
        workers = parse_workers(opts.workers, gpus)

    # -- the run folder: new or resumed ------------------------------------------------------------
    hashes = {"train": config_hash(load_config_file(mmar.train_config_file, train_name)),
              "automl": config_hash(automl_data)}
    controller_json = {"name": controller_spec.name, "path": controller_spec.path, "args": controller_spec.args}
    state = None
    if opts.resume:
        run_id = validate_run_id(opts.resume)
        run_dir = mmar.run_dir(run_id)
        if not _has_journal(run_dir):
            hint = f"; it never started: use --run-id {run_id}" if run_dir.is_dir() else ""
            raise UsageError(f"--resume {run_id}: no run there ({run_dir / 'journal.jsonl'} not found){hint}")
        state = load_run_state(run_dir / "journal.jsonl")
        header = state.header
        diff = _space_diff(header.get("space", {}), space.to_json())
        if diff:
            raise JournalError(f"{train_name}: {diff} since run {run_id} started; "
                               "resume needs the same space: start a new run instead")
        if header.get("controller") != controller_json:
            raise JournalError(f"{mmar.label(automl_file)}: controller changed since run {run_id} started "
                               f"({header.get('controller')} -> {controller_json}); start a new run instead")
        if header.get("config_hashes", {}).get("train") not in (None, hashes["train"]):
            raise JournalError(f"{train_name}: changed outside the search blocks since run {run_id} started; "
                               "resume needs the same config: start a new run instead")
        seed = int(header["seed"])
        if opts.seed is not None and opts.seed != seed:
            raise UsageError(f"--seed {opts.seed}: run {run_id} was started with seed {seed}")
        saved = header.get("options", {})
        if overrides != header.get("overrides", {}):  # _open_mmar took the run's own when none were given
            raise UsageError(f"--set differs from run {run_id}'s ({header.get('overrides', {})}); "
                             "resume without --set to keep them")
    else:
        run_id = validate_run_id(opts.run_id or time.strftime("%Y%m%d_%H%M%S"))
        run_dir = mmar.run_dir(run_id)
        if run_dir.exists() and not _has_journal(run_dir) and {p.name for p in run_dir.iterdir()} <= {"launcher.log", "journal.jsonl"}:
            shutil.rmtree(run_dir)  # an attempt that died before its first event: nothing to keep
        if run_dir.exists():
            raise UsageError(f"run {run_id} exists in {run_dir}: use --resume {run_id} or another --run-id")
        seed = opts.seed if opts.seed is not None else random.SystemRandom().randrange(2**31)
        saved = {}

    limits = Limits(
        max_jobs=opts.max_jobs if opts.max_jobs is not None else saved.get("max_jobs"),
        time_limit=opts.time_limit,  # wall time of this session: not inherited by a resume
        max_retries=opts.max_retries if opts.max_retries is not None else saved.get("max_retries", 0),
    )
    job_timeout = opts.job_timeout if opts.job_timeout is not None else saved.get("job_timeout")

    # -- components (BYOC imported from the MMAR) ------------------------------------------------
    controller_cls = controller_spec.load_class(root)
    controller = _instantiate(controller_cls, controller_spec.args, controller_spec, seed)
    _check_controller(controller_cls, controller_spec, space, seed, len(workers))
    if bundle:
        from mmar_automl.bundle.executor import BundleExecutor

        if executor_spec is not None and executor_spec.name != "MMARExecutor":
            raise ConfigError(executor_spec.file, executor_spec.json_path, f"{executor_spec.label}: a bundle search "
                              "runs its jobs with MONAI's bundle workflow; only MMARExecutor's args may be given")
        executor = BundleExecutor(**(executor_spec.args if executor_spec is not None else {}))
    elif executor_spec is not None:
        executor_cls = executor_spec.load_class(root)
        if not (isinstance(executor_cls, type) and issubclass(executor_cls, MMARExecutor)):
            raise ConfigError(executor_spec.file, executor_spec.json_path,
                              f"{executor_spec.label} must subclass mmar_automl.run.executor.MMARExecutor")
        executor = _instantiate(executor_cls, executor_spec.args, executor_spec)
    else:
        executor = MMARExecutor()
    handlers = []
    for spec in handler_specs:
        if opts.no_mlflow and spec.name == "MLflowHandler":
            continue
        handlers.append(_instantiate(spec.load_class(root), spec.args, spec))
    if (not opts.no_mlflow and not any(s.name == "MLflowHandler" for s in handler_specs)
            and importlib.util.find_spec("mmar_automl.handlers.mlflow") is not None):
        from mmar_automl.handlers.mlflow import MLflowHandler

        handlers.append(MLflowHandler())
    if not any(isinstance(h, ConsoleHandler) for h in handlers):
        handlers.append(ConsoleHandler(live=opts.live))
    mlflow_handlers = [h for h in handlers if type(h).__name__ == "MLflowHandler"]
    if mlflow_handlers:  # a bad --tracking-uri (e.g. a bare file store) is exit 2 now, not a warning later
        mlflow_handlers[0].check_options(root, opts.tracking_uri or getattr(mlflow_handlers[0], "tracking_uri", None))

    ray_backend = None
    if backend_name == "ray":  # connect last: every check above runs without a cluster
        from mmar_automl.backends import connect_ray
        from mmar_automl.run.jobfolder import absolutize_environment
        from mmar_automl.run.outputs import METRICS_FILE

        job_ckpt = ckpt_dir_name(absolutize_environment(mmar.environment, root))  # as every job folder has it
        ray_backend, workers = connect_ray(
            opts.ray_address, opts.workers, metrics=f"{job_ckpt}/{METRICS_FILE}",
            use_launcher=opts.launcher and os.environ.get("MMAR_AUTOML_NO_LAUNCHER") != "1")

    # -- nothing was created until here -------------------------------------------------------------
    run_dir.mkdir(parents=True, exist_ok=True)
    entry, preload = default_entry(), None
    if bundle and os.environ.get(ENTRY_ENV) is None:   # tests swap the job function for both kinds
        entry, preload = mmar.job_entry, mmar.job_preload
    backend = ray_backend if ray_backend is not None else LocalBackend(
        use_launcher=opts.launcher and os.environ.get("MMAR_AUTOML_NO_LAUNCHER") != "1",
        launcher_log=run_dir / "launcher.log", preload=preload)
    backend.start()  # the zygote warms up (imports torch, monai) while the engine starts
    executor.configure(mmar=mmar, backend=backend, entry=entry, job_timeout=job_timeout, run_marker=str(run_dir))
    options = {"tracking_uri": opts.tracking_uri, "experiment": opts.experiment,
               "log_models": opts.log_models, "resume": state is not None}
    header = {
        "controller": controller_json, "config_hashes": hashes, "mmar_root": str(root),
        "train_config": train_name, "entry": entry, "overrides": overrides, "project": getattr(mmar, "kind", "mmar"),
        "options": {"max_jobs": limits.max_jobs, "time_limit": limits.time_limit,
                    "max_retries": limits.max_retries, "job_timeout": job_timeout},
    }
    engine = Engine(
        run_id=run_id, run_dir=run_dir, mmar_root=root, space=space, controller=controller, executor=executor,
        handlers=handlers, workers=workers, gpus=gpus, seed=seed, limits=limits, header=header, resume=state,
        props={"OPTIONS": options, "CONTROLLER": controller_spec.label},
    )
    return PreparedRun(engine, run_id, run_dir, state is not None)
