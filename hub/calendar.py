"""The reporting calendar: which metrics each member organisation owes, for which periods, by when.

An obligation says an organisation reports ``metric`` for every period of ``period_kind``
that lies within [active_from, active_until], due ``due_days`` after the period ends. The
secretariat sets it per organisation; :func:`default_calendar` proposes one from the
catalogue so a new member starts with something sensible.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import insert
from sqlmodel import Session, col, select

from hub import audit, vocab
from hub.catalogue import Catalogue
from hub.errors import HubError, NotFoundError
from hub.models import MetricDefinition, Organisation, ReportingObligation
from hub.periods import PeriodRef
from hub.store import metric_ids

# the alliance's first year: obligations of a default calendar apply from here on
DEFAULT_ACTIVE_FROM = date(2012, 12, 1)
# organisations that report no catalogue metric (NGOs) or are not members (public sources)
NO_CALENDAR_TYPES = frozenset({"ngo"})
# a functional mailbox: one address, ASCII, a dot in the domain; no display name, no list
_MAILBOX = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$"
)


@dataclass(frozen=True, order=True)
class Obligation:
    """One line of an organisation's calendar (by metric code, for people and files)."""

    metric: str
    period_kind: str
    due_days: int
    active_from: date = DEFAULT_ACTIVE_FROM
    active_until: date | None = None

    def applies_to(self, period: PeriodRef) -> bool:
        """True when ``period`` is of this kind and lies wholly inside the active window."""
        last_day = period.end - timedelta(days=1)
        return (
            period.kind == self.period_kind
            and period.start >= self.active_from
            and (self.active_until is None or last_day <= self.active_until)
        )

    def due_date(self, period: PeriodRef) -> date:
        """The last day on which figures for ``period`` are on time."""
        return period.end + timedelta(days=self.due_days)


def has_calendar(organisation: Organisation) -> bool:
    """Members report; NGOs report no catalogue metric and public sources are not members."""
    return organisation.status == "member" and organisation.stakeholder_type not in NO_CALENDAR_TYPES


def default_calendar(
    catalogue: Catalogue,
    organisation: Organisation,
    *,
    due_days: int = 30,
    active_from: date = DEFAULT_ACTIVE_FROM,
) -> list[Obligation]:
    """Every metric the organisation's type reports, at the metric's primary (first) frequency."""
    if not has_calendar(organisation):
        return []
    return sorted(
        Obligation(spec.code, spec.frequencies[0], due_days, active_from)
        for spec in catalogue.metrics_for(organisation.stakeholder_type)
    )


def _check(catalogue: Catalogue, organisation: Organisation, obligation: Obligation) -> None:
    spec = catalogue.metric(obligation.metric)  # unknown metric: CatalogueError
    if obligation.period_kind not in vocab.PERIOD_KINDS:
        raise HubError(f"unknown period kind {obligation.period_kind!r} ({', '.join(vocab.PERIOD_KINDS)})")
    if obligation.period_kind not in spec.frequencies:
        raise HubError(
            f"{spec.code} is reported by {', '.join(spec.frequencies)}, not by {obligation.period_kind}"
        )
    if organisation.stakeholder_type not in spec.reported_by:
        raise HubError(f"{spec.code} is not reported by a {organisation.stakeholder_type}")
    if not 0 <= obligation.due_days <= 366:
        raise HubError("due days must be 0 to 366")
    if obligation.active_until is not None and obligation.active_until < obligation.active_from:
        raise HubError("active until is before active from")


def calendar_of(session: Session, organisation: Organisation) -> list[Obligation]:
    """The organisation's stored calendar, sorted by metric and kind."""
    rows = session.exec(
        select(ReportingObligation, MetricDefinition.code)
        .join(MetricDefinition, col(MetricDefinition.id) == ReportingObligation.metric_id)
        .where(ReportingObligation.organisation_id == organisation.id)
    ).all()
    return sorted(
        Obligation(code, row.period_kind, row.due_days, row.active_from, row.active_until)
        for row, code in rows
    )


def set_obligation(
    session: Session,
    catalogue: Catalogue,
    organisation: Organisation,
    obligation: Obligation,
    *,
    actor: str = "cli",
) -> bool:
    """Add or change one obligation; True when something changed."""
    _check(catalogue, organisation, obligation)
    metric_id = metric_ids(session, catalogue)[obligation.metric]
    row = session.exec(
        select(ReportingObligation).where(
            ReportingObligation.organisation_id == organisation.id,
            ReportingObligation.metric_id == metric_id,
            ReportingObligation.period_kind == obligation.period_kind,
        )
    ).first()
    values = (obligation.due_days, obligation.active_from, obligation.active_until)
    if row is not None and (row.due_days, row.active_from, row.active_until) == values:
        return False
    if row is None:
        assert organisation.id is not None
        row = ReportingObligation(
            organisation_id=organisation.id,
            metric_id=metric_id,
            period_kind=obligation.period_kind,
            active_from=obligation.active_from,
        )
    row.due_days, row.active_from, row.active_until = values
    session.add(row)
    session.flush()
    audit.record(
        session,
        "calendar.set",
        actor_label=actor,
        organisation_id=organisation.id,
        object_type="reporting_obligation",
        object_id=row.id,
        details={
            "metric": obligation.metric,
            "period_kind": obligation.period_kind,
            "due_days": row.due_days,
        },
    )
    return True


def remove_obligation(
    session: Session,
    catalogue: Catalogue,
    organisation: Organisation,
    metric: str,
    period_kind: str,
    *,
    actor: str = "cli",
) -> None:
    """Drop one obligation (stored statuses are recomputed by the next refresh)."""
    metric_id = metric_ids(session, catalogue).get(metric)
    row = session.exec(
        select(ReportingObligation).where(
            ReportingObligation.organisation_id == organisation.id,
            ReportingObligation.metric_id == metric_id,
            ReportingObligation.period_kind == period_kind,
        )
    ).first()
    if row is None:
        raise NotFoundError(f"{organisation.code} has no {period_kind} obligation for {metric!r}")
    audit.record(
        session,
        "calendar.remove",
        actor_label=actor,
        organisation_id=organisation.id,
        object_type="reporting_obligation",
        object_id=row.id,
        details={"metric": metric, "period_kind": period_kind},
    )
    session.delete(row)
    session.flush()


def sync_calendar(
    session: Session,
    catalogue: Catalogue,
    organisation: Organisation,
    obligations: list[Obligation] | None = None,
    *,
    due_days: int = 30,
    actor: str = "cli",
) -> int:
    """Add the obligations (default: :func:`default_calendar`) the organisation lacks.

    Idempotent, and it never changes or removes an obligation the secretariat has set, so
    running it again (or for every organisation) is safe. Returns how many were added.
    """
    if obligations is None:
        obligations = default_calendar(catalogue, organisation, due_days=due_days)
    return sync_calendars(session, catalogue, [(organisation, obligations)], actor=actor)


def sync_calendars(
    session: Session,
    catalogue: Catalogue,
    calendars: list[tuple[Organisation, list[Obligation]]],
    *,
    actor: str = "cli",
) -> int:
    """:func:`sync_calendar` for many organisations in one read and one bulk insert."""
    calendars = [(org, wanted) for org, wanted in calendars if wanted]
    if not calendars:
        return 0
    ids = metric_ids(session, catalogue)
    org_ids = [org.id for org, _ in calendars]
    existing = set(
        session.exec(
            select(
                ReportingObligation.organisation_id,
                ReportingObligation.metric_id,
                ReportingObligation.period_kind,
            ).where(col(ReportingObligation.organisation_id).in_(org_ids))
        )
    )
    records: list[dict[str, object]] = []
    for organisation, wanted in calendars:
        added = 0
        for obligation in wanted:
            _check(catalogue, organisation, obligation)
            assert organisation.id is not None
            key = (organisation.id, ids[obligation.metric], obligation.period_kind)
            if key in existing:
                continue
            existing.add(key)
            records.append(
                {
                    "organisation_id": organisation.id,
                    "metric_id": key[1],
                    "period_kind": obligation.period_kind,
                    "due_days": obligation.due_days,
                    "active_from": obligation.active_from,
                    "active_until": obligation.active_until,
                }
            )
            added += 1
        if added:
            audit.record(
                session,
                "calendar.init",
                actor_label=actor,
                organisation_id=organisation.id,
                object_type="organisation",
                object_id=organisation.id,
                details={"added": added},
            )
    if records:
        session.execute(insert(ReportingObligation), records)
        session.flush()
    return len(records)


def check_mailbox(address: str) -> str:
    """The address if it has the shape of one mailbox; never echoes a bad value back."""
    text = address.strip()
    if len(text) > 254 or not _MAILBOX.match(text):
        raise HubError("the reporting contact must be one e-mail address such as reporting@example.org")
    return text


def set_contact(
    session: Session, organisation: Organisation, address: str | None, *, actor: str = "cli"
) -> None:
    """Set (or clear, with None) the organisation's functional reporting mailbox."""
    organisation.reporting_contact = None if address is None else check_mailbox(address)
    session.add(organisation)
    session.flush()
    audit.record(
        session,
        "organisation.contact",
        actor_label=actor,
        organisation_id=organisation.id,
        object_type="organisation",
        object_id=organisation.id,
        details={"set": address is not None},  # never the address itself
    )
