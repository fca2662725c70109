"""Figures, tables and number formats shared by the pages: presentation only, no queries.

Every chart here comes with a table of the same numbers (:func:`data_table`), so a reader
who cannot see the chart, or wants the exact figures, gets them. Colours are Okabe-Ito
(distinguishable with the common colour-vision deficiencies) and sequential single-hue
scales for maps.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import plotly.graph_objects as go
from dash import dcc, html

from hub.presentation import (  # noqa: F401 - re-exported for the pages
    MISSING,
    OKABE_ITO,
    STAKEHOLDER_COLOURS,
    STAKEHOLDER_LABELS,
    _missing,
    fmt_decimal,
    fmt_int,
    fmt_pct,
    stakeholder_label,
)

PUBLIC_COLOUR = OKABE_ITO["blue"]
ALLIANCE_COLOUR = OKABE_ITO["bluish_green"]
YEAR_COLOURS = (OKABE_ITO["orange"], OKABE_ITO["blue"], OKABE_ITO["vermillion"], OKABE_ITO["sky_blue"])
YEAR_SYMBOLS = ("circle", "diamond", "square", "triangle-up")
PUBLIC_SCALE = [[0.0, "#DCEAF5"], [0.5, "#5B9BD0"], [1.0, "#08306B"]]
ALLIANCE_SCALE = [[0.0, "#D9F0E6"], [0.5, "#3AAE85"], [1.0, "#00563B"]]
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif"
MASKED_COLOUR = "#A7B4C2"  # countries whose count is too small to show exactly


def source_line(sources: Sequence[str]) -> str:
    return "Source: " + ("; ".join(sources) if sources else "not recorded")


# --- figures -----------------------------------------------------------------------------


def _layout(**overrides: Any) -> go.Layout:
    """The common look: system font, thousands separators, no chart title (the page has one)."""
    base: dict[str, Any] = {
        "font": {"family": FONT, "size": 13, "color": "#1F2933"},
        "separators": ".,",
        "margin": {"l": 8, "r": 16, "t": 8, "b": 8},
        "paper_bgcolor": "rgba(0,0,0,0)",
        "plot_bgcolor": "rgba(0,0,0,0)",
        "hoverlabel": {"font": {"family": FONT, "size": 13}},
        "dragmode": False,
        "showlegend": False,
        "xaxis": {"fixedrange": True, "automargin": True},
        "yaxis": {"fixedrange": True, "automargin": True},
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            base[key] = {**base[key], **value}
        else:
            base[key] = value
    return go.Layout(**base)


def _grid() -> dict[str, Any]:
    return {"gridcolor": "#E4E7EB", "zeroline": False, "linecolor": "#9AA5B1"}


def yearly_bars(years: Sequence[int], values: Sequence[float], *, unit: str, colour: str) -> go.Figure:
    """One bar per year; long series get a tick every five years (every year on hover)."""
    years = [int(y) for y in years]
    step = 1 if len(years) <= 12 else 5
    return go.Figure(
        go.Bar(
            x=list(years),
            y=list(values),
            marker_color=colour,
            hovertemplate=f"%{{x}}: %{{y:,.0f}} {unit}<extra></extra>",
        ),
        _layout(
            xaxis={
                "tickmode": "linear",
                "tick0": min(years, default=2000) // step * step,
                "dtick": step,
                "tickformat": "d",
                "showgrid": False,
                "linecolor": "#9AA5B1",
            },
            yaxis={**_grid(), "tickformat": "~s", "title": {"text": unit.capitalize()}},
            bargap=0.15,
        ),
    )


def ranked_bars(
    labels: Sequence[str], values: Sequence[float], *, unit: str, colour: str, value_format: str = ",.0f"
) -> go.Figure:
    """Horizontal bars, largest at the top, value printed at the end of each bar."""
    return go.Figure(
        go.Bar(
            x=list(values),
            y=[shorten(label) for label in labels],
            customdata=list(labels),
            orientation="h",
            marker_color=colour,
            text=list(values),
            texttemplate=f"%{{x:{value_format}}}",
            textposition="outside",
            cliponaxis=False,
            hovertemplate=f"%{{customdata}}: %{{x:{value_format}}} {unit}<extra></extra>",
        ),
        _layout(
            xaxis={**_grid(), "tickformat": "~s", "showticklabels": False, "showgrid": False},
            yaxis={"autorange": "reversed", "ticks": "", "showgrid": False},
            margin={"r": 72},
            bargap=0.25,
        ),
    )


def shorten(label: str, limit: int = 26) -> str:
    """Long organisation names are cut on the chart (the table keeps them whole)."""
    return label if len(label) <= limit else label[: limit - 1].rstrip() + "…"


def world_map(
    alpha3: Sequence[str],
    values: Sequence[float],
    names: Sequence[str],
    *,
    unit: str,
    scale: list[list[Any]],
    log: bool = False,
    masked: Sequence[tuple[str, str]] = (),
    masked_text: str = "",
) -> go.Figure:
    """A world choropleth on ISO alpha-3 codes; ``log`` spreads very skewed counts out.

    ``masked`` countries (alpha-3, name) are drawn in one neutral colour with
    ``masked_text`` instead of a number, for counts too small to show exactly.
    """
    title = unit.capitalize()
    if log:
        colour_values = [math.log10(v) if v > 0 else 0.0 for v in values]
        low, high = math.floor(min(colour_values, default=0)), math.ceil(max(colour_values, default=1))
        high = max(high, low + 1)
        step = 1 if high - low <= 4 else 2  # few enough labels to stay horizontal on a phone
        ticks = list(range(low, high + 1, step))
        colorbar: dict[str, Any] = {"tickvals": ticks, "ticktext": [_si(10**t) for t in ticks]}
        z_range: dict[str, float] = {"zmin": low, "zmax": high}  # whole powers of ten: ticks show
        title += " (log scale)"
    else:
        colour_values = list(values)
        colorbar = {"tickformat": ",d", "dtick": _count_step(values)}
        z_range = {"zmin": 0, "zmax": max(max(values, default=1), 1)}
    colorbar.update(
        title={"text": title, "side": "top"},
        orientation="h",
        thickness=10,
        len=0.6,
        x=0.0,
        xanchor="left",
        y=0.0,
        yanchor="top",
        outlinewidth=0,
    )
    traces = [
        go.Choropleth(
            locations=list(alpha3),
            locationmode="ISO-3",
            z=colour_values,
            customdata=[[name, value] for name, value in zip(names, values, strict=True)],
            colorscale=scale,
            marker_line_color="#FFFFFF",
            marker_line_width=0.4,
            colorbar=colorbar,
            hovertemplate=f"%{{customdata[0]}}: %{{customdata[1]:,.0f}} {unit}<extra></extra>",
            **z_range,
        )
    ]
    if masked:
        traces.append(
            go.Choropleth(
                locations=[code for code, _ in masked],
                locationmode="ISO-3",
                z=[0] * len(masked),
                customdata=[[name] for _, name in masked],
                colorscale=[[0, MASKED_COLOUR], [1, MASKED_COLOUR]],
                showscale=False,
                marker_line_color="#FFFFFF",
                marker_line_width=0.4,
                hovertemplate=f"%{{customdata[0]}}: {masked_text}<extra></extra>",
            )
        )
    return go.Figure(
        traces,
        _layout(
            geo={
                "projection": {"type": "natural earth"},
                "showframe": False,
                "showcoastlines": False,
                "showland": True,
                "landcolor": "#EEF0F2",
                "showcountries": True,
                "countrycolor": "#FFFFFF",
                "lataxis": {"range": [-58, 85]},
                "bgcolor": "rgba(0,0,0,0)",
            },
            margin={"l": 0, "r": 0, "t": 0, "b": 56},
        ),
    )


def _quarter_ticks(quarters: Sequence[str]) -> dict[str, Any]:
    """A long run of quarters is labelled by year, at each first quarter (fits a phone)."""
    if len(quarters) <= 8:
        return {}
    firsts = [q for q in quarters if q.endswith("-Q1")]
    return {"tickmode": "array", "tickvals": firsts, "ticktext": [q.split("-")[0] for q in firsts]}


def _count_step(values: Sequence[float]) -> int | None:
    """Whole-number ticks for small counts (Plotly would put ticks at 0.5); auto otherwise."""
    return 1 if max(values, default=0) <= 8 else None


def _si(value: float) -> str:
    for size, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if value >= size:
            return f"{value / size:g}{suffix}"
    return f"{value:g}"


def dot_comparison(
    labels: Sequence[str],
    series: Sequence[tuple[str, Sequence[float | None], Sequence[str]]],
    *,
    unit: str,
) -> go.Figure:
    """One row per label, one marker per series (colour and shape differ, for colour-blind readers).

    ``series`` holds (name, values, hover notes) with values aligned to ``labels``.
    """
    traces = []
    for index, (name, values, notes) in enumerate(series):
        traces.append(
            go.Scatter(
                name=name,
                x=[None if _missing(v) else v for v in values],
                y=list(labels),
                customdata=list(notes),
                mode="markers",
                marker={
                    "color": YEAR_COLOURS[index % len(YEAR_COLOURS)],
                    "symbol": YEAR_SYMBOLS[index % len(YEAR_SYMBOLS)],
                    "size": 11,
                    "line": {"width": 1, "color": "#FFFFFF"},
                },
                hovertemplate=f"{name}, %{{y}}: %{{x:,.2f}} {unit}%{{customdata}}<extra></extra>",
            )
        )
    return go.Figure(
        traces,
        _layout(
            showlegend=True,
            legend={"orientation": "h", "y": 1.0, "x": 0, "yanchor": "bottom"},
            margin={"t": 32},
            xaxis={**_grid(), "title": {"text": unit.capitalize()}, "rangemode": "tozero"},
            yaxis={"autorange": "reversed", "showgrid": True, "gridcolor": "#F0F2F4"},
        ),
    )


def stacked_bars(
    categories: Sequence[str],
    stacks: Sequence[tuple[str, str, Sequence[float]]],
    *,
    unit: str,
) -> go.Figure:
    """Stacked vertical bars; ``stacks`` holds (label, colour, values aligned to categories)."""
    traces = [
        go.Bar(
            name=label,
            x=list(categories),
            y=list(values),
            marker_color=colour,
            hovertemplate=f"{label}, %{{x}}: %{{y:,.0f}} {unit}<extra></extra>",
        )
        for label, colour, values in stacks
    ]
    return go.Figure(
        traces,
        _layout(
            barmode="stack",
            showlegend=True,
            legend={"orientation": "h", "y": 1.0, "x": 0, "yanchor": "bottom", "traceorder": "normal"},
            margin={"t": 32},
            xaxis={
                "type": "category",
                "showgrid": False,
                "linecolor": "#9AA5B1",
                "tickangle": 0,
                **_quarter_ticks(categories),
            },
            yaxis={
                **_grid(),
                "tickformat": ",d",
                "dtick": _count_step(
                    [sum(column) for column in zip(*(v for _, _, v in stacks), strict=True)]
                ),
                "title": {"text": unit.capitalize()},
            },
            bargap=0.3,
        ),
    )


def graph(
    figure: go.Figure,
    *,
    label: str,
    size: str = "medium",
    rows: int | None = None,
    topojson_url: str | None = None,
) -> html.Div:
    """A responsive chart without mode bar; maps read from the hub's own assets.

    Screen readers get ``label`` (role img) instead of the SVG's parts; the numbers are in
    the table that follows every chart. ``rows`` sizes a chart with one row per item.
    """
    config: Any = {  # dcc.Graph's Config type lacks some of Plotly's keys
        "displayModeBar": False,
        "responsive": True,
        "scrollZoom": False,
        "doubleClick": False,
        "showTips": False,
    }
    if topojson_url:
        config["topojsonURL"] = topojson_url
    # dcc.Graph with responsive=True fills its parent (style height 100%), so the parent
    # carries the height: from the stylesheet (per screen size) or from the number of rows.
    sized: dict[str, Any] = {"style": {"height": f"{80 + 26 * rows}px"}} if rows else {}  # never None
    return html.Div(
        dcc.Graph(figure=figure, config=config, responsive=True, style={"height": "100%", "width": "100%"}),
        className=f"chart chart--{size}",
        role="img",
        **{"aria-label": label},  # type: ignore[arg-type]
        **sized,
    )


# --- tables and page pieces ---------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    """A table column: heading, how to get the cell text from a row, whether it is numeric."""

    heading: str
    cell: Callable[[Any], Any]  # text, or Dash components
    numeric: bool = False


def table(
    rows: Sequence[Any], columns: Sequence[Column], *, caption: str, class_name: str = ""
) -> html.Table:
    """An accessible HTML table (caption, column headers with scope, numbers right-aligned)."""
    head = html.Thead(
        html.Tr([html.Th(c.heading, scope="col", className="num" if c.numeric else None) for c in columns])
    )
    body = html.Tbody(
        [
            html.Tr([html.Td(c.cell(row), className="num" if c.numeric else None) for c in columns])
            for row in rows
        ]
    )
    return html.Table([html.Caption(caption), head, body], className=f"data-table {class_name}".strip())


def data_table(rows: Sequence[Any], columns: Sequence[Column], *, caption: str) -> html.Details:
    """The same numbers as a chart, folded under the chart."""
    return html.Details(
        [
            html.Summary("Show the figures as a table"),
            html.Div(table(rows, columns, caption=caption), className="table-scroll"),
        ],
        className="chart-table",
    )


def chart_block(
    title: str,
    *,
    chart: Any,
    source: str,
    table_rows: Sequence[Any],
    columns: Sequence[Column],
    note: str | None = None,
    subtitle: str | None = None,
    block_id: str | None = None,
) -> html.Figure:
    """A titled chart with its metric and source, an optional note and its data table."""
    parts: list[Any] = [html.H3(title, className="chart-title")]
    if subtitle:
        parts.append(html.P(subtitle, className="chart-subtitle"))
    parts.append(chart)
    caption: list[Any] = [html.Span(source, className="source")]
    if note:
        caption.append(html.Span(note, className="note"))
    parts.append(html.Figcaption(caption))
    parts.append(data_table(table_rows, columns, caption=f"{title}. {source}"))
    figure = html.Figure(parts, className="panel")
    if block_id:  # Dash 4 refuses id=None
        figure.id = block_id  # type: ignore[attr-defined]  # Dash sets props as attributes
    return figure


def empty_panel(title: str, message: str) -> html.Section:
    return html.Section(
        [html.H3(title, className="chart-title"), html.P(message, className="empty")], className="panel"
    )


def stat_card(value: str, label: str, detail: str | None = None) -> html.Div:
    parts: list[Any] = [html.P(value, className="stat-value"), html.P(label, className="stat-label")]
    if detail:
        parts.append(html.P(detail, className="stat-detail"))
    return html.Div(parts, className="stat-card")
