"""The public pages that explore a published release: volumes, flows between stakeholder
types, countries (a map and a profile per country) and named organisations (a page each).

Like dashboards.pages.published, every figure comes from hub.public_views; hidden cells keep
their mark. An organisation's own page exists only for organisations the release names (they
consented, or publish their figures themselves): the release holds no other organisation's
figures, so no URL can reach one.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

import plotly.graph_objects as go
from dash import dcc, html

from dashboards import charts
from dashboards.charts import OKABE_ITO, Column, fmt_int, stakeholder_label
from dashboards.pages.published import (
    REASONS,
    PageContext,
    format_value,
    metric_name,
    page,
    select,
    source_of,
)
from hub import public_views as views
from hub.countries import alpha3_codes, country_names
from hub.queries import NCMEC

ISO = re.compile(r"[A-Z]{2}")
SLUG = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")
MAP_METRICS = (
    "ht_notices_sent",
    "ch_reports_received",
    "co_items_actioned",
    "le_victims_identified",
    "le_referrals_received",
    "ht_reports_received",
)
SOURCE_VIEWS = {"counterpart": "per provider", "country": "per country"}


def _value_text(value: float, display: Any, suppressed: bool, unit: str = "count") -> str:
    if suppressed or (isinstance(value, float) and math.isnan(value)):
        return str(display) if isinstance(display, str) and display else charts.MISSING
    return format_value(float(value), unit)


def _yoy(value: float) -> str:
    return charts.MISSING if value is None or math.isnan(value) else charts.fmt_pct(value * 100, signed=True)


def _unit(ctx: PageContext, metric: str) -> str:
    spec = ctx.catalogue.metrics.get(metric)
    return spec.unit if spec else "count"


def _nth(index: int) -> Callable[[Any], str]:
    return lambda row: row[1][index]


def _year_columns(years: list[str]) -> list[Column]:
    """A metric column, then one column per year (rows are (metric name, texts per year))."""
    return [
        Column("Metric", lambda row: row[0]),
        *(Column(y, _nth(i), numeric=True) for i, y in enumerate(years)),
    ]


def _metric_year_rows(
    ctx: PageContext, figures: Any, metrics: list[str], years: list[str]
) -> list[tuple[str, list[str]]]:
    """One row per metric (its name, then its figure in each year, hidden ones with their
    mark), for the tables of _year_columns."""
    rows = []
    for metric in metrics:
        cells = figures.loc[figures["metric"] == metric].set_index("period")
        unit = _unit(ctx, metric)
        texts = [
            _value_text(
                cells.loc[y, "value"], cells.loc[y, "display"], bool(cells.loc[y, "suppressed"]), unit
            )
            if y in cells.index
            else charts.MISSING
            for y in years
        ]
        rows.append((metric_name(ctx, metric), texts))
    return rows


# --- volumes ------------------------------------------------------------------------------


def volumes(ctx: PageContext) -> html.Div:
    present = [m for m in views.VOLUME_METRICS if m in ctx.data.metrics] or list(views.VOLUME_METRICS)
    metric = ctx.params.get("metric") if ctx.params.get("metric") in views.VOLUME_METRICS else present[0]
    assert metric is not None
    series = views.alliance_years(ctx.data, metric)
    bars = go.Figure(
        go.Bar(
            x=[int(p) for p in series["period"]],
            y=[None if s else v for v, s in zip(series["value"], series["suppressed"], strict=True)],
            marker_color=OKABE_ITO["blue"],
            hovertemplate="%{x}: %{y:,.0f}<extra></extra>",
        ),
        charts._layout(
            xaxis={"tickformat": "d", "showgrid": False},
            yaxis={**charts._grid(), "tickformat": "~s", "title": {"text": "Count"}},
        ),
    )
    year_columns = [
        Column("Year", lambda r: r.period),
        Column("Value", lambda r: _value_text(r.value, r.display, r.suppressed), numeric=True),
        Column("Change on the year before", lambda r: _yoy(r.yoy_change), numeric=True),
        Column("Organisations", lambda r: fmt_int(r.coverage), numeric=True),
    ]
    blocks: list[Any] = [
        charts.chart_block(
            f"{metric_name(ctx, metric)}, alliance, by year",
            chart=charts.graph(bars, label=f"{metric_name(ctx, metric)} by year"),
            source=source_of(ctx, metric),
            table_rows=list(series.itertuples(index=False)),
            columns=year_columns,
            block_id="volume-years",
        )
    ]
    by_source = views.by_dimension(ctx.data, metric, "notice_source")
    if not by_source.empty:
        blocks.append(_stacked(ctx, metric, by_source, "notice source", "volume-sources"))
    by_type = views.by_stakeholder_type(ctx.data, metric)
    if not by_type.empty:
        blocks.append(
            _stacked(
                ctx, metric, by_type.rename(columns={"entity": "group"}), "stakeholder type", "volume-types"
            )
        )
    blocks.append(_source_series(ctx))
    return page(
        "Volumes",
        "How many reports, notices and items the alliance's members handled, by year, by the source of "
        "the notice and by stakeholder type, and the real published series of the US clearinghouse "
        "NCMEC.",
        ctx,
        *blocks,
        controls=[
            select("metric", "Measure", [(m, metric_name(ctx, m)) for m in views.VOLUME_METRICS], metric)
        ],
    )


def _stacked(ctx: PageContext, metric: str, frame: Any, what: str, block_id: str) -> html.Figure:
    groups = sorted({str(g) for g in frame["group"]})
    periods = sorted({str(p) for p in frame["period"]})
    colours = list(OKABE_ITO.values())
    traces = []
    for index, group in enumerate(groups):
        part = frame.loc[frame["group"] == group].set_index("period")
        label = stakeholder_label(group) if what == "stakeholder type" else group.replace("_", " ")
        traces.append(
            go.Bar(
                name=label,
                x=[int(p) for p in periods],
                y=[
                    None
                    if p not in part.index or bool(part.loc[p, "suppressed"])
                    else float(part.loc[p, "value"])
                    for p in periods
                ],
                marker_color=colours[index % len(colours)],
            )
        )
    figure = go.Figure(
        traces,
        charts._layout(
            barmode="stack",
            showlegend=True,
            legend={"orientation": "h", "y": 1.0, "x": 0, "yanchor": "bottom"},
            margin={"t": 40},
            xaxis={"tickformat": "d", "dtick": 1, "showgrid": False},
            yaxis={**charts._grid(), "tickformat": "~s"},
        ),
    )
    columns = [
        Column("Year", lambda r: r.period),
        Column(what.capitalize(), lambda r: str(r.group).replace("_", " ")),
        Column("Value", lambda r: _value_text(r.value, r.display, r.suppressed), numeric=True),
    ]
    return charts.chart_block(
        f"{metric_name(ctx, metric)} by {what}",
        chart=charts.graph(figure, label=f"{metric_name(ctx, metric)} by {what} and year"),
        source=source_of(ctx, metric),
        table_rows=list(frame.itertuples(index=False)),
        columns=columns,
        note="Hidden figures are left out of the bars and marked in the table.",
        block_id=block_id,
    )


def _source_series(ctx: PageContext) -> Any:
    view = ctx.params.get("by") if ctx.params.get("by") in SOURCE_VIEWS else "counterpart"
    assert view is not None
    periods = views.source_periods(ctx.data, NCMEC, "ch_reports_received", view)
    if not periods:
        return charts.empty_panel("NCMEC CyberTipline reports", "This release holds no per-provider series.")
    period = ctx.params.get("period") if ctx.params.get("period") in periods else periods[0]
    assert period is not None
    rows = views.source_breakdown(ctx.data, NCMEC, "ch_reports_received", view, period)
    # NCMEC's own published series name providers that publish their own figures (public)
    names = country_names() if view == "country" else ctx.names_of(list(rows["group"].astype(str)))
    top = rows.head(15)
    labels = [charts.shorten(names.get(str(g), str(g))) for g in top["group"]]
    figure = charts.ranked_bars(labels, list(top["value"]), unit="reports", colour=charts.PUBLIC_COLOUR)
    columns = [
        Column("Rank", lambda r: str(r[0] + 1), numeric=True),
        Column(
            "Provider" if view == "counterpart" else "Country",
            lambda r: names.get(str(r[1].group), str(r[1].group)),
        ),
        Column("Reports", lambda r: _value_text(r[1].value, r[1].display, r[1].suppressed), numeric=True),
    ]
    return html.Div(
        [
            html.Div(
                [
                    select(
                        "by", "NCMEC series", [(k, f"Reports {v}") for k, v in SOURCE_VIEWS.items()], view
                    ),
                    select("period", "Year", [(p, p) for p in periods], period),
                ],
                className="filters",
            ),
            charts.chart_block(
                f"NCMEC CyberTipline reports {SOURCE_VIEWS[view]}, {period}: the 15 largest",
                chart=charts.graph(
                    figure, label=f"CyberTipline reports {SOURCE_VIEWS[view]}, {period}", rows=len(top)
                ),
                source="Source: NCMEC, CyberTipline reports by electronic service provider and by country, "
                "as published; in the release as NCMEC's own figures.",
                table_rows=list(enumerate(rows.itertuples(index=False))),
                columns=columns,
                block_id="ncmec-series",
            ),
        ]
    )


# --- flows ----------------------------------------------------------------------------------


def flows(ctx: PageContext) -> html.Div:
    periods = views.reconciliation_periods(ctx.data)
    if not periods:
        return page(
            "Flows", "", ctx, charts.empty_panel("No flows", "This release has no reconciliation table.")
        )
    period = ctx.params.get("period") if ctx.params.get("period") in periods else periods[0]
    assert period is not None
    table = views.flows(ctx.data, period)
    table = table.loc[table["period_kind"].astype(str) == "year"]
    names = {flow.code: flow.name for flow in ctx.flows}
    types = {flow.code: (flow.sender_types, flow.receiver_types) for flow in ctx.flows}
    links = views.sankey_links(table, types)
    nodes = sorted({*links["source"], *links["target"]})
    index = {name: i for i, name in enumerate(nodes)}

    def node_label(name: str) -> str:
        return " and ".join(stakeholder_label(part) for part in name.split("+"))

    sankey = go.Figure(
        go.Sankey(
            node={
                "label": [node_label(n) for n in nodes],
                "color": [charts.STAKEHOLDER_COLOURS.get(n.split("+")[0], OKABE_ITO["black"]) for n in nodes],
                "pad": 18,
                "thickness": 16,
            },
            link={
                "source": [index[s] for s in links["source"]],
                "target": [index[t] for t in links["target"]],
                "value": list(links["value"]),
                "label": [names.get(f, f) for f in links["flow"]],
                "color": "rgba(86,180,233,0.45)",
            },
            valueformat=",.0f",
        ),
        charts._layout(margin={"l": 8, "r": 8, "t": 8, "b": 8}),
    )
    columns = [
        Column("Flow", lambda r: names.get(str(r.flow), str(r.flow))),
        Column(
            "Counted by senders", lambda r: _value_text(r.total_sent, "x", bool(r.suppressed)), numeric=True
        ),
        Column(
            "Counted by receivers",
            lambda r: _value_text(r.total_received, "x", bool(r.suppressed)),
            numeric=True,
        ),
        Column("Gap", lambda r: _value_text(r.gap, "x", bool(r.suppressed)), numeric=True),
        Column("Gap (%)", lambda r: _yoy(r.relative_gap), numeric=True),
        Column("Pairs compared", lambda r: fmt_int(r.pairs_compared), numeric=True),
        Column("Pairs outside tolerance", lambda r: fmt_int(r.pairs_discrepant), numeric=True),
    ]
    return page(
        "Flows",
        "Notices, reports and referrals between stakeholder types, as the senders counted them, and how "
        "far the two ends' counts of the same flow differ. A difference is information for the "
        "secretariat, not an error: ends count at different moments and by different rules.",
        ctx,
        charts.chart_block(
            f"Flows between stakeholder types, {period}",
            chart=charts.graph(
                sankey, label=f"Sankey diagram of flows between stakeholder types, {period}", size="tall"
            ),
            source=f"Source: release {ctx.release.number} of the hub, reconciliation of what each end reported.",
            table_rows=list(table.itertuples(index=False)),
            columns=columns[:2],
            block_id="flows-sankey",
        ),
        html.Section(
            [
                html.H3(f"Where the two ends count differently, {period}", className="chart-title"),
                html.Div(
                    charts.table(
                        list(table.itertuples(index=False)), columns, caption=f"Reconciliation, {period}"
                    ),
                    className="table-scroll",
                ),
                html.P(
                    "A pair is one sender and one receiver; within tolerance means a gap of at most 5% or 10 "
                    "items. Totals resting on fewer than 3 pairs are hidden (they would show one "
                    "organisation's figures).",
                    className="source",
                ),
            ],
            className="panel",
            id="reconciliation",
        ),
        controls=[select("period", "Year", [(p, p) for p in periods], period)],
    )


# --- countries ------------------------------------------------------------------------------


def countries(ctx: PageContext) -> html.Div:
    iso = ctx.params.get("country", "")
    if iso:
        return country_profile(ctx, iso)
    metric = ctx.params.get("metric") if ctx.params.get("metric") in MAP_METRICS else MAP_METRICS[0]
    assert metric is not None
    periods = views.metric_periods(ctx.data, metric, level="country")
    period = (
        ctx.params.get("period") if ctx.params.get("period") in periods else (periods[0] if periods else "")
    )
    assert period is not None
    cells = views.country_cells(ctx.data, metric, period) if period else None
    names = country_names()
    alpha3 = alpha3_codes()
    controls = [
        select("metric", "Measure", [(m, metric_name(ctx, m)) for m in MAP_METRICS], metric),
        select("period", "Year", [(p, p) for p in periods], period),
    ]
    if cells is None or cells.empty:
        return page(
            "Countries",
            "",
            ctx,
            charts.empty_panel("No figures", "No country figures for this choice."),
            controls=controls,
        )
    shown_cells = cells.loc[~cells["suppressed"] & cells["entity"].isin(list(alpha3))]
    hidden_cells = cells.loc[cells["suppressed"] & cells["entity"].isin(list(alpha3))]
    figure = charts.world_map(
        [alpha3[c] for c in shown_cells["entity"]],
        list(shown_cells["value"]),
        [names.get(c, c) for c in shown_cells["entity"]],
        unit=_unit(ctx, metric) if _unit(ctx, metric) != "count" else "count",
        scale=charts.ALLIANCE_SCALE,
        log=True,
        masked=[(alpha3[c], names.get(c, c)) for c in hidden_cells["entity"]],
        masked_text="hidden (small count or protecting one)",
    )
    columns = [
        Column(
            "Country",
            lambda r: dcc.Link(
                f"{names.get(r.entity, r.entity)} ({r.entity})", href=ctx.link(f"/countries/{r.entity}")
            ),
        ),
        Column("Value", lambda r: _value_text(r.value, r.display, r.suppressed), numeric=True),
        Column("Note", lambda r: REASONS.get(str(r.suppression_reason), "") if r.suppressed else ""),
        Column("Organisations", lambda r: fmt_int(r.coverage), numeric=True),
    ]
    return page(
        "Countries",
        "Figures by the country of the reporting organisations. Choose a country for its profile.",
        ctx,
        charts.chart_block(
            f"{metric_name(ctx, metric)} by country, {period}",
            chart=charts.graph(
                figure,
                label=f"World map of {metric_name(ctx, metric)} by country, {period}",
                size="map",
                topojson_url=ctx.topojson_url,
            ),
            source=source_of(ctx, metric),
            table_rows=list(cells.itertuples(index=False)),
            columns=columns,
            note="Grey: hidden figures. Boundaries from Natural Earth; they do not imply any endorsement.",
            block_id="country-map",
        ),
        controls=controls,
    )


def country_profile(ctx: PageContext, iso: str) -> html.Div:
    names = country_names()
    name = names.get(iso, iso)
    figures = views.country_profile(ctx.data, iso, ctx.data.metrics)
    back = html.P(dcc.Link("All countries", href=ctx.link("/countries")), className="back-link")
    if figures.empty:
        return page(f"{name}", "The release holds no figures for this country.", ctx, back)
    blocks: list[Any] = [back]
    for kind in ("law_enforcement", "hotline", "clearinghouse", "company"):
        metrics = [
            m for m in dict.fromkeys(figures["metric"]) if kind in ctx.catalogue.metrics[m].reported_by
        ]
        if not metrics:
            continue
        part = figures.loc[figures["metric"].isin(metrics)]
        years = sorted({str(p) for p in part["period"]})[-5:]
        rows = _metric_year_rows(ctx, part, metrics, years)
        columns = _year_columns(years)
        blocks.append(
            html.Section(
                [
                    html.H3(stakeholder_label(kind), className="chart-title"),
                    html.Div(
                        charts.table(rows, columns, caption=f"{name}: {stakeholder_label(kind).lower()}"),
                        className="table-scroll",
                    ),
                ],
                className="panel",
            )
        )
    latest = max(str(p) for p in figures["period"])
    blocks.append(
        html.P(
            html.A(
                f"{name}: country profile {latest} (PDF)",
                href=f"/reports/{ctx.release.number}/country-{iso}-{latest}.pdf",
                className="download-link",
            ),
            className="source",
        )
    )
    return page(
        name,
        f"Figures of the organisations based in {name}, by stakeholder type and year, as release "
        f"{ctx.release.number} publishes them.",
        ctx,
        *blocks,
        html.P(f"Source: release {ctx.release.number} of the hub.", className="source"),
    )


# --- organisations --------------------------------------------------------------------------


def organisations(ctx: PageContext) -> html.Div:
    code = ctx.params.get("organisation", "")
    named = views.named_organisations(ctx.data)
    if code:
        if code in set(named["organisation"]):
            return organisation_profile(ctx, code)
        return page(
            "Organisation not found",
            "The release names no organisation with this code.",
            ctx,
            html.P(dcc.Link("All organisations", href=ctx.link("/organisations"))),
        )
    names = ctx.organisation_names
    columns = [
        Column(
            "Organisation",
            lambda r: dcc.Link(
                names.get(r.organisation, r.organisation), href=ctx.link(f"/organisations/{r.organisation}")
            ),
        ),
        Column("Type", lambda r: stakeholder_label(str(r.stakeholder_type))),
        Column("Country", lambda r: str(r.org_country)),
        Column("Published figures", lambda r: fmt_int(r.figures), numeric=True),
    ]
    return page(
        "Organisations",
        "Organisations whose own figures the release publishes: members that consented to be named, "
        "and organisations that publish their figures themselves. Other members' figures appear only "
        "inside totals.",
        ctx,
        html.Section(
            html.Div(
                charts.table(list(named.itertuples(index=False)), columns, caption="Named organisations"),
                className="table-scroll",
            ),
            className="panel",
        ),
    )


def organisation_profile(ctx: PageContext, code: str) -> html.Div:
    name = ctx.organisation_names.get(code, code)
    figures = views.organisation_figures(ctx.data, code)
    years = sorted({str(p) for p in figures["period"]})[-6:]
    rows = _metric_year_rows(ctx, figures, list(dict.fromkeys(figures["metric"])), years)
    columns = _year_columns(years)
    return page(
        name,
        f"{name}'s own figures as release {ctx.release.number} publishes them.",
        ctx,
        html.P(dcc.Link("All organisations", href=ctx.link("/organisations")), className="back-link"),
        html.Section(
            html.Div(
                charts.table(rows, columns, caption=f"{name}: published figures by year"),
                className="table-scroll",
            ),
            className="panel",
            id="organisation-figures",
        ),
        html.P(f"Source: release {ctx.release.number} of the hub.", className="source"),
    )


PAGES: dict[str, tuple[str, Callable[[PageContext], html.Div]]] = {
    "/volumes": ("Volumes", volumes),
    "/flows": ("Flows", flows),
    "/countries": ("Countries", countries),
    "/organisations": ("Organisations", organisations),
}
