"""`mmar-automl evaluate MMAR_ROOT [--config config/config_validation.json] [--set KEY=VALUE ...]`: run a trained
MMAR's evaluator over its datalist (Clara's ``validate.sh``/``infer.sh``); the key metric on stdout. The work
is ``mmar_automl.train.evaluate``; torch and monai are imported only when the command runs. A failure is one
line on stderr (exit 1), its traceback only with ``--debug``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from mmar_automl.cli import app


@app.command(context_settings={"allow_interspersed_args": True})
def evaluate(
    mmar_root: Path = typer.Argument(..., metavar="MMAR", help="The trained MMAR folder, or a trained MONAI bundle (evaluated with its "
                                     "configs/evaluate.json over configs/train.json)."),
    extra: Optional[list[str]] = typer.Argument(None, metavar="[KEY=VALUE]...", help="More --set overrides."),
    config: Optional[Path] = typer.Option(
        None, "--config", metavar="FILE", help="The evaluation config [default: MMAR/config/config_validation.json]; "
        "config/config_inference.json runs inference; a config_train.json evaluates its validate section."),
    overrides: Optional[list[str]] = typer.Option(
        None, "--set", metavar="KEY=VALUE", help="Override a first-level config key, environment.json variable "
        "(MMAR_CKPT=models/other.pt) or JSON path."),
    device: Optional[str] = typer.Option(None, "--device", metavar="cpu|cuda", help="cpu or cuda [default: cuda when use_gpu and a GPU]."),
) -> None:
    """Evaluate a trained model: loads MMAR_CKPT or MMAR_TORCHSCRIPT, writes what the config's handlers write
    (MetricsSaver files under MMAR_EVAL_OUTPUT_PATH, predictions), prints the key metric."""
    from mmar_automl.errors import MmarAutomlError, UsageError

    pairs = [*(overrides or []), *(extra or [])]
    for item in extra or []:
        if "=" not in item:
            raise UsageError(f"evaluate: unexpected argument {item!r} (overrides are KEY=VALUE after --set)")
    if device not in (None, "cpu", "cuda"):
        raise UsageError(f"evaluate: --device must be cpu or cuda, got {device!r}")
    from mmar_automl.bundle import is_bundle
    from mmar_automl.train.evaluate import describe
    from mmar_automl.train.failures import print_failure

    if is_bundle(mmar_root):  # a MONAI bundle: its configs/evaluate.json over train.json (docs/bundles.md)
        from mmar_automl.bundle.job import evaluate as run_evaluation
    else:
        from mmar_automl.train.evaluate import evaluate as run_evaluation
    try:
        result = run_evaluation(mmar_root, config=config, overrides=pairs, device=device)
    except MmarAutomlError:
        raise
    except Exception as err:  # noqa: BLE001 - one line; the traceback with --debug
        print_failure("evaluate", err)
        raise typer.Exit(1) from None
    typer.echo(describe(result))
