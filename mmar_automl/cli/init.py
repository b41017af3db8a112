"""`mmar-automl init DIR`: a new MMAR from a template, optionally with synthetic data."""

from __future__ import annotations

import shlex
from pathlib import Path

import typer

from mmar_automl.cli import app
from mmar_automl.cli.console import console
from mmar_automl.scaffold.init import DEFAULT_TEMPLATE, list_templates, template_description


def _help() -> str:
    # "\b" keeps click from re-wrapping the list of templates into one paragraph
    names = "\n".join(f"{name}: {template_description(name)}" for name in list_templates())
    return f"Create an MMAR in DIR from a template (DIR must be empty unless --force).\n\n\b\nTemplates:\n{names}"


@app.command("init", help=_help())
def init_command(
    directory: Path = typer.Argument(..., metavar="DIR", help="Folder of the new MMAR (created if missing)."),
    template: str = typer.Option(
        DEFAULT_TEMPLATE, "--template", "-t", metavar="NAME", help=f"Template name: {', '.join(list_templates())}."
    ),
    synthetic_data: int = typer.Option(
        0, "--synthetic-data", metavar="N",
        help="Also write N synthetic image/label pairs (NIfTI) and a Decathlon-style dataset.json.",
    ),
    force: bool = typer.Option(False, "--force", help="Write into a non-empty folder (template files are overwritten)."),
    seed: int = typer.Option(0, "--seed", metavar="N", help="Seed of the synthetic data."),
) -> None:
    from mmar_automl.scaffold.init import init_mmar

    result = init_mmar(
        directory, template, synthetic_data=synthetic_data, force=force, seed=seed,
        progress=lambda line: console.print(line, soft_wrap=True),
    )
    console.print(f"created {result.root} from template {result.template} ({len(result.files)} files)", soft_wrap=True)
    if result.datalist is not None:
        console.print(
            f"synthetic data: {result.datalist['numTraining']} training + {result.datalist['numValidation']}"
            f" validation pairs, datalist {result.dataset_json}", soft_wrap=True,
        )
    from mmar_automl.bundle import is_bundle

    if is_bundle(result.root):
        if result.datalist is None:
            console.print("no data yet: put a Decathlon-style data set in data/ (data/dataset.json) or "
                          "run with --set dataset_dir=/path/to/data", soft_wrap=True)
        root = shlex.quote(str(result.root))
        console.print(f"next: mmar-automl validate {root}, then mmar-automl run {root}", soft_wrap=True)
        return
    if result.datalist is None:
        console.print("no data yet: point DATA_ROOT and DATASET_JSON in config/environment.json at yours", soft_wrap=True)
    # quoted so that a folder with spaces still gives a command to paste
    check = shlex.quote(f"{result.root}/commands/check_config.sh")
    console.print(f"next: {check}, then commands/train.sh or commands/automl.sh", soft_wrap=True)
