"""The alliance's transparency report for a year (or a half-year or quarter) of a published
release: what it says, as
plain data for the template (reports/templates/report.html). Every figure comes from the
release through hub.public_views, exactly as the dashboards show it; hidden figures keep
their published mark ("<10", "x") and are never drawn as values.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import pandas as pd

from hub import public_views as views
from hub.catalogue import Catalogue
from hub.countries import country_name
from hub.periods import parse_period, parse_period_or_none
from hub.presentation import OKABE_ITO, fmt_int, fmt_pct, stakeholder_label
from hub.published import ReleaseData
from hub.targets import TargetSpec
from reports import svg
from reports.parts import (
    DISCLOSURE_TEXT,
    ReportError,
    Section,
    chart,
    definitions_table,
    document,
    published,
    shown,
    table,
    text,
)

GLOBAL_ALLIANCE = "ga_"  # the codes of the Global Alliance's own policy targets
ANNEX_METRICS = ("le_victims_identified", "ht_notices_sent", "ch_reports_received", "co_items_actioned")


def _period_figure(series: pd.DataFrame, period: str) -> pd.Series | None:
    chosen = series.loc[series["period"].astype(str) == period]
    return None if chosen.empty else chosen.iloc[0]


def _summary(data: ReleaseData, period: str) -> Section:
    section = Section("summary", "Executive summary")
    rows = []
    for headline in views.headlines(data, views.period_kind_of(period)):
        chosen = next((f for f in headline.series if f.period == period), None)
        figure = chosen.display if chosen else "–"
        if chosen and not chosen.suppressed:
            figure = shown(chosen.value, headline.unit)
        change = (
            fmt_pct(chosen.yoy_change * 100, signed=True)
            if chosen and not math.isnan(chosen.yoy_change)
            else "–"
        )
        rows.append(
            [headline.label, figure + (" (provisional)" if chosen and chosen.provisional else ""), change]
        )
    section.parts.append(
        table(
            ["Figure", period, "Change on a year earlier"], rows, "Headline figures of the alliance", (1, 2)
        )
    )
    targets = views.target_table(data)
    if not targets.empty:
        status_rows = [
            [str(t.name), str(t.status_label).capitalize(), str(t.explanation)]
            for t in targets.itertuples(index=False)
        ]
        section.parts.append(
            table(
                ["Target", "Status", "Why"],
                status_rows,
                "Every target's status, worst first within each status",
            )
        )
        section.parts.append(text(str(targets.iloc[0]["method"])))
    return section


def _goal(target: pd.Series, unit: str) -> str:
    """The target in words: a value by a year, or a rate of growth a year."""
    year = int(target["target_year"])
    if pd.notna(target["target_value"]):
        return f"{shown(float(target['target_value']), unit)} by {year}"
    if pd.notna(target["annual_rate"]):
        return f"{float(target['annual_rate']) * 100:+.0f}% a year until {year}"
    return f"by {year}"


def _target_sections(data: ReleaseData, specs: Sequence[TargetSpec]) -> list[Section]:
    targets = views.target_table(data)
    sections = []
    for spec in specs:
        if not spec.code.startswith(GLOBAL_ALLIANCE):
            continue
        row = targets.loc[targets["code"] == spec.code]
        if row.empty:
            continue
        target = row.iloc[0]
        unit = (
            "share"
            if spec.measure_is_share
            else ("hours" if "time" in str(target["metric"]) and spec.kind != "growth" else "count")
        )
        section = Section(f"target-{spec.code}", str(target["name"]))
        section.parts.append(text(spec.description))
        facts = [
            ["Status", f"{str(target['status_label']).capitalize()}"],
            [
                "Baseline",
                f"{shown(float(target['baseline_value']), unit)} in {target['baseline_period']}"
                if pd.notna(target["baseline_value"])
                else "not available",
            ],
            ["Target", _goal(target, unit)],
            [
                "Latest",
                f"{shown(float(target['latest_value']), unit)} in {target['latest_period']}"
                if pd.notna(target["latest_value"])
                else "not published",
            ],
            ["Why", str(target["explanation"])],
        ]
        section.parts.append(table(["", ""], facts, "Baseline, target and status"))
        path = views.target_path(data, spec)
        points = path.actual
        actual_periods = [str(p) for p in points["period"]]
        if any(len(p) == 4 for p in actual_periods):  # years where there are any: one point a year
            points = points[[len(p) == 4 for p in actual_periods]]
        years = sorted({*map(str, points["period"]), *map(str, path.required["year"])})
        if years:
            actual = {str(p): float(v) for p, v in zip(points["period"], points["value"], strict=True)}
            required = {
                str(y): float(v) for y, v in zip(path.required["year"], path.required["value"], strict=True)
            }
            drawing = svg.line_chart(
                years,
                [
                    ("Published", [actual.get(y, math.nan) for y in years], OKABE_ITO["blue"]),
                    ("Required path", [required.get(y, math.nan) for y in years], OKABE_ITO["orange"]),
                ],
                title=str(target["name"]),
                unit="share" if unit == "share" else "count",
            )
            section.parts.append(chart(drawing, "The published values against the path the target requires"))
        sections.append(section)
    return sections


def _takedown(data: ReleaseData, catalogue: Catalogue, period: str) -> Section:
    section = Section("takedown", "Takedown speed")
    section.parts.append(
        text(
            "Time from notice to removal, counted in the common buckets every member uses. Shares within "
            "24 hours, 72 hours and 7 days are exact (they fall on bucket edges); medians and 90th "
            "percentiles are estimated within their bucket, and the bucket's bounds are given with them."
        )
    )
    labels = {
        b.code: "not yet actioned" if b.is_censored else b.code.replace("-", " to ")
        for b in catalogue.buckets.buckets
    }
    for metric in views.TAKEDOWN_METRICS:
        if period not in views.takedown_periods(data, metric, views.period_kind_of(period)):
            continue
        result = views.takedown(data, catalogue.buckets, metric, period)
        name = catalogue.metrics[metric].name if metric in catalogue.metrics else metric
        bars = [
            svg.Bar(
                labels.get(str(r.time_bucket), str(r.time_bucket)),
                float(r.events) if not r.suppressed else math.nan,
                str(r.display),
            )
            for r in result.histogram.itertuples(index=False)
        ]
        section.parts.append(
            chart(
                svg.bar_chart(bars, title=f"{name}, {period}: events per bucket"),
                f"Distribution of {name.lower()} in {period}",
            )
        )
        rows = [
            [
                f"Share within {int(h)} hours",
                f.display if f and f.suppressed else (fmt_pct(f.value * 100) if f else "–"),
            ]
            for h, f in result.shares
        ]
        for q, f in result.quantiles:
            label = "Median" if q == 0.5 else f"{int(q * 100)}th percentile"
            if f is None:
                rows.append([label, "–"])
            elif f.suppressed:
                rows.append([label, f.display])
            else:
                bounds = (
                    f"between {f.lower:,.0f} and {f.upper:,.0f} h"
                    if not math.isinf(f.upper)
                    else f"above {f.lower:,.0f} h"
                )
                rows.append([label, f"{f.value:,.1f} h ({bounds})"])
        events = result.events
        rows.append(["Events", published(events.value, events.display, events.suppressed) if events else "–"])
        section.parts.append(table(["Statistic", period], rows, f"{name}: shares and percentiles", (1,)))
    return section


def _volumes(data: ReleaseData, catalogue: Catalogue, period: str) -> Section:
    section = Section("volumes", "Volumes")
    rows = []
    for metric in views.VOLUME_METRICS:
        series = views.alliance_years(data, metric, views.period_kind_of(period))
        chosen = _period_figure(series, period)
        if chosen is None:
            continue
        name = catalogue.metrics[metric].name if metric in catalogue.metrics else metric
        change = (
            fmt_pct(float(chosen["yoy_change"]) * 100, signed=True) if pd.notna(chosen["yoy_change"]) else "–"
        )
        figure = published(chosen["value"], chosen["display"], chosen["suppressed"])
        rows.append([name, figure, change, str(int(chosen["coverage"]))])
    section.parts.append(
        table(
            ["Metric", period, "Change on a year earlier", "Organisations"],
            rows,
            "The alliance's volumes",
            (1, 2, 3),
        )
    )
    return section


def _victims(data: ReleaseData, period: str) -> Section:
    section = Section("victims", "Victim identification")
    series = views.alliance_years(data, "le_victims_identified")
    if not series.empty:
        path = views.growth_path(series)
        periods = [str(p) for p in series["period"]]
        required = dict(zip(map(str, path["period"]), map(float, path["value"]), strict=True))
        drawing = svg.line_chart(
            periods,
            [
                ("Identified", [float(v) for v in series["value"]], OKABE_ITO["vermillion"]),
                ("+10% a year", [float(required.get(p, math.nan)) for p in periods], OKABE_ITO["orange"]),
            ],
            title="Children identified as victims, alliance",
        )
        section.parts.append(chart(drawing, "Identified victims against the Global Alliance's +10% a year"))
    cells = views.country_cells(data, "le_victims_identified", period)
    if not cells.empty:
        rows = [
            [f"{country_name(str(r.entity))} ({r.entity})", published(r.value, r.display, r.suppressed)]
            for r in cells.sort_values("entity").itertuples(index=False)
        ]
        section.parts.append(
            table(
                ["Country", f"Victims identified, {period}"],
                rows,
                '"<10": fewer than ten (withheld to protect the children); "x": withheld so that another cell cannot be worked out',
                (1,),
            )
        )
    return section


def _flows(data: ReleaseData, period: str) -> Section:
    section = Section("flows", "Flows and reconciliation")
    flows = views.flows(data, period)
    if not flows.empty:
        rows = []
        for r in flows.itertuples(index=False):
            record = r._asdict()
            sent = record.get("total_sent", math.nan)
            received = record.get("total_received", math.nan)
            gap = record.get("relative_gap", math.nan)
            hidden = bool(record.get("suppressed", False))
            rows.append(
                [
                    str(record.get("flow", "")).replace("_", " "),
                    "x" if hidden else fmt_int(sent),
                    "x" if hidden else fmt_int(received),
                    "x" if hidden or pd.isna(gap) else fmt_pct(float(gap) * 100, signed=True),
                    f"{record.get('pairs_discrepant', 0)} of {record.get('pairs_compared', 0)}",
                ]
            )
        section.parts.append(
            table(
                ["Flow", "Sent", "Received", "Gap", "Pairs outside tolerance"],
                rows,
                f"Flows counted at both ends, {period}",
                (1, 2, 3),
            )
        )
        section.parts.append(
            text(
                "A gap is data for the secretariat, not an error: the two ends count at different moments and by different rules (docs/reconciliation.md)."
            )
        )
    return section


def _methodology(data: ReleaseData, catalogue: Catalogue) -> Section:
    section = Section("methodology", "Methodology")
    section.parts.append(
        text(
            "Sums are added across organisations; ratios are ratios of sums, never averages of ratios; "
            "takedown-time distributions are merged bucket by bucket. Every figure states how many "
            "organisations it rests on."
        )
    )
    section.parts.append(
        text(
            "Progress follows the Open SDG / Statistics Canada method: the ratio of the observed compound "
            "annual growth to the growth the target requires. 0.95 or more is on track, 0.6 or more moderate "
            "progress, above 0 limited progress, 0 or below deterioration; a target met is achieved, and fewer "
            "than two points are insufficient data."
        )
    )
    section.parts.append(text(DISCLOSURE_TEXT))
    section.parts.append(definitions_table(catalogue, data.metrics))
    return section


def _data_notes(data: ReleaseData, period: str) -> Section:
    """What a reader needs to weigh the figures: who reported, what is provisional, where the
    public sources' figures come from."""
    section = Section("data-notes", "Data notes")
    coverage = data.table("coverage")
    if not coverage.empty:
        whole = parse_period(period)
        codes = {str(code) for code in coverage["period"].unique()}
        within = {c for c in codes if (ref := parse_period_or_none(c)) is not None and whole.contains(ref)}
        chosen = coverage.loc[coverage["period"].astype(str).isin(within)]
        if not chosen.empty:
            most = chosen.groupby("stakeholder_type")["organisations"].max().sort_index()
            rows = [[stakeholder_label(str(kind)), fmt_int(float(count))] for kind, count in most.items()]
            section.parts.append(
                table(
                    ["Reported by", "Organisations"],
                    rows,
                    f"Organisations that reported figures for {period} or a part of it (the most for any one metric)",
                    (1,),
                )
            )
    kind = views.period_kind_of(period)
    provisional = sum(
        1
        for metric in views.VOLUME_METRICS
        for row in views.alliance_years(data, metric, kind).itertuples(index=False)
        if str(row.period) == period and bool(getattr(row, "provisional", False))
    )
    section.parts.append(
        text(
            f"{provisional} of the alliance's volume figures for {period} rest on provisional or estimated "
            "submissions; they are marked (provisional) where shown, and a later release may revise them "
            "(revisions are listed in the next chapter, with their reasons)."
        )
    )
    section.parts.append(
        text(
            "Figures of public sources (NCMEC's CyberTipline reports, platforms' own transparency reports) are "
            "shown as their publishers published them and are not adjusted; where two publishers count the "
            "same flow differently, both counts are kept and the gap is reported under Flows. A year is "
            "reported only where all of its parts were reported: a missing quarter is never estimated. "
            "Countries are the reporting organisations' own countries unless a table says otherwise."
        )
    )
    return section


def _revisions(data: ReleaseData) -> Section:
    section = Section("revisions", "Revisions and correction notices")
    for notice in data.notices:
        section.parts.append(text(f"Notice of {notice.created_at:%d %B %Y}: {notice.text}"))
    log = data.table("revisions")
    if log.empty:
        section.parts.append(text(f"Release {data.number} changes no figure of the previous release."))
        return section
    top = log.sort_values("abs_change", ascending=False, na_position="last").head(30)
    rows = [
        [
            str(r.key).replace("|", ", "),
            str(r.change),
            fmt_int(r.old_value),
            fmt_int(r.new_value),
            str(r.reason).replace("_", " "),
        ]
        for r in top.itertuples(index=False)
    ]
    section.parts.append(
        table(
            ["Figure", "Change", "Before", "After", "Why"],
            rows,
            "The 30 largest changes against the previous release",
            (2, 3),
        )
    )
    return section


def _annex(data: ReleaseData, catalogue: Catalogue, period: str) -> Section:
    section = Section("countries", "Country annex")
    countries = sorted({str(e) for m in ANNEX_METRICS for e in data.cells(m, level="country")["entity"]})
    names = [catalogue.metrics[m].name if m in catalogue.metrics else m for m in ANNEX_METRICS]
    rows = []
    for iso in countries:
        profile = views.country_profile(data, iso, ANNEX_METRICS, views.period_kind_of(period))
        chosen = profile.loc[profile["period"].astype(str) == period]
        figures = {
            str(r.metric): published(r.value, r.display, r.suppressed) for r in chosen.itertuples(index=False)
        }
        rows.append([f"{country_name(iso)} ({iso})", *[figures.get(m, "–") for m in ANNEX_METRICS]])
    section.parts.append(
        table(
            ["Country", *names], rows, f'Each country\'s figures, {period} ("–": not reported)', (1, 2, 3, 4)
        )
    )
    return section


def alliance_report(
    data: ReleaseData, catalogue: Catalogue, specs: Sequence[TargetSpec], period: str
) -> dict[str, Any]:
    """Everything the alliance report shows for ``period``: a year of the release, or a
    half-year or quarter (its figures are those of that period; targets and the victims'
    growth path stay yearly, as the targets are set)."""
    periods = views.report_periods(data)
    if period not in periods:
        years = [p for p in periods if p.isdigit()]
        raise ReportError(
            f"release {data.number} has no alliance figures for {period} "
            f"(it has: {', '.join(years) or 'none'}, and their half-years and quarters)"
        )
    sections = [
        _summary(data, period),
        *_target_sections(data, specs),
        _takedown(data, catalogue, period),
        _volumes(data, catalogue, period),
        _victims(data, period),
        _flows(data, period),
        _methodology(data, catalogue),
        _data_notes(data, period),
        _revisions(data),
        _annex(data, catalogue, period),
    ]
    return document(data.summary, f"Alliance transparency report {period}", period, sections)
