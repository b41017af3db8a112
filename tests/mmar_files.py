"""Test helper: an MMAR holding only config files (importable from every test folder: pytest puts tests/ on
sys.path for the root conftest.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def make_mmar(tmp_path: Path, train: Any, automl: Any = None) -> Path:
    """``tmp_path/mmar`` with config/config_train.json (and config_automl.json); str content is written as is."""
    root = tmp_path / "mmar"
    (root / "config").mkdir(parents=True)
    for name, content in (("config_train.json", train), ("config_automl.json", automl)):
        if content is not None:
            text = content if isinstance(content, str) else json.dumps(content, indent=2)
            (root / "config" / name).write_text(text)
    return root
