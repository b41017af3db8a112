"""``report --html FILE``: one self-contained page (inline CSS and SVG, no CDN, no network).

Sections: summary, optimisation history, parallel coordinates, parameter importance, learning curves,
the best job and its config difference, the jobs table, failures. A few lines of inline JavaScript only
record, once the page is laid out, how many marks each plot drew (``<body data-rendered=...>``), which
a headless browser test reads back; the page needs no script to show anything.
"""

from __future__ import annotations

import json
import time
from html import escape
from pathlib import Path
from typing import Any

from mmar_automl.report import svg
from mmar_automl.report.data import RunReport, best_job_flags, diff_label, format_duration, retry_label
from mmar_automl.search.format import display_name
from mmar_automl.search.space import FloatDimension

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;margin:24px auto;max-width:1200px;color:#222;padding:0 16px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}
.muted{color:#666}.plot{display:block;max-width:100%;height:auto;background:#fff}
.axis{stroke:#444;stroke-width:1}.tick{stroke:#444}.grid{stroke:#eee}.tl{font-size:11px;fill:#444}.al{font-size:12px;fill:#222}
.pt{stroke:#333;stroke-width:.5}.best{fill:none;stroke:#d62728;stroke-width:2}
.line{fill:none;stroke-width:1.2;stroke-opacity:.65}.bar{fill:#4c78a8}
.curve polyline{fill:none;stroke:#9ab;stroke-width:1;stroke-opacity:.6}.best-curve polyline{stroke:#d62728;stroke-width:2.5;stroke-opacity:1}
.cdot{fill:#9ab}.halo{paint-order:stroke;stroke:#fff;stroke-width:3px;stroke-linejoin:round}
table{border-collapse:collapse;font-size:13px}th,td{padding:3px 8px;border-bottom:1px solid #eee;text-align:left;vertical-align:top}
th{background:#f6f6f6}td.num{text-align:right;font-variant-numeric:tabular-nums}
.COMPLETE{color:#2a7d2a}.FAILED,.TIMED_OUT{color:#c0392b}.PRUNED{color:#b7950b}.ABORTED{color:#8e44ad}
.caveat{color:#8a5a00;background:#fff6e0;padding:4px 8px;border-left:3px solid #e0a000}.inactive{color:#aaa}.retry{font-size:11px;color:#fff;background:#8e44ad;border-radius:3px;padding:0 4px;white-space:nowrap}pre{background:#f7f7f7;padding:8px;overflow:auto;font-size:12px}
code{font-size:12px}.wrap{overflow-x:auto}
"""

# Counts what each plot drew, after layout (a mark with an empty bounding box does not count).
SCRIPT = """
window.addEventListener('load',function(){var out=[];
document.querySelectorAll('svg[data-plot]').forEach(function(s){var n=0;
s.querySelectorAll('.pt,.line,.bar,.curve').forEach(function(m){var b=m.getBBox();if(b.width>0||b.height>0)n++;});
var r=s.getBoundingClientRect();out.push(s.dataset.plot+':'+n+':'+Math.round(r.width)+'x'+Math.round(r.height));});
document.body.setAttribute('data-rendered',out.join(' '));});
"""


def render_html(report: RunReport, *, key_metric: str | None, curves: dict[str, list[tuple[int, float]]],
                importance: Any = None, diff: list[dict[str, Any]] | None = None, diff_note: str | None = None,
                top: int | None = 50) -> str:
    metric = key_metric or "score"
    parts = [_summary(report)]
    scored = report.scored()
    best_name = report.best.name if report.best else None

    parts.append("<h2>Optimisation history</h2>")
    points = [(r.record.number, float(r.score), r.name) for r in scored]  # type: ignore[arg-type]
    parts.append(svg.history_plot(points, metric) or _empty("no scored job yet"))
    parts.append('<p class="muted">Each dot is a scored job (colour: score); the red line is the best score so far.</p>')

    parts.append("<h2>Parallel coordinates</h2>")
    parts.append(_parallel(report, metric) or _empty("no scored job yet"))
    if scored:
        parts.append('<p class="muted">One line per scored job across the searched values and the score; '
                     'its colour is its score (the scale right of the score axis).</p>')

    parts.append("<h2>Parameter importance</h2>")
    if importance is not None and importance.values:
        parts.append(svg.importance_plot({display_name(k): v for k, v in importance.values.items()}))
        parts.append(f'<p class="muted">Method: {escape(importance.evaluator)}, over {importance.jobs} scored jobs '
                     "(normalised to sum to 1).</p>")
        if importance.caveat:
            parts.append(f'<p class="caveat">{escape(importance.caveat)}.</p>')
        if importance.note:
            parts.append(_empty(importance.note))
    else:
        note = importance.note if importance is not None else "not computed"
        parts.append(_empty(f"no parameter importance: {note}"))

    parts.append("<h2>Learning curves</h2>")
    parts.append(svg.curves_plot(curves, metric, best_name) or _empty("no validation values recorded"))
    parts.append(f'<p class="muted">{escape(metric)} at each validation, one line per job.</p>')

    parts.append(_best(report, diff, diff_note, best_job_flags(report, curves)))
    parts.append(_jobs(report, top))
    parts.append(_failures(report))
    title = f"mmar-automl report: {report.run_id}"
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
            f'<meta name="viewport" content="width=device-width,initial-scale=1"><style>{CSS}</style></head>'
            f"<body>{''.join(parts)}<script>{SCRIPT}</script></body></html>\n")


def write_html(path: str | Path, text: str) -> Path:
    """Write atomically (a browser or a second report never sees half a page)."""
    from mmar_automl.errors import UsageError

    out = Path(path)
    tmp = out.with_name(f".{out.name}.tmp")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(out)
    except OSError as err:
        if tmp.parent.is_dir():
            tmp.unlink(missing_ok=True)
        raise UsageError(f"--html {path}: cannot write: {err.strerror or err}") from None
    return out


def _empty(text: str) -> str:
    return f'<p class="muted">{escape(text)}</p>'


def _summary(report: RunReport) -> str:
    counts = ", ".join(f"{n} {s}" for s, n in sorted(report.counts().items())) or "none"
    best = (f"best <b>{escape(report.best.name)}</b> score <b>{report.best.score:.6g}</b>"
            if report.best else "no scored job")
    started = report.header.get("t")
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(started)) if started else "?"
    ended = escape(str(report.ended.get("reason"))) if report.ended else escape(report.status)
    controller = report.header.get("controller") or {}
    ctrl = escape(str(controller.get("name") or controller.get("path") or "?"))
    return (f"<h1>Run {escape(report.run_id)}</h1>"
            f'<p class="muted">{escape(str(report.mmar_root))} &middot; started {when} &middot; controller {ctrl}'
            f" &middot; seed {escape(str(report.header.get('seed')))} &middot; {ended}</p>"
            f"<p>{len(report.jobs)} jobs ({escape(counts)}); {best}.</p>")


def _parallel(report: RunReport, metric: str) -> str:
    scored = report.scored()
    if report.space is None or not scored:
        return ""
    axes: list[dict[str, Any]] = []
    for dim in report.space:
        if isinstance(dim, FloatDimension):
            axes.append({"name": dim.name, "label": display_name(dim.name), "kind": "float", "low": dim.low, "high": dim.high})
        else:
            from mmar_automl.report.data import format_dimension_value

            labels = list(dict.fromkeys(format_dimension_value(dim, list(c)) for c in dim.choices))
            axes.append({"name": dim.name, "label": display_name(dim.name), "kind": "enum", "labels": labels})
    rows = []
    for row in scored:
        point = row.record.recommendation.point
        values: list[Any] = []
        for axis in axes:
            if axis["name"] not in point:
                values.append(None)
            elif axis["kind"] == "float":
                values.append(point[axis["name"]])
            else:
                values.append(row.params.get(axis["name"]))
        rows.append((row.name, float(row.score), values))  # type: ignore[arg-type]
    return svg.parallel_plot(axes, rows, metric)


def _best(report: RunReport, diff: list[dict[str, Any]] | None, note: str | None, flags: list[str]) -> str:
    if report.best is None:
        return "<h2>Best job</h2>" + _empty("no job has a score")
    best = report.best
    rows = "".join(f"<tr><td>{escape(display_name(k))}</td><td><code>{escape(v)}</code></td></tr>" for k, v in best.params.items())
    out = [f"<h2>Best job: {escape(best.name)} (score {best.score:.6g})</h2>",
           *(f'<p class="caveat flag">{escape(flag)}.</p>' for flag in flags),
           f'<p class="muted">{escape(best.record.folder)}</p><table><tr><th>parameter</th><th>value</th></tr>{rows}</table>']
    if report.overrides:
        shown = " ".join(f"{k}={v}" for k, v in report.overrides.items())
        out.append(f"<p>--set (every job, written in its config): <code>{escape(shown)}</code></p>")
    if note:
        out.append(_empty(note))
    if diff is not None:
        out.append(f"<p>Config difference from the base config ({len(diff)} paths):</p>")
        items = "".join(
            f"<tr><td><code>{escape(diff_label(d))}</code></td><td><code>{_j(d, 'old')}</code></td>"
            f"<td><code>{_j(d, 'new')}</code></td></tr>" for d in diff)
        out.append(f'<div class="wrap"><table><tr><th>JSON path</th><th>base</th><th>best job</th></tr>{items}</table></div>')
    return "".join(out)


def _j(item: dict[str, Any], key: str) -> str:
    return "(absent)" if key not in item else escape(json.dumps(item[key]))


def _jobs(report: RunReport, top: int | None) -> str:
    ranked = report.ranked()
    shown = ranked if not top or top <= 0 else ranked[:top]
    names = report.dimension_names
    head = "".join(f"<th>{escape(n)}</th>" for n in ["#", "job", "worker", "status", "score", "duration",
                                                      *map(display_name, names)])
    body = []
    for rank, row in enumerate(shown, 1):
        r = row.record
        scored = r.score is not None and r.state.value == "COMPLETE"
        retry = retry_label(row, report)
        name = escape(row.name) + (f' <span class="retry">{escape(retry)}</span>' if retry else "")
        cells = [f'<td class="num">{rank if scored else ""}</td>', f"<td>{name}</td>",
                 f'<td class="num">{r.worker}</td>', f'<td class="{r.state.value}">{r.state.value}</td>',
                 f'<td class="num">{"-" if r.score is None else f"{r.score:.4f}"}</td>',
                 f'<td class="num">{format_duration(r.duration)}</td>']
        for name in names:
            cls = ' class="inactive"' if name in row.inactive else ""
            cells.append(f"<td{cls}><code>{escape(row.params.get(name, ''))}</code></td>")
        body.append(f"<tr>{''.join(cells)}</tr>")
    title = f"Jobs (best {len(shown)} of {len(ranked)})" if len(shown) < len(ranked) else "Jobs"
    return f'<h2>{title}</h2><div class="wrap"><table><tr>{head}</tr>{"".join(body)}</table></div>'


def _failures(report: RunReport) -> str:
    failures = report.failures()
    if not failures:
        return ""
    items = []
    for row in failures:
        r = row.record
        code = "" if r.exit_code is None else f" (exit {r.exit_code})"
        tail = f"<details><summary>log tail</summary><pre>{escape(r.log_tail)}</pre></details>" if r.log_tail else ""
        items.append(f'<li><b>{escape(row.name)}</b> <span class="{r.state.value}">{r.state.value}</span>{code}: '
                     f"{escape(r.reason or 'no reason recorded')}{tail}</li>")
    return f"<h2>Failures ({len(failures)})</h2><ul>{''.join(items)}</ul>"
