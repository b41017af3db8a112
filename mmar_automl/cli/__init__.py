"""The ``mmar-automl`` command line. Thin: each command is a module of this package that imports only
typer at the top and the heavy libraries (torch, monai, mlflow, optuna) inside its function, so that
``mmar-automl --help`` stays fast. Library code raises; only ``main`` prints errors and picks exit codes:
0 done, 1 the run ended with errors, 2 usage or configuration error, 130 interrupted.
"""

from __future__ import annotations

import os
import sys

import typer

from mmar_automl.cli.console import console

app = typer.Typer(
    name="mmar-automl",
    help="AutoML for MONAI/PyTorch MMARs: search hyperparameters the way Clara Train AutoML did, tracked in MLflow.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

_state = {"debug": bool(os.environ.get("MMAR_AUTOML_DEBUG"))}


def _version(value: bool) -> None:
    if value:
        from mmar_automl import __version__

        typer.echo(f"mmar-automl {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks on errors."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    if debug:
        _state["debug"] = True


def _add_commands() -> None:
    # Each module registers its command(s) on `app` when imported; keep their top-level imports light.
    from mmar_automl.cli import evaluate, export, export_best, init, report, run, sync, train, validate  # noqa: F401


_add_commands()


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point; returns (and exits with) the exit code."""
    args = sys.argv[1:] if argv is None else argv
    saved = {"debug": _state["debug"], "env": os.environ.get("MMAR_AUTOML_DEBUG")}
    if "--debug" in args:
        _state["debug"] = True
        os.environ["MMAR_AUTOML_DEBUG"] = "1"  # train/evaluate print their tracebacks too
        # Accepted anywhere (`validate ROOT --debug` too): the command itself has no such option.
        args = ["--debug", *(a for a in args if a != "--debug")]
    try:
        return _main(args, argv is None)
    finally:  # an in-process call (tests, scripts) leaves no --debug behind for the next one
        _state["debug"] = saved["debug"]
        if saved["env"] is None:
            os.environ.pop("MMAR_AUTOML_DEBUG", None)
        else:
            os.environ["MMAR_AUTOML_DEBUG"] = saved["env"]


def _main(args: list[str], exit_process: bool) -> int:
    from mmar_automl.errors import MmarAutomlError

    exits, aborts, usage_errors = _click_exceptions("Exit"), _click_exceptions("Abort"), _click_exceptions("ClickException")
    command = typer.main.get_command(app)
    code = 0
    try:
        result = command.main(args=args, prog_name="mmar-automl", standalone_mode=False)
        code = result if isinstance(result, int) else 0
    except MmarAutomlError as err:
        _print_error(err)
        code = err.exit_code
    except exits as err:
        code = err.exit_code
    except aborts:
        console.print("interrupted")
        code = 130
    except usage_errors as err:
        err.show()
        code = err.exit_code
    except KeyboardInterrupt:
        console.print("interrupted")
        code = 130
    except Exception as err:  # noqa: BLE001 - last line of defence: one line, traceback only with --debug
        _print_error(err, prefix=f"error ({type(err).__name__})")
        code = 1
    if exit_process:
        sys.exit(code)
    return code


def _click_exceptions(name: str) -> tuple[type[BaseException], ...]:
    """click's exception class ``name`` and its twins in typer, which vendors its own click (``typer._click``)
    and raises those: catching click's classes alone turned every usage error into exit 1."""
    import click

    found = [getattr(click.exceptions, name)]
    public = getattr(typer, name, None)                 # typer.Exit, typer.Abort
    if isinstance(public, type) and issubclass(public, BaseException):
        found.append(public)
    try:
        from typer._click import exceptions as vendored
    except ImportError:
        vendored = None
    if vendored is not None and isinstance(getattr(vendored, name, None), type):
        found.append(getattr(vendored, name))
    return tuple(dict.fromkeys(found))


def _print_error(err: BaseException, prefix: str = "error") -> None:
    if _state["debug"]:
        console.print_exception(show_locals=False)
    console.print(f"{prefix}: {err}", soft_wrap=True)  # soft_wrap: one line, never cut at 80 columns
