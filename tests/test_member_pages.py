"""The signed-in pages over HTTP: an organisation sees only its own submissions and duties, the
secretariat its matrix and queue; decisions are refused to anyone else; sessions end after
inactivity, after their absolute limit, at sign-out (on the server) and when an account is
disabled. Forged callback requests get no data."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime
from typing import Any

import flask
import pytest
from dashpages import page_callback
from flask.testing import FlaskClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select
from test_web_upload import (  # noqa: F401 - _cheaper_scrypt, accounts and web are fixtures
    OTHER,
    SAMPLE,
    Accounts,
    _cheaper_scrypt,
    accounts,
    audit_lines,
    for_org,
    seed_accounts,
    sign_in,
    upload,
    web,
)

from hub import member_views
from hub.approval import approve, live_pending
from hub.auth import deactivate_user, load_account, session_account, start_session
from hub.calendar import Obligation, set_obligation
from hub.catalogue import Catalogue
from hub.db import session_scope
from hub.models import Organisation, ScheduledJob, ScheduledRun, Submission, User
from hub.organisations import get_by_code
from hub.publication import build_protected_release
from hub.settings import REPO_ROOT, Settings

DATA = REPO_ROOT / "data"


def _csrf(client: FlaskClient) -> str:
    with client.session_transaction() as cookie:
        return str(cookie.get("csrf", ""))


def _decide(client: FlaskClient, submission: int, action: str, reason: str | None = None) -> str:
    """What the Approve / Reject form sends (with the session's CSRF token); the page after."""
    form = {
        "csrf_token": _csrf(client),
        "submission": str(submission),
        "action": action,
        "reason": reason or "",
    }
    response = client.post("/secretariat/decide", data=form)
    if response.status_code != 303:
        return f"status {response.status_code}"
    return page_callback(client, "/secretariat")


def _submission_ids(engine: Engine) -> dict[int, str]:
    with Session(engine) as session:
        return {s.id: s.status for s in session.exec(select(Submission).order_by(col(Submission.id)))}  # type: ignore[misc]


def _uploaded(web: flask.Flask) -> None:
    for user, data in (("alice", SAMPLE), ("oscar", for_org(SAMPLE, OTHER))):
        client = web.test_client()
        sign_in(client, user)
        assert upload(client, data).status_code == 200


def test_signed_out_visitors_get_a_sign_in_link_and_no_data(web: flask.Flask, loaded_engine: Engine) -> None:
    _uploaded(web)
    client = web.test_client()
    for path in ("/my", "/secretariat"):
        text = page_callback(client, path)
        assert "Please sign in" in text and "/login?next=" in text
        assert "example-platform" not in text and "Approval queue" not in text


def test_an_organisation_sees_only_its_own_submissions(web: flask.Flask, loaded_engine: Engine) -> None:
    _uploaded(web)
    statuses = _submission_ids(loaded_engine)
    client = web.test_client()
    sign_in(client, "alice")
    text = page_callback(client, "/my", "?organisation=other-platform")  # a made-up parameter changes nothing
    assert "Example-Platform Ltd" in text and "What is due" in text and "Reporting calendar" in text
    assert "Upload a file" in text
    assert len(statuses) == 2
    assert "other-platform" not in text and "Other-Platform" not in text
    # the viewer of the same organisation sees it too, but cannot upload
    viewer = web.test_client()
    sign_in(viewer, "victor")
    assert "can view but not upload" in page_callback(viewer, "/my")


def test_only_the_secretariat_sees_the_matrix_and_queue(web: flask.Flask, loaded_engine: Engine) -> None:
    _uploaded(web)
    alice = web.test_client()
    sign_in(alice, "alice")
    refused = page_callback(alice, "/secretariat")
    assert "cannot see this page" in refused and "Approval queue" not in refused
    sam = web.test_client()
    sign_in(sam, "sam")
    text = page_callback(sam, "/secretariat")
    assert "Completeness and timeliness" in text and "Approval queue (2)" in text
    assert "example-platform" in text and "other-platform" in text
    assert "Secretariat" in page_callback(sam, "/")  # the menu offers the page


def test_decisions_need_a_secretariat_session(web: flask.Flask, loaded_engine: Engine) -> None:
    _uploaded(web)
    first = min(_submission_ids(loaded_engine))
    # no session, and an organisation's own submitter: refused, nothing happens
    assert _decide(web.test_client(), first, "approve") == "status 400"  # no session, no token
    alice = web.test_client()
    sign_in(alice, "alice")
    assert _decide(alice, first, "approve") == "status 403"
    assert _submission_ids(loaded_engine)[first] == "validated"
    assert audit_lines(loaded_engine, "submission.approve") == []
    # the secretariat approves; a rejection needs a reason
    sam = web.test_client()
    sign_in(sam, "sam")
    assert "approved" in _decide(sam, first, "approve")
    assert _submission_ids(loaded_engine)[first] == "approved"
    second = max(_submission_ids(loaded_engine))
    assert "Not done" in _decide(sam, second, "reject", None)
    assert _submission_ids(loaded_engine)[second] == "validated"
    assert "rejected" in _decide(sam, second, "reject", "figures for the wrong quarter")
    assert _submission_ids(loaded_engine)[second] == "rejected"
    assert "Not done" in _decide(sam, second, "approve")  # already decided
    # a forged form without the session's token is refused
    forged = sam.post(
        "/secretariat/decide", data={"csrf_token": "x", "submission": str(first), "action": "reject"}
    )
    assert forged.status_code == 400
    assert (
        sam.post("/secretariat/decide", data={"csrf_token": _csrf(sam), "submission": "1 OR 1=1"}).status_code
        == 400
    )


def _schedule(client: FlaskClient, **fields: str) -> str:
    form = {"csrf_token": _csrf(client), "timezone": "Europe/Brussels", **fields}
    response = client.post("/secretariat/schedule", data=form)
    if response.status_code != 303:
        return f"status {response.status_code}"
    return page_callback(client, "/secretariat")


def _jobs(engine: Engine) -> list[ScheduledJob]:
    with Session(engine) as session:
        return list(session.exec(select(ScheduledJob)))


def test_the_secretariat_defines_a_scheduled_export_and_sees_its_runs(
    web: flask.Flask, loaded_engine: Engine
) -> None:
    job = {"name": "monthly", "cron": "0 6 1 * *", "formats": "csv, sdmx", "folder": "exports/monthly"}
    # no session, an organisation's account, a forged token: refused, nothing defined
    assert _schedule(web.test_client(), **job) == "status 400"
    alice = web.test_client()
    sign_in(alice, "alice")
    assert _schedule(alice, **job) == "status 403"
    sam = web.test_client()
    sign_in(sam, "sam")
    forged = sam.post("/secretariat/schedule", data={**job, "csrf_token": "x"})
    assert forged.status_code == 400 and _jobs(loaded_engine) == []
    # invalid jobs are refused with the reason, and nothing is kept
    for bad, reason in (
        ({"cron": "every month"}, "five fields"),
        ({"formats": "csv, pdf"}, "unknown format pdf"),
        ({"folder": "/etc"}, "relative to the hub"),
        ({"folder": "../../elsewhere"}, "without '..'"),
        ({"folder": "", "email": "someone at home"}, "not of the form"),
    ):
        text = _schedule(sam, **{**job, **bad})
        assert "Not done" in text and reason in text, (bad, text[:300])
        assert "someone at home" not in text
    assert _jobs(loaded_engine) == []
    text = _schedule(sam, **job)
    assert "Scheduled job monthly defined." in text
    (defined,) = _jobs(loaded_engine)
    assert defined.reports == []
    assert (defined.source, defined.formats, defined.destination) == (
        "secretariat",
        ["csv", "sdmx"],
        "exports/monthly",
    )
    assert "monthly" in text and "0 6 1 * * (Europe/Brussels)" in text and "folder exports/monthly" in text
    assert len(audit_lines(loaded_engine, "schedule.define")) == 1
    assert "Not done" in _schedule(sam, **job)  # the name is taken
    reports = _schedule(
        sam, name="yearly", cron="0 6 2 1 *", reports="alliance, country:DE", folder="reports"
    )
    assert "Scheduled job yearly defined." in reports and "alliance report, country:DE report" in reports
    assert "unknown report" in _schedule(sam, name="odd", cron="0 6 2 1 *", reports="org:x", folder="reports")
    # a run shows with its status, attempts and files
    with session_scope(loaded_engine) as session:
        session.add(
            ScheduledRun(
                job_id=defined.id,
                scheduled_for=datetime(2026, 11, 1, 5, tzinfo=UTC),
                status="succeeded",
                duration_seconds=12.5,
                release_number=3,
                files=[{"name": "release-3/csv/indicators.csv", "size": 2_500_000, "sha256": "0" * 64}],
            )
        )
    text = page_callback(sam, "/secretariat")
    assert "2026-11-01 05:00" in text and "succeeded" in text and "1 of 4" in text and "1 (2.5 MB)" in text
    refused = page_callback(alice, "/secretariat")
    assert "monthly" not in refused


def test_the_secretariat_sees_the_pull_connectors_without_their_secrets(
    web: flask.Flask, loaded_engine: Engine, settings: Settings
) -> None:
    from ingest.connectors import add_connector

    with session_scope(loaded_engine) as session:
        add_connector(
            session,
            "example-platform",
            "nightly-feed",
            settings=settings,
            url="https://transparency.example/hub.json?token=s3cret-value",
            credential_env="FEED_TOKEN",
            interval_minutes=30,
        )
    sam = web.test_client()
    sign_in(sam, "sam")
    text = page_callback(sam, "/secretariat")
    assert "Pull connectors" in text and "nightly-feed" in text and "30 min" in text
    assert "https://transparency.example/hub.json?..." in text
    assert "s3cret-value" not in text and "FEED_TOKEN" not in text
    alice = web.test_client()
    sign_in(alice, "alice")
    assert "nightly-feed" not in page_callback(alice, "/secretariat")


def test_an_organisation_reads_its_own_validation_reports_only(
    web: flask.Flask, loaded_engine: Engine
) -> None:
    _uploaded(web)
    with Session(loaded_engine) as session:
        owners = {
            s.id: org.code
            for s, org in session.exec(
                select(Submission, Organisation).where(col(Organisation.id) == Submission.organisation_id)
            )
        }
    own = min(i for i, code in owners.items() if code == "example-platform")
    other = min(i for i, code in owners.items() if code == "other-platform")
    alice = web.test_client()
    sign_in(alice, "alice")
    assert f"/my?submission={own}" in page_callback(alice, "/my")
    assert '"validation-report"' not in page_callback(alice, "/my")  # the panel only when asked
    text = page_callback(alice, "/my", f"?submission={own}")
    assert '"validation-report"' in text and f"Submission {own} for " in text and "row(s), accepted" in text
    assert "jane.doe" not in text  # a report names where a problem is, never the value
    for forged in (str(other), "999999", "abc"):
        refused = page_callback(alice, "/my", f"?submission={forged}")
        assert "Your organisation has no such submission." in refused, forged
        assert f"Submission {other} for " not in refused
    dropped = page_callback(alice, "/my", "?submission=1%20OR%201=1")  # not a value the URL takes
    assert '"validation-report"' not in dropped and "OR 1=1" not in dropped


# --- sessions ---------------------------------------------------------------------------------


LIMITS = {"idle_seconds": 30 * 60, "max_seconds": 12 * 3600}


def test_session_limits(loaded_engine: Engine, accounts: Accounts) -> None:
    with session_scope(loaded_engine) as session:
        user = session.get(User, accounts.submitter)
        assert user is not None
        cookie: dict[str, Any] = {}
        start_session(cookie, user, 1_000_000.0)
        assert set(cookie) == {"uid", "ver", "iat", "seen", "csrf"}
        assert session_account(session, cookie, 1_000_000.0 + 60, **LIMITS) is not None
        assert cookie["seen"] == 1_000_060
        # idle for more than 30 minutes: ended, and the cookie emptied
        assert session_account(session, cookie, 1_000_060.0 + 31 * 60, **LIMITS) is None
        assert cookie == {}
        # active all the time, but signed in more than 12 hours ago
        start_session(cookie, user, 1_000_000.0)
        now = 1_000_000.0
        while now <= 1_000_000.0 + 12 * 3600:
            now += 20 * 60
            cookie["seen"] = int(now - 60)
        assert session_account(session, cookie, now, **LIMITS) is None
        # made-up values never sign in
        for forged in (
            {"uid": "1", "ver": 1, "iat": 1, "seen": 1},
            {"uid": True, "ver": 1, "iat": 0, "seen": 0},
        ):
            assert session_account(session, dict(forged), 5.0, **LIMITS) is None


def test_sign_out_and_deactivation_end_sessions_on_the_server(
    web: flask.Flask, loaded_engine: Engine
) -> None:
    client = web.test_client()
    sign_in(client, "alice")
    with client.session_transaction() as cookie:
        stolen = dict(cookie)
    assert "Example-Platform Ltd" in page_callback(client, "/my")
    assert client.post("/logout", data={"csrf_token": _csrf(client)}).status_code == 302
    replay = web.test_client()
    with replay.session_transaction() as cookie:
        cookie.update(stolen)
    assert "Please sign in" in page_callback(replay, "/my")
    # a live session ends when the account is disabled
    again = web.test_client()
    sign_in(again, "alice")
    assert "Example-Platform Ltd" in page_callback(again, "/my")
    with session_scope(loaded_engine) as session:
        deactivate_user(session, "alice")
    assert "Please sign in" in page_callback(again, "/my")


def test_an_idle_session_ends(web: flask.Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    client = web.test_client()
    sign_in(client, "alice")
    assert "Example-Platform Ltd" in page_callback(client, "/my")
    later = time.time() + 31 * 60
    monkeypatch.setattr("dashboards.app.time.time", lambda: later)
    assert "Please sign in" in page_callback(client, "/my")


def test_duties_and_the_matrix_follow_the_calendar(
    web: flask.Flask, loaded_engine: Engine, catalogue: Catalogue, accounts: Accounts
) -> None:
    """A quarterly notices obligation: the quarter of the upload (2025-Q1) is complete for the
    organisation that sent it, missing for the other; the matrix shows both, the page the own."""
    today = date(2025, 6, 30)
    with session_scope(loaded_engine) as session:
        for code in ("example-platform", OTHER):
            org = get_by_code(session, code)
            set_obligation(
                session,
                catalogue,
                org,
                Obligation("co_notices_received", "quarter", 30, active_from=date(2024, 1, 1)),
            )
    _uploaded_only(web, "alice")
    with session_scope(loaded_engine) as session:
        alice = load_account(session, accounts.submitter, 1)
        sam = load_account(session, accounts.secretariat, 1)
        assert alice is not None and sam is not None
        duties = {d.period: d for d in member_views.own_duties(session, alice, today)}
        assert duties["2025-Q1"].state == "complete" and duties["2025-Q1"].received == 1
        assert duties["2025-Q2"].state == "not-due"
        periods, matrix = member_views.completeness_matrix(session, sam, today)
        assert periods == ["2024-Q3", "2024-Q4", "2025-Q1", "2025-Q2"]
        states = {row.organisation: row.states for row in matrix}
        assert states["example-platform"]["2025-Q1"] == "complete"
        assert states[OTHER]["2025-Q1"] == "missing"
        with pytest.raises(member_views.NotAllowed):
            member_views.completeness_matrix(session, alice, today)


def _uploaded_only(web: flask.Flask, user: str) -> None:
    client = web.test_client()
    sign_in(client, user)
    assert upload(client, SAMPLE).status_code == 200


def test_the_secretariat_previews_and_publishes_a_built_release(
    web: flask.Flask, loaded_engine: Engine, catalogue: Catalogue, accounts: Accounts
) -> None:
    _uploaded(web)
    with session_scope(loaded_engine) as session:
        sam_user = session.get(User, accounts.secretariat)
        assert sam_user is not None
        approve(session, sam_user, live_pending(session))
        built = build_protected_release(
            session, catalogue=catalogue, data_dir=DATA, title="Spring", built_by=sam_user
        )
        number = built.number
    sam = web.test_client()
    sign_in(sam, "sam")
    text = page_callback(sam, "/secretariat")
    assert "Releases" in text and "Spring" in text and "Preview changes" in text
    assert "Organisations" in text and "Accounts" in text and "API tokens" in text
    assert "scrypt" not in text and "password" not in text.lower().replace("password_", "")
    preview = page_callback(sam, "/secretariat", f"?release={number}")
    assert f"Release {number} against release none" in preview
    # only the secretariat, with the session's token, publishes
    alice = web.test_client()
    sign_in(alice, "alice")
    assert (
        alice.post(
            "/secretariat/publish", data={"csrf_token": _csrf(alice), "release": str(number)}
        ).status_code
        == 403
    )
    assert (
        sam.post("/secretariat/publish", data={"csrf_token": "forged", "release": str(number)}).status_code
        == 400
    )
    published = sam.post("/secretariat/publish", data={"csrf_token": _csrf(sam), "release": str(number)})
    assert published.status_code == 303
    assert f"Release {number} published." in page_callback(sam, "/secretariat")
    again = sam.post("/secretariat/publish", data={"csrf_token": _csrf(sam), "release": str(number)})
    assert again.status_code == 303 and "Not done" in page_callback(sam, "/secretariat")  # already published
    assert [str(line.object_id) for line in audit_lines(loaded_engine, "release.publish")] == [str(number)]
    # the public pages show it at once
    assert "Release 1: Spring" in page_callback(web.test_client(), "/data")
