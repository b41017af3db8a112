"""`mmar-automl export MMAR_ROOT [--config F] [--set KEY=VALUE ...]`: Clara's ``export.sh``, the TorchScript model
``MMAR_TORCHSCRIPT`` from the checkpoint ``MMAR_CKPT``. The work is ``mmar_automl.train.evaluate.export_torchscript``;
torch is imported only when the command runs. A failure is one line on stderr (exit 1; 2 for bad input).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from mmar_automl.cli import app


@app.command()
def export(
    mmar_root: Path = typer.Argument(..., metavar="MMAR", help="The trained MMAR folder."),
    config: Optional[Path] = typer.Option(
        None, "--config", metavar="FILE", help="The config whose train.model is exported [default: config/config_train.json]."),
    overrides: Optional[list[str]] = typer.Option(None, "--set", metavar="KEY=VALUE",
                                                  help="Override a config key or environment.json variable."),
) -> None:
    """Write the TorchScript model MMAR_TORCHSCRIPT [models/model.ts] from the checkpoint MMAR_CKPT (Clara's export.sh)."""
    from mmar_automl.errors import MmarAutomlError
    from mmar_automl.train.evaluate import export_torchscript
    from mmar_automl.train.failures import print_failure

    try:
        export_torchscript(mmar_root, config=config, overrides=overrides or [])
    except MmarAutomlError:
        raise
    except Exception as err:  # noqa: BLE001
        print_failure("export", err)
        raise typer.Exit(1) from None
