"""The project a command works on: an MMAR (config/mmar.py) or a MONAI bundle (bundle/project.py).

Both kinds answer the same questions (``Mmar``'s docstring lists them); this is the one place that
tells them apart, by the files in the folder: configs/metadata.json with configs/train.json|yaml is a
bundle, anything else is read as an MMAR.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any


def open_project(root: str | Path, train_config: str | Path | None = None, automl_config: str | Path | None = None,
                 overrides: Iterable[str] | Mapping[str, Any] = (), *, relative_labels: bool = True) -> Any:
    """``Bundle.open`` or ``Mmar.open`` (train config read, ``--set`` checked and written in)."""
    from mmar_automl.bundle import Bundle, is_bundle
    from mmar_automl.config.mmar import Mmar

    kind = Bundle if is_bundle(root) else Mmar
    return kind.open(root, train_config, automl_config, overrides, relative_labels=relative_labels)


def project_at(root: str | Path, automl_config: str | Path | None = None) -> Any:
    """``Bundle.at`` or ``Mmar.at``: the project's files located, nothing read (where its runs are: they
    follow the MMARHandler ``work_dir`` of ``automl_config``, by default the project's own)."""
    from mmar_automl.bundle import Bundle, is_bundle
    from mmar_automl.config.mmar import Mmar

    return (Bundle if is_bundle(root) else Mmar).at(root, automl_config=automl_config)


def project_kind(project: Any) -> str:
    """``"mmar"`` or ``"bundle"`` (journaled in a run's header)."""
    return getattr(project, "kind", "mmar")
