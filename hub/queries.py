"""Read functions behind the public pages: plain functions of a session, returning DataFrames.

The public may see only two kinds of data before releases exist:

* figures their publisher already published, i.e. observations of submissions with channel
  ``public_source`` (always returned with the source they came from), and
* coordination facts about the alliance (who its members are by type and country, how many
  submissions arrived) that contain none of the members' submitted figures.

Every function that reads observations goes through :func:`published_figures`, which holds
the channel filter, so no page can reach members' figures by accident. Dashboards format
what these functions return and compute nothing themselves.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
from sqlalchemy import Column, case, extract, func, select
from sqlmodel import Session, SQLModel

from hub import models  # noqa: F401  (registers the tables read below)
from hub.countries import alpha3_codes, country_name
from hub.store import current_submissions
from hub.vocab import DIMENSIONS, TOTAL

PUBLIC_CHANNEL = "public_source"
NCMEC = "ncmec"  # organisation code of NCMEC in data/organisations/public_sources.yaml
MEMBER = "member"
EXTERNAL = "external"  # organisations known only from public sources

REPORTS_RECEIVED = "ch_reports_received"
REPORTS_TO_AUTHORITY = "co_reports_to_authority"
HOSTED_NOTICES = "ch_hosted_notices_sent"
MEAN_HOURS_TO_TAKEDOWN = "ch_mean_hours_to_takedown"

OBSERVATION = SQLModel.metadata.tables["observation"]
SUBMISSION = SQLModel.metadata.tables["submission"]
ORGANISATION = SQLModel.metadata.tables["organisation"]
METRIC = SQLModel.metadata.tables["metric_definition"]
PERIOD = SQLModel.metadata.tables["period"]

_FIGURE_COLUMNS = ["metric", "period", "year", "publisher", "value", "source", "label", "submission_id"]
_FIGURE_KEY = ["metric", "period", "publisher"]


@dataclass(frozen=True)
class PublishedSeries:
    """Published figures of one metric with what they measure and who published them."""

    metric: str
    metric_name: str
    frame: pd.DataFrame
    sources: tuple[str, ...]
    year: int | None = None  # the year shown, for figures of a single year

    @property
    def empty(self) -> bool:
        return self.frame.empty


@dataclass(frozen=True)
class Headline:
    """The figures at the top of the overview page."""

    cybertipline_year: int | None
    cybertipline_total: float | None
    cybertipline_source: str | None
    members: int
    countries: int
    stakeholder_types: int


def _dimension(name: str) -> Column[Any]:
    return OBSERVATION.c[name]


def published_figures(
    session: Session,
    metrics: Sequence[str],
    *,
    by: Sequence[str] = (),
    free: Sequence[str] = (),
    period_kind: str = "year",
    publisher: str | None = None,
) -> pd.DataFrame:
    """Figures published by their publisher (channel ``public_source``), newest version only.

    ``by`` names the dimensions that must be broken down (not total), ``free`` those that may
    take any value; every other dimension must be the total, so a breakdown is never added to
    its own total. Figures published as "not available" (NULL) are left out.

    A publisher can give the same figure in several publications (NCMEC's per-provider table
    and a compilation of comparable counts, say), sometimes counted differently. Figures are
    never mixed across publications: for each metric, period and publisher the one
    publication (submission) giving the most figures of this shape is used, then the one
    giving the most over all periods, then the newest.

    Columns: metric, period, year, publisher, value, source (the publication's name), label
    (the figure's own label, as printed), submission_id, one column per dimension asked for.
    """
    unknown = set(by) | set(free)
    unknown -= set(DIMENSIONS)
    if unknown:
        raise ValueError(f"unknown dimension(s): {', '.join(sorted(unknown))}")
    dims = [*by, *free]
    query = (
        select(
            METRIC.c.code.label("metric"),
            PERIOD.c.code.label("period"),
            PERIOD.c.year.label("year"),
            ORGANISATION.c.code.label("publisher"),
            OBSERVATION.c.value.label("value"),
            func.coalesce(SUBMISSION.c.source_name, OBSERVATION.c.source_label).label("source"),
            OBSERVATION.c.source_label.label("label"),
            SUBMISSION.c.id.label("submission_id"),
            *(_dimension(d).label(d) for d in dims),
        )
        .join(SUBMISSION, OBSERVATION.c.submission_id == SUBMISSION.c.id)
        .join(METRIC, OBSERVATION.c.metric_id == METRIC.c.id)
        .join(PERIOD, OBSERVATION.c.period_id == PERIOD.c.id)
        .join(ORGANISATION, SUBMISSION.c.organisation_id == ORGANISATION.c.id)
        .where(
            SUBMISSION.c.channel == PUBLIC_CHANNEL,
            SUBMISSION.c.id.in_(current_submissions(PUBLIC_CHANNEL)),
            METRIC.c.code.in_(list(metrics)),
            PERIOD.c.kind == period_kind,
            OBSERVATION.c.value.is_not(None),
        )
    )
    if publisher is not None:
        query = query.where(ORGANISATION.c.code == publisher)
    for dimension in DIMENSIONS:
        if dimension in by:
            query = query.where(_dimension(dimension) != TOTAL)
        elif dimension not in free:
            query = query.where(_dimension(dimension) == TOTAL)
    columns = [*_FIGURE_COLUMNS, *dims]
    frame = pd.DataFrame(session.execute(query).all(), columns=columns)
    if frame.empty:
        return frame
    frame = _one_publication_each(frame)
    frame["value"] = frame["value"].astype(float)
    frame["year"] = frame["year"].astype(int)
    frame["source"] = frame["source"].fillna("")
    return frame.reset_index(drop=True)


def _one_publication_each(frame: pd.DataFrame) -> pd.DataFrame:
    """Keep, per metric, period and publisher, only the rows of one publication (see above)."""
    per_period = frame.groupby([*_FIGURE_KEY, "submission_id"])["value"].transform("size")
    overall = frame.groupby(["metric", "publisher", "submission_id"])["value"].transform("size")
    ranked = frame.assign(_n_period=per_period, _n_overall=overall).sort_values(
        ["_n_period", "_n_overall", "submission_id"]
    )
    chosen = ranked.groupby(_FIGURE_KEY)["submission_id"].transform("last")
    ranked = ranked[ranked["submission_id"] == chosen]
    return ranked.drop(columns=["_n_period", "_n_overall"]).sort_index()


def metric_names(session: Session, codes: Iterable[str]) -> dict[str, str]:
    """Metric code -> its catalogue name (the code itself when the metric is unknown)."""
    wanted = list(codes)
    found = dict(session.execute(select(METRIC.c.code, METRIC.c.name).where(METRIC.c.code.in_(wanted))).all())
    return {code: found.get(code, code) for code in wanted}


def _sources(frame: pd.DataFrame) -> tuple[str, ...]:
    if frame.empty:
        return ()
    return tuple(sorted({s for s in frame["source"] if s}))


def _series(session: Session, metric: str, frame: pd.DataFrame, year: int | None = None) -> PublishedSeries:
    name = metric_names(session, [metric])[metric]
    return PublishedSeries(metric, name, frame.reset_index(drop=True), _sources(frame), year)


def _organisation_names(session: Session) -> dict[str, str]:
    return dict(session.execute(select(ORGANISATION.c.code, ORGANISATION.c.name)).all())


def _latest_year(frame: pd.DataFrame, year: int | None) -> int | None:
    if frame.empty:
        return None
    return int(frame["year"].max()) if year is None else year


def cybertipline_reports_per_year(session: Session, *, publisher: str = NCMEC) -> PublishedSeries:
    """All CyberTipline reports per year (every source, no breakdown): year, reports, source."""
    frame = published_figures(session, [REPORTS_RECEIVED], publisher=publisher)
    frame = frame.sort_values("year")[["year", "value", "source"]].rename(columns={"value": "reports"})
    return _series(session, REPORTS_RECEIVED, frame)


def top_reporting_providers(
    session: Session, *, limit: int = 15, year: int | None = None, publisher: str = NCMEC
) -> PublishedSeries:
    """The providers that made the most CyberTipline reports in ``year`` (default: latest).

    Columns: rank, code, name, reports, share (of all CyberTipline reports that year, when
    the yearly total is published), source. Providers are as the publisher listed them.
    """
    frame = published_figures(
        session, [REPORTS_RECEIVED], by=["counterpart"], free=["notice_source"], publisher=publisher
    )
    year = _latest_year(frame, year)
    frame = frame[frame["year"] == year]
    names = _organisation_names(session)
    totals = cybertipline_reports_per_year(session, publisher=publisher).frame
    total = totals.loc[totals["year"] == year, "reports"]
    frame = frame.sort_values(["value", "counterpart"], ascending=[False, True]).head(limit)
    result = pd.DataFrame(
        {
            "rank": range(1, len(frame) + 1),
            "code": frame["counterpart"].to_numpy(),
            "name": [names.get(c, c) for c in frame["counterpart"]],
            "reports": frame["value"].to_numpy(),
            "share": frame["value"].to_numpy() / float(total.iloc[0]) if len(total) else float("nan"),
            "source": frame["source"].to_numpy(),
        }
    )
    return _series(session, REPORTS_RECEIVED, result, year)


def reports_by_country(
    session: Session, *, year: int | None = None, publisher: str = NCMEC
) -> PublishedSeries:
    """CyberTipline reports by apparent upload country in ``year`` (default: latest).

    Columns: country (alpha-2), alpha3 (None for codes a map cannot draw, e.g. ZZ), name,
    reports, source; largest first.
    """
    frame = published_figures(session, [REPORTS_RECEIVED], by=["country"], publisher=publisher)
    year = _latest_year(frame, year)
    frame = frame[frame["year"] == year].sort_values(["value", "country"], ascending=[False, True])
    alpha3 = alpha3_codes()
    result = pd.DataFrame(
        {
            "country": frame["country"].to_numpy(),
            "alpha3": [alpha3.get(c) for c in frame["country"]],
            "name": [country_name(c) for c in frame["country"]],
            "reports": frame["value"].to_numpy(),
            "source": frame["source"].to_numpy(),
        }
    )
    return _series(session, REPORTS_RECEIVED, result, year)


@dataclass(frozen=True)
class HostedNotices:
    """NCMEC's hosted-CSAM notices and average time to takedown, per provider and in total.

    ``per_provider``: year, code, name, service, notices, mean_hours, mean_days, source.
    ``totals``: year, notices, mean_hours, mean_days (the publisher's own total row).
    Averages are shown as published: they cannot be combined into an alliance median.
    """

    notices_name: str
    hours_name: str
    per_provider: pd.DataFrame
    totals: pd.DataFrame
    sources: tuple[str, ...]

    @property
    def empty(self) -> bool:
        return self.per_provider.empty


def _notices_with_hours(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    notices = frame[frame["metric"] == HOSTED_NOTICES][[*keys, "value", "source"]]
    hours = frame[frame["metric"] == MEAN_HOURS_TO_TAKEDOWN][[*keys, "value"]]
    merged = notices.rename(columns={"value": "notices"}).merge(
        hours.rename(columns={"value": "mean_hours"}), on=keys, how="outer"
    )
    merged["mean_days"] = merged["mean_hours"] / 24
    merged["source"] = merged["source"].fillna("")
    return merged


def hosted_notices(session: Session, *, publisher: str = NCMEC) -> HostedNotices:
    """Hosted-CSAM notices per provider (and service) with the published average time."""
    metrics = [HOSTED_NOTICES, MEAN_HOURS_TO_TAKEDOWN]
    rows = published_figures(session, metrics, by=["counterpart"], free=["service"], publisher=publisher)
    totals = published_figures(session, metrics, publisher=publisher)
    org_names = _organisation_names(session)
    per_provider = _notices_with_hours(rows, ["year", "counterpart", "service"]).rename(
        columns={"counterpart": "code"}
    )
    per_provider.insert(2, "name", [org_names.get(c, c) for c in per_provider["code"]])
    per_provider = per_provider.sort_values(
        ["year", "notices", "code", "service"], ascending=[False, False, True, True]
    )
    total_frame = _notices_with_hours(totals, ["year"]).drop(columns="source").sort_values("year")
    names = metric_names(session, metrics)
    return HostedNotices(
        names[HOSTED_NOTICES],
        names[MEAN_HOURS_TO_TAKEDOWN],
        per_provider.reset_index(drop=True),
        total_frame.reset_index(drop=True),
        tuple(sorted(set(_sources(rows)) | set(_sources(totals)))),
    )


def _descendants(session: Session) -> dict[str, list[str]]:
    """Organisation code -> itself and every organisation below it in the group tree."""
    rows = session.execute(select(ORGANISATION.c.id, ORGANISATION.c.code, ORGANISATION.c.parent_id)).all()
    code_of = {row.id: row.code for row in rows}
    children: dict[str, list[str]] = defaultdict(list)
    for row in rows:
        if row.parent_id is not None and row.parent_id in code_of:
            children[code_of[row.parent_id]].append(row.code)

    def walk(code: str, seen: frozenset[str]) -> list[str]:
        found = [code]
        for child in sorted(children.get(code, [])):
            if child not in seen:
                found.extend(walk(child, seen | {child}))
        return found

    return {row.code: walk(row.code, frozenset({row.code})) for row in rows}


DISAGREEMENT_COLUMNS = [
    "year",
    "provider",
    "provider_name",
    "clearinghouse",
    "clearinghouse_name",
    "provider_count",
    "clearinghouse_count",
    "gap",
    "gap_pct",
    "clearinghouse_covers",
    "provider_source",
    "clearinghouse_source",
]


def sources_disagree(
    session: Session, *, clearinghouse: str | None = None, include_equal: bool = False
) -> pd.DataFrame:
    """Years where a provider's own count of its reports differs from the clearinghouse's.

    Compares a provider's published ``co_reports_to_authority`` (counterpart: the
    clearinghouse) with the clearinghouse's published ``ch_reports_received`` from that
    provider, for the same year. The clearinghouse side adds up the provider and the
    organisations below it in the group tree (e.g. Amazon with Twitch), because that is
    how the clearinghouse's own comparable figures are counted; ``clearinghouse_covers``
    names them. ``gap`` = provider count - clearinghouse count, ``gap_pct`` = gap as a
    percentage of the clearinghouse count. Both sources are kept: nothing is reconciled.
    ``clearinghouse`` limits the comparison to one (by organisation code).
    """
    own = published_figures(session, [REPORTS_TO_AUTHORITY], by=["counterpart"])
    if clearinghouse is not None:
        own = own[own["counterpart"] == clearinghouse]
    seen = published_figures(session, [REPORTS_RECEIVED], by=["counterpart"], free=["notice_source"])
    if own.empty or seen.empty:
        return pd.DataFrame(columns=DISAGREEMENT_COLUMNS)
    names = _organisation_names(session)
    family = _descendants(session)
    seen_index = {
        (row.year, row.publisher, row.counterpart): (row.value, row.source) for row in seen.itertuples()
    }
    records = []
    for row in own.sort_values(["year", "publisher"]).itertuples():
        covered = [
            code
            for code in family.get(row.publisher, [row.publisher])
            if (row.year, row.counterpart, code) in seen_index
        ]
        if not covered:
            continue
        counted = sum(seen_index[(row.year, row.counterpart, code)][0] for code in covered)
        gap = row.value - counted
        if gap == 0 and not include_equal:
            continue
        sources = sorted({seen_index[(row.year, row.counterpart, code)][1] for code in covered} - {""})
        records.append(
            {
                "year": row.year,
                "provider": row.publisher,
                "provider_name": names.get(row.publisher, row.publisher),
                "clearinghouse": row.counterpart,
                "clearinghouse_name": names.get(row.counterpart, row.counterpart),
                "provider_count": row.value,
                "clearinghouse_count": counted,
                "gap": gap,
                "gap_pct": 100 * gap / counted if counted else float("nan"),
                "clearinghouse_covers": tuple(names.get(code, code) for code in covered),
                "provider_source": row.source,
                "clearinghouse_source": "; ".join(sources),
            }
        )
    frame = pd.DataFrame(records, columns=DISAGREEMENT_COLUMNS)
    if frame.empty:
        return frame
    frame["abs_pct"] = frame["gap_pct"].abs()
    frame = frame.sort_values(["year", "abs_pct", "provider"], ascending=[False, False, True])
    return frame.drop(columns="abs_pct").reset_index(drop=True)


def members_by_type(session: Session) -> pd.DataFrame:
    """Member organisations per stakeholder type: stakeholder_type, members (largest first)."""
    rows = session.execute(
        select(ORGANISATION.c.stakeholder_type, func.count())
        .where(ORGANISATION.c.status == MEMBER)
        .group_by(ORGANISATION.c.stakeholder_type)
    ).all()
    frame = pd.DataFrame(rows, columns=["stakeholder_type", "members"])
    return frame.sort_values(["members", "stakeholder_type"], ascending=[False, True]).reset_index(drop=True)


MIN_EXACT_MEMBERS = 3
OTHER_GROUP = "other"


def members_by_country(session: Session) -> pd.DataFrame:
    """Member organisations per country: country, alpha3, name, members, exact (largest first).

    A count is ``exact`` only where it cannot single out a member that has not consented
    to be named: at least MIN_EXACT_MEMBERS members, or every member there named. Other
    counts are withheld (``members`` is None). The total number of members is public, so a
    single withheld count could be recovered by subtraction: then the smallest shown count
    is withheld too. Members without a country are counted under ``None``.
    """
    anonymous = func.sum(case((ORGANISATION.c.consents_to_be_named.is_(False), 1), else_=0))
    rows = session.execute(
        select(ORGANISATION.c.country, func.count(), anonymous)
        .where(ORGANISATION.c.status == MEMBER)
        .group_by(ORGANISATION.c.country)
    ).all()
    alpha3 = alpha3_codes()
    frame = pd.DataFrame(
        [
            (
                c,
                alpha3.get(c) if c else None,
                country_name(c) if c else "Not stated",
                n,
                n >= MIN_EXACT_MEMBERS or not a,
            )
            for c, n, a in rows
        ],
        columns=["country", "alpha3", "name", "members", "exact"],
    )
    frame["_named"] = frame["country"].notna()
    frame = frame.sort_values(["_named", "members", "name"], ascending=[False, False, True])
    frame = frame.drop(columns="_named").reset_index(drop=True)
    if (~frame["exact"]).sum() == 1 and frame["exact"].any():
        frame.loc[frame.index[frame["exact"]][-1], "exact"] = False  # the smallest shown count
    frame["members"] = frame["members"].astype("Int64").where(frame["exact"])
    return frame


def _fold_small_groups(members: dict[str, int], minimum: int) -> dict[str, str]:
    """Group -> shown group: groups of fewer than ``minimum`` members are shown as 'other'.

    If 'other' itself would stay below ``minimum``, the next smallest groups join it.
    """
    shown = {group: group for group in members}
    small = sorted((n, g) for g, n in members.items() if n < minimum)
    folded = sum(n for n, _ in small)
    rest = sorted((n, g) for g, n in members.items() if n >= minimum)
    while small and folded < minimum and rest:
        n, group = rest.pop(0)
        small.append((n, group))
        folded += n
    for _, group in small:
        shown[group] = OTHER_GROUP
    return shown


def submissions_by_quarter(session: Session) -> pd.DataFrame:
    """Submissions received from organisations per calendar quarter and stakeholder type.

    Counts every stored version (a restatement is a submission received too) by the
    quarter of its arrival. Public-source imports and anything stored for organisations
    known only from public sources (status ``external``) are not the alliance's
    submissions. Stakeholder types with fewer than MIN_EXACT_MEMBERS members are shown
    together as 'other', so a late or missing submission cannot point at one organisation.
    Columns: quarter (e.g. 2025-Q1), stakeholder_type, submissions.
    """
    year = extract("year", SUBMISSION.c.received_at)
    month = extract("month", SUBMISSION.c.received_at)
    rows = session.execute(
        select(ORGANISATION.c.stakeholder_type, year, month, func.count())
        .join(ORGANISATION, SUBMISSION.c.organisation_id == ORGANISATION.c.id)
        .where(SUBMISSION.c.channel != PUBLIC_CHANNEL, ORGANISATION.c.status != EXTERNAL)
        .group_by(ORGANISATION.c.stakeholder_type, year, month)
    ).all()
    frame = pd.DataFrame(rows, columns=["stakeholder_type", "year", "month", "submissions"])
    if frame.empty:
        return pd.DataFrame(columns=["quarter", "stakeholder_type", "submissions"])
    members = members_by_type(session)
    shown = _fold_small_groups(
        dict(zip(members["stakeholder_type"], members["members"], strict=True)), MIN_EXACT_MEMBERS
    )
    frame["stakeholder_type"] = frame["stakeholder_type"].map(lambda t: shown.get(t, OTHER_GROUP))
    frame["quarter"] = [
        f"{int(y)}-Q{(int(m) - 1) // 3 + 1}" for y, m in zip(frame["year"], frame["month"], strict=True)
    ]
    frame = frame.groupby(["quarter", "stakeholder_type"], as_index=False)["submissions"].sum()
    return frame.sort_values(["quarter", "stakeholder_type"]).reset_index(drop=True)


def headline(session: Session, *, publisher: str = NCMEC) -> Headline:
    """Latest CyberTipline total and the size of the alliance."""
    yearly = cybertipline_reports_per_year(session, publisher=publisher).frame
    latest = yearly.iloc[-1] if not yearly.empty else None
    by_type = members_by_type(session)
    countries = session.execute(
        select(func.count(func.distinct(ORGANISATION.c.country))).where(
            ORGANISATION.c.status == MEMBER, ORGANISATION.c.country.is_not(None)
        )
    ).scalar_one()
    return Headline(
        cybertipline_year=int(latest["year"]) if latest is not None else None,
        cybertipline_total=float(latest["reports"]) if latest is not None else None,
        cybertipline_source=str(latest["source"]) or None if latest is not None else None,
        members=int(by_type["members"].sum()),
        countries=int(countries),
        stakeholder_types=len(by_type),
    )
