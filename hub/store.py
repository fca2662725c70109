"""Storing submissions: every accepted submission is a new, immutable version.

The same content twice (same checksum) returns the earlier submission; new content for a
scope that already has data is a restatement and must say why.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from operator import itemgetter
from typing import Any, NamedTuple

from sqlalchemy import Table, and_, bindparam, event, func
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Session, col, select
from sqlmodel.sql.expression import SelectOfScalar

from hub import audit
from hub.approval import refuse_locked_periods
from hub.catalogue import Catalogue, sync_metric_definitions
from hub.errors import HubError
from hub.models import MetricDefinition, Observation, Organisation, Period, Submission
from hub.periods import PeriodRef
from hub.validation import ObservationIn, batch_problems
from hub.vocab import DIMENSIONS, TOTAL


class RestatementNeedsReason(HubError):
    """New figures for a scope already reported, without a reason: nothing was stored."""


class ConcurrentRestatement(HubError):
    """Another submission stored different figures for the same scope a moment ago."""


class SubmissionRejected(HubError):
    """A submission broke validation rules; nothing was stored."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        shown = "; ".join(problems[:10])
        more = f" (and {len(problems) - 10} more)" if len(problems) > 10 else ""
        super().__init__(f"submission rejected, {len(problems)} problem(s): {shown}{more}")


@dataclass(frozen=True)
class StoreResult:
    submission_id: int
    version: int
    created: bool
    observation_count: int


def content_checksum(rows: Iterable[ObservationIn], source_definition: str | None = None) -> str:
    """SHA-256 of the rows in a canonical order (and of the source's definition of them)."""
    canonical = sorted(
        (
            r.metric,
            r.period.code,
            sorted(r.dims.items()),
            None if r.value is None else float(r.value),  # 100 and 100.0 are the same figure
            r.is_provisional,
            r.is_estimated,
            r.source_label,
        )
        for r in rows
    )
    payload: Any = canonical if source_definition is None else [canonical, source_definition]
    return hashlib.sha256(json.dumps(payload, default=str).encode()).hexdigest()


_CACHE_KEY = "hub.store.ids"


def _id_cache(session: Session, kind: str) -> dict[str, int]:
    """Ids this session already looked up (periods, metrics), so bulk loads ask once."""
    cache: dict[str, dict[str, int]] = session.info.setdefault(_CACHE_KEY, {})
    return cache.setdefault(kind, {})


@event.listens_for(OrmSession, "after_soft_rollback")
def _forget_ids_on_rollback(session: OrmSession, _transaction: object) -> None:
    """Rows created in a rolled-back transaction are gone: so are their cached ids."""
    session.info.pop(_CACHE_KEY, None)


def ensure_periods(session: Session, refs: Iterable[PeriodRef]) -> dict[str, int]:
    """Period code -> id, creating the periods that do not exist yet."""
    cache = _id_cache(session, "periods")
    wanted = {ref.code: ref for ref in refs}
    missing = [code for code in wanted if code not in cache]
    if missing:
        query = select(Period.code, Period.id).where(col(Period.code).in_(missing))
        cache.update({code: pid for code, pid in session.exec(query) if pid is not None})
    absent = [code for code in missing if code not in cache]
    if absent:
        # One INSERT of every absent period that skips any another process has created since
        # (ON CONFLICT DO NOTHING, SQLite and PostgreSQL alike) and returns the ids it created;
        # only periods another process created meanwhile are read back: no SAVEPOINT and no ORM
        # flush per period, and nothing to roll back when racing.
        _take_write_lock(session)
        rows = [
            {
                "code": code,
                "kind": wanted[code].kind,
                "year": wanted[code].year,
                "number": wanted[code].number,
                "start_date": wanted[code].start,
                "end_date": wanted[code].end,
            }
            for code in absent
        ]
        insert = sqlite_insert if session.get_bind().dialect.name == "sqlite" else postgresql_insert
        statement = insert(_PERIOD_TABLE).values(rows).on_conflict_do_nothing()
        created = session.execute(statement.returning(_PERIOD_TABLE.c.code, _PERIOD_TABLE.c.id))
        cache.update({code: pid for code, pid in created})
        raced = [code for code in absent if code not in cache]
        if raced:
            query = select(Period.code, Period.id).where(col(Period.code).in_(raced))
            cache.update({code: pid for code, pid in session.exec(query) if pid is not None})
    return {code: cache[code] for code in wanted}


def metric_ids(session: Session, catalogue: Catalogue) -> dict[str, int]:
    """Metric code -> id, synchronising the catalogue into the table when it is behind."""
    cache = _id_cache(session, "metrics")
    if cache.keys() >= catalogue.metrics.keys():
        return cache
    rows = session.exec(
        select(MetricDefinition.code, MetricDefinition.id, MetricDefinition.catalogue_version)
    ).all()
    if set(catalogue.metrics) - {code for code, _, _ in rows} or any(
        version != catalogue.version for _, _, version in rows
    ):
        cache.update(sync_metric_definitions(session, catalogue))
    else:
        cache.update({code: mid for code, mid, _ in rows if mid is not None})
    return cache


_PERIOD_TABLE: Table = Period.__table__  # type: ignore[attr-defined]
_SUBMISSION_TABLE: Table = Submission.__table__  # type: ignore[attr-defined]
_SCHEMA_VERSION: str = Submission.model_fields["schema_version"].default
_INSERT_SUBMISSION = {
    is_sqlite: (sqlite_insert if is_sqlite else postgresql_insert)(_SUBMISSION_TABLE)
    .on_conflict_do_nothing()
    .returning(_SUBMISSION_TABLE.c.id)
    for is_sqlite in (True, False)
}
_OBSERVATION_TABLE: Table = Observation.__table__  # type: ignore[attr-defined]
_OBSERVATION_COLUMNS = tuple(column.name for column in _OBSERVATION_TABLE.columns if column.name != "id")
# a record's values in column order, picked in C (a generator per row cost more than the insert)
_OBSERVATION_VALUES = itemgetter(*_OBSERVATION_COLUMNS)
# column names from the model, never from input
_SQLITE_INSERT = (
    f"INSERT INTO observation ({', '.join(_OBSERVATION_COLUMNS)}) "  # noqa: S608
    f"VALUES ({', '.join('?' * len(_OBSERVATION_COLUMNS))})"
)


def _insert_observations(session: Session, records: list[dict[str, object]]) -> None:
    """Bulk insert in the session's transaction: COPY on PostgreSQL, executemany elsewhere."""
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        driver = connection.connection.driver_connection
        assert driver is not None
        statement = f"COPY observation ({', '.join(_OBSERVATION_COLUMNS)}) FROM STDIN"
        with driver.cursor() as cursor, cursor.copy(statement) as copy:
            for record in records:
                copy.write_row(_OBSERVATION_VALUES(record))
        return
    # SQLite: one prepared statement, plain tuples (no per-row SQLAlchemy parameter processing)
    statement = _SQLITE_INSERT
    rows = [_OBSERVATION_VALUES(record) for record in records]
    for start in range(0, len(rows), 5000):
        connection.exec_driver_sql(statement, rows[start : start + 5000])


_MAX_LENGTHS = {"scope": 64, "supersede_reason": 500, "source_name": 300}  # the submission columns


def _check_lengths(**values: str | None) -> None:
    """Refuse text the columns cannot hold (PostgreSQL would raise; SQLite would not)."""
    for name, value in values.items():
        if value is not None and not 1 <= len(value) <= _MAX_LENGTHS[name]:
            raise HubError(f"{name} must be 1 to {_MAX_LENGTHS[name]} characters long")


class _Version(NamedTuple):
    """What storing needs of a scope's newest version (four columns, not the ORM row)."""

    id: int
    version: int
    checksum: str
    row_count: int


# built once: SQLAlchemy then reuses the compiled statement (building one per call cost more
# than running it)
_LATEST_VERSION = (
    select(Submission.id, Submission.version, Submission.checksum, Submission.row_count)
    .where(Submission.organisation_id == bindparam("organisation_id"), Submission.scope == bindparam("scope"))
    .order_by(col(Submission.version).desc())
    .limit(1)
)


def _latest_version(session: Session, organisation_id: int, scope: str) -> _Version | None:
    row = session.execute(_LATEST_VERSION, {"organisation_id": organisation_id, "scope": scope}).first()
    return None if row is None else _Version(*row)


def _insert_submission(session: Session, values: dict[str, Any]) -> int | None:
    """The new submission's id; None when another process has stored this version since our
    read (the unique (organisation, scope, version) constraint): one INSERT ... ON CONFLICT DO
    NOTHING, so no SAVEPOINT, no ORM flush, and nothing to roll back when racing."""
    dialect = session.get_bind().dialect.name
    return session.execute(_INSERT_SUBMISSION[dialect == "sqlite"], values).scalar()


def _take_write_lock(session: Session) -> None:
    """SQLite: start the write transaction now, before the latest version is read.

    SQLite has one writer at a time; taking its lock first makes a second process wait and
    then read the version the first one committed. It also makes the SAVEPOINT below nest in
    a real transaction (pysqlite begins one only at the first write). PostgreSQL needs no lock:
    the unique (organisation, scope, version) constraint refuses the second insert.
    """
    connection = session.connection()
    if connection.dialect.name == "sqlite":
        connection.exec_driver_sql("UPDATE submission SET id = id WHERE 0")


def store_submission(
    session: Session,
    catalogue: Catalogue,
    organisation: Organisation,
    rows: Sequence[ObservationIn],
    *,
    channel: str,
    scope: str,
    actor: str,
    checksum: str | None = None,
    source_name: str | None = None,
    source_definition: str | None = None,
    supersede_reason: str | None = None,
    status: str = "validated",
    received_at: datetime | None = None,
    today: datetime | None = None,
    org_codes: set[str] | None = None,
    submitted_by_id: int | None = None,
    validation_report: dict[str, Any] | None = None,
    warning_count: int = 0,
    file_size: int | None = None,
    already_validated: bool = False,
) -> StoreResult:
    """Validate ``rows`` (unless the caller has applied :func:`hub.validation.batch_problems`'
    rules itself: ``already_validated``) and store them as a new submission version of ``organisation``.

    Raises :class:`SubmissionRejected` listing every problem; nothing is stored then.
    Two processes storing the same content for a new version at once store it once: the
    loser of the race gets the winner's submission back (``created`` False); with different
    content it gets :class:`ConcurrentRestatement`.
    """
    assert organisation.id is not None
    _check_lengths(scope=scope, supersede_reason=supersede_reason, source_name=source_name)
    checksum = checksum or content_checksum(rows, source_definition)
    _take_write_lock(session)
    latest = _latest_version(session, organisation.id, scope)
    if latest is not None and latest.checksum == checksum:
        # the same content as the current version: nothing new (a correction back to an
        # older version's figures is new, and so is the same content for another scope)
        return StoreResult(latest.id, latest.version, False, latest.row_count)

    now = today or datetime.now(UTC)
    problems: list[str] = []
    if not already_validated:
        if org_codes is None:
            org_codes = set(session.exec(select(Organisation.code)))
        problems = batch_problems(
            catalogue,
            rows,
            stakeholder_type=organisation.stakeholder_type,
            org_codes=org_codes,
            today=now.date(),
        )
    if not rows:
        problems.append("the submission holds no observation")
    if problems:
        raise SubmissionRejected(problems)

    if latest is not None and not supersede_reason:
        raise RestatementNeedsReason(
            f"{organisation.code} already reported {scope!r} (version {latest.version}); "
            "a restatement needs a reason"
        )
    if latest is None:  # a locked period takes only restatements (hub.approval)
        refuse_locked_periods(session, (row.period for row in rows))
    version = latest.version + 1 if latest else 1
    values: dict[str, Any] = {
        "organisation_id": organisation.id,
        "channel": channel,
        "scope": scope,
        "checksum": checksum,
        "status": status,
        "version": version,
        "supersedes_id": latest.id if latest else None,
        "supersede_reason": supersede_reason if latest else None,
        "source_name": source_name,
        "source_definition": source_definition,
        "schema_version": _SCHEMA_VERSION,
        "row_count": len(rows),
        "received_at": received_at or now,
        "submitted_by_id": submitted_by_id,
        "validation_report": validation_report,
        "warning_count": warning_count,
        "file_size": file_size,
    }
    submission_id = _insert_submission(session, values)
    if submission_id is None:
        winner = _latest_version(session, organisation.id, scope)
        if winner is None or winner.version < version:
            raise HubError(f"submission {scope!r} of {organisation.code} could not be stored")
        if winner.checksum == checksum:
            return StoreResult(winner.id, winner.version, False, winner.row_count)
        raise ConcurrentRestatement(
            f"{scope!r} of {organisation.code} was just restated by another submission "
            f"(version {winner.version}); check it and retry"
        ) from None

    period_ids = ensure_periods(session, (row.period for row in rows))
    ids = metric_ids(session, catalogue)
    records = []
    for row in rows:
        record: dict[str, object] = {dimension: TOTAL for dimension in DIMENSIONS}
        record.update(row.dims)
        record.update(
            submission_id=submission_id,
            metric_id=ids[row.metric],
            period_id=period_ids[row.period.code],
            value=row.value,
            is_provisional=row.is_provisional,
            is_estimated=row.is_estimated,
            is_revised=latest is not None,
            source_label=row.source_label,
        )
        records.append(record)
    _insert_observations(session, records)
    audit.record_now(
        session,
        "submission.store",
        actor_label=actor,
        organisation_id=organisation.id,
        object_type="submission",
        object_id=submission_id,
        details={
            "channel": channel,
            "scope": scope,
            "version": version,
            "rows": len(rows),
            "checksum": checksum,
        },
    )
    return StoreResult(submission_id, version, True, len(rows))


def current_submissions(
    channel: str | None = None, *, organisation_id: int | None = None
) -> SelectOfScalar[int | None]:
    """Query of the ids of the newest version of every (organisation, scope).

    The newest version supersedes every older one, whatever channel either came by;
    ``channel`` then keeps only the current versions that came by that channel, and
    ``organisation_id`` those of one organisation (its own index range, not every submission).
    Use it as a subquery (``col(...).in_(current_submissions())``), never as a list of ids.
    """
    grouped_query = select(
        col(Submission.organisation_id),
        col(Submission.scope),
        func.max(Submission.version).label("version"),
    )
    if organisation_id is not None:
        grouped_query = grouped_query.where(col(Submission.organisation_id) == organisation_id)
    grouped = grouped_query.group_by(col(Submission.organisation_id), col(Submission.scope)).subquery()
    query = select(col(Submission.id)).join(
        grouped,
        and_(
            col(Submission.organisation_id) == grouped.c.organisation_id,
            col(Submission.scope) == grouped.c.scope,
            col(Submission.version) == grouped.c.version,
        ),
    )
    return query.where(Submission.channel == channel) if channel is not None else query


# current_submissions(organisation_id=?) as plain SQL with one "?" placeholder, for a caller that
# sends it to the driver itself (hub.plausibility, on every submission); tests hold the two equal
CURRENT_SUBMISSIONS_OF_ORGANISATION = (
    "SELECT s.id FROM submission s JOIN (SELECT organisation_id, scope, max(version) AS version "
    "FROM submission WHERE organisation_id = ? GROUP BY organisation_id, scope) g "
    "ON s.organisation_id = g.organisation_id AND s.scope = g.scope AND s.version = g.version"
)


def current_submission_ids(session: Session, channel: str | None = None) -> list[int]:
    """The ids of :func:`current_submissions` (for small sets and tests)."""
    return [i for i in session.execute(current_submissions(channel)).scalars() if i is not None]


@dataclass(frozen=True)
class SubmissionVersion:
    """One version of a scope as its organisation and the secretariat see it (never values)."""

    submission_id: int
    scope: str
    version: int
    is_current: bool
    channel: str
    status: str
    received_at: datetime
    supersedes_id: int | None
    supersede_reason: str | None
    row_count: int
    warning_count: int
    checksum: str
    original_kept: bool


def submission_history(
    session: Session, organisation_id: int, scope: str | None = None
) -> list[SubmissionVersion]:
    """Every version of the organisation's submissions (of one ``scope``), newest first per scope.

    A restatement keeps the version it supersedes: both stay listed here, for the organisation
    itself and for the secretariat. Who may call this for which organisation is the caller's
    check (an organisation sees only its own history).
    """
    query = select(Submission).where(Submission.organisation_id == organisation_id)
    if scope is not None:
        query = query.where(Submission.scope == scope)
    rows = list(session.exec(query.order_by(col(Submission.scope), col(Submission.version).desc())))
    newest: dict[str, int] = {}
    for row in rows:
        newest.setdefault(row.scope, row.version)
    return [
        SubmissionVersion(
            submission_id=row.id,
            scope=row.scope,
            version=row.version,
            is_current=row.version == newest[row.scope],
            channel=row.channel,
            status=row.status,
            received_at=row.received_at,
            supersedes_id=row.supersedes_id,
            supersede_reason=row.supersede_reason,
            row_count=row.row_count,
            warning_count=row.warning_count,
            checksum=row.checksum,
            original_kept=row.original_path is not None,
        )
        for row in rows
        if row.id is not None
    ]
