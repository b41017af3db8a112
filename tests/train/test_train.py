"""The inner loop on CPU with real MONAI training on synthetic NIfTI volumes (32^3, 4 train + 2 val).

Clara 4.1 configs are copied from /work/shared/clara, rendered at one point of their search space, and
made small with --set (see factory.SMALL for what changes and why). Other configs here are minimal
Clara-format configs written for one behaviour each.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest

from mmar_automl.errors import ConfigError

sys.path.insert(0, str(Path(__file__).parent))
from factory import CLARA_CONFIGS, SMALL, make_dataset, make_mmar, read_metrics, read_stats, tiny_config  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("data"))


def run_main(root: Path, *overrides: str) -> int:
    from mmar_automl.train.run import main

    argv = [str(root)]
    if overrides:
        argv += ["--set", *overrides]
    return main(argv)


def assert_consistent(root: Path) -> dict:
    """metrics.jsonl and train_stats.json agree; the score is a real number in [0, 1]."""
    stats = read_stats(root)
    lines = read_metrics(root)
    assert lines[-1]["kind"] == "end" and lines[-1]["status"] == stats["status"] == "complete"
    vals = [ln for ln in lines if ln["kind"] == "validation"]
    assert [{"epoch": v["epoch"], "iteration": v["iteration"], "metrics": v["metrics"]} for v in vals] == stats["validations"]
    key = stats["key_metric"]
    assert all(v["key_metric"] == key for v in vals)
    best = max(vals, key=lambda v: v["metrics"][key])
    assert stats["best_validation_metric"] == best["metrics"][key]
    assert stats["best_validation_epoch"] == best["epoch"]
    assert 0.0 <= stats["best_validation_metric"] <= 1.0
    trains = [ln for ln in lines if ln["kind"] == "train"]
    assert [t["epoch"] for t in trains] == list(range(1, stats["total_epochs"] + 1))
    assert trains[-1]["iteration"] == stats["total_iterations"]
    assert all(t["train_loss"] is not None and t["lr"] > 0 and 0 < t["epoch_time"] <= t["time"] for t in trains)
    return stats


def render_at_last_choice(config: dict) -> dict:
    from mmar_automl.search import parse_search_space, render_config
    from mmar_automl.search.space import EnumDimension

    space = parse_search_space(config, "config_train.json")
    point = {d.name: list(d.choices[-1]) if isinstance(d, EnumDimension) else d.low for d in space}
    return render_config(config, space, point)


# -- fast: no training ------------------------------------------------------------------------------


def test_set_overrides_typed_variables_and_json_paths(tmp_path, data):
    from mmar_automl.config.mmar import Mmar
    from mmar_automl.config.overrides import parse_overrides
    from mmar_automl.errors import UsageError

    root = make_mmar(tmp_path / "m", tiny_config(), data, env={"DATA_ROOT": "../data"})
    mmar = Mmar.open(root, overrides=["epochs=3", "train.model.args.channels=[2,4]", "learning_rate=0.5"])
    assert mmar.variables()["DATA_ROOT"] == str(root.resolve() / "../data")  # relative to the MMAR root
    conf = mmar.substituted_config()
    assert conf["train"]["trainer"]["args"]["max_epochs"] == 3  # "{epochs}" takes the typed value
    assert conf["train"]["optimizer"]["args"]["lr"] == 0.5
    assert conf["train"]["model"]["args"]["channels"] == [2, 4]
    assert conf["train"]["handlers"][0]["disabled"] is True
    with pytest.raises(ConfigError, match=r"train\.nope"):
        Mmar.open(root, overrides=["train.nope.args.x=1"])
    with pytest.raises(UsageError, match="KEY=VALUE"):
        parse_overrides(["epochs"])


def test_clara_renames_are_translated(tmp_path):
    from mmar_automl.train.components import translate

    name, args = translate("UNet", {"dimensions": 3, "in_channels": 1})
    assert (name, args) == ("UNet", {"spatial_dims": 3, "in_channels": 1})
    _, args = translate("AsDiscreted", {"keys": ["pred", "label"], "to_onehot": [True, False], "n_classes": 3})
    assert args == {"keys": ["pred", "label"], "to_onehot": [3, None]}
    _, args = translate("AsDiscreted", {"keys": "pred", "threshold_values": True, "logit_thresh": 0.3})
    assert args == {"keys": "pred", "threshold": 0.3}
    assert translate("SplitChanneld", {"keys": "pred", "channel_dim": 0}) == ("SplitDimd", {"keys": "pred", "dim": 0})
    # An alias (monai's Unet = UNet) takes UNet's renames too.
    from mmar_automl.train.resolver import Builder

    node = {"name": "Unet", "args": {"dimensions": 3, "in_channels": 1, "out_channels": 2, "channels": [2, 4],
                                     "strides": [2]}}
    model = Builder({"train": {"model": node}}, "c.json", tmp_path, "cpu", warn=lambda m: None).get("train", "model")
    assert type(model).__name__ == "UNet"
    # Any class that now takes spatial_dims gets Clara 4.1's dimensions renamed (AttentionUnet had it too).
    node = {"name": "AttentionUnet", "args": {"dimensions": 2, "in_channels": 1, "out_channels": 2,
                                              "channels": [2, 4], "strides": [2]}}
    notes: list[str] = []
    builder = Builder({"train": {"model": node}}, "c.json", tmp_path, "cpu", warn=notes.append)
    builder.check()
    assert type(builder.get("train", "model")).__name__ == "AttentionUnet"
    assert notes == ["note: AttentionUnet: arg 'dimensions' is 'spatial_dims' in MONAI 1.6: translated"]


def test_builder_lists_refs_disabled_rank_and_nested_components(tmp_path):
    from mmar_automl.train.resolver import Builder

    config = tiny_config()
    config["train"]["handlers"].append({"name": "StatsHandler", "rank": 1, "args": {}})
    config["train"]["aug"] = {"name": "OneOf", "args": {"transforms": [
        {"name": "Lambdad", "args": {"keys": "image", "func": "lambda x: x * @learning_rate_scale"}},
        {"name": "RandFlipd", "disabled": "true", "args": {"keys": "image"}}]}}
    config["train"]["learning_rate_scale"] = 2  # a plain value entry, reachable as @learning_rate_scale
    from mmar_automl.config.mmar import substitute

    config = substitute(config, {k: v for k, v in config.items() if not isinstance(v, dict)} | {
        "DATASET_JSON": "d.json", "DATA_ROOT": ".", "MMAR_CKPT_DIR": "models", "MMAR_CKPT": "models/model.pt"})
    builder = Builder(config, "c.json", tmp_path, "cpu", warn=lambda m: None)
    builder.check()
    # validate refs: LoadImaged, EnsureChannelFirstd, ScaleIntensityRanged, ToTensord (RandFlipd is disabled in train)
    names = [type(t).__name__ for t in builder.get("validate", "pre_transforms").transforms]
    assert names == ["LoadImaged", "EnsureChannelFirstd", "ScaleIntensityRanged", "ToTensord"]
    train_scale = builder.get("train", "pre_transforms").transforms[2]
    val_scale = builder.get("validate", "pre_transforms").transforms[2]
    assert val_scale is not train_scale and val_scale.scaler.a_min == train_scale.scaler.a_min == -57  # same config
    aug = builder.get("train", "aug")
    assert len(aug.transforms) == 1 and aug.transforms[0]({"image": 3}) == {"image": 6}
    # Rank 1's StatsHandler is dropped, and so is the disabled CheckpointLoader.
    config["train"]["handlers"] = [h for h in config["train"]["handlers"] if h["name"] != "ValidationHandler"]
    assert builder.get("train", "handlers") == []


def _break(config: dict, path: str, value) -> dict:
    from mmar_automl.config.overrides import set_json_path

    config = copy.deepcopy(config)
    set_json_path(config, path, value)
    return config


BROKEN = [
    ("train.model.name", "UNett", r"train\.model\.name: unknown component 'UNett'.*did you mean 'UNet'"),
    ("train.model.args.chanels", [4, 8], r"train\.model\.args\.chanels: UNet has no argument 'chanels'.*did you mean 'channels'"),
    ("train.optimizer.args.params", "#@model.paramters()", r"train\.optimizer\.args\.params: bad expression.*AttributeError"),
    ("train.trainer.args.optimizer", "@optimiser", r"train\.trainer\.args\.optimizer: bad reference '@optimiser'.*did you mean '@optimizer'"),
    ("validate.pre_transforms[0]", {"ref": "LoadImage"}, r"validate\.pre_transforms\[0\]\.ref: no train component named 'LoadImage'.*'LoadImaged'"),
    ("train.model.args.channels", [4], r"train\.model: UNet: ValueError: the length of `channels`"),
    # A string where the annotation wants numbers fails here, not deep in the training loop.
    ("train.trainer.args.max_epochs", "two", r"train\.trainer\.args\.max_epochs: SupervisedTrainer: max_epochs must be int, got the string 'two'"),
    ("train.optimizer.args.lr", "fast", r"train\.optimizer\.args\.lr: Adam: lr must be float \| torch\.Tensor"),
    ("train.model.args.channels", "abc", r"train\.model\.args\.channels: UNet: channels must be Sequence\[int\]"),
    ("validate.handlers[0].args.save_dir", "{MMAR_CKPT_DIR}/{RUN}", r"validate\.handlers\[0\]\.args\.save_dir: unknown variable \{RUN\}"),
    # A cycle is still an error when no set_<arg> can break it (Adam has no set_params).
    ("train.model.args.in_channels", "@optimizer", r"circular reference: train\.model -> train\.optimizer -> train\.model"),
    # A rank that is no process number would drop the ValidationHandler silently (a run with no score).
    ("train.handlers[1].rank", "abc", r"train\.handlers\[1\]\.rank: rank must be a process number .*'abc'"),
    ("train.handlers[1].rank", "{RANK}", r"train\.handlers\[1\]\.rank: unknown variable \{RANK\}"),
    ("validate.handlers[0].name", "TransformInverter", r"validate\.handlers\[0\]\.name: TransformInverter was removed from MONAI: .*Invertd"),
    # MONAI's own words ('Data list trainig not specified in "/abs/path"') named neither the fix nor the lists.
    ("train.dataset.data_list_key", "trainig", r"train\.dataset\.data_list_key: dataset\.json has no list 'trainig' "
                                               r"\(did you mean 'training'\?\); its lists: training, validation"),
]


@pytest.mark.parametrize(("path", "value", "message"), BROKEN, ids=[b[0] for b in BROKEN])
def test_broken_config_is_one_line_naming_component_and_path(tmp_path, data, capsys, path, value, message):
    import re

    root = make_mmar(tmp_path / "m", _break(tiny_config(), path, value), data)
    assert run_main(root) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("config/config_train.json: ") and re.search(message, err[0]), err[0]
    assert read_stats(root)["status"] == "failed"


def test_missing_image_in_datalist_is_a_config_error(tmp_path, data, capsys):
    datalist = json.loads((data / "dataset.json").read_text())
    datalist["validation"][1]["label"] = "gone.nii.gz"
    (tmp_path / "dataset.json").write_text(json.dumps(datalist))
    root = make_mmar(tmp_path / "m", tiny_config(), data, env={"DATASET_JSON": str(tmp_path / "dataset.json")})
    assert run_main(root) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("config/config_train.json: validate.dataset.data_list_file_path: dataset.json: "
                          "validation[1].label: file ") and "gone.nii.gz' not found" in err, err


def test_missing_variable_is_a_config_error(tmp_path, data, capsys):
    root = make_mmar(tmp_path / "m", _break(tiny_config(), "train.optimizer.args.lr", "{nope}"), data)
    assert run_main(root) == 2
    assert "train.optimizer.args.lr: unknown variable {nope}" in capsys.readouterr().err


# -- slow: real training -------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("which", sorted(CLARA_CONFIGS))
def test_clara_41_config_trains_at_one_point(tmp_path, data, which):
    import torch
    from monai.networks.nets import UNet

    config = render_at_last_choice(json.loads(CLARA_CONFIGS[which].read_text()))
    assert "search" not in json.dumps(config)
    root = make_mmar(tmp_path / which, config, data)
    small = [s for s in SMALL if not (which == "enum" and s.startswith("train.model.args.channels"))]
    assert run_main(root, *small) == 0
    stats = assert_consistent(root)
    assert stats["total_epochs"] == 2 and len(stats["validations"]) == 2

    model_args = dict(config["train"]["model"]["args"])
    model_args["spatial_dims"] = model_args.pop("dimensions")
    if which != "enum":
        model_args["channels"] = [4, 8, 16, 32, 64]
    checkpoint = torch.load(root / "models" / "model.pt", weights_only=True)
    UNet(**model_args).load_state_dict(checkpoint["model"])  # strict: every key and shape matches
    assert checkpoint["epoch"] == stats["best_validation_epoch"]
    assert checkpoint["train_conf"]["train"]["model"]["name"] == "UNet"  # CheckpointSaver's @conf
    assert list((root / "models").glob("events.out.tfevents.*"))  # TensorBoardStatsHandler asked for them


@pytest.mark.slow
def test_nan_loss_from_custom_path_module_stops_the_job(tmp_path, data, capsys):
    config = tiny_config(epochs=3)
    config["train"]["loss"] = {"path": "nanloss.NanDiceLoss", "args": {"to_onehot_y": True, "softmax": True}}
    root = make_mmar(tmp_path / "m", config, data)
    (root / "custom").mkdir()
    (root / "custom" / "nanloss.py").write_text(
        "from monai.losses import DiceLoss\n\n"
        "class NanDiceLoss(DiceLoss):\n"
        "    def forward(self, input, target):\n"
        "        return super().forward(input, target) * float('nan')\n"
    )
    assert run_main(root) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "loss is nan at epoch 1 iteration 1" in err[0], err
    stats = read_stats(root)
    assert stats["status"] == "failed" and "loss is nan" in stats["reason"]
    assert stats["best_validation_metric"] is None and stats["total_epochs"] == 0
    end = read_metrics(root)[-1]
    assert end["kind"] == "end" and end["status"] == "failed"
    assert "nanloss" not in sys.modules  # the MMAR's modules are forgotten after the run


@pytest.mark.slow
def test_huge_lr_expression_gives_nan(tmp_path, data, capsys):
    config = tiny_config(epochs=2)
    config["train"]["optimizer"] = {"name": "SGD", "args": {"params": "#@model.parameters()", "lr": "#1e30 * 10"}}
    root = make_mmar(tmp_path / "m", config, data)
    assert run_main(root) == 1
    assert "stopped: loss is nan" in capsys.readouterr().err


@pytest.mark.slow
def test_never_validated_has_no_score(tmp_path, data, capsys):
    root = make_mmar(tmp_path / "m", tiny_config(), data)
    assert run_main(root, "epochs=1", "num_interval_per_valid=5", "final_validation=false") == 0
    assert "no score" in capsys.readouterr().out
    stats = read_stats(root)
    assert stats["status"] == "complete" and stats["best_validation_metric"] is None
    assert stats["best_validation_epoch"] is None and stats["validations"] == [] and stats["total_epochs"] == 1
    assert "no score" in stats["reason"]
    assert [ln["kind"] for ln in read_metrics(root)] == ["train", "end"]
    assert not (root / "models" / "model.pt").exists()


@pytest.mark.slow
def test_unrendered_config_trains_at_its_own_values(tmp_path, data, capsys):
    """search/apply keys are ignored; of two enabled alternatives the first one is used."""
    config = tiny_config()
    config["search"] = [{"domain": "transform", "type": "enum", "args": ["useDice", "useFocal"],
                         "targets": [[True, False], [False, True]]}]
    dice = config["train"]["loss"]
    config["train"]["loss"] = [{**dice, "apply": {"@disabled": "useDice"}},
                               {"name": "FocalLoss", "args": {"to_onehot_y": True}, "apply": {"@disabled": "useFocal"}}]
    config["train"]["model"]["search"] = [{"type": "enum", "args": ["channels"], "targets": [[[4, 8]], [[2, 4]]],
                                           "domain": "net"}]
    root = make_mmar(tmp_path / "m", config, data)
    assert run_main(root) == 0
    assert "2 alternatives enabled (DiceLoss, FocalLoss); using the first" in capsys.readouterr().out
    assert_consistent(root)


@pytest.mark.slow
def test_cli_subprocess(tmp_path, data, capsys):
    root = make_mmar(tmp_path / "m", tiny_config(), data)
    exe = Path(sys.executable).with_name("mmar-automl")
    proc = subprocess.run([str(exe), "train", str(root), "--set", "epochs=2", "--device", "cpu"],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "validation epoch 2" in proc.stdout and "done in" in proc.stdout
    assert assert_consistent(root)["total_epochs"] == 2
    # The error path of the same command, in this process (a second interpreter costs ~20 s here).
    from mmar_automl.cli import main as cli_main

    assert cli_main(["train", str(root), "--set", "train.loss.name=DiceLos"]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "error: config/config_train.json: train.loss.name: unknown component 'DiceLos': not in MONAI, torch.optim or ignite"
        " (did you mean 'DiceLoss'?)"]


@pytest.mark.slow
def test_resume_from_checkpoint_with_checkpoint_loader(tmp_path, data):
    """dont_load_ckpt_model=false enables the config's CheckpointLoader: it reads the model.pt we wrote."""
    root = make_mmar(tmp_path / "m", tiny_config(), data)
    assert run_main(root) == 0
    assert run_main(root, "dont_load_ckpt_model=false") == 0
    assert read_stats(root)["status"] == "complete"


FORKED_JOB = """
import os, sys
import torch
asked = []  # preload must not ask torch.cuda anything: a fork after that can fail to use CUDA
for name in ("is_available", "device_count", "_lazy_init", "init", "current_device", "get_device_capability"):
    setattr(torch.cuda, name, lambda *a, _n=name, _o=getattr(torch.cuda, name), **k: asked.append(_n) or _o(*a, **k))
from mmar_automl.train.run import main, preload
preload()
assert asked == [], asked
assert not torch.cuda.is_initialized()
assert {"monai.engines", "monai.handlers", "ignite.engine", "nibabel"} <= set(sys.modules)
codes = []
for _ in range(2):  # two jobs from one preloaded parent: no state carried between calls
    pid = os.fork()
    if pid == 0:
        os._exit(main([sys.argv[1], "--set", "epochs=1"]))
    codes.append(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
print("codes", codes)
"""


@pytest.mark.slow
def test_jobs_forked_after_preload(tmp_path, data):
    root = make_mmar(tmp_path / "m", tiny_config(), data)
    proc = subprocess.run([sys.executable, "-c", FORKED_JOB, str(root)], capture_output=True, text=True,
                          timeout=300, cwd=root)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "codes [0, 0]" in proc.stdout
    assert read_stats(root)["total_epochs"] == 1


@pytest.mark.slow
def test_more_clara_components(tmp_path, data):
    """SmartCacheDataset + its handler, SegResNet (``dimensions``), DiceCELoss, SGD + CosineAnnealingLR
    through LrScheduleHandler, KeepLargestConnectedComponentd, an additional metric, MetricsSaver."""
    config = tiny_config(epochs=2)
    train, validate = config["train"], config["validate"]
    train["dataset"]["name"] = "SmartCacheDataset"
    train["dataset"]["args"].update({"replace_rate": 0.5, "cache_num": 2, "num_init_workers": 1,
                                     "num_replace_workers": 1})
    train["model"] = {"name": "SegResNet", "args": {"dimensions": 3, "in_channels": 1, "out_channels": 2,
                                                    "init_filters": 8, "blocks_down": [1, 1], "blocks_up": [1]}}
    train["loss"] = {"name": "DiceCELoss", "args": {"to_onehot_y": True, "softmax": True}}
    train["optimizer"] = {"name": "SGD", "args": {"params": "#@model.parameters()", "lr": 0.01, "momentum": 0.9}}
    train["lr_scheduler"] = {"name": "CosineAnnealingLR", "args": {"optimizer": "@optimizer", "T_max": 2}}
    train["handlers"] += [{"name": "SmartCacheHandler", "args": {"smartcacher": "@dataset"}},
                          {"name": "LrScheduleHandler", "args": {"lr_scheduler": "@lr_scheduler"}}]
    validate["post_transforms"].append({"name": "KeepLargestConnectedComponentd",
                                        "args": {"keys": "pred", "applied_labels": [1]}})
    validate["additional_metrics"] = [{"name": "HausdorffDistance", "log_label": "val_hd", "args": {
        "output_transform": "#monai.handlers.from_engine(['pred', 'label'])"}}]
    validate["evaluator"]["args"]["additional_metrics"] = "@additional_metrics"
    validate["handlers"].append({"name": "MetricsSaver", "args": {"save_dir": "{MMAR_CKPT_DIR}/eval", "metrics": "*"}})
    root = make_mmar(tmp_path / "m", config, data)
    assert run_main(root) == 0
    stats = assert_consistent(root)
    assert stats["total_iterations"] == 2  # 2 cached items, batch 2, 2 epochs
    assert set(stats["validations"][0]["metrics"]) == {"val_mean_dice", "val_hd"}
    lrs = [ln["lr"] for ln in read_metrics(root) if ln["kind"] == "train"]
    assert lrs[0] == 0.01 and lrs[1] < 0.01  # the scheduler stepped after epoch 1
    assert "val_mean_dice" in (root / "models" / "eval" / "metrics.csv").read_text()


def test_arg_types_are_checked_before_any_data_is_loaded(tmp_path):
    """The first pass finds ``"max_epochs": "two"``: no datalist exists here, so building would fail first."""
    from mmar_automl.config.mmar import substitute
    from mmar_automl.train.resolver import Builder

    config = _break(tiny_config(), "train.trainer.args.max_epochs", "two")
    config = _break(config, "train.dataset.data_list_file_path", "nothere.json")
    config = _break(config, "validate.dataset.data_list_file_path", "nothere.json")
    config["train"]["handlers"][0]["disabled"] = True
    config = substitute(config, {"learning_rate": 1e-3, "epochs": 1, "amp": False, "num_interval_per_valid": 1})
    with pytest.raises(ConfigError, match=r"train\.trainer\.args\.max_epochs: SupervisedTrainer: max_epochs must be int"):
        Builder(config, "c.json", tmp_path, "cpu", warn=lambda m: None).check()


def test_arg_type_check_lets_strings_through_where_they_may_be_meant():
    """Only clearly wrong strings are refused: keys, modes, devices and untyped args pass."""
    from monai.transforms import LoadImaged, Spacingd

    from mmar_automl.train.components import check_arg_types

    check_arg_types(LoadImaged, "LoadImaged", {"keys": "image", "reader": "NibabelReader"}, "c.json", ("train",))
    check_arg_types(Spacingd, "Spacingd", {"keys": ["image"], "pixdim": [1, 1, 1], "mode": "bilinear"}, "c.json", ("t",))
    check_arg_types(lambda x: x, "f", {"x": "anything"}, "c.json", ("train",))


@pytest.mark.slow
def test_early_stop_handler_and_final_checkpoint_with_conf(tmp_path, data):
    """Two Clara habits that need care: EarlyStopHandler in validate handlers names ``@trainer`` (which
    is being built when the evaluator is: the trainer is set afterwards), and a train CheckpointSaver
    with ``save_final`` stores ``@conf`` (ignite must not descend into it as a Mapping)."""
    import torch

    config = tiny_config(epochs=3)
    config["train"]["handlers"].append({"name": "CheckpointSaver", "rank": 0, "args": {
        "save_dir": "{MMAR_CKPT_DIR}", "save_dict": {"model": "@model", "train_conf": "@conf"},
        "save_final": True, "final_filename": "final.pt"}})
    config["validate"]["handlers"].append({"name": "EarlyStopHandler", "args": {
        "patience": 1, "min_delta": 1.0, "trainer": "@trainer",
        "score_function": "#lambda engine: engine.state.metrics['val_mean_dice']"}})
    root = make_mmar(tmp_path / "m", config, data)
    assert run_main(root) == 0
    stats = assert_consistent(root)
    assert stats["total_epochs"] == 2  # no gain of 1.0 at the 2nd validation: stopped before epoch 3
    final = torch.load(root / "models" / "final.pt", weights_only=True)
    assert final["train_conf"]["train"]["model"]["name"] == "UNet"
