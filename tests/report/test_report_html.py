"""`report --html`: one self-contained file, opened in headless Chromium (Debian's `chromium`)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mmar_automl.cli import main
from mmar_automl.report.data import load_report
from report_runs import browse, chromium, rendered_counts  # noqa: F401 - chromium is a fixture
from synthetic_runs import synthetic_run


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("html")
    root = tmp / "mmar"
    synthetic_run(root, 60, run_id="h", fail_every=12)
    out = tmp / "report" / "run.html"
    assert main(["report", str(root), "--html", str(out), "--top", "5"]) == 0
    return root, out


def test_page_is_self_contained(page):
    _, out = page
    text = out.read_text()
    # no external resource of any kind: no <link>, no script src, no url(), no http(s) other than the SVG namespace
    assert "<link" not in text and "src=" not in text and "url(" not in text and "@import" not in text
    assert set(re.findall(r"https?://[^\s\"'<>]+", text)) == {"http://www.w3.org/2000/svg"}
    for plot in ("history", "parallel", "importance", "curves"):
        assert f'data-plot="{plot}"' in text


def test_plots_render_in_chromium(chromium, page, tmp_path):
    root, out = page
    report = load_report(root, "h")
    scored = len(report.scored())
    rendered = rendered_counts(chromium, out, tmp_path)
    # every mark drawn with a non-empty box: one dot and one line per scored job, one curve per job
    # that validated (failed jobs validated once), one bar per dimension that varied
    assert rendered["history"] == scored == 55
    assert rendered["parallel"] == scored
    assert rendered["curves"] == len(report.jobs)
    assert rendered["importance"] == len(report.space.names)


def test_screenshot_is_not_blank(chromium, page, tmp_path):
    _, out = page
    shot = tmp_path / "shot.png"
    proc = browse(chromium, out, tmp_path, f"--screenshot={shot}", "--window-size=1200,1800")
    assert proc.returncode == 0 and shot.is_file(), proc.stderr[-2000:]
    Image = pytest.importorskip("PIL.Image", reason="Pillow (a tensorboard dependency) is missing")

    image = Image.open(shot).convert("RGB")
    colours = image.getcolors(maxcolors=1 << 20)
    assert colours is not None and len(colours) > 50  # text, axes and the viridis marks, not a blank page
    non_white = sum(n for n, c in colours if c != (255, 255, 255))
    assert non_white > 0.02 * image.width * image.height


def test_the_lowest_score_has_a_labelled_tick_below_it():
    """Scores 0.8419..0.9223 (the demo's): the y axis is labelled down to 0.84, not only from 0.86."""
    import re

    from mmar_automl.report import svg

    plot = svg.history_plot([(1, 0.8823, "a"), (5, 0.8419, "b"), (6, 0.9223, "c")], "val_mean_dice")
    labels = [float(v) for v in re.findall(r'text-anchor="end">([0-9.]+)</text>', plot)]
    assert min(labels) <= 0.8419 < max(labels)
    curves = svg.curves_plot({"a": [(1, 0.0644), (2, 0.9)]}, "val_mean_dice", "a")
    labels = [float(v) for v in re.findall(r'text-anchor="end">([0-9.]+)</text>', curves)]
    assert min(labels) <= 0.0644
