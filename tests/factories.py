"""Small builders shared by the approval and release tests: organisations and accounts."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlmodel import Session

from hub.auth import create_user
from hub.models import Organisation, User
from hub.organisations import OrganisationIn, add_organisation

NOW = datetime(2026, 3, 1, tzinfo=UTC)
PASSWORD = "correct horse battery staple"


def make_org(
    session: Session, code: str = "acme-social", kind: str = "company", country: str = "FR"
) -> Organisation:
    """An organisation, committed."""
    org = add_organisation(
        session, OrganisationIn(code=code, name=code.title(), stakeholder_type=kind, country=country)
    )
    session.commit()
    return org


def make_user(
    session: Session, username: str = "sec-ann", role: str = "secretariat", org: str | None = None
) -> User:
    """An account with :data:`PASSWORD`, committed."""
    user = create_user(session, username, username, role, org, PASSWORD)
    session.commit()
    return user
