"""Organisation API tokens: random, shown once, stored only as a SHA-256, with expiry and revocation.

A token is ``hub_`` + 43 URL-safe characters (32 random bytes). The hub keeps its SHA-256 (to
find it) and its first 12 characters (so people can tell their tokens apart), never the token.
Lookup is by the hash, so no comparison ever runs over a secret character by character. An
organisation may hold several live tokens at once, which is how it rotates them: create the
new one, switch the client, revoke the old one. Creating and revoking leave audit events that
name the token's id and label, never the token.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlmodel import Session, col, select

from hub import audit
from hub.errors import HubError, NotFoundError
from hub.models import ApiToken, Organisation

TOKEN_PREFIX = "hub_"  # noqa: S105 - the public marker of every token, not a secret
PREFIX_LENGTH = 12
MAX_TOKEN_LENGTH = 128  # longer Authorization values are refused before hashing
LAST_USED_RESOLUTION = timedelta(minutes=1)  # last_used_at is refreshed at most once a minute


@dataclass(frozen=True)
class TokenInfo:
    """What may be shown about a token: never the token or its hash."""

    id: int
    organisation: str
    label: str
    prefix: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None

    def state(self, now: datetime) -> str:
        if self.revoked_at is not None:
            return "revoked"
        return "expired" if self.expires_at <= now else "active"


def hash_token(plaintext: str) -> str:
    """The stored form of a token."""
    return hashlib.sha256(plaintext.encode("utf-8", "surrogatepass")).hexdigest()


def create_token(
    session: Session,
    organisation: Organisation,
    label: str,
    *,
    days: int,
    now: datetime | None = None,
    actor: str = "cli",
) -> tuple[str, ApiToken]:
    """A new token for ``organisation``: (the token, to show once, and its stored row)."""
    label = label.strip()
    if not 1 <= len(label) <= 64:
        raise HubError("a token label has 1 to 64 characters")
    if not 1 <= days <= 3650:
        raise HubError("a token lives 1 to 3650 days")
    assert organisation.id is not None
    now = now or datetime.now(UTC)
    plaintext = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        organisation_id=organisation.id,
        label=label,
        prefix=plaintext[:PREFIX_LENGTH],
        token_hash=hash_token(plaintext),
        created_at=now,
        expires_at=now + timedelta(days=days),
    )
    session.add(token)
    session.flush()
    audit.record(
        session,
        "token.create",
        actor_label=actor,
        organisation_id=organisation.id,
        object_type="api_token",
        object_id=token.id,
        details={"label": label, "expires_at": token.expires_at.isoformat()},
    )
    return plaintext, token


@dataclass(frozen=True)
class Authentication:
    """The outcome of presenting a token: the token row when valid, else why not."""

    token: ApiToken | None
    reason: str  # ok, malformed, unknown, expired, revoked
    organisation_code: str = ""


def check_token(session: Session, plaintext: str, now: datetime | None = None) -> Authentication:
    """Find the live token ``plaintext`` stands for, saying why when there is none."""
    if not plaintext.startswith(TOKEN_PREFIX) or len(plaintext) > MAX_TOKEN_LENGTH:
        return Authentication(None, "malformed")
    digest = hash_token(plaintext)
    found = session.exec(
        select(ApiToken, Organisation.code)
        .join(Organisation, col(Organisation.id) == col(ApiToken.organisation_id))
        .where(ApiToken.token_hash == digest)
    ).first()
    if found is None or not hmac.compare_digest(found[0].token_hash, digest):
        return Authentication(None, "unknown")
    token, code = found
    now = now or datetime.now(UTC)
    if token.revoked_at is not None:
        return Authentication(token, "revoked")
    if token.expires_at <= now:
        return Authentication(token, "expired")
    if token.last_used_at is None or now - token.last_used_at >= LAST_USED_RESOLUTION:
        token.last_used_at = now
        session.add(token)
    return Authentication(token, "ok", code)


def authenticate(session: Session, plaintext: str, now: datetime | None = None) -> ApiToken | None:
    """The live (not expired, not revoked) token ``plaintext`` stands for, or None."""
    result = check_token(session, plaintext, now)
    return result.token if result.reason == "ok" else None


def revoke_token(
    session: Session, token_id: int, *, now: datetime | None = None, actor: str = "cli"
) -> ApiToken:
    """Revoke a token at once; revoking a revoked token changes nothing."""
    token = session.get(ApiToken, token_id)
    if token is None:
        raise NotFoundError(f"no API token with id {token_id}")
    if token.revoked_at is None:
        token.revoked_at = now or datetime.now(UTC)
        session.add(token)
        audit.record(
            session,
            "token.revoke",
            actor_label=actor,
            organisation_id=token.organisation_id,
            object_type="api_token",
            object_id=token.id,
            details={"label": token.label},
        )
    return token


def list_tokens(session: Session, organisation: Organisation | None = None) -> list[TokenInfo]:
    """Tokens (all, or one organisation's), oldest first, without their hashes."""
    query = select(ApiToken, Organisation.code).join(
        Organisation, col(Organisation.id) == col(ApiToken.organisation_id)
    )
    if organisation is not None:
        query = query.where(ApiToken.organisation_id == organisation.id)
    rows = session.exec(query.order_by(col(ApiToken.id))).all()
    return [
        TokenInfo(
            id=token.id or 0,
            organisation=code,
            label=token.label,
            prefix=token.prefix,
            created_at=token.created_at,
            expires_at=token.expires_at,
            revoked_at=token.revoked_at,
            last_used_at=token.last_used_at,
        )
        for token, code in rows
    ]
