"""`mmar-automl report MMAR [--run RUN_ID] [--top N] [--html FILE] [--json] [--logs]`: what a run did,
from its journal (MLflow not needed). The table or the JSON document alone go to stdout."""

from __future__ import annotations

from typing import Optional

import typer

from mmar_automl.cli import app


@app.command("report")
def report(
    mmar: str = typer.Argument(..., metavar="MMAR", help="The MMAR (or MONAI bundle, docs/bundles.md) folder."),
    run: Optional[str] = typer.Option(None, "--run", metavar="RUN_ID", help="Run to report [default: the newest]."),
    top: int = typer.Option(20, "--top", metavar="N", help="Rows in the jobs table, best first (0 = all). "
                            "--json always lists every job."),
    html: Optional[str] = typer.Option(None, "--html", metavar="FILE", help="Also write a self-contained HTML "
                                       "report (plots, importance, learning curves), viewable offline."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document on stdout instead of the table."),
    logs: bool = typer.Option(False, "--logs", help="Show the log tail of each failed job."),
    importance: str = typer.Option("auto", "--importance", metavar="EVALUATOR",
                                   help="Parameter importance: ped-anova (fast), fanova, none, or auto "
                                   "(ped-anova for --json and --html, none for the table alone)."),
) -> int:
    """Report a run: jobs (job, worker, status, score, duration, parameters), the best job and its config
    difference from the base config, failures with their reason; parameter importance."""
    import json

    from mmar_automl.cli.console import console, stdout
    from mmar_automl.errors import UsageError
    from mmar_automl.report.data import best_config_diff, load_report

    if importance not in ("auto", "ped-anova", "fanova", "none"):
        raise UsageError(f"--importance {importance}: expected ped-anova, fanova, none or auto")
    if importance == "auto":  # the table alone stays quick (Optuna's import is ~0.5 s): importance on request
        importance = "ped-anova" if (html or as_json) else "none"
    data = load_report(mmar, run)
    diff, note = best_config_diff(data)
    imp = None
    if importance != "none":
        from mmar_automl.report.importance import parameter_importance

        imp = parameter_importance(data, importance)
    if html:
        from mmar_automl.report.data import learning_curves
        from mmar_automl.report.html import render_html, write_html

        key_metric, curves = learning_curves(data)
        path = write_html(html, render_html(data, key_metric=key_metric, curves=curves, importance=imp,
                                            diff=diff, diff_note=note, top=max(top, 50) if top else 0))
        console.print(f"HTML report: {path.resolve()}", soft_wrap=True)
    if as_json:
        from mmar_automl.report.document import build_document

        doc = build_document(data, imp, diff, note)
        stdout.file.write(json.dumps(doc, indent=1, default=str) + "\n")
        stdout.file.flush()
    else:
        from mmar_automl.report.table import print_report

        print_report(stdout, data, top=top, logs=logs, diff=diff, diff_note=note, importance=imp)
    return 0
