"""An organisation's own figures: what its company report and its member page show it.

Rule 3 of the hub: an organisation sees its own data. Its figures are computed here from its
own approved submissions only (the newest approved version of each scope, as a release uses
them), by the same indicator engine as a release, so the two agree. Each figure says whether
the latest published release already rests on it ("in release N") or whether it was approved
since ("approved, not yet in a release"): a company may publish its own report before the
alliance's next release, and a reader must be able to tell.

Counts of people keep their protection here too: an organisation's own report is meant to be
published under its name, and a small count of identified victims can identify a child
whoever publishes it (rule 2). A small count shows as "<10", and every other count of that
metric in that year (its year, quarters, months and breakdowns) as "x", so that none can be
worked out by subtraction.

Its position among its peers reads the release's peer table (hub.peers) and nothing else
about any other organisation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import select as sql_select
from sqlmodel import Session, col, select

from hub.approval import approved_submissions
from hub.catalogue import Catalogue
from hub.disclosure import DisclosurePolicy, load_policy
from hub.errors import NotFoundError
from hub.figures import KEY_COLUMNS, load_observations
from hub.indicators import compute_indicators
from hub.models import Organisation, Release, Submission
from hub.peers import PEER_STATISTICS, Position, empty_peer_frame, position
from hub.publication import share_thresholds
from hub.releases import read_release_table, table_names
from hub.targets import TargetSpec, load_targets
from hub.vocab import DIMENSIONS, TOTAL

IN_RELEASE = "in release {number}"
NOT_YET = "approved, not yet in a release"
MIN_PEERS = 5  # peers besides the organisation itself (issue 5 and 6: "at least 5 peers")


@dataclass(frozen=True)
class OrganisationInfo:
    code: str
    name: str
    stakeholder_type: str
    country: str


@dataclass(frozen=True)
class OwnFigures:
    """One organisation's indicator cells (organisation level, every breakdown), each with its
    ``status`` and its ``display`` after primary protection; and the release compared with."""

    organisation: OrganisationInfo
    cells: pd.DataFrame
    release: int | None  # the latest published release, if any


class FigureContext:
    """What every organisation's figures need and is the same for all of them (read once
    for a batch of reports): the catalogue, targets' thresholds, the disclosure policy and
    the latest published release's number and build time."""

    def __init__(self, session: Session, catalogue: Catalogue, data_dir: Path) -> None:
        self.catalogue = catalogue
        targets: list[TargetSpec] = load_targets(data_dir, catalogue)
        self.hours = share_thresholds(targets)
        self.policy: DisclosurePolicy = load_policy(data_dir)
        latest = session.exec(
            select(Release.number, Release.built_at)
            .where(col(Release.status) == "published")
            .order_by(col(Release.number).desc())
            .limit(1)
        ).first()
        self.release: int | None = int(latest[0]) if latest else None
        self.built_at: datetime | None = latest[1] if latest else None

    def peers(self, session: Session) -> pd.DataFrame:
        """The latest published release's peer table (empty without one, or for a release
        built before peer distributions existed)."""
        if self.release is None or "peers" not in table_names(session, self.release):
            return empty_peer_frame()
        return read_release_table(session, self.release, "peers")


def organisation_info(session: Session, code: str) -> OrganisationInfo:
    org = session.exec(select(Organisation).where(col(Organisation.code) == code)).first()
    if org is None:
        raise NotFoundError(f"no organisation {code!r}")
    return OrganisationInfo(org.code, org.name, org.stakeholder_type, org.country or "")


def _own_submissions(session: Session, code: str) -> pd.DataFrame:
    """The organisation's newest approved submission of each scope, and when it was approved."""
    rows = session.exec(
        select(col(Submission.id), col(Submission.reviewed_at))
        .join(Organisation, col(Organisation.id) == col(Submission.organisation_id))
        .where(col(Organisation.code) == code)
        .where(col(Submission.id).in_(approved_submissions()))
    ).all()
    return pd.DataFrame(rows, columns=["submission_id", "reviewed_at"])


def _released(reviewed: pd.Series, built_at: datetime | None) -> np.ndarray:
    """Approved no later than the release was built (SQLite gives naive UTC times)."""
    if built_at is None or reviewed.empty:
        return np.zeros(len(reviewed), dtype=bool)
    stamps = pd.to_datetime(reviewed, utc=True)
    built = pd.Timestamp(built_at)
    built = built.tz_localize("UTC") if built.tzinfo is None else built.tz_convert("UTC")
    return (stamps <= built).to_numpy(dtype=bool)


def own_figures(session: Session, context: FigureContext, code: str) -> OwnFigures:
    """The organisation's own figures from its approved data, marked and protected."""
    info = organisation_info(session, code)
    submissions = _own_submissions(session, code)
    ids = [int(i) for i in submissions["submission_id"]]
    observations = load_observations(
        session, sql_select(col(Submission.id)).where(col(Submission.id).in_(ids))
    )
    released_ids = set(
        submissions.loc[_released(submissions["reviewed_at"], context.built_at), "submission_id"]
    )
    cells = _organisation_cells(observations, context)
    if cells.empty or len(released_ids) == len(ids):  # nothing approved since: all released
        return OwnFigures(info, _marked(cells, None, context), context.release)
    earlier = observations[observations["submission_id"].isin(released_ids)]
    in_release = _organisation_cells(earlier, context)
    return OwnFigures(info, _marked(cells, in_release, context), context.release)


def _organisation_cells(observations: pd.DataFrame, context: FigureContext) -> pd.DataFrame:
    table = compute_indicators(observations, context.catalogue, share_within_hours=context.hours)
    return table[table["level"] == "organisation"].reset_index(drop=True)


def _marked(cells: pd.DataFrame, in_release: pd.DataFrame | None, context: FigureContext) -> pd.DataFrame:
    """``cells`` with ``status`` (the same figure in the release's data, or approved since;
    ``in_release`` None: every submission is in it) and the protection of counts of people
    (``suppressed``, ``display``)."""
    out = cells.copy()
    if out.empty:
        for name, dtype in (("status", "string"), ("suppressed", "bool"), ("display", "string")):
            out[name] = pd.Series(dtype=dtype)
        return out
    if in_release is None:  # nothing approved since the release: no comparison to make
        same = out["value"].notna().to_numpy()
    else:
        key = list(KEY_COLUMNS)
        earlier = in_release.loc[:, [*key, "value"]].rename(columns={"value": "released_value"})
        out = out.merge(earlier, on=key, how="left")
        same = (
            np.isclose(
                out["value"].to_numpy(dtype=float),
                out["released_value"].to_numpy(dtype=float),
                equal_nan=True,
            )
            & out["released_value"].notna().to_numpy()
        )
        out = out.drop(columns=["released_value"])
    status = IN_RELEASE.format(number=context.release) if context.release is not None else NOT_YET
    out["status"] = pd.array(np.where(same, status, NOT_YET), dtype="string")
    thresholds = {name: rule.threshold for name, rule in context.policy.classes.items()}
    threshold = out["disclosure_class"].map(thresholds).fillna(0).to_numpy(dtype=float)
    values = out["value"].to_numpy(dtype=float)
    counted = out["statistic"].isin(["value", "events"]).to_numpy()
    small = counted & (threshold > 0) & (values > 0) & (values < threshold)
    # a small count could be worked out from the year and its other quarters, or from a total
    # and its other parts: every count of that metric in that year is hidden with it ("x")
    year = out["period"].str.slice(0, 4)
    family = pd.Series(small).groupby([out["metric"].to_numpy(), year.to_numpy()]).transform("any").to_numpy()
    hidden = small | (counted & (threshold > 0) & family.astype(bool))
    out["suppressed"] = hidden
    shown = np.where(small, [f"<{int(t)}" for t in threshold], [f"{v:.10g}" for v in values])
    out["display"] = pd.array(np.where(hidden & ~small, "x", shown), dtype="string")
    out.loc[hidden, "value"] = np.nan
    return out


def totals(cells: pd.DataFrame) -> pd.DataFrame:
    """The cells not broken down on any dimension."""
    keep = np.ones(len(cells), dtype=bool)
    for name in DIMENSIONS:
        keep &= (cells[name] == TOTAL).to_numpy()
    return cells.loc[keep].reset_index(drop=True)


@dataclass(frozen=True)
class PeerComparison:
    metric: str
    period: str
    statistic: str
    param: float
    unit: str
    value: float
    position: Position


def peer_positions(own: OwnFigures, peers: pd.DataFrame, *, year: str | None = None) -> list[PeerComparison]:
    """The organisation's figures against its stakeholder type's published peer bands (only
    where at least :data:`MIN_PEERS` peers besides itself contribute, and not hidden)."""
    if peers.empty or own.cells.empty:
        return []
    mine = peers[peers["stakeholder_type"] == own.organisation.stakeholder_type]
    cells = totals(own.cells)
    cells = cells[cells["statistic"].isin(PEER_STATISTICS) & cells["value"].notna()]
    if year is not None:  # the year and its halves, quarters and months
        cells = cells[cells["period"].str.startswith(year)]
    key = ["metric", "period", "statistic", "param"]
    # only the distributions of its own figures (a release holds thousands)
    mine = mine.merge(cells.loc[:, key].drop_duplicates(), on=key, how="inner")
    bands = {
        (str(k[0]), str(k[1]), str(k[2]), round(float(k[3]), 6)): group
        for k, group in mine.groupby(key, sort=False)
    }
    found = []
    for cell in cells.itertuples(index=False):
        group = bands.get(
            (str(cell.metric), str(cell.period), str(cell.statistic), round(float(cell.param), 6))
        )
        if group is None:
            continue
        # counted as one of the contributors even when its figure is newer than the release
        # (an earlier version may be in it): the safe side of "at least 5 peers"
        where = position(float(cell.value), group, includes_self=True, min_peers=MIN_PEERS)
        if where is not None:
            found.append(
                PeerComparison(
                    str(cell.metric), str(cell.period), str(cell.statistic), float(cell.param),
                    str(cell.unit), float(cell.value), where,
                )
            )  # fmt: skip
    return sorted(found, key=lambda c: (c.metric, c.period, c.statistic, c.param))


# the statistics a comparison shows: the metric's value, the median and 90th percentile, and
# the shares within 24 hours, 3 and 7 days (a release holds more thresholds, for targets)
HEADLINE_PARAMS = {"share_within": (24.0, 72.0, 168.0), "percentile": (0.5, 0.9)}


def headline(comparisons: Sequence[PeerComparison]) -> list[PeerComparison]:
    """The comparisons of the headline statistics (:data:`HEADLINE_PARAMS`)."""
    return [
        c
        for c in comparisons
        if c.statistic == "value" or any(np.isclose(c.param, p) for p in HEADLINE_PARAMS.get(c.statistic, ()))
    ]


def year_or_quarters(comparisons: Sequence[PeerComparison]) -> list[PeerComparison]:
    """Per metric and statistic, the whole year's comparison where there is one, else the
    quarters' (months would make a table twelve times longer)."""
    years = {(c.metric, c.statistic, c.param) for c in comparisons if c.period.isdigit()}
    return [
        c
        for c in comparisons
        if c.period.isdigit() or ("-Q" in c.period and (c.metric, c.statistic, c.param) not in years)
    ]


def report_years(own: OwnFigures) -> list[str]:
    """Calendar years with at least one approved figure of the organisation, newest first."""
    return sorted({str(p)[:4] for p in own.cells["period"]}, reverse=True)
