"""What the report says about the best job and retries (issue 16): a near tie, a curve that fell at
the end, retried jobs; in the table, the JSON document and the HTML page (read in headless Chromium)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mmar_automl.cli import main
from report_runs import browse, chromium, make_run, write_mmar  # noqa: F401 - chromium is a fixture


def _config() -> dict:
    """Four points: two scores 4e-5 apart (a near tie), the best one falling at its last epoch (the light
    job validates score x epoch/3, and score/2 at the last epoch: 1.379631 peaks at 0.919754 at epoch 2),
    and a point that fails (retried once by --max-retries 1)."""
    return {
        "epochs": 3, "sleep": 0.02, "score": 0.5, "mode": "ok", "fall_at_end": False,
        "search": [{"domain": "net", "type": "enum", "args": ["score", "mode", "fall_at_end"],
                    "targets": [[1.379631, "ok", True], [0.919717, "ok", False], [0.5, "ok", False],
                                [0.9, "raise", False]]}],
    }


@pytest.fixture(scope="module")
def flagged(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("flags") / "mmar"
    write_mmar(root, _config())
    make_run(root, "f", "--max-retries", "1")
    return root


def test_table_flags_the_best_job_and_marks_retries(flagged, capsys):
    assert main(["report", str(flagged)]) == 0
    out = capsys.readouterr().out
    best = out.split("best job ", 1)[1]
    assert "! near tie: " in best and "0.919717" in best
    assert "! its curve fell at the end: 0.919754 at epoch 2, 0.689816 at its last epoch 3" in best
    assert "(retry 1 of W" in out


def test_json_holds_the_flags(flagged, capsys):
    assert main(["report", str(flagged), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    flags = doc["best"]["flags"]
    assert len(flags) == 2 and flags[0].startswith("near tie") and flags[1].startswith("its curve fell")
    retries = [j for j in doc["jobs"] if j["attempt"] == 1]
    assert len(retries) == 1 and retries[0]["retry_of"]


def test_html_shows_flags_legend_scale_and_retries(flagged, chromium, tmp_path):
    page = tmp_path / "r.html"
    assert main(["report", str(flagged), "--html", str(page)]) == 0
    dom = browse(chromium, page, tmp_path, "--dump-dom").stdout
    assert dom.count('class="caveat flag"') == 2 and "near tie" in dom and "its curve fell at the end" in dom
    assert 'class="retry">retry 1 of W' in dom
    assert '<g class="legend">' in dom and "best job W" in dom and "other jobs (2)" in dom  # the failing jobs never validated
    scale = dom.split('<g class="scale">', 1)[1].split("</g>", 1)[0]
    assert scale.count("<rect") == 25 and "0.9198" in scale and "0.5" in scale
