"""People who sign in: accounts, passwords and roles, and the ``hub user`` sub-commands.

Passwords are stored only as scrypt hashes (werkzeug.security). Sign-in takes about the same
time whether or not the account exists (an unknown name is checked against a dummy hash), so
response times do not tell which usernames exist. A username is an account identifier, not
submission data: it never goes into the audit trail, which names the account by its id.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import MutableMapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Annotated, Any

import typer
from sqlmodel import Session, col, select
from werkzeug.security import check_password_hash, generate_password_hash

from hub import audit, vocab
from hub.errors import HubError, NotFoundError
from hub.models import Organisation, User
from hub.organisations import get_by_code
from hub.settings import Settings

MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 256  # a longer "password" only makes hashing expensive
HASH_METHOD = "scrypt"  # werkzeug's default cost: n=32768, r=8, p=1
USERNAME = re.compile(r"[a-z0-9][a-z0-9._-]{1,63}")
UPLOAD_ROLES = ("org_submitter",)
SECRETARIAT_ROLES = ("secretariat", "admin")
PASSWORD_ENV = "HUB_NEW_PASSWORD"  # noqa: S105 - the variable's name, not a password


class AuthError(HubError):
    """An account cannot be created or changed as asked."""


@dataclass(frozen=True)
class UserRow:
    """One account as listed: never the password hash."""

    id: int
    username: str
    display_name: str
    role: str
    organisation: str | None
    is_active: bool
    last_login_at: datetime | None


def can_upload(user: User) -> bool:
    """Only an organisation's submitters upload; viewers, the secretariat and admins do not."""
    return user.is_active and user.role in UPLOAD_ROLES and user.organisation_id is not None


def password_problems(password: str, username: str = "") -> list[str]:
    """Why ``password`` is refused; empty when it is acceptable."""
    problems = []
    if len(password) < MIN_PASSWORD_LENGTH:
        problems.append(f"the password needs at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        problems.append(f"the password may have at most {MAX_PASSWORD_LENGTH} characters")
    if password != password.strip():
        problems.append("the password may not start or end with spaces")
    if username and username.lower() in password.lower():
        problems.append("the password may not contain the username")
    if password and len(set(password)) < 4:
        problems.append("the password needs more than three different characters")
    return problems


def hash_password(password: str) -> str:
    return generate_password_hash(password, method=HASH_METHOD)


@lru_cache(maxsize=4)
def _dummy_hash(method: str) -> str:
    """A hash no password matches, so an unknown username costs as much time as a known one."""
    return generate_password_hash(secrets.token_urlsafe(32), method=method)


def create_user(
    session: Session,
    username: str,
    display_name: str,
    role: str,
    organisation: str | None,
    password: str,
    *,
    actor: str = "cli",
) -> User:
    """Add an account; ``organisation`` is the code of the organisation an org role belongs to."""
    if not USERNAME.fullmatch(username):
        raise AuthError("a username has 2-64 characters: lower-case letters, digits, '.', '_', '-'")
    display_name = display_name.strip()
    if not display_name or len(display_name) > 120 or any(ord(ch) < 32 for ch in display_name):
        raise AuthError("the display name needs 1-120 printable characters")
    if role not in vocab.ROLES:
        raise AuthError(f"role must be one of {', '.join(vocab.ROLES)}")
    org: Organisation | None = None
    if organisation:
        org = get_by_code(session, organisation)
    if role in vocab.ORG_ROLES and org is None:
        raise AuthError(f"role {role} needs --org: the organisation the account belongs to")
    if role not in vocab.ORG_ROLES and org is not None:
        raise AuthError(f"role {role} belongs to the secretariat, not to an organisation: drop --org")
    problems = password_problems(password, username)
    if problems:
        raise AuthError("; ".join(problems))
    if session.exec(select(User.id).where(User.username == username)).first() is not None:
        raise AuthError("this username is already taken")
    user = User(
        username=username,
        display_name=display_name,
        password_hash=hash_password(password),
        role=role,
        organisation_id=None if org is None else org.id,
    )
    session.add(user)
    session.flush()
    audit.record(
        session,
        "user.add",
        actor_label=actor,
        organisation_id=user.organisation_id,
        object_type="user",
        object_id=user.id,
        details={"role": role},
    )
    return user


def authenticate(session: Session, username: str, password: str, *, channel: str = "web") -> User | None:
    """The active account that ``username`` and ``password`` sign in to, or None.

    Every attempt costs one hash check and leaves one audit line (``user.login``) naming the
    account by id when it exists; the caller commits. ``last_login_at`` is set on success.
    """
    user = None
    if USERNAME.fullmatch(username):
        user = session.exec(select(User).where(User.username == username)).first()
    stored_hash = user.password_hash if user else _dummy_hash(HASH_METHOD)
    password_ok = check_password_hash(stored_hash, password[:MAX_PASSWORD_LENGTH])
    password_ok = password_ok and len(password) <= MAX_PASSWORD_LENGTH
    if user is None:
        reason = "unknown_account"
    elif not password_ok:
        reason = "wrong_password"
    elif not user.is_active:
        reason = "inactive_account"
    else:
        reason = ""
    audit.record(
        session,
        "user.login",
        actor_label=channel,
        actor_user_id=None if user is None else user.id,
        organisation_id=None if user is None else user.organisation_id,
        object_type=None if user is None else "user",
        object_id=None if user is None else user.id,
        outcome="failed" if reason else "ok",
        details={"reason": reason} if reason else {},
    )
    if reason or user is None:
        return None
    user.last_login_at = datetime.now(UTC)
    session.add(user)
    return user


def get_user(session: Session, username: str) -> User:
    user = session.exec(select(User).where(User.username == username)).first()
    if user is None:
        raise NotFoundError("no account with this username")
    return user


def deactivate_user(session: Session, username: str, *, actor: str = "cli") -> User:
    """Refuse further sign-ins and end the account's open sessions (session_version moves on)."""
    user = get_user(session, username)
    user.is_active = False
    user.session_version += 1
    session.add(user)
    audit.record(
        session,
        "user.deactivate",
        actor_label=actor,
        organisation_id=user.organisation_id,
        object_type="user",
        object_id=user.id,
    )
    return user


def list_users(session: Session, organisation: str | None = None) -> list[UserRow]:
    """Accounts by username, optionally only one organisation's."""
    query = select(User, Organisation.code).join(
        Organisation, col(User.organisation_id) == col(Organisation.id), isouter=True
    )
    if organisation:
        query = query.where(User.organisation_id == get_by_code(session, organisation).id)
    rows = []
    for user, code in session.exec(query.order_by(col(User.username))):
        assert user.id is not None
        rows.append(
            UserRow(
                user.id, user.username, user.display_name, user.role, code, user.is_active, user.last_login_at
            )
        )
    return rows


# --- hub user ----------------------------------------------------------------------------------

user_app = typer.Typer(no_args_is_help=True, help="Accounts that sign in to the upload page.")


def _read_password() -> str:
    """The new password from HUB_NEW_PASSWORD (scripts) or a hidden, confirmed prompt."""
    password = os.environ.get(PASSWORD_ENV)
    if password is not None:
        return password
    return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True))


@user_app.command("add")
def user_add(
    username: Annotated[str, typer.Argument(help="Sign-in name: lower-case letters, digits, . _ -")],
    name: Annotated[str, typer.Option("--name", help="Display name shown on the pages.")],
    role: Annotated[str, typer.Option(help=f"One of: {', '.join(vocab.ROLES)}.")] = "org_submitter",
    org: Annotated[str | None, typer.Option("--org", help="Code of the organisation (org_* roles).")] = None,
) -> None:
    """Create an account; the password comes from HUB_NEW_PASSWORD or a hidden prompt."""
    from hub.cli import _ready_engine
    from hub.db import session_scope

    password = _read_password()
    _, engine = _ready_engine()
    with session_scope(engine) as session:
        user = create_user(session, username, name, role, org, password)
        typer.echo(f"added account {user.username} ({user.role}{', ' + org if org else ''})")


@user_app.command("list")
def user_list(
    org: Annotated[str | None, typer.Option("--org", help="Only this organisation's accounts.")] = None,
) -> None:
    """List accounts (username, role, organisation, active, last sign-in, name), tab-separated."""
    from hub.cli import _ready_engine
    from hub.db import session_scope

    _, engine = _ready_engine()
    with session_scope(engine) as session:
        rows = list_users(session, org)
    typer.echo("username\trole\torganisation\tactive\tlast_login\tname")
    for row in rows:
        last = row.last_login_at.strftime("%Y-%m-%d %H:%M") if row.last_login_at else "-"
        active = "yes" if row.is_active else "no"
        typer.echo(
            f"{row.username}\t{row.role}\t{row.organisation or '-'}\t{active}\t{last}\t{row.display_name}"
        )


@user_app.command("deactivate")
def user_deactivate(username: Annotated[str, typer.Argument(help="The account's username.")]) -> None:
    """Refuse the account's sign-ins from now on and end its open sessions."""
    from hub.cli import _ready_engine
    from hub.db import session_scope

    _, engine = _ready_engine()
    with session_scope(engine) as session:
        deactivate_user(session, username)
    typer.echo(f"deactivated {username}")


# --- signed-in sessions (the web app's cookie holds only ids and times) ---------------------

SESSION_KEYS = ("uid", "ver", "iat", "seen", "csrf")


@dataclass(frozen=True)
class Account:
    """The signed-in user as the pages need it (read once per request, session closed)."""

    user_id: int
    display_name: str
    role: str
    can_upload: bool
    organisation_id: int | None
    organisation_code: str | None
    organisation_name: str | None
    stakeholder_type: str | None

    @property
    def is_secretariat(self) -> bool:
        return self.role in SECRETARIAT_ROLES


def load_account(session: Session, user_id: int, session_version: int) -> Account | None:
    """The account of a signed-in session, or None when it was deactivated or signed out elsewhere."""
    user = session.get(User, user_id)
    if user is None or not user.is_active or user.session_version != session_version:
        return None
    org = session.get(Organisation, user.organisation_id) if user.organisation_id is not None else None
    assert user.id is not None
    return Account(
        user_id=user.id,
        display_name=user.display_name,
        role=user.role,
        can_upload=can_upload(user),
        organisation_id=None if org is None else org.id,
        organisation_code=None if org is None else org.code,
        organisation_name=None if org is None else org.name,
        stakeholder_type=None if org is None else org.stakeholder_type,
    )


def start_session(cookie: MutableMapping[str, Any], user: User, now: float) -> None:
    """A fresh signed-in session: nothing from before sign-in carries over; new CSRF token."""
    cookie.clear()
    cookie.update(
        uid=user.id, ver=user.session_version, iat=int(now), seen=int(now), csrf=secrets.token_urlsafe(32)
    )


def session_account(
    session: Session, cookie: MutableMapping[str, Any], now: float, *, idle_seconds: int, max_seconds: int
) -> Account | None:
    """The account a session cookie signs in, or None: no session, too long idle, older than
    the absolute limit, or ended on the server (signed out, deactivated). A live session's
    last activity moves to ``now``; a dead one is emptied."""
    uid, version, issued, seen = (cookie.get(key) for key in ("uid", "ver", "iat", "seen"))
    if not all(
        isinstance(value, int) and not isinstance(value, bool) for value in (uid, version, issued, seen)
    ):
        return None
    assert (
        isinstance(uid, int)
        and isinstance(version, int)
        and isinstance(issued, int)
        and isinstance(seen, int)
    )
    if now - seen > idle_seconds or now - issued > max_seconds or seen > now + 60:
        cookie.clear()
        return None
    account = load_account(session, uid, version)
    if account is None:
        cookie.clear()
        return None
    cookie["seen"] = int(now)
    return account


def end_sessions(session: Session, user_id: int) -> None:
    """Sign the user out everywhere: every cookie issued before stops working (server side)."""
    user = session.get(User, user_id)
    if user is not None:
        user.session_version += 1
        session.add(user)


def signed_in_account(
    session: Session, cookie: MutableMapping[str, Any], settings: Settings, now: float
) -> Account | None:
    """:func:`session_account` with the hub's configured idle and absolute limits."""
    return session_account(
        session,
        cookie,
        now,
        idle_seconds=settings.session_idle_minutes * 60,
        max_seconds=settings.session_max_hours * 3600,
    )
