"""Charts as SVG drawn on the server: no script, readable in dark mode and on paper.

Colours come from CSS custom properties (``--email``, ``--ink``...) set by the
page's stylesheet, which switches them for ``prefers-color-scheme: dark`` and
for print; text is ``currentColor``. Every chart is an ``img`` with a
``<title>`` and a ``<desc>`` that says in words what it shows, and the
numbers are a CSV download beside it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

from markupsafe import Markup

WIDTH = 640
ROW = 26
LABEL = 170


@dataclass(frozen=True)
class Series:
    name: str
    #: The name of its colour in reports.css (class ``fill-<name>``): a channel, or accent, faint, ok.
    #: A class, not a style attribute: the pages' Content-Security-Policy allows no inline styles.
    colour: str


def _frame(chart_id: str, title: str, description: str, height: int, body: str) -> Markup:
    # Every piece of text in body and here went through html.escape.
    return Markup(  # noqa: S704
        f'<svg class="chart" role="img" viewBox="0 0 {WIDTH} {height}" width="100%" '
        f'aria-labelledby="{chart_id}-title {chart_id}-desc" xmlns="http://www.w3.org/2000/svg">'
        f'<title id="{chart_id}-title">{escape(title)}</title><desc id="{chart_id}-desc">{escape(description)}</desc>'
        f"{body}</svg>"
    )


def channel_colour(channel: str) -> str:
    known = {"email", "voice", "sms", "whatsapp", "chat"}
    return channel if channel in known else "other"


def stacked_columns(
    chart_id: str,
    title: str,
    labels: Sequence[str],
    series: Sequence[Series],
    values: Sequence[Sequence[int]],
) -> Markup:
    """One column per label, stacked by series; ``values[s][i]`` is series s at label i."""
    height, top, bottom, left = 240, 12, 40, 40
    plot_h = height - top - bottom
    totals = [sum(v[i] for v in values) for i in range(len(labels))]
    peak = max(totals, default=0) or 1
    n = max(len(labels), 1)
    step = (WIDTH - left - 8) / n
    bar = max(step * 0.75, 1.0)
    parts = [
        f'<line class="axis" x1="{left}" y1="{top + plot_h}" x2="{WIDTH - 4}" y2="{top + plot_h}"/>',
        f'<text class="tick" x="{left - 6}" y="{top + 10}" text-anchor="end">{peak}</text>',
        f'<text class="tick" x="{left - 6}" y="{top + plot_h}" text-anchor="end">0</text>',
    ]
    for i, label in enumerate(labels):
        x = left + i * step + (step - bar) / 2
        y = float(top + plot_h)
        for s, data in zip(series, values, strict=True):
            h = data[i] / peak * plot_h
            if h > 0:
                y -= h
                parts.append(
                    f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{h:.1f}" class="fill-{s.colour}">'
                    f"<title>{escape(label)} {escape(s.name)}: {data[i]}</title></rect>"
                )
        # Label every column when few, else about eight of them.
        if n <= 14 or i % max(n // 8, 1) == 0:
            parts.append(
                f'<text class="tick" x="{x + bar / 2:.1f}" y="{height - bottom + 16}" text-anchor="middle">'
                f"{escape(label)}</text>"
            )
    legend_x = left
    for s in series:
        parts.append(
            f'<rect x="{legend_x}" y="{height - 14}" width="10" height="10" class="fill-{s.colour}"/>'
            f'<text class="tick" x="{legend_x + 14}" y="{height - 5}">{escape(s.name)}</text>'
        )
        legend_x += 14 + 8 * len(s.name) + 18
    description = f"{title}: " + "; ".join(f"{lab} {tot}" for lab, tot in zip(labels, totals, strict=True))
    return _frame(chart_id, title, description[:2000], height, "".join(parts))


def bars(
    chart_id: str,
    title: str,
    rows: Sequence[tuple[str, Sequence[float | None]]],
    series: Sequence[Series],
    show: Callable[[float], str] = "{:.0f}".format,
) -> Markup:
    """Horizontal bars: one group per row label, one bar per series (e.g. median and p90)."""
    per_group = ROW * len(series) + 10
    height = max(len(rows) * per_group + 30, 60)
    peak = max((v for _, vals in rows for v in vals if v is not None), default=0) or 1
    # Room on the right for the value written after the longest bar.
    plot_w = WIDTH - LABEL - 130
    parts = []
    for g, (label, vals) in enumerate(rows):
        y0 = 6 + g * per_group
        parts.append(
            f'<text class="label" x="{LABEL - 8}" y="{y0 + ROW * len(series) / 2 + 4:.1f}" text-anchor="end">'
            f"{escape(label)}</text>"
        )
        for k, (s, v) in enumerate(zip(series, vals, strict=True)):
            y = y0 + k * ROW
            w = 0 if v is None else max(v / peak * plot_w, 1.0)
            text = "–" if v is None else show(v)
            parts.append(
                f'<rect x="{LABEL}" y="{y}" width="{w:.1f}" height="{ROW - 6}" rx="3" class="fill-{s.colour}">'
                f"<title>{escape(label)} {escape(s.name)}: {escape(text)}</title></rect>"
                f'<text class="value" x="{LABEL + w + 6:.1f}" y="{y + ROW - 10}">{escape(s.name)} {escape(text)}</text>'
            )
    description = f"{title}: " + "; ".join(
        f"{label} "
        + ", ".join(f"{s.name} {'none' if v is None else show(v)}" for s, v in zip(series, vals, strict=True))
        for label, vals in rows
    )
    if not rows:
        parts.append(f'<text class="label" x="{LABEL}" y="30">No data in this range</text>')
        description = f"{title}: no data in this range"
    return _frame(chart_id, title, description[:2000], height, "".join(parts))


def duration(seconds: float) -> str:
    """A duration as people say it: "40 min", "2.5 h", "3.1 d"."""
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"
