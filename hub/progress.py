"""Target progress: the status of every target, computed from the indicator table.

The method is Open SDG's, after Statistics Canada's (docs/targets.md, "Progress method"):
compare the compound annual growth rate (CAGR) observed since the baseline with the rate
needed to reach the target on time. A published method, the same for every target, is what
lets a reader check a status instead of trusting a colour, so every result carries the
numbers it rests on and a sentence saying how they were combined.

Everything here is a pure function of target specifications (hub.targets) and an indicator
table (hub.figures columns): no database, so a release can store the result and a test can
recompute it from a frame built by hand.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from hub.errors import HubError
from hub.figures import ALLIANCE, NO_PARAM
from hub.periods import PeriodError, PeriodRef, parse_period
from hub.targets import (
    HIGHER,
    AdoptionTarget,
    GrowthTarget,
    ParticipationTarget,
    ShareThresholdTarget,
    TargetSpec,
    TimeThresholdTarget,
)
from hub.vocab import DIMENSIONS, TOTAL

# Status codes, best first; STATUS_LABELS are the words a page shows.
ACHIEVED = "achieved"
NOT_ACHIEVED = "not_achieved"
ON_TRACK = "on_track"
MODERATE = "moderate_progress"
LIMITED = "limited_progress"
DETERIORATION = "deterioration"
INSUFFICIENT = "insufficient_data"
STATUSES = (ACHIEVED, ON_TRACK, MODERATE, LIMITED, DETERIORATION, NOT_ACHIEVED, INSUFFICIENT)
STATUS_LABELS = {
    ACHIEVED: "achieved",
    ON_TRACK: "on track",
    MODERATE: "moderate progress",
    LIMITED: "limited progress",
    DETERIORATION: "deterioration",
    NOT_ACHIEVED: "not achieved",
    INSUFFICIENT: "insufficient data",
}
# Lower bounds of the bands of the ratio of observed to required CAGR (Open SDG).
ON_TRACK_RATIO = 0.95
MODERATE_RATIO = 0.6

METHOD = (
    "Open SDG / Statistics Canada progress measure: ratio of the compound annual growth rate "
    "observed since the baseline to the rate required to reach the target by its year "
    "(on track >= 0.95, moderate progress >= 0.6, limited progress > 0, deterioration <= 0); "
    "achieved when the latest value meets the target; not achieved when the target year's "
    "figure misses it; insufficient data without a baseline and a later value (docs/targets.md)"
)

# Quantiles of the time-threshold statistics computed from the buckets; "mean" is a value.
QUANTILES = {"median": 0.5, "p90": 0.9}

REQUIRED_COLUMNS = ("metric", "period", "period_kind", "level", "entity", "statistic", "value")

# The columns of assess_targets and progress_history: what a release stores per target.
PROGRESS_TYPES: dict[str, str] = {
    "code": "string",
    "name": "string",
    "kind": "string",
    "metric": "string",
    "scope": "string",  # "alliance", "stakeholder_type company", "country GB (country_dimension)"
    "direction": "string",
    "level": "string",  # the indicator row the series is read from (hub.figures)
    "entity": "string",
    "country": "string",  # the country dimension of that row (TOTAL unless country_dimension)
    "statistic": "string",
    "param": "float64",
    "status": "string",  # one of STATUSES
    "status_label": "string",
    "baseline_period": "string",
    "baseline_rule": "string",  # observed | published
    "baseline_value": "float64",
    "baseline_source": "string",
    "latest_period": "string",
    "latest_value": "float64",
    "target_value": "float64",  # the level to reach (for growth: B x (1 + r)^T)
    "target_year": "int64",
    "annual_rate": "float64",  # growth targets: r; NaN otherwise
    "years_elapsed": "float64",  # t: end of the baseline period to end of the latest
    "years_to_target": "float64",  # T: end of the baseline period to end of the target year
    "required_cagr": "float64",
    "observed_cagr": "float64",
    "ratio": "float64",  # Open SDG's R
    "points_used": "int64",  # figures the status rests on: the baseline and the latest (0-2)
    "points_available": "int64",  # figures from the baseline to the latest, both included
    "provisional": "bool",  # the baseline or the latest figure is provisional or estimated
    "as_of_year": "Int64",  # figures after this year ignored; <NA> = all
    "method": "string",
    "explanation": "string",
}
PROGRESS_COLUMNS = tuple(PROGRESS_TYPES)


class ProgressError(HubError):
    """A target or an indicator table progress cannot be computed from (bad input)."""


@dataclass(frozen=True)
class SeriesKey:
    """Which rows of the indicator table hold a target's series (one row per period)."""

    metric: str
    level: str
    entity: str
    statistic: str
    param: float = NO_PARAM
    country: str = TOTAL  # every other dimension is TOTAL


def series_key(target: TargetSpec) -> SeriesKey:
    """The indicator rows a target is judged on, from its kind, scope and parameters.

    Scope: alliance -> level alliance; stakeholder_type -> that level and type; country with
    basis organisation_country -> level country; with basis country_dimension -> the alliance
    figure broken down by the metric's own country dimension. A population (adoption, counted
    reporters) is a stakeholder type, so those targets read the stakeholder_type level.
    """
    scope = target.scope
    level, entity, country = "alliance", ALLIANCE, TOTAL
    if scope.type == "stakeholder_type":
        level, entity = "stakeholder_type", str(scope.value)
    elif scope.type == "country":
        if (scope.basis or "organisation_country") == "country_dimension":
            country = str(scope.value)
        else:
            level, entity = "country", str(scope.value)
    elif scope.type != "alliance":
        raise ProgressError(f"target {target.code!r}: unknown scope type {scope.type!r}")

    # An adoption share, or a count of reporting members, is over a population (validated:
    # a metric_value participation target has none).
    population = (
        target.parameters.population if isinstance(target, AdoptionTarget | ParticipationTarget) else None
    )
    if population is not None:
        if scope.type == "country":
            raise ProgressError(
                f"target {target.code!r}: a country scope with a population ({population.stakeholder_type}) "
                "cannot be read: the indicator table has no country x stakeholder type level"
            )
        level, entity = "stakeholder_type", population.stakeholder_type

    statistic, param = "value", NO_PARAM
    if isinstance(target, ShareThresholdTarget):
        statistic, param = "share_within", float(target.parameters.threshold_hours)
    elif isinstance(target, TimeThresholdTarget) and target.parameters.statistic in QUANTILES:
        statistic, param = "percentile", QUANTILES[target.parameters.statistic]
    elif isinstance(target, ParticipationTarget) and target.parameters.counted == "reporting_organisations":
        statistic = "reporters"
    return SeriesKey(target.metric, level, entity, statistic, param, country)


def _check_columns(indicators: pd.DataFrame) -> None:
    if not isinstance(indicators, pd.DataFrame):
        raise ProgressError(
            f"the indicator table must be a pandas DataFrame, not {type(indicators).__name__}"
        )
    missing = [name for name in REQUIRED_COLUMNS if name not in indicators.columns]
    if missing:
        raise ProgressError(f"the indicator table lacks column(s) {', '.join(missing)} (see hub.figures)")


@dataclass(frozen=True)
class Point:
    """One figure of a target's series: NaN ``value`` = missing."""

    ref: PeriodRef
    value: float
    provisional: bool

    @property
    def period(self) -> str:
        return self.ref.code


def _column(frame: pd.DataFrame, name: str) -> np.ndarray:
    """A column as a plain object array (missing as None): numpy compares it without pandas'
    per-operation cost, which dominates on the small tables of one target."""
    return np.asarray(frame[name].to_numpy(dtype=object, na_value=None))


def series_points(target: TargetSpec, indicators: pd.DataFrame) -> list[Point]:
    """The target's series, one point per period in time order, all period kinds kept (the
    assessment picks the baseline's kind).

    A value that is not a finite number (NaN: not available or suppressed; infinite: a
    percentile beyond the last bucket edge) is missing (NaN); a suppressed cell (a
    ``suppressed`` column, as disclosure control adds) is missing too. A negative value, two
    rows for one period or a period code that does not match its kind is an error: no figure
    the method reads can be any of those.
    """
    _check_columns(indicators)
    key = series_key(target)
    frame = indicators
    mask = (
        (_column(frame, "metric") == key.metric)
        & (_column(frame, "level") == key.level)
        & (_column(frame, "entity") == key.entity)
        & (_column(frame, "statistic") == key.statistic)
    )
    for name in DIMENSIONS:
        if name in frame.columns:
            mask &= _column(frame, name) == (key.country if name == "country" else TOTAL)
        elif name == "country" and key.country != TOTAL:
            mask &= False
    if "param" in frame.columns:
        # NaN is read as NO_PARAM: a frame concatenated from pieces may leave it unset.
        params = np.nan_to_num(frame["param"].to_numpy(dtype="float64", na_value=np.nan), nan=NO_PARAM)
        mask &= np.isclose(params, key.param)
    elif key.param != NO_PARAM:
        mask &= False
    rows = frame.loc[mask]
    values = pd.to_numeric(rows["value"], errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    if "suppressed" in rows.columns:
        values = np.where(rows["suppressed"].to_numpy(dtype=bool, na_value=False), np.nan, values)
    values = np.where(np.isfinite(values), values, np.nan)
    periods = [str(code) for code in _column(rows, "period")]
    kinds = [str(kind) for kind in _column(rows, "period_kind")]
    negative = [period for period, value in zip(periods, values, strict=True) if value < 0]
    if negative:
        raise ProgressError(
            f"target {target.code!r}: negative {key.statistic} of {key.metric!r} at {', '.join(negative)}"
        )
    duplicated = sorted({period for period in periods if periods.count(period) > 1})
    if duplicated:
        raise ProgressError(
            f"target {target.code!r}: the indicator table has several rows of {key.statistic} of "
            f"{key.metric!r} at {key.level} {key.entity} for period(s) {', '.join(duplicated)}"
        )
    provisional = (
        rows["provisional"].to_numpy(dtype=bool, na_value=False)
        if "provisional" in rows.columns
        else np.zeros(len(rows), dtype=bool)
    )
    points = [
        Point(_period_ref(target, period, kind), float(value), bool(flag))
        for period, kind, value, flag in zip(periods, kinds, values, provisional, strict=True)
    ]
    return sorted(points, key=lambda point: (point.ref.start, point.ref.end))


def select_series(target: TargetSpec, indicators: pd.DataFrame) -> pd.DataFrame:
    """The target's series as a frame (period, period_kind, value, provisional), in time
    order: what a dashboard draws next to the status (see series_points)."""
    points = series_points(target, indicators)
    return pd.DataFrame(
        {
            "period": pd.array([point.period for point in points], dtype="string"),
            "period_kind": pd.array([point.ref.kind for point in points], dtype="string"),
            "value": pd.array([point.value for point in points], dtype="float64"),
            "provisional": pd.array([point.provisional for point in points], dtype="bool"),
        }
    )


def _period_ref(target: TargetSpec, code: str, kind: str) -> PeriodRef:
    try:
        ref = parse_period(code)
    except PeriodError as exc:
        raise ProgressError(f"target {target.code!r}: {exc}") from exc
    if ref.kind != kind:
        raise ProgressError(
            f"target {target.code!r}: period {code} is a {ref.kind}, but its period_kind says {kind!r}"
        )
    return ref


def status_for_ratio(ratio: float) -> str:
    """The Open SDG band of a ratio of observed to required CAGR (bounds as docs/targets.md)."""
    if math.isnan(ratio):
        raise ProgressError("a progress ratio cannot be NaN")
    if ratio >= ON_TRACK_RATIO:
        return ON_TRACK
    if ratio >= MODERATE_RATIO:
        return MODERATE
    if ratio > 0:
        return LIMITED
    return DETERIORATION


def cagr(start: float, end: float, years: float) -> float:
    """Compound annual growth rate from ``start`` to ``end`` over ``years`` (> 0; start > 0)."""
    if years <= 0 or start <= 0 or end < 0:
        raise ProgressError(f"no growth rate from {start:g} to {end:g} over {years:g} years")
    return float((end / start) ** (1.0 / years) - 1.0)


def _years_between(first_end: date, second_end: date) -> float:
    """Whole months between two period ends, in years (periods end on a month's first day)."""
    return ((second_end.year - first_end.year) * 12 + second_end.month - first_end.month) / 12


@dataclass(frozen=True)
class TargetProgress:
    """The status of one target and every number it rests on (one row of PROGRESS_COLUMNS)."""

    code: str
    name: str
    kind: str
    metric: str
    scope: str
    direction: str
    level: str
    entity: str
    country: str
    statistic: str
    param: float
    status: str
    status_label: str
    baseline_period: str
    baseline_rule: str
    baseline_value: float
    baseline_source: str
    latest_period: str
    latest_value: float
    target_value: float
    target_year: int
    annual_rate: float
    years_elapsed: float
    years_to_target: float
    required_cagr: float
    observed_cagr: float
    ratio: float
    points_used: int
    points_available: int
    provisional: bool
    as_of_year: int | None
    method: str
    explanation: str

    def as_row(self) -> dict[str, Any]:
        return asdict(self)


def _scope_text(target: TargetSpec) -> str:
    scope = target.scope
    if scope.type == "alliance":
        return "alliance"
    if scope.type == "country":
        return f"country {scope.value} ({scope.basis or 'organisation_country'})"
    return f"{scope.type} {scope.value}"


def _fmt(value: float) -> str:
    """A figure as a reader writes it: 27,000 or 1,300,000,000, 0.62, 29.28."""
    if value.is_integer() and abs(value) < 1e15:
        return f"{int(value):,}"
    return f"{value:,.6g}"


def assess_target(
    target: TargetSpec, indicators: pd.DataFrame, *, as_of_year: int | None = None
) -> TargetProgress:
    """The status of ``target`` from ``indicators`` (hub.figures columns), using the figures
    up to ``as_of_year`` (all by default): the Open SDG method, as docs/targets.md states it."""
    return _assess(target, series_points(target, indicators), as_of_year)


def _assess(target: TargetSpec, series: list[Point], as_of_year: int | None) -> TargetProgress:
    if as_of_year is not None and (isinstance(as_of_year, bool) or not isinstance(as_of_year, int)):
        raise ProgressError(f"as_of_year must be a year (an int), not {as_of_year!r}")
    key = series_key(target)
    base_ref = target.baseline_ref
    target_year = target.target.year
    direction = +1 if target.direction == HIGHER else -1
    horizon = target_year if as_of_year is None else min(as_of_year, target_year)
    rate = target.parameters.annual_rate if isinstance(target, GrowthTarget) else math.nan
    notes: list[str] = []

    known = [point for point in series if point.ref.kind == base_ref.kind and not math.isnan(point.value)]
    in_window = [point for point in known if point.ref.year <= horizon]

    # Baseline: the published figure, or the hub's own at the baseline period.
    base_value, base_provisional = math.nan, False
    if target.baseline.rule == "published":
        base_value = float(target.baseline.value if target.baseline.value is not None else math.nan)
        base_source = target.baseline.source or ""
    else:
        base_source = "observed in the hub's data"
        at_base = [point for point in in_window if point.ref == base_ref]
        if at_base:
            base_value, base_provisional = at_base[0].value, at_base[0].provisional
    later = [point for point in in_window if point.ref.start >= base_ref.end]
    seen_until = math.inf if as_of_year is None else as_of_year
    after_target = [point.period for point in known if target_year < point.ref.year <= seen_until]
    if after_target:
        notes.append(
            f"figures after the target year {target_year} ({', '.join(after_target)}) "
            "are not used: the target is judged on its year"
        )

    target_end = date(target_year + 1, 1, 1)
    big_t = _years_between(base_ref.end, target_end)
    has_base = not math.isnan(base_value)
    level = target.target_value if not isinstance(target, GrowthTarget) else math.nan
    if isinstance(target, GrowthTarget) and has_base:
        level = base_value * (1 + rate) ** big_t

    result: dict[str, Any] = {
        "code": target.code,
        "name": target.name,
        "kind": target.kind,
        "metric": target.metric,
        "scope": _scope_text(target),
        "direction": target.direction,
        "level": key.level,
        "entity": key.entity,
        "country": key.country,
        "statistic": key.statistic,
        "param": key.param,
        "baseline_period": base_ref.code,
        "baseline_rule": target.baseline.rule,
        "baseline_value": base_value,
        "baseline_source": base_source,
        "latest_period": "",
        "latest_value": math.nan,
        "target_value": level,
        "target_year": target_year,
        "annual_rate": rate,
        "years_elapsed": math.nan,
        "years_to_target": big_t,
        "required_cagr": math.nan,
        "observed_cagr": math.nan,
        "ratio": math.nan,
        "points_used": int(has_base),
        "points_available": int(has_base) + len(later),
        "provisional": base_provisional,
        "as_of_year": as_of_year,
        "method": METHOD,
    }

    def finish(status: str, why: str) -> TargetProgress:
        text = " ".join([why, *(note[0].upper() + note[1:] + "." for note in notes)])
        return TargetProgress(status=status, status_label=STATUS_LABELS[status], explanation=text, **result)

    other_kinds = sorted(
        {point.ref.kind for point in series if not math.isnan(point.value)} - {base_ref.kind}
    )
    if other_kinds and not known:
        notes.append(
            f"the series has only {', '.join(other_kinds)} figures; progress compares figures of the "
            f"baseline's period kind ({base_ref.kind}) and never mixes period kinds"
        )
    if as_of_year is not None and as_of_year < base_ref.year:
        return finish(
            INSUFFICIENT,
            f"As of {as_of_year}, before the baseline period {base_ref.code}: nothing to assess.",
        )
    if not has_base:
        return finish(
            INSUFFICIENT,
            f"No baseline: the indicator table has no {key.statistic} of {key.metric} at {key.level} "
            f"{key.entity}{'' if key.country == TOTAL else ' for country ' + key.country} for the "
            f"baseline period {base_ref.code}.",
        )
    if not later:
        return finish(
            INSUFFICIENT,
            f"Only the baseline ({base_ref.code}: {_fmt(base_value)}): no {base_ref.kind} figure after it"
            + (f" up to {horizon}." if as_of_year is not None else "."),
        )

    latest = later[-1]
    latest_ref, value = latest.ref, latest.value
    small_t = _years_between(base_ref.end, latest_ref.end)
    result.update(
        latest_period=latest.period,
        latest_value=value,
        years_elapsed=small_t,
        points_used=2,
        provisional=base_provisional or latest.provisional,
    )
    final = latest_ref.end >= target_end
    met = value >= level if direction > 0 else value <= level
    relation = ">=" if direction > 0 else "<="
    if met:
        return finish(
            ACHIEVED,
            f"Achieved: the latest value {_fmt(value)} ({latest_ref.code}) is {relation} the target "
            f"{_fmt(level)}{' (the baseline grown by the annual rate to ' + str(target_year) + ')' if isinstance(target, GrowthTarget) else ''}.",
        )
    missed = f"Not achieved: the {target_year} value {_fmt(value)} does not meet the target {_fmt(level)}"
    if base_value == 0:
        no_rate = "no growth rate can be computed from zero"
        if final:
            return finish(NOT_ACHIEVED, f"{missed}; the baseline was 0, so {no_rate}.")
        if direction < 0:
            return finish(
                DETERIORATION,
                f"Deterioration: the baseline was 0 and the latest value {_fmt(value)} ({latest_ref.code}) "
                f"moved away from the target {_fmt(level)}; {no_rate}.",
            )
        return finish(
            INSUFFICIENT,
            f"The baseline value is 0: {no_rate} (latest {_fmt(value)} in {latest_ref.code}, "
            f"target {_fmt(level)}).",
        )
    observed = cagr(base_value, value, small_t)
    required = rate if isinstance(target, GrowthTarget) else cagr(base_value, level, big_t)
    result.update(observed_cagr=observed, required_cagr=required)
    if required == 0:
        equalled = (
            f"the baseline {_fmt(base_value)} equalled the target and the latest value no longer meets it"
        )
        if final:
            return finish(NOT_ACHIEVED, f"{missed}; {equalled}.")
        return finish(DETERIORATION, f"Deterioration: {equalled} ({latest_ref.code}: {_fmt(value)}).")
    ratio = direction * observed / abs(required)
    result.update(ratio=ratio)
    rates = (
        f"observed CAGR {observed:+.2%} a year ({base_ref.code} {_fmt(base_value)} to {latest_ref.code} "
        f"{_fmt(value)}, {small_t:g} year{'' if small_t == 1 else 's'}), required {required:+.2%} a year "
        f"({'the annual rate' if isinstance(target, GrowthTarget) else f'to {_fmt(level)} by {target_year}'}), "
        f"ratio {ratio:.2f}"
    )
    if final:
        return finish(NOT_ACHIEVED, f"{missed}; {rates}.")
    status = status_for_ratio(ratio)
    return finish(status, f"{STATUS_LABELS[status].capitalize()}: {rates}.")


def _progress_frame(rows: Sequence[dict[str, Any]]) -> pd.DataFrame:
    frame = pd.DataFrame(list(rows), columns=list(PROGRESS_COLUMNS))
    frame["as_of_year"] = pd.array(
        [None if value is None or pd.isna(value) else int(value) for value in frame["as_of_year"]],
        dtype="Int64",
    )
    return frame.astype(PROGRESS_TYPES)


def _by_metric(indicators: pd.DataFrame, targets: Sequence[TargetSpec]) -> dict[str, pd.DataFrame]:
    """The rows each target metric may be read from, by metric: one pass over a large table
    instead of one per target. Organisation rows are dropped first: no target reads them,
    and they are most of the table; so are breakdowns other than by country, which no target
    reads either (series_points keeps only their totals)."""
    _check_columns(indicators)
    wanted = indicators["metric"].isin({target.metric for target in targets}) & (
        indicators["level"] != "organisation"
    )
    for name in DIMENSIONS:
        if name != "country" and name in indicators.columns:
            wanted &= indicators[name] == TOTAL
    rows = indicators.loc[wanted.to_numpy(dtype=bool, na_value=False)]
    groups = {str(metric): frame for metric, frame in rows.groupby("metric", sort=False, observed=True)}
    return {target.metric: groups.get(target.metric, rows.iloc[:0]) for target in targets}


def assess_targets(
    targets: Iterable[TargetSpec], indicators: pd.DataFrame, *, as_of_year: int | None = None
) -> pd.DataFrame:
    """One row per target (PROGRESS_COLUMNS), in the order given: what a release stores."""
    specs = _unique(targets)
    table = _by_metric(indicators, specs)
    return _progress_frame(
        [_assess(spec, series_points(spec, table[spec.metric]), as_of_year).as_row() for spec in specs]
    )


def progress_history(
    targets: Iterable[TargetSpec], indicators: pd.DataFrame, *, years: Iterable[int] | None = None
) -> pd.DataFrame:
    """The status of every target as it stood at the end of each year (``as_of_year``): the
    figures known for that year and before, assessed the same way. ``years`` defaults to every
    year from the earliest baseline to the latest period of the indicator table."""
    specs = _unique(targets)
    table = _by_metric(indicators, specs)
    if years is None:
        codes = {str(code) for frame in table.values() for code in frame["period"].dropna().unique()}
        period_years = [_year_of(code) for code in codes]
        first = min((spec.baseline_ref.year for spec in specs), default=0)
        wanted = list(range(first, max(period_years) + 1)) if period_years and specs else []
    else:
        wanted = sorted(set(years))
    rows: list[dict[str, Any]] = []
    for spec in specs:
        series = series_points(spec, table[spec.metric])
        rows.extend(_assess(spec, series, year).as_row() for year in wanted)
    frame = _progress_frame(rows)
    return frame.sort_values(["code", "as_of_year"], kind="stable").reset_index(drop=True)


def _year_of(code: str) -> int:
    try:
        return parse_period(code).year
    except PeriodError as exc:
        raise ProgressError(f"the indicator table has a bad period: {exc}") from exc


def _unique(targets: Iterable[TargetSpec]) -> list[TargetSpec]:
    specs = list(targets)
    seen: set[str] = set()
    for spec in specs:
        if spec.code in seen:
            raise ProgressError(f"target {spec.code!r} is given twice")
        seen.add(spec.code)
    return specs
