"""One country's profile for a year of a published release: the figures of the organisations
based in it, grouped by the stakeholder type that reports each metric, with their trend,
takedown speed where published, and the definitions. As the dashboards' country page, from
the same published cells; hidden figures keep their mark.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

import numpy as np
import pandas as pd

from hub import public_views as views
from hub.catalogue import Catalogue
from hub.countries import country_name, is_country_code
from hub.presentation import STAKEHOLDER_COLOURS, fmt_pct, stakeholder_label
from hub.published import ReleaseData
from reports import svg
from reports.parts import (
    COMBINATION_TEXT,
    DISCLOSURE_TEXT,
    ReportError,
    Section,
    chart,
    definitions_table,
    document,
    published,
    table,
    text,
)

TREND_LINES = 3  # count metrics drawn per stakeholder type


def _reporter(catalogue: Catalogue, metric: str) -> str:
    spec = catalogue.metrics.get(metric)
    return spec.reported_by[0] if spec and spec.reported_by else "other"


def _takedown(data: ReleaseData, catalogue: Catalogue, iso: str, period: str) -> Section | None:
    rows = []
    for metric in views.TAKEDOWN_METRICS:
        name = catalogue.metrics[metric].name if metric in catalogue.metrics else metric
        for statistic, param, label in (
            *[("share_within", h, f"Share within {int(h)} hours") for h in views.SHARE_HOURS],
            ("percentile", 0.5, "Median (hours)"),
            ("percentile", 0.9, "90th percentile (hours)"),
        ):
            cells = data.cells(metric, statistic=statistic, level="country", entity=iso)
            cells = cells.loc[(cells["period"] == period) & np.isclose(cells["param"], param)]
            if cells.empty:
                continue
            cell = cells.iloc[0]
            unit = "share" if statistic == "share_within" else "hours"
            rows.append([name, label, published(cell["value"], cell["display"], cell["suppressed"], unit)])
    if not rows:
        return None
    section = Section("takedown", "Takedown speed")
    section.parts.append(table(["Metric", "Statistic", period], rows, f"Takedown speed, {period}", (2,)))
    return section


def country_report(data: ReleaseData, catalogue: Catalogue, iso: str, period: str) -> dict[str, Any]:
    """Everything the country profile shows for ``iso`` in ``period`` (a year of the release)."""
    code = iso.upper()
    if not is_country_code(code):
        raise ReportError(f"{iso!r} is not an ISO 3166 country code")
    profile = views.country_profile(data, code)
    years = sorted({str(p) for p in profile["period"]}, reverse=True)
    if period not in years:
        raise ReportError(
            f"release {data.number} has no figures for {country_name(code)} in {period} (it has: {', '.join(years) or 'none'})"
        )
    name = country_name(code)
    by_type: dict[str, list[Any]] = defaultdict(list)
    for metric, cells in profile.groupby("metric", sort=True):
        by_type[_reporter(catalogue, str(metric))].append((str(metric), cells.sort_values("period")))

    summary = Section("summary", "Summary")
    summary.parts.append(
        text(
            f"Figures of the alliance's members based in {name}, as published in release {data.number}. "
            "Each metric is reported by one kind of organisation; the tables follow them."
        )
    )
    sections = [summary]
    for kind in sorted(by_type, key=stakeholder_label):
        section = Section(f"type-{kind}", stakeholder_label(kind))
        rows: list[list[str]] = []
        lines: list[tuple[str, pd.DataFrame]] = []
        for metric, series in by_type[kind]:
            spec = catalogue.metrics.get(metric)
            unit = spec.unit if spec else "count"
            chosen = series.loc[series["period"].astype(str) == period]
            if chosen.empty:
                continue
            cell = chosen.iloc[0]
            change = (
                fmt_pct(float(cell["yoy_change"]) * 100, signed=True)
                if not math.isnan(float(cell["yoy_change"]))
                else "–"
            )
            rows.append(
                [
                    spec.name if spec else metric,
                    published(cell["value"], cell["display"], cell["suppressed"], unit),
                    change,
                ]
            )
            if unit == "count" and len(lines) < TREND_LINES and series["value"].notna().sum() > 1:
                lines.append((spec.name if spec else metric, series))
        if not rows:
            continue
        section.parts.append(
            table(
                ["Metric", period, "Change on a year earlier"],
                rows,
                f"{stakeholder_label(kind)} in {name}, {period}",
                (1, 2),
            )
        )
        for label, series in lines:
            periods = [str(p) for p in series["period"]]
            drawing = svg.line_chart(
                periods,
                [(label, [float(v) for v in series["value"]], STAKEHOLDER_COLOURS.get(kind, svg.INK))],
                title=f"{label}, {name}",
            )
            section.parts.append(
                chart(drawing, f"{label} by year; a gap is a figure withheld or not reported")
            )
        sections.append(section)
    takedown = _takedown(data, catalogue, code, period)
    if takedown is not None:
        sections.append(takedown)
    methodology = Section("methodology", "Methodology")
    methodology.parts.extend(
        [
            text(COMBINATION_TEXT),
            text(DISCLOSURE_TEXT),
            definitions_table(catalogue, sorted(profile["metric"].unique())),
        ]
    )
    sections.append(methodology)
    summary_rows = [
        [stakeholder_label(k), str(len(v))]
        for k, v in sorted(by_type.items(), key=lambda kv: stakeholder_label(kv[0]))
    ]
    summary.parts.append(table(["Reported by", "Metrics"], summary_rows, "What the profile holds", (1,)))
    return document(data.summary, f"{name} ({code}): country profile {period}", period, sections)
