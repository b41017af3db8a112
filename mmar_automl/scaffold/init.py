"""``mmar-automl init``: copy an MMAR template out of the package, fill its placeholders and, on request,
write a synthetic data set, so that a new MMAR trains and searches at once.

Templates live in ``mmar_automl/templates/<name>/`` (shipped in the wheel). Their JSON configs hold no
placeholders (they stay valid MMARs, usable as fixtures); only text files (``*.md``, ``*.sh``) carry
``{{NAME}}`` placeholders, filled here. Clara's own ``{VAR}`` references (single braces) are left alone.
"""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from mmar_automl.errors import UsageError
from mmar_automl.config.mmar import Mmar

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"
DEFAULT_TEMPLATE = "segmentation_3d"
_FILLED_SUFFIXES = (".md", ".sh")
_SKIPPED = ("__pycache__", ".DS_Store")  # and *.pyc: build debris, never template content


@dataclass
class InitResult:
    root: Path
    template: str
    files: list[Path] = field(default_factory=list)       # written, relative to root
    datalist: dict[str, Any] | None = None                # the synthetic dataset.json, if written
    dataset_json: Path | None = None


def list_templates() -> list[str]:
    """Names of the shipped templates (MMARs holding config/config_train.json, or MONAI bundles), sorted."""
    from mmar_automl.bundle import is_bundle

    if not TEMPLATES_DIR.is_dir():
        return []
    return sorted(p.name for p in TEMPLATES_DIR.iterdir()
                  if (p / "config" / "config_train.json").is_file() or is_bundle(p))


def template_description(name: str) -> str:
    """The one-line summary of a template: the first ``> `` line of its docs/Readme.md (a bundle's README.md)."""
    readme = TEMPLATES_DIR / name / "docs" / "Readme.md"
    if not readme.is_file():
        readme = readme.with_name("README.md")
    for line in readme.read_text(encoding="utf-8").splitlines():
        if line.startswith("> "):
            return line[2:].strip()
    return ""


def placeholders(root: Path, template: str) -> dict[str, str]:
    """Values of the ``{{NAME}}`` placeholders for an MMAR created at ``root``."""
    from mmar_automl import __version__

    return {
        "MMAR_NAME": root.name,
        "TEMPLATE": template,
        "VERSION": __version__,
        "PYTHON": sys.executable,  # the commands' fallback when mmar-automl is not on PATH
    }


def init_mmar(
    dest: str | Path,
    template: str = DEFAULT_TEMPLATE,
    *,
    synthetic_data: int = 0,
    force: bool = False,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
) -> InitResult:
    """Create an MMAR at ``dest`` from ``template``; with ``synthetic_data`` > 0 also write that many
    synthetic image/label pairs and the datalist where the template's environment.json points.
    ``progress`` receives a line before the slow step (the synthetic data imports MONAI).

    Raises UsageError (exit 2) for an unknown template, a non-empty ``dest`` without ``force``, or too
    few synthetic pairs; nothing is written then.
    """
    known = list_templates()
    if template not in known:
        raise UsageError(f"unknown template {template!r}; known templates: {', '.join(known)}")
    root = Path(dest).expanduser().absolute()
    if root.exists() and not root.is_dir():
        raise UsageError(f"{root} exists and is not a folder")
    if root.is_dir() and any(root.iterdir()) and not force:
        raise UsageError(f"{root} is not empty; pass --force to write the template into it anyway")
    if synthetic_data < 0:
        raise UsageError(f"--synthetic-data must be >= 0, got {synthetic_data}")

    from mmar_automl.bundle import is_bundle

    source = TEMPLATES_DIR / template
    bundle = is_bundle(source)
    # The bundle template reads Decathlon-style data from its data/ folder (configs/train.json dataset_dir).
    task = "segmentation" if bundle else Mmar.at(source).environment.get("PROCESSING_TASK", "")
    if synthetic_data:
        from mmar_automl.scaffold.synthetic import split_counts

        split_counts(task, synthetic_data)  # too few pairs: fail before writing anything

    result = InitResult(root=root, template=template)
    values = placeholders(root, template)
    for src in sorted(source.rglob("*")):
        rel = src.relative_to(source)
        if any(part in _SKIPPED or part.endswith(".pyc") for part in rel.parts):
            continue
        target = root / rel
        if src.is_dir():
            target.mkdir(parents=True, exist_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        if src.suffix in _FILLED_SUFFIXES:
            target.write_text(fill(src.read_text(encoding="utf-8"), values), encoding="utf-8")
            shutil.copymode(src, target)
        else:
            shutil.copy2(src, target)
        if src.suffix == ".sh":  # commands/ must run even where an installer dropped the mode bits
            target.chmod(target.stat().st_mode | 0o111)
        result.files.append(rel)
    if bundle:
        (root / "models").mkdir(parents=True, exist_ok=True)
        environment = {"DATA_ROOT": str(root / "data"), "DATASET_JSON": str(root / "data" / "dataset.json")}
    else:
        mmar = Mmar.at(root)
        mmar.ckpt_dir.mkdir(parents=True, exist_ok=True)
        environment = mmar.absolute_environment()  # paths relative to the new root

    if synthetic_data:
        from mmar_automl.scaffold.synthetic import SyntheticSpec, write_dataset

        spec = SyntheticSpec.for_task(task, synthetic_data, seed=seed)
        if progress:
            progress(f"writing {synthetic_data} synthetic {task} pairs (MONAI loads first: ~15 s) ...")
        result.dataset_json = Path(environment["DATASET_JSON"])
        result.datalist = write_dataset(spec, Path(environment["DATA_ROOT"]), result.dataset_json)
    return result


def fill(text: str, values: dict[str, str]) -> str:
    """Replace each ``{{NAME}}`` of ``values`` in ``text``; other braces are left as they are."""
    for name, value in values.items():
        text = text.replace("{{" + name + "}}", value)
    return text
