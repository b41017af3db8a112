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


def _modules():
    import ast
    from pathlib import Path

    import mmar_automl

    package = Path(mmar_automl.__file__).parent
    for path in sorted(package.rglob("*.py")):
        yield path.relative_to(package).as_posix(), ast.parse(path.read_text(encoding="utf-8"))


def _imported(tree) -> set[str]:
    import ast

    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_no_back_doors():
    """Layers (issue 14): only the CLI imports the CLI (handlers get the console they print to); backends
    depend on backends/protocol.py, never on the executor; every context key is a ContextKey member,
    never a bare string."""
    import ast

    wrong = []
    for name, tree in _modules():
        imported = _imported(tree)
        if not name.startswith("cli/") and name != "__main__.py":
            wrong += [f"{name} imports {m}" for m in imported if m == "mmar_automl.cli" or m.startswith("mmar_automl.cli.")]
        if name.startswith("backends/"):
            wrong += [f"{name} imports {m}" for m in imported if m.startswith("mmar_automl.run.executor")]
        for node in ast.walk(tree):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr in ("get_prop", "set_prop") and node.args
                    and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
                wrong.append(f"{name}:{node.lineno} {node.func.attr}({node.args[0].value!r}): use a ContextKey member")
    assert wrong == []
