"""Accounts (hub.auth, ``hub user``) and the upload page (ingest/web.py), on both backends.

The pages are driven through Flask's test client for the many small cases and through a real
waitress server on 127.0.0.1 for the key flow. Each refused request must store nothing and
never show a submitted value back.
"""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import flask
import pytest
import requests
from browser import serve_in_thread
from flask.testing import FlaskClient
from hubcli import HubCommands
from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from dashboards.app import create_app
from hub.auth import (
    AuthError,
    authenticate,
    create_user,
    deactivate_user,
    hash_password,
    list_users,
    password_problems,
)
from hub.catalogue import Catalogue
from hub.db import session_scope
from hub.models import AuditEvent, Observation, Submission, User
from hub.organisations import OrganisationIn, add_organisation
from hub.settings import REPO_ROOT, Settings
from ingest.templates import build_template
from ingest.web import LoginThrottle, safe_next, shown_file_name

HUB = str(REPO_ROOT / ".venv" / "bin" / "hub")
SAMPLE = (REPO_ROOT / "data" / "samples" / "aggregate.csv").read_bytes()
ORG, OTHER = "example-platform", "other-platform"
PASSWORD = "correct horse battery 7"
EMAIL = "jane.doe@example.org"
# page behaviour that does not depend on the database runs on one backend only
SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
EMAIL_FILE = (
    b"reporter,period,metric,country,category,notice_source,content_type,value,unit,flag\n"
    b"example-platform,2025-Q1,co_notices_received,,,,,1250,count,\n"
    b"example-platform,2025-Q1,co_notices_received,,jane.doe@example.org,,,900,count,\n"
)


def for_org(data: bytes, code: str) -> bytes:
    """The sample file as another organisation's."""
    return data.replace(ORG.encode(), code.encode())


@dataclass
class Accounts:
    submitter: int
    viewer: int
    other: int
    secretariat: int


def seed_accounts(engine: Engine) -> Accounts:
    """Two companies, a submitter and a viewer of the first, a submitter of the second, a secretariat."""
    with session_scope(engine) as session:
        for code in (ORG, OTHER):
            add_organisation(
                session,
                OrganisationIn(
                    code=code, name=f"{code.title()} Ltd", stakeholder_type="company", country="FR"
                ),
            )
        ids = [
            create_user(session, name, display, role, org, PASSWORD).id
            for name, display, role, org in (
                ("alice", "Alice Submitter", "org_submitter", ORG),
                ("victor", "Victor Viewer", "org_viewer", ORG),
                ("oscar", "Oscar Other", "org_submitter", OTHER),
                ("sam", "Sam Secretariat", "secretariat", None),
            )
        ]
    assert all(isinstance(i, int) for i in ids)
    return Accounts(*ids)  # type: ignore[arg-type]


def counts(engine: Engine) -> tuple[int, int]:
    with Session(engine) as session:
        subs = session.exec(select(func.count()).select_from(Submission)).one()
        obs = session.exec(select(func.count()).select_from(Observation)).one()
    return int(subs), int(obs)


def audit_lines(engine: Engine, action: str) -> list[AuditEvent]:
    with Session(engine) as session:
        query = select(AuditEvent).where(AuditEvent.action == action).order_by(col(AuditEvent.id))
        return list(session.exec(query))


def token_of(html: str) -> str:
    match = CSRF.search(html)
    assert match, "no CSRF token on the page"
    return match.group(1)


def sign_in(client: FlaskClient, username: str, password: str = PASSWORD) -> flask.Response:
    token = token_of(client.get("/login").get_data(as_text=True))
    return client.post("/login", data={"csrf_token": token, "username": username, "password": password})


def upload(
    client: FlaskClient,
    data: bytes,
    name: str = "figures.csv",
    *,
    dry_run: bool = False,
    reason: str = "",
    token: str | None = None,
) -> flask.Response:
    if token is None:
        token = token_of(client.get("/submit").get_data(as_text=True))
    form: dict[str, object] = {"csrf_token": token, "file": (_bytes_io(data), name), "reason": reason}
    if dry_run:
        form["dry_run"] = "1"
    return client.post("/submit", data=form, content_type="multipart/form-data")


def _bytes_io(data: bytes) -> object:
    import io

    return io.BytesIO(data)


@pytest.fixture(autouse=True)
def _cheaper_scrypt(monkeypatch: pytest.MonkeyPatch) -> None:
    """Real scrypt at a lower cost (n=1024): the suite signs in often on 2 shared cores."""
    monkeypatch.setattr("hub.auth.HASH_METHOD", "scrypt:1024:8:1")


@pytest.fixture
def accounts(loaded_engine: Engine) -> Accounts:
    return seed_accounts(loaded_engine)


@pytest.fixture
def web(loaded_engine: Engine, settings: Settings, accounts: Accounts) -> flask.Flask:
    server = create_app(loaded_engine, settings).server
    server.testing = True
    return server


@pytest.fixture
def client(web: flask.Flask) -> FlaskClient:
    return web.test_client()


# --- accounts --------------------------------------------------------------------------------


def test_authenticate_right_wrong_unknown_and_inactive(loaded_engine: Engine, accounts: Accounts) -> None:
    with session_scope(loaded_engine) as session:
        user = authenticate(session, "alice", PASSWORD)
        assert user is not None and user.id == accounts.submitter and user.last_login_at is not None
        assert authenticate(session, "alice", PASSWORD + "x") is None
        assert authenticate(session, "nobody", PASSWORD) is None
        assert authenticate(session, "alice", "x" * 10_000) is None
        deactivate_user(session, "victor")
    with session_scope(loaded_engine) as session:
        assert authenticate(session, "victor", PASSWORD) is None
        stored = session.get(User, accounts.viewer)
        assert stored is not None and not stored.is_active and stored.session_version == 2
        assert stored.password_hash.startswith("scrypt:") and PASSWORD not in stored.password_hash
    logins = audit_lines(loaded_engine, "user.login")
    assert [(e.outcome, e.details.get("reason")) for e in logins] == [
        ("ok", None),
        ("failed", "wrong_password"),
        ("failed", "unknown_account"),
        ("failed", "wrong_password"),
        ("failed", "inactive_account"),
    ]
    assert [e.actor_user_id for e in logins] == [accounts.submitter] * 2 + [None] + [accounts.submitter] + [
        accounts.viewer
    ]
    for event in audit_lines(loaded_engine, "user.login") + audit_lines(loaded_engine, "user.add"):
        text = f"{event.actor_label} {event.details} {event.object_id}"
        for name in ("alice", "victor", "nobody", "Alice Submitter"):
            assert name not in text


@SQLITE_ONLY
def test_unknown_account_costs_a_hash_check_too(
    loaded_engine: Engine, accounts: Accounts, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A costlier scrypt than the suite's (n=1024 took 1-2 ms, less than the database's own
    # jitter, so one fast query could fail the comparison): now the hash is most of each try.
    monkeypatch.setattr("hub.auth.HASH_METHOD", "scrypt:16384:8:1")
    with session_scope(loaded_engine) as session:
        alice = session.exec(select(User).where(User.username == "alice")).one()
        alice.password_hash = hash_password(PASSWORD)

    def timed(username: str) -> float:
        with Session(loaded_engine) as session:
            started = time.perf_counter()
            authenticate(session, username, "wrong password here")
            session.rollback()
        return time.perf_counter() - started

    timed("nobody")  # the dummy hash is made once per process
    known, unknown = [], []
    for _ in range(5):  # interleaved, fastest of each: load on a shared machine only adds time
        known.append(timed("alice"))
        unknown.append(timed("nobody"))
    assert min(unknown) > min(known) / 3, (known, unknown)


@SQLITE_ONLY
@pytest.mark.parametrize(
    ("username", "role", "org", "password", "message"),
    [
        ("new-user", "org_submitter", ORG, "short", "at least 12"),
        ("new-user", "org_submitter", ORG, "new-user-password-1", "contain the username"),
        ("new-user", "org_submitter", None, PASSWORD, "needs --org"),
        ("new-user", "secretariat", ORG, PASSWORD, "drop --org"),
        ("new-user", "owner", ORG, PASSWORD, "role must be"),
        ("New User", "org_submitter", ORG, PASSWORD, "username"),
        ("a@b.example", "org_submitter", ORG, PASSWORD, "username"),
        ("alice", "org_submitter", ORG, PASSWORD, "already taken"),
    ],
)
def test_create_user_refusals(
    loaded_engine: Engine,
    accounts: Accounts,
    username: str,
    role: str,
    org: str | None,
    password: str,
    message: str,
) -> None:
    with Session(loaded_engine) as session, pytest.raises(AuthError, match=message):
        create_user(session, username, "New User", role, org, password)


def test_passwords_are_stored_as_full_cost_scrypt(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.undo()  # the module's own setting, not the tests' cheaper one
    stored = hash_password(PASSWORD)
    assert stored.startswith("scrypt:32768:8:1$") and PASSWORD not in stored


def test_password_rules() -> None:
    assert password_problems(PASSWORD) == []
    assert password_problems("aaaaaaaaaaaaaaaa")
    assert password_problems(" leading space pw")
    assert password_problems("p" * 300)


@SQLITE_ONLY
@pytest.mark.slow
def test_hub_user_cli(cli_env: dict[str, str], loaded_engine: Engine, accounts: Accounts) -> None:
    env = {**cli_env, "HUB_NEW_PASSWORD": PASSWORD}

    hub = HubCommands(env, "user")  # one real process: the first `hub user`

    def run(*args: str, environment: dict[str, str] = env) -> subprocess.CompletedProcess[str]:
        return hub("user", *args, env=environment)

    added = run("add", "carol", "--org", ORG, "--role", "org_viewer", "--name", "Carol Viewer")
    assert added.returncode == 0, added.stderr
    assert PASSWORD not in added.stdout + added.stderr
    short = run(
        "add", "dave", "--org", ORG, "--name", "Dave", environment={**env, "HUB_NEW_PASSWORD": "short"}
    )
    assert short.returncode == 1 and "at least 12" in short.stderr
    assert run("add", "erin", "--org", "no-such-org", "--name", "Erin").returncode == 1
    assert run("add", "frank", "--name", "Frank").returncode == 1  # org_submitter needs --org
    assert run("add", "--name", "Nobody").returncode == 2  # usage error
    listed = run("list", "--org", ORG)
    assert listed.returncode == 0
    names = [line.split("\t")[0] for line in listed.stdout.splitlines()[1:]]
    assert names == ["alice", "carol", "victor"]
    assert run("deactivate", "carol").returncode == 0
    assert run("deactivate", "nobody").returncode == 1
    with Session(loaded_engine) as session:
        rows = {row.username: row for row in list_users(session)}
        assert not rows["carol"].is_active and rows["carol"].role == "org_viewer"
        assert "dave" not in rows and "erin" not in rows


# --- sign-in ---------------------------------------------------------------------------------


@SQLITE_ONLY
def test_pages_need_sign_in_and_come_back_after_it(client: FlaskClient) -> None:
    for path in ("/submit", "/submit/history", "/submit/templates/company.csv"):
        response = client.get(path)
        assert response.status_code == 302
        assert response.headers["Location"].startswith("/login?next=")
    # without a session, a post is refused, and a body over the app's 1 MB is not even read
    anonymous = client.post("/submit", data={"file": (_bytes_io(SAMPLE), "a.csv")})
    assert anonymous.status_code == 400
    big = client.post("/submit", data={"file": (_bytes_io(b"1" * (2 * 1024 * 1024)), "a.csv")})
    assert big.status_code == 413
    response = client.get("/submit/history")
    login_page = client.get(response.headers["Location"]).get_data(as_text=True)
    token = token_of(login_page)
    assert 'value="/submit/history"' in login_page
    response = client.post(
        "/login",
        data={"csrf_token": token, "username": "alice", "password": PASSWORD, "next": "/submit/history"},
    )
    assert response.status_code == 302 and response.headers["Location"] == "/submit/history"
    page = client.get("/submit/history")
    assert page.status_code == 200 and "Nothing submitted yet" in page.get_data(as_text=True)
    assert page.headers["Cache-Control"] == "no-store"
    assert "script-src" in page.headers["Content-Security-Policy"]


def test_wrong_password_unknown_and_inactive_accounts_are_refused_alike(
    client: FlaskClient, loaded_engine: Engine
) -> None:
    with session_scope(loaded_engine) as session:
        deactivate_user(session, "victor")
    pages = []
    for username, password in (("alice", "not the password"), ("nobody", PASSWORD), ("victor", PASSWORD)):
        response = sign_in(client, username, password)
        assert response.status_code == 401
        pages.append(response.get_data(as_text=True).replace(f'value="{username}"', ""))
        assert "not right, or the account is not active" in pages[-1]
        assert client.get("/submit").status_code == 302
    assert pages[0] == pages[1] == pages[2]  # the page does not tell which of the three it was


@SQLITE_ONLY
def test_sign_in_starts_a_new_session_and_sign_out_ends_it(client: FlaskClient) -> None:
    before = token_of(client.get("/login").get_data(as_text=True))
    response = client.post("/login", data={"csrf_token": before, "username": "alice", "password": PASSWORD})
    assert response.status_code == 302 and response.headers["Location"] == "/submit"
    page = client.get("/submit").get_data(as_text=True)
    after = token_of(page)
    assert after != before and "Alice Submitter" in page
    assert client.get("/login").status_code == 302  # already signed in
    assert client.post("/logout", data={}).status_code == 400  # no token
    assert client.post("/logout", data={"csrf_token": after}).status_code == 302
    assert client.get("/submit").status_code == 302


def test_deactivation_ends_an_open_session(client: FlaskClient, loaded_engine: Engine) -> None:
    assert sign_in(client, "alice").status_code == 302
    assert client.get("/submit").status_code == 200
    with session_scope(loaded_engine) as session:
        deactivate_user(session, "alice")
    assert client.get("/submit").status_code == 302


def test_post_without_or_with_a_wrong_csrf_token_is_refused(
    client: FlaskClient, loaded_engine: Engine
) -> None:
    client.get("/login")
    for data in ({}, {"csrf_token": "forged"}):
        response = client.post("/login", data={**data, "username": "alice", "password": PASSWORD})
        assert response.status_code == 400
        assert "not sent from this site" in response.get_data(as_text=True)
    assert client.get("/submit").status_code == 302
    assert sign_in(client, "alice").status_code == 302
    response = upload(client, SAMPLE, token="forged")
    assert response.status_code == 400
    assert counts(loaded_engine) == (0, 0)
    assert audit_lines(loaded_engine, "submission.attempt") == []


@SQLITE_ONLY
def test_failed_sign_ins_are_limited_per_address(client: FlaskClient) -> None:
    token = token_of(client.get("/login").get_data(as_text=True))
    for _ in range(10):
        response = client.post(
            "/login", data={"csrf_token": token, "username": "alice", "password": "wrong pw"}
        )
        assert response.status_code == 401
    response = client.post("/login", data={"csrf_token": token, "username": "alice", "password": PASSWORD})
    assert response.status_code == 429 and int(response.headers["Retry-After"]) > 0
    assert "Too many failed sign-ins" in response.get_data(as_text=True)
    assert client.get("/submit").status_code == 302
    other = client.post(
        "/login",
        data={"csrf_token": token, "username": "alice", "password": PASSWORD},
        environ_overrides={"REMOTE_ADDR": "127.0.0.2"},
    )
    assert other.status_code == 302  # another address is not blocked


def test_login_throttle_window() -> None:
    throttle = LoginThrottle(limit=2, window=0.2)
    throttle.failed("a")
    assert throttle.retry_after("a") == 0
    throttle.failed("a")
    assert throttle.retry_after("a") > 0 and throttle.retry_after("b") == 0
    time.sleep(0.25)
    assert throttle.retry_after("a") == 0


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/submit/history", "/submit/history"),
        ("/submit?x=1", "/submit?x=1"),
        ("//evil.example/", "/submit"),
        ("https://evil.example/", "/submit"),
        ("/\\evil.example", "/submit"),
        ("javascript:alert(1)", "/submit"),
        ("/\tevil", "/submit"),
        ("", "/submit"),
        (None, "/submit"),
    ],
)
def test_next_is_only_ever_a_path_on_this_site(target: str | None, expected: str) -> None:
    assert safe_next(target, "/submit") == expected


@SQLITE_ONLY
def test_open_redirect_through_next_is_refused(client: FlaskClient) -> None:
    token = token_of(client.get("/login?next=//evil.example/x").get_data(as_text=True))
    response = client.post(
        "/login",
        data={
            "csrf_token": token,
            "username": "alice",
            "password": PASSWORD,
            "next": "https://evil.example/",
        },
    )
    assert response.headers["Location"] == "/submit"


# --- upload ----------------------------------------------------------------------------------


def test_upload_is_accepted_and_stored_for_the_signed_in_organisation(
    client: FlaskClient, loaded_engine: Engine, accounts: Accounts
) -> None:
    sign_in(client, "alice")
    response = upload(client, SAMPLE, "Q1 figures.csv")
    page = response.get_data(as_text=True)
    assert response.status_code == 200, page
    assert "Accepted" in page and "version 1 of 2025-Q1" in page and "Q1 figures.csv" in page
    assert counts(loaded_engine) == (1, 5)
    with Session(loaded_engine) as session:
        stored = session.exec(select(Submission)).one()
        assert stored.channel == "upload" and stored.submitted_by_id == accounts.submitter
        assert stored.source_name == "upload.csv"  # the user's own file name is never stored
    again = upload(client, SAMPLE).get_data(as_text=True)
    assert "Unchanged: already stored" in again and counts(loaded_engine) == (1, 5)
    outcomes = [e.outcome for e in audit_lines(loaded_engine, "submission.attempt")]
    assert outcomes == ["accepted", "unchanged"]


def test_personal_data_is_rejected_with_its_place_and_never_shown(
    client: FlaskClient, loaded_engine: Engine
) -> None:
    sign_in(client, "alice")
    response = upload(client, EMAIL_FILE)
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "Rejected: nothing was stored" in page
    assert re.search(r'<td class="num">3</td><td>category</td><td><code>pd\.email</code></td>', page), page
    assert EMAIL not in page and "jane.doe" not in page and "example.org" not in page
    assert counts(loaded_engine) == (0, 0)
    for event in audit_lines(loaded_engine, "submission.attempt"):
        assert event.outcome == "rejected" and EMAIL not in str(event.details)


@SQLITE_ONLY
def test_file_name_is_shown_escaped(client: FlaskClient) -> None:
    sign_in(client, "alice")
    page = upload(client, SAMPLE, "<img src=x onerror=alert(1)>.csv", dry_run=True).get_data(as_text=True)
    assert "<img src=x" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;.csv" in page
    assert shown_file_name("C:\\Users\\someone\\figures.csv") == "figures.csv"
    assert shown_file_name("../../etc/figures.csv") == "figures.csv"


def test_dry_run_stores_nothing(client: FlaskClient, loaded_engine: Engine) -> None:
    sign_in(client, "alice")
    response = upload(client, SAMPLE, dry_run=True)
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Dry run OK" in page and "5 observation(s) would be stored" in page
    assert counts(loaded_engine) == (0, 0)
    assert [e.outcome for e in audit_lines(loaded_engine, "submission.attempt")] == ["dry_run"]


def test_restatement_needs_a_reason(client: FlaskClient, loaded_engine: Engine) -> None:
    sign_in(client, "alice")
    assert upload(client, SAMPLE).status_code == 200
    changed = SAMPLE.replace(b",1250,", b",1300,")
    refused = upload(client, changed)
    page = refused.get_data(as_text=True)
    assert refused.status_code == 422 and "scope.already_reported" in page
    assert "Reason for restatement" in page and "--reason" not in page
    assert counts(loaded_engine) == (1, 5)
    accepted = upload(client, changed, reason="Late notices counted after an audit")
    assert accepted.status_code == 200 and "version 2 of 2025-Q1" in accepted.get_data(as_text=True)
    assert counts(loaded_engine) == (2, 10)
    history = client.get("/submit/history").get_data(as_text=True)
    assert "Late notices counted after an audit" in history
    assert history.count("<td>2025-Q1</td>") == 2


@SQLITE_ONLY
def test_a_file_of_another_type_or_no_file_is_refused(client: FlaskClient, loaded_engine: Engine) -> None:
    sign_in(client, "alice")
    response = upload(client, b"MZ\x90\x00", "tool.exe")
    assert response.status_code == 400 and "CSV, JSON or XLSX" in response.get_data(as_text=True)
    token = token_of(client.get("/submit").get_data(as_text=True))
    response = client.post("/submit", data={"csrf_token": token}, content_type="multipart/form-data")
    assert response.status_code == 400 and "Choose a file" in response.get_data(as_text=True)
    assert counts(loaded_engine) == (0, 0)


def test_oversize_upload_gets_the_413_page(
    loaded_engine: Engine, settings: Settings, accounts: Accounts
) -> None:
    small = settings.model_copy(update={"max_upload_bytes": 4096})
    client = create_app(loaded_engine, small).server.test_client()
    sign_in(client, "alice")
    big = SAMPLE + b"\n" * 8192
    response = upload(client, big)
    assert response.status_code == 413
    assert "File too large" in response.get_data(as_text=True)
    assert "at most 4 KB" in response.get_data(as_text=True)
    assert counts(loaded_engine) == (0, 0)
    assert "at most 4 KB" in client.get("/submit").get_data(as_text=True)
    assert upload(client, SAMPLE).status_code == 200  # under the limit


@SQLITE_ONLY
def test_a_large_file_under_the_upload_limit_passes_the_app_wide_1_mb_limit(
    client: FlaskClient, loaded_engine: Engine
) -> None:
    sign_in(client, "alice")
    padded = SAMPLE + b"\n" * (1024 * 1024 + 10)  # blank lines: over the app's 1 MB, under 50 MB
    response = upload(client, padded, dry_run=True)
    assert response.status_code in (200, 422)  # read and reported, not refused for its size
    assert "File too large" not in response.get_data(as_text=True)


def test_viewer_sees_but_cannot_upload(client: FlaskClient, loaded_engine: Engine) -> None:
    sign_in(client, "victor")
    page = client.get("/submit").get_data(as_text=True)
    assert 'type="file"' not in page and "not upload" in page
    response = upload(client, SAMPLE, token=token_of(page))
    assert response.status_code == 403
    assert counts(loaded_engine) == (0, 0)
    assert client.get("/submit/history").status_code == 200


@SQLITE_ONLY
def test_secretariat_has_no_organisation_pages(client: FlaskClient) -> None:
    sign_in(client, "sam")
    assert client.get("/submit").status_code == 403
    assert client.get("/submit/history").status_code == 403
    assert client.get("/submit/templates/hotline.csv").status_code == 200


def test_history_shows_only_the_own_organisation(web: flask.Flask, loaded_engine: Engine) -> None:
    oscar = web.test_client()
    sign_in(oscar, "oscar")
    assert upload(oscar, for_org(SAMPLE, OTHER)).status_code == 200
    alice = web.test_client()
    sign_in(alice, "alice")
    assert "Nothing submitted yet" in alice.get("/submit/history").get_data(as_text=True)
    assert upload(alice, SAMPLE.replace(b"2025-Q1", b"2024-Q4")).status_code == 200
    alice_history = alice.get("/submit/history").get_data(as_text=True)
    assert "2024-Q4" in alice_history and "2025-Q1" not in alice_history
    oscar_history = oscar.get("/submit/history").get_data(as_text=True)
    assert "2025-Q1" in oscar_history and "2024-Q4" not in oscar_history
    viewer = web.test_client()
    sign_in(viewer, "victor")
    assert "2024-Q4" in viewer.get("/submit/history").get_data(as_text=True)
    # a file naming the other organisation as reporter is refused: the org comes from the account
    response = upload(alice, for_org(SAMPLE, OTHER))
    assert response.status_code == 422 and "reporter.mismatch" in response.get_data(as_text=True)


@SQLITE_ONLY
def test_templates_download(client: FlaskClient, catalogue: Catalogue) -> None:
    sign_in(client, "alice")
    response = client.get("/submit/templates/company.csv")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/csv")
    assert 'filename="hub-template-company.csv"' in response.headers["Content-Disposition"]
    assert response.data == build_template(catalogue, "company", "csv", ORG)
    hotline = client.get("/submit/templates/hotline.csv")
    assert hotline.status_code == 200 and ORG.encode() not in hotline.data  # not the user's type
    assert hotline.data == build_template(catalogue, "hotline", "csv", "")
    for missing in ("pirates.csv", "company.pdf", "company", "company.csv.exe"):
        assert client.get(f"/submit/templates/{missing}").status_code == 404, missing
    try:
        expected: bytes | None = build_template(catalogue, "company", "xlsx", ORG)
    except ValueError:
        expected = None
    xlsx = client.get("/submit/templates/company.xlsx")
    if expected is None:
        assert xlsx.status_code == 404  # the builder offers no XLSX yet: a clean 404
    else:
        assert xlsx.status_code == 200 and xlsx.data[:2] == b"PK"


# --- through a real HTTP server --------------------------------------------------------------


@pytest.fixture
def live_url(loaded_engine: Engine, settings: Settings, accounts: Accounts) -> Iterator[str]:
    small = settings.model_copy(update={"max_upload_bytes": 64 * 1024})
    with serve_in_thread(create_app(loaded_engine, small).server) as url:
        yield url


def _http_sign_in(http: requests.Session, url: str) -> None:
    token = token_of(http.get(f"{url}/login", timeout=10).text)
    response = http.post(
        f"{url}/login",
        data={"csrf_token": token, "username": "alice", "password": PASSWORD},
        allow_redirects=False,
        timeout=10,
    )
    assert response.status_code == 302
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_key_flow_over_real_http(live_url: str, loaded_engine: Engine) -> None:
    with requests.Session() as http:
        assert http.get(f"{live_url}/submit", allow_redirects=False, timeout=10).status_code == 302
        _http_sign_in(http, live_url)
        form = http.get(f"{live_url}/submit", timeout=10)
        assert form.status_code == 200 and 'enctype="multipart/form-data"' in form.text
        token = token_of(form.text)

        def post(data: bytes, name: str = "figures.csv") -> requests.Response:
            return http.post(
                f"{live_url}/submit",
                data={"csrf_token": token},
                files={"file": (name, data, "text/csv")},
                timeout=30,
            )

        rejected = post(EMAIL_FILE)
        assert rejected.status_code == 422 and "pd.email" in rejected.text and EMAIL not in rejected.text
        accepted = post(SAMPLE)
        assert accepted.status_code == 200 and "Accepted" in accepted.text
        assert counts(loaded_engine) == (1, 5)
        too_big = post(SAMPLE + b"\n" * (70 * 1024))
        assert too_big.status_code == 413 and "File too large" in too_big.text
        history = http.get(f"{live_url}/submit/history", timeout=10)
        assert "2025-Q1" in history.text and "upload" in history.text
        assert counts(loaded_engine) == (1, 5)


@SQLITE_ONLY
def test_oversize_body_without_content_length_over_real_http(live_url: str, loaded_engine: Engine) -> None:
    with requests.Session() as http:
        _http_sign_in(http, live_url)
        token = token_of(http.get(f"{live_url}/submit", timeout=10).text)
        boundary = "hubtestboundary"
        body = (
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="csrf_token"\r\n\r\n{token}\r\n'
                f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.csv"\r\n'
                f"Content-Type: text/csv\r\n\r\n"
            ).encode()
            + SAMPLE
            + b"\n" * (70 * 1024)
            + f"\r\n--{boundary}--\r\n".encode()
        )

        def chunks() -> Iterator[bytes]:  # a generator body is sent chunked, with no Content-Length
            for start in range(0, len(body), 8192):
                yield body[start : start + 8192]

        response = http.post(
            f"{live_url}/submit",
            data=chunks(),
            headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
            timeout=30,
        )
        assert response.status_code == 413
    assert counts(loaded_engine) == (0, 0)


def test_templates_are_plain_files(tmp_path: Path) -> None:
    """The page templates are shipped with the package (pyproject package-data)."""
    folder = REPO_ROOT / "ingest" / "web_templates" / "upload"
    names = sorted(p.name for p in folder.glob("*.html"))
    assert names == ["base.html", "history.html", "login.html", "message.html", "submit.html"]
    for path in folder.glob("*.html"):
        assert "<script" not in path.read_text(encoding="utf-8")  # no inline script: CSP holds
