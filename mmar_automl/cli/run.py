"""`mmar-automl run MMAR`: search hyperparameters, one training job per point, journaled and resumable."""

from __future__ import annotations

from typing import Optional

import typer

from mmar_automl.cli import app


@app.command("run", context_settings={"allow_interspersed_args": True})
def run(
    mmar: str = typer.Argument(..., metavar="MMAR", help="The MMAR (or MONAI bundle, docs/bundles.md) folder."),
    extra: Optional[list[str]] = typer.Argument(
        None, metavar="[KEY=VALUE]...", help="More --set overrides: --set epochs=2 num_interval_per_valid=1."),
    run_id: Optional[str] = typer.Option(None, "--run-id", metavar="RUN_ID", help="Name of the run (automl/<run_id>); default: a timestamp."),
    resume: Optional[str] = typer.Option(None, "--resume", metavar="RUN_ID", help="Continue a stopped run."),
    train_config: Optional[str] = typer.Option(None, "--train-config", metavar="FILE", help="Default: config/config_train.json."),
    automl_config: Optional[str] = typer.Option(None, "--automl-config", metavar="FILE", help="Default: config/config_automl.json."),
    automlconf: Optional[str] = typer.Option(None, "--automlconf", metavar="NAME", help="Clara's: a file in config/ "
                                             "(--automlconf config_automl_BYO.json = --automl-config config/config_automl_BYO.json)."),
    workers: Optional[str] = typer.Option(
        None, "--workers", metavar="SPEC", help="Clara syntax: 0:0:1:1 (4 workers on GPUs 0,0,1,1), 0,1:2,3, cpu:cpu, or a CPU "
        "worker count on a machine without GPUs. Default: one worker per GPU (NVML), else one CPU worker."),
    overrides: Optional[list[str]] = typer.Option(
        None, "--set", metavar="KEY=VALUE", help="Override a first-level config key, an environment.json variable or "
        "a JSON path (train.model.args.channels=[8,16]) in every job's config; several pairs may follow one --set. "
        "Clara's run_id=, workers=, trainconf= (a file in config/) and traceout= set the run options."),
    seed: Optional[int] = typer.Option(None, "--seed", metavar="N", help="Seed of the controller (default: random, journaled)."),
    max_jobs: Optional[int] = typer.Option(None, "--max-jobs", metavar="N", help="Stop after this many recommendations started."),
    time_limit: Optional[float] = typer.Option(None, "--time-limit", metavar="SECONDS", help="Stop after this long (running jobs are aborted)."),
    job_timeout: Optional[float] = typer.Option(None, "--job-timeout", metavar="SECONDS", help="Kill a job running longer (TIMED_OUT)."),
    max_retries: Optional[int] = typer.Option(None, "--max-retries", metavar="N", help="Re-runs of a failed job (default 0)."),
    tracking_uri: Optional[str] = typer.Option(None, "--tracking-uri", metavar="URI", help="MLflow tracking URI."),
    experiment: Optional[str] = typer.Option(None, "--experiment", metavar="NAME", help="MLflow experiment (default: the MMAR folder name)."),
    log_models: Optional[str] = typer.Option(None, "--log-models", metavar="best|all|none",
                                              help="Models logged to MLflow: the best job's (default), every job's, none."),
    no_mlflow: Optional[bool] = typer.Option(None, "--no-mlflow/--mlflow", help="Do not track in MLflow (default: track)."),
    launcher: Optional[bool] = typer.Option(
        None, "--launcher/--no-launcher", help="Fork jobs from a preloaded launcher (fast, the default) or start each cold."),
    backend: Optional[str] = typer.Option(None, "--backend", metavar="local|ray", help="Where jobs run: local (this machine, "
                                          "the default) or ray (a Ray cluster, pip install 'mmar-automl[ray]'; docs/ray.md)."),
    ray_address: Optional[str] = typer.Option(None, "--ray-address", metavar="ADDR", help="With --backend ray: auto "
                                              "(default: the running cluster), local (a private Ray instance) or HOST:PORT."),
    jobs_per_gpu: Optional[str] = typer.Option(
        None, "--jobs-per-gpu", metavar="N|auto", help="Jobs run at once on each worker's GPU: N, or auto (as many as "
        "fit in the GPU's free memory, measured from earlier jobs; backs off on out-of-memory). On CPU workers: N jobs "
        "per worker, auto = 1. Default 1 (docs/gpu.md)."),
    compile: Optional[bool] = typer.Option(
        None, "--compile/--no-compile", help="torch.compile each job's network (default: no; docs/gpu.md)."),
    fast_paths: Optional[bool] = typer.Option(
        None, "--fast-paths/--no-fast-paths", help="The jobs' fast_paths keys (all off unless a key turns one on, "
        "docs/gpu.md); --no-fast-paths turns them all off."),
    warm_start: Optional[str] = typer.Option(
        None, "--warm-start", metavar="RUN_ID", help="Seed the search with the finished jobs of an earlier run of "
        "this MMAR (OptunaController; dimensions that changed are named). docs/controllers.md"),
) -> int:
    """Run an AutoML search over MMAR; prints the run id and folder, then progress. Exit 0 done, 1 with failed
    jobs, 2 bad input, 130 interrupted (resume with --resume RUN_ID: the options left out are the run's own,
    --workers, --backend and --jobs-per-gpu included)."""
    import logging

    from mmar_automl.cli.console import console
    from mmar_automl.config.overrides import set_items
    from mmar_automl.config.mmar import clara_automlconf
    from mmar_automl.run.setup import RunOptions, clara_environment, prepare_run

    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.WARNING, format="warning: %(message)s")
    with clara_environment(mmar):  # BYOC code may read $MMAR_ROOT at import time already
        prepared = prepare_run(RunOptions(
            mmar=mmar, run_id=run_id, resume=resume, train_config=train_config,
            automl_config=clara_automlconf(mmar, automl_config, automlconf),
            workers=workers, overrides=set_items(overrides, extra, "run"), seed=seed, max_jobs=max_jobs,
            time_limit=time_limit, job_timeout=job_timeout, max_retries=max_retries, tracking_uri=tracking_uri,
            experiment=experiment, log_models=log_models, no_mlflow=no_mlflow, launcher=launcher, backend=backend,
            ray_address=ray_address, jobs_per_gpu=jobs_per_gpu, fast_paths=fast_paths, compile=compile,
            warm_start=warm_start,
        ), console=console)
        return _run(mmar, prepared)


def _run(mmar: str, prepared: object) -> int:
    """Say what the run noted (the default controller's choice, options changed on resume, config keys that
    have no effect, a warm start's changed dimensions), run it."""
    from mmar_automl.cli.console import console, stdout

    for note in prepared.notes:
        console.print(note, soft_wrap=True)
    stdout.print(f"run id: {prepared.run_id}", soft_wrap=True)
    stdout.print(f"run folder: {prepared.run_dir}", soft_wrap=True)
    stdout.file.flush()
    result = prepared.engine.run()
    if result.best is not None:
        stdout.print(f"best: {result.best.name} score {result.best.score:.6g}", soft_wrap=True)
    if result.exit_code == 130:  # the journal holds the options: the hint needs no flags
        console.print(f"interrupted: resume with: mmar-automl run {mmar} --resume {prepared.run_id}", soft_wrap=True)
    return result.exit_code
