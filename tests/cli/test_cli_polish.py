"""The command line as a user reads it (issue 16): --version, one name for the project argument, and
metavars that say what an option takes instead of a type."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from mmar_automl import __version__
from mmar_automl.cli import main

COMMANDS = ("run", "train", "validate", "sync", "report", "export-best", "evaluate", "export")  # every command taking one


def test_version():
    out = subprocess.run([sys.executable, "-m", "mmar_automl", "--version"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == f"mmar-automl {__version__}"


@pytest.mark.parametrize("command", COMMANDS)
def test_the_project_argument_is_mmar_and_options_name_what_they_take(command, capsys):
    assert main([command, "--help"]) == 0
    text = capsys.readouterr().out
    usage = text.splitlines()[0]
    assert re.match(rf"Usage: mmar-automl {command} \[OPTIONS\] \{{MMAR\}}", usage), usage
    options = text.split("Options:", 1)[1]
    assert "<str>" not in options and "<int>" not in options and "<float>" not in options and "<Path>" not in options


def test_log_models_metavar_lists_its_choices(capsys):
    assert main(["run", "--help"]) == 0
    assert "--log-models best|all|none" in capsys.readouterr().out
