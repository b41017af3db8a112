"""`mmar-automl validate MMAR`: check config_train.json (search space) and config_automl.json.

Prints the space as a table (or JSON with --json) on stdout; any problem is one line on stderr and
exit code 2 (raised as ConfigError, printed by ``cli.main``). Imports only light modules: no torch,
monai, mlflow or optuna. A MONAI bundle (docs/bundles.md) gets the checks ``run`` makes: its search file
and inline search lists, ``--set`` ids, the evaluator that scores a job, the data paths.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from mmar_automl.cli import app


@app.command(context_settings={"allow_interspersed_args": True})
def validate(
    mmar_root: Path = typer.Argument(..., metavar="MMAR", help="The MMAR folder (holds config/config_train.json), or a MONAI "
                                     "bundle (configs/train.json|yaml, docs/bundles.md)."),
    extra: Optional[list[str]] = typer.Argument(
        None, metavar="[KEY=VALUE]...", help="More --set overrides: --set epochs=2 num_interval_per_valid=1."),
    train_config: Optional[Path] = typer.Option(
        None, "--train-config", metavar="FILE", help="config_train.json to check [default: MMAR/config/config_train.json]."),
    automl_config: Optional[Path] = typer.Option(
        None, "--automl-config", metavar="FILE", help="config_automl.json to check [default: MMAR/config/config_automl.json, "
        "skipped when missing]."),
    automlconf: Optional[str] = typer.Option(None, "--automlconf", metavar="NAME", help="Clara's: a file in config/ "
                                             "(= --automl-config config/NAME)."),
    overrides: Optional[list[str]] = typer.Option(
        None, "--set", metavar="KEY=VALUE", help="Check --set values as `run` and `train` do (a key must exist; a "
        "searched key cannot be fixed); the space shown is the one with them written in."),
    as_json: bool = typer.Option(False, "--json", help="Print the search space as JSON (for machines)."),
) -> None:
    """Check an MMAR's (or a MONAI bundle's) configs and show its search space: dimensions, PRLs, choices,
    grid size."""
    from mmar_automl.cli.console import console
    from mmar_automl.config.mmar import clara_automlconf
    from mmar_automl.config.project import open_project
    from mmar_automl.config.overrides import set_items
    from mmar_automl.errors import ConfigError
    from mmar_automl.run.setup import clara_environment

    if not mmar_root.is_dir():
        what = "is not a folder" if mmar_root.exists() else "not found"
        raise ConfigError(mmar_root, None, f"MMAR folder {what}: expected a folder holding config/config_train.json")
    automl_config = clara_automlconf(mmar_root, automl_config, automlconf)
    mmar = open_project(mmar_root, train_config, automl_config, set_items(overrides, extra, "validate"),
                        relative_labels=False)
    automl_path = mmar.automl_config_file
    with clara_environment(mmar.root):  # BYOC code is imported as run imports it: with $MMAR_ROOT set
        report = check_mmar(mmar, automl_path if (mmar.automl_config_given or automl_path.exists()) else None)
    if report["automl"] is None and automl_config is None:
        default = report["default_controller"]
        console.print(f"note: no {automl_path}: checked {mmar.train_config_file} only; run would use "
                      f"{default['name']} ({default['reason']})", soft_wrap=True)
    for note in report["notes"]:
        console.print(f"note: {note}", soft_wrap=True)
    for warning in report["warnings"]:
        console.print(f"warning: {warning}", soft_wrap=True)
    if as_json:
        import json

        typer.echo(json.dumps(report, indent=2))
    else:
        _print_table(report)


def check_mmar(mmar: Any, automl_path: Path | None) -> dict[str, Any]:
    """Check both configs (the train config as ``Mmar.open`` read it, --set values in); return what
    ``--json`` prints. Raises ConfigError/UsageError on bad input. The components are built and checked
    by the step ``run`` uses (setup.check_components), BYOC classes imported as run imports them (Clara's
    automl.* names included), and the runs folder (MMARHandler ``work_dir``) checked as run checks it."""
    from mmar_automl.config.automl_config import check_runs_dir, load_automl_config, no_effect_notes
    from mmar_automl.config.overrides import check_not_searched
    from mmar_automl.context import Context, ContextKey
    from mmar_automl.run.setup import check_components
    from mmar_automl.config.project import project_kind
    from mmar_automl.search.parse import parse_search_space
    from mmar_automl.train.config import check_sections

    train_path = mmar.train_config_file
    kind = project_kind(mmar)
    if kind == "bundle":   # the same checks as run's load_inputs (bundle/project.py)
        space = mmar.search_space()
        mmar.check_not_searched(space)
        mmar.check()
    else:
        space = parse_search_space(mmar.train_config, train_path)
        check_not_searched(mmar.overrides, space, str(train_path))
        check_sections(mmar.train_config, str(train_path), required=False)  # as run checks it
    automl = load_automl_config(automl_path, mmar.root) if automl_path is not None else None
    if automl is not None:
        check_runs_dir(mmar.runs_dir, automl)
    if automl is not None and len(space):  # as run builds them (a seed, one worker)
        check_components(mmar.root, space, automl.controller, automl.executor, list(automl.handlers),
                         Context(**{ContextKey.SEED: 0, ContextKey.NUM_WORKERS: 1, ContextKey.SEARCH_SPACE: space}),
                         kind=kind)
    from mmar_automl.controllers.default import choose_default

    default = choose_default(space, None) if automl is None else None     # for a run without --max-jobs
    return {
        "project": kind,
        "notes": no_effect_notes(automl) if automl is not None else [],
        # a bundle job validates its last epoch once more when val_interval skips it (bundle/job.py)
        "warnings": interval_warnings(mmar.substituted_config(), train_path) if kind == "mmar" else [],
        **space.to_json(),
        "grid_size": space.grid_size,
        "continuous": [d.name for d in space.ranges],
        "train_config": str(train_path),
        "automl_config": str(automl_path) if automl_path is not None else None,
        "automl": automl.to_json() if automl is not None else None,
        "default_controller": {**default.spec, "reason": default.reason} if default is not None else None,
    }


def interval_warnings(config: dict, train_path: Path) -> list[str]:
    """A search whose jobs never reach their validation interval was wasted in Clara (every job "no
    score"): say so. Here the final validation scores such jobs, unless final_validation is false."""
    from mmar_automl.errors import format_json_path
    from mmar_automl.train.config import validation_interval

    found = validation_interval(config)
    epochs = config.get("epochs")
    if found is None or not isinstance(epochs, int) or isinstance(epochs, bool):
        return []
    interval, where = found
    if epochs >= interval:
        return []
    tail = ("jobs get no score (final_validation is false)" if config.get("final_validation") is False
            else "each job validates once, after its last epoch (final_validation)")
    return [f"{train_path}: epochs {epochs} < validation interval {interval} ({format_json_path(where)}): "
            f"training never reaches a validation; {tail}"]


def _print_table(report: dict[str, Any]) -> None:
    from mmar_automl.cli.console import stdout

    dims = report["dimensions"]
    if not dims:
        stdout.print(f"{report['train_config']}: valid, no search blocks (nothing to search)", soft_wrap=True)
    else:
        out = _wide(stdout)
        out.print(f"Search space of {report['train_config']}", soft_wrap=True)
        rows = [_row(d, ids=report.get("project") == "bundle") for d in dims]
        out.print(_table(rows) if _table_width(rows) <= out.width else _cards(rows))
        from mmar_automl.search.format import display_name

        cont = ", ".join(display_name(n) for n in report["continuous"]) or "none"
        stdout.print(f"{len(dims)} dimension(s); grid size {report['grid_size']} (enum combinations); "
                     f"continuous: {cont}", soft_wrap=True)
    automl = report["automl"]
    if automl is not None:
        handlers = ", ".join(_label(h) for h in automl["handlers"]) or "none"
        executor = _label(automl["executor"]) if automl["executor"] else "default"
        stdout.print(f"{report['automl_config']}: controller {_label(automl['controller'])}; executor {executor}; "
                     f"handlers {handlers}", soft_wrap=True)


_COLUMNS = ("name", "PRL", "domain", "type", "range or choices", "consumers")


def _row(d: dict[str, Any], ids: bool = False) -> dict[str, str]:
    """One dimension as text, one line per choice and per consumer."""
    from mmar_automl.errors import format_json_path

    from mmar_automl.search.format import display_name, format_range

    if d["type"] in ("float", "int"):
        values = format_range(d)
    else:
        values = "\n".join(_compact(c) for c in d["choices"])
    consumers = []
    for c in d["consumers"]:
        if ids:   # a bundle's consumers as the ids its users write (train#preprocessing#transforms#3#prob)
            place = "#".join(str(p) for p in (*c["component"], c["arg"]))
        else:
            place = f"{format_json_path(c['component'])}.{c['arg']}" if c["component"] else c["arg"]
        consumers.append(place + (f" <- [{c['index']}]" if len(d["args"]) > 1 and d["type"] == "enum" else ""))
    # the name run, report and MLflow show (display_name); the PRL column keeps the exact id
    return dict(zip(_COLUMNS, (display_name(d["name"]), d["prl"], d["domain"], d["type"], values, "\n".join(consumers))))


def _table_width(rows: list[dict[str, str]]) -> int:
    """Columns needed to show the table with no cell folded (borders and padding included)."""
    return 1 + sum(3 + max(len(line) for r in rows for line in [col, *r[col].splitlines()]) for col in _COLUMNS)


def _table(rows: list[dict[str, str]]) -> Any:
    from rich.table import Table

    table = Table()
    for column in _COLUMNS:
        table.add_column(column, overflow="fold")
    for r in rows:
        table.add_row(*(r[c] for c in _COLUMNS))
    return table


def _cards(rows: list[dict[str, str]]) -> Any:
    """For a terminal too narrow for the table: each dimension as a block of "field  value" lines, so
    that long PRLs and paths fold in one wide column instead of six thin ones."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    blocks: list[Any] = []
    for r in rows:
        blocks.append(Text(f"{r['name']}  ({r['type']}, domain {r['domain']})", style="bold", overflow="fold"))
        grid = Table.grid(padding=(0, 2))
        grid.add_column(no_wrap=True)
        grid.add_column(overflow="fold")
        grid.add_row("  PRL", r["PRL"])
        grid.add_row("  choices" if r["type"] == "enum" else "  range", r["range or choices"])
        grid.add_row("  consumers", r["consumers"])
        blocks.append(grid)
    return Group(*blocks)


def _wide(console: Any) -> Any:
    """The console itself on a terminal; piped or captured output is not cut to 80 columns (a PRL or a
    JSON path is best read whole)."""
    if console.is_terminal:
        return console
    from rich.console import Console

    return Console(file=console.file, width=max(console.width, 200), markup=False, emoji=False, highlight=False)


def _label(spec: dict[str, Any]) -> str:
    return f"{spec['path']} (path)" if "path" in spec else spec["name"]


def _compact(value: Any) -> str:
    import json

    return json.dumps(value, separators=(", ", ": "))
