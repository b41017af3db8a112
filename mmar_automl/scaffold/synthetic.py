"""Synthetic data sets so that a fresh MMAR trains at once on a CPU: NIfTI images and a Decathlon-style
``dataset.json`` with ``training`` and ``validation`` lists (paths relative to the data root).

- segmentation: 3D volumes of noisy spheres and their binary masks (``monai.data.create_test_image_3d``);
- classification: 2D images of a disk (class 0) or a ring (class 1) at random places and sizes under
  noise; both classes survive flips and rotations, so the templates' augmentations keep labels true.

Deterministic given the seed. numpy, nibabel and monai are imported inside the functions (the CLI that
imports this module must start fast).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mmar_automl.errors import UsageError

TASKS = ("segmentation", "classification")


@dataclass(frozen=True)
class SyntheticSpec:
    """What to generate. ``size`` is the edge length of the square/cubic images."""

    task: str
    num_pairs: int
    size: int
    seed: int = 0
    noise: float = 0.5
    spacing: tuple[float, ...] | None = None   # voxel size in mm written in the NIfTI affine (default 1 mm)

    @classmethod
    def for_task(cls, task: str, num_pairs: int, seed: int = 0) -> SyntheticSpec:
        """The templates' data: their image size and noise for ``task``."""
        _check_task(task)
        return cls(task, num_pairs, DEFAULT_SIZES[task], seed=seed, noise=DEFAULT_NOISE[task])


DEFAULT_SIZES = {"segmentation": 32, "classification": 32}
# Noise that keeps the tasks learnable but not solved in two epochs (scores of a search must differ):
# at 0.5 the classifier reached AUC 1.0 within 2 epochs; at 1.0 ten epochs gave 0.76-0.84.
DEFAULT_NOISE = {"segmentation": 0.5, "classification": 1.0}
MIN_PAIRS = {"segmentation": 2, "classification": 4}  # classification: both classes in each split


def split_counts(task: str, num_pairs: int) -> tuple[int, int]:
    """(training, validation) counts: a quarter for validation, at least 1 (2 for classification)."""
    _check_task(task)
    minimum = MIN_PAIRS[task]
    if num_pairs < minimum:
        raise UsageError(f"--synthetic-data needs at least {minimum} pairs for a {task} MMAR, got {num_pairs}")
    num_val = max(minimum // 2, num_pairs // 4)
    return num_pairs - num_val, num_val


def _check_task(task: str) -> None:
    if task not in TASKS:
        raise UsageError(f"no synthetic data for task {task!r}; known tasks: {', '.join(TASKS)}")


def write_dataset(spec: SyntheticSpec, data_root: Path, dataset_json: Path) -> dict[str, Any]:
    """Write ``spec.num_pairs`` image/label pairs under ``data_root`` and the datalist at ``dataset_json``
    (paths in it relative to ``data_root``, as Clara's ``data_file_base_dir`` expects); return the datalist."""
    num_train, _ = split_counts(spec.task, spec.num_pairs)
    import nibabel as nib
    import numpy as np

    rng = np.random.RandomState(spec.seed)
    affine = np.eye(4)
    if spec.spacing:
        affine[: len(spec.spacing), : len(spec.spacing)] = np.diag(spec.spacing)
    data_root.mkdir(parents=True, exist_ok=True)
    (data_root / "imagesTr").mkdir(exist_ok=True)
    items: list[dict[str, Any]] = []
    if spec.task == "segmentation":
        (data_root / "labelsTr").mkdir(exist_ok=True)
        for k in range(spec.num_pairs):
            image, label = _sphere_volume(spec, rng)
            item = {"image": f"imagesTr/case_{k:03d}.nii.gz", "label": f"labelsTr/case_{k:03d}.nii.gz"}
            nib.save(nib.Nifti1Image(image.astype(np.float32), affine), str(data_root / item["image"]))
            nib.save(nib.Nifti1Image(label.astype(np.uint8), affine), str(data_root / item["label"]))
            items.append(item)
    else:
        for k in range(spec.num_pairs):
            cls = k % 2  # alternate, so that every split of >= 2 consecutive items holds both classes
            image = _pattern_image(spec, rng, cls)
            item = {"image": f"imagesTr/case_{k:03d}.nii.gz", "label": cls}
            nib.save(nib.Nifti1Image(image.astype(np.float32), affine), str(data_root / item["image"]))
            items.append(item)
    datalist = _datalist(spec, items[:num_train], items[num_train:])
    dataset_json.parent.mkdir(parents=True, exist_ok=True)
    dataset_json.write_text(json.dumps(datalist, indent=2) + "\n")
    return datalist


def _sphere_volume(spec: SyntheticSpec, rng: Any) -> tuple[Any, Any]:
    from monai.data import create_test_image_3d

    s = spec.size
    image, label = create_test_image_3d(
        s, s, s, num_objs=4, rad_max=max(3, s // 5), rad_min=max(2, s // 10),
        noise_max=spec.noise, num_seg_classes=1, random_state=rng,
    )
    return image, (label > 0)


def _pattern_image(spec: SyntheticSpec, rng: Any, cls: int) -> Any:
    import numpy as np

    s = spec.size
    yy, xx = np.mgrid[0:s, 0:s].astype(np.float32)
    radius = rng.uniform(s * 0.15, s * 0.3)
    cy, cx = rng.uniform(radius, s - radius, size=2)
    dist = np.sqrt((yy - cy) ** 2 + (xx - cx) ** 2)
    if cls == 0:
        image = (dist <= radius).astype(np.float32)                        # a filled disk
    else:
        # a ring from 0.75 to 1.25 radii: the disk's area, so mean brightness alone cannot tell them apart
        image = (np.abs(dist - radius) <= max(1.0, radius * 0.25)).astype(np.float32)
    return image + rng.normal(0.0, spec.noise, size=image.shape).astype(np.float32)


def _datalist(spec: SyntheticSpec, training: list[dict], validation: list[dict]) -> dict[str, Any]:
    if spec.task == "segmentation":
        header = {
            "name": "synthetic-spheres", "tensorImageSize": "3D",
            "description": f"{spec.num_pairs} noisy {spec.size}^3 volumes of spheres (seed {spec.seed})",
            "labels": {"0": "background", "1": "sphere"},
        }
    else:
        header = {
            "name": "synthetic-disks-and-rings", "tensorImageSize": "2D",
            "description": f"{spec.num_pairs} noisy {spec.size}^2 images of a disk or a ring (seed {spec.seed})",
            "labels": {"0": "disk", "1": "ring"},
        }
    return {
        **header,
        "modality": {"0": "synthetic"},
        "numTraining": len(training),
        "numValidation": len(validation),
        "numTest": 0,
        "training": training,
        "validation": validation,
        "test": [],
    }
