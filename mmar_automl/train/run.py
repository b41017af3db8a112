"""Entry points of the inner loop: ``main(argv)`` (= ``mmar-automl train``) and ``preload()``.

``main`` runs inside a job process forked from a preloaded launcher (cwd = the job folder, stdout and
stderr already redirected to log.txt), so it keeps no module-level state between calls, never calls
sys.exit, and undoes what it changes in the process (sys.path, cwd, modules imported from the MMAR).
Exit codes: 0 trained (with or without a score), 1 failed (exception, NaN/inf loss, OOM),
2 configuration or usage error; failures print one line on stderr.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import warnings
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mmar_automl.errors import ConfigError, MmarAutomlError, UsageError
from mmar_automl.train.failures import failure_reason, log_traceback, root_cause

# Heavy modules a job needs; imported (never run) by preload() so that forked children start fast.
PRELOAD_MODULES = (
    "numpy",
    "torch",
    "torch.optim",
    "torch.optim.lr_scheduler",
    "torch._dynamo",  # pulled in by the first optimizer step: ~2 s otherwise
    "torch.utils.tensorboard",
    "nibabel",
    "ignite.engine",
    "ignite.metrics",
    "ignite.handlers",
    "monai",
    "monai.transforms",
    "monai.networks.nets",
    "monai.losses",
    "monai.metrics",
    "monai.handlers",
    "monai.inferers",
    "monai.data",
    "monai.optimizers",
    "monai.engines",
    "monai.utils",
    "mmar_automl.train.clara_compat",
    "mmar_automl.train.resolver",
    "mmar_automl.train.outputs",
)


def preload() -> None:
    """Import everything heavy a job needs. Runs no torch op and never touches CUDA: a fork of a
    parent that did can hang or fail to initialise CUDA (DESIGN.md section 9)."""
    import importlib

    for name in PRELOAD_MODULES:
        try:
            importlib.import_module(name)
        except ImportError:  # optional pieces (tensorboard) may be missing: the job imports on demand
            pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override] - raise, never sys.exit
        raise UsageError(f"train: {message}")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="mmar-automl train", add_help=False)
    p.add_argument("mmar_root")
    p.add_argument("--config", default=None)
    p.add_argument("--set", dest="overrides", nargs="+", action="extend", default=[], metavar="KEY=VALUE")
    p.add_argument("--device", choices=("cpu", "cuda"), default=None)
    p.add_argument("--compile", action="store_true")  # torch.compile the network (train/fastpaths.py)
    p.add_argument("--no-fast-paths", dest="fast_paths", action="store_false")
    p.add_argument("--nproc", type=int, default=None)  # ranks of one DDP job (train/distributed.py)
    return p


def main(argv: list[str]) -> int:
    """``mmar-automl train MMAR_ROOT [--config PATH] [--set KEY=VALUE ...] [--device cpu|cuda]``."""
    def call() -> int:
        opts = _parser().parse_args(argv)
        if opts.nproc is not None and opts.nproc < 1:
            raise UsageError(f"train: --nproc {opts.nproc}: must be >= 1")
        return train(opts.mmar_root, config=opts.config, overrides=opts.overrides, device=opts.device,
                     compile=opts.compile, fast_paths=opts.fast_paths, nproc=opts.nproc)

    return one_line_entry(call)


def one_line_entry(call: Callable[[], int]) -> int:
    """A job entry's last line of defence (the MMAR trainer's and a bundle job's): a usage or config error
    is its one line and exit code, Ctrl-C is 130, anything else one line and exit 1; never sys.exit."""
    try:
        return call()
    except MmarAutomlError as err:
        _error(str(err))
        return err.exit_code
    except KeyboardInterrupt:
        _error("train: interrupted")
        return 130
    except Exception as err:  # noqa: BLE001 - e.g. models/ not writable: still one line, exit 1
        _error(f"train failed: {type(err).__name__}: {err}")
        return 1


def train(mmar_root: str | Path, config: str | Path | None = None, overrides: list[str] | None = None,
          device: str | None = None, compile: bool = False, fast_paths: bool = True, nproc: int | None = None) -> int:
    """Train one MMAR; returns the exit code. ConfigError/UsageError before training are raised.
    ``compile``/``fast_paths``: see mmar_automl.train.fastpaths (docs/gpu.md). ``nproc`` > 1 (or
    ``multi_gpu: true`` with several visible GPUs) trains as that many DDP ranks (train/distributed.py)."""
    from mmar_automl.config.mmar import Mmar
    from mmar_automl.config.suggest import did_you_mean
    from mmar_automl.train.config import check_sections
    from mmar_automl.train.wiring import wire

    mmar = Mmar.open(mmar_root, config, overrides=overrides or [])
    for key in ("run_id", "workers"):
        if getattr(mmar.run_keys, key) is not None:
            _out(f"note: --set {key}: a run option of `mmar-automl run`; no effect on train")
    conf = wire(mmar.substituted_config(), mmar.variables())  # Clara 4.0's implicit args written out (train/wiring.py)
    file = mmar.label(mmar.train_config_file)
    check_sections(conf, file)
    if "trainer" not in conf["train"]:
        raise ConfigError(file, ("train", "trainer"), "missing: a Clara 4.x config needs train.trainer"
                          f"{did_you_mean('trainer', conf['train'])}")

    from mmar_automl.train import distributed

    ranks = distributed.resolve_nproc(nproc, conf.get("multi_gpu"), device)  # before any torch op: ranks fork
    if ranks > 1 and not distributed.current().active:
        holder: dict[str, Any] = {}

        def peer_failed(reason: str) -> None:
            if holder.get("recorder") is not None:
                holder["recorder"].finish("failed", reason)
            _error(f"train failed: {reason}")

        return distributed.launch(ranks, lambda: _train_process(mmar, conf, file, device, compile, fast_paths, holder),
                                  peer_failed)
    return _train_process(mmar, conf, file, device, compile, fast_paths, {})


def _train_process(mmar: Any, conf: dict, file: str, device: str | None, compile: bool, fast_paths: bool,
                   holder: dict[str, Any]) -> int:
    """One process of the training: the only one, or one rank of a distributed job."""
    import torch

    from mmar_automl.train import distributed

    me = distributed.current()

    if os.environ.get("OMP_NUM_THREADS", "").isdigit():
        # A forked job inherits the launcher's torch, imported before the variable was set: apply it.
        torch.set_num_threads(max(1, int(os.environ["OMP_NUM_THREADS"])))

    from mmar_automl.train.outputs import JobRecorder
    from mmar_automl.train.resolver import Builder

    chosen = _device(conf, device, file)
    from mmar_automl.train.fastpaths import decide as decide_fast_paths

    fast = decide_fast_paths(conf, chosen, file, compile=compile, enabled=fast_paths)
    # Only rank 0 writes the job's files (metrics.jsonl, train_stats.json, the checkpoint).
    recorder = JobRecorder(mmar.ckpt_dir) if me.rank == 0 else None
    holder["recorder"] = recorder
    where = f"{chosen} x {me.world_size} ranks" if me.active else chosen
    _out(f"train {mmar.root} config {file} on {where} -> {mmar.ckpt_dir}")
    _out(f"fast paths: {fast.describe()}")
    with _inside_mmar(mmar.root):
        try:
            if me.active:
                distributed.init_process_group(chosen)
            _determinism(conf, file)
            fast.apply_globals()
            builder = Builder(conf, file, mmar.root, chosen)
            builder.fast_paths = fast
            builder.check()  # config mistakes in a second, before any data is loaded
            trainer = builder.get("train", "trainer")
            final = _final_validation(conf, file)
            evaluator = builder.built.get(("validate", "evaluator"))
            if evaluator is None and final and builder.has("validate", "evaluator"):
                evaluator = builder.get("validate", "evaluator")  # no ValidationHandler: validate at the end
            if recorder is not None:
                recorder.attach(trainer, evaluator, builder.checkpoint_dict)
                recorder.extra = {"device": chosen, "amp": builder.amp, "fast_paths": fast.summary(),
                                  "world_size": me.world_size}
                recorder.probes.append(fast.memory_probe)  # peak_gpu_memory_bytes on every line (packing.py)
            with one_line_logs():
                trainer.run()
                if final and evaluator is not None and _last_epoch_unvalidated(trainer, evaluator):
                    _out(f"final validation: epoch {trainer.state.epoch} was not validated "
                         f"(set final_validation=false to skip)")
                    evaluator.run(trainer.state.epoch)
        except (Exception, KeyboardInterrupt) as err:  # noqa: BLE001 - a failed job is one line and exit 1
            return job_failed(recorder, err)
        finally:
            distributed.destroy_process_group()
    return job_completed(recorder)


def job_failed(recorder: Any, err: BaseException) -> int:
    """The end of a job that raised (the MMAR trainer's and a bundle job's alike): its one-line reason into
    the recorder (None on ranks > 0) and exit 1; a ConfigError (exit 2) and Ctrl-C are recorded and re-raised."""
    import torch

    from mmar_automl.train.outputs import NonFiniteLoss

    if isinstance(err, (ConfigError, KeyboardInterrupt)):
        if recorder is not None:
            recorder.finish("failed", "interrupted" if isinstance(err, KeyboardInterrupt) else str(err))
        raise err
    if isinstance(err, torch.cuda.OutOfMemoryError):
        return _failed(recorder, f"out of memory: {str(err).splitlines()[0]}")
    if not isinstance(err, NonFiniteLoss):
        log_traceback()
    cause = root_cause(err)
    if isinstance(cause, NonFiniteLoss):
        return _failed(recorder, f"stopped: {cause}")
    return _failed(recorder, failure_reason(cause))


def job_completed(recorder: Any) -> int:
    """The end of a job that trained: train_stats.json written, one summary line (rank 0 only), exit 0."""
    if recorder is None:
        return 0
    stats = recorder.finish("complete")
    if stats["best_validation_metric"] is None:
        _out(f"done in {stats['total_time']:.1f}s: no score (never validated)")
    else:
        _out(f"done in {stats['total_time']:.1f}s: best {stats['key_metric']} "
             f"{stats['best_validation_metric']:.4f} at epoch {stats['best_validation_epoch']}")
    return 0


def _last_epoch_unvalidated(trainer: Any, evaluator: Any) -> bool:
    """Whether training ended on an epoch the evaluator did not run for (MONAI's ``Evaluator.run(epoch)``
    leaves its state at that epoch). Decided from the engines, so every rank of a DDP job agrees."""
    return trainer.state.epoch > 0 and getattr(evaluator.state, "epoch", 0) != trainer.state.epoch


def _failed(recorder: Any, reason: str) -> int:
    from mmar_automl.train import distributed

    # In a distributed job rank 0's own error is often the echo of a rank that died first: name that one.
    peer = distributed.peer_failure()
    reason = peer or reason
    distributed.note_failure(reason)
    if recorder is not None:
        recorder.finish("failed", reason)
    # One failure line per job: a rank > 0 sends its line to rank 0 (note_failure), and a peer's failure
    # is printed by rank 0's watcher (train.peer_failed).
    if peer is None and distributed.current().rank == 0:
        _error(f"train failed: {reason}")
    return 1


def _final_validation(conf: dict, file: str) -> bool:
    """First-level ``final_validation`` (default true): validate once more after the last epoch when
    that epoch did not validate, so that a job shorter than ``num_interval_per_valid`` still has a score."""
    value = conf.get("final_validation", True)
    if not isinstance(value, bool):
        raise ConfigError(file, ("final_validation",), f"must be true or false, got {value!r}")
    return value


def _device(conf: dict, requested: str | None, file: str) -> str:
    import torch

    if requested == "cuda" and not torch.cuda.is_available():
        raise UsageError("train: --device cuda, but torch sees no CUDA device")
    if requested:
        return requested
    use_gpu = conf.get("use_gpu", True)
    if not isinstance(use_gpu, bool):
        raise ConfigError(file, ("use_gpu",), f"must be true or false, got {use_gpu!r}")
    if use_gpu and not torch.cuda.is_available():
        given = os.environ.get("CUDA_VISIBLE_DEVICES", "").strip()
        if given and given != "-1":  # given GPUs (run sets "" for a CPU job): hours on the CPU are no fallback
            raise UsageError(f"train: given GPU(s) CUDA_VISIBLE_DEVICES={given}, but CUDA is unusable "
                             f"({_cuda_error()}); use --device cpu or use_gpu false to train on the CPU")
    return "cuda" if use_gpu and torch.cuda.is_available() else "cpu"


def _cuda_error() -> str:
    """Why torch cannot use CUDA, in one line (e.g. "Cannot re-initialize CUDA in forked subprocess")."""
    import torch

    try:
        torch.cuda.init()
    except Exception as err:  # noqa: BLE001 - the message is the point
        return str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return "torch.cuda.is_available() is False"


def _determinism(conf: dict, file: str) -> None:
    """``determinism.random_seed`` seeds python, numpy and torch (MONAI's set_determinism, as Clara);
    ``cudnn_benchmark`` picks the cuDNN autotuner."""
    import torch
    from monai.utils import set_determinism

    seed = (conf.get("determinism") or {}).get("random_seed") if isinstance(conf.get("determinism"), dict) else None
    if seed is not None:
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise ConfigError(file, ("determinism", "random_seed"), f"must be an integer, got {seed!r}")
        set_determinism(seed=seed)
    bench = conf.get("cudnn_benchmark")
    if isinstance(bench, bool):
        torch.backends.cudnn.benchmark = bench  # an explicit true wins over the seed's determinism


@contextmanager
def _inside_mmar(root: Path):
    """Paths in configs are relative to the MMAR root, and ``path`` components import from its root,
    ``custom/`` and ``BYOC/``: set cwd and sys.path for the run, then restore both and forget the
    modules imported from the MMAR (the next call in this process may train another MMAR)."""

    old_cwd, old_path = os.getcwd(), list(sys.path)
    before = set(sys.modules)
    # ignite logs "run is terminating due to exception" to stderr through logging's last resort;
    # stderr is for our one failure line, so its log goes to stdout (the job's log) meanwhile.
    ignite_log = logging.getLogger("ignite")
    old_propagate = ignite_log.propagate
    to_stdout = logging.StreamHandler(sys.stdout)
    to_stdout.addFilter(_first_line)  # its "terminating due to exception" repeats a worker's whole traceback
    ignite_log.addHandler(to_stdout)
    ignite_log.propagate = False
    # Library warnings (MONAI deprecations...) likewise go to the log on stdout.
    old_showwarning = warnings.showwarning
    warnings.showwarning = _warning_to_stdout
    for sub in ("BYOC", "custom", ""):
        folder = root / sub if sub else root
        if folder.is_dir():
            sys.path.insert(0, str(folder))
    os.chdir(root)
    try:
        yield
    finally:
        warnings.showwarning = old_showwarning
        ignite_log.removeHandler(to_stdout)
        ignite_log.propagate = old_propagate
        os.chdir(old_cwd)
        sys.path[:] = old_path
        for name in set(sys.modules) - before:
            origin = getattr(sys.modules.get(name), "__file__", None) or ""
            if origin and Path(origin).resolve().is_relative_to(root):
                del sys.modules[name]


def _first_line(record: logging.LogRecord) -> bool:
    """A log record keeps the first line of its message and, unless --debug, drops its traceback: the
    traceback is printed once, by log_traceback, where it belongs (the job's log.txt, or --debug)."""
    message = record.getMessage()
    if "\n" in message:
        record.msg, record.args = message.splitlines()[0] + " [...]", None
    if record.exc_info and not os.environ.get("MMAR_AUTOML_DEBUG"):
        record.exc_info, record.exc_text = None, None
    return True


@contextmanager
def one_line_logs():
    """While engines run: every logging handler then installed (ignite's, MONAI's StatsHandler's) logs
    an exception in one line. StatsHandler logs each exception with its whole traceback, a DataLoader
    worker's error with the worker's traceback inside its message: ~50 lines for one failure."""
    loggers = [logging.getLogger(), *(lg for lg in logging.root.manager.loggerDict.values()
                                      if isinstance(lg, logging.Logger))]
    handlers = {h for lg in loggers for h in lg.handlers}
    for handler in handlers:
        handler.addFilter(_first_line)
    try:
        yield
    finally:
        for handler in handlers:
            handler.removeFilter(_first_line)


def _warning_to_stdout(message, category, filename, lineno, file=None, line=None) -> None:  # noqa: ANN001
    print(warnings.formatwarning(message, category, filename, lineno, line), end="", flush=True)


def _out(line: str) -> None:
    print(line, flush=True)


def _error(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


if __name__ == "__main__":  # pragma: no cover - ``python -m mmar_automl.train.run MMAR``
    sys.exit(main(sys.argv[1:]))
