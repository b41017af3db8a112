"""`mmar-automl sync MMAR RUN_ID`: send a run's spooled MLflow writes (left by an outage or a crash)."""

from __future__ import annotations

from pathlib import Path

import typer

from mmar_automl.cli import app


@app.command("sync")
def sync(
    mmar: Path = typer.Argument(..., metavar="MMAR", help="The MMAR (or MONAI bundle, docs/bundles.md) folder."),
    run_id: str = typer.Argument(..., metavar="RUN_ID", help="The AutoML run (a folder under MMAR/automl/, or MMARHandler work_dir)."),
    tracking_uri: str = typer.Option(None, "--tracking-uri", metavar="URI",
                                     help="Send the pending writes to this MLflow instead of the run's own "
                                          "(the server moved); the writes already sent stay where they are."),
    experiment: str = typer.Option(None, "--experiment", metavar="NAME", help="MLflow experiment (default: the run's own)."),
) -> None:
    """Replay a run's pending MLflow writes, idempotently (never a second run for a job), and mark KILLED
    the runs a crashed orchestrator left RUNNING."""
    from mmar_automl.cli.console import console, stdout
    from mmar_automl.config.project import project_at
    from mmar_automl.tracking.sync import sync_run_dir

    result = sync_run_dir(project_at(mmar).run_dir(run_id), tracking_uri=tracking_uri, experiment=experiment)
    console.print(f"synced {result['sent']} pending writes to {result['tracking_uri']}"
                  + (f", marked {result['reaped']} stale runs KILLED" if result["reaped"] else ""))
    stdout.print(f"experiment {result['experiment']!r}: {result['parents']} parent run, "
                 f"{result['children']} job runs")
