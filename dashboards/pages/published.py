"""The public pages built on a published release: overview, targets, takedown speed, victim
identification, and data and downloads.

Each page is a function of a :class:`PageContext` (the chosen release's data, the catalogue,
the validated URL filters) returning Dash components; the figures come from
:mod:`hub.public_views`, so nothing here computes a figure. A hidden cell is shown with the
release's own mark ("<10" for a small count of people, "x" for a cell hidden so that it
cannot be derived) and the reason in words.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import plotly.graph_objects as go
from dash import dcc, html

from dashboards import charts
from dashboards.charts import OKABE_ITO, Column, fmt_int, fmt_pct
from hub import public_views as views
from hub.catalogue import Catalogue
from hub.published import ReleaseData, ReleaseSummary
from hub.reconciliation import Flow
from hub.targets import TargetSpec

REASONS = {
    "primary": "fewer than 10 people: hidden to protect the children and people it counts",
    "secondary": "hidden so that a hidden figure cannot be worked out from totals",
    "dominance": "hidden: one or two organisations make up most of the total",
    "min_events": "hidden: rests on fewer than 10 events",
}
STATUS_LABELS = {
    "achieved": "Achieved",
    "on_track": "On track",
    "moderate_progress": "Moderate progress",
    "limited_progress": "Limited progress",
    "deterioration": "Deterioration",
    "not_achieved": "Not achieved",
    "insufficient_data": "Insufficient data",
}
SCOPES = {"alliance": "Alliance", "country": "Country", "stakeholder_type": "Stakeholder type"}
BREAKDOWN_LABELS = {
    views.ORGANISATION_COUNTRY: "Country of the organisation",
    "country": "Hosting country",
    "notice_source": "Notice source",
    "category": "Category",
}
METHOD_NOTE = (
    "Status follows the Open SDG / Statistics Canada progress measure: the ratio of the observed "
    "to the required compound annual growth; 0.95 or more is on track, 0.6 or more moderate "
    "progress, above 0 limited progress, 0 or less deterioration."
)


@dataclass(frozen=True)
class PageContext:
    """What a page is drawn from: one published release and the filters the URL asked for."""

    release: ReleaseSummary
    releases: Sequence[ReleaseSummary]
    data: ReleaseData
    catalogue: Catalogue
    targets: Sequence[TargetSpec]
    params: dict[str, str] = field(default_factory=dict)
    path: str = "/"
    flows: Sequence[Flow] = ()
    organisation_names: Mapping[str, str] = field(default_factory=dict)
    names_of: Callable[[Sequence[str]], dict[str, str]] = lambda codes: {}  # organisation names by code
    topojson_url: str = "/assets/"

    def link(self, path: str, **params: str) -> str:
        """A link keeping the chosen release (so a shared view shows the same figures)."""
        query = {"release": str(self.release.number), **{k: v for k, v in params.items() if v}}
        return f"{path}?{urlencode(query)}"


# --- formatting -------------------------------------------------------------------------------


def shown(figure: views.Figure | None, unit: str) -> str:
    """A published figure as text: the release's mark when hidden, else formatted by unit."""
    if figure is None:
        return charts.MISSING
    if figure.suppressed:
        return figure.display
    return format_value(figure.value, unit)


def format_value(value: float, unit: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return charts.MISSING
    if unit in ("share", "boolean"):  # a capability's figure is the share of reporters having it
        return fmt_pct(value * 100)
    if unit == "hours":
        return f"{value:,.1f} h" if value < 100 else f"{value:,.0f} h"
    return fmt_int(value)


def change_text(figure: views.Figure | None) -> str | None:
    if figure is None or figure.suppressed or math.isnan(figure.yoy_change):
        return None
    return f"{fmt_pct(figure.yoy_change * 100, signed=True)} on {int(figure.period[:4]) - 1}"


def hidden_note(figure: views.Figure | None) -> str | None:
    return REASONS.get(figure.reason) if figure is not None and figure.suppressed else None


def metric_name(ctx: PageContext, code: str) -> str:
    spec = ctx.catalogue.metrics.get(code)
    return spec.name if spec else code


def source_of(ctx: PageContext, code: str) -> str:
    spec = ctx.catalogue.metrics.get(code)
    definition = f"Metric: {spec.name} ({code})" if spec else f"Metric: {code}"
    return f"{definition}. Source: release {ctx.release.number} of the hub, alliance members' approved data."


def select(name: str, label: str, options: Sequence[tuple[str, str]], value: str) -> html.Div:
    """A labelled filter; its value goes into the URL (see dashboards.app). Nothing when there
    is nothing to choose from."""
    if not options:
        return html.Div(className="filter filter--empty")
    ident = {"type": "filter", "name": name}
    return html.Div(
        [
            # the label names the control Dash renders with the id as its JSON text
            html.Label(
                label,
                htmlFor=json.dumps(ident, sort_keys=True, separators=(",", ":")),
                className="filter-label",
            ),
            dcc.Dropdown(
                id=ident,
                options=[{"label": text, "value": code} for code, text in options],
                value=value,
                clearable=False,
                searchable=len(options) > 12,
                className="filter-select",
            ),
        ],
        className="filter",
        id=f"filter-{name}",
    )


def filters(ctx: PageContext, *extra: html.Div) -> html.Div:
    releases = [
        (str(r.number), f"Release {r.number}: {r.title}" + (" (latest)" if i == 0 else ""))
        for i, r in enumerate(ctx.releases)
    ]
    return html.Div(
        [select("release", "Release", releases, str(ctx.release.number)), *extra],
        className="filters",
        role="search",
    )


def page(
    title: str, intro: str, ctx: PageContext, *content: Any, controls: Sequence[html.Div] = ()
) -> html.Div:
    return html.Div(
        [
            html.H2(title, className="page-title", id="page-title"),
            html.P(intro, className="section-intro"),
            filters(ctx, *controls),
            *content,
        ]
    )


def _line(traces: Sequence[go.Scatter], unit: str) -> go.Figure:
    return go.Figure(
        list(traces),
        charts._layout(
            showlegend=True,
            legend={"orientation": "h", "y": 1.0, "x": 0, "yanchor": "bottom"},
            margin={"t": 32},
            xaxis={"tickformat": "d", "dtick": 1, "showgrid": False, "linecolor": "#9AA5B1"},
            yaxis={
                **charts._grid(),
                "tickformat": ".0%" if unit == "share" else "~s",
                "rangemode": "tozero",
                "title": {"text": "Share" if unit == "share" else unit.capitalize()},
            },
        ),
    )


FIGURE_COLUMNS = [
    Column("Year", lambda f: f.period),
    Column("Value", lambda f: f.shown, numeric=True),
    Column("Note", lambda f: f.note or ""),
]


@dataclass(frozen=True)
class _Row:
    period: str
    shown: str
    note: str | None


def _rows(figures: Sequence[views.Figure], unit: str) -> list[_Row]:
    return [
        _Row(
            f.period,
            shown(f, unit),
            hidden_note(f) or ("provisional" if f.provisional else None),
        )
        for f in figures
    ]


# --- overview ---------------------------------------------------------------------------------


def overview(ctx: PageContext) -> html.Div:
    cards = []
    for headline in views.headlines(ctx.data):
        latest = headline.latest
        detail = " · ".join(
            part
            for part in (latest.period if latest else None, change_text(latest), hidden_note(latest))
            if part
        )
        cards.append(
            html.Div(
                [
                    html.P(shown(latest, headline.unit), className="stat-value"),
                    html.P(headline.label, className="stat-label"),
                    html.P(detail or "not published in this release", className="stat-detail"),
                    _sparkline(headline),
                ],
                className="stat-card",
            )
        )
    statuses = views.target_table(ctx.data)
    status_cards = [
        html.Li(
            [
                html.Span(
                    STATUS_LABELS.get(str(row.status), str(row.status)),
                    className=f"status status--{row.status}",
                ),
                html.A(str(row.name), href=ctx.link("/targets", target=str(row.code))),
            ],
            className="status-item",
        )
        for row in statuses.itertuples(index=False)
    ]
    return page(
        "Overview",
        f"The alliance's figures as published in release {ctx.release.number} ({ctx.release.title}). "
        "Every figure is approved by the secretariat and disclosure-controlled before it is published.",
        ctx,
        html.Section(cards, className="cards cards--3", **{"aria-label": "Headline figures"}),  # type: ignore[arg-type]
        html.Section(
            [
                html.H3("Targets", className="chart-title"),
                html.P(METHOD_NOTE, className="chart-subtitle"),
                html.Ul(status_cards, className="status-list"),
            ],
            className="panel",
        ),
        _changes(ctx),
    )


def _sparkline(headline: views.Headline) -> Any:
    points = [f for f in headline.series if not math.isnan(f.value)][-10:]
    if len(points) < 2:
        return html.Span()
    figure = go.Figure(
        go.Scatter(
            x=[f.period for f in points],
            y=[f.value for f in points],
            mode="lines+markers",
            line={"color": OKABE_ITO["blue"], "width": 2},
            marker={"size": 4},
            hoverinfo="skip",
        ),
        charts._layout(
            margin={"l": 0, "r": 0, "t": 4, "b": 0},
            xaxis={"visible": False, "type": "category"},
            yaxis={"visible": False},
            height=48,
        ),
    )
    label = f"{headline.label}, {points[0].period} to {points[-1].period}: " + ", ".join(
        shown(f, headline.unit) for f in points
    )
    return html.Div(
        dcc.Graph(
            figure=figure, config={"staticPlot": True, "displayModeBar": False}, style={"height": "48px"}
        ),
        className="sparkline",
        role="img",
        **{"aria-label": label},  # type: ignore[arg-type]
    )


def _changes(ctx: PageContext) -> html.Section:
    revisions = ctx.data.table("revisions")
    title = html.H3("What changed since the previous release", className="chart-title")
    if ctx.release.previous is None or revisions.empty:
        text = (
            "This is the first published release."
            if ctx.release.previous is None
            else f"No figure changed since release {ctx.release.previous}."
        )
        return html.Section([title, html.P(text, className="empty")], className="panel")
    counts = revisions.groupby(["reason", "change"]).size().reset_index(name="figures")
    columns = [
        Column("Reason", lambda r: str(r.reason).replace("_", " ")),
        Column("Change", lambda r: str(r.change)),
        Column("Figures", lambda r: fmt_int(r.figures), numeric=True),
    ]
    return html.Section(
        [
            title,
            charts.table(
                list(counts.itertuples(index=False)),
                columns,
                caption=f"Changes from release {ctx.release.previous} to release {ctx.release.number}",
            ),
            html.P(html.A("The full revisions log", href=ctx.link("/data")), className="source"),
        ],
        className="panel",
    )


# --- targets ------------------------------------------------------------------------------------


def targets(ctx: PageContext) -> html.Div:
    scope = ctx.params.get("scope", "")
    table = views.target_table(ctx.data, scope or None)
    chosen = ctx.params.get("target", "")
    specs = {spec.code: spec for spec in ctx.targets}
    blocks: list[Any] = []
    for row in table.itertuples(index=False):
        if chosen and row.code != chosen:
            continue
        spec = specs.get(str(row.code))
        blocks.append(_target_block(ctx, row, spec))
    scopes = [("", "All scopes"), *[(code, text) for code, text in SCOPES.items()]]
    options = [("", "All targets"), *[(str(r.code), str(r.name)) for r in table.itertuples(index=False)]]
    return page(
        "Targets",
        "Each target with its baseline, the path it requires, the published values and its status. "
        + METHOD_NOTE,
        ctx,
        *(blocks or [charts.empty_panel("No target", "No target matches these filters.")]),
        controls=[
            select("scope", "Scope", scopes, scope),
            select("target", "Target", options, chosen if chosen in {o[0] for o in options} else ""),
        ],
    )


def _target_block(ctx: PageContext, row: Any, spec: TargetSpec | None) -> html.Figure:
    unit = (
        "share"
        if str(row.statistic) == "share_within"
        else ("hours" if str(row.statistic) == "percentile" else "count")
    )
    status = STATUS_LABELS.get(str(row.status), str(row.status))
    parts: list[Any] = [
        html.H3(str(row.name), className="chart-title", id=f"target-{row.code}"),
        html.P(
            [html.Span(status, className=f"status status--{row.status}"), " ", str(row.explanation)],
            className="chart-subtitle",
        ),
    ]
    if spec is not None:
        path = views.target_path(ctx.data, spec)
        yearly = path.actual.loc[path.actual["period_kind"] == "year"]
        traces = [
            go.Scatter(
                name="Published",
                x=[int(p) for p in yearly["period"]],
                y=[None if math.isnan(v) else v for v in yearly["value"]],
                mode="lines+markers",
                line={"color": OKABE_ITO["blue"], "width": 3},
                marker={"symbol": "circle", "size": 8},
            )
        ]
        if not path.required.empty:
            traces.append(
                go.Scatter(
                    name="Required path",
                    x=[int(y) for y in path.required["year"]],
                    y=list(path.required["value"]),
                    mode="lines",
                    line={"color": OKABE_ITO["vermillion"], "dash": "dash", "width": 2},
                )
            )
        parts.append(
            charts.graph(_line(traces, unit), label=f"{row.name}: published values and required path")
        )
        table_rows = [
            _Row(str(p), format_value(v, unit), "hidden or not reported" if math.isnan(v) else None)
            for p, v in zip(yearly["period"], yearly["value"], strict=True)
        ]
        parts.append(charts.data_table(table_rows, FIGURE_COLUMNS, caption=str(row.name)))
    facts = [
        ("Baseline", f"{format_value(row.baseline_value, unit)} ({row.baseline_period})"),
        ("Target", f"{format_value(row.target_value, unit)} by {row.target_year}"),
        ("Latest", f"{format_value(row.latest_value, unit)} ({row.latest_period or 'none'})"),
        ("Scope", str(row.scope)),
    ]
    parts.append(html.Dl([item for k, v in facts for item in (html.Dt(k), html.Dd(v))], className="facts"))
    parts.append(html.Figcaption(html.Span(source_of(ctx, str(row.metric)), className="source")))
    return html.Figure(parts, className="panel")


# --- takedown speed -------------------------------------------------------------------------


def takedown(ctx: PageContext) -> html.Div:
    metric = ctx.params.get("metric") or views.TAKEDOWN_METRICS[0]
    metric = metric if metric in views.TAKEDOWN_METRICS else views.TAKEDOWN_METRICS[0]
    periods = views.takedown_periods(ctx.data, metric)
    metric_options = [(m, metric_name(ctx, m)) for m in views.TAKEDOWN_METRICS]
    if not periods:
        return page(
            "Takedown speed",
            "",
            ctx,
            charts.empty_panel("No figures", "This release has none."),
            controls=[select("metric", "Measure", metric_options, metric)],
        )
    period = ctx.params.get("period") if ctx.params.get("period") in periods else periods[0]
    breakdowns = views.takedown_breakdowns(ctx.data, metric) or [views.ORGANISATION_COUNTRY]
    by = ctx.params.get("by") if ctx.params.get("by") in breakdowns else breakdowns[0]
    result = views.takedown(ctx.data, ctx.catalogue.buckets, metric, str(period), str(by))
    cards = [
        charts.stat_card(shown(result.events, "count"), "Notices or items timed", str(period)),
        *[
            charts.stat_card(shown(fig, "share"), f"Removed within {_hours(h)}", hidden_note(fig))
            for h, fig in result.shares
        ],
        *[
            charts.stat_card(
                shown(fig, "hours"),
                "Median" if q == 0.5 else "90th percentile",
                _bounds(fig),
            )
            for q, fig in result.quantiles
        ],
    ]
    hist = result.histogram
    bars = go.Figure(
        go.Bar(
            x=list(hist["time_bucket"]),
            y=[None if s else v for v, s in zip(hist["events"], hist["suppressed"], strict=True)],
            marker_color=OKABE_ITO["blue"],
            hovertemplate="%{x}: %{y:,.0f}<extra></extra>",
        ),
        charts._layout(
            xaxis={"type": "category", "title": {"text": "Time from notice to takedown"}},
            yaxis={**charts._grid(), "tickformat": "~s", "title": {"text": "Count"}},
        ),
    )
    hist_columns = [
        Column("Time to takedown", lambda r: r.time_bucket),
        Column("Count", lambda r: r.display if r.suppressed else fmt_int(r.events), numeric=True),
    ]
    trend = result.trend
    trend_fig = _line(
        [
            go.Scatter(
                name="Median (hours)",
                x=[int(p) for p in trend["period"]],
                y=list(trend["median"]),
                mode="lines+markers",
                line={"color": OKABE_ITO["blue"]},
            ),
            go.Scatter(
                name="90th percentile (hours)",
                x=[int(p) for p in trend["period"]],
                y=list(trend["p90"]),
                mode="lines+markers",
                line={"color": OKABE_ITO["orange"], "dash": "dot"},
                marker={"symbol": "diamond"},
            ),
        ],
        "hours",
    )
    trend_columns = [
        Column("Year", lambda r: r.period),
        Column("Median", lambda r: format_value(r.median, "hours"), numeric=True),
        Column("90th percentile", lambda r: format_value(r.p90, "hours"), numeric=True),
        Column("Within 72 h", lambda r: format_value(r.share72, "share"), numeric=True),
    ]
    breakdown_columns = [
        Column(BREAKDOWN_LABELS.get(str(by), str(by)), lambda r: str(r.group)),
        Column("Timed", lambda r: _cell(r.events, r.events_display, "count"), numeric=True),
        Column("Within 72 h", lambda r: _cell(r.share72, r.share72_display, "share"), numeric=True),
        Column("Median", lambda r: _cell(r.median, r.median_display, "hours"), numeric=True),
    ]
    source = source_of(ctx, metric)
    return page(
        "Takedown speed",
        "How long abuse material stays online after a notice: the whole distribution on the hub's "
        "common time buckets, the shares removed within 24 hours, 72 hours and 7 days (exact on bucket "
        "edges) and the median and 90th percentile (interpolated within a bucket: the range shows the "
        "bucket's bounds).",
        ctx,
        html.Section(cards, className="cards cards--3"),
        charts.chart_block(
            f"Time to takedown, {period}",
            chart=charts.graph(bars, label=f"Histogram of time to takedown, {period}"),
            source=source,
            table_rows=list(hist.itertuples(index=False)),
            columns=hist_columns,
            note="not_actioned: still online or not confirmed removed at the end of the period.",
            block_id="takedown-histogram",
        ),
        charts.chart_block(
            "Median and 90th percentile over time",
            chart=charts.graph(trend_fig, label="Median and 90th percentile time to takedown by year"),
            source=source,
            table_rows=list(trend.itertuples(index=False)),
            columns=trend_columns,
        ),
        html.Section(
            [
                html.H3(
                    f"By {BREAKDOWN_LABELS.get(str(by), str(by)).lower()}, {period}", className="chart-title"
                ),
                html.Div(
                    charts.table(
                        list(result.breakdown.itertuples(index=False)),
                        breakdown_columns,
                        caption=f"{metric_name(ctx, metric)}, {period}",
                    ),
                    className="table-scroll",
                ),
                html.P(source, className="source"),
            ],
            className="panel",
        ),
        controls=[
            select("metric", "Measure", metric_options, metric),
            select("period", "Year", [(p, p) for p in periods], str(period)),
            select("by", "Breakdown", [(b, BREAKDOWN_LABELS.get(b, b)) for b in breakdowns], str(by)),
        ],
    )


def _hours(hours: float) -> str:
    return "7 days" if hours == 168 else f"{hours:g} hours"


def _bounds(figure: views.Figure | None) -> str | None:
    if figure is None or figure.suppressed:
        return hidden_note(figure)
    if math.isnan(figure.lower) or math.isnan(figure.upper):
        return None
    return f"between {format_value(figure.lower, 'hours')} and {format_value(figure.upper, 'hours')}"


def _cell(value: float, display: Any, unit: str) -> str:
    if isinstance(value, float) and math.isnan(value):
        return str(display) if isinstance(display, str) and display else charts.MISSING
    return format_value(value, unit)


# --- victim identification ----------------------------------------------------------------


def victims(ctx: PageContext) -> html.Div:
    metric = ctx.params.get("metric") or views.VICTIM_METRICS[0]
    metric = metric if metric in views.VICTIM_METRICS else views.VICTIM_METRICS[0]
    series = views.alliance_years(ctx.data, metric)
    path = views.growth_path(series)
    figures = _figures_of(series)
    periods = views.metric_periods(ctx.data, metric, level="country")
    period = (
        ctx.params.get("period") if ctx.params.get("period") in periods else (periods[0] if periods else "")
    )
    traces = [
        go.Bar(
            name="Identified (published)",
            x=list(series["period"]),
            y=[None if s else v for v, s in zip(series["value"], series["suppressed"], strict=True)],
            marker_color=OKABE_ITO["bluish_green"],
        ),
        go.Scatter(
            name="+10% a year from the first year",
            x=list(path["period"]),
            y=list(path["value"]),
            mode="lines",
            line={"color": OKABE_ITO["vermillion"], "dash": "dash"},
        ),
    ]
    growth = go.Figure(
        traces,
        charts._layout(
            showlegend=True,
            legend={"orientation": "h", "y": 1.0, "x": 0, "yanchor": "bottom"},
            margin={"t": 32},
            xaxis={"type": "category"},
            yaxis={**charts._grid(), "tickformat": "~s", "title": {"text": "Children"}},
        ),
    )
    countries = views.country_cells(ctx.data, metric, period) if period else None
    country_columns = [
        Column("Country", lambda r: f"{_country_name(r.entity)} ({r.entity})"),
        Column("Identified", lambda r: r.display if r.suppressed else fmt_int(r.value), numeric=True),
        Column("Note", lambda r: REASONS.get(str(r.suppression_reason), "") if r.suppressed else ""),
    ]
    blocks: list[Any] = [
        charts.chart_block(
            f"{metric_name(ctx, metric)}, alliance, by year",
            chart=charts.graph(growth, label=f"{metric_name(ctx, metric)} by year against +10% a year"),
            source=source_of(ctx, metric),
            table_rows=_rows(figures, "count"),
            columns=FIGURE_COLUMNS,
            note="The Global Alliance's goal: 10% more identified victims every year.",
            block_id="victims-growth",
        )
    ]
    if countries is not None and not countries.empty:
        blocks.append(
            html.Section(
                [
                    html.H3(f"By country of the reporting agency, {period}", className="chart-title"),
                    html.P(
                        "“<10”: fewer than 10 children, not shown so that no child can be recognised. "
                        "“x”: hidden so that a “<10” cannot be worked out from the totals.",
                        className="chart-subtitle",
                    ),
                    html.Div(
                        charts.table(
                            list(countries.itertuples(index=False)),
                            country_columns,
                            caption=f"{metric_name(ctx, metric)} by country, {period}",
                        ),
                        className="table-scroll",
                    ),
                    html.P(source_of(ctx, metric), className="source"),
                ],
                className="panel",
                id="victims-by-country",
            )
        )
    return page(
        "Victim identification",
        "Children identified as victims by law enforcement, and the Global Alliance's goal of 10% more "
        "every year. Small counts are never published: they could identify a child.",
        ctx,
        *blocks,
        controls=[
            select("metric", "Measure", [(m, metric_name(ctx, m)) for m in views.VICTIM_METRICS], metric),
            select("period", "Year (countries)", [(p, p) for p in periods], str(period)),
        ],
    )


def _figures_of(series: Any) -> list[views.Figure]:
    return [
        views.Figure(
            str(r.period),
            float(r.value),
            str(r.display),
            bool(r.suppressed),
            str(r.suppression_reason),
            bool(r.provisional),
            float(r.yoy_change),
        )
        for r in series.itertuples(index=False)
    ]


def _country_name(code: str) -> str:
    from hub.countries import country_name  # the country list is loaded once, on first use

    try:
        return country_name(code)
    except (KeyError, LookupError, ValueError):
        return code


# --- data and downloads -----------------------------------------------------------------------


DOWNLOAD_FORMATS = ("csv", "xlsx", "json")


def downloads(ctx: PageContext) -> html.Div:
    rows = sorted(ctx.data.table_rows.items())
    columns = [
        Column("Table", lambda r: r[0]),
        Column("Rows", lambda r: fmt_int(r[1]), numeric=True),
        Column(
            "Download",
            lambda r: html.Span(
                [
                    html.A(
                        fmt.upper(),
                        href=f"/download/{ctx.release.number}/{r[0]}.{fmt}",
                        className="download-link",
                        **{"aria-label": f"{r[0]} as {fmt.upper()}"},  # type: ignore[arg-type]
                    )
                    for fmt in DOWNLOAD_FORMATS
                    if not (r[0] == "indicators" and fmt == "xlsx")
                ]
            ),
        ),
    ]
    definitions = views.metric_definitions(ctx.catalogue, ctx.data.metrics)
    definition_columns = [
        Column(
            "Metric", lambda r: html.Span([html.Strong(r.name), html.Span(r.metric, className="cell-note")])
        ),
        Column("Definition", lambda r: r.definition),
        Column("Unit", lambda r: r.unit),
        Column("Combination rule", lambda r: r.combination.replace("_", " ")),
        Column("Source", lambda r: r.source),
    ]
    notices = [
        html.Li([html.Strong(n.created_at.strftime("%d %B %Y")), " ", n.text]) for n in ctx.data.notices
    ]
    report_links = html.Ul(
        [
            html.Li(
                html.A(
                    f"Alliance transparency report {year} (PDF)",
                    href=f"/reports/{ctx.release.number}/alliance-{year}.pdf",
                    className="download-link",
                )
            )
            for year in views.report_years(ctx.data)
        ]
    )
    revisions = ctx.data.table("revisions")
    summary = ctx.release
    return page(
        "Data and downloads",
        "Every published table of the release, as CSV, XLSX and JSON, with each metric's definition. "
        "Hidden cells carry their mark and reason; nothing hidden is in any file.",
        ctx,
        html.Section(
            [
                html.H3(f"Release {summary.number}: {summary.title}", className="chart-title"),
                html.P(
                    f"Published {summary.published_at:%d %B %Y}. Content checksum (SHA-256): "
                    f"{summary.content_checksum}"
                    if summary.published_at
                    else "",
                    className="chart-subtitle checksum",
                ),
                html.Div(
                    charts.table(rows, columns, caption="Tables of the release"), className="table-scroll"
                ),
                html.P(
                    "The indicators table is too large for a spreadsheet (over a million rows): take the CSV "
                    "or JSON.",
                    className="source",
                ),
            ],
            className="panel",
            id="release-tables",
        ),
        html.Section(
            [
                html.H3("Reports (PDF)", className="chart-title"),
                html.P(
                    "The alliance's transparency report for each year of the release; each country's "
                    "profile is on its page under Countries.",
                    className="chart-subtitle",
                ),
                report_links,
            ],
            className="panel",
            id="release-reports",
        ),
        html.Section(
            [
                html.H3("Correction notices", className="chart-title"),
                html.Ul(notices) if notices else html.P("No correction notice.", className="empty"),
                html.H3("Revisions log", className="chart-title"),
                html.P(
                    f"{fmt_int(len(revisions))} figures changed against release {summary.previous}."
                    if summary.previous
                    else "The first release: nothing to compare with.",
                    className="chart-subtitle",
                ),
            ],
            className="panel",
        ),
        html.Section(
            [
                html.H3("Metric definitions", className="chart-title"),
                html.Div(
                    charts.table(
                        list(definitions.itertuples(index=False)),
                        definition_columns,
                        caption="Metrics published in this release",
                    ),
                    className="table-scroll",
                ),
            ],
            className="panel",
            id="definitions",
        ),
    )


PAGES: dict[str, tuple[str, Callable[[PageContext], html.Div]]] = {
    "/": ("Overview", overview),
    "/targets": ("Targets", targets),
    "/takedown": ("Takedown speed", takedown),
    "/victims": ("Victim identification", victims),
    "/data": ("Data and downloads", downloads),
}
