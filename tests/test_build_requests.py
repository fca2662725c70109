"""Release builds asked for on the secretariat's page: the form (CSRF, role, limits), one open
request at a time, the scheduler's ``builds`` job running it exactly once with the requester
as builder, failures said in words that quote no data, interrupted runs released."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import flask
import pytest
from dashpages import page_callback
from hubcli import hub_process
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select
from test_member_pages import DATA, _csrf, _uploaded
from test_web_upload import (  # noqa: F401 - _cheaper_scrypt, accounts and web are fixtures
    Accounts,
    _cheaper_scrypt,
    accounts,
    audit_lines,
    sign_in,
    web,
)

from hub import build_requests
from hub.approval import approve, live_pending
from hub.catalogue import Catalogue
from hub.db import session_scope
from hub.disclosure import DisclosureError
from hub.models import BuildRequest, Release, User
from hub.releases import ReleaseError


def _ask(client: flask.testing.FlaskClient, **fields: str) -> int:
    return client.post("/secretariat/build", data={"csrf_token": _csrf(client), **fields}).status_code


def _requests(engine: Engine) -> list[BuildRequest]:
    with Session(engine) as session:
        return list(session.exec(select(BuildRequest).order_by(col(BuildRequest.id))))


def _approve_all(engine: Engine, accounts: Accounts) -> None:
    with session_scope(engine) as session:
        sam = session.get(User, accounts.secretariat)
        assert sam is not None
        approve(session, sam, live_pending(session))


def test_the_secretariat_asks_for_a_build_and_the_scheduler_builds_it(
    web: flask.Flask, loaded_engine: Engine, catalogue: Catalogue, accounts: Accounts
) -> None:
    _uploaded(web)
    _approve_all(loaded_engine, accounts)
    sam = web.test_client()
    sign_in(sam, "sam")
    assert _ask(sam, title="  Spring   2026 ", notes="first of the year") == 303
    page = page_callback(sam, "/secretariat")
    assert "Build request 1 queued" in page and "Spring 2026" in page and "queued" in page
    # one open request at a time
    assert _ask(sam, title="Again") == 303
    assert "Not done: build request 1 is still queued" in page_callback(sam, "/secretariat")
    assert [r.status for r in _requests(loaded_engine)] == ["queued"]
    assert [str(e.object_id) for e in audit_lines(loaded_engine, "release.build_requested")] == ["1"]

    summary = build_requests.run_next_build(loaded_engine, catalogue, DATA)
    assert summary == "build request 1: release 1 built"
    (request,) = _requests(loaded_engine)
    assert (request.status, request.release_number, request.error) == ("built", 1, None)
    assert request.started_at is not None and request.finished_at is not None and request.worker
    with Session(loaded_engine) as session:
        release = session.exec(select(Release)).one()
    assert (release.title, release.notes, release.status) == ("Spring 2026", "first of the year", "built")
    assert release.built_by_id == accounts.secretariat  # the requester builds it
    assert build_requests.run_next_build(loaded_engine, catalogue, DATA) == "no build requested"
    page = page_callback(sam, "/secretariat")
    assert "built" in page and "Preview changes" in page
    # once built, another can be asked for
    assert _ask(sam, title="Summer") == 303 and len(_requests(loaded_engine)) == 2


@pytest.mark.parametrize(
    ("user", "fields", "status"),
    [
        ("alice", {"title": "Mine"}, 403),  # an organisation's account
        ("sam", {"title": "x" * 201}, 400),
        ("sam", {"title": "ok", "notes": "n" * 2001}, 400),
    ],
)
def test_the_build_form_refuses_others_and_oversized_fields(
    web: flask.Flask, loaded_engine: Engine, user: str, fields: dict[str, str], status: int
) -> None:
    client = web.test_client()
    sign_in(client, user)
    assert _ask(client, **fields) == status
    assert _requests(loaded_engine) == []


def test_the_build_form_needs_the_sessions_token_and_a_title(web: flask.Flask, loaded_engine: Engine) -> None:
    sam = web.test_client()
    sign_in(sam, "sam")
    assert sam.post("/secretariat/build", data={"csrf_token": "forged", "title": "T"}).status_code == 400
    assert web.test_client().post("/secretariat/build", data={"title": "T"}).status_code == 400
    assert _ask(sam, title="   ") == 303
    assert "Not done: a release title has 1 to 200 characters" in page_callback(sam, "/secretariat")
    assert _requests(loaded_engine) == []


@pytest.mark.parametrize(
    ("failure", "shown"),
    [
        (
            ReleaseError("there is nothing to release: no approved figures (hub approve) yet"),
            "nothing to release",
        ),
        (RuntimeError("value 4 of small-force"), "RuntimeError; see the scheduler's log"),
        (
            DisclosureError("cell le_victims_identified 2025 small-force can be worked out: [4, 4]"),
            "disclosure control could not protect every cell",
        ),
    ],
)
def test_a_failed_build_is_said_in_words_that_quote_no_data(
    web: flask.Flask,
    loaded_engine: Engine,
    catalogue: Catalogue,
    monkeypatch: pytest.MonkeyPatch,
    failure: Exception,
    shown: str,
) -> None:
    def refuse(*_args: object, **_kwargs: object) -> None:
        raise failure

    monkeypatch.setattr("hub.publication.build_protected_release", refuse)
    sam = web.test_client()
    sign_in(sam, "sam")
    assert _ask(sam, title="Doomed") == 303
    summary = build_requests.run_next_build(loaded_engine, catalogue, DATA)
    assert summary.startswith("build request 1 failed")
    (request,) = _requests(loaded_engine)
    assert request.status == "failed" and request.error is not None and shown in request.error
    page = page_callback(sam, "/secretariat")
    assert shown in page and "small-force" not in page and "value 4" not in page and "[4, 4]" not in page
    with Session(loaded_engine) as session:
        assert session.exec(select(Release)).all() == []
    assert _ask(sam, title="Again") == 303  # a failed request does not block the next one


def test_a_request_is_claimed_once_and_an_interrupted_one_is_released(
    web: flask.Flask, loaded_engine: Engine, catalogue: Catalogue
) -> None:
    sam = web.test_client()
    sign_in(sam, "sam")
    assert _ask(sam, title="Claimed") == 303
    now = datetime.now(UTC)
    assert build_requests._claim(loaded_engine, now) == 1
    assert build_requests._claim(loaded_engine, now) is None  # a second process finds nothing
    # the claiming process died: after two hours the request is marked failed
    later = now + build_requests.STALE_AFTER + timedelta(minutes=1)
    assert "1 interrupted one(s) marked failed" in build_requests.run_next_build(
        loaded_engine, catalogue, DATA, now=later
    )
    (request,) = _requests(loaded_engine)
    assert request.status == "failed" and request.error == "interrupted: the process running it stopped"


def test_hub_scheduler_once_runs_the_build(
    web: flask.Flask, loaded_engine: Engine, accounts: Accounts, cli_env: dict[str, str]
) -> None:
    _uploaded(web)
    _approve_all(loaded_engine, accounts)
    sam = web.test_client()
    sign_in(sam, "sam")
    assert _ask(sam, title="From cron") == 303
    result = hub_process(cli_env, "scheduler", "--once")
    assert result.returncode == 0, result.stderr
    assert "builds: build request 1: release 1 built" in result.stdout.splitlines()
    assert [r.status for r in _requests(loaded_engine)] == ["built"]


def test_two_requests_at_the_same_instant_queue_one(
    web: flask.Flask, loaded_engine: Engine, accounts: Accounts, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check before the insert cannot see a request another process is inserting; the
    database's one open slot refuses the second, and nothing of it is kept."""
    from hub.auth import load_account

    sam = web.test_client()
    sign_in(sam, "sam")
    assert _ask(sam, title="First") == 303
    with Session(loaded_engine) as session:
        user = session.get(User, accounts.secretariat)
        assert user is not None
        account = load_account(session, accounts.secretariat, user.session_version)
        assert account is not None
        # as if the other request had not been committed yet when this one looked
        monkeypatch.setattr(build_requests, "OPEN", ("none",))
        with pytest.raises(build_requests.BuildRequestError, match="another build request is open"):
            build_requests.request_build(session, account, "Second")
        session.commit()
    assert [r.title for r in _requests(loaded_engine)] == ["First"]
    assert [str(e.object_id) for e in audit_lines(loaded_engine, "release.build_requested")] == ["1"]


def test_the_database_holds_one_open_request(loaded_engine: Engine, accounts: Accounts) -> None:
    from sqlalchemy.exc import IntegrityError

    with Session(loaded_engine) as session:
        session.add(BuildRequest(title="a", requested_by_id=accounts.secretariat, open_slot=1))
        session.commit()
        session.add(BuildRequest(title="b", requested_by_id=accounts.secretariat, open_slot=1))
        with pytest.raises(IntegrityError):
            session.commit()
        session.rollback()
        # a finished request gives the slot back; an open one without the slot is refused
        session.add(
            BuildRequest(title="c", requested_by_id=accounts.secretariat, status="built", open_slot=None)
        )
        session.commit()
        session.add(
            BuildRequest(title="d", requested_by_id=accounts.secretariat, status="queued", open_slot=None)
        )
        with pytest.raises(IntegrityError):
            session.commit()
