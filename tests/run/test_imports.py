"""The orchestrator side never imports torch (so it can never touch CUDA before forking) nor other
heavy libraries; the `run` command's module stays typer-only at import time."""

from __future__ import annotations

import subprocess
import sys


def test_orchestrator_modules_are_light():
    code = (
        "import sys\n"
        "import mmar_automl.cli, mmar_automl.run.setup, mmar_automl.run.engine, mmar_automl.run.executor, "
        "mmar_automl.backends.launcher, mmar_automl.run.journal, mmar_automl.run.workers, mmar_automl.run.scheduler, "
        "mmar_automl.run.jobfolder, mmar_automl.handlers.console, mmar_automl.handlers.mmar, mmar_automl.handlers.stats\n"
        "print(sorted(m for m in ('torch', 'monai', 'mlflow', 'optuna', 'numpy', 'pynvml') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
