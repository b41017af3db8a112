"""Inline SVG plots generated in Python: no JavaScript library, nothing fetched, prints well.

Each plot is one ``<svg class="plot" data-plot=NAME>``; its marks carry a class (``pt``, ``line``,
``bar``, ``curve``) so that a browser test can count what was drawn. Every mark has a ``<title>``
(hover tooltip)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape
from typing import Any

W, H = 860, 340
PAD_L, PAD_R, PAD_T, PAD_B = 64, 24, 16, 44
# A few stops of viridis: low scores dark blue, high scores yellow.
_VIRIDIS = [(68, 1, 84), (59, 82, 139), (33, 145, 140), (94, 201, 98), (253, 231, 37)]


def color(t: float) -> str:
    """Viridis-like colour of ``t`` in [0, 1]."""
    t = min(max(t, 0.0), 1.0) * (len(_VIRIDIS) - 1)
    i = min(int(t), len(_VIRIDIS) - 2)
    f = t - i
    r, g, b = (round(a + (b_ - a) * f) for a, b_ in zip(_VIRIDIS[i], _VIRIDIS[i + 1]))
    return f"#{r:02x}{g:02x}{b:02x}"


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return []
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / max(count, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step) * step
    ticks = []
    v = first
    while v <= hi + step * 1e-9 and len(ticks) < 50:
        ticks.append(round(v, 12))
        v += step
    return ticks


def whole_ticks(lo: int, hi: int) -> list[float]:
    """Ticks of a count axis (job number, epoch): whole numbers only, never "1.25"."""
    ticks = [t for t in nice_ticks(lo, hi, 8) if float(t).is_integer()]
    return ticks if len(ticks) >= 2 or hi <= lo else [float(lo), float(hi)]


AXIS_FONT, TICK_FONT = 12, 11   # px, as the page's CSS sets .al and .tl (report/html.py)


def _text_width(text: str, size: float) -> float:
    """A generous estimate of a label's width in a sans-serif font (0.62 em a character): the page
    is laid out here, without a browser to measure it."""
    return 0.62 * size * len(text)


def _fmt(v: float) -> str:
    return f"{v:.4g}"


def _span(lo: float, hi: float) -> tuple[float, float]:
    if hi > lo:
        pad = (hi - lo) * 0.05
        return lo - pad, hi + pad
    d = abs(lo) * 0.1 or 1.0
    return lo - d, hi + d


def _value_axis(lo: float, hi: float) -> tuple[tuple[float, float], list[float]]:
    """((low, high), ticks) of a value axis: the padded span widened to whole tick steps, so that the
    lowest and highest values lie between labelled ticks (a score below the first tick sat on the x
    axis with no value to read it by)."""
    lo, hi = _span(lo, hi)
    ticks = nice_ticks(lo, hi)
    if len(ticks) < 2:
        return (lo, hi), ticks
    step = ticks[1] - ticks[0]
    first, last = math.floor(lo / step + 1e-9), math.ceil(hi / step - 1e-9)
    ticks = [round(k * step, 12) for k in range(first, last + 1)]
    return (ticks[0], ticks[-1]), ticks


class _Frame:
    """Linear x/y scales into the plot area, and the axes with ticks."""

    def __init__(self, x: tuple[float, float], y: tuple[float, float], width: int = W, height: int = H):
        self.x0, self.x1 = x
        self.y0, self.y1 = y
        self.w, self.h = width, height

    def px(self, x: float) -> float:
        return round(PAD_L + (x - self.x0) / ((self.x1 - self.x0) or 1) * (self.w - PAD_L - PAD_R), 2)

    def py(self, y: float) -> float:
        return round(self.h - PAD_B - (y - self.y0) / ((self.y1 - self.y0) or 1) * (self.h - PAD_T - PAD_B), 2)

    def axes(self, xlabel: str, ylabel: str, xticks: Sequence[float], yticks: Sequence[float]) -> str:
        b, left, right = self.h - PAD_B, PAD_L, self.w - PAD_R
        out = [f'<line class="axis" x1="{left}" y1="{b}" x2="{right}" y2="{b}"/>',
               f'<line class="axis" x1="{left}" y1="{PAD_T}" x2="{left}" y2="{b}"/>']
        for t in xticks:
            x = self.px(t)
            out.append(f'<line class="tick" x1="{x}" y1="{b}" x2="{x}" y2="{b + 4}"/>'
                       f'<text class="tl" x="{x}" y="{b + 16}" text-anchor="middle">{_fmt(t)}</text>')
        for t in yticks:
            y = self.py(t)
            out.append(f'<line class="grid" x1="{left}" y1="{y}" x2="{right}" y2="{y}"/>'
                       f'<text class="tl" x="{left - 6}" y="{y + 4}" text-anchor="end">{_fmt(t)}</text>')
        out.append(f'<text class="al" x="{(left + right) / 2}" y="{self.h - 6}" text-anchor="middle">{escape(xlabel)}</text>')
        out.append(f'<text class="al" transform="translate(14,{(PAD_T + b) / 2}) rotate(-90)" '
                   f'text-anchor="middle">{escape(ylabel)}</text>')
        return "".join(out)


def _svg(name: str, body: str, width: int = W, height: int = H, label: str = "") -> str:
    return (f'<svg class="plot" data-plot="{name}" xmlns="http://www.w3.org/2000/svg" width="{width}" '
            f'height="{height}" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(label or name)}">'
            f"{body}</svg>")


def history_plot(points: Sequence[tuple[int, float, str]], metric: str) -> str:
    """Score vs job number (one ``pt`` circle per scored job) and the best so far (``best`` line)."""
    if not points:
        return ""
    xs = [p[0] for p in points]
    ys = [p[1] for p in points]
    (y0, y1), yticks = _value_axis(min(ys), max(ys))
    f = _Frame(_span(min(xs), max(xs)), (y0, y1))
    body = [f.axes("job number", metric, whole_ticks(min(xs), max(xs)), yticks)]
    lo, hi = min(ys), max(ys)
    for x, y, name in points:
        t = (y - lo) / ((hi - lo) or 1)
        body.append(f'<circle class="pt" cx="{f.px(x)}" cy="{f.py(y)}" r="3.5" fill="{color(t)}">'
                    f"<title>{escape(name)}: {_fmt(y)}</title></circle>")
    best, steps = -math.inf, []
    for x, y, _ in sorted(points):
        best = max(best, y)
        steps.append((f.px(x), f.py(best)))
    path = " ".join(f"{x},{y}" for x, y in _stairs(steps))
    body.append(f'<polyline class="best" points="{path}"><title>best so far</title></polyline>')
    return _svg("history", "".join(body), label="optimisation history")


def _stairs(steps: list[tuple[float, float]]) -> list[tuple[float, float]]:
    out: list[tuple[float, float]] = []
    for x, y in steps:
        if out:
            out.append((x, out[-1][1]))
        out.append((x, y))
    return out


def parallel_plot(axes: Sequence[dict[str, Any]], rows: Sequence[tuple[str, float, list[Any]]], metric: str) -> str:
    """Parallel coordinates: one vertical axis per dimension, the score last; one ``line`` per scored job
    coloured by score. ``axes``: ``{"name", "kind": "float"|"enum", "low", "high", "log"}`` or
    ``{"name", "kind": "enum", "labels": [...]}``; a row's values follow the axes (None = no value)."""
    if not rows or not axes:
        return ""
    scores = [r[1] for r in rows]
    all_axes = [*axes, {"name": metric, "kind": "float", "low": min(scores), "high": max(scores)}]
    n = len(all_axes)
    width = max(W, 140 * n)
    left, right, top, bottom = PAD_L, width - PAD_R - 40, PAD_T + 18, H - PAD_B
    xs = [left + (right - left) * i / max(n - 1, 1) for i in range(n)]
    # Names wider than the 140 px between two axes overlapped ("learning_rate" ran into
    # "skipDiceLoss/skipDiceCELoss"): each gap is widened to hold its two half names (whole names at the
    # ends, anchored inwards), and the plot grows to the right.
    names = [_text_width(a.get("label", a["name"]), AXIS_FONT) for a in all_axes]
    for i in range(1, n):
        need = (names[i - 1] - 6 if i == 1 else names[i - 1] / 2) + (names[i] - 6 if i == n - 1 else names[i] / 2) + 12
        xs[i] = round(max(xs[i], xs[i - 1] + need), 2)
    width = max(width, math.ceil(xs[-1] + PAD_R + 40))

    def pos(axis: dict[str, Any], value: Any) -> float | None:
        if value is None:
            return None
        if axis["kind"] == "enum":
            labels = axis["labels"]
            if value not in labels:
                return None
            k = labels.index(value)
            t = (k + 0.5) / len(labels)
        else:
            lo, hi = axis["low"], axis["high"]
            if axis.get("log") and lo > 0:  # the dimension is searched on a log scale: so is its axis
                lo, hi, value = math.log(lo), math.log(hi), math.log(max(float(value), axis["low"]))
            t = 0.5 if hi <= lo else (float(value) - lo) / (hi - lo)
        return round(bottom - t * (bottom - top), 2)

    body, labels = [], []  # labels go last, on top of the lines, with a white halo (CSS .halo)
    for axis, x in zip(all_axes, xs):
        body.append(f'<line class="axis" x1="{x}" y1="{top}" x2="{x}" y2="{bottom}"/>')
        # the first and last names are anchored inwards, so that a long name is not cut at the edge
        anchor = "start" if x == xs[0] else "end" if x == xs[-1] else "middle"
        labels.append(f'<text class="al" x="{x - 6 if anchor == "start" else x + 6 if anchor == "end" else x}" '
                      f'y="{PAD_T + 6}" text-anchor="{anchor}">{escape(axis.get("label", axis["name"]))}</text>')
        if axis["kind"] == "enum":
            for label in axis["labels"]:
                y = pos(axis, label)
                labels.append(f'<text class="tl halo" x="{x + 5}" y="{y}">{escape(label[:24])}</text>')
        else:
            ticks = (axis["low"], math.sqrt(axis["low"] * axis["high"]), axis["high"]) if axis.get("log") \
                else (axis["low"], axis["high"])
            for t in ticks:
                labels.append(f'<text class="tl halo" x="{x + 5}" y="{pos(axis, t)}">{_fmt(t)}</text>')
    lo, hi = min(scores), max(scores)
    for name, score, values in sorted(rows, key=lambda r: r[1]):  # best drawn last, on top
        pts = []
        for axis, x, value in zip(all_axes, xs, [*values, score]):
            y = pos(axis, value)
            if y is not None:
                pts.append(f"{round(x, 2)},{y}")
        t = (score - lo) / ((hi - lo) or 1)
        body.append(f'<polyline class="line" points="{" ".join(pts)}" stroke="{color(t)}">'
                    f"<title>{escape(name)}: {_fmt(score)}</title></polyline>")
    # the scale's bar starts at x + 34: clear of the score axis' own tick labels (x + 5 onwards)
    ticks_w = max(_text_width(_fmt(v), TICK_FONT) for v in (lo, hi))
    labels.append(colour_scale(max(xs[-1] + 16, xs[-1] + 5 + ticks_w + 6 - 34), top, bottom, lo, hi, metric))
    return _svg("parallel", "".join(body + labels), width=width + 70, label="parallel coordinates")


def colour_scale(x: float, top: float, bottom: float, lo: float, hi: float, metric: str) -> str:
    """A vertical viridis bar from ``lo`` (bottom) to ``hi`` (top) with its end values: how to read the
    line colours (class ``scale``, not a counted mark)."""
    steps = 24  # stacked bands rather than a gradient: no url(#id) reference, nothing to resolve
    band = (bottom - top) / steps
    bands = "".join(f'<rect x="{x + 34}" y="{round(top + i * band, 2)}" width="12" height="{round(band + 0.5, 2)}" '
                    f'fill="{color(1 - (i + 0.5) / steps)}"/>' for i in range(steps))
    mid = (top + bottom) / 2
    return (f'<g class="scale">{bands}<rect x="{x + 34}" y="{top}" width="12" height="{bottom - top}" fill="none" '
            f'stroke="#999" stroke-width=".5"><title>line colour = {escape(metric)}</title></rect>'
            f'<text class="tl" x="{x + 50}" y="{top + 9}">{_fmt(hi)}</text>'
            f'<text class="tl" x="{x + 50}" y="{bottom}">{_fmt(lo)}</text>'
            f'<text class="tl" transform="translate({x + 64},{mid}) rotate(90)" text-anchor="middle">colour: {escape(metric)}</text></g>')


def importance_plot(values: dict[str, float]) -> str:
    """Horizontal bars, most important first (one ``bar`` per dimension)."""
    if not values:
        return ""
    items = sorted(values.items(), key=lambda kv: (-kv[1], kv[0]))  # ties by name: a stable order
    bar_h, gap, label_w = 22, 8, 240
    height = PAD_T + len(items) * (bar_h + gap) + 10
    top_value = max(v for _, v in items) or 1.0
    body = []
    for i, (name, value) in enumerate(items):
        y = PAD_T + i * (bar_h + gap)
        w = max(1.0, (W - label_w - 80) * value / top_value)
        body.append(f'<text class="tl" x="{label_w - 8}" y="{y + 15}" text-anchor="end">{escape(name)}</text>'
                    f'<rect class="bar" x="{label_w}" y="{y}" width="{round(w, 2)}" height="{bar_h}">'
                    f"<title>{escape(name)}: {value:.3f}</title></rect>"
                    f'<text class="tl" x="{label_w + w + 6}" y="{y + 15}">{value:.3f}</text>')
    return _svg("importance", "".join(body), height=height, label="parameter importance")


def curves_plot(curves: dict[str, list[tuple[int, float]]], metric: str, highlight: str | None) -> str:
    """Validation key metric per epoch, one ``curve`` per job; the best job drawn thick, on top."""
    if not curves:
        return ""
    xs = [e for pts in curves.values() for e, _ in pts]
    ys = [v for pts in curves.values() for _, v in pts]
    (y0, y1), yticks = _value_axis(min(ys), max(ys))
    f = _Frame(_span(min(xs), max(xs)), (y0, y1))
    body = [f.axes("epoch", metric, whole_ticks(min(xs), max(xs)), yticks)]
    order = sorted(curves, key=lambda n: n == highlight)
    # many jobs: fainter lines, so that the bundle shows its density instead of a grey block
    body.append(f"<style>.curve polyline{{stroke-opacity:{max(0.06, min(0.6, 25 / len(curves))):.2f}}}"
                ".best-curve polyline{stroke-opacity:1}</style>")
    for name in order:
        pts = curves[name]
        cls = "curve best-curve" if name == highlight else "curve"
        path = " ".join(f"{f.px(e)},{f.py(v)}" for e, v in pts)
        dots = "".join(f'<circle class="cdot" cx="{f.px(e)}" cy="{f.py(v)}" r="2"/>' for e, v in pts) if len(pts) == 1 else ""
        body.append(f'<g class="{cls}"><polyline points="{path}"/>{dots}'
                    f"<title>{escape(name)}: last {_fmt(pts[-1][1])}</title></g>")
    body.append(_curves_legend(highlight if highlight in curves else None, len(curves)))
    return _svg("curves", "".join(body), label="learning curves")


def _curves_legend(best: str | None, count: int) -> str:
    """Top right, on a white box: the best job's line and the others'."""
    x, y = W - PAD_R - 210, PAD_T + 6
    rows = []
    if best:
        rows.append(('stroke="#d62728" stroke-width="2.5"', f"best job {best}"))
    others = count - (1 if best else 0)
    if others:
        rows.append(('stroke="#9ab" stroke-width="1.5"', f"other jobs ({others})"))
    items = "".join(f'<line x1="{x + 8}" y1="{y + 12 + 16 * i}" x2="{x + 32}" y2="{y + 12 + 16 * i}" {style}/>'
                    f'<text class="tl" x="{x + 38}" y="{y + 16 + 16 * i}">{escape(text)}</text>'
                    for i, (style, text) in enumerate(rows))
    return (f'<g class="legend"><rect x="{x}" y="{y}" width="204" height="{8 + 16 * len(rows)}" fill="#fff" '
            f'fill-opacity=".9" stroke="#ccc"/>{items}</g>')
