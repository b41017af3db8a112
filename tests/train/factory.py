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


def tiny_config(**top) -> dict:
    """A minimal Clara 4.x config (same constructs as NVIDIA's): tiny UNet, 16^3 crops, SimpleInferer."""
    config = {
        "epochs": 1, "use_gpu": False, "amp": False, "num_interval_per_valid": 1, "learning_rate": 1e-3,
        "determinism": {"random_seed": 0}, "dont_load_ckpt_model": True,
        "train": {
            "loss": {"name": "DiceLoss", "args": {"to_onehot_y": True, "softmax": True}},
            "optimizer": {"name": "Adam", "args": {"params": "#@model.parameters()", "lr": "{learning_rate}"}},
            "model": {"name": "UNet", "args": {"dimensions": 3, "in_channels": 1, "out_channels": 2,
                                               "channels": [4, 8], "strides": [2], "num_res_units": 0}},
            "pre_transforms": [
                {"name": "LoadImaged", "args": {"keys": ["image", "label"]}},
                {"name": "EnsureChannelFirstd", "args": {"keys": ["image", "label"]}},
                {"name": "ScaleIntensityRanged", "args": {"keys": "image", "a_min": -57, "a_max": 164,
                                                          "b_min": 0.0, "b_max": 1.0, "clip": True}},
                {"name": "RandSpatialCropd", "args": {"keys": ["image", "label"], "roi_size": [16, 16, 16],
                                                      "random_size": False}},
                {"name": "RandFlipd", "disabled": True, "args": {"keys": ["image", "label"], "prob": 0.5}},
                {"name": "ToTensord", "args": {"keys": ["image", "label"]}},
            ],
            "dataset": {"name": "Dataset", "data_list_file_path": "{DATASET_JSON}", "data_file_base_dir": "{DATA_ROOT}",
                        "data_list_key": "training", "args": {"transform": "@pre_transforms"}},
            "dataloader": {"name": "DataLoader", "args": {"dataset": "@dataset", "batch_size": 2, "shuffle": True,
                                                          "num_workers": 0}},
            "inferer": {"name": "SimpleInferer"},
            "handlers": [
                {"name": "CheckpointLoader", "disabled": "{dont_load_ckpt_model}",
                 "args": {"load_path": "{MMAR_CKPT}", "load_dict": {"model": "@model"}}},
                {"name": "ValidationHandler", "args": {"validator": "@evaluator", "epoch_level": True,
                                                       "interval": "{num_interval_per_valid}"}},
            ],
            "trainer": {"name": "SupervisedTrainer", "args": {
                "max_epochs": "{epochs}", "train_data_loader": "@dataloader", "network": "@model",
                "loss_function": "@loss", "optimizer": "@optimizer", "inferer": "@inferer",
                "train_handlers": "@handlers", "amp": "{amp}"}},
        },
        "validate": {
            "pre_transforms": [{"ref": "LoadImaged"}, {"ref": "EnsureChannelFirstd"}, {"ref": "ScaleIntensityRanged"},
                               {"ref": "RandFlipd"}, {"ref": "ToTensord"}],
            "dataset": {"name": "Dataset", "data_list_file_path": "{DATASET_JSON}", "data_file_base_dir": "{DATA_ROOT}",
                        "data_list_key": "validation", "args": {"transform": "@pre_transforms"}},
            "dataloader": {"name": "DataLoader", "args": {"dataset": "@dataset", "batch_size": 1, "num_workers": 0}},
            "inferer": {"name": "SimpleInferer"},
            "handlers": [{"name": "CheckpointSaver", "rank": 0, "args": {
                "save_dir": "{MMAR_CKPT_DIR}", "save_dict": {"model": "@model", "train_conf": "@conf"},
                "save_key_metric": True}}],
            "post_transforms": [
                {"name": "Activationsd", "args": {"keys": "pred", "softmax": True}},
                {"name": "AsDiscreted", "args": {"keys": ["pred", "label"], "argmax": [True, False],
                                                 "to_onehot": [True, True], "n_classes": 2}},
            ],
            "key_metric": {"name": "MeanDice", "log_label": "val_mean_dice",
                           "args": {"include_background": False,
                                    "output_transform": "#monai.handlers.from_engine(['pred', 'label'])"}},
            "evaluator": {"name": "SupervisedEvaluator", "args": {
                "val_data_loader": "@dataloader", "network": "@model", "inferer": "@inferer",
                "postprocessing": "@post_transforms", "key_val_metric": "@key_metric", "val_handlers": "@handlers"}},
        },
    }
    config.update(top)
    return config


def clara40_config(**top) -> dict:
    """A Clara 4.0-style config (our own, in the shape of Clara's federated-learning MMARs): engines,
    optimizer, scheduler, dataset and loader name none of their objects; save_dict is a list of names;
    the key metric is flagged in a ``metrics`` list; output transforms are batch-dict lambdas; the
    loaders and AddChanneld are the MONAI 0.4 names."""
    roi = [32, 32, 32]
    config = {
        "epochs": 2, "use_gpu": False, "amp": False, "num_interval_per_valid": 1, "learning_rate": 1e-3,
        "determinism": {"random_seed": 1},
        "train": {
            "loss": {"name": "DiceCELoss", "args": {"to_onehot_y": True, "softmax": True}},
            "optimizer": {"name": "SGD", "args": {"lr": "{learning_rate}", "momentum": 0.9}},
            "lr_scheduler": {"name": "StepLR", "args": {"step_size": 100, "gamma": 0.5}},
            "model": {"name": "BasicUNet", "args": {"dimensions": 3, "in_channels": 1, "out_channels": 2,
                                                    "features": [4, 4, 8, 8, 16, 4]}},
            "pre_transforms": [
                {"name": "LoadNiftid", "args": {"keys": ["image", "label"]}},
                {"name": "AddChanneld", "args": {"keys": ["image", "label"]}},
                {"name": "ScaleIntensityd", "args": {"keys": "image"}},
                {"name": "RandSpatialCropd", "args": {"keys": ["image", "label"], "roi_size": roi, "random_size": False}},
                {"name": "ToTensord", "args": {"keys": ["image", "label"]}},
            ],
            "dataset": {"name": "CacheDataset", "data_list_file_path": "{DATASET_JSON}",
                        "data_file_base_dir": "{DATA_ROOT}", "data_list_key": "training",
                        "args": {"cache_rate": 1.0, "num_workers": 0}},
            "dataloader": {"name": "DataLoader", "args": {"batch_size": 2, "shuffle": True, "num_workers": 0}},
            "inferer": {"name": "SimpleInferer"},
            "handlers": [
                {"name": "LrScheduleHandler", "args": {"print_lr": False}},
                {"name": "ValidationHandler", "args": {"interval": "{num_interval_per_valid}", "epoch_level": True}},
                {"name": "CheckpointSaver", "rank": 0, "args": {"save_dir": "{MMAR_CKPT_DIR}",
                                                                "save_dict": ["model", "optimizer", "lr_scheduler"],
                                                                "save_final": True}},
                {"name": "StatsHandler", "rank": 0, "args": {"tag_name": "train_loss",
                                                             "output_transform": "lambda x: x['loss']"}},
            ],
            "post_transforms": [
                {"name": "Activationsd", "args": {"keys": "pred", "softmax": True}},
                {"name": "AsDiscreted", "args": {"keys": ["pred", "label"], "argmax": [True, False],
                                                 "to_onehot": True, "n_classes": 2}},
            ],
            "metrics": [{"name": "MeanDice", "log_label": "train_dice", "is_key_metric": True,
                         "args": {"include_background": False,
                                  "output_transform": "lambda x: (x['pred'], x['label'])"}}],
            "trainer": {"name": "SupervisedTrainer"},
        },
        "validate": {
            "pre_transforms": [{"ref": "LoadNiftid"}, {"ref": "AddChanneld"}, {"ref": "ScaleIntensityd"},
                               {"name": "CenterSpatialCropd", "args": {"keys": ["image", "label"], "roi_size": roi}},
                               {"ref": "ToTensord"}],
            "dataset": {"name": "Dataset", "data_list_file_path": "{DATASET_JSON}",
                        "data_file_base_dir": "{DATA_ROOT}", "data_list_key": "validation"},
            "dataloader": {"name": "DataLoader", "args": {"batch_size": 1, "shuffle": False, "num_workers": 0}},
            "inferer": {"name": "SimpleInferer"},
            "handlers": [{"name": "CheckpointSaver", "rank": 0, "args": {"save_dir": "{MMAR_CKPT_DIR}",
                                                                         "save_dict": ["model"],
                                                                         "save_key_metric": True}}],
            "post_transforms": [{"ref": "Activationsd"}, {"ref": "AsDiscreted"}],
            # The key metric is second on purpose: Clara flagged it, MONAI takes the first.
            "metrics": [
                {"name": "Accuracy", "log_label": "val_acc",
                 "args": {"output_transform": "lambda x: (x['pred'], x['label'])"}},
                {"name": "MeanDice", "log_label": "val_mean_dice", "is_key_metric": True,
                 "args": {"include_background": False, "output_transform": "lambda x: (x['pred'], x['label'])"}},
            ],
            "evaluator": {"name": "SupervisedEvaluator"},
        },
    }
    config.update(top)
    return config
