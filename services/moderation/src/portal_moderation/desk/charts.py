"""Server-rendered SVG charts (no JavaScript): pure functions from figures to markup.

Every text is escaped; colours come from CSS classes (the desk's stylesheet), so the page's
Content-Security-Policy needs no inline style. Each chart has a <title> for screen readers,
and the page shows the same figures in a table beside it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from markupsafe import Markup, escape

from portal_moderation.desk.present import number


@dataclass(frozen=True)
class Series:
    name: str
    css: str  # class of the line/bar: s1, s2, s3 ...
    values: Sequence[int]


def _nice_max(value: float) -> int:
    """A round top for the axis: 1, 2, 5 x 10^n at or above ``value``."""
    if value <= 0:
        return 1
    magnitude = 1
    while magnitude * 10 <= value:
        magnitude *= 10
    for step in (1, 2, 5, 10):
        if step * magnitude >= value:
            return step * magnitude
    return 10 * magnitude


def hbars(
    items: Sequence[tuple[str, int]],
    *,
    title: str,
    css: str = "s1",
    width: int = 400,
    row: int = 24,
    label_width: int = 170,
) -> Markup:
    """Horizontal bars with their label and value: reasons, age buckets, error types."""
    if not items:
        return Markup('<p class="muted">Chưa có số liệu.</p>')
    top = max(v for _, v in items) or 1
    bar_space = width - label_width - 60
    height = row * len(items) + 4
    parts = [
        f'<svg class="chart hbars" viewBox="0 0 {width} {height}" width="100%" '
        f'role="img" aria-label="{escape(title)}"><title>{escape(title)}</title>'
    ]
    for i, (name, value) in enumerate(items):
        y = i * row + 2
        length = 0 if value <= 0 else max(2, round(bar_space * value / top))
        short = name if len(name) <= 34 else name[:33] + "…"
        parts.append(
            f"<g><title>{escape(name)}: {number(value)}</title>"
            f'<text class="label" x="{label_width - 8}" y="{y + row / 2 + 4:.0f}" '
            f'text-anchor="end">{escape(short)}</text>'
            f'<rect class="bar {css}" x="{label_width}" y="{y + 4}" width="{length}" '
            f'height="{row - 8}" rx="2"/>'
            f'<text class="value" x="{label_width + length + 6}" y="{y + row / 2 + 4:.0f}">'
            f"{number(value)}</text></g>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every text in it went through escape()


def stacked_bars(
    categories: Sequence[str],
    series: Sequence[Series],
    *,
    title: str,
    width: int = 400,
    height: int = 210,
) -> Markup:
    """Vertical stacked bars (e.g. backlog by age: pending and awaiting post-review)."""
    if not categories:
        return Markup('<p class="muted">Chưa có số liệu.</p>')
    totals = [sum(s.values[i] for s in series) for i in range(len(categories))]
    top = _nice_max(max(totals))
    left, bottom, right, upper = 40, 36, 8, 10
    plot_w, plot_h = width - left - right, height - bottom - upper
    slot = plot_w / len(categories)
    bar_w = min(56.0, slot * 0.6)
    parts = [
        f'<svg class="chart vbars" viewBox="0 0 {width} {height}" width="100%" '
        f'role="img" aria-label="{escape(title)}"><title>{escape(title)}</title>'
    ]
    parts.append(_y_axis(left, upper, plot_w, plot_h, top))
    for i, category in enumerate(categories):
        x = left + slot * i + (slot - bar_w) / 2
        base: float = upper + plot_h
        for s in series:
            value = s.values[i]
            if value <= 0:
                continue
            h = plot_h * value / top
            base -= h
            parts.append(
                f'<rect class="bar {s.css}" x="{x:.1f}" y="{base:.1f}" width="{bar_w:.1f}" '
                f'height="{h:.1f}"><title>{escape(category)} — {escape(s.name)}: '
                f"{number(value)}</title></rect>"
            )
        if totals[i]:
            parts.append(
                f'<text class="value" x="{x + bar_w / 2:.1f}" y="{base - 3:.1f}" '
                f'text-anchor="middle">{number(totals[i])}</text>'
            )
        parts.append(
            f'<text class="label" x="{x + bar_w / 2:.1f}" y="{height - bottom + 16}" '
            f'text-anchor="middle">{escape(category)}</text>'
        )
    parts.append(_legend(series, left, height - 8))
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every text in it went through escape()


def _y_axis(left: int, upper: int, plot_w: float, plot_h: float, top: int) -> str:
    lines = []
    for k in range(5):
        value = top * k / 4
        y = upper + plot_h - plot_h * k / 4
        lines.append(
            f'<line class="grid" x1="{left}" x2="{left + plot_w:.1f}" y1="{y:.1f}" y2="{y:.1f}"/>'
            f'<text class="axis" x="{left - 4}" y="{y + 4:.1f}" text-anchor="end">'
            f"{number(value)}</text>"
        )
    return "".join(lines)


def _legend(series: Sequence[Series], x: int, y: int) -> str:
    parts = []
    for s in series:
        parts.append(
            f'<rect class="bar {s.css}" x="{x}" y="{y - 9}" width="10" height="10"/>'
            f'<text class="legend" x="{x + 14}" y="{y}">{escape(s.name)}</text>'
        )
        x += 24 + 7 * len(s.name)
    return "".join(parts)


def daily_series(
    days: Sequence[Any],
    *,
    first: date | None,
    last: date,
    names: tuple[str, str, str],
) -> tuple[list[date], list[Series]]:
    """Every day from ``first`` (or the first day with figures) to ``last``, zeros included,
    as three series (integrated, reviewed, published) of ``reports.Day`` rows."""
    by_day = {d.day: d for d in days}
    if first is None:
        if not by_day:
            return [], [Series(n, f"s{i + 1}", []) for i, n in enumerate(names)]
        first = min(by_day)
    span = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    values = [
        [getattr(by_day[d], field) if d in by_day else 0 for d in span]
        for field in ("integrated", "reviewed", "published")
    ]
    return span, [
        Series(n, f"s{i + 1}", v) for i, (n, v) in enumerate(zip(names, values, strict=True))
    ]


def weekly(days: Sequence[date], series: Sequence[Series]) -> tuple[list[date], list[Series]]:
    """Sum daily figures into weeks (Monday first), for long periods."""
    weeks: list[date] = []
    index: dict[date, int] = {}
    for d in days:
        monday = d - timedelta(days=d.weekday())
        if monday not in index:
            index[monday] = len(weeks)
            weeks.append(monday)
    summed = []
    for s in series:
        values = [0] * len(weeks)
        for d, v in zip(days, s.values, strict=True):
            values[index[d - timedelta(days=d.weekday())]] += v
        summed.append(Series(s.name, s.css, values))
    return weeks, summed


def lines(
    days: Sequence[date],
    series: Sequence[Series],
    *,
    title: str,
    width: int = 1200,
    height: int = 240,
) -> Markup:
    """Lines over time (integrated / reviewed / published per day or week)."""
    if not days:
        return Markup('<p class="muted">Chưa có số liệu trong khoảng thời gian này.</p>')
    top = _nice_max(max((max(s.values) for s in series if s.values), default=1))
    left, bottom, right, upper = 44, 40, 12, 10
    plot_w, plot_h = width - left - right, height - bottom - upper
    step = plot_w / max(1, len(days) - 1)
    parts = [
        f'<svg class="chart lines" viewBox="0 0 {width} {height}" width="100%" '
        f'role="img" aria-label="{escape(title)}"><title>{escape(title)}</title>'
    ]
    parts.append(_y_axis(left, upper, plot_w, plot_h, top))
    every = max(1, len(days) // 10)
    for i, d in enumerate(days):
        if i % every == 0 or i == len(days) - 1:
            x = left + step * i if len(days) > 1 else left + plot_w / 2
            parts.append(
                f'<text class="axis" x="{x:.1f}" y="{upper + plot_h + 16}" '
                f'text-anchor="middle">{d.strftime("%d/%m")}</text>'
            )
    for s in series:
        points = []
        for i, value in enumerate(s.values):
            x = left + step * i if len(days) > 1 else left + plot_w / 2
            y = upper + plot_h - plot_h * value / top
            points.append((x, y, value, days[i]))
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y, _, _ in points)
        parts.append(f'<polyline class="line {s.css}" points="{path}"/>')
        for x, y, value, d in points:
            parts.append(
                f'<circle class="dot {s.css}" cx="{x:.1f}" cy="{y:.1f}" r="2.5">'
                f"<title>{d.strftime('%d/%m/%Y')} — {escape(s.name)}: {number(value)}</title>"
                "</circle>"
            )
    parts.append(_legend(series, left, height - 6))
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every text in it went through escape()


def meter(part: int, whole: int, *, css: str = "s1", width: int = 120) -> Markup:
    """A small progress bar (share of a whole) for table cells."""
    share = part / whole if whole > 0 else 0.0
    filled = round(width * min(1.0, share))
    return Markup(  # noqa: S704 - numbers only
        f'<svg class="meter" viewBox="0 0 {width} 8" width="{width}" height="8" aria-hidden="true">'
        f'<rect class="track" x="0" y="0" width="{width}" height="8" rx="2"/>'
        f'<rect class="bar {css}" x="0" y="0" width="{filled}" height="8" rx="2"/></svg>'
    )
