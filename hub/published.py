"""Published releases as the public pages read them: which releases the public may choose, and
one release's cells, read once per process and handed out as copies.

Only releases with status ``published`` are offered: a draft, a built release waiting for
approval or a withdrawn one never reaches a public page (rule 2). A published release never
changes (hub.releases refuses it), so its tables can be kept in memory once read and checked
against their SHA-256; the cache is an object the web app creates, not module state, and
every accessor returns a new frame, so no caller can change what another one reads.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from hub.figures import ALLIANCE, NO_PARAM
from hub.models import Release
from hub.releases import REVISIONS, Tables, notices, read_release
from hub.vocab import DIMENSIONS, TOTAL

# The indicator columns the pages use (shares and contributor names are never in a release).
INDICATOR_COLUMNS = (
    "metric",
    "period",
    "period_kind",
    "level",
    "entity",
    *DIMENSIONS,
    "statistic",
    "param",
    "value",
    "lower",
    "upper",
    "coverage",
    "event_count",
    "yoy_change",
    "unit",
    "provisional",
    "suppressed",
    "suppression_reason",
    "display",
)
CATEGORICAL = (
    "period",
    "period_kind",
    "level",
    "entity",
    *DIMENSIONS,
    "statistic",
    "unit",
    "suppression_reason",
)
ENTITY_LEVELS = ("organisation", "country")
BREAKDOWN = "_breakdown"  # bit i set: DIMENSIONS[i] is broken down (not the total)


@dataclass(frozen=True)
class ReleaseSummary:
    """What a reader is told about a published release."""

    number: int
    title: str
    published_at: datetime | None
    previous: int | None
    content_checksum: str


@dataclass(frozen=True)
class Notice:
    """A correction notice published beside a release."""

    created_at: datetime
    text: str


def published_releases(session: Session) -> list[ReleaseSummary]:
    """The releases the public may choose, newest first (withdrawn ones are not offered)."""
    releases = list(session.exec(select(Release).order_by(col(Release.number).desc())))
    numbers = {r.id: r.number for r in releases}
    return [
        ReleaseSummary(
            number=r.number,
            title=r.title,
            published_at=r.published_at,
            previous=numbers.get(r.previous_release_id) if r.previous_release_id else None,
            content_checksum=r.content_checksum or "",
        )
        for r in releases
        if r.status == "published"
    ]


def breakdown_mask(dimensions: Sequence[str]) -> int:
    """The bit mask of a set of broken-down dimensions (the others are totals)."""
    unknown = set(dimensions) - set(DIMENSIONS)
    if unknown:
        raise ValueError(f"unknown dimension(s): {', '.join(sorted(unknown))}")
    return sum(1 << DIMENSIONS.index(name) for name in set(dimensions))


def _indicator_frame(indicators: pd.DataFrame) -> pd.DataFrame:
    """The columns the pages read, strings as categories (small, quick to compare), and the
    breakdown mask of each row."""
    frame = indicators.reindex(columns=list(INDICATOR_COLUMNS))  # a new frame; absent columns empty
    mask = np.zeros(len(frame), dtype=np.int16)
    for bit, name in enumerate(DIMENSIONS):
        mask |= (frame[name].to_numpy(dtype=object) != TOTAL).astype(np.int16) << bit
    for name in CATEGORICAL:
        frame[name] = frame[name].astype("category")
    frame["metric"] = frame["metric"].astype(str)
    frame[BREAKDOWN] = mask
    return frame


class ReleaseData:
    """One published release's tables. Every accessor returns a new frame."""

    def __init__(self, summary: ReleaseSummary, tables: Tables, release_notices: Sequence[Notice] = ()):
        self.summary = summary
        self.notices: tuple[Notice, ...] = tuple(release_notices)
        indicators = _indicator_frame(tables.get("indicators", pd.DataFrame(columns=INDICATOR_COLUMNS)))
        self._by_metric: dict[str, pd.DataFrame] = {
            str(metric): part.drop(columns="metric").reset_index(drop=True)
            for metric, part in indicators.groupby("metric", sort=True)
        }
        # the totals of each organisation and country, for their profile pages
        totals = indicators.loc[
            (indicators[BREAKDOWN].to_numpy() == 0) & indicators["level"].isin(ENTITY_LEVELS).to_numpy()
        ]
        self._by_entity: dict[tuple[str, str], pd.DataFrame] = {
            (str(level), str(entity)): part.reset_index(drop=True)
            for (level, entity), part in totals.groupby(["level", "entity"], observed=True, sort=False)
        }
        self._tables = {name: frame for name, frame in tables.items() if name != "indicators"}
        self._table_rows = {name: len(frame) for name, frame in tables.items()}

    @property
    def number(self) -> int:
        return self.summary.number

    @property
    def metrics(self) -> list[str]:
        """Metrics with at least one cell in the release."""
        return list(self._by_metric)

    @property
    def table_rows(self) -> dict[str, int]:
        return dict(self._table_rows)

    def table(self, name: str) -> pd.DataFrame:
        """A whole table other than the indicators (a copy); an empty frame if the release has none."""
        frame = self._tables.get(name)
        return pd.DataFrame() if frame is None else frame.copy()

    def cells(
        self,
        metric: str,
        *,
        statistic: str | Sequence[str] = "value",
        level: str | None = "alliance",
        entity: str | Sequence[str] | None = None,
        period_kind: str | None = "year",
        fixed: Mapping[str, str] | None = None,
        vary: Sequence[str] = (),
        param: float | None = None,
    ) -> pd.DataFrame:
        """Cells of ``metric``: totals on every dimension except those ``fixed`` to one value
        and those in ``vary`` (any value but the total). None means any level/kind/entity."""
        frame = self._by_metric.get(metric)
        if frame is None:
            return pd.DataFrame(columns=[c for c in INDICATOR_COLUMNS if c != "metric"])
        fixed = {name: value for name, value in (fixed or {}).items() if value != TOTAL}
        keep = frame[BREAKDOWN].to_numpy() == breakdown_mask([*fixed, *vary])
        statistics = [statistic] if isinstance(statistic, str) else list(statistic)
        keep &= frame["statistic"].isin(statistics).to_numpy()
        if level is not None:
            keep &= (frame["level"] == level).to_numpy()
        if period_kind is not None:
            keep &= (frame["period_kind"] == period_kind).to_numpy()
        if entity is not None:
            entities = [entity] if isinstance(entity, str) else list(entity)
            keep &= frame["entity"].isin(entities).to_numpy()
        for name, value in fixed.items():
            keep &= (frame[name] == value).to_numpy()
        if param is not None:
            keep &= np.isclose(frame["param"].to_numpy(), param)
        chosen = frame.loc[keep].drop(columns=BREAKDOWN)
        for name in chosen.select_dtypes("category").columns:
            chosen[name] = chosen[name].astype(str)
        return chosen.reset_index(drop=True)

    def entity_totals(
        self, level: str, entity: str, *, statistic: str = "value", period_kind: str = "year"
    ) -> pd.DataFrame:
        """Every metric's totals of one organisation or country (level in ENTITY_LEVELS), for
        the periods of one kind (years by default)."""
        frame = self._by_entity.get((level, entity))
        if frame is None:
            return pd.DataFrame(columns=list(INDICATOR_COLUMNS))
        chosen = frame.loc[
            (frame["statistic"] == statistic).to_numpy() & (frame["period_kind"] == period_kind).to_numpy()
        ].drop(columns=BREAKDOWN)
        for name in chosen.select_dtypes("category").columns:
            chosen[name] = chosen[name].astype(str)
        return chosen.reset_index(drop=True)

    def alliance_series(
        self, metric: str, *, statistic: str = "value", param: float = NO_PARAM, period_kind: str = "year"
    ) -> pd.DataFrame:
        """The alliance's figure of ``metric`` for each period of one kind (years by default),
        oldest first."""
        cells = self.cells(
            metric,
            statistic=statistic,
            level="alliance",
            entity=ALLIANCE,
            param=param,
            period_kind=period_kind,
        )
        return cells.sort_values("period").reset_index(drop=True)


class ReleaseCache:
    """Published releases read once per process (the ``keep`` most recently used)."""

    def __init__(self, engine: Engine, *, keep: int = 2):
        self._engine = engine
        self._keep = max(1, keep)
        self._loaded: OrderedDict[tuple[int, str], ReleaseData] = OrderedDict()
        self._lock = threading.Lock()
        self._loading: dict[tuple[int, str], threading.Lock] = {}

    def releases(self) -> list[ReleaseSummary]:
        with Session(self._engine) as session:
            return published_releases(session)

    def choose(self, requested: int | None) -> ReleaseSummary | None:
        """The release asked for if it is published, else the latest published one (or None)."""
        available = self.releases()
        for summary in available:
            if summary.number == requested:
                return summary
        return available[0] if available else None

    def get(self, summary: ReleaseSummary) -> ReleaseData:
        """The release's data, read from the database the first time (one reader per release)."""
        key = (summary.number, summary.content_checksum)
        with self._lock:
            data = self._loaded.get(key)
            if data is not None:
                self._loaded.move_to_end(key)
                return data
            loading = self._loading.setdefault(key, threading.Lock())
        with loading:
            with self._lock:
                data = self._loaded.get(key)
            if data is None:
                data = self._read(summary)
                with self._lock:
                    self._loaded[key] = data
                    while len(self._loaded) > self._keep:
                        self._loaded.popitem(last=False)
                    self._loading.pop(key, None)
        return data

    def _read(self, summary: ReleaseSummary) -> ReleaseData:
        with Session(self._engine) as session:
            tables = read_release(session, summary.number, with_revisions=True)
            found = [Notice(n.created_at, n.text) for n in notices(session, summary.number)]
        tables.setdefault(REVISIONS, pd.DataFrame())
        return ReleaseData(summary, tables, found)


__all__ = [
    "BREAKDOWN",
    "Notice",
    "ReleaseCache",
    "ReleaseData",
    "ReleaseSummary",
    "breakdown_mask",
    "published_releases",
]
