"""Report data: rows from a journal, config differences, values, importance (no job processes)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from mmar_automl.errors import ConfigError, JournalError, UsageError
from mmar_automl.report.data import (
    config_diff,
    format_dimension_value,
    format_duration,
    learning_curves,
    list_runs,
    load_report,
)
from mmar_automl.report.document import build_document
from mmar_automl.report.importance import parameter_importance
from mmar_automl.search.space import EnumDimension, FloatDimension
from synthetic_runs import score_of, synthetic_run


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("syn") / "mmar"
    synthetic_run(root, 80, run_id="a", fail_every=10)
    return root


def test_rows_follow_the_journal(synthetic):
    report = load_report(synthetic, "a")
    assert [r.record.number for r in report.jobs] == list(range(1, 81))
    assert report.counts() == {"COMPLETE": 72, "FAILED": 8}
    scored = report.scored()
    assert len(scored) == 72
    best = max(scored, key=lambda r: r.score)
    assert report.best is best and report.ranked()[0] is best
    assert report.status == "finished"
    for row in scored:
        point = row.record.recommendation.point
        # the synthetic score is final * (1 - 0.6**5) at the last epoch
        assert row.score == pytest.approx(score_of(point) * (1 - 0.6 ** 5), abs=1e-5)
        assert set(row.params) == set(report.dimension_names)
    assert all(r.record.reason and "synthetic failure" in r.record.reason for r in report.failures())


def test_inactive_dimensions_are_marked(synthetic):
    # RandGaussianNoised.prob is never inactive; nothing disables a component whose args are searched here
    report = load_report(synthetic, "a")
    assert all(row.inactive == [] for row in report.jobs)


def test_learning_curves_come_from_metrics_files(synthetic):
    report = load_report(synthetic, "a")
    key, curves = learning_curves(report)
    assert key == "val_mean_dice"
    assert len(curves) == 80  # failed jobs validated once before failing
    assert all(len(c) == 5 for name, c in curves.items() if name in {r.name for r in report.scored()})
    # a job folder without metrics.jsonl falls back to the journal's intermediate values
    victim = report.scored()[0]
    metrics = Path(victim.record.folder) / "models" / "metrics.jsonl"
    saved = metrics.read_bytes()
    metrics.unlink()
    try:
        _, again = learning_curves(report)
        assert again[victim.name] == [tuple(x) for x in victim.record.intermediate]
    finally:
        metrics.write_bytes(saved)


def test_importance_finds_the_learning_rate(synthetic):
    report = load_report(synthetic, "a")
    imp = parameter_importance(report)
    assert "PED-ANOVA" in imp.evaluator and imp.jobs == 72
    assert max(imp.values, key=imp.values.get) == "learning_rate"
    assert imp.values["learning_rate"] > imp.values["RandGaussianNoised.prob"]
    assert sum(imp.values.values()) == pytest.approx(1.0, abs=1e-3)
    fanova = parameter_importance(report, "fanova")
    assert max(fanova.values, key=fanova.values.get) == "learning_rate"


def test_importance_explains_when_it_cannot(tmp_path):
    synthetic_run(tmp_path / "m", 2, run_id="tiny", fail_every=0)
    imp = parameter_importance(load_report(tmp_path / "m", "tiny"))
    assert imp.values == {} and "at least 3 scored jobs" in imp.note


def test_json_document_is_complete_and_serialisable(synthetic):
    report = load_report(synthetic, "a")
    doc = json.loads(json.dumps(build_document(report, parameter_importance(report))))
    assert doc["run_id"] == "a" and len(doc["jobs"]) == 80 and len(doc["failures"]) == 8
    assert doc["best"]["job"] == report.best.name
    assert {d["name"] for d in doc["dimensions"]} == set(report.dimension_names)
    # the best job's concrete config differs from the base exactly at its searched values
    paths = {d["path"]: d for d in doc["best"]["config_diff"]}
    assert "learning_rate" in paths and paths["learning_rate"]["old"] == 1e-3
    assert "search" not in json.dumps(list(paths))
    assert doc["importance"]["values"]


def test_config_diff_ignores_markers_and_absolutised_paths(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "d.json").write_text("{}")
    base = {"lr": 1, "lst": [1, 2], "dataset": {"file": "data/d.json"}, "search": [{"x": 1}],
            "train": {"items": [{"name": "A", "args": {"p": 1}, "search": [], "apply": {"p": "v"}},
                                {"name": "B", "args": {"q": 2}}], "gone": 5}}
    job = {"lr": 2, "lst": [1, 3], "dataset": {"file": str(tmp_path / "data" / "d.json")},
           "train": {"items": [{"name": "A", "args": {"p": 1}, "disabled": False},
                               {"name": "B", "args": {"q": 3}, "disabled": True}], "new": "x"}}
    diff = config_diff(base, job, tmp_path)
    assert diff == [
        {"path": "lr", "old": 1, "new": 2},
        {"path": "lst", "old": [1, 2], "new": [1, 3]},
        {"path": "train.items[1].args.q", "old": 2, "new": 3, "component": "B"},
        {"path": "train.items[1].disabled", "new": True, "component": "B"},
        {"path": "train.gone", "old": 5},
        {"path": "train.new", "new": "x"},
    ]
    assert config_diff(base, job, None)[2]["path"] == "dataset.file"  # without the root, a path is a change


def test_config_diff_names_the_component_switched_by_apply(tmp_path):
    """The template's loss switch (free variables + `apply` on `@disabled`) and the flip's own `@disabled`
    search: every switched component shows, named, not only its list index."""
    from mmar_automl.scaffold.init import TEMPLATES_DIR
    from mmar_automl.report.data import diff_label
    from mmar_automl.search.parse import parse_search_space
    from mmar_automl.search.render import render_config

    base = json.loads((TEMPLATES_DIR / "segmentation_3d" / "config" / "config_train.json").read_text())
    space = parse_search_space(base)
    point = {"learning_rate": 0.005, "skipDiceLoss,skipDiceCELoss": [True, False],
             "model.channels": [[8, 16, 32]], "RandFlipd.@disabled": [True]}
    labels = [(diff_label(d), d.get("old"), d.get("new")) for d in config_diff(base, render_config(base, space, point))]
    assert labels == [
        ("learning_rate", 1e-3, 0.005),
        ("train.loss[0].disabled (DiceLoss)", False, True),
        ("train.loss[1].disabled (DiceCELoss)", True, False),
        ("train.pre_transforms[3].disabled (RandFlipd)", False, True),
    ]


def test_values_and_durations():
    f = FloatDimension("p", "lr", "lr", ("lr",), 0.0, 1.0)
    e1 = EnumDimension("p1", "ch", "net", ("channels",), (([8, 16],), ([16, 32],)))
    e2 = EnumDimension("p2", "l1,l2", "t", ("l1", "l2"), ((True, False), (False, True)))
    assert format_dimension_value(f, 0.000123456) == "0.0001235"
    assert format_dimension_value(e1, [[8, 16]]) == "[8,16]"
    assert format_dimension_value(e2, [True, False]) == "true,false"
    assert [format_duration(s) for s in (None, 3.25, 125, 3725)] == ["-", "3.2s", "2m05s", "1h02m"]


def test_runs_are_found_newest_last(tmp_path):
    root = tmp_path / "m"
    synthetic_run(root, 3, run_id="zz_old", fail_every=0)
    time.sleep(0.01)
    synthetic_run(root, 3, run_id="aa_new", fail_every=0)
    assert list_runs(root) == ["zz_old", "aa_new"]  # by start time, not by name
    assert load_report(root).run_id == "aa_new"


def test_bad_input_is_one_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="not a folder"):
        load_report(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError, match="no runs under automl/"):
        load_report(tmp_path / "empty")
    run_dir = synthetic_run(tmp_path / "m", 3, run_id="r", fail_every=0)
    with pytest.raises(UsageError, match="run 'other' not found.*runs: r"):
        load_report(tmp_path / "m", "other")
    lines = (run_dir / "journal.jsonl").read_text().splitlines(keepends=True)
    (run_dir / "journal.jsonl").write_text("".join(lines[:2] + ["{not json\n"] + lines[2:]))
    with pytest.raises(JournalError, match=r"journal.jsonl:3: damaged journal line"):
        load_report(tmp_path / "m", "r")


def test_an_unclosed_run_is_reported_as_such(tmp_path):
    run_dir = synthetic_run(tmp_path / "m", 4, run_id="r", fail_every=0)
    journal = run_dir / "journal.jsonl"
    lines = journal.read_text().splitlines(keepends=True)
    journal.write_text("".join(lines[:-1]) + lines[-1][:10])  # run_ended torn mid-write
    report = load_report(tmp_path / "m", "r")
    assert report.ended is None and len(report.jobs) == 4 and report.status.startswith("not closed")
    assert os.path.getsize(journal) > 0


def test_a_run_in_progress_shows_its_running_job(tmp_path, capsys):
    from mmar_automl.cli import main

    run_dir = synthetic_run(tmp_path / "m", 5, run_id="r", fail_every=0)
    journal = run_dir / "journal.jsonl"
    events = journal.read_text().splitlines(keepends=True)
    last_start = max(i for i, line in enumerate(events) if '"op": "job_started"' in line)
    journal.write_text("".join(events[: last_start + 1]))  # as if the orchestrator were still running J5
    report = load_report(tmp_path / "m", "r")
    assert [r.state for r in report.jobs] == ["COMPLETE"] * 4 + ["RUNNING"]
    assert report.status.startswith("running")
    assert main(["report", str(tmp_path / "m"), "--top", "0"]) == 0
    out = capsys.readouterr().out
    assert "RUNNING" in out and "W1_2_J5" in out


def test_importance_keeps_every_job_when_a_dimension_is_inactive_in_some(synthetic):
    """Optuna leaves an inactive dimension out of a point: that dimension is left out (named in the note),
    not the jobs, so the switch that made it inactive keeps what it explains."""
    report = load_report(synthetic, "a")
    for row in report.scored():
        point = row.record.recommendation.point
        if point["RandFlipd.@disabled"] == [True]:
            point.pop("RandGaussianNoised.prob")  # as if the flip's switch had made it inactive
    imp = parameter_importance(report)
    assert "RandGaussianNoised.prob" not in imp.values
    assert imp.note == "left out (inactive in some scored jobs): RandGaussianNoised.prob"
    assert imp.values["RandFlipd.@disabled"] > 0 and max(imp.values, key=imp.values.get) == "learning_rate"
