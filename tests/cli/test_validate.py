"""`mmar-automl validate`: Clara MMARs, malformed inputs (exit 2, one line), --json, light imports."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from typing import Any

import pytest

from mmar_files import make_mmar
from mmar_automl import cli
from mmar_automl.cli import main

CLARA_TRAIN = {
    "PyTorch__trn_autoML_Enum.json": (8, [], ["lr_scheduler.step_size", "model.channels", "model.norm"]),
    "PyTorch__trn_autoML_Loss_Optimizer.json": (4, [], ["mySearchLoss1,mySearchLoss2",
                                                        "mySearchOptimizer1,mySearchOptimizer2"]),
    "PyTorch__trn_autoML_Transform.json": (4, [], ["myTransformDisable", "RandGaussianNoised.@disabled"]),
    "Tensorflow-Deprecated__trn_autoML_LR_LP.json": (
        1, ["learning_rate", "lr_policy.poly_power", "myProb"], ["learning_rate", "lr_policy.poly_power", "myProb"]),
}


CLARA_STYLE_BYOC = """
from automl.components.controllers.controller import Controller
from automl.components.handlers.handler import Handler
from automl.defs import Context, ContextKey, Outcome, Recommendation, SearchResult


class RandomController(Controller):
    def __init__(self, max_rounds=10):
        Controller.__init__(self)

    def initial_recommendation(self, ctx):
        return []

    def refine_recommendation(self, outcome, ctx):
        return []


class MyHandler(Handler):
    pass
"""


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["validate", *args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("train", sorted(CLARA_TRAIN))
@pytest.mark.parametrize("automl", ["PyTorch__config_automl.json", "PyTorch__config_automl_BYO_RandomController.json"])
def test_clara_mmars_json(clara_mmar, capsys, train, automl, monkeypatch):
    root = clara_mmar(train, automl)
    if "BYO" in automl:  # validate imports `path` components as run does: the MMAR needs its BYOC file
        (root / "BYOC").mkdir()
        (root / "BYOC" / "myAutoMLController.py").write_text(CLARA_STYLE_BYOC)
    code, out, err = run(capsys, str(root), "--json")
    assert code == 0, err
    notes = [ln for ln in err.splitlines() if ln.startswith("note: ")]
    warnings = [ln for ln in err.splitlines() if not ln.startswith("note: ")]
    # Clara's file has keys that change nothing here (msg_destination, train_config_file): named on stderr
    assert sorted(ln.split(": ")[2].split()[0] for ln in notes) == [
        "executor.args.msg_destination", "handlers[0].args.train_config_file"]
    assert all("is accepted and has no effect: " in ln for ln in notes)
    # NVIDIA's PyTorch files train fewer epochs than they validate every: said, once (issue 13).
    pytorch = train.startswith("PyTorch")
    assert [line.partition(": epochs ")[0] for line in warnings] == (
        [f"warning: {root / 'config' / 'config_train.json'}"] if pytorch else [])
    assert ("epochs 1 < validation interval 20 (train.handlers[2].args.interval)" in err) is pytorch
    report = json.loads(out)
    grid, continuous, names = CLARA_TRAIN[train]
    assert report["grid_size"] == grid
    assert report["continuous"] == continuous
    assert [d["name"] for d in report["dimensions"]] == names
    assert report["automl"]["controller"]["args"] == {"max_rounds": 8}
    assert report["train_config"] == str(root / "config" / "config_train.json")


def test_clara_byo_file_as_published_names_tensorboard_handler(clara_mmar, capsys):
    """NVIDIA's published BYO config_automl.json also lists MMARTensorboardHandler (handlers[3]): it was
    refused as an unknown handler (exit 2). It is accepted, and said to do nothing, on one note line."""
    root = clara_mmar("PyTorch__trn_autoML_Enum.json", "PyTorch__config_automl_BYO_RandomController.json")
    automl = json.loads((root / "config" / "config_automl.json").read_text())
    automl["handlers"].insert(3, {"name": "MMARTensorboardHandler"})
    (root / "config" / "config_automl.json").write_text(json.dumps(automl))
    (root / "BYOC").mkdir()
    (root / "BYOC" / "myAutoMLController.py").write_text(CLARA_STYLE_BYOC)
    code, out, err = run(capsys, str(root), "--json")
    assert code == 0, err
    notes = [ln for ln in err.splitlines() if ln.startswith("note: ")]
    assert [n.split(": ")[2] for n in notes if "MMARTensorboardHandler" in n] == [
        "handlers[3] MMARTensorboardHandler is accepted and has no effect"]
    assert [h.get("name") for h in json.loads(out)["automl"]["handlers"]][3] == "MMARTensorboardHandler"


def test_byoc_code_reading_mmar_root_at_import_validates_as_it_runs(clara_mmar, capsys, monkeypatch):
    """run exports MMAR_ROOT before it imports BYOC code; validate imported it without: a module reading
    os.environ["MMAR_ROOT"] at import was 'cannot import module ... KeyError' (exit 2) there only."""
    monkeypatch.delenv("MMAR_ROOT", raising=False)
    root = clara_mmar("PyTorch__trn_autoML_Enum.json")
    (root / "BYOC").mkdir()
    (root / "BYOC" / "rootreader_byoc.py").write_text(
        "import os\nfrom automl.components.handlers.handler import Handler\nROOT = os.environ['MMAR_ROOT']\n\n"
        "class H(Handler):\n    pass\n")
    (root / "config" / "config_automl.json").write_text(json.dumps(
        {"controller": {"name": "GridController"}, "handlers": [{"path": "rootreader_byoc.H"}]}))
    code, _, err = run(capsys, str(root), "--json")
    assert code == 0, err
    assert sys.modules["rootreader_byoc"].ROOT == str(root.resolve())
    assert "MMAR_ROOT" not in __import__("os").environ  # put back as it was


def test_claras_automlconf_names_a_file_of_config(clara_mmar, capsys):
    """Clara's BYO scripts pass ``--automlconf config_automl_BYO_handler.json`` (a file of config/)."""
    root = clara_mmar("PyTorch__trn_autoML_Enum.json")
    (root / "config" / "config_automl_BYO_handler.json").write_text(json.dumps({"controller": {"name": "GridController"}}))
    code, out, err = run(capsys, str(root), "--automlconf", "config_automl_BYO_handler.json", "--json")
    assert code == 0, err
    assert json.loads(out)["automl"]["controller"]["name"] == "GridController"
    code, _, err = run(capsys, str(root), "--automlconf", "config_automl_BYO_handler.json", "--automl-config", "x.json")
    assert code == 2 and err.strip() == ("error: --automlconf config_automl_BYO_handler.json and --automl-config x.json "
                                         "name different files: give one")


def test_lr_lp_alias_applied_to_second_transform(clara_mmar, capsys):
    code, out, _ = run(capsys, str(clara_mmar("Tensorflow-Deprecated__trn_autoML_LR_LP.json")), "--json")
    prob = json.loads(out)["dimensions"][2]
    assert code == 0
    assert prob["consumers"] == [
        {"component": ["train", "pre_transforms", 8], "arg": "probability", "index": 0},
        {"component": ["train", "pre_transforms", 9], "arg": "probability", "index": 0},
    ]


def test_table_shows_dimensions_and_grid(clara_mmar, capsys):
    root = clara_mmar("PyTorch__trn_autoML_Enum.json", "PyTorch__config_automl.json")
    code, out, err = run(capsys, str(root), "--set", "epochs=20")  # epochs 20 reach the interval 20: no warning
    assert code == 0 and all(ln.startswith("note: ") for ln in err.splitlines())  # Clara keys without effect
    for text in ("model.channels", "net.enum.train.model$0:channels", "[[16, 32, 64, 128, 256]]", "[[8, 16, 32, 64, 128]]",
                 "train.lr_scheduler.step_size", "grid size 8", "controller ReinforcementController"):
        assert text in out
    # one choice per line, each whole
    assert any("[[16, 32, 64, 128, 256]]" in line and "[[8, 16" not in line for line in out.splitlines())


@pytest.mark.parametrize("width", [60, 100])
def test_narrow_terminal_gets_one_block_per_dimension(clara_mmar, capsys, monkeypatch, width):
    # A six-column table folded every cell mid-word at these widths; each dimension is now a block.
    import importlib
    import io

    from rich.console import Console

    cli_console = importlib.import_module("mmar_automl.cli.console")  # the package's `console` name is the object

    buffer = io.StringIO()
    monkeypatch.setattr(cli_console, "stdout", Console(file=buffer, width=width, force_terminal=True, color_system=None,
                                                        markup=False, emoji=False, highlight=False))
    code, _, _ = run(capsys, str(clara_mmar("Tensorflow-Deprecated__trn_autoML_LR_LP.json")))
    lines = buffer.getvalue().splitlines()
    blocks = lines[1:-1]    # the title and the summary are single soft-wrapped lines (paths are never cut)
    assert code == 0 and len(blocks) >= 13 and all(len(line) <= width for line in blocks), lines
    assert "lr_policy.poly_power  (float, domain lr)" in lines
    stripped = [line.rstrip() for line in lines]
    assert "  consumers  train.pre_transforms[8].probability" in stripped
    assert " " * 13 + "train.pre_transforms[9].probability" in stripped     # one consumer per line, aligned
    assert "grid size 1" in buffer.getvalue() and "┃" not in buffer.getvalue()


def test_missing_automl_config_is_said_and_train_config_checked(clara_mmar, capsys):
    code, out, err = run(capsys, str(clara_mmar("PyTorch__trn_autoML_Transform.json")))
    assert code == 0
    assert "grid size 4" in out
    assert "config_automl.json" in err and "only" in err


def test_explicit_config_paths(clara_mmar, clara_dir, capsys, tmp_path):
    root = clara_mmar("PyTorch__trn_autoML_Enum.json")
    code, out, _ = run(capsys, str(root), "--train-config", str(clara_dir / "PyTorch__trn_autoML_Transform.json"),
                       "--automl-config", str(clara_dir / "PyTorch__config_automl.json"), "--json")
    assert code == 0 and json.loads(out)["grid_size"] == 4
    # relative to the MMAR root when it is not a path from the current folder
    (root / "config" / "other.json").write_text(json.dumps({"lr": 1, "lr_search": [0.1, 0.2]}))
    code, out, _ = run(capsys, str(root), "--train-config", "config/other.json", "--json")
    assert code == 0 and json.loads(out)["continuous"] == ["learning_rate"]


def test_debug_shows_the_traceback(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(cli._state, "debug", False)
    root = make_mmar(tmp_path, "{")
    code = main(["--debug", "validate", str(root)])
    err = capsys.readouterr().err
    assert code == 2
    assert "Traceback" in err and "invalid JSON at line 1 column 2" in err.splitlines()[-1]


def test_debug_after_the_command_also_shows_the_traceback(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(cli._state, "debug", False)
    root = make_mmar(tmp_path, "{")
    code = main(["validate", str(root), "--debug"])
    err = capsys.readouterr().err
    assert code == 2
    assert "Traceback" in err and "invalid JSON at line 1 column 2" in err.splitlines()[-1]


@pytest.mark.parametrize("args,fragment", [
    ([], "Missing argument"),
    (["{root}", "extra"], "unexpected extra argument"),
    (["{root}", "--jsn"], "No such option: --jsn"),
])
def test_usage_errors_exit_2(tmp_path, capsys, args, fragment):
    # Regression: typer raises its vendored click's exceptions, which main() did not catch: exit 1 and
    # "error (MissingParameter): ..." instead of click's usage message and exit 2.
    root = make_mmar(tmp_path, "{}")
    code = main(["validate", *(a.format(root=root) for a in args)])
    out, err = capsys.readouterr()
    assert (code, out) == (2, "")
    assert fragment in err and "error (" not in err


# --- malformed inputs: exit 2, one line naming the file and the JSON path ---------------------------------

def base() -> dict[str, Any]:
    return {
        "learning_rate": 0.001,
        "search": [{"domain": "lr", "type": "float", "args": ["learning_rate"], "targets": [1e-5, 1e-3]}],
        "train": {
            "model": {"name": "UNet", "args": {"channels": [16, 32], "norm": "batch"},
                      "search": [{"domain": "net", "type": "enum", "args": ["channels"], "targets": [[[16, 32]], [[8, 16]]]}]},
            "loss": [{"name": "DiceLoss", "args": {"softmax": True}}, {"name": "FocalLoss", "args": {"gamma": 2.0}}],
            "optimizer": {"name": "Adam"},
            "pre_transforms": [{"name": "RandFlipd", "args": {"prob": 0.5}}, {"name": "RandZoomd", "args": {"prob": 0.5}}],
        },
    }


AUTOML = {"controller": {"name": "GridController"}}


def model_entry(**changes: Any) -> dict[str, Any]:
    cfg = base()
    cfg["train"]["model"]["search"][0].update(changes)
    return cfg


def with_(path: str, value: Any, cfg: dict[str, Any] | None = None) -> dict[str, Any]:
    """base() with the value at a dotted path (ints index lists) set."""
    cfg = copy.deepcopy(cfg) if cfg is not None else base()
    *parents, last = [int(p) if p.isdigit() else p for p in path.split(".")]
    node: Any = cfg
    for p in parents:
        node = node[p]
    node[last] = value
    return cfg


def top_var(args: list[str], targets: list, **applies: dict[str, str]) -> dict[str, Any]:
    """base() plus a top-level entry and ``apply`` objects on train.<key>.<index>."""
    cfg = base()
    cfg["search"].append({"domain": "transform", "type": "enum", "args": args, "targets": targets})
    for where, apply in applies.items():
        key, index = where.rsplit("_", 1)
        cfg["train"][key][int(index)]["apply"] = apply
    return cfg


DISABLE = [[True], [False]]

# (id, config_train.json (dict or raw text), config_automl.json or None, JSON path, part of the message)
MALFORMED: list[tuple[str, Any, Any, str | None, str]] = [
    ("bad_json", '{\n  "train": {,}\n}', None, None, "invalid JSON at line 2 column 13"),
    ("empty_file", "", None, None, "file is empty"),
    ("duplicate_key", '{"train": {"model": {"args": {}, "args": {}}}}', None, "train.model.args", "duplicate key 'args'"),
    ("top_not_object", "[1, 2]", None, None, "expected a JSON object at the top level"),
    ("unknown_type", model_entry(type="integer"), None, "train.model.search[0].type", "unknown type 'integer'"),
    ("float_range_3_values", with_("search.0.targets", [1, 2, 3]), None, "search[0].targets", "exactly [min, max], got 3"),
    ("float_min_gt_max", with_("search.0.targets", [0.1, 0.01]), None, "search[0].targets", "min <= max, got [0.1, 0.01]"),
    ("float_not_number", with_("search.0.targets", [0.1, "big"]), None, "search[0].targets[1]", "needs numbers, got 'big'"),
    ("float_bool", with_("search.0.targets", [True, 2]), None, "search[0].targets[0]", "needs numbers, got true"),
    ("float_targets_object", with_("search.0.targets", {"min": 0}), None, "search[0].targets", "exactly [min, max]"),
    ("enum_choice_length", model_entry(args=["channels", "norm"], targets=[[[8], "batch"], [[16]]]), None,
     "train.model.search[0].targets[1]", "choice has 1 value(s) but args has 2"),
    ("enum_list_arg_not_nested", model_entry(targets=[[16, 32], [8, 16]]), None,
     "train.model.search[0].targets[0]", "one more level of nesting"),
    ("enum_empty_targets", model_entry(targets=[]), None, "train.model.search[0].targets", "targets are empty"),
    ("enum_choice_not_list", model_entry(args=["norm"], targets=["batch", "instance"]), None,
     "train.model.search[0].targets[0]", "must be a list with one value per arg"),
    ("enum_duplicate_choice", model_entry(args=["norm"], targets=[["batch"], ["batch"]]), None,
     "train.model.search[0].targets[1]", "repeats choice 0"),
    ("apply_undefined_variable", top_var(["@useDice"], DISABLE, loss_0={"@disabled": "useDise"}), None,
     "train.loss[0].apply.@disabled", "no search defines (did you mean 'useDice'?)"),
    ("arg_not_in_component", model_entry(args=["chanels"]), None, "train.model.search[0].args[0]",
     "'chanels' is not an arg of train.model (did you mean 'channels'?)"),
    ("component_without_args", with_("train.optimizer.search", [{"domain": "lr", "type": "float", "args": ["lr"],
                                                                  "targets": [0.1, 0.2]}]), None,
     "train.optimizer.search[0].args[0]", "train.optimizer has no 'args' object"),
    ("duplicate_alias", with_("train.pre_transforms.1.search", [{"domain": "t", "type": "float", "args": ["prob#p"],
                                                                 "targets": [0, 1]}],
                              with_("train.pre_transforms.0.search", [{"domain": "t", "type": "float",
                                                                       "args": ["prob#p"], "targets": [0, 1]}])),
     None, "train.pre_transforms[1].search[0].args[0]", "'p' is already defined at train.pre_transforms[0].search[0].args[0]"),
    ("empty_args", model_entry(args=[]), None, "train.model.search[0].args", "args is empty"),
    ("args_number", model_entry(args=3), None, "train.model.search[0].args", "must be a list of arg names"),
    ("arg_twice", model_entry(args=["norm", "norm"], targets=[["a", "b"]]), None, "train.model.search[0].args[1]",
     "'norm' is listed twice"),
    ("missing_targets", with_("search.0", {"domain": "lr", "type": "float", "args": ["learning_rate"]}), None,
     "search[0]", "no 'targets'"),
    ("unknown_entry_key", model_entry(target=[1]), None, "train.model.search[0].target", "did you mean 'targets'"),
    ("search_not_list", with_("train.model.search", {"domain": "net"}), None, "train.model.search",
     "'search' must be a list of entries"),
    ("entry_not_object", with_("train.model.search", ["channels"]), None, "train.model.search[0]",
     "a search entry must be an object"),
    ("bad_domain", model_entry(domain="my net"), None, "train.model.search[0].domain", "domain must be a word"),
    ("disabled_not_bool", model_entry(args=["@disabled"], targets=[[True], ["no"]]), None,
     "train.model.search[0].targets[1][0]", "'@disabled' takes true or false, got 'no'"),
    ("disabled_as_float", model_entry(type="float", args=["@disabled"], targets=[0, 1]), None,
     "train.model.search[0].args[0]", "search it with type 'enum'"),
    ("disabled_at_top_level", top_var(["@disabled"], DISABLE), None, "search[1].args[0]", "'@disabled' needs a component"),
    ("free_variable_unused", top_var(["@useDice"], DISABLE), None, "search[1].args[0]",
     "free variable 'useDice' is not a first-level key and no \"apply\" uses it"),
    ("half_used_two_arg_variable", top_var(["a", "b"], [[True, False], [False, True]], loss_0={"@disabled": "a"}),
     None, "search[1].args[1]", "free variable 'b'"),
    ("same_arg_searched_twice", with_("train.model.search", base()["train"]["model"]["search"] * 2), None,
     "train.model.search[1].args[0]", "train.model.channels is already searched at train.model.search[0].args[0]"),
    ("apply_to_missing_arg", top_var(["g"], [[1.0], [2.0]], loss_0={"gamma": "g"}), None, "train.loss[0].apply.gamma",
     "'gamma' is not an arg of train.loss[0]"),
    ("apply_not_object", top_var(["g"], DISABLE, loss_0="g"), None, "train.loss[0].apply", "'apply' must be a non-empty object"),
    ("apply_at_top_level", with_("apply", {"@disabled": "x"}), None, "apply", "belongs inside a component"),
    ("apply_disabled_non_bool", top_var(["g"], [[1.0], [2.0]], loss_1={"@disabled": "g"}), None,
     "search[1].targets[0][0]", "'g' applied to '@disabled' takes true or false, got 1.0"),
    ("apply_disabled_float", with_("search.0.args", ["learning_rate#lr"],
                                   top_var(["x"], DISABLE, loss_0={"@disabled": "x"}, loss_1={"@disabled": "lr"})),
     None, "train.loss[1].apply.@disabled", "'lr' is a float range"),
    ("bad_alias", with_("train.pre_transforms.0.search", [{"domain": "t", "type": "float", "args": ["prob#my prob"],
                                                           "targets": [0, 1]}]), None,
     "train.pre_transforms[0].search[0].args[0]", "alias 'my prob' in 'prob#my prob' is not a valid name"),
    ("at_name_in_component", model_entry(args=["@norm"], targets=[["a"]]), None, "train.model.search[0].args[0]",
     "only '@disabled' may start with '@' in a component"),
    ("legacy_lr_search", with_("lr_search", [0.1]), None, "lr_search", "exactly [min, max], got 1 values"),
    ("nan_in_range", '{"search": [{"domain": "lr", "type": "float", "args": ["x"], "targets": [NaN, 1]}]}', None,
     None, "NaN is not a JSON number"),
    ("bad_variable_name", top_var(["my var"], DISABLE), None, "search[1].args[0]",
     "neither a first-level key of the config nor a valid variable name"),
    ("automl_bad_json", base(), '{"controller": }', None, "invalid JSON at line 1 column 16"),
    ("automl_unknown_controller", base(), {"controller": {"name": "GridControler"}}, "controller.name",
     "unknown controller 'GridControler' (did you mean 'GridController'?); known: GridController"),
    ("automl_no_controller", base(), {"handlers": []}, "<root>", "missing 'controller'"),
    ("automl_unknown_key", base(), {**AUTOML, "handler": []}, "handler", "did you mean 'handlers'"),
    ("automl_component_no_name", base(), {**AUTOML, "handlers": [{"args": {}}]}, "handlers[0]", "needs \"name\""),
    ("automl_unknown_handler", base(), {**AUTOML, "handlers": [{"name": "MLFlowHandler"}]}, "handlers[0].name",
     "did you mean 'MLflowHandler'"),
    ("automl_args_not_object", base(), {"controller": {"name": "GridController", "args": "max_rounds=3"}},
     "controller.args", "expected an object"),
    ("automl_bad_path", base(), {"controller": {"path": "my controller"}}, "controller.path", "dotted 'module.Class'"),
]




def test_there_are_at_least_25_distinct_malformed_cases():
    assert len({case[0] for case in MALFORMED}) == len(MALFORMED) >= 25


@pytest.mark.parametrize("case", MALFORMED, ids=[c[0] for c in MALFORMED])
def test_malformed_input_exit_2_one_line(tmp_path, capsys, case):
    _, train, automl, where, fragment = case
    root = make_mmar(tmp_path, train, automl)
    code, out, err = run(capsys, str(root))
    assert code == 2
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1, err
    file = root / "config" / ("config_automl.json" if automl is not None and train == base() else "config_train.json")
    expected = ": ".join(part for part in (f"error: {file}", where) if part)
    assert lines[0].startswith(expected + ": "), lines[0]
    assert fragment in lines[0]
    assert not (root / "automl").exists()


@pytest.mark.parametrize("args,fragment", [
    (["{root}/nowhere"], "nowhere: MMAR folder not found"),
    (["{root}", "--automl-config", "{root}/config/none.json"], "none.json: file not found"),
    (["{root}", "--train-config", "missing.json"], "mmar/missing.json: file not found"),
])
def test_missing_files(tmp_path, capsys, args, fragment):
    root = make_mmar(tmp_path, base())
    code, out, err = run(capsys, *[a.format(root=root) for a in args])
    assert code == 2 and len(err.splitlines()) == 1
    assert fragment in err


# --- start-up: no heavy imports ---------------------------------------------------------------------------

HEAVY = ("torch", "monai", "mlflow", "optuna")


@pytest.mark.parametrize("argv", [["--help"], ["validate", "{root}"], ["validate", "{root}", "--json"]])
def test_help_and_validate_import_nothing_heavy(tmp_path, argv):
    root = make_mmar(tmp_path, base(), AUTOML)
    code = (
        "import sys\n"
        "from mmar_automl.cli import main\n"
        f"rc = main({[a.format(root=root) for a in argv]!r})\n"
        f"heavy = sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r})\n"
        "print('HEAVY', heavy, 'RC', rc)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "HEAVY [] RC 0" in proc.stdout, proc.stdout[-2000:]


def test_the_table_names_dimensions_as_run_report_and_mlflow_do(clara_mmar, capsys):
    """Review of issue 16 (point 8, one name everywhere): validate still printed
    'RandGaussianNoised.@disabled' where run, the report and MLflow say 'RandGaussianNoised.disabled'."""
    from mmar_automl.search.format import display_name

    code, out, _ = run(capsys, str(clara_mmar("PyTorch__trn_autoML_Transform.json")))
    names = [line.split("│")[1].strip() for line in out.splitlines() if line.count("│") == 7]
    assert code == 0 and "RandGaussianNoised.disabled" in names and "RandGaussianNoised.@disabled" not in names
    assert display_name("RandGaussianNoised.@disabled") == "RandGaussianNoised.disabled"
