"""The hub's tables.

SQLModel table models do not validate on their own, so every rule that protects the
data (uniqueness, foreign keys, closed value lists, ranges) is also a database
constraint here, and the Alembic migration creates exactly these.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlmodel import Field, SQLModel

from hub import vocab
from hub.vocab import DIMENSIONS, TOTAL, sql_in

# Stable constraint names, so migrations can refer to them on SQLite and PostgreSQL alike.
SQLModel.metadata.naming_convention = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timestamps stored and returned in UTC, aware, on SQLite and PostgreSQL alike.

    SQLite keeps no offset and would hand back naive values; a naive value given to the
    hub is taken as UTC.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        utc = aware.astimezone(UTC)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _ts(nullable: bool = False) -> Any:
    return Field(
        default_factory=utcnow if not nullable else None,
        sa_type=UTCDateTime,
        nullable=nullable,
    )


def _fk(target: str, *, nullable: bool = False, ondelete: str = "RESTRICT", index: bool = True) -> Any:
    return Field(
        default=None,
        sa_column_args=[ForeignKey(target, ondelete=ondelete)],
        sa_type=Integer,
        nullable=nullable,
        index=index,
    )


class Organisation(SQLModel, table=True):
    """A member of the alliance, or an organisation known only from public sources."""

    __tablename__ = "organisation"
    __table_args__ = (
        CheckConstraint(sql_in("stakeholder_type", vocab.STAKEHOLDER_TYPES), name="ck_org_type"),
        CheckConstraint(sql_in("status", vocab.ORGANISATION_STATUSES), name="ck_org_status"),
        CheckConstraint("sector IS NULL OR " + sql_in("sector", vocab.SECTORS), name="ck_org_sector"),
        CheckConstraint("country IS NULL OR length(country) = 2", name="ck_org_country"),
        CheckConstraint("length(code) BETWEEN 2 AND 64", name="ck_org_code_len"),
    )

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(sa_type=String(64), unique=True, index=True)
    name: str = Field(sa_type=String(200))
    stakeholder_type: str = Field(sa_type=String(32))
    country: str | None = Field(default=None, sa_type=String(2), nullable=True)
    sector: str | None = Field(default=None, sa_type=String(32), nullable=True)
    consents_to_be_named: bool = False
    status: str = Field(default="member", sa_type=String(16))
    parent_id: int | None = _fk("organisation.id", nullable=True)
    # a functional mailbox (e.g. transparency@company.example) for reporting reminders; never a
    # person's own address
    reporting_contact: str | None = Field(default=None, sa_type=String(254), nullable=True)
    created_at: datetime = _ts()


class User(SQLModel, table=True):
    """A person who signs in: an organisation's submitter or viewer, or the secretariat.

    Holds only what sign-in needs; ``session_version`` lets the server invalidate sessions.
    """

    __tablename__ = "hub_user"
    __table_args__ = (
        CheckConstraint(sql_in("role", vocab.ROLES), name="ck_user_role"),
        CheckConstraint(
            "organisation_id IS NOT NULL OR role NOT IN ('org_submitter', 'org_viewer')",
            name="ck_user_org_role_needs_org",
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(sa_type=String(64), unique=True, index=True)
    display_name: str = Field(sa_type=String(120))
    password_hash: str = Field(sa_type=String(255))
    role: str = Field(sa_type=String(16))
    organisation_id: int | None = _fk("organisation.id", nullable=True)
    is_active: bool = True
    session_version: int = 1
    created_at: datetime = _ts()
    last_login_at: datetime | None = _ts(nullable=True)


class MetricDefinition(SQLModel, table=True):
    """A catalogue metric as stored, so observations can reference it by key."""

    __tablename__ = "metric_definition"
    __table_args__ = (
        CheckConstraint(sql_in("unit", vocab.UNITS), name="ck_metric_unit"),
        CheckConstraint(sql_in("combination", vocab.COMBINATIONS), name="ck_metric_combination"),
        CheckConstraint(sql_in("period_rollup", vocab.PERIOD_ROLLUPS), name="ck_metric_rollup"),
        CheckConstraint(sql_in("direction", vocab.DIRECTIONS), name="ck_metric_direction"),
        CheckConstraint(sql_in("disclosure_class", vocab.DISCLOSURE_CLASSES), name="ck_metric_disclosure"),
    )

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(sa_type=String(64), unique=True, index=True)
    name: str = Field(sa_type=String(200))
    definition: str
    unit: str = Field(sa_type=String(16))
    combination: str = Field(sa_type=String(32))
    numerator_code: str | None = Field(default=None, sa_type=String(64), nullable=True)
    denominator_code: str | None = Field(default=None, sa_type=String(64), nullable=True)
    weight_code: str | None = Field(default=None, sa_type=String(64), nullable=True)
    period_rollup: str = Field(sa_type=String(16))
    frequencies: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    dimensions: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    reported_by: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    direction: str = Field(sa_type=String(24))
    disclosure_class: str = Field(sa_type=String(16))
    source_framework: str | None = Field(default=None, nullable=True)
    clock_start: str | None = Field(default=None, nullable=True)
    clock_stop: str | None = Field(default=None, nullable=True)
    catalogue_version: str = Field(sa_type=String(32))
    updated_at: datetime = _ts()


class Period(SQLModel, table=True):
    """A reporting period of one kind; months, quarters, halves and years are all first-class."""

    __tablename__ = "period"
    __table_args__ = (
        CheckConstraint(sql_in("kind", vocab.PERIOD_KINDS), name="ck_period_kind"),
        CheckConstraint("start_date < end_date", name="ck_period_range"),
        CheckConstraint(
            "(kind = 'month' AND number BETWEEN 1 AND 12) OR (kind = 'quarter' AND number "
            "BETWEEN 1 AND 4) OR (kind = 'half_year' AND number BETWEEN 1 AND 2) OR "
            "(kind = 'year' AND number = 1)",
            name="ck_period_number",
        ),
        UniqueConstraint("kind", "year", "number", name="uq_period_kind_year_number"),
    )

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(sa_type=String(8), unique=True, index=True)
    kind: str = Field(sa_type=String(16))
    year: int
    number: int
    start_date: date  # inclusive
    end_date: date  # exclusive: the first day after the period


class Submission(SQLModel, table=True):
    """One immutable version of what an organisation (or a public source) reported.

    A restatement is a new version that names the version it supersedes and why.
    """

    __tablename__ = "submission"
    __table_args__ = (
        CheckConstraint(sql_in("channel", vocab.SUBMISSION_CHANNELS), name="ck_sub_channel"),
        CheckConstraint(sql_in("status", vocab.SUBMISSION_STATUSES), name="ck_sub_status"),
        CheckConstraint("version >= 1", name="ck_sub_version"),
        CheckConstraint(
            "(version = 1 AND supersedes_id IS NULL AND supersede_reason IS NULL) OR "
            "(version > 1 AND supersedes_id IS NOT NULL AND supersede_reason IS NOT NULL)",
            name="ck_sub_supersedes",
        ),
        CheckConstraint("length(checksum) = 64", name="ck_sub_checksum"),
        CheckConstraint("row_count >= 0", name="ck_sub_rows"),
        UniqueConstraint("organisation_id", "scope", "version", name="uq_sub_scope_version"),
        CheckConstraint("length(scope) BETWEEN 1 AND 64", name="ck_sub_scope_len"),
        CheckConstraint(
            "status <> 'rejected' OR (review_reason IS NOT NULL AND reviewed_at IS NOT NULL)",
            name="ck_sub_rejected_has_reason",
        ),
        CheckConstraint(
            "status <> 'approved' OR (reviewed_at IS NOT NULL AND reviewed_by_id IS NOT NULL)",
            name="ck_sub_approved_has_reviewer",
        ),
        Index("ix_sub_org_checksum", "organisation_id", "checksum"),
        Index("ix_sub_status", "status"),
    )

    id: int | None = Field(default=None, primary_key=True)
    organisation_id: int = _fk("organisation.id")
    channel: str = Field(sa_type=String(16))
    scope: str = Field(sa_type=String(64))
    received_at: datetime = _ts()
    checksum: str = Field(sa_type=String(64))
    status: str = Field(default="received", sa_type=String(16))
    version: int = 1
    supersedes_id: int | None = _fk("submission.id", nullable=True)
    supersede_reason: str | None = Field(default=None, sa_type=String(500), nullable=True)
    source_name: str | None = Field(default=None, sa_type=String(300), nullable=True)
    # the publisher's own definition of what its figures count, as the hub understands it
    # from the publication (public sources; NULL where none was recorded)
    source_definition: str | None = Field(default=None, sa_type=Text, nullable=True)
    schema_version: str = Field(default="1", sa_type=String(16))
    row_count: int = 0
    submitted_by_id: int | None = _fk("hub_user.id", nullable=True)
    # kept for good: the validation report (problems and plausibility warnings, never values)
    validation_report: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    warning_count: int = 0
    # the original file, kept under var_dir only until original_expires_at (retention), then deleted
    file_size: int | None = Field(default=None, nullable=True)
    original_path: str | None = Field(default=None, sa_type=String(500), nullable=True)
    original_expires_at: datetime | None = _ts(nullable=True)
    original_deleted_at: datetime | None = _ts(nullable=True)
    # the secretariat's decision (hub.approval): who approved or rejected, when, and why (rejections)
    reviewed_by_id: int | None = _fk("hub_user.id", nullable=True, index=False)
    reviewed_at: datetime | None = _ts(nullable=True)
    review_reason: str | None = Field(default=None, sa_type=String(500), nullable=True)


def _dimension_field() -> Any:
    return Field(default=TOTAL, sa_type=String(64), nullable=False)


class Observation(SQLModel, table=True):
    """One figure: a metric for a period, broken down by dimensions (``_T`` = total)."""

    __tablename__ = "observation"
    __table_args__ = (
        UniqueConstraint("submission_id", "metric_id", "period_id", *DIMENSIONS, name="uq_obs_key"),
        CheckConstraint("value IS NULL OR value >= 0", name="ck_obs_value_nonneg"),
        CheckConstraint("country = '_T' OR length(country) = 2", name="ck_obs_country"),
        Index("ix_obs_metric_period", "metric_id", "period_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    submission_id: int = _fk("submission.id", ondelete="CASCADE")
    metric_id: int = _fk("metric_definition.id", index=False)
    period_id: int = _fk("period.id", index=False)
    country: str = _dimension_field()
    category: str = _dimension_field()
    notice_source: str = _dimension_field()
    content_type: str = _dimension_field()
    time_bucket: str = _dimension_field()
    counterpart: str = _dimension_field()
    service: str = _dimension_field()
    recipient_type: str = _dimension_field()
    detail_level: str = _dimension_field()
    jurisdiction: str = _dimension_field()
    value: float | None = Field(default=None, nullable=True)  # NULL: published as "not available"
    is_provisional: bool = False
    is_estimated: bool = False
    is_revised: bool = False
    source_label: str | None = Field(default=None, sa_type=String(300), nullable=True)


class Target(SQLModel, table=True):
    """An alliance target on a metric, loaded from data/targets (hub.targets)."""

    __tablename__ = "target"
    __table_args__ = (
        CheckConstraint(sql_in("kind", vocab.TARGET_KINDS), name="ck_target_kind"),
        CheckConstraint(sql_in("scope_type", vocab.TARGET_SCOPES), name="ck_target_scope"),
        CheckConstraint(sql_in("direction", vocab.DIRECTIONS), name="ck_target_direction"),
        CheckConstraint("target_year BETWEEN 2000 AND 2100", name="ck_target_year"),
    )

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(sa_type=String(64), unique=True, index=True)
    name: str = Field(sa_type=String(200))
    description: str
    kind: str = Field(sa_type=String(24))
    metric_id: int = _fk("metric_definition.id")
    scope_type: str = Field(default="alliance", sa_type=String(24))
    scope_value: str | None = Field(default=None, sa_type=String(64), nullable=True)
    baseline_period_id: int | None = _fk("period.id", nullable=True)
    baseline_value: float | None = Field(default=None, nullable=True)
    target_value: float
    target_year: int
    direction: str = Field(sa_type=String(24))
    parameters: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class PeriodLock(SQLModel, table=True):
    """A period the secretariat has locked after approval (hub.approval): a submission for it,
    or for a period inside it, is then accepted only as a restatement with a reason.
    Unlocking deletes the row; the audit trail keeps both events."""

    __tablename__ = "period_lock"
    __table_args__ = (UniqueConstraint("period_id", name="uq_period_lock_period"),)

    id: int | None = Field(default=None, primary_key=True)
    period_id: int = _fk("period.id", index=False)
    locked_at: datetime = _ts()
    locked_by_id: int = _fk("hub_user.id", index=False)


class Release(SQLModel, table=True):
    """An immutable, numbered snapshot of everything published (hub.releases)."""

    __tablename__ = "release"
    __table_args__ = (
        CheckConstraint(sql_in("status", vocab.RELEASE_STATUSES), name="ck_release_status"),
        CheckConstraint("number >= 1", name="ck_release_number"),
        CheckConstraint(
            "status NOT IN ('published', 'withdrawn') OR published_at IS NOT NULL",
            name="ck_release_published_at",
        ),
        CheckConstraint(
            "status <> 'withdrawn' OR (withdrawn_at IS NOT NULL AND withdrawn_reason IS NOT NULL)",
            name="ck_release_withdrawn",
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    number: int = Field(unique=True, index=True)
    status: str = Field(default="draft", sa_type=String(16))
    title: str = Field(sa_type=String(200))
    notes: str | None = Field(default=None, nullable=True)
    previous_release_id: int | None = _fk("release.id", nullable=True)
    content_checksum: str | None = Field(default=None, sa_type=String(64), nullable=True)
    created_at: datetime = _ts()
    built_at: datetime | None = _ts(nullable=True)  # when its approved data was read (build start)
    published_at: datetime | None = _ts(nullable=True)
    built_by_id: int | None = _fk("hub_user.id", nullable=True)
    published_by_id: int | None = _fk("hub_user.id", nullable=True)
    withdrawn_at: datetime | None = _ts(nullable=True)
    withdrawn_by_id: int | None = _fk("hub_user.id", nullable=True, index=False)
    withdrawn_reason: str | None = Field(default=None, sa_type=String(500), nullable=True)


class ReleaseTable(SQLModel, table=True):
    """One published table of a release, stored whole as Parquet bytes (typed, compact, and
    what exports hand out); ``checksum`` is the SHA-256 of those bytes."""

    __tablename__ = "release_table"
    __table_args__ = (
        UniqueConstraint("release_id", "name", name="uq_release_table_name"),
        CheckConstraint("length(checksum) = 64", name="ck_release_table_checksum"),
        CheckConstraint("row_count >= 0", name="ck_release_table_rows"),
        CheckConstraint("length(name) BETWEEN 1 AND 64", name="ck_release_table_name"),
    )

    id: int | None = Field(default=None, primary_key=True)
    release_id: int = _fk("release.id", index=False)
    name: str = Field(sa_type=String(64))
    row_count: int
    checksum: str = Field(sa_type=String(64))
    content: bytes = Field(sa_type=LargeBinary, nullable=False)


class ReleaseNotice(SQLModel, table=True):
    """A correction notice attached to a release (published or not); notices are only added."""

    __tablename__ = "release_notice"
    __table_args__ = (CheckConstraint("length(text) BETWEEN 1 AND 2000", name="ck_release_notice_text"),)

    id: int | None = Field(default=None, primary_key=True)
    release_id: int = _fk("release.id")
    text: str = Field(sa_type=Text)
    created_at: datetime = _ts()
    created_by_id: int = _fk("hub_user.id", index=False)


class AuditEvent(SQLModel, table=True):
    """Who did what, when, to which object, with what result. Never the submitted values."""

    __tablename__ = "audit_event"
    __table_args__ = (Index("ix_audit_org_time", "organisation_id", "occurred_at"),)

    id: int | None = Field(default=None, primary_key=True)
    occurred_at: datetime = _ts()
    actor_user_id: int | None = _fk("hub_user.id", nullable=True, index=False)
    actor_label: str = Field(sa_type=String(64))
    organisation_id: int | None = _fk("organisation.id", nullable=True, index=False)
    action: str = Field(sa_type=String(64))
    object_type: str | None = Field(default=None, sa_type=String(64), nullable=True)
    object_id: str | None = Field(default=None, sa_type=String(64), nullable=True)
    outcome: str = Field(default="ok", sa_type=String(32))
    details: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class ApiToken(SQLModel, table=True):
    """An organisation's API credential. Only a SHA-256 of the token is stored; the token is
    shown once. Several per organisation allow rotation; each expires and can be revoked."""

    __tablename__ = "api_token"
    __table_args__ = (
        CheckConstraint("length(token_hash) = 64", name="ck_token_hash"),
        CheckConstraint("expires_at > created_at", name="ck_token_expiry"),
    )

    id: int | None = Field(default=None, primary_key=True)
    organisation_id: int = _fk("organisation.id")
    label: str = Field(sa_type=String(64))
    prefix: str = Field(sa_type=String(16))  # the token's first characters, to tell tokens apart
    token_hash: str = Field(sa_type=String(64), unique=True, index=True)
    created_at: datetime = _ts()
    expires_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    revoked_at: datetime | None = _ts(nullable=True)
    last_used_at: datetime | None = _ts(nullable=True)
    created_by_id: int | None = _fk("hub_user.id", nullable=True, index=False)


class IdempotencyRecord(SQLModel, table=True):
    """An API request's Idempotency-Key: the same key and payload returns the stored response;
    the same key with another payload is refused; a key still in progress answers 409."""

    __tablename__ = "idempotency_record"
    __table_args__ = (
        UniqueConstraint("organisation_id", "key", name="uq_idem_org_key"),
        CheckConstraint(sql_in("state", vocab.IDEMPOTENCY_STATES), name="ck_idem_state"),
        CheckConstraint("length(request_hash) = 64", name="ck_idem_hash"),
    )

    id: int | None = Field(default=None, primary_key=True)
    organisation_id: int = _fk("organisation.id", index=False)
    key: str = Field(sa_type=String(128))
    request_hash: str = Field(sa_type=String(64))
    state: str = Field(default="in_progress", sa_type=String(16))
    response_status: int | None = Field(default=None, nullable=True)
    response_body: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    submission_id: int | None = _fk("submission.id", nullable=True, index=False)
    created_at: datetime = _ts()
    completed_at: datetime | None = _ts(nullable=True)


class Connector(SQLModel, table=True):
    """A pull connector of an organisation: an HTTP(S) feed or a watched drop folder.

    Credentials are never stored here: ``credential_env`` names the environment variable that
    holds the secret (e.g. an Authorization header value) on the server running the hub.
    """

    __tablename__ = "connector"
    __table_args__ = (
        UniqueConstraint("organisation_id", "name", name="uq_connector_org_name"),
        CheckConstraint(sql_in("kind", vocab.CONNECTOR_KINDS), name="ck_connector_kind"),
        CheckConstraint("interval_minutes >= 1", name="ck_connector_interval"),
        CheckConstraint(
            "(kind = 'http' AND url IS NOT NULL) OR (kind = 'folder' AND folder IS NOT NULL)",
            name="ck_connector_target",
        ),
        CheckConstraint(
            "last_result IS NULL OR " + sql_in("last_result", vocab.CONNECTOR_RESULTS),
            name="ck_connector_last_result",
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    organisation_id: int = _fk("organisation.id")
    name: str = Field(sa_type=String(64))
    kind: str = Field(sa_type=String(16))
    url: str | None = Field(default=None, sa_type=String(500), nullable=True)
    folder: str | None = Field(default=None, sa_type=String(500), nullable=True)
    credential_env: str | None = Field(default=None, sa_type=String(64), nullable=True)
    interval_minutes: int = 60
    enabled: bool = True
    etag: str | None = Field(default=None, sa_type=String(200), nullable=True)
    last_modified: str | None = Field(default=None, sa_type=String(64), nullable=True)
    last_run_at: datetime | None = _ts(nullable=True)
    last_result: str | None = Field(default=None, sa_type=String(16), nullable=True)
    last_message: str | None = Field(default=None, sa_type=String(500), nullable=True)
    next_run_at: datetime | None = _ts(nullable=True)
    consecutive_failures: int = 0
    created_at: datetime = _ts()


class ConnectorRun(SQLModel, table=True):
    """One run of a connector: when, the result, and the submission it produced if any."""

    __tablename__ = "connector_run"
    __table_args__ = (
        CheckConstraint(sql_in("result", vocab.CONNECTOR_RESULTS), name="ck_connector_run_result"),
        Index("ix_connector_run_time", "connector_id", "started_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    connector_id: int = _fk("connector.id", ondelete="CASCADE", index=False)
    started_at: datetime = _ts()
    finished_at: datetime | None = _ts(nullable=True)
    result: str = Field(sa_type=String(16))
    http_status: int | None = Field(default=None, nullable=True)
    attempts: int = 1
    submission_id: int | None = _fk("submission.id", nullable=True, index=False)
    message: str | None = Field(default=None, sa_type=String(500), nullable=True)


class ReportingObligation(SQLModel, table=True):
    """The reporting calendar: an organisation reports ``metric`` for every period of
    ``period_kind``, due ``due_days`` after the period ends."""

    __tablename__ = "reporting_obligation"
    __table_args__ = (
        UniqueConstraint("organisation_id", "metric_id", "period_kind", name="uq_obligation"),
        CheckConstraint(sql_in("period_kind", vocab.PERIOD_KINDS), name="ck_obligation_kind"),
        CheckConstraint("due_days BETWEEN 0 AND 366", name="ck_obligation_due"),
    )

    id: int | None = Field(default=None, primary_key=True)
    organisation_id: int = _fk("organisation.id")
    metric_id: int = _fk("metric_definition.id", index=False)
    period_kind: str = Field(sa_type=String(16))
    due_days: int = 30
    active_from: date  # the first period whose start is on or after this date is expected
    active_until: date | None = Field(default=None, nullable=True)


class ReportingStatus(SQLModel, table=True):
    """Completeness and timeliness of one organisation for one period, as last computed."""

    __tablename__ = "reporting_status"
    __table_args__ = (
        UniqueConstraint("organisation_id", "period_id", name="uq_reporting_status"),
        CheckConstraint(
            "received <= expected AND on_time <= received AND late = received - on_time",
            name="ck_reporting_status_counts",
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    organisation_id: int = _fk("organisation.id", index=False)
    period_id: int = _fk("period.id")
    due_date: date
    expected: int
    received: int
    on_time: int
    late: int
    computed_at: datetime = _ts()


class Reminder(SQLModel, table=True):
    """A reporting reminder: at most one per organisation, period and stage (a DB constraint)."""

    __tablename__ = "reminder"
    __table_args__ = (
        UniqueConstraint("organisation_id", "period_id", "stage", name="uq_reminder_once"),
        CheckConstraint(sql_in("stage", vocab.REMINDER_STAGES), name="ck_reminder_stage"),
        CheckConstraint(sql_in("state", vocab.REMINDER_STATES), name="ck_reminder_state"),
    )

    id: int | None = Field(default=None, primary_key=True)
    organisation_id: int = _fk("organisation.id", index=False)
    period_id: int = _fk("period.id")
    stage: str = Field(sa_type=String(16))
    state: str = Field(default="queued", sa_type=String(16))
    queued_at: datetime = _ts()
    sent_at: datetime | None = _ts(nullable=True)
    attempts: int = 0
    last_error: str | None = Field(default=None, sa_type=String(300), nullable=True)


class ScheduledJob(SQLModel, table=True):
    """A scheduled output for the secretariat: what to produce from the latest published
    release (export formats, reports), when (a cron expression in a time zone), and where to
    deliver it (a folder, or e-mail through the configured SMTP server)."""

    __tablename__ = "scheduled_job"
    __table_args__ = (
        UniqueConstraint("name", name="uq_scheduled_job_name"),
        CheckConstraint(sql_in("delivery", vocab.DELIVERIES), name="ck_scheduled_job_delivery"),
        CheckConstraint(sql_in("source", vocab.JOB_SOURCES), name="ck_scheduled_job_source"),
        CheckConstraint("max_attempts BETWEEN 1 AND 10", name="ck_scheduled_job_attempts"),
    )

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(sa_type=String(64))
    cron: str = Field(sa_type=String(100))
    timezone: str = Field(default="UTC", sa_type=String(64))
    formats: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    reports: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    delivery: str = Field(sa_type=String(16))
    destination: str = Field(sa_type=String(500))  # a folder, or comma-separated mailboxes
    enabled: bool = True
    max_attempts: int = 4
    source: str = Field(default="config", sa_type=String(16))
    created_at: datetime = _ts()
    created_by_id: int | None = _fk("hub_user.id", nullable=True, index=False)


class ScheduledRun(SQLModel, table=True):
    """One run of a scheduled job for one fire time: at most one row per (job, fire time),
    which is how several scheduler processes started by mistake still produce one run."""

    __tablename__ = "scheduled_run"
    __table_args__ = (
        UniqueConstraint("job_id", "scheduled_for", name="uq_scheduled_run_once"),
        CheckConstraint(sql_in("status", vocab.RUN_STATUSES), name="ck_scheduled_run_status"),
        Index("ix_scheduled_run_due", "status", "next_attempt_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    job_id: int = _fk("scheduled_job.id", ondelete="CASCADE", index=False)
    scheduled_for: datetime = Field(sa_type=UTCDateTime)
    status: str = Field(default="running", sa_type=String(16))
    attempts: int = 1
    worker: str = Field(default="", sa_type=String(100))  # host:pid of the process running it
    started_at: datetime = _ts()
    finished_at: datetime | None = _ts(nullable=True)
    duration_seconds: float | None = Field(default=None, nullable=True)
    release_number: int | None = Field(default=None, nullable=True)
    files: list[dict[str, Any]] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    error: str | None = Field(default=None, sa_type=String(300), nullable=True)
    next_attempt_at: datetime | None = _ts(nullable=True)
    alerted_at: datetime | None = _ts(nullable=True)


class BuildRequest(SQLModel, table=True):
    """A release build the secretariat asked for on its page; the scheduler process runs it
    (a build reads every approved figure and runs disclosure control: minutes, not a web
    request). Claimed by one process only: the UPDATE from queued to running succeeds once."""

    __tablename__ = "build_request"
    __table_args__ = (
        CheckConstraint(sql_in("status", vocab.BUILD_STATUSES), name="ck_build_request_status"),
        CheckConstraint("length(title) BETWEEN 1 AND 200", name="ck_build_request_title"),
        # one open request at a time, by the database: an open one holds the slot (1), a
        # finished one none (NULL, which a unique constraint lets any number of rows have)
        CheckConstraint(
            "(status IN ('queued', 'running') AND COALESCE(open_slot, 0) = 1) OR "
            "(status IN ('built', 'failed') AND open_slot IS NULL)",
            name="ck_build_request_open_slot",
        ),
        UniqueConstraint("open_slot", name="uq_build_request_one_open"),
        Index("ix_build_request_status", "status"),
    )

    id: int | None = Field(default=None, primary_key=True)
    title: str = Field(sa_type=String(200))
    notes: str | None = Field(default=None, sa_type=String(2000), nullable=True)
    status: str = Field(default="queued", sa_type=String(16))
    requested_by_id: int = _fk("hub_user.id", index=False)
    requested_at: datetime = _ts()
    started_at: datetime | None = _ts(nullable=True)
    finished_at: datetime | None = _ts(nullable=True)
    worker: str = Field(default="", sa_type=String(100))  # host:pid of the process running it
    release_number: int | None = Field(default=None, nullable=True)
    error: str | None = Field(default=None, sa_type=String(300), nullable=True)
    open_slot: int | None = Field(default=None, nullable=True)  # 1 while queued or running
