"""Charts for the PDF reports as SVG: vector, drawn in the dashboards' colours, and fast.

A report holds a few dozen small charts; each is a bar or line chart of published figures,
so a few lines of SVG each. Writing them directly takes well under a millisecond per chart
and needs nothing installed (docs/reports.md records the measurement and the alternatives).
Every text is escaped; a hidden figure ("<10", "x") is drawn as an outlined empty bar with
its mark, never as a value.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from xml.sax.saxutils import escape

from hub.presentation import OKABE_ITO

INK = "#1f2933"
INK_SOFT = "#52606d"
GRID = "#d9dee4"
HIDDEN = "#A7B4C2"
FONT = "DejaVu Sans, Liberation Sans, Arial, sans-serif"


@dataclass(frozen=True)
class Bar:
    label: str
    value: float  # NaN when hidden
    display: str  # the published text ("12,345", "<10", "x")


def _nice_max(value: float) -> float:
    """A round axis maximum at or above ``value`` (1, 2, 2.5, 5 x 10^n)."""
    if not value or value <= 0 or math.isnan(value):
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * power:
            return step * power
    return 10 * power


def _tick(value: float, unit: str) -> str:
    if unit == "share":
        return f"{value * 100:.0f}%"
    if value >= 1e6:
        return f"{value / 1e6:g}M"
    if value >= 1e3:
        return f"{value / 1e3:g}k"
    return f"{value:g}"


def _text(x: float, y: float, text: str, *, size: float = 9, anchor: str = "start", fill: str = INK) -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" fill="{fill}" '
        f'font-family="{FONT}">{escape(text)}</text>'
    )


def bar_chart(
    bars: Sequence[Bar], *, title: str, unit: str = "count", colour: str = OKABE_ITO["blue"], width: int = 480
) -> str:
    """Horizontal bars with their published value written beside each one."""
    row, left, right, top = 18, 150, 70, 26
    height = top + row * max(1, len(bars)) + 22
    shown = [b.value for b in bars if not math.isnan(b.value)]
    scale_max = _nice_max(max(shown, default=0.0))
    span = width - left - right
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title, {chr(34): "&quot;"})}">',
        _text(0, 14, title, size=10.5),
    ]
    for step in range(5):
        x = left + span * step / 4
        parts.append(f'<line x1="{x:.1f}" y1="{top - 4}" x2="{x:.1f}" y2="{height - 20}" stroke="{GRID}"/>')
        parts.append(
            _text(x, height - 8, _tick(scale_max * step / 4, unit), size=7.5, anchor="middle", fill=INK_SOFT)
        )
    for index, bar in enumerate(bars):
        y = top + index * row
        parts.append(_text(left - 6, y + 11, bar.label[:28], size=8.5, anchor="end"))
        if math.isnan(bar.value):
            parts.append(
                f'<rect x="{left}" y="{y + 2}" width="14" height="{row - 6}" fill="none" stroke="{HIDDEN}" '
                'stroke-dasharray="2 2"/>'
            )
            parts.append(_text(left + 20, y + 11, bar.display or "–", size=8.5, fill=INK_SOFT))
            continue
        length = span * bar.value / scale_max if scale_max else 0
        parts.append(
            f'<rect x="{left}" y="{y + 2}" width="{length:.1f}" height="{row - 6}" fill="{colour}"/>'
        )
        parts.append(_text(left + length + 4, y + 11, bar.display, size=8.5))
    parts.append("</svg>")
    return "".join(parts)


def line_chart(
    periods: Sequence[str],
    series: Sequence[tuple[str, Sequence[float], str]],
    *,
    title: str,
    unit: str = "count",
    width: int = 480,
    height: int = 190,
) -> str:
    """Lines over periods (name, values with NaN gaps, colour), with a legend under the title."""
    left, right, top, bottom = 52, 16, 40, 24
    values = [v for _, line, _ in series for v in line if not math.isnan(v)]
    scale_max = _nice_max(max(values, default=0.0))
    span_x, span_y = width - left - right, height - top - bottom
    count = max(1, len(periods) - 1)

    def x_of(i: int) -> float:
        return left + span_x * i / count

    def y_of(v: float) -> float:
        return top + span_y * (1 - v / scale_max)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title, {chr(34): "&quot;"})}">',
        _text(0, 14, title, size=10.5),
    ]
    for index, (name, _, colour) in enumerate(series):
        x = index * 150
        parts.append(f'<rect x="{x}" y="21" width="10" height="3" fill="{colour}"/>')
        parts.append(_text(x + 14, 26, name, size=8, fill=INK_SOFT))
    for step in range(5):
        y = top + span_y * step / 4
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{width - right}" y2="{y:.1f}" stroke="{GRID}"/>')
        parts.append(
            _text(
                left - 5,
                y + 3,
                _tick(scale_max * (1 - step / 4), unit),
                size=7.5,
                anchor="end",
                fill=INK_SOFT,
            )
        )
    every = max(1, math.ceil(len(periods) / 8))
    for index, period in enumerate(periods):
        if index % every == 0:
            parts.append(_text(x_of(index), height - 8, period, size=7.5, anchor="middle", fill=INK_SOFT))
    for _, line, colour in series:
        segment: list[str] = []
        for index, value in enumerate(line):
            if math.isnan(value):
                if len(segment) > 1:
                    parts.append(
                        f'<polyline points="{" ".join(segment)}" fill="none" stroke="{colour}" stroke-width="2"/>'
                    )
                segment = []
                continue
            segment.append(f"{x_of(index):.1f},{y_of(value):.1f}")
            parts.append(f'<circle cx="{x_of(index):.1f}" cy="{y_of(value):.1f}" r="2.2" fill="{colour}"/>')
        if len(segment) > 1:
            parts.append(
                f'<polyline points="{" ".join(segment)}" fill="none" stroke="{colour}" stroke-width="2"/>'
            )
    parts.append("</svg>")
    return "".join(parts)
