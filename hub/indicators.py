"""The indicator engine: every catalogue metric, per period, at each level of aggregation.

Input is the observation frame :func:`hub.figures.load_observations` returns (the caller has
chosen which submissions count); output is the indicator table of :mod:`hub.figures`. The
function is pure: no database, no clock, no randomness, so a release can be rebuilt and
compared. docs/indicators.md explains every statistic, combination rule and roll-up rule.

Speed comes from working on integer codes only: metric, period, organisation, entity and the
combination of breakdown dimensions are factorised once, every group-by is a ``np.bincount``
over a combined int64 key, and strings are built once, when the table is returned.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from hub.catalogue import NOT_ACTIONED, PUBLISHED_THRESHOLDS_MINUTES, Catalogue, MetricSpec
from hub.errors import HubError
from hub.figures import (
    ALLIANCE,
    LEVELS,
    NO_PARAM,
    OBSERVATION_COLUMNS,
    STATISTICS,
    coded_strings,
    conform,
    empty_indicator_frame,
    ordered_digits,
)
from hub.periods import PeriodError, PeriodRef, parse_period
from hub.vocab import DIMENSIONS, PERIOD_KINDS, TOTAL

DEFAULT_SHARE_WITHIN_HOURS = tuple(minutes / 60 for minutes in PUBLISHED_THRESHOLDS_MINUTES)
DEFAULT_PERCENTILES = (0.5, 0.9)

KEY_DIMENSIONS = tuple(d for d in DIMENSIONS if d != "time_bucket")
_KIND_INDEX = {kind: i for i, kind in enumerate(PERIOD_KINDS)}  # month 0 .. year 3
_OFFSET = (0, 12, 16, 18)  # position of a kind's first period inside a year's 19 periods
_PER_YEAR = 19
_KIND_AT = np.repeat(np.arange(4), (12, 4, 2, 1))  # kind index of each of a year's 19 periods
_CHILDREN = {1: 3, 2: 2, 3: 2}  # sub-periods one step finer: quarter=3 months, half=2 quarters, year=2 halves
_STAT = {name: i for i, name in enumerate(STATISTICS)}
_ORG, _STYPE, _COUNTRY, _ALL = range(4)


class IndicatorError(HubError):
    """The observations cannot be turned into indicators; the message names the problem."""


# ---------------------------------------------------------------------------------------------
# Codes: every string of the input becomes an integer once.


@dataclass(frozen=True)
class _Periods:
    """Every period of every kind for the years ``first``..``last``: id = year*19 + offset + n-1."""

    first: int
    last: int

    @property
    def size(self) -> int:
        return (self.last - self.first + 1) * _PER_YEAR

    def ids(self, refs: Sequence[PeriodRef]) -> np.ndarray:
        return np.array(
            [(r.year - self.first) * _PER_YEAR + _OFFSET[_KIND_INDEX[r.kind]] + r.number - 1 for r in refs],
            dtype=np.int64,
        )

    def table(self) -> pd.DataFrame:
        rows = []
        for year in range(self.first, self.last + 1):
            for kind_index, kind in enumerate(PERIOD_KINDS):
                for number in range(1, (12, 4, 2, 1)[kind_index] + 1):
                    rows.append((PeriodRef(year, kind, number).code, kind_index, year, number))
        return pd.DataFrame(rows, columns=["code", "kind", "year", "number"])

    def kind(self, p: np.ndarray) -> np.ndarray:
        return _KIND_AT[p % _PER_YEAR]

    def number(self, p: np.ndarray) -> np.ndarray:
        return p % _PER_YEAR - np.array(_OFFSET)[self.kind(p)] + 1

    def parent(self, p: np.ndarray) -> np.ndarray:
        """The period one step coarser (month -> quarter -> half_year -> year)."""
        kind, number = self.kind(p), self.number(p)
        base = p - p % _PER_YEAR
        per_parent = np.array([3, 2, 2, 1])[kind]
        return base + np.array((*_OFFSET, 18))[kind + 1] + (number - 1) // per_parent

    def is_last_child(self, p: np.ndarray) -> np.ndarray:
        kind, number = self.kind(p), self.number(p)
        return number % np.array([3, 2, 2, 1])[kind] == 0

    def previous_year(self, p: np.ndarray) -> np.ndarray:
        return np.where(p >= _PER_YEAR, p - _PER_YEAR, -1)


def _combine(*columns: np.ndarray) -> np.ndarray:
    """One int64 key for several non-negative integer columns (compressed when it would overflow)."""
    key = np.asarray(columns[0], dtype=np.int64)
    for column in columns[1:]:
        column = np.asarray(column, dtype=np.int64)
        size = int(column.max()) + 1 if len(column) else 1
        top = int(key.max()) + 1 if len(key) else 1
        if top * size >= 2**62:
            key = pd.factorize(key)[0].astype(np.int64)
        key = key * size + column
    return key


def _first_index(codes: np.ndarray, groups: int) -> np.ndarray:
    """For each group code 0..groups-1, the position of its first row."""
    first = np.empty(groups, dtype=np.int64)
    positions = np.arange(len(codes), dtype=np.int64)
    first[codes[::-1]] = positions[::-1]
    return first


def _group(*columns: np.ndarray) -> tuple[np.ndarray, int, np.ndarray]:
    """Group codes, group count and each group's first row, for rows keyed by ``columns``."""
    codes, uniques = pd.factorize(_combine(*columns))
    codes = codes.astype(np.int64)
    return codes, len(uniques), _first_index(codes, len(uniques))


def _sum(codes: np.ndarray, groups: int, values: np.ndarray) -> np.ndarray:
    return np.bincount(codes, weights=values, minlength=groups)


@dataclass
class _Context:
    catalogue: Catalogue
    metrics: list[str]
    periods: _Periods
    orgs: np.ndarray  # organisation codes
    org_entity: np.ndarray  # (orgs, 4): entity id per level, -1 where none (no country)
    entity_level: np.ndarray
    entity_name: list[str]
    dims: pd.DataFrame  # one row per dimension key (KEY_DIMENSIONS)
    dim_nontotal: np.ndarray  # bit i set when KEY_DIMENSIONS[i] is broken down
    edges: np.ndarray  # minutes: 0 and the scheme's edges
    labels: list[str]  # time_bucket codes; 0 = TOTAL, 1 = not_actioned, then merged buckets

    def spec(self, m: int) -> MetricSpec:
        return self.catalogue.metrics[self.metrics[m]]

    def label(self, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
        """Label id of the merged bucket [edges[lower], edges[upper]) (upper -1 = open)."""
        n = len(self.edges)
        return 2 + lower * (n + 1) + (upper + 1)


def _duration(minutes: int) -> str:
    if minutes == 0:
        return "0"
    if minutes % 1440 == 0:
        return f"{minutes // 1440}d"
    if minutes % 60 == 0:
        return f"{minutes // 60}h"
    return f"{minutes}m"


def _bucket_labels(edges: np.ndarray) -> list[str]:
    """Codes of every bucket [edge_i, edge_j) and [edge_i, inf), written as the catalogue does."""
    n = len(edges)
    labels = [TOTAL, NOT_ACTIONED]
    for lower in range(n):
        for upper in range(-1, n):
            if upper == -1:
                labels.append(f"{_duration(int(edges[lower]))}+")
            elif upper > lower:
                labels.append(f"{_duration(int(edges[lower]))}-{_duration(int(edges[upper]))}")
            else:
                labels.append("")
    return labels


# ---------------------------------------------------------------------------------------------
# Validation and encoding


def _factorize(column: pd.Series, *, sort: bool = False) -> tuple[np.ndarray, list[str]]:
    """Integer codes and names of a string column (a missing value is the name ""); with
    ``sort``, codes in the names' order."""
    codes, uniques = pd.factorize(column, sort=sort)
    names = [str(x) for x in uniques]
    codes = codes.astype(np.int64)
    if (codes < 0).any():
        codes = np.where(codes < 0, len(names), codes)
        names.append("")
    return codes, names


def _check_parameters(share_within_hours: Sequence[float], percentiles: Sequence[float]) -> None:
    for hours in share_within_hours:
        if not np.isfinite(hours) or hours <= 0:
            raise IndicatorError(f"share_within hours must be positive and finite, not {hours!r}")
    for q in percentiles:
        if not np.isfinite(q) or not 0 < q <= 1:
            raise IndicatorError(f"a percentile is a quantile in (0, 1], not {q!r}")


def _encode(observations: pd.DataFrame, catalogue: Catalogue) -> tuple[_Context, pd.DataFrame]:
    """Check the observations and turn them into integer codes (one row per figure)."""
    missing = [name for name in OBSERVATION_COLUMNS if name not in observations.columns]
    if missing:
        raise IndicatorError(f"the observations lack the column(s) {', '.join(missing)}")
    obs = observations

    metric_codes, metric_names = _factorize(obs["metric"])
    metrics = [str(m) for m in metric_names]
    unknown = sorted(m for m in metrics if m not in catalogue.metrics)
    if unknown:
        raise IndicatorError(f"unknown metric code(s) not in the catalogue: {', '.join(unknown)}")

    period_codes, period_names = _factorize(obs["period"])
    refs = []
    for code in period_names:
        try:
            refs.append(parse_period(str(code)))
        except PeriodError as exc:
            raise IndicatorError(str(exc)) from None
    kind_codes, kind_names = _factorize(obs["period_kind"])
    width = len(kind_names)
    for pair in pd.unique(period_codes * width + kind_codes):
        ref, given = refs[int(pair) // width], kind_names[int(pair) % width]
        if ref.kind != given:
            raise IndicatorError(
                f"period {ref.code} is a {ref.kind} but its period_kind says {given!r}: period kinds never mix"
            )
    periods = _Periods(min(r.year for r in refs), max(r.year for r in refs)) if refs else _Periods(2000, 2000)
    p = periods.ids(refs)[period_codes] if refs else np.zeros(0, dtype=np.int64)
    m = metric_codes.astype(np.int64)

    # frequency, unit and value rules
    values = obs["value"].to_numpy(dtype=float, na_value=np.nan)
    kinds = periods.kind(p)
    specs = [catalogue.metrics[code] for code in metrics]
    allowed = np.array([[kind in spec.frequencies for kind in PERIOD_KINDS] for spec in specs], dtype=bool)
    unit = np.array([spec.unit for spec in specs], dtype=object)
    bad_kind = ~allowed[m, kinds]
    if bad_kind.any():
        spec, kind = specs[int(m[bad_kind][0])], PERIOD_KINDS[int(kinds[bad_kind][0])]
        raise IndicatorError(
            f"metric {spec.code!r} is reported by {', '.join(spec.frequencies)}, not by {kind}"
        )
    for bad, why in (
        (values < 0, "has a negative value: counts, hours and shares cannot be"),
        (np.isinf(values), "has an infinite value"),
        (
            (unit[m] == "boolean") & ~np.isnan(values) & (values != 0) & (values != 1),
            "is a capability: its values are 0 or 1",
        ),
        ((unit[m] == "share") & (values > 1), "is a share: its values lie between 0 and 1"),
    ):
        if bad.any():
            raise IndicatorError(f"metric {metrics[int(m[bad][0])]!r} {why}")

    # codes in name order: the smallest code is the tie-break between equal contributors
    org_codes, org_names = _factorize(obs["organisation"], sort=True)
    o = org_codes.astype(np.int64)
    first_org = _first_index(o, len(org_names))
    stypes = obs["stakeholder_type"].iloc[first_org].fillna("").to_numpy(dtype=object)
    countries = obs["org_country"].iloc[first_org].fillna("").to_numpy(dtype=object)
    stype_codes, stype_names = pd.factorize(stypes)
    country_codes, country_names = pd.factorize(countries)
    n_org, n_st, n_c = len(org_names), len(stype_names), len(country_names)
    org_entity = np.full((n_org, 4), -1, dtype=np.int64)
    org_entity[:, _ORG] = np.arange(n_org)
    org_entity[:, _STYPE] = n_org + stype_codes
    org_entity[:, _COUNTRY] = np.where(countries == "", -1, n_org + n_st + country_codes)
    org_entity[:, _ALL] = n_org + n_st + n_c
    entity_level = np.array([_ORG] * n_org + [_STYPE] * n_st + [_COUNTRY] * n_c + [_ALL])
    entity_name = [str(x) for x in (*org_names, *stype_names, *country_names, ALLIANCE)]

    # the breakdown: one code per combination of the dimensions other than time_bucket
    dim_codes = []
    dim_names = []
    for name in KEY_DIMENSIONS:
        codes, names = _factorize(obs[name])
        dim_codes.append(codes.astype(np.int64))
        dim_names.append(names)
    d, n_d, first_d = _group(*dim_codes) if len(obs) else (np.zeros(0, np.int64), 0, np.zeros(0, np.int64))
    dims = pd.DataFrame(
        {
            name: np.asarray(dim_names[i], dtype=object)[dim_codes[i][first_d]]
            for i, name in enumerate(KEY_DIMENSIONS)
        }
    )
    nontotal = np.zeros(n_d, dtype=np.int64)
    for i, name in enumerate(KEY_DIMENSIONS):
        nontotal |= (dims[name].to_numpy() != TOTAL).astype(np.int64) << i

    scheme = catalogue.buckets
    edges = np.array([0, *scheme.edges_minutes], dtype=np.int64)
    edge_index = {int(e): i for i, e in enumerate(edges)}
    ctx = _Context(
        catalogue,
        metrics,
        periods,
        np.asarray(org_names, dtype=object),
        org_entity,
        entity_level,
        entity_name,
        dims,
        nontotal,
        edges,
        _bucket_labels(edges),
    )

    # time buckets: lower and upper edge index (-1 = open); not_actioned lower -2; no bucket -3
    tb_codes, tb_names = _factorize(obs["time_bucket"])
    lower_of = np.full(len(tb_names), -3, dtype=np.int64)
    upper_of = np.full(len(tb_names), -1, dtype=np.int64)
    for i, code in enumerate(tb_names):
        if code == TOTAL:
            continue
        if code == NOT_ACTIONED:
            lower_of[i] = -2
            continue
        bucket = scheme.bucket(str(code))
        if bucket is None or bucket.lower_minutes is None:
            raise IndicatorError(
                f"time bucket {code!r} is not a bucket of scheme {scheme.code} or a coarser one"
            )
        lower_of[i] = edge_index[bucket.lower_minutes]
        upper_of[i] = -1 if bucket.upper_minutes is None else edge_index[bucket.upper_minutes]
    lo, hi = lower_of[tb_codes], upper_of[tb_codes]
    is_dist = np.array([catalogue.metrics[c].combination == "distribution" for c in metrics], dtype=bool)
    dist_rows = is_dist[m] if len(m) else np.zeros(0, bool)
    if (dist_rows & (lo == -3)).any():
        code = metrics[int(m[dist_rows & (lo == -3)][0])]
        raise IndicatorError(f"metric {code!r} is a distribution: every row needs a time_bucket")
    if (~dist_rows & (lo != -3)).any():
        code = metrics[int(m[~dist_rows & (lo != -3)][0])]
        raise IndicatorError(f"metric {code!r} is not a distribution: it has no time_bucket")
    if (dist_rows & np.isnan(values)).any():
        code = metrics[int(m[dist_rows & np.isnan(values)][0])]
        raise IndicatorError(f"metric {code!r}: a distribution bucket needs a count, not 'not available'")

    frame = pd.DataFrame(
        {
            "m": m,
            "p": p,
            "o": o,
            "d": d,
            "lo": lo,
            "hi": hi,
            "v": values,
            "prov": obs["provisional"].to_numpy(dtype=bool, na_value=False),
            "sub": obs["submission_id"].to_numpy(dtype=np.int64, na_value=0),
        }
    )
    # The same figure in two submissions (overlapping scopes): the newest submission counts, for
    # a distribution the newest submission's whole distribution (never bucket by bucket).
    unit_key = _combine(m, p, o, d)
    if len(unit_key) and len(pd.unique(_combine(unit_key, lo + 3))) < len(unit_key):
        newest = frame.groupby(unit_key, sort=False)["sub"].transform("max").to_numpy()
        frame = frame[frame["sub"].to_numpy() == newest].reset_index(drop=True)
    return ctx, frame.drop(columns="sub")


# ---------------------------------------------------------------------------------------------
# Period roll-ups (per organisation)


def _anti_join(rows: pd.DataFrame, existing: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """``rows`` whose key is not in ``existing`` (a native figure beats a rolled-up one)."""
    if rows.empty or existing.empty:
        return rows
    both = pd.concat([existing[list(columns)], rows[list(columns)]], ignore_index=True)
    key = _combine(*(both[c].to_numpy() for c in columns))
    found = pd.Index(key[: len(existing)]).unique().get_indexer(key[len(existing) :]) >= 0
    return rows[~found]


def _rollup_values(ctx: _Context, table: pd.DataFrame, rule: str, columns: Sequence[str]) -> pd.DataFrame:
    """``table`` (m, p, o, d, *columns, prov) plus the coarser periods its rule allows.

    sum: every sub-period present with a value; last: the last sub-period's row.
    """
    if rule not in ("sum", "last") or table.empty:
        return table
    key = ["m", "o", "d"]
    current = table
    for kind in (1, 2, 3):
        source = current[ctx.periods.kind(current["p"].to_numpy()) == kind - 1]
        if source.empty:
            continue
        parent = ctx.periods.parent(source["p"].to_numpy())
        if rule == "last":
            rolled = source[ctx.periods.is_last_child(source["p"].to_numpy())].assign(
                p=parent[ctx.periods.is_last_child(source["p"].to_numpy())]
            )
        else:
            codes, groups, first = _group(*(source[c].to_numpy() for c in key), parent)
            complete = np.ones(len(source), dtype=bool)
            for c in columns:
                complete &= ~np.isnan(source[c].to_numpy())
            count = np.bincount(codes, weights=complete, minlength=groups)
            data = {c: source[c].to_numpy()[first] for c in key}
            data["p"] = parent[first]
            for c in columns:
                data[c] = _sum(codes, groups, np.nan_to_num(source[c].to_numpy()))
            data["prov"] = _sum(codes, groups, source["prov"].to_numpy()) > 0
            rolled = pd.DataFrame(data)[count == _CHILDREN[kind]]
        native = current[ctx.periods.kind(current["p"].to_numpy()) == kind]
        rolled = _anti_join(rolled, native, ["m", "p", "o", "d"])
        current = pd.concat([current, rolled[current.columns]], ignore_index=True)
    return current


def _merge_distributions(
    ctx: _Context, rows: pd.DataFrame, group: Sequence[str], unit: Sequence[str], by_unit: bool = False
) -> tuple[pd.DataFrame, np.ndarray]:
    """Add the bucket counts of the distributions (``unit``) of each ``group`` bucket by bucket.

    Distributions may use coarser buckets than the scheme's: a group's buckets are those of the
    edges every one of its distributions has (a coarse bucket is never split), so each input
    bucket lies inside exactly one merged bucket. Returns rows (group columns, lo, hi, n,
    prov, units[, o]) and the number of distributions per group.
    """
    lo = rows["lo"].to_numpy()
    gcodes, groups, _ = _group(*(rows[c].to_numpy() for c in group))
    ucodes, units, ufirst = _group(*(rows[c].to_numpy() for c in unit))
    unit_group = gcodes[ufirst]
    units_per_group = np.bincount(unit_group, minlength=groups)
    # the lower edges of one distribution's buckets are distinct, so their bits add up to its mask
    timed_rows = lo >= 0
    unit_mask = np.bincount(
        ucodes, weights=np.where(timed_rows, np.ldexp(1.0, np.maximum(lo, 0)), 0.0), minlength=units
    ).astype(np.int64)
    common = np.ones(groups, dtype=np.int64)  # edge 0 (0 minutes) always
    for bit in range(1, len(ctx.edges)):
        has = (unit_mask >> bit) & 1
        everywhere = np.bincount(unit_group, weights=has, minlength=groups) == units_per_group
        common |= everywhere.astype(np.int64) << bit
    timed = lo >= 0
    cm = common[gcodes]
    below = cm & ((np.int64(2) << np.maximum(lo, 0)) - 1)
    merged_lo = np.where(timed, _high_bit(below), -2)
    above = cm & ~((np.int64(2) << np.maximum(merged_lo, 0)) - 1)
    merged_hi = np.where(timed & (above != 0), _low_bit(above), -1)
    columns = [gcodes, merged_lo + 2] + ([ucodes] if by_unit else [])
    codes, n, first = _group(*columns)
    out = {c: rows[c].to_numpy()[first] for c in group}
    out["lo"] = merged_lo[first]
    out["hi"] = merged_hi[first]
    out["n"] = _sum(codes, n, rows["v"].to_numpy())
    out["prov"] = _sum(codes, n, rows["prov"].to_numpy()) > 0
    out["g"] = gcodes[first]
    if by_unit:
        out["o"] = rows["o"].to_numpy()[first]
    return pd.DataFrame(out), units_per_group


def _high_bit(x: np.ndarray) -> np.ndarray:
    return (np.frexp(x.astype(np.float64))[1] - 1).astype(np.int64)


def _low_bit(x: np.ndarray) -> np.ndarray:
    return _high_bit(x & -x)


def _rollup_distributions(ctx: _Context, table: pd.DataFrame) -> pd.DataFrame:
    """Roll each organisation's distributions up: buckets added over every sub-period (all needed)."""
    current = table
    for kind in (1, 2, 3):
        source = current[ctx.periods.kind(current["p"].to_numpy()) == kind - 1]
        if source.empty:
            continue
        source = source.assign(parent=ctx.periods.parent(source["p"].to_numpy()))
        merged, units = _merge_distributions(ctx, source, ["m", "parent", "o", "d"], ["m", "p", "o", "d"])
        merged = merged[units[merged["g"].to_numpy()] == _CHILDREN[kind]].rename(
            columns={"parent": "p", "n": "v"}
        )
        native = current[ctx.periods.kind(current["p"].to_numpy()) == kind]
        merged = _anti_join(merged, native, ["m", "p", "o", "d"])
        current = pd.concat([current, merged[current.columns]], ignore_index=True)
    return current


def _only_frequencies(ctx: _Context, table: pd.DataFrame) -> pd.DataFrame:
    """Rows of kinds in their metric's frequencies (roll-ups of other kinds were only steps)."""
    if table.empty:
        return table
    allowed = np.zeros((len(ctx.metrics), 4), dtype=bool)
    for m, code in enumerate(ctx.metrics):
        for kind in ctx.catalogue.metrics[code].frequencies:
            allowed[m, _KIND_INDEX[kind]] = True
    return table[allowed[table["m"].to_numpy(), ctx.periods.kind(table["p"].to_numpy())]]


# ---------------------------------------------------------------------------------------------
# Aggregation to the four levels


def _expand(ctx: _Context, table: pd.DataFrame) -> pd.DataFrame:
    """One copy of each organisation row per level it belongs to, with its entity ``e``."""
    parts = []
    o = table["o"].to_numpy()
    for level in range(4):
        e = ctx.org_entity[o, level]
        keep = e >= 0
        parts.append(table[keep].assign(e=e[keep]))
    return pd.concat(parts, ignore_index=True)


def _top_two(codes: np.ndarray, groups: int, org: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, ...]:
    """Largest and second-largest contributor per group and their sizes (org -1 where none).
    Of equal contributors the one with the smallest code (organisation codes are in name
    order) comes first, whatever the order of the rows: a release must not depend on it."""
    result: list[np.ndarray] = []
    v = np.where(np.isnan(values), -np.inf, values)
    rows = np.arange(len(v))
    for _ in range(2):
        best = pd.Series(v).groupby(codes, sort=False).max()
        top = np.full(groups, -np.inf)
        top[best.index.to_numpy()] = best.to_numpy()
        candidates = np.flatnonzero((v == top[codes]) & np.isfinite(v))
        candidates = candidates[np.argsort(-org[candidates], kind="stable")]
        chosen = np.full(groups, -1, dtype=np.int64)
        chosen[codes[candidates]] = rows[candidates]  # the last write wins: the smallest org
        found = chosen >= 0
        result += [
            np.where(found, org[np.maximum(chosen, 0)], -1),
            np.where(found, values[np.maximum(chosen, 0)], np.nan),
        ]
        v = v.copy()
        v[chosen[found]] = -np.inf
    return tuple(result)


Figures = dict[str, np.ndarray]  # coded figures, column by column (a DataFrame per piece costs copies)


def _result(ctx: _Context, keys: dict[str, np.ndarray], **columns: np.ndarray | float | int) -> Figures:
    n = len(keys["m"])
    data: dict[str, np.ndarray] = dict(keys)
    defaults = {
        "tb": 0,
        "stat": _STAT["value"],
        "param": NO_PARAM,
        "value": np.nan,
        "lower": np.nan,
        "upper": np.nan,
        "num": np.nan,
        "den": np.nan,
        "coverage": 0,
        "events": np.nan,
        "org1": -1,
        "share1": np.nan,
        "org2": -1,
        "share2": np.nan,
        "prov": False,
    }
    for name, default in defaults.items():
        value = columns.get(name, default)
        data[name] = np.full(n, value) if np.ndim(value) == 0 else np.asarray(value)
    return data


def _concat(pieces: Sequence[Figures]) -> Figures:
    return {name: np.concatenate([piece[name] for piece in pieces]) for name in pieces[0]}


def _aggregate_values(ctx: _Context, table: pd.DataFrame, how: str) -> Figures:
    """Scalar figures (sum, ratio_of_sums, mean_weighted, share_of_reporters, latest) per level.

    ``table`` holds one row per organisation and key with ``v`` (and ``num``/``den`` for
    ratios and weighted means); a NaN input is left out, a figure with no input is NaN.
    """
    if table.empty:
        return _result(ctx, {c: np.zeros(0, np.int64) for c in ("m", "p", "e", "d")})
    x = _expand(ctx, table)
    codes, groups, first = _group(x["m"].to_numpy(), x["p"].to_numpy(), x["e"].to_numpy(), x["d"].to_numpy())
    keys = {c: x[c].to_numpy()[first] for c in ("m", "p", "e", "d")}
    v = x["v"].to_numpy()
    has = ~np.isnan(v)
    prov = _sum(codes, groups, x["prov"].to_numpy()) > 0
    org_level = ctx.entity_level[keys["e"]] == _ORG
    if how in ("ratio_of_sums", "mean_weighted"):
        num, den = x["num"].to_numpy(), x["den"].to_numpy()
        both = ~np.isnan(num) & ~np.isnan(den)
        n_sum = _sum(codes, groups, np.where(both, num, 0.0))
        d_sum = _sum(codes, groups, np.where(both, den, 0.0))
        coverage = np.bincount(codes, weights=both, minlength=groups).astype(np.int64)
        with np.errstate(divide="ignore", invalid="ignore"):
            value = np.where((coverage > 0) & (d_sum > 0), n_sum / d_sum, np.nan)
        if how == "mean_weighted":
            # an organisation's own mean stands even without a weight; aggregates need the weight
            own = _sum(codes, groups, np.where(has, v, 0.0))
            own_n = np.bincount(codes, weights=has, minlength=groups)
            value = np.where(org_level, np.where(own_n > 0, own, np.nan), value)
            coverage = np.where(org_level, own_n, coverage).astype(np.int64)
        else:
            own_n = np.bincount(codes, weights=has & ~both, minlength=groups)
            own = _sum(codes, groups, np.where(has & ~both, v, 0.0))
            direct = org_level & (coverage == 0) & (own_n > 0)  # a share reported without its parts
            value = np.where(direct, own, value)
            coverage = np.where(direct, 1, coverage).astype(np.int64)
        pairs = np.bincount(codes, weights=both, minlength=groups) > 0
        n_out = np.where(pairs, n_sum, np.nan)
        d_out = np.where(pairs, d_sum, np.nan)
        return _result(ctx, keys, value=value, num=n_out, den=d_out, coverage=coverage, prov=prov)
    coverage = np.bincount(codes, weights=has, minlength=groups).astype(np.int64)
    if how == "sum":
        total = _sum(codes, groups, np.where(has, v, 0.0))
        value = np.where(coverage > 0, total, np.nan)
        org1, size1, org2, size2 = _top_two(codes, groups, x["o"].to_numpy(), v)
        many = coverage >= 2
        # the largest contributor is named even when it is the only one: disclosure control
        # publishes a figure resting on one organisation only when that one consented
        some = coverage >= 1
        with np.errstate(divide="ignore", invalid="ignore"):
            share1 = np.where(some & (total > 0), size1 / total, np.nan)
            share2 = np.where(many & (total > 0), size2 / total, np.nan)
        return _result(
            ctx,
            keys,
            value=value,
            coverage=coverage,
            prov=prov,
            org1=np.where(some, org1, -1),
            share1=share1,
            org2=np.where(many, org2, -1),
            share2=share2,
        )
    if how == "share_of_reporters":
        yes = _sum(codes, groups, np.where(has, v, 0.0))
        with np.errstate(divide="ignore", invalid="ignore"):
            value = np.where(coverage > 0, yes / coverage, np.nan)
        return _result(
            ctx,
            keys,
            value=value,
            num=np.where(coverage > 0, yes, np.nan),
            den=np.where(coverage > 0, coverage, np.nan),
            coverage=coverage,
            prov=prov,
        )
    if how == "latest":
        # several organisations reporting the same stock (e.g. countries connected to ICSE):
        # the largest figure, never the sum, which would count the same countries twice
        best = np.full(groups, -np.inf)
        np.maximum.at(best, codes[has], v[has])
        value = np.where(coverage > 0, best, np.nan)
        return _result(ctx, keys, value=value, coverage=coverage, prov=prov)
    raise IndicatorError(f"unknown combination rule {how!r}")


def _reporters(ctx: _Context, table: pd.DataFrame) -> Figures:
    """How many organisations reported each metric in each period, at each level."""
    if table.empty:
        return _result(ctx, {c: np.zeros(0, np.int64) for c in ("m", "p", "e", "d")})
    codes, groups, first = _group(table["m"].to_numpy(), table["p"].to_numpy(), table["o"].to_numpy())
    once = table.iloc[first][["m", "p", "o"]].assign(prov=False)
    x = _expand(ctx, once)
    codes, groups, first = _group(x["m"].to_numpy(), x["p"].to_numpy(), x["e"].to_numpy())
    count = np.bincount(codes, minlength=groups)
    keys = {c: x[c].to_numpy()[first] for c in ("m", "p", "e")}
    keys["d"] = np.full(groups, _total_key(ctx), dtype=np.int64)
    return _result(ctx, keys, stat=_STAT["reporters"], value=count.astype(float), coverage=count)


def _total_key(ctx: _Context) -> int:
    """The dimension key with every dimension at TOTAL (added to the table when absent)."""
    at_total = np.flatnonzero(ctx.dim_nontotal == 0)
    if len(at_total):
        return int(at_total[0])
    ctx.dims.loc[len(ctx.dims)] = [TOTAL] * len(KEY_DIMENSIONS)
    ctx.dim_nontotal = np.r_[ctx.dim_nontotal, 0]
    return len(ctx.dims) - 1


def _aggregate_distributions(
    ctx: _Context, table: pd.DataFrame, hours: Sequence[float], quantiles: Sequence[float]
) -> Figures:
    """Events per bucket and in total, shares within ``hours`` and ``quantiles``, per level."""
    if table.empty:
        return _result(ctx, {c: np.zeros(0, np.int64) for c in ("m", "p", "e", "d")})
    x = _expand(ctx, table)
    merged, units = _merge_distributions(ctx, x, ["m", "p", "e", "d"], ["m", "p", "e", "d", "o"])
    per_org, _ = _merge_distributions(ctx, x, ["m", "p", "e", "d"], ["m", "p", "e", "d", "o"], by_unit=True)
    g = merged["g"].to_numpy()
    groups = len(units)
    gfirst = _first_index(g, groups)
    keys = {c: merged[c].to_numpy()[gfirst] for c in ("m", "p", "e", "d")}
    n = merged["n"].to_numpy()
    total = _sum(g, groups, n)
    prov = _sum(g, groups, merged["prov"].to_numpy()) > 0
    lo, hi = merged["lo"].to_numpy(), merged["hi"].to_numpy()
    censored = lo == -2
    parts = []

    # events per merged bucket, with the dominance of the bucket's largest contributors
    bucket_key = {c: merged[c].to_numpy() for c in ("m", "p", "e", "d")}
    tb = np.where(censored, 1, ctx.label(np.maximum(lo, 0), hi))
    pg = per_org["g"].to_numpy()
    mcodes = pd.Index(g * 32 + lo + 2).get_indexer(pg * 32 + per_org["lo"].to_numpy() + 2)
    org1, size1, org2, size2 = _top_two(mcodes, len(merged), per_org["o"].to_numpy(), per_org["n"].to_numpy())
    contributors = np.bincount(mcodes, weights=per_org["n"].to_numpy() >= 0, minlength=len(merged))
    many = (contributors >= 2) & (units[g] >= 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        parts.append(
            _result(
                ctx,
                bucket_key,
                tb=tb,
                stat=_STAT["events"],
                value=n,
                events=n,
                coverage=units[g],
                prov=merged["prov"].to_numpy(),
                org1=np.where(contributors >= 1, org1, -1),
                share1=np.where((contributors >= 1) & (n > 0), size1 / n, np.nan),
                org2=np.where(many, org2, -1),
                share2=np.where(many & (n > 0), size2 / n, np.nan),
            )
        )
    # all events of the distribution (time_bucket TOTAL)
    org_total = per_org.groupby(["g", "o"], sort=False)["n"].sum().reset_index()
    t1, s1, t2, s2 = _top_two(
        org_total["g"].to_numpy(), groups, org_total["o"].to_numpy(), org_total["n"].to_numpy().astype(float)
    )
    many_total = units >= 2
    with np.errstate(divide="ignore", invalid="ignore"):
        parts.append(
            _result(
                ctx,
                keys,
                tb=0,
                stat=_STAT["events"],
                value=total,
                events=total,
                coverage=units,
                prov=prov,
                org1=np.where(units >= 1, t1, -1),
                share1=np.where((units >= 1) & (total > 0), s1 / total, np.nan),
                org2=np.where(many_total, t2, -1),
                share2=np.where(many_total & (total > 0), s2 / total, np.nan),
            )
        )

    # cumulative counts over the timed buckets, in order
    order = np.lexsort((lo, g))
    sg, slo, shi, sn = g[order], lo[order], hi[order], n[order]
    timed = slo >= 0
    sn_timed = np.where(timed, sn, 0.0)
    cum = pd.Series(sn_timed).groupby(sg).cumsum().to_numpy()
    before = cum - sn_timed
    low_min = ctx.edges[np.maximum(slo, 0)].astype(float)
    high_min = np.where(shi >= 0, ctx.edges[np.maximum(shi, 0)], np.inf).astype(float)
    last_edge = np.full(groups, 0.0)
    np.maximum.at(last_edge, sg[timed], low_min[timed])

    with np.errstate(divide="ignore", invalid="ignore"):
        for h in hours:
            t = h * 60.0
            full = timed & (high_min <= t)
            partial = timed & (low_min < t) & (t < high_min) & (sn > 0)
            frac = np.where(np.isfinite(high_min), (t - low_min) / (high_min - low_min), np.nan)
            full_n = _sum(sg, groups, np.where(full, sn, 0.0))
            part_n = _sum(sg, groups, np.where(partial, sn, 0.0))
            part_v = _sum(sg, groups, np.where(partial, sn * frac, 0.0))
            exact = part_n == 0
            ok = total > 0
            lower = np.where(ok, full_n / total, np.nan)
            upper = np.where(ok, (full_n + part_n) / total, np.nan)
            value = np.where(ok, (full_n + part_v) / total, np.nan)
            parts.append(
                _result(
                    ctx,
                    keys,
                    stat=_STAT["share_within"],
                    param=float(h),
                    value=value,
                    lower=lower,
                    upper=upper,
                    num=np.where(exact & ok, full_n, np.nan),
                    den=np.where(ok, total, np.nan),
                    coverage=units,
                    events=total,
                    prov=prov,
                )
            )
        for q in quantiles:
            rank = q * total[sg]
            hit = timed & (sn > 0) & (before < rank) & (rank <= cum)
            value = np.full(groups, np.nan)
            lower = np.where(total > 0, last_edge / 60.0, np.nan)  # censored: above every edge
            upper = np.where(total > 0, np.inf, np.nan)
            hg = sg[hit]
            lower[hg] = low_min[hit] / 60.0
            upper[hg] = high_min[hit] / 60.0
            inside = low_min[hit] + (rank[hit] - before[hit]) / sn[hit] * (high_min[hit] - low_min[hit])
            value[hg] = np.where(
                np.isfinite(high_min[hit]), inside / 60.0, np.nan
            )  # open bucket: bounds only
            parts.append(
                _result(
                    ctx,
                    keys,
                    stat=_STAT["percentile"],
                    param=float(q),
                    value=value,
                    lower=lower,
                    upper=upper,
                    coverage=units,
                    events=total,
                    prov=prov,
                )
            )
    return _concat(parts)


# ---------------------------------------------------------------------------------------------
# Families of metrics


def _values_table(frame: pd.DataFrame, m: Iterable[int]) -> pd.DataFrame:
    rows = frame[np.isin(frame["m"].to_numpy(), list(m))]
    return rows[["m", "p", "o", "d", "v", "prov"]].reset_index(drop=True)


def _ratio_table(
    ctx: _Context, per_org: dict[int, pd.DataFrame], frame: pd.DataFrame, m: int
) -> pd.DataFrame:
    """An organisation's numerator and denominator for each key where it reported both."""
    spec = ctx.spec(m)
    index = {code: i for i, code in enumerate(ctx.metrics)}
    own = _values_table(frame, [m])
    num_m, den_m = index.get(spec.numerator or ""), index.get(spec.denominator or "")
    columns = ["m", "p", "o", "d", "v", "num", "den", "prov"]
    if num_m is None or den_m is None:
        return own.assign(num=np.nan, den=np.nan)[columns]
    num = per_org[num_m][["p", "o", "d", "v", "prov"]].rename(columns={"v": "num", "prov": "pn"})
    den = per_org[den_m][["p", "o", "d", "v", "prov"]].rename(columns={"v": "den", "prov": "pd"})
    parts = num.merge(den, on=["p", "o", "d"], how="inner")
    allowed = sum(1 << i for i, name in enumerate(KEY_DIMENSIONS) if name in spec.dimensions)
    parts = parts[(ctx.dim_nontotal[parts["d"].to_numpy()] & ~allowed) == 0]
    parts = parts[~np.isnan(parts["num"].to_numpy()) & ~np.isnan(parts["den"].to_numpy())]
    with np.errstate(divide="ignore", invalid="ignore"):
        parts = parts.assign(
            m=m,
            prov=parts["pn"] | parts["pd"],
            v=np.where(parts["den"] > 0, parts["num"] / parts["den"], np.nan),
        )
    direct = _anti_join(own, parts, ["p", "o", "d"]).assign(num=np.nan, den=np.nan)
    return _only_frequencies(ctx, pd.concat([parts[columns], direct[columns]], ignore_index=True))


def _weighted_table(
    ctx: _Context, per_org: dict[int, pd.DataFrame], frame: pd.DataFrame, m: int
) -> pd.DataFrame:
    """An organisation's mean, weight and mean x weight; coarser periods recomputed from them."""
    spec = ctx.spec(m)
    index = {code: i for i, code in enumerate(ctx.metrics)}
    own = _values_table(frame, [m])
    weight_m = index.get(spec.weight or "")
    if weight_m is None:
        own = own.assign(num=np.nan, den=np.nan)
    else:
        weight = per_org[weight_m][["p", "o", "d", "v"]].rename(columns={"v": "den"})
        own = own.merge(weight, on=["p", "o", "d"], how="left")
        own["num"] = own["v"] * own["den"]
    if spec.period_rollup == "recompute":
        rolled = _rollup_values(ctx, own[["m", "p", "o", "d", "num", "den", "prov"]], "sum", ["num", "den"])
        rolled = _anti_join(rolled, own, ["p", "o", "d"])
        with np.errstate(divide="ignore", invalid="ignore"):
            rolled = rolled.assign(v=np.where(rolled["den"] > 0, rolled["num"] / rolled["den"], np.nan))
        own = pd.concat([own, rolled[own.columns]], ignore_index=True)
    return _only_frequencies(ctx, own)


# ---------------------------------------------------------------------------------------------
# Year on year, decoding


def _yoy(ctx: _Context, table: Figures) -> np.ndarray:
    """value / value of the same key one year earlier - 1 (NaN without one, or when it was 0)."""
    param_codes, _ = pd.factorize(table["param"])
    p = table["p"]
    prev = ctx.periods.previous_year(p)
    rest = _combine(*(table[c] for c in ("m", "e", "d", "tb", "stat")), param_codes)
    if int(rest.max()) >= 2**62 // ctx.periods.size:
        rest = pd.factorize(rest)[0].astype(np.int64)
    here = rest * ctx.periods.size + p
    before = rest * ctx.periods.size + np.maximum(prev, 0)
    order = np.argsort(here, kind="stable")
    ordered = here[order]
    at = np.minimum(np.searchsorted(ordered, before), len(ordered) - 1)
    found = (ordered[at] == before) & (prev >= 0)
    value = table["value"]
    previous = np.where(found, value[order[at]], np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(found & (previous != 0) & np.isfinite(previous), value / previous - 1, np.nan)


def _ranks(*columns: Sequence[object]) -> np.ndarray:
    """Each row's place among the rows sorted by ``columns`` (the first decides, the next
    break ties; strings compare by code point, as pandas sorts them): equal rows, equal rank."""
    rank = np.zeros(len(columns[0]), dtype=np.int64)
    for column in columns:
        _, inverse = np.unique(np.asarray(column, dtype=object), return_inverse=True)
        rank = rank * (int(inverse.max()) + 1 if len(inverse) else 1) + inverse.reshape(-1)
        rank = np.unique(rank, return_inverse=True)[1].reshape(-1).astype(np.int64)
    return rank


def _key_order(ctx: _Context, table: Figures) -> np.ndarray:
    """The permutation that puts the coded figures in KEY_COLUMNS order (the order a release
    publishes them in), found on the codes: sorting the decoded table by its 17 string
    columns took 4-5 s on the large benchmark's 4.8 M cells, ranking the codes takes a
    fraction. The period decides its kind and the entity its level, so neither is a digit."""
    split = DIMENSIONS.index("time_bucket")  # a digit of its own, between the others
    before, after = DIMENSIONS[:split], DIMENSIONS[split + 1 :]
    level_names = np.asarray(LEVELS, dtype=object)[ctx.entity_level]
    param_codes, params = pd.factorize(table["param"])  # a few values: rank those, not every row
    param_rank = np.argsort(np.argsort(params, kind="stable"))[param_codes]
    digits = [
        _ranks(ctx.metrics)[table["m"]],
        _ranks(list(ctx.periods.table()["code"]))[table["p"]],
        _ranks(level_names, ctx.entity_name)[table["e"]],
        _ranks(*(ctx.dims[name].to_numpy(dtype=object) for name in before))[table["d"]],
        _ranks(ctx.labels)[table["tb"]],
        _ranks(*(ctx.dims[name].to_numpy(dtype=object) for name in after))[table["d"]],
        _ranks(STATISTICS)[table["stat"]],
        param_rank,
    ]
    return np.argsort(ordered_digits(digits, len(table["m"])), kind="stable")


def _decode(ctx: _Context, table: Figures) -> pd.DataFrame:
    """The coded figures as the indicator table. Text columns stay coded, as categoricals: a
    string per row for 20 columns was half of the engine's time on the demo (0.9 s) and
    0.4 GB more at the build's peak, which a fresh process pays for (bench.memory_touch)."""
    p, e, d = table["p"], table["e"], table["d"]
    periods = ctx.periods.table()
    spec_unit = [ctx.spec(i).unit for i in range(len(ctx.metrics))]
    spec_class = [ctx.spec(i).disclosure_class for i in range(len(ctx.metrics))]
    m = table["m"]
    out: dict[str, object] = {
        "metric": coded_strings(ctx.metrics, m),
        "period": coded_strings(list(periods["code"]), p),
        "period_kind": coded_strings(list(PERIOD_KINDS), ctx.periods.kind(p)),
        "level": coded_strings(list(LEVELS), ctx.entity_level[e]),
        "entity": coded_strings(ctx.entity_name, e),
    }
    for name in KEY_DIMENSIONS:
        codes, names = pd.factorize(ctx.dims[name].to_numpy(dtype=object))
        out[name] = coded_strings([str(x) for x in names], codes[d])
    out["time_bucket"] = coded_strings(ctx.labels, table["tb"])
    out["statistic"] = coded_strings(list(STATISTICS), table["stat"])
    org_names = ["", *(str(x) for x in ctx.orgs)]
    out.update(
        {
            "param": table["param"].astype(float, copy=False),
            "value": table["value"].astype(float, copy=False),
            "lower": table["lower"].astype(float, copy=False),
            "upper": table["upper"].astype(float, copy=False),
            "numerator": table["num"].astype(float, copy=False),
            "denominator": table["den"].astype(float, copy=False),
            "coverage": table["coverage"].astype(np.int64, copy=False),
            "event_count": table["events"].astype(float, copy=False),
            "largest_org": coded_strings(org_names, table["org1"] + 1),
            "largest_share": table["share1"].astype(float, copy=False),
            "second_org": coded_strings(org_names, table["org2"] + 1),
            "second_share": table["share2"].astype(float, copy=False),
            "yoy_change": table["yoy"].astype(float, copy=False),
            "unit": coded_strings(spec_unit, m),
            "disclosure_class": coded_strings(spec_class, m),
            "provisional": table["prov"].astype(bool, copy=False),
        }
    )
    return conform(pd.DataFrame(out, copy=False))  # no consolidating copy of the float columns (0.5-0.9 s)


# ---------------------------------------------------------------------------------------------


def compute_indicators(
    observations: pd.DataFrame,
    catalogue: Catalogue,
    *,
    share_within_hours: Iterable[float] = DEFAULT_SHARE_WITHIN_HOURS,
    percentiles: Iterable[float] = DEFAULT_PERCENTILES,
) -> pd.DataFrame:
    """Every figure the observations allow, as the indicator table of :mod:`hub.figures`, its
    text columns categoricals of the values present (hub.figures.coded_strings: they sort,
    group and compare as text; a release stores them as text, hub.releases.to_parquet).

    For each metric and period (native, or rolled up where the metric allows), at the levels
    organisation, stakeholder type, the organisation's country and the alliance, and for each
    combination of breakdown dimensions present, following the metric's combination rule.
    Raises :class:`IndicatorError` on observations no release should rest on (unknown metric,
    a period whose kind disagrees with its code, negative values, ...). The rows come in
    KEY_COLUMNS order, the order a release publishes them in.
    """
    hours, quantiles = tuple(float(h) for h in share_within_hours), tuple(float(q) for q in percentiles)
    _check_parameters(hours, quantiles)
    if observations.empty:
        return empty_indicator_frame()
    ctx, frame = _encode(observations, catalogue)

    # a ratio is computed wherever both its parts were reported, even if nobody reported the
    # ratio itself; the parts and weights referred to get a code even when absent
    for spec in catalogue.metrics.values():
        parts = spec.numerator in ctx.metrics and spec.denominator in ctx.metrics
        if spec.combination == "ratio_of_sums" and spec.code not in ctx.metrics and parts:
            ctx.metrics.append(spec.code)
    by_rule: dict[str, list[int]] = {}
    for m in range(len(ctx.metrics)):
        by_rule.setdefault(ctx.spec(m).combination, []).append(m)
    for m in list(range(len(ctx.metrics))):
        for ref in (ctx.spec(m).numerator, ctx.spec(m).denominator, ctx.spec(m).weight):
            if ref and ref not in ctx.metrics:
                ctx.metrics.append(ref)
    pieces = _aggregates(ctx, frame, by_rule, hours, quantiles)
    del frame
    if not pieces:
        return empty_indicator_frame()
    # From here on the whole table is in memory several times over (parts, joined, ordered,
    # as text), so each copy is let go as soon as the next exists: a fresh process pays for
    # the most memory it ever holds (bench.memory_touch), 1 s and 0.65 GB on the large benchmark.
    figures = _concat(pieces)
    del pieces
    figures["yoy"] = _yoy(ctx, figures)
    order = _key_order(ctx, figures)
    for name, column in figures.items():  # in place, so each unordered column is freed at once
        figures[name] = column[order]
    return _decode(ctx, figures)


def _aggregates(
    ctx: _Context,
    frame: pd.DataFrame,
    by_rule: dict[str, list[int]],
    hours: tuple[float, ...],
    quantiles: tuple[float, ...],
) -> list[Figures]:
    """The figures of every rule, in parts (the non-empty ones); the intermediate tables are
    freed on return."""
    per_org: dict[int, pd.DataFrame] = {}
    results: list[Figures] = []
    empty = frame.iloc[:0][["m", "p", "o", "d", "v", "prov"]]

    for rule in ("sum", "share_of_reporters", "latest"):
        members = by_rule.get(rule, [])
        if not members:
            continue
        native = _values_table(frame, members)
        tables = []
        for rollup in ("sum", "last", "none", "recompute"):
            chosen = [m for m in members if ctx.spec(m).period_rollup == rollup]
            if chosen:
                part = native[np.isin(native["m"].to_numpy(), chosen)]
                tables.append(_rollup_values(ctx, part, rollup, ["v"]))
        table = pd.concat(tables, ignore_index=True)
        for m in members:
            per_org[m] = table[table["m"].to_numpy() == m]
        table = _only_frequencies(ctx, table)
        results += [_aggregate_values(ctx, table, rule), _reporters(ctx, table)]
    for m in range(len(ctx.metrics)):
        per_org.setdefault(m, empty)

    for rule, build in (("ratio_of_sums", _ratio_table), ("mean_weighted", _weighted_table)):
        members = by_rule.get(rule, [])
        if members:
            table = pd.concat([build(ctx, per_org, frame, m) for m in members], ignore_index=True)
            results += [_aggregate_values(ctx, table, rule), _reporters(ctx, table)]

    members = by_rule.get("distribution", [])
    if members:
        dist = frame[np.isin(frame["m"].to_numpy(), members)].reset_index(drop=True)
        summed = [m for m in members if ctx.spec(m).period_rollup == "sum"]
        rolled = _rollup_distributions(ctx, dist[np.isin(dist["m"].to_numpy(), summed)])
        dist = pd.concat([rolled, dist[~np.isin(dist["m"].to_numpy(), summed)]], ignore_index=True)
        dist = _only_frequencies(ctx, dist)
        results += [_aggregate_distributions(ctx, dist, hours, quantiles), _reporters(ctx, dist)]

    return [r for r in results if len(r["m"])]
