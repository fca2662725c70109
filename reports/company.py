"""A company's (or any member's) own transparency report for a year, in a layout it can
publish under its own name: its figures by quarter and their trend, its takedown-time
distribution, its position among its peers (hub.peers: only where at least 5 peers
contribute), its capabilities, and each metric's definition.

Everything comes from hub.own_figures (its own approved data, each figure marked when the
latest published release does not rest on it yet) and the release's peer table; no other
organisation's figure is read.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from hub.catalogue import Catalogue
from hub.own_figures import (
    NOT_YET,
    OwnFigures,
    PeerComparison,
    headline,
    peer_positions,
    totals,
    year_or_quarters,
)
from hub.presentation import STAKEHOLDER_COLOURS, fmt_hours, fmt_pct, stakeholder_label, statistic_label
from hub.public_views import SHARE_HOURS, TAKEDOWN_METRICS
from reports import svg
from reports.parts import COMBINATION_TEXT, ReportError, Section, chart, definitions_table, shown, table, text

OPTIONAL_SECTIONS = ("figures", "trends", "takedown", "peers", "capabilities", "definitions")
QUARTERS = ("Q1", "Q2", "Q3", "Q4")
TREND_LINES = 4
NEW_MARK = "†"  # a figure approved since the latest release
LOGO_TYPES = {b"\x89PNG\r\n\x1a\n": "image/png", b"\xff\xd8\xff": "image/jpeg"}
MAX_LOGO_BYTES = 1_000_000


def logo_data_url(content: bytes) -> str:
    """A PNG or JPEG logo as a data: URL (the renderer fetches nothing else). SVG is refused:
    it can carry scripts and references to other files."""
    if len(content) > MAX_LOGO_BYTES:
        raise ReportError(f"the logo is {len(content):,} bytes; at most {MAX_LOGO_BYTES:,}")
    for magic, kind in LOGO_TYPES.items():
        if content.startswith(magic):
            return f"data:{kind};base64,{base64.b64encode(content).decode('ascii')}"
    raise ReportError("the logo must be a PNG or JPEG image")


def _name(catalogue: Catalogue, metric: str) -> str:
    spec = catalogue.metrics.get(metric)
    return spec.name if spec else metric


def _shown(cell: Any) -> str:
    """A figure as the report prints it: "<10" when protected, the new-figure mark when the
    latest release does not rest on it."""
    figure = str(cell.display) if bool(cell.suppressed) else shown(float(cell.value), str(cell.unit))
    return f"{figure} {NEW_MARK}" if str(cell.status) == NOT_YET else figure


def _year_cells(cells: pd.DataFrame, year: str) -> pd.DataFrame:
    """Value cells (totals) of the year and its quarters."""
    chosen = cells[(cells["statistic"] == "value") & (cells["unit"] != "boolean")]
    periods = {year, *(f"{year}-{q}" for q in QUARTERS)}
    return chosen[chosen["period"].isin(periods)]


def _figures(catalogue: Catalogue, cells: pd.DataFrame, year: str) -> Section | None:
    chosen = _year_cells(cells, year)
    if chosen.empty:
        return None
    previous = cells[(cells["statistic"] == "value") & (cells["period"] == str(int(year) - 1))]
    before = {str(c.metric): c for c in previous.itertuples(index=False)}
    columns = [*(f"{year}-{q}" for q in QUARTERS), year]
    rows = []
    for metric, group in chosen.groupby("metric", sort=True):
        by_period = {str(c.period): c for c in group.itertuples(index=False)}
        row = [_name(catalogue, str(metric))]
        row += [_shown(by_period[p]) if p in by_period else "–" for p in columns]
        earlier = before.get(str(metric))
        row.append(_shown(earlier) if earlier is not None else "–")
        rows.append(row)
    section = Section("figures", f"Figures for {year}")
    section.parts.append(
        text(
            f"Each quarter as reported; the year where all of it was reported (a year with a quarter "
            f"missing is left empty rather than added up from part of it). {NEW_MARK} marks a figure "
            "approved since the alliance's latest published release."
        )
    )
    section.parts.append(
        table(
            ["Metric", *QUARTERS, year, str(int(year) - 1)],
            rows,
            f"Figures for {year} by quarter",
            tuple(range(1, 7)),
        )
    )
    return section


def _trends(catalogue: Catalogue, cells: pd.DataFrame, kind: str) -> Section | None:
    quarterly = cells[
        (cells["statistic"] == "value") & (cells["period_kind"] == "quarter") & (cells["unit"] == "count")
    ]
    counts = quarterly.groupby("metric")["value"].count().sort_values(ascending=False)
    metrics = [str(m) for m, n in counts.items() if n > 1][:TREND_LINES]
    if not metrics:
        return None
    section = Section("trends", "Trends")
    colour = STAKEHOLDER_COLOURS.get(kind, svg.INK)
    for metric in metrics:
        series = quarterly[quarterly["metric"] == metric].sort_values("period")
        periods = [str(p) for p in series["period"]]
        name = _name(catalogue, metric)
        drawing = svg.line_chart(periods, [(name, [float(v) for v in series["value"]], colour)], title=name)
        section.parts.append(chart(drawing, f"{name} by quarter; a gap is a quarter not reported"))
    return section


def _bucket_labels(catalogue: Catalogue) -> dict[str, str]:
    return {
        b.code: "not yet actioned" if b.is_censored else b.code.replace("-", " to ")
        for b in catalogue.buckets.buckets
    }


def _takedown(catalogue: Catalogue, cells: pd.DataFrame, year: str) -> Section | None:
    periods = {year, *(f"{year}-{q}" for q in QUARTERS)}
    order = {code: rank for rank, code in enumerate(catalogue.buckets.codes)}
    labels = _bucket_labels(catalogue)
    section = Section("takedown", "Time to takedown")
    section.parts.append(
        text(
            "Time from notice to removal in the common buckets every member uses. Shares within 24 hours, "
            "72 hours and 7 days are exact (they fall on bucket edges); medians and 90th percentiles are "
            "estimated within their bucket. Quarters not reported are left out of the histogram."
        )
    )
    for metric in TAKEDOWN_METRICS:
        mine = cells[(cells["metric"] == metric) & cells["period"].isin(periods)]
        if mine.empty:
            continue
        name = _name(catalogue, metric)
        events = mine[(mine["statistic"] == "events") & (mine["period_kind"] == "quarter")]
        events = events[events["time_bucket"] != "_T"]
        only = [c for c in ("notice_source", "category", "content_type", "country") if c in events.columns]
        for column in only:
            events = events[events[column] == "_T"]
        if not events.empty:
            summed = events.groupby("time_bucket", observed=True)["value"].sum(min_count=1)
            bars = [
                svg.Bar(labels.get(str(b), str(b)), float(v), f"{v:,.0f}")
                for b, v in sorted(summed.items(), key=lambda kv: order.get(str(kv[0]), len(order)))
            ]
            reported = ", ".join(sorted({str(p) for p in events["period"]}))
            section.parts.append(
                chart(
                    svg.bar_chart(bars, title=f"{name}, {year}: events per bucket"),
                    f"Distribution of {name.lower()} in the quarters reported ({reported})",
                )
            )
        stats = totals(mine)
        stats = stats[stats["statistic"].isin(["share_within", "percentile"])]
        rows = []
        for period in sorted({str(p) for p in stats["period"]}):
            at = stats[stats["period"] == period]
            row = [period]
            for hours in SHARE_HOURS:
                found = at[(at["statistic"] == "share_within") & np.isclose(at["param"], hours)]
                row.append(fmt_pct(float(found["value"].iloc[0]) * 100) if not found.empty else "–")
            for q in (0.5, 0.9):
                found = at[(at["statistic"] == "percentile") & np.isclose(at["param"], q)]
                row.append(f"{float(found['value'].iloc[0]):,.1f} h" if not found.empty else "–")
            rows.append(row)
        if rows:
            section.parts.append(
                table(
                    ["Period", *(f"Within {fmt_hours(h)}" for h in SHARE_HOURS), "Median", "90th percentile"],
                    rows,
                    f"{name}: speed by period",
                    tuple(range(1, 3 + len(SHARE_HOURS))),
                )
            )
    return section if len(section.parts) > 1 else None


def _peers(catalogue: Catalogue, comparisons: Sequence[PeerComparison], kind: str) -> Section:
    section = Section("peers", "Among its peers")
    section.parts.append(
        text(
            f"How its figures compare with the alliance's other {stakeholder_label(kind).lower()}, from the "
            "latest published release (the year where it has a figure for the whole year, else its quarters). The peers' figures are sorted and cut into bands of "
            "at least three organisations (quarters where there are 12 or more), and only each band's average "
            "is published, so that no organisation's own figure can be read from it. A comparison is shown "
            "only where at least 5 peers contribute."
        )
    )
    if not year_or_quarters(headline(comparisons)):
        section.parts.append(
            text(
                "No figure of this year or its quarters has a published peer distribution with at least 5 peers."
            )
        )
        return section
    rows = []
    chosen = year_or_quarters(headline(comparisons))
    for c in sorted(
        chosen, key=lambda c: (_name(catalogue, c.metric), c.statistic, c.param, len(c.period) == 4, c.period)
    ):
        label = _name(catalogue, c.metric)
        extra = statistic_label(c.statistic, c.param)
        means = " · ".join(
            shown(m, "share" if c.statistic == "share_within" else c.unit) for m in c.position.means
        )
        rows.append(
            [
                f"{label} ({extra})" if extra else label,
                c.period,
                shown(c.value, "share" if c.statistic == "share_within" else c.unit),
                means,
                c.position.text,
                str(c.position.peers),
            ]
        )
    section.parts.append(
        table(
            ["Metric", "Period", "Its figure", "Peer band averages (lowest first)", "Position", "Peers"],
            rows,
            "Position against the peer distribution",
            (2, 5),
        )
    )
    return section


def _capabilities(catalogue: Catalogue, cells: pd.DataFrame, year: str) -> Section | None:
    chosen = cells[
        (cells["unit"] == "boolean") & (cells["statistic"] == "value") & cells["period"].str.startswith(year)
    ]
    if chosen.empty:
        return None
    latest = chosen.sort_values("period").groupby("metric", sort=True).tail(1)
    rows = [
        [_name(catalogue, str(c.metric)), "Yes" if float(c.value) >= 0.5 else "No", str(c.period)]
        for c in latest.sort_values("metric").itertuples(index=False)
    ]
    section = Section("capabilities", "Capabilities")
    section.parts.append(table(["Capability", "In use", "As of"], rows, f"Capabilities reported for {year}"))
    return section


def company_report(
    own: OwnFigures,
    peers: pd.DataFrame,
    catalogue: Catalogue,
    year: str,
    *,
    logo: str = "",
    omit: Iterable[str] = (),
    now: datetime | None = None,
) -> dict[str, Any]:
    """The template context of ``own``'s report for ``year`` (a calendar year)."""
    left_out = set(omit)
    unknown = left_out - set(OPTIONAL_SECTIONS)
    if unknown:
        raise ReportError(
            f"no such section: {', '.join(sorted(unknown))} (optional: {', '.join(OPTIONAL_SECTIONS)})"
        )
    if not (year.isdigit() and len(year) == 4):
        raise ReportError(f"{year!r} is not a year")
    info = own.organisation
    cells = totals(own.cells)
    in_year = cells[cells["period"].str.startswith(year)]
    if in_year.empty:
        years = sorted({str(p)[:4] for p in cells["period"]}, reverse=True)
        raise ReportError(
            f"{info.name} has no approved figures for {year} (it has: {', '.join(years) or 'none'})"
        )
    new = int((in_year["status"] == NOT_YET).sum())
    summary = Section("summary", "Summary")
    release = f"release {own.release}" if own.release is not None else "no release yet"
    summary.parts.append(
        text(
            f"{info.name} ({stakeholder_label(info.stakeholder_type)}, {info.country or 'no country given'}) "
            f"reports its figures to the alliance's transparency hub. This report shows its own approved figures "
            f"for {year}: {len(in_year):,} in all, of which {new:,} were approved after the latest published "
            f'release ({release}) and are marked {NEW_MARK}. Counts of people below 10 are shown as "<10".'
        )
    )
    headline = _year_cells(cells, year)
    year_rows = headline[headline["period"] == year]
    if not year_rows.empty:
        summary.parts.append(
            table(
                ["Metric", year],
                [
                    [_name(catalogue, str(c.metric)), _shown(c)]
                    for c in year_rows.sort_values("metric").itertuples()
                ],
                f"{year} at a glance",
                (1,),
            )
        )
    sections = [summary]
    builders: list[tuple[str, Any]] = [
        ("figures", lambda: _figures(catalogue, cells, year)),
        ("trends", lambda: _trends(catalogue, cells, info.stakeholder_type)),
        ("takedown", lambda: _takedown(catalogue, own.cells, year)),
        ("peers", lambda: _peers(catalogue, peer_positions(own, peers, year=year), info.stakeholder_type)),
        ("capabilities", lambda: _capabilities(catalogue, cells, year)),
    ]
    for name, build in builders:
        if name in left_out:
            continue
        section = build()
        if section is not None:
            sections.append(section)
    if "definitions" not in left_out:
        method = Section("definitions", "Definitions and method")
        method.parts.append(text(COMBINATION_TEXT))
        method.parts.append(definitions_table(catalogue, sorted({str(m) for m in in_year["metric"]})))
        sections.append(method)
    made = (now or datetime.now(UTC)).strftime("%d %B %Y")
    return {
        "title": f"{info.name}: transparency report {year}",
        "period": year,
        "release": own.release if own.release is not None else "–",
        "release_title": f"figures of {info.name}",
        "published": made,
        "checksum": "",
        "kicker": f"{info.name} · child sexual exploitation and abuse online",
        "cover_note": (
            f"{info.name}'s own figures as approved by the alliance's hub. {NEW_MARK} marks a figure approved "
            "after the latest published release. Peer comparisons use only the anonymised, banded peer "
            "distribution of that release."
        ),
        "logo": logo,
        "date_label": "Made",
        "subtitle": (
            f"Own figures, compared with the alliance's release {own.release}"
            if own.release is not None
            else "Own figures (no alliance release published yet)"
        ),
        "sections": sections,
    }
