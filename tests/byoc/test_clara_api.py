"""Clara's Python API for BYOC code: the ``automl.*`` alias (scoped, never shadowing a real ``automl``),
ContextKey strings, and Clara's data shapes over mmar-automl's own types."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mmar_automl.clara_api.defs import (
    Context, ContextKey, Outcome, Recommendation, SearchResult, SearchSpace, Status, as_clara_recommendation,
    concrete_search_value)
from mmar_automl.recommendation import JobState
from mmar_automl.recommendation import Recommendation as OurRecommendation
from mmar_automl.search.space import EnumDimension, FloatDimension

REPO = Path(__file__).resolve().parent.parent.parent


def _python(code: str, cwd: Path) -> subprocess.CompletedProcess:
    """A fresh interpreter: sys.modules and sys.meta_path as a user's process starts with them."""
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=cwd, capture_output=True, text=True,
                          env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"}, timeout=120)


def test_automl_is_importable_only_once_byoc_code_is_loaded(tmp_path):
    (tmp_path / "BYOC").mkdir()
    (tmp_path / "BYOC" / "clara_style.py").write_text(textwrap.dedent("""
        from automl.components.controllers.controller import Controller
        from automl.components.handlers.handler import Handler
        from automl.components.executors.executor import Executor
        from automl.defs import Context, ContextKey, Outcome, Recommendation, SearchResult, SearchSpace, Status

        class Mine(Handler):
            def end_job(self, ctx):
                import automl.defs  # lazily, at call time, in the engine's thread
                return automl.defs.ContextKey.JOB_NAME
    """))
    (tmp_path / "automl" / "run1").mkdir(parents=True)  # the MMAR's runs folder: no package, must not win
    done = _python(f"""
        try:
            import automl.defs
            raise SystemExit("automl.defs importable before any BYOC code was loaded")
        except ModuleNotFoundError:
            pass
        import sys
        del sys.modules["automl"]  # the namespace package the MMAR's runs folder (cwd) made of it
        from mmar_automl.config.automl_config import ComponentSpec
        from mmar_automl.controllers.base import Controller
        from mmar_automl.handlers.base import Handler
        cls = ComponentSpec("handlers", None, "clara_style.Mine", {{}}, "handlers[0]").load_class({str(tmp_path)!r})
        import clara_style
        assert issubclass(cls, Handler) and clara_style.Controller is Controller
        assert clara_style.Status.COMPLETE == "COMPLETE"
        print(cls().end_job(None))
    """, tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "_jobName"


def test_a_real_automl_package_still_imports_as_itself(tmp_path):
    """An unrelated package named ``automl`` (say from PyPI) wins, during and after BYOC loading."""
    site = tmp_path / "site"
    (site / "automl").mkdir(parents=True)
    (site / "automl" / "__init__.py").write_text("WHO = 'the real automl'\n")
    (tmp_path / "mmar" / "BYOC").mkdir(parents=True)
    (tmp_path / "mmar" / "BYOC" / "plain.py").write_text("import automl\nSEEN = automl.WHO\nclass H: pass\n")
    done = _python(f"""
        import sys
        sys.path.insert(0, {str(site)!r})
        from mmar_automl.config.automl_config import ComponentSpec
        ComponentSpec("handlers", None, "plain.H", {{}}, "handlers[0]").load_class({str(tmp_path / 'mmar')!r})
        import automl, plain
        print(plain.SEEN, "|", automl.WHO, "|", automl.__file__)
        try:
            import automl.defs
        except ModuleNotFoundError:
            print("no clara names inside the real package")
    """, tmp_path)
    assert done.returncode == 0, done.stderr
    first, second = done.stdout.strip().splitlines()
    assert first == f"the real automl | the real automl | {site / 'automl' / '__init__.py'}"
    assert second == "no clara names inside the real package"


def test_remove_alias_forgets_the_names(tmp_path):
    done = _python("""
        from mmar_automl.clara_api import install_alias, remove_alias
        install_alias(); install_alias()
        import automl.defs
        remove_alias()
        import sys
        assert not [m for m in sys.modules if m == "automl" or m.startswith("automl.")]
        try:
            import automl
        except ModuleNotFoundError:
            print("gone")
    """, tmp_path)
    assert done.stdout.strip() == "gone", done.stderr


def test_context_keys_carry_claras_strings():
    assert {k: getattr(ContextKey, k) for k in (
        "JOB_NAME", "CONCRETE_SEARCH_VALUE", "SCORE", "JOB_STATUS", "GPUS", "NUM_WORKERS", "RECOMMENDATION",
        "RECOMMENDATIONS", "SEARCH_SPACE", "PROCESS_EXIT_STATUS")} == {
        "JOB_NAME": "_jobName", "CONCRETE_SEARCH_VALUE": "_concreteSearchValue", "SCORE": "_score",
        "JOB_STATUS": "_jobStatus", "GPUS": "_gpus", "NUM_WORKERS": "_numWorkers",
        "RECOMMENDATION": "_recommendation", "RECOMMENDATIONS": "_recommendations",
        "SEARCH_SPACE": "_searchSpace", "PROCESS_EXIT_STATUS": "_processExitStatus"}
    assert Status is JobState


def test_stop_work_names_an_object_issuer_and_keeps_the_first_request():
    ctx = Context()

    class RandomController:
        pass

    assert (ctx.stop_work_asked(), ctx.get_stop_message()) == (False, None)  # Clara's Context API
    ctx.stop_work(RandomController(), "8 rounds")
    ctx.stop_work("MMARHandler", "later")
    assert (ctx.stop_requested, ctx.stop_issuer, ctx.stop_message) == (True, "RandomController", "8 rounds")
    assert (ctx.stop_work_asked(), ctx.get_stop_message()) == (True, "8 rounds")


SPACE = SearchSpace((
    FloatDimension("lr.float.[]$0:learning_rate", "learning_rate", "lr", ("learning_rate",), 1e-4, 1e-2),
    EnumDimension("net.enum.train.model$0:channels,strides", "model.channels", "net", ("channels", "strides"),
                  (([8, 16], [2]), ([16, 32], [2]))),
    FloatDimension("transform.float.train.pre_transforms[3]$0:prob,prob2", "prob", "transform",
                   ("prob", "prob2"), 0.0, 1.0),
))


def test_targets_are_claras_view_of_the_space():
    targets = SPACE.targets
    assert list(targets) == [d.prl for d in SPACE]
    lr = targets["lr.float.[]$0:learning_rate"]
    assert len(lr) == 1 and (lr[0].min, lr[0].max) == (1e-4, 1e-2)
    assert targets["net.enum.train.model$0:channels,strides"] == [[[8, 16], [2]], [[16, 32], [2]]]


def test_search_result_and_recommendation_round_trip():
    values = {"lr.float.[]$0:learning_rate": 0.005, "net.enum.train.model$0:channels,strides": 1,
              "transform.float.train.pre_transforms[3]$0:prob,prob2": 0.25}
    rec = Recommendation(7, SearchResult(SPACE, values))
    assert isinstance(rec, OurRecommendation) and rec.result.values == values
    assert rec.point == {"learning_rate": 0.005, "model.channels": [[16, 32], [2]], "prob": 0.25}
    again = OurRecommendation.from_json(json.loads(json.dumps(rec.to_json())))
    assert (again.rec_id, dict(again.point)) == (7, rec.point)  # what the journal keeps and resume compares
    clara = as_clara_recommendation(again, SPACE)  # a built-in controller's recommendation, for Clara handlers
    assert clara.result.values == values and clara.rec_id == 7
    assert concrete_search_value(SPACE, rec.point) == {
        "lr.float.[]$0:learning_rate": [0.005], "net.enum.train.model$0:channels,strides": [[16, 32], [2]],
        "transform.float.train.pre_transforms[3]$0:prob,prob2": [0.25, 0.25]}
    assert [k.split(":")[1] for k in concrete_search_value(SPACE, rec.point)] == [
        "learning_rate", "channels,strides", "prob,prob2"]
    assert Outcome(rec, JobState.COMPLETE, 0.8).recommendation_id == 7


def test_recommendation_ids_are_integers():
    result = SearchResult(SPACE, {"lr.float.[]$0:learning_rate": 0.001})
    with pytest.raises(TypeError, match="the id must be an integer"):
        Recommendation("r1", result)
    with pytest.raises(TypeError, match="needs a SearchResult"):
        Recommendation(1, {"lr.float.[]$0:learning_rate": 0.001})


@pytest.mark.parametrize("values,message", [
    ({"nope:x": 1}, "'nope:x' is not a PRL of the search space"),
    ({"net.enum.train.model$0:channels,strides": 2}, "takes an enum choice index 0..1, got 2"),
    ({"net.enum.train.model$0:channels,strides": 0.5}, "takes an enum choice index 0..1, got 0.5"),
    ({"lr.float.[]$0:learning_rate": 1.0}, "= 1.0 is outside [0.0001, 0.01]"),
    ({"lr.float.[]$0:learning_rate": "big"}, "takes a float, got 'big'"),
])
def test_search_result_says_what_is_wrong(values, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("(", r"\(")):
        SearchResult(SPACE, values)


@pytest.mark.parametrize("train", [
    "PyTorch__trn_autoML_Enum.json", "PyTorch__trn_autoML_Loss_Optimizer.json", "PyTorch__trn_autoML_Transform.json",
    "Tensorflow-Deprecated__trn_autoML_LR_LP.json"])
def test_claras_own_configs_in_claras_shapes(clara_dir, train):
    """NVIDIA's published config_train.json files: what Clara code reads of their spaces."""
    from mmar_automl.search import parse_search_space

    space = parse_search_space(json.loads((clara_dir / train).read_text()), train)
    for dim, (prl, target) in zip(space, space.targets.items()):
        assert prl == dim.prl and prl.split(":")[1] == ",".join(dim.args)
        if ".float." in prl:
            assert [(r.min, r.max) for r in target] == [(dim.low, dim.high)]
        else:
            assert ".enum." in prl and target == [list(c) for c in dim.choices]
    point = {d.name: (list(d.choices[-1]) if isinstance(d, EnumDimension) else d.high) for d in space}
    rec = as_clara_recommendation(OurRecommendation(0, point), space)
    assert rec.point == point and SearchResult(space, rec.result.values).point == point
    assert all(len(v) == len(d.args) for d, v in zip(space, concrete_search_value(space, point).values()))
