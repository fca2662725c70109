"""The pull connectors' status as the secretariat and ``hub connector list`` see it: where each
reads (never a query string, which may hold an access token), its last run and result, and
its next run. A read of hub's own tables; the connectors themselves run in ingest/."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from sqlmodel import Session, col, select

from hub.models import Connector, Organisation


def display_target(connector: Connector) -> str:
    """Where the connector reads, without a query string (it may hold an access token)."""
    if connector.kind == "folder":
        return connector.folder or ""
    parts = urlsplit(connector.url or "")
    shown = f"{parts.scheme}://{parts.netloc}{parts.path}"
    return shown + ("?..." if parts.query else "")


@dataclass(frozen=True)
class ConnectorRow:
    """One connector as shown by ``hub connector list`` and the dashboards."""

    id: int
    org: str
    name: str
    kind: str
    target: str
    enabled: bool
    interval_minutes: int
    last_run_at: datetime | None
    last_result: str | None
    last_message: str | None
    next_run_at: datetime | None
    consecutive_failures: int


def connector_overview(session: Session, org_code: str | None = None) -> list[ConnectorRow]:
    """Every connector (of one organisation when given) with its last run, result and next run."""
    query = select(Connector, Organisation).join(
        Organisation, col(Organisation.id) == col(Connector.organisation_id)
    )
    if org_code is not None:
        query = query.where(Organisation.code == org_code)
    rows = []
    for connector, organisation in session.exec(query.order_by(col(Organisation.code), col(Connector.name))):
        rows.append(
            ConnectorRow(
                id=connector.id or 0,
                org=organisation.code,
                name=connector.name,
                kind=connector.kind,
                target=display_target(connector),
                enabled=connector.enabled,
                interval_minutes=connector.interval_minutes,
                last_run_at=connector.last_run_at,
                last_result=connector.last_result,
                last_message=connector.last_message,
                next_run_at=connector.next_run_at,
                consecutive_failures=connector.consecutive_failures,
            )
        )
    return rows
