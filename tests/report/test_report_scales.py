"""The report draws and weighs log-scale and int dimensions on the scale they are searched on."""

from __future__ import annotations

import math
import re
from types import SimpleNamespace

from report_runs import chromium  # noqa: F401 - a fixture

from mmar_automl.report import svg
from mmar_automl.report.importance import parameter_importance
from mmar_automl.search import parse_search_space

CONFIG = {"learning_rate": 0.001, "batch_size": 4, "search": [
    {"domain": "lr", "type": "float", "args": ["learning_rate"], "targets": [1e-4, 1e-2], "log": True},
    {"domain": "net", "type": "int", "args": ["batch_size"], "targets": [2, 16], "step": 2}]}


def _y(plot: str, job: str, axis: int) -> float:
    line = re.search(rf'points="([^"]+)"[^>]*><title>{job}:', plot).group(1)
    return float(line.split()[axis].split(",")[1])


def test_parallel_axis_of_a_log_dimension_is_logarithmic():
    axes = [{"name": "learning_rate", "kind": "float", "low": 1e-4, "high": 1e-2, "log": True}]
    rows = [("low", 0.1, [1e-4]), ("mid", 0.5, [1e-3]), ("high", 0.9, [1e-2])]
    plot = svg.parallel_plot(axes, rows, "val_mean_dice")
    low, mid, high = (_y(plot, j, 0) for j in ("low", "mid", "high"))
    assert math.isclose(mid, (low + high) / 2, abs_tol=0.02)      # 1e-3 is half-way on a log axis
    assert ">0.001<" in plot                                          # the geometric middle is labelled


def _report(space, points_scores):
    rows = [SimpleNamespace(record=SimpleNamespace(recommendation=SimpleNamespace(point=p)), score=s)
            for p, s in points_scores]
    return SimpleNamespace(space=space, scored=lambda: rows)


def test_importance_takes_log_and_int_distributions():
    """The score depends on log10(lr) only; the lrs are log-spread, so importance credits the lr."""
    space = parse_search_space(CONFIG)
    points = [({"learning_rate": 10 ** (-4 + 2 * k / 11), "batch_size": 2 + 2 * (k * 5 % 8)},
               -abs(-4 + 2 * k / 11 + 3)) for k in range(12)]
    result = parameter_importance(_report(space, points))
    assert result.values and max(result.values, key=result.values.get) == "learning_rate", result


OVERLAP_SCRIPT = """
const boxes = [...document.querySelectorAll('text.al')].map(t => t.getBBox());
const hits = [];
for (let i = 1; i < boxes.length; i++) {
  if (boxes[i].x < boxes[i - 1].x + boxes[i - 1].width) hits.push(i);
}
const ticks = [...document.querySelectorAll('text.tl.halo')].slice(-2).map(t => t.getBBox());  // the score axis'
const bar = document.querySelector('g.scale rect').getBBox();
const tick = ticks.some(b => b.x + b.width > bar.x) ? 'tick' : '';
document.body.setAttribute('data-overlaps', hits.join(',') + '|' + tick);
"""


def test_long_axis_names_and_score_ticks_do_not_overlap_in_a_browser(chromium, tmp_path):
    """Review of issue 16: with the template's five dimensions, 'learning_rate' ran into
    'skipDiceLoss/skipDiceCELoss', and the score axis' '0.04944' into the colour scale's bar
    (measured in headless Chromium, as a user sees the page)."""
    from report_runs import browse

    from mmar_automl.report.html import CSS

    axes = [{"name": "learning_rate", "kind": "float", "low": 1e-4, "high": 1e-2, "log": True},
            {"name": "skipDiceLoss/skipDiceCELoss", "kind": "enum", "labels": ["true,false", "false,true"]},
            {"name": "model.channels", "kind": "enum", "labels": ["[8,16,32]", "[16,32,64]"]},
            {"name": "model.num_res_units", "kind": "float", "low": 0, "high": 3},
            {"name": "RandFlipd.disabled", "kind": "enum", "labels": ["true", "false"]}]
    rows = [("a", 0.04944, [1e-3, "true,false", "[8,16,32]", 1, "true"]),
            ("b", 0.368, [2e-3, "false,true", "[16,32,64]", 2, "false"])]
    page = tmp_path / "p.html"
    page.write_text(f"<html><head><style>{CSS}</style></head><body>"
                    f"{svg.parallel_plot(axes, rows, 'val_mean_dice')}<script>{OVERLAP_SCRIPT}</script></body></html>")
    dom = browse(chromium, page, tmp_path, "--dump-dom").stdout
    assert 'data-overlaps="|"' in dom, re.search(r'data-overlaps="[^"]*"', dom)
