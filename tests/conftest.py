"""Shared pytest fixtures; each issue adds its own under a clear prefix."""

from __future__ import annotations


# --- Clara configs (search-space issue): copies of NVIDIA's published files, see tests/search/clara/README.md
import shutil as _clara_shutil  # noqa: E402
from pathlib import Path as _ClaraPath  # noqa: E402

import pytest as _clara_pytest  # noqa: E402

CLARA_DIR = _ClaraPath(__file__).parent / "search" / "clara"


@_clara_pytest.fixture
def clara_dir() -> _ClaraPath:
    """Folder of the six Clara config files (4 config_train.json, 2 config_automl.json)."""
    return CLARA_DIR


@_clara_pytest.fixture
def clara_mmar(tmp_path):
    """Factory: clara_mmar("PyTorch__trn_autoML_Enum.json", automl="PyTorch__config_automl.json") builds
    an MMAR (config/config_train.json, optional config/config_automl.json) in tmp_path and returns its root."""

    def make(train: str, automl: str | None = None, name: str = "mmar") -> _ClaraPath:
        root = tmp_path / name
        (root / "config").mkdir(parents=True)
        _clara_shutil.copy(CLARA_DIR / train, root / "config" / "config_train.json")
        if automl:
            _clara_shutil.copy(CLARA_DIR / automl, root / "config" / "config_automl.json")
        return root

    return make
