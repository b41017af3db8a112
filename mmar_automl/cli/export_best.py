"""`mmar-automl export-best MMAR [--run RUN_ID] DEST`: the best job of a run as a standalone MMAR
(concrete config, model, commands, docs) that `mmar-automl train DEST` continues."""

from __future__ import annotations

import shlex
from typing import Optional

import typer

from mmar_automl.cli import app


@app.command("export-best")
def export_best(
    mmar: str = typer.Argument(..., metavar="MMAR", help="The MMAR (or MONAI bundle) folder the run belongs to."),
    dest: str = typer.Argument(..., metavar="DEST", help="A new (or empty) folder for the exported MMAR."),
    run: Optional[str] = typer.Option(None, "--run", metavar="RUN_ID", help="The run [default: the newest]."),
) -> int:
    """Export the best scored job of a run as a standalone MMAR. Exit 2 when DEST is not empty, the run is
    unknown or has no scored job."""
    from mmar_automl.cli.console import console, stdout
    from mmar_automl.report.export import export_best as do_export

    result = do_export(mmar, dest, run)
    stdout.print(f"exported {result.job} (score {result.score:.6g}) of run {result.run_id} to {result.dest}",
                 soft_wrap=True)
    for note in result.notes:
        console.print(f"note: {note}", soft_wrap=True)
    console.print(f"continue training: mmar-automl train {shlex.quote(str(result.dest))}", soft_wrap=True)
    return 0
