"""Reconciliation discrepancies pair by pair on the secretariat's page: computed from the
approved data for the secretariat only, recomputed when an approval changes, and shown to no
organisation's account."""

from __future__ import annotations

import flask
from dashpages import page_callback
from sqlalchemy.engine import Engine
from sqlmodel import Session
from test_publication import _org, _submit
from test_web_upload import (  # noqa: F401 - _cheaper_scrypt, accounts and web are fixtures
    Accounts,
    _cheaper_scrypt,
    accounts,
    sign_in,
    web,
)

from hub.approval import approve, live_pending
from hub.catalogue import Catalogue
from hub.discrepancies import DiscrepancyCache, approval_state, discrepant_pairs
from hub.models import User
from hub.settings import REPO_ROOT

DATA = REPO_ROOT / "data"


def _approve(session: Session, accounts: Accounts) -> None:
    sam = session.get(User, accounts.secretariat)
    assert sam is not None
    approve(session, sam, live_pending(session))
    session.commit()


def test_the_secretariat_sees_discrepant_pairs_until_they_agree(
    web: flask.Flask, loaded_engine: Engine, catalogue: Catalogue, accounts: Accounts
) -> None:
    with Session(loaded_engine, expire_on_commit=False) as session:
        hotline = _org(session, "hotline-one", "hotline", "DE", named=False)
        company = _org(session, "company-two", "company", "IE", named=False)
        session.commit()
        _submit(
            session,
            catalogue,
            hotline,
            "2025",
            [("ht_notices_sent", "2025", 100, {"counterpart": "company-two"})],
        )
        _submit(
            session,
            catalogue,
            company,
            "2025",
            [("co_notices_received", "2025", 40, {"notice_source": "hotline"})],
        )
        session.commit()
        _approve(session, accounts)
    sam = web.test_client()
    sign_in(sam, "sam")
    page = page_callback(sam, "/secretariat")
    assert "Reconciliation discrepancies" in page
    assert "hotline notices to companies" in page and "company-two" in page and "all senders" in page
    assert "-60" in page and "1 of 1" in page
    # an organisation's account sees none of it
    alice = web.test_client()
    sign_in(alice, "alice")
    mine = page_callback(alice, "/secretariat")
    assert "company-two" not in mine and "Reconciliation discrepancies" not in mine
    # the company restates to 98 (within 5%): once approved, the pair leaves the list
    with Session(loaded_engine, expire_on_commit=False) as session:
        _submit(
            session,
            catalogue,
            company,
            "2025",
            [("co_notices_received", "2025", 98, {"notice_source": "hotline"})],
            reason="counted late notices",
        )
        session.commit()
        assert "company-two" in page_callback(sam, "/secretariat")  # pending: not yet
        _approve(session, accounts)
    assert "No pair is out of tolerance" in page_callback(sam, "/secretariat")


def test_the_cache_follows_the_approvals_and_returns_copies(
    loaded_engine: Engine, catalogue: Catalogue, accounts: Accounts
) -> None:
    cache = DiscrepancyCache(catalogue, DATA)
    assert "co_notices_received" in cache.metrics and "ht_notices_sent" in cache.metrics
    with Session(loaded_engine, expire_on_commit=False) as session:
        before = approval_state(session)
        first = cache.history(session)
        first.loc[:, "sender"] = "tampered"
        assert "tampered" not in set(cache.history(session)["sender"])  # a copy each time
        hotline = _org(session, "hotline-three", "hotline", "FR", named=False)
        company = _org(session, "company-x", "company", "FR", named=False)
        session.commit()
        _submit(
            session,
            catalogue,
            company,
            "2025",
            [("co_notices_received", "2025", 69, {"notice_source": "hotline"})],
        )
        _submit(
            session,
            catalogue,
            hotline,
            "2025",
            [("ht_notices_sent", "2025", 70, {"counterpart": "company-x"})],
        )
        session.commit()
        assert approval_state(session) == before  # pending submissions change nothing
        assert "company-x" not in set(cache.history(session)["receiver"])
        _approve(session, accounts)
        assert approval_state(session) != before
        history = cache.history(session)
    # 70 sent, 69 received: compared, within tolerance, so not on the list
    assert "company-x" in set(history["receiver"])
    assert "company-x" not in set(discrepant_pairs(history)["receiver"])
