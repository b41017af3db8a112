"""Clara MMARs in the wild (issue 13): Clara 4.0 implicit wiring, the Clara->MONAI rename table, the final
validation, and one-line failure reasons. Real MONAI training on synthetic NIfTI volumes, on the CPU."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from factory import clara40_config, make_dataset, make_mmar, read_metrics, read_stats, tiny_config  # noqa: E402


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("data"))


def run_main(root: Path, *overrides: str) -> int:
    from mmar_automl.train.run import main

    return main([str(root), *(["--set", *overrides] if overrides else [])])


# -- implicit wiring (pure JSON pass) -------------------------------------------------------------------


def test_wiring_fills_only_what_is_missing():
    from mmar_automl.train.wiring import wire

    config = clara40_config()
    config["validate"]["evaluator"]["args"] = {"network": "@other_model"}  # explicit references win
    wired = wire(config, {"MMAR_CKPT": "/m/model.pt", "MMAR_CKPT_DIR": "/m"})
    trainer = wired["train"]["trainer"]["args"]
    assert trainer == {
        "train_data_loader": "@dataloader", "network": "@model", "optimizer": "@optimizer", "loss_function": "@loss",
        "inferer": "@inferer", "postprocessing": "@post_transforms", "key_train_metric": "@metrics",
        "train_handlers": "@handlers", "max_epochs": 2, "amp": False}
    evaluator = wired["validate"]["evaluator"]["args"]
    assert evaluator["network"] == "@other_model" and evaluator["val_data_loader"] == "@dataloader"
    assert evaluator["key_val_metric"] == "@metrics" and "optimizer" not in evaluator
    train = wired["train"]
    assert train["optimizer"]["args"]["params"] == "#@model.parameters()"
    assert train["lr_scheduler"]["args"]["optimizer"] == "@optimizer"
    assert train["dataset"]["args"]["transform"] == "@pre_transforms"
    assert train["dataloader"]["args"]["dataset"] == "@dataset"
    handlers = {h["name"]: h["args"] for h in train["handlers"]}
    assert handlers["LrScheduleHandler"]["lr_scheduler"] == "@lr_scheduler"
    assert handlers["ValidationHandler"]["validator"] == "@evaluator"
    assert handlers["CheckpointSaver"]["save_dict"] == {"model": "@model", "optimizer": "@optimizer",
                                                        "lr_scheduler": "@lr_scheduler"}
    # The flagged key metric moves first (MONAI's key metric is the first entry of the dict).
    assert [m["log_label"] for m in wired["validate"]["metrics"]] == ["val_mean_dice", "val_acc"]
    assert config["train"]["trainer"] == {"name": "SupervisedTrainer"}  # the input is left alone


def test_output_transform_lambdas_read_decollated_output():
    from mmar_automl.train.clara_compat import on_decollated

    items = [{"pred": 1, "label": 2, "loss": 0.5}, {"pred": 3, "label": 4, "loss": 0.5}]
    assert on_decollated(eval("lambda x: x['loss']"))(items) == 0.5
    assert on_decollated(eval("lambda x: (x['pred'], x['label'])"))(items) == ([1, 3], [2, 4])
    assert on_decollated(eval("lambda x: x['loss']"))({"loss": 7}) == 7  # a batch dict: as written


@pytest.mark.slow
def test_clara40_config_trains_then_evaluates(tmp_path, data):
    """Our own Clara 4.0-style config: engines named only, everything wired by role, old MONAI names."""
    root = make_mmar(tmp_path / "m", clara40_config(), data)
    assert run_main(root) == 0
    stats = read_stats(root)
    assert stats["status"] == "complete" and stats["key_metric"] == "val_mean_dice"
    assert [v["epoch"] for v in stats["validations"]] == [1, 2]
    assert set(stats["validations"][0]["metrics"]) == {"val_mean_dice", "val_acc"}
    assert 0 < stats["best_validation_metric"] <= 1
    assert (root / "models" / "model.pt").is_file()
    assert sorted(p.name for p in (root / "models").glob("checkpoint_final*.pt"))  # save_dict given as names
    from mmar_automl.train.evaluate import evaluate

    result = evaluate(root, config=root / "config" / "config_train.json")
    assert result.key_metric == "val_mean_dice"
    assert result.value == pytest.approx(stats["best_validation_metric"], abs=1e-5)


# -- the rename table ----------------------------------------------------------------------------------


def _build(tmp_path, node: dict, notes: list[str]):
    from mmar_automl.train.resolver import Builder

    builder = Builder({"train": {"x": node}}, "c.json", tmp_path, "cpu", warn=notes.append)
    builder.check()
    return builder.get("train", "x")


RENAMED = [
    ({"name": "LoadNiftid", "args": {"keys": "image"}}, "LoadImaged", "LoadNiftid is LoadImaged"),
    ({"name": "LoadNifti", "args": {}}, "LoadImage", "LoadNifti is LoadImage"),
    ({"path": "deepgrow.transforms.FindDiscrepancyRegionsd", "args": {"label": "label", "batched": True}},
     "FindDiscrepancyRegionsd", "'batched' was removed"),
    ({"path": "deepgrow.transforms.AddRandomGuidanced", "args": {"guidance": "guidance", "batched": True}},
     "AddRandomGuidanced", "'batched' was removed"),
    ({"path": "deepgrow.transforms.AddGuidanceSignald", "args": {"image": "image", "batched": True}},
     "AddGuidanceSignald", "deepgrow.transforms is monai.apps.deepgrow.transforms"),
    ({"name": "RandAffined", "args": {"keys": "image", "prob": 0.5, "as_tensor_output": False}},
     "RandAffined", "'as_tensor_output' was removed"),
    ({"name": "Spacingd", "args": {"keys": "image", "pixdim": [1, 1, 1], "meta_key_postfix": "meta_dict"}},
     "Spacingd", "'meta_key_postfix' was removed"),
    ({"name": "DiceCELoss", "args": {"softmax": True, "ce_weight": None}}, "DiceCELoss", "'ce_weight' is 'weight'"),
    ({"name": "AsChannelFirstd", "args": {"keys": "image"}}, "EnsureChannelFirstd", "AsChannelFirstd is"),
    ({"name": "VoteEnsembled", "args": {"keys": ["pred"], "output_key": "pred", "n_classes": 2}},
     "VoteEnsembled", "'n_classes' is 'num_classes'"),
]


@pytest.mark.parametrize(("node", "built", "note"), RENAMED, ids=[r[1] + ":" + r[2][:12] for r in RENAMED])
def test_old_names_and_args_build_with_one_note(tmp_path, node, built, note):
    notes: list[str] = []
    obj = _build(tmp_path, node, notes)
    assert type(obj).__name__ == built
    assert any(note in n for n in notes), notes
    assert len(notes) == len(set(notes))  # each note once


def test_engine_post_transform_is_postprocessing(tmp_path):
    from mmar_automl.train.components import translate

    assert translate("SupervisedEvaluator", {"post_transform": "@post"}) == (
        "SupervisedEvaluator", {"postprocessing": "@post"})


def test_torchvision_fully_conv_model_translates_to_fc_model():
    from mmar_automl.train.components import lookup_name, translate

    name, args = translate("TorchVisionFullyConvModel", {"model_name": "resnet18", "n_classes": 1,
                                                         "pool_size": 7, "pool_stride": 1, "pretrained": False})
    assert name == "TorchVisionFCModel"
    assert args == {"model_name": "resnet18", "num_classes": 1, "pretrained": False, "use_conv": True,
                    "pool": ["avg", {"kernel_size": 7, "stride": 1}]}
    import inspect

    assert set(args) <= set(inspect.signature(lookup_name(name, "c.json", ("train", "model"))).parameters)


# -- final validation ----------------------------------------------------------------------------------


@pytest.mark.slow
def test_final_validation_when_last_epoch_did_not_validate(tmp_path, data, capsys):
    root = make_mmar(tmp_path / "m", tiny_config(epochs=3, num_interval_per_valid=2), data)
    assert run_main(root) == 0
    assert "final validation: epoch 3 was not validated" in capsys.readouterr().out
    stats = read_stats(root)
    assert [v["epoch"] for v in stats["validations"]] == [2, 3]
    assert stats["best_validation_metric"] is not None
    assert [ln["kind"] for ln in read_metrics(root)] == ["train", "train", "validation", "train", "validation", "end"]


# -- one-line failure reasons ---------------------------------------------------------------------------


@pytest.mark.slow
def test_dataloader_worker_error_is_one_line_and_traceback_goes_to_the_log(tmp_path, data, capfd, monkeypatch):
    config = tiny_config(epochs=1)
    config["train"]["pre_transforms"][3] = {"name": "RandCropByPosNegLabeld", "args": {
        "keys": ["image", "label"], "label_key": "label", "spatial_size": [64, 64, 64], "allow_smaller": False}}
    config["train"]["dataloader"]["args"]["num_workers"] = 1
    root = make_mmar(tmp_path / "m", config, data)
    monkeypatch.setenv("MMAR_AUTOML_RUN_MARKER", "test")  # as in a job: stdout is its log.txt
    monkeypatch.delenv("MMAR_AUTOML_DEBUG", raising=False)
    assert run_main(root) == 1
    out, err = capfd.readouterr()
    reason = read_stats(root)["reason"]
    assert reason.startswith("ValueError: The size of the proposed random crop ROI is larger than the image size")
    assert reason.endswith("(in DataLoader worker process 0)") and "\n" not in reason and len(reason) < 250
    assert err.strip().splitlines() == [f"train failed: {reason}"]
    assert "Traceback (most recent call last)" in out and "RandCropByPosNegLabeld" in out


def test_meta_dicts_come_back_only_where_a_config_reads_them():
    from mmar_automl.train.wiring import wire

    plain = wire(clara40_config())
    assert "image_only" not in plain["train"]["pre_transforms"][0]["args"]
    config = clara40_config()
    config["validate"]["handlers"].append({"name": "SegmentationSaver", "args": {
        "output_dir": "eval", "batch_transform": "lambda x: x['image_meta_dict']"}})
    wired = wire(config)
    assert wired["train"]["pre_transforms"][0]["args"]["image_only"] is False  # LoadNiftid, as Clara's loader
    config = clara40_config()
    config["train"]["iteration"] = {"path": "deepgrow.interaction.Interaction", "args": {"max_interactions": 1}}
    wired = wire(config)
    assert wired["train"]["pre_transforms"][0]["args"]["image_only"] is False
    assert wired["train"]["trainer"]["args"]["iteration_update"] == "@iteration"


def test_misspelt_trainer_is_named_with_its_suggestion(tmp_path, data, capsys):
    config = clara40_config()
    config["train"]["trainr"] = config["train"].pop("trainer")
    root = make_mmar(tmp_path / "m", config, data)
    assert run_main(root) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert "train.trainer: missing: a Clara 4.x config needs train.trainer (did you mean 'trainr'?)" in line


@pytest.mark.slow
def test_search_job_with_a_loader_worker_error_fails_in_one_line(tmp_path, capsys):
    """Through `run`: the job's reason is the worker's own error, one line; log.txt holds the tracebacks."""
    import json

    from mmar_automl.cli import main
    from mmar_automl.report.data import load_report

    root = tmp_path / "seg"
    assert main(["init", str(root), "--synthetic-data", "3"]) == 0
    path = root / "config" / "config_train.json"
    config = json.loads(path.read_text())
    config["train"]["pre_transforms"].insert(4, {"name": "RandCropByPosNegLabeld", "args": {
        "keys": ["image", "label"], "label_key": "label", "spatial_size": [64, 64, 64], "allow_smaller": False}})
    config["train"]["dataloader"]["args"]["num_workers"] = 1
    path.write_text(json.dumps(config))
    capsys.readouterr()
    assert main(["run", str(root), "--workers", "cpu", "--max-jobs", "1", "--no-mlflow", "--set", "epochs=1"]) == 1
    console = capsys.readouterr()
    [job] = load_report(root).jobs
    assert job.state == "FAILED"
    assert job.record.reason.startswith("exit code 1: ValueError: The size of the proposed random crop ROI is larger")
    assert job.record.reason.endswith("(in DataLoader worker process 0)") and len(job.record.reason) < 250
    assert "\n" not in job.record.reason and "Original Traceback" not in console.out + console.err
    log = (Path(job.record.folder) / "log.txt").read_text()
    assert "Original Traceback (most recent call last)" in log and 'raise ValueError(' in log


@pytest.mark.parametrize(("node", "message"), [
    ({"name": "PatchWSIDataset", "args": {"data": [], "region_size": 768, "grid_shape": 3, "patch_size": 224}},
     r"train\.x\.args\.region_size: PatchWSIDataset: 'region_size' was MONAI 0\.8's pathology PatchWSIDataset"),
    ({"name": "MeanDice", "args": {"include_background": False, "sigmoid": True}},
     r"train\.x\.args\.sigmoid: MeanDice: 'sigmoid' was removed from MONAI's MeanDice in 0\.5: put Activationsd"),
])
def test_args_whose_meaning_changed_say_what_to_write(tmp_path, node, message):
    from mmar_automl.errors import ConfigError

    with pytest.raises(ConfigError, match=message):
        _build(tmp_path, node, [])


def test_an_error_raised_from_none_is_its_own_cause():
    """``raise X from None`` hides its context on purpose: the reason is X, not the KeyError behind it."""
    from mmar_automl.train.failures import failure_reason, root_cause

    def load():
        try:
            {}["pixdim"]
        except KeyError:
            raise ValueError("image has no spacing: give pixdim") from None

    with pytest.raises(ValueError) as caught:
        load()
    assert failure_reason(root_cause(caught.value)) == "ValueError: image has no spacing: give pixdim"
    try:
        raise RuntimeError("applying transform") from caught.value   # an explicit wrapper is still looked through
    except RuntimeError as wrapper:
        assert failure_reason(root_cause(wrapper)) == "ValueError: image has no spacing: give pixdim"


def test_a_message_whose_first_line_is_a_header_keeps_its_substance():
    """MONAI's CheckpointLoader re-raises torch's "Error(s) in loading state_dict for UNet:" whose
    substance (which key, which shapes) is on the next line: both go into the one-line reason."""
    from mmar_automl.train.failures import failure_reason

    err = RuntimeError("Error(s) in loading state_dict for UNet:\n\tsize mismatch for model.0.conv.weight: "
                       "copying a param with shape [16] from checkpoint, the shape in current model is [8].\n\t"
                       "Missing key(s) in state_dict: \"model.1.bias\".")
    assert failure_reason(err) == ("RuntimeError: Error(s) in loading state_dict for UNet: size mismatch for "
                                   "model.0.conv.weight: copying a param with shape [16] from checkpoint, the "
                                   "shape in current model is [8].")
