"""Synthetic data and MMAR folders for the trainer tests (real NIfTI files, real Clara configs)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

CLARA = Path("/work/shared/clara")
CLARA_CONFIGS = {
    "enum": CLARA / "PyTorch__trn_autoML_Enum.json",
    "loss_optimizer": CLARA / "PyTorch__trn_autoML_Loss_Optimizer.json",
    "transform": CLARA / "PyTorch__trn_autoML_Transform.json",
}

# What the Clara 4.1 configs need to run in seconds on a busy 2-core CPU (the configs are written for
# 96^3 crops, 160^3 sliding windows and 16..256-channel UNets on a GPU). Index 5 of train.pre_transforms
# is RandCropByPosNegLabeld in all three files.
SMALL = [
    "epochs=2",
    "num_interval_per_valid=1",
    "train.model.args.channels=[4,8,16,32,64]",
    "train.pre_transforms[5].args.spatial_size=[32,32,32]",  # InstanceNorm needs > 1 voxel after 4 strides
    "train.pre_transforms[5].args.num_samples=1",
    "train.dataloader.args.num_workers=0",
    "validate.dataloader.args.num_workers=0",
    "validate.inferer.args.roi_size=[32,32,32]",
    "validate.inferer.args.sw_batch_size=1",
]


def make_dataset(folder: Path, n_train: int = 4, n_val: int = 2, size: int = 32) -> Path:
    """Write ``n_train + n_val`` synthetic 3D volumes with their labels as NIfTI, plus dataset.json."""
    import nibabel as nib
    import numpy as np
    from monai.data import create_test_image_3d

    folder.mkdir(parents=True, exist_ok=True)
    entries = []
    for i in range(n_train + n_val):
        img, seg = create_test_image_3d(size, size, size, num_objs=4, rad_max=8, noise_max=0.2, num_seg_classes=1,
                                        random_state=np.random.RandomState(i))
        # CT-like intensities so that the configs' ScaleIntensityRanged(-57, 164) keeps contrast.
        nib.save(nib.Nifti1Image((img * 160 - 20).astype(np.float32), np.eye(4)), folder / f"img{i}.nii.gz")
        nib.save(nib.Nifti1Image(seg.astype(np.uint8), np.eye(4)), folder / f"seg{i}.nii.gz")
        entries.append({"image": f"img{i}.nii.gz", "label": f"seg{i}.nii.gz"})
    datalist = {"training": entries[:n_train], "validation": entries[n_train:]}
    (folder / "dataset.json").write_text(json.dumps(datalist, indent=1))
    return folder


def make_mmar(root: Path, config: dict[str, Any] | Path, data: Path, env: dict[str, Any] | None = None) -> Path:
    """An MMAR folder: config/config_train.json (copied or written), environment.json pointing at ``data``."""
    (root / "config").mkdir(parents=True, exist_ok=True)
    target = root / "config" / "config_train.json"
    if isinstance(config, Path):
        shutil.copyfile(config, target)
    else:
        target.write_text(json.dumps(config, indent=1))
    environment = {"DATA_ROOT": str(data), "DATASET_JSON": str(data / "dataset.json"), "MMAR_CKPT_DIR": "models",
                   "MMAR_CKPT": "models/model.pt", "PROCESSING_TASK": "segmentation"}
    environment.update(env or {})
    (root / "config" / "environment.json").write_text(json.dumps(environment, indent=1))
    return root


def read_metrics(root: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (root / "models" / "metrics.jsonl").read_text().splitlines()]


def read_stats(root: Path) -> dict[str, Any]:
    return json.loads((root / "models" / "train_stats.json").read_text())
