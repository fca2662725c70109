"""The REST API /api/v1 against a real server on 127.0.0.1 (waitress; werkzeug for streaming
bodies), on SQLite and PostgreSQL: tokens, submissions, idempotency, limits, lookups, errors.

Every refused request must store nothing, name its rule, and never echo the submitted value
in the response or the audit table.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from browser import serve_in_thread
from hubcli import HubCommands
from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select
from test_ingest_cli import SAMPLES, audit_table_text, counts
from werkzeug.serving import make_server

from dashboards.app import create_app
from hub.db import session_scope
from hub.models import ApiToken, AuditEvent, IdempotencyRecord, Submission
from hub.organisations import OrganisationIn, add_organisation, get_by_code
from hub.settings import Settings
from hub.tokens import authenticate, check_token, create_token, hash_token, list_tokens, revoke_token
from ingest.api import (
    MAX_OBSERVATIONS,
    SubmissionOut,
    SubmitResponse,
    claim_idempotency_key,
    openapi_document,
    request_hash,
)
from ingest.ratelimit import SlidingWindowLimiter

ORG, OTHER = "example-platform", "other-platform"
JSON_SAMPLE = (SAMPLES / "aggregate.json").read_bytes()
CSV_SAMPLE = (SAMPLES / "aggregate.csv").read_bytes()
EVENTS_SAMPLE = (SAMPLES / "events.csv").read_bytes()
JSON = "application/json"


@dataclass
class Reply:
    status: int
    headers: http.client.HTTPMessage
    text: str

    @property
    def json(self) -> Any:
        return json.loads(self.text)

    def rules(self) -> set[str]:
        return {p["rule"] for p in self.json["report"]["problems"]}


@dataclass
class Api:
    base: str
    engine: Engine
    database_url: str
    token: str  # ORG's
    other_token: str  # OTHER's

    def call(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        *,
        token: str | None = "",
        content_type: str | None = JSON,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        url = urlsplit(self.base)
        connection = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
        sent = dict(headers or {})
        if token is not None:
            sent["Authorization"] = f"Bearer {token or self.token}"
        if body is not None and content_type:
            sent["Content-Type"] = content_type
        try:
            connection.request(method, path, body=body, headers=sent)
            response = connection.getresponse()
            return Reply(response.status, response.headers, response.read().decode())
        finally:
            connection.close()

    def post(self, body: bytes, path: str = "/api/v1/submissions", **kwargs: Any) -> Reply:
        return self.call("POST", path, body, **kwargs)


def _document(observations: list[dict[str, Any]], reporter: str = ORG) -> bytes:
    return json.dumps({"schema_version": "1", "reporter": reporter, "observations": observations}).encode()


def _countries(n: int, period: str = "2025-03", base: int = 100) -> bytes:
    """``n`` valid observations of one month, one per country (the first n two-letter codes)."""
    import pycountry

    codes = sorted(c.alpha_2 for c in pycountry.countries)[:n]
    return _document(
        [
            {
                "period": period,
                "metric": "co_items_actioned",
                "country": code,
                "value": base + i,
                "unit": "count",
            }
            for i, code in enumerate(codes)
        ]
    )


def _setup(engine: Engine, settings: Settings) -> tuple[str, str]:
    with session_scope(engine) as session:
        tokens = []
        for code, name in ((ORG, "Example Platform"), (OTHER, "Other Platform")):
            org = add_organisation(session, OrganisationIn(code=code, name=name, stakeholder_type="company"))
            tokens.append(create_token(session, org, "test", days=settings.token_days)[0])
    return tokens[0], tokens[1]


@pytest.fixture
def serve(loaded_engine: Engine, settings: Settings) -> Callable[..., AbstractContextManager[Api]]:
    """Serve the whole hub app (dashboards + API) with optional settings overrides."""
    token, other = _setup(loaded_engine, settings)

    @contextmanager
    def start(server: str = "waitress", **overrides: Any) -> Iterator[Api]:
        app = create_app(loaded_engine, settings.model_copy(update=overrides)).server
        if server == "waitress":
            with serve_in_thread(app) as base:
                yield Api(base, loaded_engine, settings.database_url, token, other)
            return
        werkzeug = make_server("127.0.0.1", 0, app, threaded=True)
        thread = threading.Thread(target=werkzeug.serve_forever, daemon=True)
        thread.start()
        try:
            yield Api(
                f"http://127.0.0.1:{werkzeug.server_port}", loaded_engine, settings.database_url, token, other
            )
        finally:
            werkzeug.shutdown()
            thread.join(timeout=10)

    return start


@pytest.fixture
def api(serve: Callable[..., AbstractContextManager[Api]]) -> Iterator[Api]:
    with serve() as running:
        yield running


def _attempt_problems(api: Api) -> list[dict[str, int]]:
    """The problems counted by each ``submission.attempt`` audit line, oldest first."""
    with Session(api.engine) as session:
        events = session.exec(
            select(AuditEvent).where(AuditEvent.action == "submission.attempt").order_by(col(AuditEvent.id))
        ).all()
    return [e.details["problems"] for e in events]


def _nothing_leaked(api: Api, reply: Reply, secret: str) -> None:
    assert secret not in reply.text
    assert secret not in audit_table_text(api.database_url)


# --- tokens (domain) -------------------------------------------------------------------------


def test_tokens_are_random_hashed_expire_revoke_and_rotate(session: Session) -> None:
    org = add_organisation(
        session, OrganisationIn(code=ORG, name="Example Platform", stakeholder_type="company")
    )
    now = datetime(2026, 1, 1, tzinfo=UTC)
    first, row = create_token(session, org, "first", days=30, now=now)
    second, _ = create_token(session, org, "rotation", days=30, now=now)
    session.commit()
    assert first.startswith("hub_") and len(first) >= 40 and first != second
    assert row.token_hash == hash_token(first) and row.prefix == first[:12]
    stored = session.exec(select(ApiToken.token_hash, ApiToken.prefix)).all()
    assert all(first not in h and second not in h for h, _ in stored)
    # two live tokens at once (rotation)
    assert authenticate(session, first, now + timedelta(days=1)) is not None
    assert authenticate(session, second, now + timedelta(days=1)) is not None
    assert row.last_used_at == now + timedelta(days=1)
    assert authenticate(session, first + "x", now) is None
    assert check_token(session, "not-a-token", now).reason == "malformed"
    assert check_token(session, first, now + timedelta(days=30)).reason == "expired"
    revoke_token(session, row.id or 0, now=now + timedelta(days=2))
    session.commit()
    assert check_token(session, first, now + timedelta(days=3)).reason == "revoked"
    assert authenticate(session, second, now + timedelta(days=3)) is not None
    infos = list_tokens(session, org)
    assert [i.state(now + timedelta(days=3)) for i in infos] == ["revoked", "active"]
    assert not any(hasattr(i, "token_hash") for i in infos)
    events = session.exec(select(AuditEvent).where(col(AuditEvent.action).startswith("token."))).all()
    assert sorted(e.action for e in events) == ["token.create", "token.create", "token.revoke"]
    text = json.dumps([e.details for e in events])
    assert first not in text and second not in text and row.token_hash not in text


def test_token_cli_creates_lists_and_revokes(cli_env: dict[str, str]) -> None:
    run = HubCommands(cli_env, "token")  # one real process: the first `hub token`

    assert run("org", "add", ORG, "--name", "Example Platform", "--type", "company").returncode == 0
    created = run("token", "create", "--org", ORG, "--label", "nightly job", "--days", "7")
    assert created.returncode == 0, created.stderr
    token = next(line for line in created.stdout.splitlines() if line.startswith("hub_"))
    assert "only time" in created.stderr
    listed = run("token", "list", "--org", ORG)
    assert listed.returncode == 0 and "nightly job" in listed.stdout and "active" in listed.stdout
    assert token not in listed.stdout and token[:12] in listed.stdout
    assert run("token", "revoke", "1").returncode == 0
    assert "revoked" in run("token", "list").stdout
    assert run("token", "revoke", "99").returncode == 1
    assert run("token", "create", "--org", "nobody", "--label", "x").returncode == 1
    assert run("token", "create", "--org", ORG).returncode == 2  # no label: usage error


def test_rate_limiter_slides() -> None:
    now = [0.0]
    limiter = SlidingWindowLimiter(2, window=60, clock=lambda: now[0])
    assert limiter.hit("a") is None and limiter.hit("a") is None
    assert limiter.hit("a") == 60
    assert limiter.hit("b") is None  # keys are independent
    now[0] = 59.5
    assert limiter.hit("a") == 1
    now[0] = 60.0
    assert limiter.hit("a") is None


# --- submitting ------------------------------------------------------------------------------


def test_json_accepted_then_unchanged_and_looked_up(api: Api) -> None:
    first = api.post(JSON_SAMPLE)
    assert first.status == 201, first.text
    body = SubmitResponse.model_validate(first.json)
    assert body.result == "accepted" and body.submission is not None and body.observations == 3
    assert body.submission.version == 1 and body.submission.channel == "api"
    assert first.headers["Location"] == f"/api/v1/submissions/{body.submission.id}"
    assert first.headers["Cache-Control"] == "no-store"
    again = api.post(JSON_SAMPLE)
    assert again.status == 200 and again.json["result"] == "unchanged"
    assert again.json["submission"]["id"] == body.submission.id
    assert counts(api.database_url) == (1, 3)
    looked = api.call("GET", f"/api/v1/submissions/{body.submission.id}")
    assert looked.status == 200
    found = SubmissionOut.model_validate(looked.json)
    assert found.row_count == 3 and found.is_current and found.validation_report is not None
    assert found.validation_report.accepted and found.checksum == body.submission.checksum
    listed = api.call("GET", "/api/v1/submissions?scope=2025-Q2&limit=10")
    assert [s["id"] for s in listed.json["submissions"]] == [body.submission.id]
    assert api.call("GET", "/api/v1/submissions?limit=0").status == 400


def test_a_stored_batch_keeps_its_report_warnings_and_size(api: Api) -> None:
    """The version an API batch creates holds the report it was answered with (warnings
    included), its warning count and the body's size; the answer describes that stored row."""
    for month in ("2025-01", "2025-02", "2025-03"):
        assert api.post(_countries(3, month)).status == 201
    body = _countries(3, "2025-04", base=100_000)  # far above each country's history
    reply = api.post(body)
    assert reply.status == 201, reply.text
    assert reply.json["report"]["warning_count"] == 3
    with Session(api.engine) as session:
        stored = session.get(Submission, reply.json["submission"]["id"])
        assert stored is not None
        assert stored.file_size == len(body) and stored.warning_count == 3
        assert stored.validation_report == reply.json["report"]
        assert reply.json["submission"]["warning_count"] == 3
        assert reply.json["submission"]["validation_report"] == reply.json["report"]


def test_csv_aggregate_and_event_files_accepted(api: Api) -> None:
    aggregate = api.post(CSV_SAMPLE, content_type="text/csv")
    assert aggregate.status == 201, aggregate.text
    assert aggregate.json["report"]["format"] == "aggregate-csv"
    events = api.post(EVENTS_SAMPLE, content_type="text/csv; charset=utf-8")
    assert events.status == 201, events.text
    assert events.json["report"]["format"] == "events"


def test_restatement_needs_a_reason_and_supersedes(api: Api) -> None:
    first = api.post(_countries(3))
    assert first.status == 201
    changed = _countries(3, base=500)
    refused = api.post(changed)
    assert refused.status == 422 and "scope.already_reported" in refused.rules()
    restated = api.post(changed, path="/api/v1/submissions?reason=corrected%20double%20count")
    assert restated.status == 201, restated.text
    new = restated.json["submission"]
    assert new["version"] == 2 and new["supersedes_id"] == first.json["submission"]["id"]
    old = api.call("GET", f"/api/v1/submissions/{new['supersedes_id']}").json
    assert old["superseded_by_id"] == new["id"] and old["is_current"] is False


def test_organisation_comes_from_the_token_not_the_body(api: Api) -> None:
    # ORG's token with OTHER named in the body: refused per record
    document = json.loads(JSON_SAMPLE)
    document["reporter"] = OTHER
    reply = api.post(json.dumps(document).encode())
    assert reply.status == 422
    problems = reply.json["report"]["problems"]
    assert {(p["row"], p["column"], p["rule"]) for p in problems} == {
        (n, "reporter", "reporter.mismatch") for n in (1, 2, 3)
    }
    # OTHER's token with ORG's own sample: refused too
    assert "reporter.mismatch" in api.post(JSON_SAMPLE, token=api.other_token).rules()
    assert counts(api.database_url) == (0, 0)


def test_every_record_and_field_error_is_reported(api: Api) -> None:
    body = _document(
        [
            {"period": "2025-Q2", "metric": "co_items_actioned", "value": 10, "unit": "count"},
            {
                "period": "2025-Q2",
                "metric": "co_items_actioned",
                "category": "csam",
                "value": -5,
                "unit": "count",
            },
            {"period": "2025-Q2", "metric": "no_such_metric", "value": 1, "unit": "count"},
            {
                "period": "2025-Q2",
                "metric": "co_items_actioned",
                "content_type": "video",
                "value": 1,
                "unit": "hours",
            },
        ]
    )
    reply = api.post(body)
    assert reply.status == 422 and reply.json["result"] == "rejected"
    found = {(p["row"], p["column"], p["rule"]) for p in reply.json["report"]["problems"]}
    assert {
        (2, "value", "value.negative"),
        (3, "metric", "metric.unknown"),
        (4, "unit", "unit.mismatch"),
    } <= found
    assert all(p["hint"] for p in reply.json["report"]["problems"])
    assert counts(api.database_url) == (0, 0)


@pytest.mark.parametrize(
    ("field", "secret", "rule"),
    [("category", "jane.doe@example.org", "pd.email"), ("service", "198.51.100.23", "pd.ipv4")],
)
def test_personal_data_is_refused_and_never_echoed(api: Api, field: str, secret: str, rule: str) -> None:
    body = _document(
        [{"period": "2025-Q2", "metric": "co_items_actioned", field: secret, "value": 3, "unit": "count"}]
    )
    reply = api.post(body)
    assert reply.status == 422 and rule in reply.rules()
    _nothing_leaked(api, reply, secret)
    assert counts(api.database_url) == (0, 0)


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_json_numbers_are_refused(api: Api, constant: str) -> None:
    body = (
        '{"schema_version": "1", "reporter": "example-platform", "observations": '
        f'[{{"period": "2025-Q2", "metric": "co_items_actioned", "value": {constant}, "unit": "count"}}]}}'
    ).encode()
    reply = api.post(body)
    assert reply.status == 422 and "value.not_finite" in reply.rules()
    assert counts(api.database_url) == (0, 0)


def test_dry_run_stores_nothing(api: Api) -> None:
    reply = api.post(JSON_SAMPLE, path="/api/v1/submissions?dry_run=true")
    assert reply.status == 200 and reply.json["result"] == "dry_run" and reply.json["observations"] == 3
    assert reply.json["submission"] is None
    assert counts(api.database_url) == (0, 0)
    assert api.post(JSON_SAMPLE, path="/api/v1/submissions?dry_run=maybe").status == 400


def test_every_attempt_leaves_one_audit_line(api: Api) -> None:
    api.post(JSON_SAMPLE)
    api.post(b"{not json")
    api.post(_document([]))
    with Session(api.engine) as session:
        results = session.exec(
            select(AuditEvent.outcome)
            .where(AuditEvent.action == "submission.attempt")
            .order_by(col(AuditEvent.id))
        ).all()
    assert list(results) == ["accepted", "rejected", "rejected"]


# --- batches and bodies ------------------------------------------------------------------------


def test_batch_over_the_limit_is_refused_before_any_row_is_validated(api: Api) -> None:
    secret = "over.limit@example.org"
    observations = json.loads(_countries(1))["observations"] * (MAX_OBSERVATIONS + 1)
    observations[0]["category"] = secret
    reply = api.post(_document(observations))
    assert reply.status == 422 and reply.rules() == {"batch.too_large"}
    _nothing_leaked(api, reply, secret)
    rows = CSV_SAMPLE.splitlines()
    big_csv = b"\n".join([rows[0], *[rows[1]] * (MAX_OBSERVATIONS + 1)])
    assert api.post(big_csv, content_type="text/csv").rules() == {"batch.too_large"}
    assert counts(api.database_url) == (0, 0)


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (_document([]), JSON),
        (b"", JSON),
        (b"   \n", "text/csv"),
        (CSV_SAMPLE.splitlines()[0] + b"\n", "text/csv"),
    ],
    ids=["no-observations", "empty-json", "blank-csv", "header-only-csv"],
)
def test_empty_batch_is_refused(api: Api, body: bytes, content_type: str) -> None:
    reply = api.post(body, content_type=content_type)
    assert reply.status == 422 and reply.rules() == {"batch.empty"}
    assert counts(api.database_url) == (0, 0)


def test_malformed_json_is_400_and_wrong_type_415(api: Api) -> None:
    reply = api.post(b"reporter=example-platform&value=1")
    assert reply.status == 400 and "json.invalid" in reply.rules()
    wrong = api.post(b"<xml/>", content_type="application/xml")
    assert wrong.status == 415 and wrong.json["error"] == "body.content_type"
    assert api.post(JSON_SAMPLE, content_type=None).status == 415
    assert counts(api.database_url) == (0, 0)
    assert _attempt_problems(api) == [{"json.invalid": 1}, {"body.content_type": 1}, {"body.content_type": 1}]


@pytest.mark.parametrize("server", ["waitress", "werkzeug"])
def test_oversized_body_with_content_length_is_413(serve: Any, server: str) -> None:
    with serve(server, max_upload_bytes=4096) as api:
        padding = b" " * 5000
        reply = api.post(JSON_SAMPLE[:-2] + padding + b"}\n")
        assert reply.status == 413 and reply.json["error"] == "body.too_large"
        assert reply.headers["Content-Type"] == "application/json"
        assert counts(api.database_url) == (0, 0)
        assert _attempt_problems(api) == [{"body.too_large": 1}]


def test_declared_huge_body_is_refused_without_reading_it(serve: Any) -> None:
    # werkzeug hands the request over as soon as the headers arrive: the answer comes back
    # although not one byte of the announced gigabyte was sent
    with serve("werkzeug", max_upload_bytes=4096) as api:
        url = urlsplit(api.base)
        with socket.create_connection((url.hostname or "", url.port or 0), timeout=10) as sock:
            sock.sendall(
                (
                    "POST /api/v1/submissions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                    f"Authorization: Bearer {api.token}\r\nContent-Length: 1000000000\r\n\r\n"
                ).encode()
            )
            answer = sock.recv(65536).decode()
        assert answer.startswith("HTTP/1.1 413")


@pytest.mark.parametrize("server", ["waitress", "werkzeug"])
def test_oversized_chunked_body_without_content_length_is_413(serve: Any, server: str) -> None:
    with serve(server, max_upload_bytes=4096) as api:
        url = urlsplit(api.base)
        connection = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
        chunks = iter([JSON_SAMPLE[:-2]] + [b" " * 1000] * 6 + [b"}\n"])
        connection.request(
            "POST",
            "/api/v1/submissions",
            body=chunks,
            headers={"Authorization": f"Bearer {api.token}", "Content-Type": JSON},
            encode_chunked=True,
        )
        response = connection.getresponse()
        body = response.read()
        connection.close()
        assert response.status == 413, body
        assert json.loads(body)["error"] == "body.too_large"
        # a small chunked body is read whole and accepted
        connection = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
        connection.request(
            "POST",
            "/api/v1/submissions",
            body=iter([JSON_SAMPLE[:100], JSON_SAMPLE[100:]]),
            headers={"Authorization": f"Bearer {api.token}", "Content-Type": JSON},
            encode_chunked=True,
        )
        small = connection.getresponse()
        assert small.status == 201, small.read()
        connection.close()


# --- idempotency ---------------------------------------------------------------------------------


def test_idempotency_key_replays_refuses_other_payload_and_is_per_organisation(api: Api) -> None:
    key = {"Idempotency-Key": "batch-2025-Q2-0001"}
    first = api.post(JSON_SAMPLE, headers=key)
    assert first.status == 201 and "Idempotent-Replayed" not in first.headers
    replay = api.post(JSON_SAMPLE, headers=key)
    assert replay.status == 201 and replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json == first.json
    other_payload = api.post(_countries(2), headers=key)
    assert other_payload.status == 422 and other_payload.json["error"] == "idempotency.key_reused"
    # the same key is another organisation's own, unrelated key
    theirs = api.post(
        _document(json.loads(JSON_SAMPLE)["observations"], OTHER), token=api.other_token, headers=key
    )
    assert theirs.status == 201, theirs.text
    assert counts(api.database_url) == (2, 6)
    assert api.post(JSON_SAMPLE, headers={"Idempotency-Key": "has space"}).status == 400
    assert api.post(JSON_SAMPLE, headers={"Idempotency-Key": "k" * 129}).status == 400


def test_idempotent_rejection_is_replayed_too(api: Api) -> None:
    key = {"Idempotency-Key": "bad-one"}
    first = api.post(_countries(1, period="2099-01"), headers=key)
    assert first.status == 422
    again = api.post(_countries(1, period="2099-01"), headers=key)
    assert again.status == 422 and again.json == first.json and again.headers["Idempotent-Replayed"] == "true"


def test_retry_while_the_first_is_running_is_409_and_a_stale_claim_is_taken_over(api: Api) -> None:
    with session_scope(api.engine) as session:
        org_id = get_by_code(session, ORG).id or 0
        digest = request_hash(JSON_SAMPLE, JSON, False, None)
        session.add(IdempotencyRecord(organisation_id=org_id, key="running", request_hash=digest))
        session.add(
            IdempotencyRecord(
                organisation_id=org_id,
                key="abandoned",
                request_hash=digest,
                created_at=datetime.now(UTC) - timedelta(hours=1),
            )
        )
    busy = api.post(JSON_SAMPLE, headers={"Idempotency-Key": "running"})
    assert busy.status == 409 and busy.json["error"] == "idempotency.in_progress"
    assert counts(api.database_url) == (0, 0)
    taken = api.post(JSON_SAMPLE, headers={"Idempotency-Key": "abandoned"})
    assert taken.status == 201, taken.text
    with Session(api.engine) as session:
        record = session.exec(select(IdempotencyRecord).where(IdempotencyRecord.key == "abandoned")).one()
        assert record.state == "completed" and record.response_status == 201
        assert record.submission_id == taken.json["submission"]["id"]


def test_claiming_a_key_twice_the_second_sees_it_in_progress(api: Api) -> None:
    with Session(api.engine) as session:
        org_id = get_by_code(session, ORG).id or 0
    now = datetime.now(UTC)
    first = claim_idempotency_key(api.engine, org_id, "k1", "a" * 64, now)
    second = claim_idempotency_key(api.engine, org_id, "k1", "a" * 64, now)
    assert (first.state, second.state) == ("claimed", "in_progress")
    assert claim_idempotency_key(api.engine, org_id, "k1", "b" * 64, now).state == "mismatch"


@pytest.mark.slow
def test_concurrent_requests_with_one_key_store_once(api: Api) -> None:
    replies: list[Reply] = []
    body = _countries(100)

    def send() -> None:
        replies.append(api.post(body, headers={"Idempotency-Key": "race"}))

    threads = [threading.Thread(target=send) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    statuses = sorted(r.status for r in replies)
    assert statuses.count(201) >= 1 and set(statuses) <= {201, 409}
    assert counts(api.database_url) == (1, 100)


# --- lookups, auth, limits, errors ----------------------------------------------------------------


def test_other_organisations_submission_is_404(api: Api) -> None:
    mine = api.post(JSON_SAMPLE).json["submission"]["id"]
    assert api.call("GET", f"/api/v1/submissions/{mine}", token=api.other_token).status == 404
    assert api.call("GET", "/api/v1/submissions/999999").status == 404
    assert api.call("GET", "/api/v1/submissions", token=api.other_token).json == {"submissions": []}


def test_missing_bad_expired_or_revoked_token_is_401_and_audited(api: Api) -> None:
    wrong = "hub_" + "A" * 43
    for token, headers in ((None, {}), (wrong, {}), (None, {"Authorization": "Basic dXNlcjpwYXNz"})):
        reply = api.post(JSON_SAMPLE, token=token, headers=headers)
        assert reply.status == 401 and reply.headers["WWW-Authenticate"].startswith("Bearer")
        assert reply.json["error"] == "auth.invalid_token"
    with session_scope(api.engine) as session:
        row = session.exec(select(ApiToken).where(ApiToken.token_hash == hash_token(api.token))).one()
        revoke_token(session, row.id or 0)
    assert api.post(JSON_SAMPLE).status == 401
    assert api.call("GET", "/api/v1/submissions").status == 401
    assert counts(api.database_url) == (0, 0)
    with Session(api.engine) as session:
        failed = session.exec(select(AuditEvent).where(AuditEvent.action == "api.auth_failed")).all()
    assert sorted(e.details["reason"] for e in failed) == [
        "malformed",
        "missing",
        "revoked",
        "revoked",
        "unknown",
    ]
    audit_text = audit_table_text(api.database_url)
    assert wrong not in audit_text and api.token not in audit_text


def test_expired_token_is_401(api: Api) -> None:
    with session_scope(api.engine) as session:
        row = session.exec(select(ApiToken).where(ApiToken.token_hash == hash_token(api.token))).one()
        row.created_at = datetime.now(UTC) - timedelta(days=10)
        row.expires_at = datetime.now(UTC) - timedelta(seconds=1)
        session.add(row)
    assert api.post(JSON_SAMPLE).status == 401


def test_rate_limits_per_token_and_per_address(serve: Any) -> None:
    with serve(api_rate_per_minute=3) as api:
        statuses = [api.call("GET", "/api/v1/submissions").status for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        limited = api.call("GET", "/api/v1/submissions")
        assert limited.json["error"] == "rate.limited" and 1 <= int(limited.headers["Retry-After"]) <= 60
        assert api.call("GET", "/api/v1/submissions", token=api.other_token).status == 200  # per token
    with serve(api_rate_per_minute_per_address=3) as api:
        guesses = [api.call("GET", "/api/v1/submissions", token=f"hub_guess{i}").status for i in range(4)]
        assert guesses == [401, 401, 401, 429]  # token guessing is throttled per address
        assert api.call("GET", "/api/v1/submissions").status == 429
    with Session(api.engine) as session:
        failed = session.exec(
            select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "api.auth_failed")
        ).one()
    assert failed == 3


def test_errors_are_json_and_never_cached(api: Api) -> None:
    for method, path, status in (
        ("GET", "/api/v1/nothing-here", 404),
        ("POST", "/api/v1/nothing-here", 404),
        ("DELETE", "/api/v1/submissions", 405),
        ("PUT", "/api/v1/submissions/1", 405),
    ):
        reply = api.call(method, path, b"{}" if method != "GET" else None)
        assert reply.status == status, (method, path, reply.text)
        assert reply.headers["Content-Type"] == "application/json"
        assert reply.headers["Cache-Control"] == "no-store"
        assert "error" in reply.json
    assert api.call("GET", "/healthz", token=None).status == 200  # the rest of the app is untouched


def test_openapi_document_is_public_and_generated_from_the_models(api: Api) -> None:
    reply = api.call("GET", "/api/v1/openapi.json", token=None)
    assert reply.status == 200
    document = reply.json
    assert document == json.loads(json.dumps(openapi_document()))
    assert document["openapi"].startswith("3.1")
    assert {"/submissions", "/submissions/{submission_id}"} <= set(document["paths"])
    schemas = document["components"]["schemas"]
    assert {
        "AggregateSubmission",
        "AggregateObservation",
        "SubmitResponse",
        "SubmissionOut",
        "ErrorOut",
    } <= set(schemas)
    post = document["paths"]["/submissions"]["post"]
    assert {"201", "200", "400", "401", "409", "413", "415", "422", "429"} <= set(post["responses"])
    refs: list[str] = []

    def collect(node: Any) -> None:
        if isinstance(node, dict):
            refs.extend(v for k, v in node.items() if k == "$ref")
            for value in node.values():
                collect(value)
        elif isinstance(node, list):
            for value in node:
                collect(value)

    collect(document)
    assert refs and all(r.removeprefix("#/components/schemas/") in schemas for r in refs)
    schema = api.call("GET", "/api/v1/schemas/aggregate.json", token=None)
    assert schema.status == 200 and schema.json["properties"]["schema_version"]
    # a real answer fits the published response model
    SubmitResponse.model_validate(api.post(JSON_SAMPLE, path="/api/v1/submissions?dry_run=1").json)


def test_submission_count_unchanged_by_refused_requests(api: Api) -> None:
    """A sweep of refused requests: each names its rule and leaves the tables as they were."""
    with Session(api.engine) as session:
        before = session.exec(select(func.count()).select_from(Submission)).one()
    cases: list[tuple[bytes, str, int]] = [
        (b"\xff\xfe{\x00}\x00", JSON, 422),
        (b'{"schema_version": "1", "reporter": "example-platform"}', JSON, 422),
        (b"[1, 2, 3]", JSON, 422),
        (b"a,b\n1,2\n", "text/csv", 422),
    ]
    for body, content_type, status in cases:
        assert api.post(body, content_type=content_type).status == status, body
    with Session(api.engine) as session:
        assert session.exec(select(func.count()).select_from(Submission)).one() == before
