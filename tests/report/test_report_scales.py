"""The report draws and weighs log-scale and int dimensions on the scale they are searched on."""

from __future__ import annotations

import math
import re
from types import SimpleNamespace

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
