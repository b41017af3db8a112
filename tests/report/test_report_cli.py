"""`mmar-automl report` on runs made by the real `mmar-automl run` (light torch-free job processes)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mmar_automl.cli import main
from report_runs import REPO, make_run, report_config, write_mmar


@pytest.fixture(scope="module")
def light_run(tmp_path_factory) -> Path:
    """3 scores x ok/raise x 2 channel lists x flip on/off = 24 jobs, half of them failing."""
    root = tmp_path_factory.mktemp("light") / "mmar"
    make_run(root, "r1")
    return root


def _journal_jobs(run_dir: Path) -> dict[str, dict]:
    jobs = {}
    for line in (run_dir / "journal.jsonl").read_text().splitlines():
        event = json.loads(line)
        if event["op"] == "job_ended":
            job = event["job"]
            jobs[f"W{job['worker']}_{job['worker_seq']}_J{job['number']}"] = job
    return jobs


def test_table_lists_jobs_best_failures(light_run, capsys):
    assert main(["report", str(light_run), "--top", "0"]) == 0
    out = capsys.readouterr().out
    jobs = _journal_jobs(light_run / "automl" / "r1")
    assert len(jobs) == 24
    for name in jobs:
        assert name in out
    best = json.loads((light_run / "automl" / "r1" / "best" / "best.json").read_text())
    assert f"best job {best['job']}: score 0.9" in out
    assert out.count("COMPLETE") == 12 + 1 and "12 COMPLETE, 12 FAILED" in out  # rows + summary line
    for header in ("job", "worker", "status", "score", "duration", "learning_rate", "model.channels",
                   "RandFlipd.disabled", "mode"):  # MLflow's spelling (issue 16)
        assert header in out
    # the best job's config against the base: its searched values, the markers not
    assert "score: 0.2 -> 0.9" in out
    assert "search" not in out.split("config difference")[1].split("parameter importance")[0]
    assert "failures (12):" in out and "light job failure on purpose" in out
    assert "Traceback" not in out  # the log tail only on request
    assert "parameter importance: add --importance ped-anova" in out  # the table alone skips Optuna


def test_table_with_importance(light_run, capsys):
    assert main(["report", str(light_run), "--importance", "ped-anova"]) == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.startswith("parameter importance (PED-ANOVA"))
    assert line.split(": ", 1)[1].startswith("score 1.00")


def test_top_and_logs(light_run, capsys):
    assert main(["report", str(light_run), "--run", "r1", "--top", "3", "--logs"]) == 0
    out = capsys.readouterr().out
    assert "best 3 of 24" in out
    table = out.split("best job")[0].split("\n", 1)[1]  # without the summary line
    assert table.count("COMPLETE") == 3 and "FAILED" not in table
    assert "| Traceback (most recent call last):" in out
    assert "RuntimeError: light job failure on purpose" in out


def test_json_is_one_document_matching_the_run(light_run, capsys):
    assert main(["report", str(light_run), "--json"]) == 0
    captured = capsys.readouterr()
    doc = json.loads(captured.out)  # stdout holds the document alone
    run_dir = light_run / "automl" / "r1"
    jobs = _journal_jobs(run_dir)
    assert doc["run_id"] == "r1" and doc["status"] == "finished" and doc["counts"] == {"COMPLETE": 12, "FAILED": 12}
    assert [j["job"] for j in doc["jobs"]] == sorted(jobs, key=lambda n: int(n.rsplit("J", 1)[1]))
    for row in doc["jobs"]:
        assert row["score"] == jobs[row["job"]]["score"]
        stats = Path(row["folder"]) / "models" / "train_stats.json"
        if row["state"] == "COMPLETE":
            assert json.loads(stats.read_text())["best_validation_metric"] == pytest.approx(row["score"])
        assert set(row["params"]) == {"score", "mode", "learning_rate", "model.channels", "RandFlipd.@disabled"}
    ended = [json.loads(x) for x in (run_dir / "journal.jsonl").read_text().splitlines()][-1]
    assert doc["best"]["job"] == ended["best"] and doc["best"]["score"] == ended["best_score"]
    assert {"path": "score", "old": 0.2, "new": 0.9} in doc["best"]["config_diff"]
    assert len(doc["failures"]) == 12 and all("failure on purpose" in f["log_tail"] for f in doc["failures"])
    imp = doc["importance"]
    assert max(imp["values"], key=imp["values"].get) == "score"
    assert "learning_rate" in imp["note"]  # the grid kept it at the middle: left out, and said so


def test_default_is_the_newest_run(light_run, capsys):
    make_run(light_run, "r2", "--max-jobs", "2")
    capsys.readouterr()
    try:
        assert main(["report", str(light_run), "--json"]) == 0
        doc = json.loads(capsys.readouterr().out)
        assert doc["run_id"] == "r2" and len(doc["jobs"]) == 2
    finally:
        import shutil

        shutil.rmtree(light_run / "automl" / "r2")


def test_a_run_without_scores_reports_cleanly(tmp_path, capsys):
    root = write_mmar(tmp_path / "m", report_config(scores=(None,), modes=("ok",)))
    make_run(root, "nos")
    capsys.readouterr()
    assert main(["report", str(root), "--html", str(tmp_path / "r.html")]) == 0
    out = capsys.readouterr().out
    assert "no scored job" in out and "needs at least 3 scored jobs" in out
    assert "no scored job yet" in (tmp_path / "r.html").read_text()


@pytest.mark.parametrize("args, message", [
    (["--run", "nope"], "error: run 'nope' not found under"),
    (["--importance", "magic"], "error: --importance magic: expected ped-anova, fanova, none or auto"),
])
def test_bad_arguments_exit_2_with_one_line(light_run, capsys, args, message):
    assert main(["report", str(light_run), *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count("\n") == 1


def test_an_unwritable_html_path_exits_2(light_run, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert main(["report", str(light_run), "--html", str(blocker / "r.html")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: --html {blocker / 'r.html'}: cannot write:") and err.count("\n") == 1


def test_no_runs_and_no_folder_exit_2(tmp_path, capsys):
    (tmp_path / "m").mkdir()
    assert main(["report", str(tmp_path / "m")]) == 2
    assert main(["report", str(tmp_path / "nothing")]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == [f"error: {tmp_path / 'm'}: no runs under automl/ (start one with: mmar-automl run {tmp_path / 'm'})",
                   f"error: {tmp_path / 'nothing'}: MMAR root is not a folder"]


def test_report_needs_neither_mlflow_nor_torch(light_run):
    code = ("import sys; from mmar_automl.cli import main; rc = main(['report', sys.argv[1], '--json']); "
            "heavy = [m for m in ('mlflow', 'torch', 'monai', 'sklearn') if m in sys.modules]; "
            "print('HEAVY', heavy, rc, file=sys.stderr)")
    proc = subprocess.run([sys.executable, "-c", code, str(light_run)], capture_output=True, text=True, cwd=REPO,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "HEAVY [] 0" in proc.stderr
    assert json.loads(proc.stdout)["run_id"] == "r1"


@pytest.mark.parametrize("n_jobs,low", [(6, True), (30, False)])
def test_importance_names_its_method_and_job_count_and_warns_when_few(tmp_path, capsys, n_jobs, low):
    """Issue 16: PED-ANOVA over 6 jobs said 0.986 with no caveat. Below 21 scored jobs the values carry a
    low-confidence note (importance.LOW_CONFIDENCE_JOBS: PED-ANOVA's top group is then 2 jobs)."""
    from synthetic_runs import synthetic_run

    synthetic_run(tmp_path / "mmar", n_jobs, fail_every=0)
    assert main(["report", str(tmp_path / "mmar"), "--json"]) == 0
    imp = json.loads(capsys.readouterr().out)["importance"]
    assert imp["jobs"] == n_jobs and imp["evaluator"].startswith("PED-ANOVA")
    assert imp["low_confidence"] is low and (imp["caveat"] is not None) is low
    assert main(["report", str(tmp_path / "mmar"), "--importance", "fanova"]) == 0
    out = capsys.readouterr().out
    assert f"parameter importance (fANOVA" in out and f"{n_jobs} jobs)" in out
    assert ("low confidence: " in out) is low
    html = tmp_path / "r.html"
    assert main(["report", str(tmp_path / "mmar"), "--html", str(html)]) == 0
    assert ('class="caveat"' in html.read_text()) is low and "Method: PED-ANOVA" in html.read_text()


def test_importance_order_is_the_same_in_every_process(tmp_path):
    """Tied values used to swap between invocations: most important first, ties by name, whatever the
    process (a different hash seed each time)."""
    import os

    from synthetic_runs import synthetic_run

    synthetic_run(tmp_path / "mmar", 12, fail_every=0)
    orders = []
    for seed in ("1", "2", "3"):
        out = subprocess.run([sys.executable, "-m", "mmar_automl", "report", str(tmp_path / "mmar"), "--json"],
                             capture_output=True, text=True, timeout=120,
                             env={**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(REPO)})
        values = json.loads(out.stdout)["importance"]["values"]
        orders.append(list(values.items()))
    assert orders[0] == orders[1] == orders[2]
    assert orders[0] == sorted(orders[0], key=lambda kv: (-kv[1], kv[0]))
