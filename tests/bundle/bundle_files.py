"""Bundles for the tests: the package's segmentation_3d_bundle template (JSON, or converted to YAML) and the
published spleen_ct_segmentation configs (assets/), with synthetic data."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
REPO = HERE.parent.parent
TEMPLATE = REPO / "mmar_automl" / "templates" / "segmentation_3d_bundle"
SPLEEN = HERE / "assets" / "spleen_ct_segmentation"


def make_bundle(root: Path, yaml: bool = False, train: dict | None = None, search: dict | None = None) -> Path:
    """The template bundle at ``root`` (no data); ``train``/``search`` replace its configs; ``yaml`` writes
    configs/train.yaml and configs/search.yaml instead of the JSON files."""
    shutil.copytree(TEMPLATE, root, ignore=shutil.ignore_patterns(".gitkeep"))
    configs = root / "configs"
    train = train if train is not None else read(configs / "train.json")
    search = search if search is not None else read(configs / "search.json")
    write(configs / "train.json", train, yaml)
    write(configs / "search.json", search, yaml)
    return root


def read(path: Path) -> Any:
    return json.loads(path.read_text())


def write(path: Path, data: Any, yaml: bool = False) -> Path:
    if yaml:
        import yaml as pyyaml

        path.unlink(missing_ok=True)
        path = path.with_suffix(".yaml")
        path.write_text(pyyaml.safe_dump(data, sort_keys=False))
    else:
        path.write_text(json.dumps(data, indent=2))
    return path


def synthetic_data(folder: Path, pairs: int, spacing: tuple[float, ...] | None = None, size: int = 32) -> Path:
    """Decathlon-style noisy spheres (imagesTr/, labelsTr/, dataset.json) as ``init --synthetic-data`` writes."""
    from mmar_automl.scaffold.synthetic import SyntheticSpec, write_dataset

    spec = SyntheticSpec("segmentation", pairs, size, seed=0, noise=0.5, spacing=spacing)
    write_dataset(spec, folder, folder / "dataset.json")
    return folder


def env() -> dict[str, str]:
    out = dict(os.environ)
    out["PYTHONPATH"] = os.pathsep.join([str(REPO), out.get("PYTHONPATH", "")])
    out.setdefault("OMP_NUM_THREADS", "1")
    out["MLFLOW_TRACKING_URI"] = ""
    return out


def cli(*args: str, timeout: float = 600, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mmar_automl", *args], env=env(), capture_output=True, text=True,
                          timeout=timeout, cwd=cwd)


def events(root: Path, run_id: str) -> list[dict]:
    path = root / "automl" / run_id / "journal.jsonl"
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            pass
    return out
