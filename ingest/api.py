"""The REST API of submissions, ``/api/v1/`` (issue 3): a thin Flask layer over the pipeline.

- The organisation comes from the bearer token (hub/tokens.py), never from the body; a
  different ``reporter`` in the body is a per-record ``reporter.mismatch`` error.
- A POST is one batch, all or nothing, through :func:`ingest.pipeline.ingest_bytes` like
  every other channel (one audit line per attempt). Its size is checked before anything is
  parsed: the body by Content-Length (or by reading at most limit + 1 bytes when there is
  none), then the number of observations or events, before any row is validated.
- ``Idempotency-Key``: the first request claims the key in its own committed transaction
  (a unique (organisation, key) constraint makes a racing duplicate fail); the response is
  stored in the same transaction as the submission, so a replay returns exactly what the
  first request answered.
- Every answer under /api/v1 is JSON with ``Cache-Control: no-store``, errors included.

The handlers only translate HTTP to the plain functions below (:func:`submit`,
:func:`claim_idempotency_key`, :func:`submission_out`, ...), which take an engine or a
session and are tested on both database backends.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import io
import json
import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import flask
from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import models_json_schema
from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from hub import audit
from hub.catalogue import Catalogue, load_catalogue
from hub.db import session_scope
from hub.models import IdempotencyRecord, Submission
from hub.settings import Settings
from hub.tokens import check_token
from ingest.formats import AggregateSubmission, aggregate_json_schema
from ingest.pipeline import IngestResult, ingest_bytes
from ingest.ratelimit import SlidingWindowLimiter
from ingest.report import ValidationReport

API_PREFIX = "/api/v1"
MAX_OBSERVATIONS = 1_000  # per aggregate batch (JSON or CSV)
MAX_EVENTS = 100_000  # per event CSV
MAX_LIST = 500
IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e]{1,128}")  # printable ASCII, no spaces
STALE_CLAIM = timedelta(minutes=10)  # an in-progress key older than this was abandoned (process died)
CONTENT_TYPES = {"application/json": "submission.json", "text/csv": "submission.csv"}
TRUE, FALSE = {"true", "1", "yes"}, {"false", "0", "no", ""}

logger = logging.getLogger(__name__)


# --- response models: the OpenAPI document is generated from these --------------------------


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ProblemOut(_Out):
    """One broken rule: where (row, column), which rule and how to fix it; never the value."""

    row: int = Field(description="CSV file line or JSON record number (1-based); 0 = the whole batch")
    column: str = Field(description="the column or field; empty when the problem is the whole row or batch")
    rule: str = Field(description="machine-readable rule, e.g. value.negative, reporter.mismatch")
    hint: str = Field(description="how to fix it")
    severity: Literal["error", "warning"]


class WarningOut(_Out):
    """A plausibility warning: stored with the figures, it does not block them; never the value."""

    row: int = Field(description="CSV file line or JSON record number (1-based); 0 = not one row")
    column: str
    rule: str = Field(description="e.g. plausibility.far_above_history")
    hint: str


class ValidationReportOut(_Out):
    """Every problem of a batch (the same report as ``hub ingest --report-json``)."""

    schema_version: Literal["1"]
    source_name: str
    format: str = Field(description="aggregate-json, aggregate-csv, events or unknown")
    rows: int
    accepted: bool
    error_count: int
    warning_count: int
    problems: list[ProblemOut] = Field(description="errors and warnings together")
    warnings: list[WarningOut] = Field(description="the warnings again, on their own")


class SubmissionOut(_Out):
    """A stored submission version of the token's organisation."""

    id: int
    organisation: str
    scope: str = Field(description="the period covered, or first..last")
    version: int
    status: str
    channel: str
    received_at: datetime
    supersedes_id: int | None = Field(description="the version this one restates")
    supersede_reason: str | None
    superseded_by_id: int | None = Field(description="the newer version restating this one, if any")
    is_current: bool
    row_count: int
    checksum: str = Field(description="SHA-256 of the submitted bytes")
    warning_count: int
    validation_report: ValidationReportOut | None = Field(
        description="the report kept with the submission (null for channels that keep none)"
    )


class SubmitResponse(_Out):
    """The answer to a POST: the result, the validation report and the stored submission."""

    result: Literal["accepted", "unchanged", "dry_run", "rejected"]
    observations: int = Field(description="observations stored (or, in a dry run, that would be)")
    submission: SubmissionOut | None
    report: ValidationReportOut


class SubmissionList(_Out):
    """The organisation's own submissions, newest first."""

    submissions: list[SubmissionOut]


class ErrorOut(_Out):
    """An error that is not about the batch's content (auth, size, type, rate, conflict)."""

    error: str = Field(description="machine-readable code, e.g. auth.invalid_token, body.too_large")
    message: str


# --- plain functions -------------------------------------------------------------------------


class ApiError(Exception):
    """An error answer: HTTP status, code and message (and extra headers)."""

    def __init__(self, status: int, error: str, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.error = error
        self.message = message
        self.headers = headers or {}


@dataclass(frozen=True)
class Caller:
    """The authenticated organisation behind a request."""

    token_id: int
    organisation_id: int
    organisation_code: str


@dataclass(frozen=True)
class ApiResponse:
    status: int
    body: dict[str, Any]


def authenticate_request(session: Session, authorization: str | None, now: datetime) -> Caller:
    """The caller of an ``Authorization: Bearer`` header; raises 401 (and audits why) otherwise."""
    scheme, _, value = (authorization or "").partition(" ")
    reason = "missing" if not authorization else "malformed"
    token = None
    if scheme.lower() == "bearer" and value.strip():
        result = check_token(session, value.strip(), now)
        reason, token = result.reason, result.token
        if reason == "ok" and token is not None and token.id is not None:
            return Caller(token.id, token.organisation_id, result.organisation_code)
    audit.record(
        session,
        "api.auth_failed",
        actor_label="api",
        organisation_id=None if token is None else token.organisation_id,
        object_type=None if token is None else "api_token",
        object_id=None if token is None else token.id,
        outcome="denied",
        details={"reason": reason},  # never the presented value
    )
    raise ApiError(
        401,
        "auth.invalid_token",
        "give a valid, unexpired API token: Authorization: Bearer <token>",
        {"WWW-Authenticate": 'Bearer realm="hub", error="invalid_token"'},
    )


def request_hash(body: bytes, content_type: str, dry_run: bool, reason: str | None) -> str:
    """What makes two requests the same for an Idempotency-Key: the body and its options."""
    digest = hashlib.sha256()
    options = json.dumps([content_type, dry_run, reason or ""]).encode()
    digest.update(len(options).to_bytes(4, "big") + options)
    digest.update(body)
    return digest.hexdigest()


@dataclass(frozen=True)
class Claim:
    """The state of an Idempotency-Key when a request arrives."""

    state: Literal["claimed", "replay", "in_progress", "mismatch"]
    record_id: int | None = None
    response: ApiResponse | None = None


def claim_idempotency_key(
    engine: Engine, organisation_id: int, key: str, digest: str, now: datetime
) -> Claim:
    """Claim ``key`` for this request in its own committed transaction, or say why not.

    The unique (organisation, key) constraint decides between two racing first requests: the
    loser sees the winner's record. A claim older than :data:`STALE_CLAIM` belonged to a
    process that died; it is taken over by whoever updates it first.
    """
    for _ in range(3):
        try:
            with session_scope(engine) as session:
                record = session.exec(
                    select(IdempotencyRecord).where(
                        IdempotencyRecord.organisation_id == organisation_id, IdempotencyRecord.key == key
                    )
                ).first()
                if record is None:
                    record = IdempotencyRecord(
                        organisation_id=organisation_id, key=key, request_hash=digest, created_at=now
                    )
                    session.add(record)
                    session.flush()
                    return Claim("claimed", record.id)
                if record.request_hash != digest:
                    return Claim("mismatch")
                if record.state == "completed":
                    assert record.response_status is not None and record.response_body is not None
                    return Claim(
                        "replay", record.id, ApiResponse(record.response_status, record.response_body)
                    )
                taken = session.execute(
                    update(IdempotencyRecord)
                    .where(
                        col(IdempotencyRecord.id) == record.id,
                        col(IdempotencyRecord.state) == "in_progress",
                        col(IdempotencyRecord.created_at) < now - STALE_CLAIM,
                    )
                    .values(created_at=now)
                )
                if taken.rowcount == 1:  # type: ignore[attr-defined]
                    return Claim("claimed", record.id)
                return Claim("in_progress", record.id)
        except IntegrityError:
            continue  # a concurrent first request inserted the key: read its record
    return Claim("in_progress")


def release_idempotency_key(engine: Engine, record_id: int) -> None:
    """Forget a claim whose request failed unexpectedly, so that a retry can run."""
    with session_scope(engine) as session:
        record = session.get(IdempotencyRecord, record_id)
        if record is not None and record.state == "in_progress":
            session.delete(record)


def _complete_key(session: Session, record_id: int, response: ApiResponse, submission_id: int | None) -> None:
    session.execute(
        update(IdempotencyRecord)
        .where(col(IdempotencyRecord.id) == record_id)
        .values(
            state="completed",
            response_status=response.status,
            response_body=response.body,
            submission_id=submission_id,
            completed_at=datetime.now(UTC),
        )
    )


def submission_out(
    session: Session, submission: Submission, organisation_code: str, *, just_created: bool = False
) -> SubmissionOut:
    """The API's view of a submission; ``just_created`` skips looking for a newer version."""
    assert submission.id is not None
    newer = None
    if not just_created:
        newer = session.exec(select(Submission.id).where(Submission.supersedes_id == submission.id)).first()
    report = submission.validation_report
    return SubmissionOut(
        id=submission.id,
        organisation=organisation_code,
        scope=submission.scope,
        version=submission.version,
        status=submission.status,
        channel=submission.channel,
        received_at=submission.received_at,
        supersedes_id=submission.supersedes_id,
        supersede_reason=submission.supersede_reason,
        superseded_by_id=newer,
        is_current=newer is None,
        row_count=submission.row_count,
        checksum=submission.checksum,
        warning_count=submission.warning_count,
        validation_report=None if report is None else ValidationReportOut.model_validate(report),
    )


def get_own_submission(session: Session, caller: Caller, submission_id: int) -> SubmissionOut | None:
    """The caller's own submission, or None (another organisation's is as absent as a missing one)."""
    submission = session.exec(
        select(Submission).where(
            Submission.id == submission_id, Submission.organisation_id == caller.organisation_id
        )
    ).first()
    return None if submission is None else submission_out(session, submission, caller.organisation_code)


def list_own_submissions(session: Session, caller: Caller, scope: str | None, limit: int) -> SubmissionList:
    query = select(Submission).where(Submission.organisation_id == caller.organisation_id)
    if scope:
        query = query.where(Submission.scope == scope)
    rows = session.exec(query.order_by(col(Submission.id).desc()).limit(limit)).all()
    return SubmissionList(submissions=[submission_out(session, s, caller.organisation_code) for s in rows])


def batch_problem(body: bytes, content_type: str) -> tuple[str, str] | None:
    """(rule, hint) when the batch is empty or over its limit, counted before any row is validated.

    Bodies this cannot read (not UTF-8, not JSON, no observation list) pass: the pipeline
    reports those with its own rules.
    """
    try:
        text = body.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError:
        return None
    if not text.strip():
        return "batch.empty", "the batch holds no observation"
    if content_type == "application/json":
        try:
            doc = json.loads(text, parse_constant=lambda _name: None)
        except (ValueError, RecursionError):
            return None
        records = doc.get("observations") if isinstance(doc, dict) else None
        if not isinstance(records, list):
            return None
        count, limit, what = len(records), MAX_OBSERVATIONS, "observations"
    else:
        if "\x00" in text:
            return None
        reader = csv.reader(io.StringIO(text))
        header = next(reader, [])
        events = bool({"case_ref", "received_at"} & set(header))
        limit, what = (MAX_EVENTS, "events") if events else (MAX_OBSERVATIONS, "observations")
        count = 0
        try:
            for row in reader:
                if row:
                    count += 1
                    if count > limit:
                        break
        except csv.Error:
            return None
    if count == 0:
        return "batch.empty", f"the batch holds no {what}"
    if count > limit:
        return "batch.too_large", f"send at most {limit:,} {what} per request; split the batch"
    return None


def _report_response(
    session: Session, caller: Caller, result: IngestResult, dry_run: bool
) -> tuple[ApiResponse, int | None]:
    """The answer to an ingest, and the id of the submission it names."""
    report = result.report
    # the pipeline stored the report (warnings included), its warning count and the body's size
    # with the version it created: the row it hands back is the answer, no read or write here
    submission: Submission | None = None
    if result.submission_id is not None:
        submission = result.submission or session.get(Submission, result.submission_id)
    if not report.ok:
        status, outcome = (400 if any(p.rule == "json.invalid" for p in report.errors) else 422), "rejected"
    elif dry_run:
        status, outcome = 200, "dry_run"
    elif result.created:
        status, outcome = 201, "accepted"
    else:
        status, outcome = 200, "unchanged"
    body = SubmitResponse(
        result=outcome,
        observations=result.observations,
        submission=None
        if submission is None
        else submission_out(session, submission, caller.organisation_code, just_created=result.created),
        report=ValidationReportOut.model_validate(report.to_dict()),
    )
    return ApiResponse(status, body.model_dump(mode="json")), result.submission_id


def audit_refused_attempt(session: Session, caller: Caller, rule: str, checksum: str | None) -> None:
    """The ``submission.attempt`` line of a batch refused before the pipeline saw it (too large,
    wrong type, empty): the same shape as the pipeline's, never a value."""
    audit.record(
        session,
        "submission.attempt",
        actor_label=f"api:{caller.organisation_code}"[:64],
        organisation_id=caller.organisation_id,
        outcome="rejected",
        details={
            "channel": "api",
            "result": "rejected",
            "checksum": checksum,
            "format": "unknown",
            "rows": 0,
            "observations": 0,
            "reason_given": False,
            "problems": {rule: 1},
        },
    )


def _precheck_rejection(
    session: Session, caller: Caller, body: bytes, source_name: str, rule: str, hint: str
) -> ApiResponse:
    """A batch refused before validation, with the same audit line as any other attempt."""
    report = ValidationReport(source_name=source_name)
    report.add(0, "", rule, hint)
    audit_refused_attempt(session, caller, rule, hashlib.sha256(body).hexdigest())
    body_out = SubmitResponse(
        result="rejected",
        observations=0,
        submission=None,
        report=ValidationReportOut.model_validate(report.to_dict()),
    )
    return ApiResponse(422, body_out.model_dump(mode="json"))


def submit(
    engine: Engine,
    catalogue: Catalogue,
    caller: Caller,
    body: bytes,
    content_type: str,
    *,
    dry_run: bool,
    reason: str | None,
    idempotency_key: str | None,
    now: datetime | None = None,
    settings: Settings | None = None,
) -> tuple[ApiResponse, bool]:
    """Validate and store one batch for the caller: (the answer, whether it is a replay)."""
    now = now or datetime.now(UTC)
    source_name = CONTENT_TYPES[content_type]
    record_id: int | None = None
    if idempotency_key is not None:
        claim = claim_idempotency_key(
            engine,
            caller.organisation_id,
            idempotency_key,
            request_hash(body, content_type, dry_run, reason),
            now,
        )
        if claim.state == "replay":
            assert claim.response is not None
            return claim.response, True
        if claim.state == "mismatch":
            raise ApiError(
                422,
                "idempotency.key_reused",
                "this Idempotency-Key was used for a different request; use a new key for new content",
            )
        if claim.state == "in_progress":
            raise ApiError(
                409,
                "idempotency.in_progress",
                "a request with this Idempotency-Key is still running; retry later",
            )
        record_id = claim.record_id
    try:
        with session_scope(engine) as session:
            problem = batch_problem(body, content_type)
            submission_id: int | None = None
            if problem is not None:
                response = _precheck_rejection(session, caller, body, source_name, *problem)
            else:
                result = ingest_bytes(
                    session,
                    catalogue,
                    body,
                    source_name,
                    caller.organisation_code,
                    dry_run=dry_run,
                    today=now,
                    supersede_reason=reason,
                    channel="api",
                    settings=settings,
                )
                response, submission_id = _report_response(session, caller, result, dry_run)
            if record_id is not None:
                _complete_key(session, record_id, response, None if dry_run else submission_id)
    except BaseException:
        if record_id is not None:
            release_idempotency_key(engine, record_id)
        raise
    return response, False


def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 document of /api/v1, its schemas generated from the models above."""
    models: list[tuple[type[BaseModel], Literal["validation", "serialization"]]] = [
        (AggregateSubmission, "validation"),
        (SubmitResponse, "serialization"),
        (SubmissionOut, "serialization"),
        (SubmissionList, "serialization"),
        (ErrorOut, "serialization"),
    ]
    _, top = models_json_schema(models, ref_template="#/components/schemas/{model}")
    schemas = top.get("$defs", {})

    def ref(name: str) -> dict[str, str]:
        return {"$ref": f"#/components/schemas/{name}"}

    def error(description: str) -> dict[str, Any]:
        return {"description": description, "content": {"application/json": {"schema": ref("ErrorOut")}}}

    def report(description: str) -> dict[str, Any]:
        return {
            "description": description,
            "content": {"application/json": {"schema": ref("SubmitResponse")}},
        }

    unauthorised = error("missing, unknown, expired or revoked token (WWW-Authenticate: Bearer)")
    limited = error("rate limit exceeded; see Retry-After")
    submission_id = {"name": "submission_id", "in": "path", "required": True, "schema": {"type": "integer"}}
    post = {
        "summary": "Submit one batch, all or nothing",
        "description": (
            f"An aggregate batch (JSON or CSV, at most {MAX_OBSERVATIONS:,} observations) or an event "
            f"CSV (at most {MAX_EVENTS:,} events). The organisation is the token's; a different reporter "
            "in the body is an error of that record. The body is refused by size before it is parsed."
        ),
        "operationId": "submit",
        "parameters": [
            {
                "name": "dry_run",
                "in": "query",
                "schema": {"type": "boolean", "default": False},
                "description": "validate and report; store nothing",
            },
            {
                "name": "reason",
                "in": "query",
                "schema": {"type": "string", "maxLength": 500},
                "description": "why figures already reported change: stores a restatement (new version)",
            },
            {
                "name": "Idempotency-Key",
                "in": "header",
                "schema": {"type": "string", "pattern": "^[\\x21-\\x7e]{1,128}$"},
                "description": "the same key and request again returns the stored answer",
            },
        ],
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": ref("AggregateSubmission")},
                "text/csv": {"schema": {"type": "string"}},
            },
        },
        "responses": {
            "200": report("unchanged (the same content again) or a valid dry run"),
            "201": report("accepted and stored as a new version"),
            "400": report("the body is not valid JSON (rule json.invalid), or a bad query or header"),
            "401": unauthorised,
            "409": error("a request with this Idempotency-Key is still running"),
            "413": error("the body is larger than the hub accepts"),
            "415": error("the body is neither application/json nor text/csv"),
            "422": report("rejected: every problem with row, column, rule and hint (nothing stored)"),
            "429": limited,
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Transparency hub: submissions API",
            "version": "1",
            "description": "Organisations submit their anonymised figures. See docs/api.md.",
        },
        "servers": [{"url": API_PREFIX}],
        "security": [{"bearer": []}],
        "paths": {
            "/submissions": {
                "post": post,
                "get": {
                    "summary": "The organisation's own submissions, newest first",
                    "operationId": "listSubmissions",
                    "parameters": [
                        {"name": "scope", "in": "query", "schema": {"type": "string"}},
                        {
                            "name": "limit",
                            "in": "query",
                            "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIST, "default": 50},
                        },
                    ],
                    "responses": {
                        "200": {
                            "description": "submissions",
                            "content": {"application/json": {"schema": ref("SubmissionList")}},
                        },
                        "401": unauthorised,
                        "429": limited,
                    },
                },
            },
            "/submissions/{submission_id}": {
                "get": {
                    "summary": "An earlier submission of the organisation and its status",
                    "operationId": "getSubmission",
                    "parameters": [submission_id],
                    "responses": {
                        "200": {
                            "description": "the submission",
                            "content": {"application/json": {"schema": ref("SubmissionOut")}},
                        },
                        "401": unauthorised,
                        "404": error("no such submission of this organisation"),
                        "429": limited,
                    },
                }
            },
            "/openapi.json": {
                "get": {
                    "summary": "This document",
                    "security": [],
                    "responses": {"200": {"description": "OpenAPI 3.1"}},
                }
            },
            "/schemas/aggregate.json": {
                "get": {
                    "summary": "JSON Schema of an aggregate submission",
                    "security": [],
                    "responses": {"200": {"description": "JSON Schema 2020-12"}},
                }
            },
        },
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


# --- HTTP ------------------------------------------------------------------------------------


def _json(body: Any, status: int, headers: dict[str, str] | None = None) -> flask.Response:
    response = flask.Response(
        json.dumps(body, ensure_ascii=False, separators=(",", ":")), status, mimetype="application/json"
    )
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _error(status: int, error: str, message: str, headers: dict[str, str] | None = None) -> flask.Response:
    return _json(ErrorOut(error=error, message=message).model_dump(), status, headers)


def _read_body(limit: int) -> bytes:
    """The request body, refused (413) when over ``limit``: by Content-Length before reading,
    and without one (chunked) after reading at most ``limit + 1`` bytes."""
    request = flask.request
    length = request.content_length
    if length is not None and length > limit:
        raise ApiError(413, "body.too_large", f"the body is larger than {limit:,} bytes; split the batch")
    stream = request.stream
    chunks: list[bytes] = []
    size = 0
    try:
        while size <= limit:
            chunk = stream.read(min(65536, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except RequestEntityTooLarge:
        size = limit + 1
    if size > limit:
        raise ApiError(413, "body.too_large", f"the body is larger than {limit:,} bytes; split the batch")
    return b"".join(chunks)


def _flag(name: str) -> bool:
    value = flask.request.args.get(name, "").strip().lower()
    if value in TRUE:
        return True
    if value in FALSE:
        return False
    raise ApiError(400, "query.invalid", f"{name} is true or false")


def register(server: flask.Flask, engine: Engine, settings: Settings) -> None:
    """Mount the API on ``server``."""
    blueprint = flask.Blueprint("api_v1", __name__, url_prefix=API_PREFIX)
    per_address = SlidingWindowLimiter(settings.api_rate_per_minute_per_address)
    per_token = SlidingWindowLimiter(settings.api_rate_per_minute)
    body_limit = settings.max_upload_bytes
    catalogue = functools.cache(lambda: load_catalogue(settings.data_dir))
    document = functools.cache(openapi_document)

    def limited(retry_after: int, what: str) -> ApiError:
        return ApiError(
            429, "rate.limited", f"too many requests {what}; retry later", {"Retry-After": str(retry_after)}
        )

    @blueprint.before_request
    def _limit_address() -> None:
        # the body limit is the API's own (the app's default is for small Dash callbacks)
        flask.request.max_content_length = body_limit + 1
        wait = per_address.hit(flask.request.remote_addr or "unknown")
        if wait is not None:
            raise limited(wait, "from this address")

    def caller() -> Caller:
        failure: ApiError | None = None
        with session_scope(engine) as session:
            try:
                who = authenticate_request(
                    session, flask.request.headers.get("Authorization"), datetime.now(UTC)
                )
            except ApiError as exc:
                failure = exc
        if failure is not None:
            raise failure  # outside the session, so the audit line of the failure is committed
        wait = per_token.hit(str(who.token_id))
        if wait is not None:
            raise limited(wait, "with this token")
        return who

    @blueprint.post("/submissions")
    def post_submission() -> flask.Response:
        who = caller()
        try:
            content_type = flask.request.mimetype
            if content_type not in CONTENT_TYPES:
                raise ApiError(415, "body.content_type", "send application/json or text/csv (UTF-8)")
            dry_run = _flag("dry_run")
            reason = flask.request.args.get("reason") or None
            key = flask.request.headers.get("Idempotency-Key")
            if key is not None and not IDEMPOTENCY_KEY.fullmatch(key):
                raise ApiError(400, "idempotency.bad_key", "an Idempotency-Key is 1-128 printable characters")
            body = _read_body(body_limit)
        except ApiError as exc:
            with session_scope(engine) as session:  # an attempt all the same: one audit line
                audit_refused_attempt(session, who, exc.error, None)
            raise
        response, replayed = submit(
            engine,
            catalogue(),
            who,
            body,
            content_type,
            dry_run=dry_run,
            reason=reason,
            idempotency_key=key,
            settings=settings,
        )
        headers = {"Idempotent-Replayed": "true"} if replayed else {}
        submission = response.body.get("submission")
        if response.status == 201 and isinstance(submission, dict):
            headers["Location"] = f"{API_PREFIX}/submissions/{submission['id']}"
        return _json(response.body, response.status, headers)

    @blueprint.get("/submissions/<int:submission_id>")
    def get_submission(submission_id: int) -> flask.Response:
        who = caller()
        with session_scope(engine) as session:
            found = get_own_submission(session, who, submission_id)
        if found is None:
            raise ApiError(404, "not_found", "no submission of your organisation has this id")
        return _json(found.model_dump(mode="json"), 200)

    @blueprint.get("/submissions")
    def list_submissions() -> flask.Response:
        who = caller()
        try:
            limit = int(flask.request.args.get("limit", "50"))
        except ValueError:
            limit = 0
        if not 1 <= limit <= MAX_LIST:
            raise ApiError(400, "query.invalid", f"limit is a whole number from 1 to {MAX_LIST}")
        with session_scope(engine) as session:
            found = list_own_submissions(session, who, flask.request.args.get("scope"), limit)
        return _json(found.model_dump(mode="json"), 200)

    @blueprint.get("/openapi.json")
    def openapi() -> flask.Response:
        return _json(document(), 200)

    @blueprint.get("/schemas/aggregate.json")
    def aggregate_schema() -> flask.Response:
        return _json(aggregate_json_schema(), 200)

    @blueprint.route(
        "/<path:rest>", methods=["GET", "POST", "PUT", "PATCH", "DELETE"], provide_automatic_options=False
    )
    def unknown(rest: str) -> flask.Response:
        known = rest in {"submissions", "openapi.json", "schemas/aggregate.json"} or re.fullmatch(
            r"submissions/\d+", rest
        )
        if known:
            raise ApiError(405, "method_not_allowed", "this address does not accept that method")
        raise ApiError(404, "not_found", "there is nothing at this address of the API")

    @blueprint.errorhandler(ApiError)
    def _api_error(exc: ApiError) -> flask.Response:
        return _error(exc.status, exc.error, exc.message, exc.headers)

    @blueprint.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> flask.Response:
        code = exc.code or 500
        if code == 413:
            return _error(413, "body.too_large", f"the body is larger than {body_limit:,} bytes")
        return _error(code, f"http.{code}", exc.name)

    @blueprint.errorhandler(Exception)
    def _server_error(exc: Exception) -> flask.Response:
        logger.exception("API error on %s", flask.request.path, exc_info=exc)
        return _error(500, "server.error", "the hub could not complete the request; it has been logged")

    @blueprint.after_request
    def _no_store(response: flask.Response) -> flask.Response:
        response.headers["Cache-Control"] = "no-store"
        return response

    server.register_blueprint(blueprint)
