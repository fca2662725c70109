"""Pull connectors against real feeds served on 127.0.0.1 and real drop folders, both backends.

Every feed is a real ``http.server`` in a thread that records what the hub sent; nothing is
mocked on the hub's side of the socket.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from hubcli import hub_in_process, hub_process
from sqlalchemy import func
from sqlalchemy import text as sql_text
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from hub.catalogue import Catalogue
from hub.db import session_scope
from hub.errors import HubError
from hub.models import Connector, ConnectorRun, Submission
from hub.organisations import OrganisationIn, add_organisation
from hub.settings import REPO_ROOT, Settings
from ingest import connectors
from ingest.connectors import add_connector, connector_overview, run_connector, run_due_connectors

HUB = str(REPO_ROOT / ".venv" / "bin" / "hub")
ORG = "example-platform"
JSON_FEED = (REPO_ROOT / "data" / "samples" / "aggregate.json").read_bytes()
CSV_FEED = (REPO_ROOT / "data" / "samples" / "aggregate.csv").read_bytes()
PERSONAL_FEED = (REPO_ROOT / "tests" / "fixtures" / "ingest" / "email.csv").read_bytes()
PERSONAL_VALUE = "jane.doe@example.org"
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
FAST = {"backoff_seconds": 0.01, "max_wait_seconds": 0.05, "settle_seconds": 0.0}


# --- a real feed ------------------------------------------------------------------------------


@dataclass
class Reply:
    """One scripted answer of the feed server."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    stream_bytes: int = 0  # > 0: send this many bytes in chunks, without Content-Length
    content_length: bool = True


@dataclass
class Seen:
    path: str
    headers: dict[str, str]


class FeedServer:
    """An HTTP server on 127.0.0.1 answering from a script; records each request's headers.

    ``replies`` is consumed in order, the last one repeating; a callable reply is called with the
    request first (to answer conditionally).
    """

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.scheme = "https" if tls else "http"
        self.replies: list[Reply | Callable[[Seen], Reply]] = [Reply(body=JSON_FEED)]
        self.seen: list[Seen] = []
        self.streamed = 0  # bytes of a streamed body actually written
        self.stream_complete = False
        feed = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                request = Seen(self.path, {k.lower(): v for k, v in self.headers.items()})
                feed.seen.append(request)
                reply = feed.replies.pop(0) if len(feed.replies) > 1 else feed.replies[0]
                if callable(reply):
                    reply = reply(request)
                if reply.delay:
                    time.sleep(reply.delay)
                try:
                    self.send_response(reply.status)
                    headers = {"Content-Type": "application/json", **reply.headers}
                    for name, value in headers.items():
                        self.send_header(name, value)
                    if reply.stream_bytes:
                        self.end_headers()
                        chunk = b"x" * 65536
                        while feed.streamed < reply.stream_bytes:
                            self.wfile.write(chunk)
                            feed.streamed += len(chunk)
                        feed.stream_complete = True
                        return
                    if reply.content_length:
                        self.send_header("Content-Length", str(len(reply.body)))
                    self.end_headers()
                    self.wfile.write(reply.body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        if tls is not None:
            self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    def url(self, path: str = "/feed", host: str = "127.0.0.1") -> str:
        return f"{self.scheme}://{host}:{self.port}{path}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def feed() -> Iterator[FeedServer]:
    server = FeedServer()
    yield server
    server.close()


@pytest.fixture
def other_feed() -> Iterator[FeedServer]:
    server = FeedServer()
    yield server
    server.close()


@pytest.fixture
def pull_settings(settings: Settings) -> Settings:
    """Plain http on 127.0.0.1 allowed, short timeouts."""
    return settings.model_copy(
        update={"connector_allow_http": True, "connector_timeout_seconds": 2.0, "connector_retries": 2}
    )


@pytest.fixture
def org_session(session: Session) -> Session:
    add_organisation(session, OrganisationIn(code=ORG, name="Example Platform", stakeholder_type="company"))
    session.commit()
    return session


def make_feed(session: Session, settings: Settings, url: str, name: str = "feed", **options: object) -> int:
    connector = add_connector(session, ORG, name, settings=settings, url=url, **options)  # type: ignore[arg-type]
    session.commit()
    return connector.id or 0


def pull(engine: Engine, settings: Settings, catalogue: Catalogue, connector_id: int) -> ConnectorRun:
    return run_connector(engine, settings, catalogue, connector_id, NOW, **FAST)


def connector_row(engine: Engine, connector_id: int) -> Connector:
    with session_scope(engine) as session:
        connector = session.get(Connector, connector_id)
        assert connector is not None
        return connector


def submissions(engine: Engine) -> int:
    with session_scope(engine) as session:
        return int(session.exec(select(func.count()).select_from(Submission)).one())


def database_text(engine: Engine) -> str:
    """Every row of the tables a run writes, as text: to prove a value or secret never got there."""
    tables = ["connector", "connector_run", "audit_event", "submission"]
    with engine.connect() as connection:
        return "\n".join(
            " | ".join(str(cell) for cell in row)
            for table in tables
            for row in connection.execute(sql_text(f"SELECT * FROM {table}")).all()
        )


# --- HTTP feeds --------------------------------------------------------------------------------


def test_json_feed_accepted_then_unchanged(
    org_session: Session,
    loaded_engine: Engine,
    pull_settings: Settings,
    catalogue: Catalogue,
    feed: FeedServer,
) -> None:
    connector_id = make_feed(org_session, pull_settings, feed.url(), interval_minutes=15)
    run = pull(loaded_engine, pull_settings, catalogue, connector_id)
    assert (run.result, run.http_status, run.attempts) == ("accepted", 200, 1)
    assert run.submission_id is not None and run.message and "accepted" in run.message
    assert submissions(loaded_engine) == 1
    connector = connector_row(loaded_engine, connector_id)
    assert connector.last_result == "accepted" and connector.consecutive_failures == 0
    assert connector.last_run_at == NOW and connector.next_run_at == NOW + timedelta(minutes=15)
    with session_scope(loaded_engine) as session:
        source = session.get(Submission, run.submission_id)
        assert source is not None and source.channel == "pull" and source.source_name == "feed.json"

    again = pull(loaded_engine, pull_settings, catalogue, connector_id)
    assert again.result == "unchanged" and again.submission_id == run.submission_id
    assert submissions(loaded_engine) == 1
    assert feed.seen[0].headers["user-agent"].startswith("csea-hub")
    assert "authorization" not in feed.seen[0].headers


def test_csv_feed_accepted(
    org_session: Session,
    loaded_engine: Engine,
    pull_settings: Settings,
    catalogue: Catalogue,
    feed: FeedServer,
) -> None:
    feed.replies = [Reply(body=CSV_FEED, headers={"Content-Type": "text/csv; charset=utf-8"})]
    run = pull(loaded_engine, pull_settings, catalogue, make_feed(org_session, pull_settings, feed.url()))
    assert run.result == "accepted", run.message


def test_etag_gives_not_modified(
    org_session: Session,
    loaded_engine: Engine,
    pull_settings: Settings,
    catalogue: Catalogue,
    feed: FeedServer,
) -> None:
    def conditional(request: Seen) -> Reply:
        if request.headers.get("if-none-match") == '"v1"':
            return Reply(status=304, headers={"ETag": '"v1"'})
        return Reply(body=JSON_FEED, headers={"ETag": '"v1"'})

    feed.replies = [conditional]
    connector_id = make_feed(org_session, pull_settings, feed.url())
    assert pull(loaded_engine, pull_settings, catalogue, connector_id).result == "accepted"
    assert "if-none-match" not in feed.seen[0].headers
    assert connector_row(loaded_engine, connector_id).etag == '"v1"'
    run = pull(loaded_engine, pull_settings, catalogue, connector_id)
    assert feed.seen[1].headers["if-none-match"] == '"v1"'
    assert (run.result, run.http_status, run.submission_id) == ("not_modified", 304, None)
    assert submissions(loaded_engine) == 1


def test_last_modified_gives_not_modified(
    org_session: Session,
    loaded_engine: Engine,
    pull_settings: Settings,
    catalogue: Catalogue,
    feed: FeedServer,
) -> None:
    stamp = "Sun, 01 Mar 2026 10:00:00 GMT"

    def conditional(request: Seen) -> Reply:
        if request.headers.get("if-modified-since") == stamp:
            return Reply(status=304)
        return Reply(body=JSON_FEED, headers={"Last-Modified": stamp})

    feed.replies = [conditional]
    connector_id = make_feed(org_session, pull_settings, feed.url())
    assert pull(loaded_engine, pull_settings, catalogue, connector_id).result == "accepted"
    run = pull(loaded_engine, pull_settings, catalogue, connector_id)
    assert feed.seen[1].headers["if-modified-since"] == stamp
    assert run.result == "not_modified"


def test_personal_data_feed_rejected_without_echo_and_fetched_again(
    org_session: Session,
    loaded_engine: Engine,
    pull_settings: Settings,
    catalogue: Catalogue,
    feed: FeedServer,
) -> None:
    feed.replies = [Reply(body=PERSONAL_FEED, headers={"Content-Type": "text/csv", "ETag": '"bad"'})]
    connector_id = make_feed(org_session, pull_settings, feed.url())
    run = pull(loaded_engine, pull_settings, catalogue, connector_id)
    assert run.result == "rejected" and run.submission_id is None
    assert run.message is not None and "pd.email" in run.message
    assert submissions(loaded_engine) == 0
    connector = connector_row(loaded_engine, connector_id)
    assert connector.etag is None and connector.last_result == "rejected"
    assert PERSONAL_VALUE not in database_text(loaded_engine)
    assert "jane.doe" not in database_text(loaded_engine)
    pull(loaded_engine, pull_settings, catalogue, connector_id)
    assert "if-none-match" not in feed.seen[1].headers  # the rejected version is fetched again


def test_credentials_come_from_the_environment_and_are_never_stored(
    org_session: Session,
    loaded_engine: Engine,
    pull_settings: Settings,
    catalogue: Catalogue,
    feed: FeedServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    secret = "Bearer s3cret-feed-token-9c1f"
    connector_id = make_feed(org_session, pull_settings, feed.url(), credential_env="EXAMPLE_FEED_TOKEN")
    run = pull(loaded_engine, pull_settings, catalogue, connector_id)
    assert run.result == "failed" and run.attempts == 0 and not feed.seen
    assert run.message == "the environment variable EXAMPLE_FEED_TOKEN is not set"

    monkeypatch.setenv("EXAMPLE_FEED_TOKEN", secret)
    run = pull(loaded_engine, pull_settings, catalogue, connector_id)
    assert run.result == "accepted"
    assert feed.seen[0].headers["authorization"] == secret
    assert "s3cret" not in database_text(loaded_engine)
    assert connector_row(loaded_engine, connector_id).consecutive_failures == 0


def test_server_errors_are_retried_with_backoff(
    org_session: Session,
    loaded_engine: Engine,
    pull_settings: Settings,
    catalogue: Catalogue,
    feed: FeedServer,
) -> None:
    feed.replies = [Reply(status=500), Reply(status=503), Reply(body=JSON_FEED)]
    run = pull(loaded_engine, pull_settings, catalogue, make_feed(org_session, pull_settings, feed.url()))
    assert (run.result, run.attempts, run.http_status) == ("accepted", 3, 200)
    assert len(feed.seen) == 3


def test_server_errors_past_the_retries_fail(
    org_session: Session,
    loaded_engine: Engine,
    pull_settings: Settings,
    catalogue: Catalogue,
    feed: FeedServer,
) -> None:
    feed.replies = [Reply(status=502)]
    connector_id = make_feed(org_session, pull_settings, feed.url())
    run = pull(loaded_engine, pull_settings, catalogue, connector_id)
    assert (run.result, run.attempts, run.http_status) == ("failed", 3, 502)
    assert len(feed.seen) == 3  # 1 + connector_retries
    pull(loaded_engine, pull_settings, catalogue, connector_id)
    assert connector_row(loaded_engine, connector_id).consecutive_failures == 2


def test_client_errors_are_not_retried(
    org_session: Session,
    loaded_engine: Engine,
    pull_settings: Settings,
    catalogue: Catalogue,
    feed: FeedServer,
) -> None:
    feed.replies = [Reply(status=403)]
    run = pull(loaded_engine, pull_settings, catalogue, make_feed(org_session, pull_settings, feed.url()))
    assert (run.result, run.attempts, run.http_status) == ("failed", 1, 403)
    assert len(feed.seen) == 1


def test_too_many_requests_honours_retry_after_capped(
    org_session: Session,
    loaded_engine: Engine,
    pull_settings: Settings,
    catalogue: Catalogue,
    feed: FeedServer,
) -> None:
    feed.replies = [Reply(status=429, headers={"Retry-After": "3600"}), Reply(body=JSON_FEED)]
    started = time.monotonic()
    run = pull(loaded_engine, pull_settings, catalogue, make_feed(org_session, pull_settings, feed.url()))
    assert (run.result, run.attempts) == ("accepted", 2)
    assert time.monotonic() - started < 5  # an hour asked, capped by max_wait_seconds


def test_retry_after_is_read_as_seconds_or_date() -> None:
    assert connectors._retry_after("7") == 7.0
    later = (datetime.now(UTC) + timedelta(seconds=60)).strftime("%a, %d %b %Y %H:%M:%S GMT")
    wait = connectors._retry_after(later)
    assert wait is not None and 50 < wait <= 60
    assert connectors._retry_after("soon") is None


def test_timeout_fails(
    org_session: Session,
    loaded_engine: Engine,
    pull_settings: Settings,
    catalogue: Catalogue,
    feed: FeedServer,
) -> None:
    quick = pull_settings.model_copy(update={"connector_timeout_seconds": 0.3, "connector_retries": 1})
    feed.replies = [Reply(body=JSON_FEED, delay=1.5)]
    started = time.monotonic()
    run = pull(loaded_engine, quick, catalogue, make_feed(org_session, quick, feed.url()))
    assert (run.result, run.attempts) == ("failed", 2)
    assert run.message is not None and "timeout" in run.message
    assert time.monotonic() - started < 3


def test_redirect_to_another_origin_fails_and_is_never_followed(
    org_session: Session,
    loaded_engine: Engine,
    pull_settings: Settings,
    catalogue: Catalogue,
    feed: FeedServer,
    other_feed: FeedServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("EXAMPLE_FEED_TOKEN", "Bearer must-stay-home")
    connector_id = make_feed(org_session, pull_settings, feed.url(), credential_env="EXAMPLE_FEED_TOKEN")
    for target in (other_feed.url(), feed.url(host="localhost")):
        feed.replies = [Reply(status=302, headers={"Location": target})]
        run = pull(loaded_engine, pull_settings, catalogue, connector_id)
        assert (run.result, run.http_status, run.attempts) == ("failed", 302, 1)
        assert run.message is not None and "another host" in run.message
        assert str(other_feed.port) not in run.message
    assert other_feed.seen == []
    assert len(feed.seen) == 2  # the localhost redirect went nowhere either
    assert submissions(loaded_engine) == 0


def test_redirect_on_the_same_origin_is_followed(
    org_session: Session,
    loaded_engine: Engine,
    pull_settings: Settings,
    catalogue: Catalogue,
    feed: FeedServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("EXAMPLE_FEED_TOKEN", "Bearer same-origin")

    def route(request: Seen) -> Reply:
        if request.path == "/feed":
            return Reply(status=301, headers={"Location": "/v2/feed"})
        return Reply(body=JSON_FEED)

    feed.replies = [route]
    connector_id = make_feed(org_session, pull_settings, feed.url(), credential_env="EXAMPLE_FEED_TOKEN")
    run = pull(loaded_engine, pull_settings, catalogue, connector_id)
    assert (run.result, run.attempts) == ("accepted", 1)
    assert [s.path for s in feed.seen] == ["/feed", "/v2/feed"]
    assert feed.seen[1].headers["authorization"] == "Bearer same-origin"


def test_redirect_loop_fails(
    org_session: Session,
    loaded_engine: Engine,
    pull_settings: Settings,
    catalogue: Catalogue,
    feed: FeedServer,
) -> None:
    feed.replies = [Reply(status=302, headers={"Location": "/feed"})]
    run = pull(loaded_engine, pull_settings, catalogue, make_feed(org_session, pull_settings, feed.url()))
    assert run.result == "failed" and run.message is not None and "redirected more than 3" in run.message
    assert len(feed.seen) == 4


@pytest.mark.parametrize("declared", [True, False])
def test_oversize_body_fails_without_being_read(
    org_session: Session,
    loaded_engine: Engine,
    pull_settings: Settings,
    catalogue: Catalogue,
    feed: FeedServer,
    declared: bool,
) -> None:
    small = pull_settings.model_copy(update={"max_upload_bytes": 4096})
    total = 64 * 1024 * 1024
    headers = {"Content-Length": str(total)} if declared else {}
    feed.replies = [Reply(stream_bytes=total, headers=headers)]
    run = pull(loaded_engine, small, catalogue, make_feed(org_session, small, feed.url()))
    assert (run.result, run.attempts) == ("failed", 1)
    assert run.message is not None and "larger than the limit of 4096 bytes" in run.message
    time.sleep(0.2)
    assert not feed.stream_complete and feed.streamed < total // 2
    assert submissions(loaded_engine) == 0


def test_unexpected_content_type_fails(
    org_session: Session,
    loaded_engine: Engine,
    pull_settings: Settings,
    catalogue: Catalogue,
    feed: FeedServer,
) -> None:
    feed.replies = [Reply(body=b"<html>login</html>", headers={"Content-Type": "text/html"})]
    run = pull(loaded_engine, pull_settings, catalogue, make_feed(org_session, pull_settings, feed.url()))
    assert run.result == "failed" and run.message is not None and "content type" in run.message
    assert submissions(loaded_engine) == 0


def test_empty_body_is_empty(
    org_session: Session,
    loaded_engine: Engine,
    pull_settings: Settings,
    catalogue: Catalogue,
    feed: FeedServer,
) -> None:
    feed.replies = [Reply(body=b"")]
    run = pull(loaded_engine, pull_settings, catalogue, make_feed(org_session, pull_settings, feed.url()))
    assert run.result == "empty"


def test_a_failing_connector_never_blocks_the_others(
    org_session: Session,
    loaded_engine: Engine,
    pull_settings: Settings,
    catalogue: Catalogue,
    feed: FeedServer,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    closed = FeedServer()
    dead_url = closed.url()
    closed.close()  # connection refused from now on
    dead = make_feed(org_session, pull_settings, dead_url, name="dead")
    broken = make_feed(org_session, pull_settings, feed.url("/broken"), name="broken")
    good = make_feed(org_session, pull_settings, feed.url(), name="good")

    real_run_http = connectors._run_http

    def explode_for_broken(*args: object, **kwargs: object) -> connectors.Outcome:
        snap = args[3]
        if isinstance(snap, connectors._Snapshot) and snap.name == "broken":
            raise RuntimeError(f"parser choked on {PERSONAL_VALUE}")
        return real_run_http(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(connectors, "_run_http", explode_for_broken)
    with caplog.at_level(logging.INFO, logger="ingest.connectors"):
        runs = run_due_connectors(loaded_engine, pull_settings, catalogue, NOW, **FAST)
    by_id = {run.connector_id: run for run in runs}
    assert set(by_id) == {dead, broken, good}
    assert by_id[dead].result == "failed" and "could not connect" in (by_id[dead].message or "")
    assert by_id[dead].attempts == 3
    assert by_id[broken].result == "failed" and "RuntimeError" in (by_id[broken].message or "")
    assert by_id[good].result == "accepted"
    assert PERSONAL_VALUE not in caplog.text and "RuntimeError" in caplog.text
    assert PERSONAL_VALUE not in database_text(loaded_engine)


def test_only_due_connectors_run(
    org_session: Session,
    loaded_engine: Engine,
    pull_settings: Settings,
    catalogue: Catalogue,
    feed: FeedServer,
) -> None:
    connector_id = make_feed(org_session, pull_settings, feed.url(), interval_minutes=30)
    disabled = make_feed(org_session, pull_settings, feed.url(), name="off")
    with session_scope(loaded_engine) as session:
        off = session.get(Connector, disabled)
        assert off is not None
        off.enabled = False
    assert [
        r.connector_id for r in run_due_connectors(loaded_engine, pull_settings, catalogue, NOW, **FAST)
    ] == [connector_id]
    assert (
        run_due_connectors(loaded_engine, pull_settings, catalogue, NOW + timedelta(minutes=29), **FAST) == []
    )
    later = run_due_connectors(loaded_engine, pull_settings, catalogue, NOW + timedelta(minutes=30), **FAST)
    assert [r.result for r in later] == ["unchanged"]
    assert connector_row(loaded_engine, connector_id).next_run_at == NOW + timedelta(minutes=60)


@pytest.fixture
def tls_feed(tmp_path: Path) -> Iterator[tuple[FeedServer, Path]]:
    """An https feed on 127.0.0.1 with a fresh self-signed certificate, and the certificate."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    make_cert = [
        "openssl",
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=127.0.0.1",
    ]
    make_cert += ["-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)]
    subprocess.run(make_cert, check=True, capture_output=True)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = FeedServer(tls=context)
    yield server, cert
    server.close()


def test_https_feed_verifies_the_certificate(
    org_session: Session,
    loaded_engine: Engine,
    settings: Settings,
    catalogue: Catalogue,
    tls_feed: tuple[FeedServer, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    feed, cert = tls_feed
    connector_id = make_feed(org_session, settings, feed.url())  # https: no allow_http needed
    run = pull(loaded_engine, settings, catalogue, connector_id)
    assert (run.result, run.attempts) == ("failed", 1)  # an untrusted certificate is not retried
    assert run.message is not None and "TLS" in run.message
    assert feed.seen == []
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # now the system trust store holds it
    run = pull(loaded_engine, settings, catalogue, connector_id)
    assert run.result == "accepted", run.message


# --- configuration -------------------------------------------------------------------------


BAD_CONFIGURATIONS: list[tuple[dict[str, object], str]] = [
    ({"url": "http://feeds.example/x"}, "https://"),
    ({"url": "ftp://feeds.example/x"}, "https://"),
    ({"url": "https://user:pw@feeds.example/x"}, "no credentials"),
    ({"url": "https:///x"}, "no host"),
    ({"url": "https://feeds.example:99999/x"}, "invalid port"),
    ({"url": "https://feeds.example/x", "credential_env": "Bearer abc"}, "NAME of an environment"),
    ({"url": "https://feeds.example/x", "credential_env": "HUB_SECRET_KEY"}, "HUB_*"),
    ({"url": "https://feeds.example/x", "interval_minutes": 0}, "interval"),
    ({"folder": "/nonexistent/drop"}, "not an existing folder"),
    ({"folder": "/tmp", "credential_env": "TOKEN"}, "takes no credential"),
    ({}, "exactly one"),
    ({"url": "https://feeds.example/x", "folder": "/tmp"}, "exactly one"),
]


def test_add_connector_refuses_bad_configuration(org_session: Session, settings: Settings) -> None:
    for options, message in BAD_CONFIGURATIONS:
        with pytest.raises(HubError) as caught:
            add_connector(org_session, ORG, "feed", settings=settings, **options)  # type: ignore[arg-type]
        assert message in str(caught.value), options
        assert "abc" not in str(caught.value)  # a secret given by mistake is not repeated
        org_session.rollback()
    assert org_session.exec(select(func.count()).select_from(Connector)).one() == 0


def test_add_connector_names_are_unique_per_organisation(org_session: Session, settings: Settings) -> None:
    add_connector(org_session, ORG, "feed", settings=settings, url="https://feeds.example/x?token=abc")
    with pytest.raises(HubError, match="already has a connector named feed"):
        add_connector(org_session, ORG, "feed", settings=settings, url="https://feeds.example/y")
    with pytest.raises(HubError, match="connector name"):
        add_connector(org_session, ORG, "Bad Name", settings=settings, url="https://feeds.example/y")
    [row] = connector_overview(org_session)
    assert row.target == "https://feeds.example/x?..." and row.next_run_at is None  # due at once


# --- drop folders --------------------------------------------------------------------------


def _drop(folder: Path, name: str, data: bytes, age_seconds: float = 60.0) -> Path:
    path = folder / name
    path.write_bytes(data)
    old = time.time() - age_seconds
    os.utime(path, (old, old))
    return path


def test_drop_folder_moves_files_with_their_reports(
    org_session: Session, loaded_engine: Engine, settings: Settings, catalogue: Catalogue, tmp_path: Path
) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    connector = add_connector(org_session, ORG, "drop", settings=settings, folder=drop)
    org_session.commit()
    _drop(drop, "q2.json", JSON_FEED, age_seconds=120)
    _drop(drop, "contacts.csv", PERSONAL_FEED, age_seconds=90)
    _drop(drop, "q1.csv", CSV_FEED, age_seconds=60)
    partial = [
        _drop(drop, ".q3.csv", CSV_FEED),
        _drop(drop, "q3.csv.part", CSV_FEED),
        _drop(drop, "q3.csv.tmp", CSV_FEED),
        _drop(drop, "notes.txt", b"hello"),
        _drop(drop, "fresh.csv", CSV_FEED, age_seconds=0),
    ]
    run = run_connector(loaded_engine, settings, catalogue, connector.id or 0, NOW, settle_seconds=5.0)
    assert run.result == "rejected"
    assert run.message == "3 file(s): 2 accepted, 1 rejected"
    assert submissions(loaded_engine) == 2
    assert sorted(p.name for p in (drop / "processed").iterdir()) == [
        "q1.csv",
        "q1.csv.report.json",
        "q2.json",
        "q2.json.report.json",
    ]
    assert sorted(p.name for p in (drop / "rejected").iterdir()) == [
        "contacts.csv",
        "contacts.csv.report.json",
    ]
    report_text = (drop / "rejected" / "contacts.csv.report.json").read_text()
    report = json.loads(report_text)
    assert report["accepted"] is False and any(p["rule"] == "pd.email" for p in report["problems"])
    assert PERSONAL_VALUE not in report_text and "jane.doe" not in report_text
    assert json.loads((drop / "processed" / "q1.csv.report.json").read_text())["accepted"] is True
    assert all(p.exists() for p in partial)  # hidden, partial, foreign and fresh files left alone
    assert PERSONAL_VALUE not in database_text(loaded_engine)
    assert "contacts" not in database_text(loaded_engine)  # the submitter's file name is not stored

    (drop / "fresh.csv").unlink()
    _drop(drop, "q1.csv", CSV_FEED)  # the same file again: unchanged, kept under a new name
    again = run_connector(loaded_engine, settings, catalogue, connector.id or 0, NOW, settle_seconds=5.0)
    assert (again.result, again.message) == ("unchanged", "1 file(s): 1 unchanged")
    assert len(list((drop / "processed").glob("q1.*.csv"))) == 1


def test_empty_drop_folder_and_missing_folder(
    org_session: Session, loaded_engine: Engine, settings: Settings, catalogue: Catalogue, tmp_path: Path
) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    connector = add_connector(org_session, ORG, "drop", settings=settings, folder=drop)
    org_session.commit()
    assert run_connector(loaded_engine, settings, catalogue, connector.id or 0, NOW).result == "empty"
    drop.rmdir()
    run = run_connector(loaded_engine, settings, catalogue, connector.id or 0, NOW)
    assert run.result == "failed" and run.message is not None and "does not exist" in run.message


def test_oversize_file_in_drop_folder_is_rejected_unread(
    org_session: Session, loaded_engine: Engine, settings: Settings, catalogue: Catalogue, tmp_path: Path
) -> None:
    small = settings.model_copy(update={"max_upload_bytes": 1024})
    drop = tmp_path / "drop"
    drop.mkdir()
    connector = add_connector(org_session, ORG, "drop", settings=small, folder=drop)
    org_session.commit()
    _drop(drop, "big.csv", CSV_FEED + b"\n" * 2000)
    run = run_connector(loaded_engine, small, catalogue, connector.id or 0, NOW)
    assert run.result == "rejected"
    report = json.loads((drop / "rejected" / "big.csv.report.json").read_text())
    assert [p["rule"] for p in report["problems"]] == ["file.too_large"]


# --- command line ------------------------------------------------------------------------------


@pytest.mark.slow
def test_cli_add_list_run(cli_env: dict[str, str], feed: FeedServer, tmp_path: Path) -> None:
    # `connector add` a real process (the installed script reaches it); the rest in-process
    run_cli = hub_in_process
    env = {**cli_env, "HUB_CONNECTOR_ALLOW_HTTP": "true", "EXAMPLE_FEED_TOKEN": "Bearer cli-secret"}
    added = run_cli(env, "org", "add", ORG, "--name", "Example Platform", "--type", "company")
    assert added.returncode == 0, added.stderr
    result = hub_process(
        env,
        "connector",
        "add",
        ORG,
        "feed",
        "--url",
        feed.url(),
        "--credential-env",
        "EXAMPLE_FEED_TOKEN",
        "--every",
        "5",
    )
    assert result.returncode == 0, result.stderr
    assert "every 5 min" in result.stdout
    drop = tmp_path / "drop"
    drop.mkdir()
    assert run_cli(env, "connector", "add", ORG, "drop", "--folder", str(drop)).returncode == 0

    bad = run_cli(env, "connector", "add", ORG, "x", "--url", "ftp://feeds.example/")
    assert bad.returncode == 1 and bad.stderr.startswith("error: ") and "Traceback" not in bad.stderr
    assert run_cli(env, "connector", "run").returncode == 2  # usage: NAME, --all or --due

    listing = run_cli(env, "connector", "list")
    assert listing.returncode == 0, listing.stderr
    lines = listing.stdout.splitlines()
    assert lines[0] == "org\tname\tkind\ttarget\tlast_run\tresult\tnext_run\tmessage"
    assert [ln.split("\t")[:3] for ln in lines[1:]] == [[ORG, "drop", "folder"], [ORG, "feed", "http"]]
    assert all(ln.split("\t")[6] == "due" for ln in lines[1:])

    ran = run_cli(env, "connector", "run", "feed")
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.startswith(f"{ORG}/feed\taccepted\t")
    assert feed.seen[0].headers["authorization"] == "Bearer cli-secret"

    due = run_cli(env, "connector", "run", "--due")  # only the folder is still due
    assert due.returncode == 0, due.stderr
    assert due.stdout.splitlines() == [f"{ORG}/drop\tempty\tno complete file in the drop folder"]

    feed.replies = [Reply(status=500)]
    failing = run_cli({**env, "HUB_CONNECTOR_RETRIES": "0"}, "connector", "run", "--all")
    assert failing.returncode == 1
    assert f"{ORG}/feed\tfailed\tthe feed answered HTTP 500" in failing.stdout

    listing = run_cli(env, "connector", "list").stdout.splitlines()
    feed_line = next(ln for ln in listing if "\tfeed\t" in ln).split("\t")
    assert feed_line[5] == "failed" and feed_line[6] != "due" and feed_line[4] != "-"
    assert "cli-secret" not in "".join(listing)
