"""What each public page shows, computed from one published release: plain functions the
dashboards format and the tests check, so no figure is worked out inside a callback.

Every figure comes from the release's protected cells: a hidden cell keeps its ``display``
("<10" or "x") and no value, and nothing here recomputes a total from its parts (that would
undo disclosure control).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from hub.catalogue import BucketScheme, Catalogue
from hub.figures import ALLIANCE, NO_PARAM
from hub.periods import parse_period_or_none
from hub.progress import select_series, series_key
from hub.published import ReleaseData
from hub.targets import GrowthTarget, TargetSpec
from hub.vocab import DIMENSIONS, STAKEHOLDER_TYPES, TOTAL

TAKEDOWN_METRICS = ("ht_notice_to_removal_time", "co_takedown_time")
ORGANISATION_COUNTRY = "organisation_country"  # a breakdown by the level, not a dimension
TAKEDOWN_BREAKDOWNS = (ORGANISATION_COUNTRY, "country", "notice_source", "category")
SHARE_HOURS = (24.0, 72.0, 168.0)
QUANTILES = (0.5, 0.9)
VICTIM_METRICS = ("le_victims_identified", "le_victims_identified_icse")
REFERRAL_METRICS = ("ch_referrals_sent", "le_referrals_received")
VOLUME_METRICS = (
    "ch_reports_received",
    "ht_reports_received",
    "ht_notices_sent",
    "co_notices_received",
    "co_items_actioned",
    "co_reports_to_authority",
)
VICTIM_GROWTH = 0.10  # the Global Alliance's goal: identified victims +10% a year
STATUS_ORDER = (
    "achieved",
    "on_track",
    "moderate_progress",
    "limited_progress",
    "deterioration",
    "not_achieved",
    "insufficient_data",
)


@dataclass(frozen=True)
class Figure:
    """One published figure as a reader sees it."""

    period: str
    value: float  # NaN when hidden or not available
    display: str  # the release's text: the rounded value, "<10" or "x"
    suppressed: bool
    reason: str  # why hidden ("" when shown)
    provisional: bool = False
    yoy_change: float = math.nan
    lower: float = math.nan
    upper: float = math.nan


def _figures(cells: pd.DataFrame) -> list[Figure]:
    return [
        Figure(
            period=str(row.period),
            value=float(row.value) if pd.notna(row.value) else math.nan,
            display=str(row.display),
            suppressed=bool(row.suppressed),
            reason=str(row.suppression_reason),
            provisional=bool(row.provisional),
            yoy_change=float(row.yoy_change) if pd.notna(row.yoy_change) else math.nan,
            lower=float(row.lower) if pd.notna(row.lower) else math.nan,
            upper=float(row.upper) if pd.notna(row.upper) else math.nan,
        )
        for row in cells.sort_values("period").itertuples(index=False)
    ]


@dataclass(frozen=True)
class Headline:
    """A headline figure: its latest published year and the yearly series behind it."""

    metric: str
    label: str
    unit: str
    latest: Figure | None
    series: list[Figure] = field(default_factory=list)


HEADLINES: tuple[tuple[str, str, float, str, str], ...] = (
    # metric, statistic, param, label, unit shown
    ("le_victims_identified", "value", NO_PARAM, "Children identified as victims", "count"),
    ("ch_reports_received", "value", NO_PARAM, "Reports received by clearinghouses", "count"),
    ("ht_notices_sent", "value", NO_PARAM, "Notices sent by hotlines", "count"),
    ("co_items_actioned", "value", NO_PARAM, "Items actioned by companies", "count"),
    (
        "ht_notice_to_removal_time",
        "share_within",
        72.0,
        "Hotline notices removed within 72 hours",
        "share",
    ),
    ("co_takedown_time", "percentile", 0.5, "Median time to takedown, companies", "hours"),
)


def period_kind_of(period: str) -> str:
    """The kind of a period code (2025: year, 2025-H1: half_year, 2025-Q3: quarter, ...)."""
    ref = parse_period_or_none(period)
    return ref.kind if ref is not None else "year"


def headlines(data: ReleaseData, period_kind: str = "year") -> list[Headline]:
    """The alliance's headline figures, each with its latest period (of ``period_kind``) that
    has a cell."""
    found = []
    for metric, statistic, param, label, unit in HEADLINES:
        series = _figures(
            data.alliance_series(metric, statistic=statistic, param=param, period_kind=period_kind)
        )
        found.append(Headline(metric, label, unit, series[-1] if series else None, series))
    return found


# --- targets ---------------------------------------------------------------------------------


def target_table(data: ReleaseData, scope: str | None = None) -> pd.DataFrame:
    """The release's target statuses, worst first within achieved/on track/... order; ``scope``
    filters on the scope type (alliance, country, stakeholder_type)."""
    targets = data.table("targets")
    if targets.empty:
        return targets
    if scope:
        targets = targets.loc[targets["scope"].astype(str).str.split().str[0] == scope]
    order = {status: rank for rank, status in enumerate(STATUS_ORDER)}
    ranks = targets["status"].map(lambda s: order.get(str(s), len(order)))
    return (
        targets.assign(_rank=ranks)
        .sort_values(["_rank", "code"])
        .drop(columns="_rank")
        .reset_index(drop=True)
    )


@dataclass(frozen=True)
class TargetPath:
    """A target's published series beside the path it requires from its baseline."""

    code: str
    actual: pd.DataFrame  # period, value, provisional (NaN = hidden or missing)
    required: pd.DataFrame  # year, value: from the baseline to the target year


def required_path(
    baseline_year: int,
    baseline_value: float,
    target_year: int,
    target_value: float,
    annual_rate: float | None,
) -> pd.DataFrame:
    """The values a target requires each year, as its progress method reads it: compound
    growth from the baseline (at ``annual_rate`` for a growth target, otherwise the rate that
    reaches the target value in the target year); a straight line when the baseline is 0."""
    years = np.arange(baseline_year, target_year + 1)
    elapsed = years - baseline_year
    if annual_rate is not None and not math.isnan(annual_rate):
        values = baseline_value * (1.0 + annual_rate) ** elapsed
    elif target_year == baseline_year:
        values = np.full(len(years), target_value, dtype=float)
    elif baseline_value > 0 and target_value > 0:
        values = baseline_value * (target_value / baseline_value) ** (elapsed / (target_year - baseline_year))
    else:
        values = baseline_value + (target_value - baseline_value) * elapsed / (target_year - baseline_year)
    return pd.DataFrame({"year": years, "value": np.asarray(values, dtype=float)})


def target_path(data: ReleaseData, spec: TargetSpec) -> TargetPath:
    """The series the target is judged on (as published) and its required path."""
    key = series_key(spec)
    frame = data.cells(
        key.metric,
        statistic=key.statistic,
        level=key.level,
        entity=key.entity,
        period_kind=None,
        fixed={"country": key.country},
        param=key.param,
    ).assign(metric=key.metric)
    actual = select_series(spec, frame)
    targets = data.table("targets")
    row = targets.loc[targets["code"] == spec.code]
    required = pd.DataFrame(columns=["year", "value"])
    if not row.empty:
        first = row.iloc[0]
        baseline_value = float(first["baseline_value"]) if pd.notna(first["baseline_value"]) else math.nan
        baseline_year = int(str(first["baseline_period"])[:4]) if str(first["baseline_period"]) else None
        rate = float(spec.parameters.annual_rate) if isinstance(spec, GrowthTarget) else None
        if baseline_year is not None and not math.isnan(baseline_value):
            required = required_path(
                baseline_year, baseline_value, int(first["target_year"]), float(first["target_value"]), rate
            )
    return TargetPath(spec.code, actual, required)


# --- takedown speed ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Takedown:
    """Time to takedown of one metric and year, for the alliance or one breakdown value."""

    metric: str
    period: str
    histogram: pd.DataFrame  # time_bucket, events, display, suppressed (bucket order)
    shares: list[tuple[float, Figure | None]]  # hours -> share actioned within
    quantiles: list[tuple[float, Figure | None]]  # 0.5, 0.9 -> hours with bounds
    events: Figure | None
    breakdown: pd.DataFrame  # by value of the breakdown dimension: events, shares, median
    trend: pd.DataFrame  # period, median, p90, share72 (NaN hidden)


def _one(cells: pd.DataFrame, period: str) -> Figure | None:
    found = _figures(cells.loc[cells["period"] == period])
    return found[0] if found else None


def takedown_periods(data: ReleaseData, metric: str, period_kind: str = "year") -> list[str]:
    """Periods (years by default) with a published event count for ``metric``, newest first."""
    cells = data.cells(
        metric, statistic="events", fixed={"time_bucket": "_T"}, entity=ALLIANCE, period_kind=period_kind
    )
    return sorted({str(p) for p in cells["period"]}, reverse=True)


def takedown_breakdowns(data: ReleaseData, metric: str) -> list[str]:
    """The breakdowns of ``metric``'s event counts the release has cells for."""
    found = (
        [ORGANISATION_COUNTRY] if not data.cells(metric, statistic="events", level="country").empty else []
    )
    for name in TAKEDOWN_BREAKDOWNS[1:]:
        if not data.cells(metric, statistic="events", entity=ALLIANCE, vary=(name,)).empty:
            found.append(name)
    return found


def takedown(
    data: ReleaseData,
    buckets: BucketScheme,
    metric: str,
    period: str,
    by: str = ORGANISATION_COUNTRY,
    value: str | None = None,
) -> Takedown:
    """The distribution of ``metric`` in ``period``: histogram on the bucket scheme, shares
    within 24 h / 72 h / 7 days, median and p90 with their bounds; one row per value of ``by``;
    the yearly trend. ``value`` narrows every figure but the breakdown to one value of ``by``."""
    fixed = {by: value} if value and by != ORGANISATION_COUNTRY else {}
    kind = period_kind_of(period)  # a year, or a half-year, quarter or month of one
    hist = data.cells(
        metric, statistic="events", entity=ALLIANCE, fixed=fixed, vary=("time_bucket",), period_kind=kind
    )
    hist = hist.loc[hist["period"] == period]
    order = {code: rank for rank, code in enumerate(buckets.codes)}
    histogram = pd.DataFrame(
        {
            "time_bucket": hist["time_bucket"].astype(str),
            "events": hist["value"].astype(float),
            "display": hist["display"].astype(str),
            "suppressed": hist["suppressed"].astype(bool),
        }
    )
    histogram = (
        histogram.assign(_o=histogram["time_bucket"].map(lambda c: order.get(c, len(order))))
        .sort_values("_o")
        .drop(columns="_o")
        .reset_index(drop=True)
    )
    events = _one(
        data.cells(
            metric,
            statistic="events",
            entity=ALLIANCE,
            fixed={**fixed, "time_bucket": "_T"},
            period_kind=kind,
        ),
        period,
    )
    share_cells = data.cells(metric, statistic="share_within", entity=ALLIANCE, fixed=fixed, period_kind=kind)
    shares = [(h, _one(share_cells.loc[np.isclose(share_cells["param"], h)], period)) for h in SHARE_HOURS]
    q_cells = data.cells(metric, statistic="percentile", entity=ALLIANCE, fixed=fixed, period_kind=kind)
    quantiles = [(q, _one(q_cells.loc[np.isclose(q_cells["param"], q)], period)) for q in QUANTILES]

    # By the organisation's own country (a level) or by a dimension of the metric.
    where: dict[str, object] = (
        {"level": "country"} if by == ORGANISATION_COUNTRY else {"entity": ALLIANCE, "vary": (by,)}
    )
    column = "entity" if by == ORGANISATION_COUNTRY else by
    where["period_kind"] = kind
    part_events = data.cells(metric, statistic="events", **where)  # type: ignore[arg-type]
    part_shares = data.cells(metric, statistic="share_within", param=72.0, **where)  # type: ignore[arg-type]
    part_median = data.cells(metric, statistic="percentile", param=0.5, **where)  # type: ignore[arg-type]
    rows = []
    for name, frame in (("events", part_events), ("share72", part_shares), ("median", part_median)):
        chosen = frame.loc[frame["period"] == period, [column, "value", "display"]]
        rows.append(chosen.rename(columns={"value": name, "display": f"{name}_display"}).set_index(column))
    breakdown = rows[0].join(rows[1:], how="outer").reset_index().rename(columns={column: "group"})
    breakdown = breakdown.sort_values("events", ascending=False, na_position="last").reset_index(drop=True)

    trend_parts = {
        "median": q_cells.loc[np.isclose(q_cells["param"], 0.5)],
        "p90": q_cells.loc[np.isclose(q_cells["param"], 0.9)],
        "share72": share_cells.loc[np.isclose(share_cells["param"], 72.0)],
    }
    trend = pd.DataFrame({"period": sorted({str(p) for f in trend_parts.values() for p in f["period"]})})
    for name, frame in trend_parts.items():
        trend = trend.merge(
            frame[["period", "value"]].rename(columns={"value": name}), on="period", how="left"
        )
    return Takedown(metric, period, histogram, shares, quantiles, events, breakdown, trend)


# --- victims, volumes, flows, countries, organisations ----------------------------------------


def alliance_years(data: ReleaseData, metric: str, period_kind: str = "year") -> pd.DataFrame:
    """The alliance's figures of ``metric`` per period of one kind, years by default (period,
    value, display, suppressed, yoy)."""
    cells = data.alliance_series(metric, period_kind=period_kind)
    return cells.loc[
        :,
        [
            "period",
            "value",
            "display",
            "suppressed",
            "suppression_reason",
            "yoy_change",
            "provisional",
            "coverage",
        ],
    ]


def report_years(data: ReleaseData) -> list[str]:
    """The years the release has alliance volumes for, newest first (a report per year)."""
    return sorted(
        {str(p) for metric in VOLUME_METRICS for p in data.alliance_series(metric)["period"]}, reverse=True
    )


def report_periods(data: ReleaseData) -> list[str]:
    """Every period (years, half-years, quarters) the release has alliance volumes for:
    what an alliance report can be made for."""
    return sorted(
        {
            str(p)
            for kind in ("year", "half_year", "quarter")
            for metric in VOLUME_METRICS
            for p in data.alliance_series(metric, period_kind=kind)["period"]
        },
        reverse=True,
    )


def growth_path(series: pd.DataFrame, rate: float = VICTIM_GROWTH) -> pd.DataFrame:
    """The +``rate`` a year path from the first published year of ``series`` (its first
    shown value), beside the actual values."""
    shown = series.loc[series["value"].notna()]
    if shown.empty:
        return pd.DataFrame(columns=["period", "value"])
    first_year, first_value = int(str(shown.iloc[0]["period"])[:4]), float(shown.iloc[0]["value"])
    years = [int(str(p)[:4]) for p in series["period"]]
    return pd.DataFrame(
        {
            "period": [str(y) for y in years if y >= first_year],
            "value": [first_value * (1 + rate) ** (y - first_year) for y in years if y >= first_year],
        }
    )


def country_cells(data: ReleaseData, metric: str, period: str) -> pd.DataFrame:
    """``metric`` per country (the organisations' own countries) in ``period``: entity = ISO
    code, with the display text of hidden cells."""
    cells = data.cells(metric, level="country", period_kind=period_kind_of(period))
    cells = cells.loc[cells["period"] == period]
    return (
        cells.loc[:, ["entity", "value", "display", "suppressed", "suppression_reason", "coverage"]]
        .sort_values("entity")
        .reset_index(drop=True)
    )


def metric_periods(data: ReleaseData, metric: str, level: str = "alliance") -> list[str]:
    """Years with a cell of ``metric`` at ``level``, newest first."""
    cells = data.cells(metric, level=level)
    return sorted({str(p) for p in cells["period"]}, reverse=True)


def by_stakeholder_type(data: ReleaseData, metric: str) -> pd.DataFrame:
    """Yearly ``metric`` per stakeholder type (period, entity, value, display)."""
    cells = data.cells(metric, level="stakeholder_type", entity=list(STAKEHOLDER_TYPES))
    return cells.loc[:, ["period", "entity", "value", "display", "suppressed", "yoy_change"]]


def by_dimension(data: ReleaseData, metric: str, dimension: str) -> pd.DataFrame:
    """Yearly alliance ``metric`` broken down by ``dimension`` (period, value of it, figure)."""
    cells = data.cells(metric, entity=ALLIANCE, vary=(dimension,))
    return (
        cells.loc[:, ["period", dimension, "value", "display", "suppressed", "yoy_change"]]
        .rename(columns={dimension: "group"})
        .sort_values(["period", "group"])
        .reset_index(drop=True)
    )


def flows(data: ReleaseData, period: str) -> pd.DataFrame:
    """The reconciliation summary of ``period``: each flow with what senders and receivers
    counted and the gap (hidden totals stay hidden)."""
    table = data.table("reconciliation")
    if table.empty:
        return table
    return table.loc[table["period"].astype(str) == period].reset_index(drop=True)


def reconciliation_periods(data: ReleaseData) -> list[str]:
    table = data.table("reconciliation")
    if table.empty:
        return []
    years = table.loc[table["period_kind"].astype(str) == "year", "period"].astype(str)
    return sorted(set(years), reverse=True)


def named_organisations(data: ReleaseData) -> pd.DataFrame:
    """Organisations whose own figures the release publishes (they consented to be named, or
    publish their figures themselves): code, stakeholder type, country, figures."""
    observations = data.table("observations")
    if observations.empty:
        return pd.DataFrame(columns=["organisation", "stakeholder_type", "org_country", "figures"])
    grouped = observations.groupby(["organisation", "stakeholder_type", "org_country"], observed=True).size()
    return grouped.rename("figures").reset_index().sort_values("organisation").reset_index(drop=True)


PROFILE_COLUMNS = ["metric", "period", "value", "display", "suppressed", "yoy_change"]


def organisation_figures(data: ReleaseData, organisation: str) -> pd.DataFrame:
    """One named organisation's yearly published figures (totals only)."""
    frame = data.entity_totals("organisation", organisation)
    return frame.loc[:, PROFILE_COLUMNS].sort_values(["metric", "period"]).reset_index(drop=True)


def country_profile(
    data: ReleaseData, iso: str, metrics: Sequence[str] | None = None, period_kind: str = "year"
) -> pd.DataFrame:
    """A country's figures (organisations based in it) per period of one kind, years by
    default, optionally of ``metrics`` only."""
    frame = data.entity_totals("country", iso, period_kind=period_kind)
    if metrics is not None:
        frame = frame.loc[frame["metric"].isin(list(metrics))]
    return frame.loc[:, PROFILE_COLUMNS].sort_values(["metric", "period"]).reset_index(drop=True)


def metric_definitions(catalogue: Catalogue, metrics: Sequence[str]) -> pd.DataFrame:
    """Each published metric's definition, unit, combination rule and source."""
    rows = []
    for code in metrics:
        spec = catalogue.metrics.get(code)
        if spec is None:
            continue
        rows.append(
            {
                "metric": code,
                "name": spec.name,
                "definition": spec.definition,
                "unit": spec.unit,
                "combination": spec.combination,
                "reported_by": ", ".join(spec.reported_by),
                "disclosure_class": spec.disclosure_class,
                "source": spec.source_framework or "",
            }
        )
    return pd.DataFrame(
        rows,
        columns=[
            "metric",
            "name",
            "definition",
            "unit",
            "combination",
            "reported_by",
            "disclosure_class",
            "source",
        ],
    )


# --- published sources' own series (in the release's observations) -------------------------


def source_breakdown(
    data: ReleaseData, organisation: str, metric: str, dimension: str, period: str
) -> pd.DataFrame:
    """A named organisation's own published figures of ``metric`` in ``period`` broken down by
    ``dimension`` only (group, value, display), largest first: e.g. NCMEC's CyberTipline
    reports per provider (counterpart) or per country."""
    observations = data.table("observations")
    if observations.empty:
        return pd.DataFrame(columns=["group", "value", "display", "suppressed"])
    rows = observations.loc[
        (observations["organisation"] == organisation)
        & (observations["metric"] == metric)
        & (observations["period"].astype(str) == period)
    ]
    rows = rows.loc[rows[dimension] != TOTAL]
    if rows.empty:
        return pd.DataFrame(columns=["group", "value", "display", "suppressed"])
    # One series: the rows sharing the most common values of the other dimensions (NCMEC's
    # per-provider reports are all notice_source provider_report, for example).
    others = [d for d in DIMENSIONS if d != dimension]
    shape = rows[others].astype(str).agg("|".join, axis=1)
    rows = rows.loc[shape == shape.value_counts().index[0]]
    found = rows.loc[:, [dimension, "value", "display", "suppressed"]].rename(columns={dimension: "group"})
    return found.sort_values("value", ascending=False, na_position="last").reset_index(drop=True)


def source_periods(data: ReleaseData, organisation: str, metric: str, dimension: str) -> list[str]:
    """Years in which ``organisation`` published ``metric`` broken down by ``dimension``."""
    observations = data.table("observations")
    if observations.empty:
        return []
    rows = observations.loc[
        (observations["organisation"] == organisation)
        & (observations["metric"] == metric)
        & (observations[dimension] != TOTAL)
    ]
    return sorted({str(p) for p in rows["period"]}, reverse=True)


def sankey_links(
    flow_rows: pd.DataFrame, flow_types: Mapping[str, tuple[tuple[str, ...], tuple[str, ...]]]
) -> pd.DataFrame:
    """One link per flow with a published total: from the senders' stakeholder type to the
    receivers' (source, target, value = what senders counted, flow)."""
    links = []
    for row in flow_rows.itertuples(index=False):
        senders, receivers = flow_types.get(str(row.flow), ((), ()))
        value = float(row.total_sent) if pd.notna(row.total_sent) else math.nan
        if not senders or not receivers or math.isnan(value) or bool(getattr(row, "suppressed", False)):
            continue
        links.append(
            {
                "source": "+".join(senders),
                "target": "+".join(receivers),
                "value": value,
                "flow": str(row.flow),
            }
        )
    return pd.DataFrame(links, columns=["source", "target", "value", "flow"])
