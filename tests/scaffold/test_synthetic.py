"""Synthetic data: real NIfTI files, a Decathlon-style datalist, deterministic given the seed."""

from __future__ import annotations

import json

import nibabel as nib  # pinned dependencies: the test fails, never skips, without them
import numpy as np
import pytest

from mmar_automl.errors import UsageError
from mmar_automl.scaffold.init import init_mmar
from mmar_automl.scaffold.synthetic import SyntheticSpec, split_counts, write_dataset


def _load(root, rel):
    return np.asarray(nib.load(str(root / rel)).dataobj)


def test_split_counts():
    assert split_counts("segmentation", 2) == (1, 1)
    assert split_counts("segmentation", 16) == (12, 4)
    assert split_counts("classification", 4) == (2, 2)
    assert split_counts("classification", 40) == (30, 10)
    with pytest.raises(UsageError):
        split_counts("classification", 3)
    with pytest.raises(UsageError):
        split_counts("registration", 10)


def test_segmentation_mmar_with_synthetic_spheres(tmp_path):
    result = init_mmar(tmp_path / "seg", "segmentation_3d", synthetic_data=6, seed=3)
    root = result.root
    datalist = json.loads((root / "data" / "dataset.json").read_text())
    assert datalist == result.datalist
    assert (datalist["numTraining"], datalist["numValidation"]) == (5, 1)
    assert len(datalist["training"]) == 5 and len(datalist["validation"]) == 1
    for item in datalist["training"] + datalist["validation"]:
        image, label = _load(root / "data", item["image"]), _load(root / "data", item["label"])
        assert image.shape == label.shape == (32, 32, 32)
        assert set(np.unique(label)) == {0, 1}
        fg = label > 0
        assert 0.005 < fg.mean() < 0.5
        assert image[fg].mean() > image[~fg].mean() + 0.3  # the spheres are visible through the noise
    first = datalist["training"][0]
    other = write_dataset(SyntheticSpec.for_task("segmentation", 6, seed=4), tmp_path / "d4", tmp_path / "d4" / "ds.json")
    assert not np.array_equal(_load(root / "data", first["label"]), _load(tmp_path / "d4", other["training"][0]["label"]))
    same = write_dataset(SyntheticSpec.for_task("segmentation", 6, seed=3), tmp_path / "d3", tmp_path / "d3" / "ds.json")
    assert same == datalist
    for item in datalist["training"]:
        assert np.array_equal(_load(root / "data", item["image"]), _load(tmp_path / "d3", item["image"]))


def test_classification_images_carry_their_class(tmp_path):
    result = init_mmar(tmp_path / "cls", "classification_2d", synthetic_data=24, seed=0)
    data = result.root / "data"
    datalist = result.datalist
    assert (datalist["numTraining"], datalist["numValidation"]) == (18, 6)
    for split in ("training", "validation"):
        assert {item["label"] for item in datalist[split]} == {0, 1}
    for item in datalist["training"] + datalist["validation"]:
        image = _load(data, item["image"])
        assert image.shape == (32, 32) and image.dtype == np.float32
    # Without noise the class shows: a disk is bright at the centroid of its bright pixels, a ring is not.
    clean = write_dataset(SyntheticSpec("classification", 8, 32, seed=1, noise=0.0), tmp_path / "clean",
                          tmp_path / "clean" / "d.json")
    for item in clean["training"] + clean["validation"]:
        image = _load(tmp_path / "clean", item["image"])
        ys, xs = np.nonzero(image > 0.5)
        at_centroid = image[int(round(ys.mean())), int(round(xs.mean()))]
        assert at_centroid == (1.0 if item["label"] == 0 else 0.0), item
    again = write_dataset(SyntheticSpec.for_task("classification", 24, seed=0), tmp_path / "again", tmp_path / "again" / "d.json")
    assert again == datalist
    assert np.array_equal(_load(data, "imagesTr/case_005.nii.gz"), _load(tmp_path / "again", "imagesTr/case_005.nii.gz"))
