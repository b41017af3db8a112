"""The terminal report: a summary line, the jobs table (best first), the best job with its config
difference from the base config, failures with their reason (and log tail on request)."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from mmar_automl.report.data import RunReport, best_job_flags, diff_label, format_duration, retry_label
from mmar_automl.search.format import display_name

STATE_STYLE = {"COMPLETE": "green", "FAILED": "red", "TIMED_OUT": "red", "PRUNED": "yellow",
               "ABORTED": "magenta", "RUNNING": "cyan", "PENDING": "dim"}


def jobs_table(report: RunReport, top: int | None) -> Table:
    """Columns: job, worker, status, score, duration, then one column per dimension (readable name).
    A value the job's point made irrelevant (its component disabled) is dimmed."""
    rows = report.ranked()
    shown = rows if not top or top <= 0 else rows[:top]
    title = f"jobs of run {report.run_id}" + (f" (best {len(shown)} of {len(rows)})" if len(shown) < len(rows) else "")
    table = Table(title=title, title_justify="left", show_lines=False, pad_edge=False)
    table.add_column("#", justify="right", no_wrap=True)
    table.add_column("job", no_wrap=True)
    table.add_column("worker", justify="right", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("score", justify="right", no_wrap=True)
    table.add_column("duration", justify="right", no_wrap=True)
    names = report.dimension_names
    for name in names:
        table.add_column(display_name(name), overflow="fold")
    best_name = report.best.name if report.best else None
    for rank, row in enumerate(shown, 1):
        r = row.record
        score = "-" if r.score is None else f"{r.score:.4f}"
        retry = retry_label(row, report)
        cells: list[Any] = [
            str(rank) if row.score is not None and r.state.value == "COMPLETE" else "",
            Text(row.name + (f" ({retry})" if retry else ""), style="bold" if row.name == best_name else ""),
            str(r.worker), Text(r.state.value, style=STATE_STYLE.get(r.state.value, "")),
            score, format_duration(r.duration),
        ]
        for name in names:
            value = row.params.get(name, "")
            cells.append(Text(value, style="dim") if name in row.inactive else value)
        table.add_row(*cells)
    return table


def summary_line(report: RunReport) -> str:
    counts = ", ".join(f"{n} {state}" for state, n in sorted(report.counts().items()))
    best = f"best {report.best.name} score {report.best.score:.6g}" if report.best else "no scored job"
    ended = report.ended.get("reason") if report.ended else report.status
    return f"run {report.run_id} ({report.mmar_root}): {len(report.jobs)} jobs ({counts or 'none'}); {best}; {ended}"


def print_report(console: Console, report: RunReport, *, top: int | None = 20, logs: bool = False,
                 diff: list[dict[str, Any]] | None = None, diff_note: str | None = None,
                 importance: Any = None) -> None:
    console.print(summary_line(report), soft_wrap=True)
    table = jobs_table(report, top)
    if console.is_terminal:
        console.print(table)
    else:  # a pipe or a file: never cut values to 80 columns
        from rich.measure import Measurement

        width = Measurement.get(console, console.options.update(max_width=4000), table).maximum
        wide = Console(file=console.file, width=max(console.width, width), markup=False, emoji=False,
                       highlight=False, color_system=console.color_system and "standard", no_color=console.no_color)
        wide.print(table)
    if report.best is not None:
        best = report.best
        console.print(f"\nbest job {best.name}: score {best.score:.6g} ({best.record.folder})", soft_wrap=True)
        for flag in best_job_flags(report):
            console.print(f"  ! {flag}", soft_wrap=True)
        for name, value in best.params.items():
            console.print(f"  {display_name(name)} = {value}", soft_wrap=True)
        if report.overrides:
            shown = " ".join(f"{k}={v}" for k, v in report.overrides.items())
            console.print(f"  --set (every job, written in its config): {shown}", soft_wrap=True)
        if diff_note:
            console.print(f"  note: {diff_note}", soft_wrap=True)
        if diff is not None:
            console.print(f"config difference from the base config ({len(diff)} paths):")
            for item in diff:
                console.print(f"  {diff_label(item)}: {_short(item, 'old')} -> {_short(item, 'new')}", soft_wrap=True)
    if importance is not None:
        if importance.values:
            shown = ", ".join(f"{display_name(n)} {v:.2f}" for n, v in importance.values.items())
            console.print(f"\nparameter importance ({importance.evaluator}, {importance.jobs} jobs): {shown}",
                          soft_wrap=True)
            if importance.caveat:
                console.print(f"  {importance.caveat}", soft_wrap=True)
            if importance.note:
                console.print(f"  {importance.note}", soft_wrap=True)
        elif importance.note:
            console.print(f"\nparameter importance: {importance.note}", soft_wrap=True)
    if importance is None and len(report.scored()) >= 3:
        console.print("\nparameter importance: add --importance ped-anova (or see --html)")
    failures = report.failures()
    if failures:
        console.print(f"\nfailures ({len(failures)}):")
        for row in failures:
            r = row.record
            reason = r.reason or "no reason recorded"
            code = "" if r.exit_code is None or reason.startswith("exit code") else f" exit {r.exit_code}"
            console.print(f"  {row.name} {r.state.value}{code}: {reason}", soft_wrap=True)
            if logs and r.log_tail:
                for line in r.log_tail.splitlines():
                    console.print(f"    | {line}", soft_wrap=True)
        if not logs:
            console.print("  (add --logs for the last lines of each failed job's log.txt)")


def _short(item: dict[str, Any], key: str, limit: int = 120) -> str:
    if key not in item:
        return "(absent)"
    text = json.dumps(item[key], separators=(", ", ": "))
    return text if len(text) <= limit else text[: limit - 3] + "..."
