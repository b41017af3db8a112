"""RunPlan and the journaled defaults of a resume: pure functions, no run."""

from __future__ import annotations

import json
from pathlib import Path

from mmar_automl.run.plan import RunPlan, journaled_defaults
from mmar_automl.run.setup import RunOptions
from mmar_automl.run.workers import WorkerSpec


def _plan(**kw) -> RunPlan:
    return RunPlan(run_id="r", run_dir=Path("/x/automl/r"), mmar_root=Path("/x"), seed=1, **kw)


def test_slots_and_num_workers():
    gpu_workers = (WorkerSpec(1, [0]), WorkerSpec(2, [1]))
    assert [(s.number, s.gpus) for s in _plan(workers=gpu_workers, jobs_per_gpu=2).slots] == [
        (1, [0]), (2, [0]), (3, [1]), (4, [1])]
    assert len(_plan(workers=gpu_workers, jobs_per_gpu="auto").slots) == 16   # AUTO_MAX_PER_GPU per GPU
    assert len(_plan(workers=(WorkerSpec(1),), jobs_per_gpu="auto").slots) == 1  # CPU: nothing to measure
    assert _plan(workers=gpu_workers, jobs_per_gpu=2).num_workers == 4
    assert _plan(workers=gpu_workers, controller_workers=3).num_workers == 3   # a resume: the first session's


def test_job_env_only_when_the_fast_paths_differ_from_the_default():
    assert _plan(workers=()).job_env() == {}
    env = _plan(workers=(), fast_paths=False).job_env()
    assert json.loads(env["MMAR_AUTOML_FAST_PATHS"]) == {"enabled": False, "compile": False}
    assert json.loads(_plan(workers=(), compile=True).job_env()["MMAR_AUTOML_FAST_PATHS"])["compile"] is True


def test_options_round_trip_through_journaled_defaults():
    saved = _plan(workers=(WorkerSpec(1),), workers_text="cpu:cpu", jobs_per_gpu=2, fast_paths=False).options_json()
    opts, notes = journaled_defaults(RunOptions(mmar="m", resume="r"), saved, "r")
    assert (opts.workers, opts.jobs_per_gpu, opts.fast_paths, opts.backend, opts.launcher, opts.no_mlflow) == (
        "cpu:cpu", 2, False, "local", True, False)
    assert notes == []


def test_a_different_value_is_used_with_a_note():
    saved = {"workers": "0:0", "jobs_per_gpu": "auto", "compile": False, "job_timeout": 60.0, "max_jobs": None}
    opts, notes = journaled_defaults(RunOptions(mmar="m", workers="0", jobs_per_gpu="AUTO", compile=True,
                                                job_timeout=60, max_jobs=5), saved, "r")
    assert (opts.workers, opts.compile, opts.max_jobs) == ("0", True, 5)
    assert notes == ["--workers 0: run r was started with --workers 0:0; using --workers 0",
                     "--compile: run r was started with --no-compile; using --compile",
                     "--max-jobs 5: run r was started with the default; using --max-jobs 5"]


def test_an_option_missing_from_an_older_journal_is_left_as_given():
    opts, notes = journaled_defaults(RunOptions(mmar="m"), {"max_jobs": 3}, "r")
    assert (opts.workers, opts.max_jobs, notes) == (None, 3, [])


def test_the_ray_address_goes_with_the_journaled_backend_only():
    saved = {"backend": "ray", "ray_address": "head:6379"}
    assert journaled_defaults(RunOptions(mmar="m"), saved, "r")[0].ray_address == "head:6379"
    opts, notes = journaled_defaults(RunOptions(mmar="m", backend="local"), saved, "r")
    assert (opts.backend, opts.ray_address) == ("local", None)
    assert notes == ["--backend local: run r was started with --backend ray; using --backend local"]
