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


# --- GPU tests (fast-paths issue): tests marked `gpu` are skipped where NVML finds no GPU (no torch import here)
def pytest_collection_modifyitems(config, items):  # noqa: ARG001 - pytest's hook signature
    gpu_items = [item for item in items if item.get_closest_marker("gpu")]
    if not gpu_items:
        return
    from mmar_automl.run.workers import discover_gpus

    if discover_gpus():
        return
    skip = _clara_pytest.mark.skip(reason="needs an NVIDIA GPU (NVML finds none)")
    for item in gpu_items:
        item.add_marker(skip)
