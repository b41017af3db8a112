"""The report as one JSON document (``report --json``): every job, the best one with its config
difference, failures and parameter importance. The table and the HTML page show the same facts."""

from __future__ import annotations

from typing import Any

from mmar_automl.report.data import RunReport, best_config_diff, best_job_flags

FORMAT = "mmar-automl-report/1"


def build_document(report: RunReport, importance: Any = None, diff: list[dict[str, Any]] | None = None,
                   diff_note: str | None = None) -> dict[str, Any]:
    """JSON-ready dict. ``importance`` is an importance.Importance or None (not computed)."""
    if diff is None and diff_note is None:
        diff, diff_note = best_config_diff(report)
    best = None
    if report.best is not None:
        best = {**report.best.to_json(), "config_diff": diff, "config_diff_note": diff_note,
                "flags": best_job_flags(report)}
    header = report.header
    return {
        "format": FORMAT,
        "mmar": str(report.mmar_root),
        "run_id": report.run_id,
        "run_dir": str(report.run_dir),
        "status": report.status,
        "ended": {k: v for k, v in report.ended.items() if k != "op"} if report.ended else None,
        "sessions": report.sessions,
        "started_at": header.get("t"),
        "seed": header.get("seed"),
        "controller": header.get("controller"),
        "workers": header.get("workers"),
        "overrides": report.overrides,
        "dimensions": [_dimension(d) for d in report.space] if report.space is not None else [],
        "counts": report.counts(),
        "best": best,
        "jobs": [row.to_json() for row in report.jobs],
        "failures": [{"job": r.name, "state": r.state, "exit_code": r.record.exit_code, "reason": r.record.reason,
                      "log_tail": r.record.log_tail} for r in report.failures()],
        "importance": importance.to_json() if importance is not None else None,
        "notes": list(report.notes),
    }


def _dimension(dim: Any) -> dict[str, Any]:
    from mmar_automl.search.format import display_name

    data = dim.to_json()
    data.pop("consumers", None)
    data["display"] = display_name(dim.name)  # the name the table, the HTML page and MLflow show
    return data
