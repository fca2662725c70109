"""The demo alliance's reporting calendar and reporting mailboxes.

Most members agreed a calendar matching what they report (the metrics and period kinds of
their own history); about one in eight were put on the catalogue's default calendar instead
and do not (yet) report everything it asks, so the status shows partial reporting next to
complete, late and missing. Authorities and clearinghouses report quarterly in the demo, so
their default obligations are quarterly too.
"""

from __future__ import annotations

from collections import defaultdict

from sqlmodel import Session, col, select

from hub.calendar import Obligation, default_calendar, has_calendar, sync_calendars
from hub.catalogue import Catalogue
from hub.demo.generate import DUE_DAYS, GeneratedAlliance
from hub.demo.sampling import rng_for
from hub.models import Organisation

ON_DEFAULT_CALENDAR = 0.125  # share of members on the catalogue's default calendar


def contact_for(code: str) -> str:
    """A functional mailbox on a reserved domain (RFC 2606): never a real address."""
    return f"reporting@{code}.example"


def demo_calendars(
    catalogue: Catalogue, generated: GeneratedAlliance, orgs: dict[str, Organisation], seed: int
) -> dict[str, list[Obligation]]:
    """Organisation code -> its obligations, from what each member reports in the demo."""
    first = generated.months[0].start if generated.months else None
    reported: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for sub in generated.submissions:
        if sub.version == 1:
            reported[sub.org].update((row.metric, row.period.kind) for row in sub.rows)
    kinds: dict[tuple[str, str], str] = {}  # (stakeholder type, metric) -> the kind it is reported by
    for code, pairs in reported.items():
        for metric, kind in pairs:
            kinds.setdefault((orgs[code].stakeholder_type, metric), kind)
    calendars = {}
    for code, org in orgs.items():
        if not has_calendar(org) or first is None:
            continue
        # a member that has reported nothing yet is on the default calendar too
        if not reported.get(code) or rng_for(seed, "calendar", code).random() < ON_DEFAULT_CALENDAR:
            wanted = {
                (o.metric, kinds.get((org.stakeholder_type, o.metric), o.period_kind))
                for o in default_calendar(catalogue, org)
            }
        else:
            wanted = reported[code]
        calendars[code] = sorted(Obligation(metric, kind, DUE_DAYS, first) for metric, kind in wanted)
    return calendars


def load_demo_calendar(
    session: Session, catalogue: Catalogue, generated: GeneratedAlliance, seed: int
) -> int:
    """Give every demo member its calendar and a reporting mailbox (idempotent); obligations added."""
    codes = [o.code for o in generated.registry]
    orgs = {o.code: o for o in session.exec(select(Organisation).where(col(Organisation.code).in_(codes)))}
    calendars = demo_calendars(catalogue, generated, orgs, seed)
    added = sync_calendars(session, catalogue, [(orgs[c], o) for c, o in calendars.items()], actor="demo")
    for org in orgs.values():
        if org.reporting_contact is None:
            org.reporting_contact = contact_for(org.code)
            session.add(org)
    session.flush()
    return added
