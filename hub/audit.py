"""Audit trail: who did what, when, with what result. Callers pass counts, never values."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from hub.models import AuditEvent


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
