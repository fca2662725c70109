"""The public overview page: published figures with their sources, and the alliance's membership.

Members' own figures never appear here: they reach the public only through a release the
secretariat approved and disclosure-controlled (a later issue). The page is built per
request from :mod:`hub.queries`, in one short read-only session.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pandas as pd
from dash import html
from dash.development.base_component import Component
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from dashboards import charts
from dashboards.charts import Column, fmt_decimal, fmt_int, fmt_pct, source_line
from hub import queries

logger = logging.getLogger(__name__)

RELEASE_NOTICE = (
    "These are public sources' own figures. The alliance's figures, approved and disclosure-controlled, "
    "are on the other pages, from its published releases."
)
AVERAGE_NOTE = "Average, as published by NCMEC; averages cannot be combined into an alliance median."
UNAVAILABLE = "The figures cannot be shown at the moment. Please try again in a few minutes."
PAGE_TITLE = html.H2("Public sources", className="page-title", id="page-title")
MAP_NOTE = (
    "Boundaries from Natural Earth; they do not imply any endorsement. Countries too small for "
    "the map are in the table."
)


def layout(engine: Engine, *, topojson_url: str) -> html.Div:
    """The whole page (header, content, footer)."""
    return _page(content(engine, topojson_url=topojson_url))


def content(engine: Engine, *, topojson_url: str) -> list[Any]:
    """The page's content, read fresh from the database in one short session.

    When the database does not answer, the page says so (and /healthz reports it) instead
    of failing.
    """
    try:
        with Session(engine) as session:
            headline = queries.headline(session)
            per_year = queries.cybertipline_reports_per_year(session)
            providers = queries.top_reporting_providers(session, limit=15)
            countries = queries.reports_by_country(session)
            notices = queries.hosted_notices(session)
            disagreements = queries.sources_disagree(session, clearinghouse=queries.NCMEC)
            by_type = queries.members_by_type(session)
            by_country = queries.members_by_country(session)
            submissions = queries.submissions_by_quarter(session)
    except SQLAlchemyError:
        logger.exception("overview: the database could not be read")
        return [PAGE_TITLE, html.P(UNAVAILABLE, className="release-notice", role="alert")]
    return [
        PAGE_TITLE,
        html.P(
            [html.Strong("Public sources. "), RELEASE_NOTICE],
            className="release-notice",
            role="note",
        ),
        _headline_cards(headline),
        html.Section(
            [
                html.H2("What the public sources report", id="public-figures"),
                html.P(
                    "Figures below are shown as their publishers published them, each with its "
                    "source. The hub does not adjust or estimate them; where a publisher printed "
                    "one provider or country under two names in the same year, the two figures "
                    "are added up.",
                    className="section-intro",
                ),
                html.Div([_reports_per_year(per_year), _top_providers(providers)], className="grid-2"),
                _country_map(countries, topojson_url),
                _hosted_notices(notices),
                _disagreements(disagreements),
            ],
            className="section",
            **{"aria-labelledby": "public-figures"},  # type: ignore[arg-type]
        ),
        html.Section(
            [
                html.H2("The alliance", id="alliance"),
                html.P(
                    "Who takes part and how many reports the secretariat has received. These are "
                    "facts about membership, not the figures members report.",
                    className="section-intro",
                ),
                html.Div(
                    [_members_by_type(by_type), _members_map(by_country, topojson_url)],
                    className="grid-2",
                ),
                _submissions(submissions),
            ],
            className="section",
            **{"aria-labelledby": "alliance"},  # type: ignore[arg-type]
        ),
    ]


def _page(content: list[Any]) -> html.Div:
    """Header, main content and footer: the frame every state of the page shares."""
    return html.Div(
        [
            _header(),
            html.Main(
                content,
                className="page",
                id="main",
            ),
            _footer(),
        ],
        className="app",
    )


def _header() -> html.Header:
    return html.Header(
        html.Div(
            [
                html.A("Skip to the figures", href="#main", className="skip-link"),
                html.P("Global transparency hub", className="eyebrow"),
                html.H1("Global transparency hub against online child sexual exploitation"),
                html.P(
                    "Published figures on reports, notices and takedown of child sexual abuse material, "
                    "and the organisations that work together against it.",
                    className="lede",
                ),
            ],
            className="wrap",
        ),
        className="site-header",
    )


def _headline_cards(h: queries.Headline) -> html.Section:
    if h.cybertipline_total is not None:
        tipline = charts.stat_card(
            fmt_int(h.cybertipline_total),
            f"CyberTipline reports in {h.cybertipline_year}",
            source_line([h.cybertipline_source] if h.cybertipline_source else []),
        )
    else:
        tipline = charts.stat_card(charts.MISSING, "CyberTipline reports", "Not yet imported")
    return html.Section(
        [
            html.H2("At a glance", className="visually-hidden"),
            tipline,
            charts.stat_card(fmt_int(h.members), "Member organisations", "In the hub's register of members"),
            charts.stat_card(fmt_int(h.countries), "Countries", "Where members have their headquarters"),
            charts.stat_card(
                fmt_int(h.stakeholder_types),
                "Stakeholder types",
                "Companies, hotlines, law enforcement, NGOs, governments and others",
            ),
        ],
        className="cards",
    )


def _reports_per_year(series: queries.PublishedSeries) -> Component:
    title = "CyberTipline reports per year"
    if series.empty:
        return charts.empty_panel(title, "No published CyberTipline totals have been imported yet.")
    frame = series.frame
    span = _span(frame["year"])
    return charts.chart_block(
        title,
        subtitle=f"{series.metric_name}, all reporters, {span}",
        chart=charts.graph(
            charts.yearly_bars(frame["year"], frame["reports"], unit="reports", colour=charts.PUBLIC_COLOUR),
            label=f"Bar chart of CyberTipline reports per year, {span}",
            size="tall",
        ),
        source=source_line(series.sources),
        note="Reports from electronic service providers and from the public.",
        table_rows=list(frame.itertuples()),
        columns=[
            Column("Year", lambda r: str(r.year)),
            Column("Reports", lambda r: fmt_int(r.reports), True),
        ],
        block_id="cybertipline-per-year",
    )


def _span(years: Any) -> str:
    first, last = int(min(years)), int(max(years))
    return str(first) if first == last else f"{first}–{last}"


def _top_providers(series: queries.PublishedSeries) -> Component:
    title = "Providers that reported most"
    if series.empty:
        return charts.empty_panel(title, "No published figures per provider have been imported yet.")
    frame = series.frame
    return charts.chart_block(
        f"{title}, {series.year}",
        subtitle=f"{series.metric_name}: top {len(frame)} electronic service providers",
        chart=charts.graph(
            charts.ranked_bars(frame["name"], frame["reports"], unit="reports", colour=charts.PUBLIC_COLOUR),
            label=f"Bar chart of the {len(frame)} providers with most CyberTipline reports in {series.year}",
            rows=len(frame),
        ),
        source=source_line(series.sources),
        note="Providers as NCMEC lists them; a group's platforms may appear separately.",
        table_rows=list(frame.itertuples()),
        columns=[
            Column("Rank", lambda r: str(r.rank), True),
            Column("Provider", lambda r: r.name),
            Column("Reports", lambda r: fmt_int(r.reports), True),
            Column("Share of all reports", lambda r: fmt_pct(100 * r.share), True),
        ],
        block_id="top-providers",
    )


def _country_map(series: queries.PublishedSeries, topojson_url: str) -> Component:
    title = "Reports by country"
    if series.empty:
        return charts.empty_panel(title, "No published figures per country have been imported yet.")
    frame = series.frame
    mapped = frame[frame["alpha3"].notna()]
    return charts.chart_block(
        f"{title}, {series.year}",
        subtitle=f"{series.metric_name}, by apparent upload location (log scale)",
        chart=charts.graph(
            charts.world_map(
                mapped["alpha3"],
                mapped["reports"],
                mapped["name"],
                unit="reports",
                scale=charts.PUBLIC_SCALE,
                log=True,
            ),
            label=f"World map of CyberTipline reports by country in {series.year}",
            size="map",
            topojson_url=topojson_url,
        ),
        source=source_line(series.sources),
        note=(
            "The country is where the upload appears to come from (from IP addresses), not where a "
            "child or offender lives. " + MAP_NOTE
        ),
        table_rows=list(frame.itertuples()),
        columns=[
            Column("Country", lambda r: r.name),
            Column("Reports", lambda r: fmt_int(r.reports), True),
        ],
        block_id="reports-by-country",
    )


def _provider_label(row: Any) -> str:
    """The provider's name, and which of its listings when the publisher gave several."""
    service = row.service
    if service == queries.TOTAL or pd.isna(service):
        return str(row.name)
    if service.startswith("part-"):  # NCMEC listed the provider on several unnamed rows
        return f"{row.name}, row {service.removeprefix('part-')}"
    return f"{row.name} ({service})"


def _rows_note(frame: pd.DataFrame) -> str:
    if not frame["service"].astype(str).str.startswith("part-").any():
        return ""
    return "Where NCMEC listed a provider on several unnamed rows, the rows are kept apart."


def _notice_totals(totals: pd.DataFrame) -> str:
    sentences = []
    for total in totals.itertuples():
        sentence = f"In {int(total.year)} NCMEC sent {fmt_int(total.notices)} notices in all"
        if not pd.isna(total.mean_days):
            sentence += f", taken down in {fmt_decimal(total.mean_days)} days on average"
        sentences.append(sentence + ".")
    return " ".join(sentences)


def _hosted_notices(data: queries.HostedNotices) -> Component:
    title = "Hosted-CSAM notices from NCMEC and time to takedown"
    if data.empty:
        return charts.empty_panel(title, "No published notice figures have been imported yet.")
    frame = data.per_provider.copy()
    frame["label"] = [_provider_label(r) for r in frame.itertuples()]
    years = sorted(int(y) for y in frame["year"].unique())
    labels = list(dict.fromkeys(frame.sort_values("notices", ascending=False)["label"]))
    series = []
    for year in years:
        of_year = frame[frame["year"] == year].set_index("label")
        series.append(
            (
                str(year),
                [of_year["mean_days"].get(label) for label in labels],
                [f" ({fmt_int(of_year['notices'].get(label))} notices)" for label in labels],
            )
        )
    totals = _notice_totals(data.totals)
    rows = frame.sort_values(["label", "year"]).itertuples()
    return charts.chart_block(
        title,
        subtitle=f"{data.hours_name} (shown in days) per provider, {_span(years)}",
        chart=charts.graph(
            charts.dot_comparison(labels, series, unit="days"),
            label="Dot chart of average days to take down hosted CSAM after an NCMEC notice, per provider",
            rows=len(labels) + 1,
        ),
        source=source_line(data.sources),
        note=" ".join(part for part in (AVERAGE_NOTE, totals, _rows_note(frame)) if part),
        table_rows=list(rows),
        columns=[
            Column("Provider", lambda r: r.label),
            Column("Year", lambda r: str(r.year)),
            Column("Notices sent", lambda r: fmt_int(r.notices), True),
            Column("Average days to takedown", lambda r: fmt_decimal(r.mean_days), True),
        ],
        block_id="hosted-notices",
    )


def _disagreements(frame: pd.DataFrame) -> Component:
    title = "Where the sources disagree"
    if frame.empty:
        return charts.empty_panel(
            title, "No provider has published a count that NCMEC's can be compared with."
        )
    columns = [
        Column("Provider", _provider_and_coverage),
        Column("Provider's own count", lambda r: fmt_int(r.provider_count), True),
        Column("NCMEC's count", lambda r: fmt_int(r.clearinghouse_count), True),
        Column("Gap", lambda r: fmt_pct(r.gap_pct, signed=True), True),
    ]
    latest = int(frame["year"].max())
    recent, earlier = frame[frame["year"] == latest], frame[frame["year"] < latest]
    parts: list[Any] = [
        html.H3(f"{title}, {latest}", className="chart-title"),
        html.P(
            "Reports a provider says it made to NCMEC's CyberTipline (co_reports_to_authority) against "
            "the reports NCMEC says it received from that provider (ch_reports_received). Gap = the "
            "provider's count minus NCMEC's, as a share of NCMEC's. Both are shown; neither is corrected. "
            "NCMEC's count adds up the platforms of the provider that it lists separately.",
            className="chart-subtitle",
        ),
        html.Div(
            charts.table(
                list(recent.itertuples()),
                columns,
                caption=f"Provider counts and NCMEC counts of the same reports, {latest}",
                class_name="disagree-table",
            ),
            className="table-scroll",
        ),
    ]
    if not earlier.empty:
        parts.append(
            html.Details(
                [
                    html.Summary(f"Show earlier years ({_span(earlier['year'])})"),
                    html.Div(
                        charts.table(
                            list(earlier.itertuples()),
                            [Column("Year", lambda r: str(r.year)), *columns],
                            caption="Provider counts and NCMEC counts of the same reports, earlier years",
                            class_name="disagree-table",
                        ),
                        className="table-scroll",
                    ),
                ],
                className="chart-table",
            )
        )
    sources = sorted({s for s in [*frame["provider_source"], *frame["clearinghouse_source"]] if s})
    parts.append(html.P(source_line(sources), className="source"))
    return html.Section(parts, className="panel", id="sources-disagree")


def _provider_and_coverage(row: Any) -> Any:
    """The provider's name, plus what NCMEC's count adds up when it covers more than the provider."""
    covers = [name for name in row.clearinghouse_covers if name != row.provider_name]
    if not covers:
        return row.provider_name
    return [
        row.provider_name,
        html.Span(f"NCMEC's count includes {', '.join(covers)}", className="cell-note"),
    ]


def _members_by_type(frame: pd.DataFrame) -> Component:
    title = "Member organisations by stakeholder type"
    if frame.empty:
        return charts.empty_panel(title, "No member organisations are registered yet.")
    labels = [charts.stakeholder_label(t) for t in frame["stakeholder_type"]]
    return charts.chart_block(
        title,
        subtitle=f"{fmt_int(frame['members'].sum())} member organisations",
        chart=charts.graph(
            charts.ranked_bars(labels, frame["members"], unit="members", colour=charts.ALLIANCE_COLOUR),
            label="Bar chart of member organisations by stakeholder type",
            rows=max(len(frame), 5),
        ),
        source="Source: the hub's register of member organisations",
        table_rows=list(frame.assign(label=labels).itertuples()),
        columns=[
            Column("Stakeholder type", lambda r: r.label),
            Column("Members", lambda r: fmt_int(r.members), True),
        ],
        block_id="members-by-type",
    )


FEWER_MEMBERS = f"fewer than {queries.MIN_EXACT_MEMBERS} members"


def _members_map(frame: pd.DataFrame, topojson_url: str) -> Component:
    title = "Member organisations by country"
    if frame.empty:
        return charts.empty_panel(title, "No member organisations are registered yet.")
    mapped = frame[frame["alpha3"].notna() & frame["exact"]]
    masked = frame[frame["alpha3"].notna() & ~frame["exact"]]
    return charts.chart_block(
        title,
        subtitle="Country of each member's headquarters",
        chart=charts.graph(
            charts.world_map(
                mapped["alpha3"],
                mapped["members"],
                mapped["name"],
                unit="members",
                scale=charts.ALLIANCE_SCALE,
                masked=list(zip(masked["alpha3"], masked["name"], strict=True)),
                masked_text=FEWER_MEMBERS,
            ),
            label="World map of member organisations by country",
            size="map",
            topojson_url=topojson_url,
        ),
        source="Source: the hub's register of member organisations",
        note=f"{MAP_NOTE} Grey: {FEWER_MEMBERS}, shown without a number so that no member that has not "
        "consented to be named can be singled out.",
        table_rows=list(frame.itertuples()),
        columns=[
            Column("Country", lambda r: r.name),
            Column("Members", lambda r: fmt_int(r.members) if r.exact else FEWER_MEMBERS, True),
        ],
        block_id="members-by-country",
    )


def _submissions(frame: pd.DataFrame) -> Component:
    title = "Submissions received per quarter"
    if frame.empty:
        return charts.empty_panel(title, "No submissions have been received from members yet.")
    wide = frame.pivot_table(
        index="quarter", columns="stakeholder_type", values="submissions", aggfunc="sum", fill_value=0
    ).sort_index()
    types = [t for t in charts.STAKEHOLDER_LABELS if t in wide.columns] + [
        t for t in wide.columns if t not in charts.STAKEHOLDER_LABELS
    ]
    stacks = [
        (charts.stakeholder_label(t), charts.STAKEHOLDER_COLOURS.get(t, charts.OKABE_ITO["black"]), wide[t])
        for t in types
    ]
    table_frame = wide[types].rename(columns=charts.stakeholder_label)
    table_frame["Total"] = table_frame.sum(axis=1)
    quarter_columns = [Column("Quarter", lambda r: str(r[0]))] + [
        Column(name, _count_at(i), True) for i, name in enumerate(table_frame.columns, start=1)
    ]
    return charts.chart_block(
        title,
        subtitle="Submissions by the stakeholder type of the organisation, by quarter of arrival",
        chart=charts.graph(
            charts.stacked_bars(list(wide.index), stacks, unit="submissions"),
            label="Stacked bar chart of submissions received per quarter by stakeholder type",
            size="tall",
        ),
        source="Source: the hub's record of submissions received",
        note=(
            "Every version counts, restatements included; the latest quarter may still be open. "
            "The figures submitted are not shown."
        ),
        table_rows=list(table_frame.itertuples()),
        columns=quarter_columns,
        block_id="submissions-per-quarter",
    )


def _count_at(position: int) -> Callable[[Any], str]:
    return lambda row: fmt_int(row[position])


def _footer() -> html.Footer:
    notes = [
        "Published figures are shown as their publishers published them, each with its source, and are "
        "not adjusted. Where two publishers count the same thing differently, both counts are shown.",
        "CyberTipline totals count reports from providers and the public; one report can hold many files. "
        "Countries are apparent upload locations.",
        f"{AVERAGE_NOTE} Time to takedown is a distribution: the hub publishes the shares removed within "
        "fixed times, exact on its common bucket edges, and medians with the range of their bucket.",
        "Members' submitted figures are published only in releases the secretariat has approved, after "
        "disclosure control (small counts suppressed, totals protected).",
        "Colours are chosen to be distinguishable with common colour-vision deficiencies; every chart has "
        "a table of the same figures.",
    ]
    return html.Footer(
        html.Div(
            [
                html.H2("Method notes"),
                html.Ul([html.Li(n) for n in notes]),
                html.P(
                    "Global transparency hub against online child sexual exploitation",
                    className="footer-name",
                ),
            ],
            className="wrap",
        ),
        className="site-footer",
    )
