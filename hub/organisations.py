"""Organisations: the alliance's members and the organisations named by public sources."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlmodel import Session, col, select

from hub import audit, vocab
from hub.countries import is_country_code
from hub.datafiles import safe_load
from hub.errors import CatalogueError, HubError, NotFoundError
from hub.models import Organisation

ORG_CODE = re.compile(r"^[a-z0-9][a-z0-9-]{1,63}$")


def _one_of(allowed: tuple[str, ...]) -> Callable[[str | None], str | None]:
    """A validator accepting only values of a closed list from hub.vocab (None passes)."""

    def check(value: str | None) -> str | None:
        if value is not None and value not in allowed:
            raise ValueError(f"{value!r} is not one of {', '.join(allowed)}")
        return value

    return check


class OrganisationIn(BaseModel):
    """What it takes to register an organisation; validated before it reaches the table."""

    model_config = ConfigDict(extra="forbid")

    code: str = Field(pattern=ORG_CODE.pattern)
    name: str = Field(min_length=2, max_length=200)
    stakeholder_type: Annotated[str, AfterValidator(_one_of(vocab.STAKEHOLDER_TYPES))]
    country: str | None = None
    sector: Annotated[str | None, AfterValidator(_one_of(vocab.SECTORS))] = None
    consents_to_be_named: bool = False
    status: Annotated[str, AfterValidator(_one_of(vocab.ORGANISATION_STATUSES))] = "member"
    parent: str | None = None

    @field_validator("country")
    @classmethod
    def _country(cls, value: str | None) -> str | None:
        if value is not None and not is_country_code(value):
            raise ValueError(f"{value!r} is not an ISO 3166-1 alpha-2 code")
        return value

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if value != value.strip() or any(ord(ch) < 32 for ch in value):
            raise ValueError("name has leading/trailing spaces or control characters")
        return value


def get_by_code(session: Session, code: str) -> Organisation:
    org = session.exec(select(Organisation).where(Organisation.code == code)).first()
    if org is None:
        raise NotFoundError(f"no organisation with code {code!r}")
    return org


def add_organisation(session: Session, data: OrganisationIn, *, actor: str = "cli") -> Organisation:
    """Register a new organisation; a code already in use is an error."""
    if session.exec(select(Organisation.id).where(Organisation.code == data.code)).first():
        raise HubError(f"organisation code {data.code!r} is already in use")
    parent_id = get_by_code(session, data.parent).id if data.parent else None
    org = Organisation(**data.model_dump(exclude={"parent"}), parent_id=parent_id)
    session.add(org)
    session.flush()
    audit.record(
        session,
        "organisation.add",
        actor_label=actor,
        organisation_id=org.id,
        object_type="organisation",
        object_id=org.id,
    )
    return org


def list_organisations(
    session: Session, *, stakeholder_type: str | None = None, status: str | None = None
) -> list[Organisation]:
    query = select(Organisation).order_by(col(Organisation.code))
    if stakeholder_type:
        query = query.where(Organisation.stakeholder_type == stakeholder_type)
    if status:
        query = query.where(Organisation.status == status)
    return list(session.exec(query))


def read_registry(path: Path) -> list[OrganisationIn]:
    """Read a YAML list of organisations (``organisations:``), reporting every bad entry."""
    raw = safe_load(path.read_text(encoding="utf-8")) or {}
    problems: list[str] = []
    entries: list[OrganisationIn] = []
    for index, entry in enumerate(raw.get("organisations", [])):
        try:
            entries.append(OrganisationIn.model_validate(entry))
        except ValidationError as exc:
            for err in exc.errors():
                problems.append(
                    f"{path}: entry {index + 1} ({entry.get('code')!r}): "
                    f"{'.'.join(map(str, err['loc']))}: {err['msg']}"
                )
    codes = [e.code for e in entries]
    for code in {c for c in codes if codes.count(c) > 1}:
        problems.append(f"{path}: duplicate organisation code {code!r}")
    known = set(codes)
    for entry in entries:
        if entry.parent and entry.parent not in known:
            problems.append(f"{path}: {entry.code!r}: unknown parent {entry.parent!r}")
    if problems:
        raise CatalogueError(problems)
    return entries


def upsert_registry(session: Session, entries: list[OrganisationIn]) -> dict[str, int]:
    """Create missing organisations (parents first) and return code -> id for all of them.

    Existing organisations keep their stored attributes: the registry seeds, it does not
    overwrite what the secretariat has since changed.
    """
    ids = {org.code: org.id for org in session.exec(select(Organisation)) if org.id is not None}
    pending = [e for e in entries if e.code not in ids]
    while pending:
        ready = [e for e in pending if e.parent is None or e.parent in ids]
        if not ready:
            raise HubError("organisation registry has parents that cannot be resolved")
        for entry in ready:
            org = Organisation(
                **entry.model_dump(exclude={"parent"}),
                parent_id=ids[entry.parent] if entry.parent else None,
            )
            session.add(org)
            session.flush()
            assert org.id is not None
            ids[entry.code] = org.id
        pending = [e for e in pending if e.code not in ids]
    return ids
