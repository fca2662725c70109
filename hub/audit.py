"""Audit trail: who did what, when, with what result. Callers pass counts, never values."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table
from sqlmodel import Session

from hub.models import AuditEvent, utcnow

_AUDIT_TABLE: Table = AuditEvent.__table__  # type: ignore[attr-defined]
_INSERT = _AUDIT_TABLE.insert()  # built once, compiled once


def record(
    session: Session,
    action: str,
    *,
    actor_label: str,
    actor_user_id: int | None = None,
    organisation_id: int | None = None,
    object_type: str | None = None,
    object_id: str | int | None = None,
    outcome: str = "ok",
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    event = AuditEvent(
        action=action,
        actor_label=actor_label,
        actor_user_id=actor_user_id,
        organisation_id=organisation_id,
        object_type=object_type,
        object_id=None if object_id is None else str(object_id),
        outcome=outcome,
        details=details or {},
    )
    session.add(event)
    return event


def record_now(
    session: Session,
    action: str,
    *,
    actor_label: str,
    organisation_id: int | None = None,
    object_type: str | None = None,
    object_id: str | int | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """``record`` as one INSERT sent now, without an ORM object: for paths that store many
    things (every submission), where the object and its flush cost more than the insert.
    Only for events whose organisation is already in the database."""
    session.execute(
        _INSERT,
        {
            "occurred_at": utcnow(),
            "action": action,
            "actor_label": actor_label,
            "actor_user_id": None,
            "organisation_id": organisation_id,
            "object_type": object_type,
            "object_id": None if object_id is None else str(object_id),
            "outcome": "ok",
            "details": details or {},
        },
    )
