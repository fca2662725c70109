"""Plausibility warnings: a figure compared with the organisation's own history.

Warnings never block a submission; they are shown in the validation report and stored with
it, so the secretariat sees what was flagged. History is the organisation's current (newest
version) figures for the same metric, breakdown and period kind, in periods before the one
submitted; earlier periods of the same file count too. The rules are plain functions over
(history, value); :func:`fetch_history` gets the history of a whole submission at once.
Hints name the metric and the period, never a submitted or stored value.
"""

from __future__ import annotations

import statistics
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from functools import lru_cache

from sqlalchemy import Connection
from sqlmodel import Session

from hub.catalogue import Catalogue
from hub.periods import PeriodRef
from hub.store import CURRENT_SUBMISSIONS_OF_ORGANISATION, metric_ids
from hub.validation import ObservationIn
from hub.vocab import DIMENSIONS, TOTAL

FAR_ABOVE_FACTOR = 10.0
MIN_HISTORY_POINTS = 3
SHARE_JUMP = 0.30

# metric, period kind, and every dimension's value in DIMENSIONS order joined by BREAKDOWN_SEPARATOR
HistoryKey = tuple[str, str, str]
# a control character: never part of a dimension code (the firewall refuses them in any cell)
BREAKDOWN_SEPARATOR = "\x1f"


@dataclass(frozen=True)
class PlausibilityWarning:
    """Warning on the ``index``-th observation of a submission."""

    index: int
    rule: str
    hint: str


def far_above_history(history: Sequence[float], value: float) -> bool:
    """More than 10 times the median of at least 3 earlier figures (a median of 0 says nothing)."""
    if len(history) < MIN_HISTORY_POINTS:
        return False
    median = statistics.median(history)
    return median > 0 and value > FAR_ABOVE_FACTOR * median


def drop_to_zero(history: Sequence[float], value: float) -> bool:
    """Zero now, after a non-zero figure in the previous reported period (history oldest first)."""
    return value == 0 and bool(history) and history[-1] > 0


def share_jump(history: Sequence[float], value: float) -> bool:
    """A share that moved by more than 0.30 from the previous reported period."""
    return bool(history) and abs(value - history[-1]) > SHARE_JUMP + 1e-12


# How far back the history reaches: about the last 12 periods of each kind.
HISTORY_YEARS = {"month": 1, "quarter": 3, "half_year": 6, "year": 12}


_NO_BREAKDOWN = BREAKDOWN_SEPARATOR.join([TOTAL] * len(DIMENSIONS))


def history_key(observation: ObservationIn) -> HistoryKey:
    given = observation.dims
    dims = (
        BREAKDOWN_SEPARATOR.join([given.get(name, TOTAL) for name in DIMENSIONS]) if given else _NO_BREAKDOWN
    )
    return (observation.metric, observation.period.kind, dims)


def _placeholder(connection: Connection) -> str:
    """The DBAPI's positional placeholder (the statements below go to the driver as written)."""
    style = connection.dialect.paramstyle
    if style == "qmark":
        return "?"
    if style in ("format", "pyformat"):
        return "%s"
    raise NotImplementedError(f"no positional placeholder for paramstyle {style}")


def _in(placeholder: str, values: Sequence[object]) -> str:
    return f"({', '.join([placeholder] * len(values))})"


def fetch_history(
    session: Session, organisation_id: int, observations: Sequence[ObservationIn], ids: Mapping[str, int]
) -> dict[HistoryKey, dict[date, float]]:
    """The organisation's recent current figures (about the last 12 periods of each kind) for the
    metrics, period kinds and breakdowns of ``observations``, before their latest period, as
    {period start: value} by (metric, kind, breakdown).

    Only breakdowns an observation could be compared with are read: a dimension that none of
    ``observations`` names must be the total in a stored row, and only the named dimensions are
    fetched. ``ids`` are the metric ids (``hub.store.metric_ids``, which the store then reuses).
    Three small statements, sent to the driver as plain SQL (this runs on every
    submission; SQLAlchemy's statement building and row handling cost more than the database
    here): the organisation's current submissions, the window's periods, and then
    the observations of the window's (metric, period) pairs in those submissions, which both
    SQLite and PostgreSQL answer by looking each pair up in an index: the cost follows the
    window, not the years of history, and does not hang on the planner's statistics.
    """
    if not observations:
        return {}
    kinds = sorted({o.period.kind for o in observations})
    latest = max(o.period.start for o in observations)
    earliest = min(o.period.start for o in observations)
    window_years = max(HISTORY_YEARS[kind] for kind in kinds)
    since = date(earliest.year - window_years, earliest.month, 1)
    named = {name for o in observations for name in o.dims}
    fetched = [name for name in DIMENSIONS if name in named]
    totals = [name for name in DIMENSIONS if name not in named]
    connection = session.connection()
    ph = _placeholder(connection)
    submissions = [
        row[0]
        for row in connection.exec_driver_sql(
            CURRENT_SUBMISSIONS_OF_ORGANISATION.replace("?", ph), (organisation_id,)
        )
    ]
    metrics = {ids[code]: code for code in sorted({o.metric for o in observations}) if code in ids}
    postgresql = connection.dialect.name == "postgresql"
    # On PostgreSQL lists go as arrays, so each statement's text is the same for every batch
    # of the same breakdowns and psycopg prepares it once per connection (no new parse and
    # plan per batch); SQLite has no arrays and prepares per text in its own statement cache.
    kind_filter = f"kind = ANY({ph})" if postgresql else f"kind IN {_in(ph, kinds)}"
    periods = {
        period_id: (kind, _period_start(kind, year, number))
        for period_id, kind, year, number in connection.exec_driver_sql(
            f"SELECT id, kind, year, number FROM period WHERE {kind_filter} "  # noqa: S608
            f"AND start_date < {ph} AND start_date >= {ph}",
            # ISO dates: both compare them
            ((kinds,) if postgresql else tuple(kinds)) + (latest.isoformat(), since.isoformat()),
        )
    }
    if not submissions or not periods or not metrics:
        return {}
    # The window as a list of (metric, period) pairs looked up in the (metric, period) index.
    # SQLite's planner walks the pairs as a join. PostgreSQL's, on a table not analysed yet
    # (autovacuum has not run; this test server has it off), scans all of observation against
    # the pairs (10 ms at 2,000 rows, growing with the history); a lateral lookup per pair
    # uses the index whatever the statistics say (OFFSET 0: the planner keeps it per pair).
    # Column names from hub.vocab, values as parameters: never text from input in the statement.
    pairs = [(metric_id, period_id) for metric_id in metrics for period_id in periods]
    columns = f"o.metric_id, o.period_id, o.value{''.join(', o.' + name for name in fetched)}"
    total_filters = "".join(f" AND o.{name} = {ph}" for name in totals)
    params: tuple[object, ...]
    if postgresql:
        query = (
            f"SELECT h.* FROM unnest({ph}::integer[], {ph}::integer[]) AS w (metric_id, period_id) "  # noqa: S608
            f"CROSS JOIN LATERAL (SELECT {columns} FROM observation o "
            f"WHERE o.metric_id = w.metric_id AND o.period_id = w.period_id "
            f"AND o.submission_id = ANY({ph}::integer[]) AND o.value IS NOT NULL{total_filters} OFFSET 0) AS h"
        )
        params = ([m for m, _ in pairs], [q for _, q in pairs], submissions, *([TOTAL] * len(totals)))
    else:
        window = ", ".join([f"(CAST({ph} AS INTEGER), CAST({ph} AS INTEGER))"] * len(pairs))
        query = (
            f"WITH w (metric_id, period_id) AS (VALUES {window}) "  # noqa: S608
            f"SELECT {columns} FROM w JOIN observation o "
            f"ON o.metric_id = w.metric_id AND o.period_id = w.period_id "
            f"WHERE o.submission_id IN {_in(ph, submissions)} AND o.value IS NOT NULL{total_filters}"
        )
        params = (*(x for pair in pairs for x in pair), *submissions, *([TOTAL] * len(totals)))
    history: dict[HistoryKey, dict[date, float]] = defaultdict(dict)
    # the breakdown of a row: the totals, with the fetched dimensions' values in their slots
    slots = [DIMENSIONS.index(name) for name in fetched]
    breakdown = [TOTAL] * len(DIMENSIONS)
    # the driver's own cursor: SQLAlchemy's row objects cost more than the query for ~1,000 rows
    cursor = connection.connection.cursor()
    try:
        cursor.execute(query, params)
        rows = cursor.fetchall()
    finally:
        cursor.close()
    for metric_id, period_id, value, *values in rows:
        for slot, dimension_value in zip(slots, values, strict=True):
            breakdown[slot] = dimension_value
        kind, start = periods[period_id]
        history[(metrics[metric_id], kind, BREAKDOWN_SEPARATOR.join(breakdown))][start] = float(value)
    return dict(history)


@lru_cache(maxsize=4096)
def _period_start(kind: str, year: int, number: int) -> date:
    return PeriodRef(year, kind, number).start


def check_value(unit: str, history: Sequence[float], value: float) -> list[str]:
    """The rules ``value`` breaks against ``history`` (oldest first) for a metric of ``unit``."""
    if unit == "boolean":
        return []
    if unit == "share":
        return ["plausibility.share_jump"] if share_jump(history, value) else []
    rules = []
    if far_above_history(history, value):
        rules.append("plausibility.far_above_history")
    if drop_to_zero(history, value):
        rules.append("plausibility.drop_to_zero")
    return rules


_HINTS = {
    "plausibility.far_above_history": "is more than 10 times the median of your earlier figures for it",
    "plausibility.drop_to_zero": "is zero after a non-zero figure in your previous reported period",
    "plausibility.share_jump": "moved by more than 0.30 from your previous reported period",
}


def plausibility_warnings(
    session: Session, catalogue: Catalogue, organisation_id: int, observations: Sequence[ObservationIn]
) -> list[PlausibilityWarning]:
    """Warnings for ``observations`` against the organisation's history (and earlier periods of
    the same submission, which take the place of stored figures for those periods)."""
    stored = fetch_history(session, organisation_id, observations, metric_ids(session, catalogue))
    combined = stored
    keys = [history_key(observation) for observation in observations]
    starts = [observation.period.start for observation in observations]
    for observation, key, start in zip(observations, keys, starts, strict=True):
        if observation.value is not None:
            combined.setdefault(key, {})[start] = observation.value
    # Each breakdown's points sorted once; an observation's history is the prefix before its start.
    ordered = {key: sorted(points.items()) for key, points in combined.items()}
    dates = {key: [start for start, _ in points] for key, points in ordered.items()}
    warnings = []
    for index, observation in enumerate(observations):
        metric = catalogue.metrics.get(observation.metric)
        if metric is None or observation.value is None:
            continue
        points = ordered.get(keys[index], [])
        before = bisect_left(dates.get(keys[index], []), starts[index])
        history = [value for _, value in points[:before]]
        for rule in check_value(metric.unit, history, observation.value):
            hint = (
                f"{metric.code} for {observation.period.code} {_HINTS[rule]} with the same breakdown; "
                "check the unit, the period and the breakdown (a warning: the figures are stored)"
            )
            warnings.append(PlausibilityWarning(index, rule, hint))
    return warnings
