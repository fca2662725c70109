"""The demo's secretariat: an account that approves the demo and public-source submissions, so
a fresh demo ends with approved data ready for a release."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from sqlmodel import Session, select

from hub.approval import approve, live_pending
from hub.auth import PASSWORD_ENV, create_user
from hub.catalogue import Catalogue
from hub.models import User
from hub.releases import latest_published_release, publish_release

SECRETARIAT_USERNAME = "demo-secretariat"
CHANNELS = ("demo", "public_source")


def demo_secretariat(session: Session) -> User:
    """The demo's secretariat account, created on first use. Its password comes from
    HUB_NEW_PASSWORD if set (to sign in to the secretariat pages), else it is random and
    unknown: the account then only acts from the command line (``--as demo-secretariat``)."""
    user = session.exec(select(User).where(User.username == SECRETARIAT_USERNAME)).first()
    if user is not None:
        return user
    password = os.environ.get(PASSWORD_ENV) or secrets.token_urlsafe(24)
    return create_user(
        session, SECRETARIAT_USERNAME, "Demo secretariat", "secretariat", None, password, actor="demo"
    )


def approve_demo_data(session: Session) -> int:
    """Approve every pending demo and public-source submission (newest live versions only);
    returns how many were approved (0 when loaded again)."""
    actor = demo_secretariat(session)
    ids = live_pending(session, channels=CHANNELS)
    return len(approve(session, actor, ids, channel="demo")) if ids else 0


def publish_demo_release(session: Session, catalogue: Catalogue, data_dir: Path) -> str:
    """Build and publish the demo's first release (the protected tables of hub.publication) as
    the demo's secretariat, unless a release is published already; says what it did."""
    from hub.publication import build_protected_release  # the heavy pipeline, only when asked

    published = latest_published_release(session)
    if published is not None:
        return f"release {published.number} is published already"
    actor = demo_secretariat(session)
    release = build_protected_release(
        session,
        catalogue=catalogue,
        data_dir=data_dir,
        title="Demo release",
        built_by=actor,
        notes="Synthetic alliance and real published figures, for demonstration only.",
        channel="demo",
    )
    publish_release(session, release.number, actor, channel="demo")
    return f"published release {release.number} ({release.content_checksum})"


__all__ = ["SECRETARIAT_USERNAME", "approve_demo_data", "demo_secretariat", "publish_demo_release"]
