"""A bundle's configs without training: detection, the search space (search file with bundle ids, inline
search beside _target_, JSON and YAML), rendering, --set ids and the checks run makes before it starts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bundle_files import SPLEEN, TEMPLATE, cli, make_bundle, read, write
from mmar_automl.bundle import Bundle, is_bundle, open_bundle
from mmar_automl.errors import ConfigError, UsageError
from mmar_automl.search import markers as mk
from mmar_automl.search.render import render_config


def _space(root: Path):
    bundle = open_bundle(root)
    return bundle, bundle.search_space(bundle.load_config())


def _error(root: Path) -> str:
    with pytest.raises(ConfigError) as info:
        _space(root)
    return str(info.value)


def test_a_bundle_is_a_folder_with_metadata_and_train_config(tmp_path):
    assert is_bundle(TEMPLATE) and is_bundle(SPLEEN)
    assert not is_bundle(TEMPLATE.parent / "segmentation_3d")            # an MMAR
    make_bundle(tmp_path / "b", yaml=True)
    assert is_bundle(tmp_path / "b") and open_bundle(tmp_path / "b").train_config_file.name == "train.yaml"


def test_search_file_ids_and_inline_search_make_one_space(tmp_path):
    _, space = _space(make_bundle(tmp_path / "b"))
    dims = {d.name: d for d in space}
    assert list(dims) == ["learning_rate", "network_def.channels", "RandFlipd.prob"]
    assert dims["network_def.channels"].prl == "net.enum.$1:network_def#channels"
    assert [(c.component, c.arg) for c in dims["network_def.channels"].consumers] == [(("network_def",), "channels")]
    assert [(c.component, c.arg) for c in dims["learning_rate"].consumers] == [((), "learning_rate")]
    flip = dims["RandFlipd.prob"]
    assert flip.prl == "transform.enum.train.preprocessing.transforms[3]$0:prob"
    assert [(c.component, c.arg) for c in flip.consumers] == [(("train", "preprocessing", "transforms", 3), "prob")]
    assert space.grid_size == 4


def test_yaml_bundle_has_the_same_space_as_json(tmp_path):
    _, from_json = _space(make_bundle(tmp_path / "j"))
    _, from_yaml = _space(make_bundle(tmp_path / "y", yaml=True))
    assert from_yaml.to_json() == from_json.to_json()


def test_point_is_written_at_the_ids_and_markers_are_gone(tmp_path):
    bundle, space = _space(make_bundle(tmp_path / "b"))
    config = bundle.load_config()
    point = {"learning_rate": 0.005, "network_def.channels": [[16, 32, 64]], "RandFlipd.prob": [0.0]}
    out = render_config(config, space, point, mk.BUNDLE)
    assert out["learning_rate"] == 0.005 and out["network_def"]["channels"] == [16, 32, 64]
    flip = out["train"]["preprocessing"]["transforms"][3]
    assert flip["prob"] == 0.0 and "search" not in flip and flip["_target_"] == "RandFlipd"
    assert "search" not in json.dumps(out)
    assert config["train"]["preprocessing"]["transforms"][3]["prob"] == 0.5   # the base stays untouched


def test_deep_ids_aliases_and_disabled(tmp_path):
    search = {"search": [
        {"domain": "transform", "type": "float", "args": ["train#preprocessing#transforms#3#prob#flipProb"],
         "targets": [0.1, 0.9]},
        {"domain": "net", "type": "enum", "args": ["loss#include_background", "network_def#num_res_units"],
         "targets": [[True, 1], [False, 2]]},
    ]}
    train = read(TEMPLATE / "configs" / "train.json")
    del train["train"]["preprocessing"]["transforms"][3]["search"]
    train["train"]["preprocessing"]["transforms"][2]["search"] = [
        {"domain": "transform", "type": "enum", "args": ["@disabled"], "targets": [[True], [False]]}]
    bundle, space = _space(make_bundle(tmp_path / "b", train=train, search=search))
    dims = {d.name: d for d in space}
    assert set(dims) == {"flipProb", "loss.include_background,network_def.num_res_units", "ScaleIntensityd.@disabled"}
    out = render_config(bundle.load_config(), space, {"flipProb": 0.3, "loss.include_background,network_def.num_res_units":
                        [False, 2], "ScaleIntensityd.@disabled": [True]}, mk.BUNDLE)
    transforms = out["train"]["preprocessing"]["transforms"]
    assert transforms[3]["prob"] == 0.3 and transforms[2]["_disabled_"] is True
    assert out["loss"]["include_background"] is False and out["network_def"]["num_res_units"] == 2


@pytest.mark.parametrize("arg, expected", [
    ("network_def#chanels", "configs/search.json: search[0].args[0]: 'network_def#chanels': the bundle has no id "
                            "'network_def#chanels' (did you mean 'network_def#channels'?)"),
    ("optimiser#lr", "no id 'optimiser' (did you mean 'optimizer'?)"),
    ("optimizer#learning_rate", "no id 'optimizer#learning_rate' ('optimizer' is an object with keys _target_, "
                                "params, lr)"),     # no near spelling: the keys there are
    ("train#preprocessing#transforms#9#prob", "no id 'train#preprocessing#transforms#9'"),
    ("network_def#channels#0", "names a list item: search the whole list ('network_def#channels')"),
    ("learning_rat", "free variable 'learning_rat' is not a first-level key (did you mean 'learning_rate'?)"),
])
def test_an_id_that_does_not_exist_is_one_line_with_a_suggestion(tmp_path, arg, expected):
    search = {"search": [{"domain": "net", "type": "float", "args": [arg], "targets": [1, 2]}]}
    message = _error(make_bundle(tmp_path / "b", search=search))
    assert expected in message and "\n" not in message


def test_inline_search_arg_must_be_a_key_beside_target(tmp_path):
    train = read(TEMPLATE / "configs" / "train.json")
    train["train"]["preprocessing"]["transforms"][3]["search"][0]["args"] = ["probb"]
    message = _error(make_bundle(tmp_path / "b", train=train))
    assert message.startswith("configs/train.json: train.preprocessing.transforms[3].search[0].args[0]: 'probb' is "
                              "not a key of train.preprocessing.transforms[3] (did you mean 'prob'?)")


def test_grammar_errors_name_the_search_file_and_its_yaml_twin(tmp_path):
    bad = {"search": [{"domain": "lr", "type": "float", "args": ["learning_rate"], "targets": [0.1, 0.01]}]}
    assert _error(make_bundle(tmp_path / "j", search=bad)) == (
        "configs/search.json: search[0].targets: a float range needs min <= max, got [0.1, 0.01]")
    assert _error(make_bundle(tmp_path / "y", search=bad, yaml=True)).startswith("configs/search.yaml: search[0].targets")
    extra = {"search": [], "controller": {}}
    assert "configs/search.json: controller: unknown key 'controller'" in _error(make_bundle(tmp_path / "k", search=extra))


def test_yaml_syntax_errors_and_duplicate_keys_give_line_and_column(tmp_path):
    root = make_bundle(tmp_path / "b", yaml=True)
    (root / "configs" / "train.yaml").write_text("epochs: 2\nnetwork_def:\n  _target_: UNet\n   channels: [8, 16]\n")
    message = _error(root)
    assert message.startswith("configs/train.yaml: invalid YAML at line 4 column 12") and "\n" not in message
    (root / "configs" / "train.yaml").write_text("epochs: 2\nlr: 1\nepochs: 3\n")
    assert _error(root) == ("configs/train.yaml: duplicate key 'epochs' at line 3 column 1 (first at line 1): "
                            "keep only one")


def test_yaml_merge_keys_load_as_monai_loads_them(tmp_path):
    """`<<: *anchor` (YAML merge) was "invalid YAML ... constructor for the tag merge"; yaml.safe_load, which
    MONAI uses, merges it, and a key after it overrides the merged one. Duplicates stay errors."""
    from mmar_automl.bundle.files import load_config_file

    path = tmp_path / "train.yaml"
    path.write_text("base: &net\n  _target_: UNet\n  channels: [8, 16]\nnetwork_def:\n  <<: *net\n  channels: [4, 8]\n")
    assert load_config_file(path)["network_def"] == {"_target_": "UNet", "channels": [4, 8]}
    path.write_text("base: &net\n  a: 1\nx:\n  <<: *net\n  b: 2\n  b: 3\n")
    with pytest.raises(ConfigError, match="duplicate key 'b' at line 6"):
        load_config_file(path)


def test_top_level_search_belongs_in_the_search_file(tmp_path):
    train = read(TEMPLATE / "configs" / "train.json")
    train["search"] = []
    assert "top-level search entries of a bundle go in configs/search.json" in _error(
        make_bundle(tmp_path / "b", train=train))


@pytest.mark.parametrize("edit, expected", [
    (lambda c: c.pop("validate"), "configs/train.json: validate#evaluator: missing: nothing to score a job with; "
                                  "expected a SupervisedEvaluator with a key_val_metric at id 'validate#evaluator'"),
    (lambda c: c["validate"]["evaluator"].pop("key_val_metric"), "validate#evaluator#key_val_metric: missing"),
    (lambda c: c["train"]["handlers"].pop(0), "train#handlers: no ValidationHandler: the evaluator at "
                                              "'validate#evaluator' would never run"),
    (lambda c: c["train"].pop("trainer"), "train#trainer: missing"),
    (lambda c: c["validate"]["evaluator"].update(metric_cmp_fn="$lambda x, y: x < y"),   # mednist_reg's MSE
     "validate#evaluator#metric_cmp_fn: '$lambda x, y: x < y': a key metric where lower is better is not supported"),
    (lambda c: c.pop("run"), "configs/train.json: run: missing: MONAI's bundle workflow runs the expressions at "
                             "id 'run' (older bundles: 'training')"),
    (lambda c: c.update(dataset_dir="/no/such/data"), "configs/train.json: dataset_dir: data path '/no/such/data' "
                                                      "does not exist"),
])
def test_checks_before_a_run(tmp_path, edit, expected):
    config = read(TEMPLATE / "configs" / "train.json")
    edit(config)
    bundle = open_bundle(make_bundle(tmp_path / "b", train=config))
    with pytest.raises(ConfigError) as info:
        bundle.check()
    assert expected in str(info.value) and "\n" not in str(info.value)


def test_spleen_as_published_needs_its_data_location(tmp_path):
    with pytest.raises(ConfigError, match="dataset_dir: data path '/workspace/data/Task09_Spleen' does not exist"):
        Bundle.open(SPLEEN).check()
    data = tmp_path / "data"
    data.mkdir()
    bundle = Bundle.open(SPLEEN, overrides=[f"dataset_dir={data}", "epochs=2"])
    bundle.check()
    assert bundle.overrides == {"dataset_dir": str(data), "epochs": 2}
    assert bundle.train_config["epochs"] == 2 and bundle.load_config()["epochs"] == 800


def test_set_takes_bundle_ids(tmp_path, monkeypatch):
    root = make_bundle(tmp_path / "b")
    with pytest.raises(UsageError, match=r"--set epoch: configs/train.json has no id 'epoch' \(did you mean 'epochs'\?\)"):
        Bundle.open(root, overrides=["epoch=2"])
    with pytest.raises(UsageError, match="has no id 'train#trainer#max_epoch' "):
        Bundle.open(root, overrides=["train#trainer#max_epoch=2"])
    (tmp_path / "mydata").mkdir()
    monkeypatch.chdir(tmp_path)
    bundle = Bundle.open(root, overrides=["train#trainer#max_epochs=3", "dataset_dir=mydata",
                                          "train#handlers#0#interval=2", "run_id=r7"])
    assert bundle.overrides["dataset_dir"] == str(tmp_path / "mydata")   # jobs run in their own folders
    out = bundle.train_config
    assert out["train"]["trainer"]["max_epochs"] == 3 and out["train"]["handlers"][0]["interval"] == 2
    assert bundle.run_keys.run_id == "r7" and "run_id" not in out   # Clara's run keys, as for an MMAR


def test_validate_cli_on_a_bundle(tmp_path):
    root = make_bundle(tmp_path / "b", yaml=True)
    nodata = cli("validate", str(root))     # the template's dataset_dir is "$@bundle_root + '/data'"
    assert nodata.returncode == 2 and f"dataset_dir: data path \"$@bundle_root + '/data'\" ({root / 'data'}) " \
        "does not exist" in nodata.stderr
    (root / "data").mkdir()
    ok = cli("validate", str(root), "--json")
    assert ok.returncode == 0, ok.stderr
    report = json.loads(ok.stdout)
    assert report["project"] == "bundle" and [d["name"] for d in report["dimensions"]] == [
        "learning_rate", "network_def.channels", "RandFlipd.prob"]
    assert report["automl"]["controller"]["name"] == "OptunaController"
    table = cli("validate", str(root))
    assert table.returncode == 0 and "train#preprocessing#transforms#3#prob" in table.stdout   # consumers as ids
    bad = cli("validate", str(SPLEEN))
    assert bad.returncode == 2 and bad.stderr.strip().count("\n") == 0
    assert "dataset_dir: data path '/workspace/data/Task09_Spleen' does not exist" in bad.stderr
    typo = cli("validate", str(root), "--set", "epoch=2")
    assert typo.returncode == 2 and "(did you mean 'epochs'?)" in typo.stderr


def test_run_refuses_a_bad_bundle_before_creating_anything(tmp_path):
    search = {"search": [{"domain": "net", "type": "enum", "args": ["network_def#chanels"], "targets": [[1]]}]}
    root = make_bundle(tmp_path / "b", search=search)
    out = cli("run", str(root), "--no-mlflow")
    assert out.returncode == 2 and "did you mean 'network_def#channels'" in out.stderr
    clash = cli("run", str(make_bundle(tmp_path / "c")), "--no-mlflow", "--set", "network_def#channels=[4,8,16]")
    assert clash.returncode == 2 and "--set network_def#channels: this id is searched" in clash.stderr
    assert not (root / "automl").exists() and not (tmp_path / "c" / "automl").exists()


def test_init_writes_the_bundle_template(tmp_path):
    out = cli("init", str(tmp_path / "new"), "--template", "segmentation_3d_bundle")
    assert out.returncode == 0, out.stderr
    assert is_bundle(tmp_path / "new") and (tmp_path / "new" / "models").is_dir()
    assert "next: mmar-automl validate" in out.stderr + out.stdout
    assert "# new: a MONAI bundle" in (tmp_path / "new" / "docs" / "README.md").read_text()


def test_a_bundles_own_search_yaml_is_left_alone(tmp_path):
    """multi_organ_segmentation (Model Zoo) ships configs/search.yaml: its DiNTS search, a MONAI config."""
    root = make_bundle(tmp_path / "b")
    (root / "configs" / "search.json").unlink()
    (root / "configs" / "search.yaml").write_text("arch_ckpt_path: models\nlearning_rate_arch: 0.001\n")
    bundle, space = _space(root)
    assert [d.name for d in space] == ["RandFlipd.prob"] and not bundle.owns_search_file()
    bundle.write_job_folder(tmp_path / "job", bundle.load_config(), {"job": "W1_1_J1"})
    assert (tmp_path / "job" / "configs" / "search.yaml").is_file()          # the job keeps the bundle's file
    (root / "configs" / "search.yaml").write_text("serach: []\n")
    assert "configs/search.yaml: expected a mapping with one key \"search\"" in _error(root)


def test_bundle_jobs_fork_from_a_launcher_with_monai_bundle_preloaded(monkeypatch):
    from mmar_automl.backends.launcher import PRELOAD_ENV, default_preload

    monkeypatch.delenv(PRELOAD_ENV, raising=False)
    bundle = open_bundle(TEMPLATE)
    assert default_preload(bundle.job_entry) == bundle.job_preload == "mmar_automl.bundle.job:preload"
    assert default_preload("mmar_automl.train.run:main") == "mmar_automl.train.run:preload"


def test_a_data_path_nothing_reads_is_not_checked(tmp_path):
    """endoscopic_inbody_classification (Model Zoo) ships dataset_dir=/workspace/... but reads its data lists
    from label/*.json: only a path that some @reference uses must exist."""
    config = read(TEMPLATE / "configs" / "train.json")
    config["data_root"] = "/no/such/data"                   # referenced by nothing
    (make_bundle(tmp_path / "a", train=config) / "data").mkdir()
    open_bundle(tmp_path / "a").check()
    config["datalist"] = "$json.load(open(@data_root + '/dataset.json'))"
    (make_bundle(tmp_path / "b", train=config) / "data").mkdir()
    with pytest.raises(ConfigError, match="data_root: data path '/no/such/data' does not exist"):
        open_bundle(tmp_path / "b").check()


@pytest.mark.parametrize("value, at", [("$@bundle_root + '/train_data'", "BUNDLE/train_data"),
                                       ('$@data_root + "/images"', "/no/such/root/images")])
def test_a_data_location_joined_by_an_expression_must_exist(tmp_path, value, at):
    """segmentation_template (Model Zoo) globs "$@bundle_root + '/train_data'": without that folder every job
    trained on nothing. ``$@ID + '/sub'`` is checked as the job will see it (bundle_root = the job folder,
    where the bundle's data folders are linked); other expressions are left to the job."""
    config = read(TEMPLATE / "configs" / "train.json")
    config.update(dataset_dir=value, data_root="/no/such/root")
    root = make_bundle(tmp_path / "b", train=config)
    with pytest.raises(ConfigError) as info:
        open_bundle(root).check()
    assert f"dataset_dir: data path {value!r} ({at.replace('BUNDLE', str(root))}) does not exist" in str(info.value)
    (root / "train_data").mkdir()
    if "bundle_root" in value:
        open_bundle(root).check()
    config["dataset_dir"] = "$os.path.join(@bundle_root, 'elsewhere')"    # not evaluated before the job
    open_bundle(make_bundle(tmp_path / "c", train=config)).check()


def test_resume_names_the_default_automl_file_which_stays_optional(tmp_path):
    """A run's journal names configs/automl.json; a bundle without it must still resume."""
    root = make_bundle(tmp_path / "b")
    (root / "configs" / "automl.json").unlink()
    assert not Bundle.at(root, automl_config="configs/automl.json").automl_config_given
    assert Bundle.at(root, automl_config="other.json").automl_config_given


def test_free_variables_in_the_search_file_and_apply_beside_target(tmp_path):
    train = read(TEMPLATE / "configs" / "train.json")
    transforms = train["train"]["preprocessing"]["transforms"]
    del transforms[3]["search"]
    transforms[3]["apply"] = {"prob": "flip"}
    transforms[2]["apply"] = {"@disabled": "noScale"}
    search = {"search": [{"domain": "transform", "type": "enum", "args": ["@flip"], "targets": [[0.0], [0.3]]},
                         {"domain": "transform", "type": "enum", "args": ["@noScale"], "targets": [[True], [False]]}]}
    bundle, space = _space(make_bundle(tmp_path / "b", train=train, search=search))
    assert [d.name for d in space] == ["flip", "noScale"]
    out = render_config(bundle.load_config(), space, {"flip": [0.3], "noScale": [True]}, mk.BUNDLE)
    transforms = out["train"]["preprocessing"]["transforms"]
    assert transforms[3]["prob"] == 0.3 and "apply" not in transforms[3]
    assert transforms[2]["_disabled_"] is True and "apply" not in transforms[2]


def test_monai_double_colon_ids_are_the_same_ids(tmp_path):
    """MONAI >= 1.4 writes ids with "::" (train::trainer::max_epochs) and reads "#" alike: so do --set and the
    search file (they were "no id 'train::trainer::max_epochs'")."""
    search = {"search": [{"domain": "net", "type": "enum", "args": ["network_def::channels"],
                          "targets": [[[8, 16, 32]], [[4, 8, 16]]]}]}
    root = make_bundle(tmp_path / "b", search=search)
    bundle = Bundle.open(root, overrides=["train::trainer::max_epochs=3"])
    assert bundle.overrides == {"train#trainer#max_epochs": 3}
    assert bundle.train_config["train"]["trainer"]["max_epochs"] == 3
    space = bundle.search_space()
    assert [d.name for d in space][:1] == ["network_def.channels"]
    with pytest.raises(UsageError, match="this id is searched"):
        Bundle.open(root, overrides=["network_def::channels=[2]"]).check_not_searched(space)


def test_a_job_links_what_the_bundle_reads_from_its_models_folder(tmp_path):
    """pancreas_ct_dints_segmentation reads its searched architecture from "$@bundle_root +
    '/models/search_code_18590.pt'": a job's empty models/ made every job fail. Linked; model.pt stays the job's."""
    root = make_bundle(tmp_path / "b")
    (root / "models" / "search_code_18590.pt").write_bytes(b"arch")
    (root / "models" / "model.pt").write_bytes(b"pretrained")
    bundle = Bundle.open(root)
    bundle.write_job_folder(tmp_path / "job", bundle.train_config)
    models = tmp_path / "job" / "models"
    assert (models / "search_code_18590.pt").is_symlink() and (models / "search_code_18590.pt").read_bytes() == b"arch"
    assert not (models / "model.pt").exists()
