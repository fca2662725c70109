"""One file in, one validation report out, and a stored submission when the file is clean.

The order of the checks is deliberate: bytes (NUL, encoding), shape (columns), the
personal-data firewall, then values and catalogue rules. When the firewall finds anything,
value validation is skipped: the whole file is rejected anyway, and no later rule gets the
chance to mention a suspicious cell. Every problem names a row (the file line for CSV, the
record number for JSON), a column and a rule, never the submitted value.

Storage scope: the period covered ("2025-Q1"), or ``first..last`` when a file spans several
periods ("2025-01..2025-03"). The same file again (same SHA-256 of its bytes) returns the
earlier submission; a different file for a scope already reported is a restatement, which
is refused unless it carries a reason; with one it is stored as a new version superseding
the old one (which is kept).

The caller owns the transaction (commit on success); nothing but one audit line per attempt
(``submission.attempt``: channel, result, checksum, problems per rule) is written unless the
report has no error and ``dry_run`` is false. Rejections raise nothing, so the audit line of a
rejected attempt survives the caller's commit.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import re
import threading
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from sqlmodel import Session, select

from hub import audit
from hub.approval import PeriodLocked
from hub.catalogue import Catalogue
from hub.errors import NotFoundError
from hub.models import Organisation, Submission
from hub.organisations import get_by_code
from hub.periods import PeriodError, PeriodRef, parse_period
from hub.plausibility import plausibility_warnings
from hub.settings import Settings
from hub.store import ConcurrentRestatement, RestatementNeedsReason, SubmissionRejected, store_submission
from hub.validation import ObservationIn, dimension_value_problem, observation_problems
from hub.vocab import TOTAL
from ingest.distributions import distribution_problems
from ingest.events import COLUMNS as EVENT_COLUMNS
from ingest.events import cast_times, reduce_events
from ingest.events import convert_options as event_convert_options
from ingest.firewall import ColumnKind, scan_table
from ingest.formats import (
    AGGREGATE_KINDS,
    DIMENSION_COLUMNS,
    EVENT_KINDS,
    FLAGS,
    REQUIRED_AGGREGATE_COLUMNS,
    SCHEMA_VERSION,
)
from ingest.report import ValidationReport
from ingest.retention import discard_staged, keep_original, stage_original
from ingest.xlsx import looks_like_xlsx, read_xlsx_for_pipeline

_NUMBER = re.compile(r"-?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_NON_FINITE = re.compile(r"[+-]?(?:nan|inf|infinity)", re.IGNORECASE)
_EVENT_DIMS = {
    "notice_source": "notice_source",
    "category": "category",
    "content_type": "content_type",
    "hosting_country": "country",
}
MAX_ROW_ERRORS = 1000
CASE_REF_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
_CASE_REF = re.compile(CASE_REF_PATTERN)
MAX_REASON_LENGTH = 500  # the submission's supersede_reason column


@dataclass
class IngestResult:
    """The report, and the stored submission (None when rejected or dry-run)."""

    report: ValidationReport
    submission_id: int | None
    created: bool
    observations: int
    # the stored row, so that a caller (the API's answer) need not read it back
    submission: Submission | None = field(default=None, compare=False, repr=False)


class _NonFiniteJson(ValueError):
    """NaN or Infinity in a JSON file (not valid JSON, but Python's json accepts them)."""


def _reject_constant(_name: str) -> Any:
    raise _NonFiniteJson("non-finite number")


PARALLEL_CHECKSUM_BYTES = 8 << 20  # below this, a thread costs more than it saves


class Checksum:
    """SHA-256 of a submission's bytes, for a large file computed in a thread meanwhile.

    Hashing a gigabyte takes most of a second; hashlib releases the GIL while it hashes, and so
    do Arrow's parser and compute kernels, so the digest of a large file is ready by the time
    the file has been parsed and checked instead of delaying both. Small inputs (API batches)
    are hashed at once. The bytes are immutable: the digest is of exactly what is validated.
    """

    def __init__(self, data: bytes) -> None:
        self._digest: str | None = None
        self._thread: threading.Thread | None = None
        if len(data) < PARALLEL_CHECKSUM_BYTES:
            self._digest = hashlib.sha256(data).hexdigest()
        else:
            self._thread = threading.Thread(target=self._hash, args=(data,), name="checksum", daemon=True)
            self._thread.start()

    def _hash(self, data: bytes) -> None:
        self._digest = hashlib.sha256(data).hexdigest()

    def value(self) -> str:
        """The hex digest (waits for the thread)."""
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._digest is None:
            raise RuntimeError("the checksum thread failed")
        return self._digest


def ingest_file(
    session: Session,
    catalogue: Catalogue,
    path: Path,
    org_code: str,
    *,
    dry_run: bool,
    today: datetime | None = None,
    supersede_reason: str | None = None,
    channel: str = "cli",
    submitted_by_id: int | None = None,
    settings: Settings | None = None,
) -> IngestResult:
    """:func:`ingest_bytes` of the file at ``path``, named by its file name."""
    return ingest_bytes(
        session,
        catalogue,
        path.read_bytes(),
        path.name,
        org_code,
        dry_run=dry_run,
        today=today,
        supersede_reason=supersede_reason,
        channel=channel,
        submitted_by_id=submitted_by_id,
        settings=settings,
    )


def ingest_bytes(
    session: Session,
    catalogue: Catalogue,
    data: bytes,
    source_name: str,
    org_code: str,
    *,
    dry_run: bool,
    today: datetime | None = None,
    supersede_reason: str | None = None,
    channel: str = "cli",
    submitted_by_id: int | None = None,
    settings: Settings | None = None,
) -> IngestResult:
    """Validate ``data`` (a file's bytes, named ``source_name``) for organisation ``org_code``
    and store it unless rejected or ``dry_run``. Every channel (CLI, upload, API, pull) comes here.

    Plausibility warnings (against the organisation's own history) never block; the report,
    warnings included, is stored on the submission. With ``settings`` (and a retention period)
    the original bytes are kept under ``var_dir/originals`` until they expire (ingest.retention).

    A different file for a scope already reported is stored as a restatement only with a
    ``supersede_reason``. Every call adds exactly one ``submission.attempt`` audit event telling
    the result, also when the file is rejected: rejection raises nothing, so the caller's
    commit keeps the audit line although nothing else is stored.
    """
    path = Path(source_name or "file")
    checksum = Checksum(data)  # a large file's is computed while it is parsed and checked
    report = ValidationReport(source_name=path.name)
    reason = (supersede_reason or "").strip() or None
    organisation: Organisation | None
    try:
        organisation = get_by_code(session, org_code)
    except NotFoundError:
        organisation = None
        report.add(0, "", "organisation.unknown", "no organisation is registered with this code")
        result = IngestResult(report, None, False, 0)
    else:
        result = _ingest(
            session,
            catalogue,
            path,
            data,
            checksum,
            organisation,
            report,
            dry_run,
            today,
            reason,
            channel,
            submitted_by_id,
            settings,
        )
    _audit_attempt(session, organisation, channel, checksum.value(), result, dry_run=dry_run, reason=reason)
    return result


def _audit_attempt(
    session: Session,
    organisation: Organisation | None,
    channel: str,
    checksum: str,
    result: IngestResult,
    *,
    dry_run: bool,
    reason: str | None,
) -> None:
    """One audit line per attempt: channel, result, checksum, problems per rule; never a value."""
    if not result.report.ok:
        outcome = "rejected"
    elif dry_run:
        outcome = "dry_run"
    elif result.created:
        outcome = "accepted"
    else:
        outcome = "unchanged"
    problems = Counter(problem.rule for problem in result.report.problems)
    audit.record(
        session,
        "submission.attempt",
        actor_label=channel if organisation is None else f"{channel}:{organisation.code}"[:64],
        organisation_id=None if organisation is None else organisation.id,
        object_type=None if result.submission_id is None else "submission",
        object_id=result.submission_id,
        outcome=outcome,
        details={
            "channel": channel,
            "result": outcome,
            "checksum": checksum,
            "format": result.report.file_format,
            "rows": result.report.rows,
            "observations": result.observations,
            "reason_given": bool(reason),  # the reason itself lives on the submission only
            "warnings": len(result.report.warnings),
            "problems": dict(sorted(problems.items())),
        },
    )


def _ingest(
    session: Session,
    catalogue: Catalogue,
    path: Path,
    data: bytes,
    checksum: Checksum,
    organisation: Organisation,
    report: ValidationReport,
    dry_run: bool,
    today: datetime | None,
    reason: str | None,
    channel: str,
    submitted_by_id: int | None,
    settings: Settings | None,
) -> IngestResult:
    now = today or datetime.now(UTC)
    if reason is not None and len(reason) > MAX_REASON_LENGTH:
        report.add(0, "", "reason.too_long", f"give a reason of at most {MAX_REASON_LENGTH} characters")
        return IngestResult(report, None, False, 0)
    rows = _read(data, path, report)
    if rows is None or not report.ok:
        return IngestResult(report, None, False, 0)
    table, first_row = rows
    report.rows = table.num_rows
    lines: list[int] = []  # file line of each aggregate observation (events: none)
    if report.file_format == "events":
        observations = _events(table, data, catalogue, organisation, now, report)
    else:
        observations = _aggregate(session, table, first_row, catalogue, organisation, now, report, lines)
    if report.ok and not observations:
        report.add(0, "", "file.empty", "the file holds a header but no record")
    if report.ok:
        assert organisation.id is not None
        for warning in plausibility_warnings(session, catalogue, organisation.id, observations):
            line = lines[warning.index] if warning.index < len(lines) else 0
            report.add(line, "value", warning.rule, warning.hint, severity="warning")
    if not report.ok or dry_run:
        return IngestResult(report, None, False, len(observations) if report.ok else 0)
    periods = sorted({obs.period for obs in observations})
    scope = periods[0].code if len(periods) == 1 else f"{periods[0].code}..{periods[-1].code}"
    staged = stage_original(settings, data)
    try:
        return _store(
            session,
            catalogue,
            organisation,
            observations,
            report,
            scope,
            checksum,
            path,
            data,
            reason,
            channel,
            now,
            submitted_by_id,
            settings,
            staged,
        )
    finally:
        discard_staged(staged)  # moved into place when kept; a leftover goes


def _store(
    session: Session,
    catalogue: Catalogue,
    organisation: Organisation,
    observations: list[ObservationIn],
    report: ValidationReport,
    scope: str,
    checksum: Checksum,
    path: Path,
    data: bytes,
    reason: str | None,
    channel: str,
    now: datetime,
    submitted_by_id: int | None,
    settings: Settings | None,
    staged: Path | None,
) -> IngestResult:
    """Store the clean observations with the report; keep the original of a new submission."""
    try:
        stored = store_submission(
            session,
            catalogue,
            organisation,
            observations,
            channel=channel,
            scope=scope,
            actor=f"{channel}:{organisation.code}"[:64],
            checksum=checksum.value(),
            source_name=path.name[:300] or "file",
            supersede_reason=reason,
            today=now,
            # aggregate rows went through every rule of hub.validation in _aggregate already
            already_validated=report.file_format != "events",
            submitted_by_id=submitted_by_id,
            validation_report=report.to_dict(),
            warning_count=len(report.warnings),
            file_size=len(data),
        )
    except SubmissionRejected as exc:  # the rules above should have caught it: say so, no values
        report.add(0, "", "store.rejected", f"{len(exc.problems)} observation(s) broke a catalogue rule")
        return IngestResult(report, None, False, 0)
    except ConcurrentRestatement:
        report.add(
            0,
            "period",
            "scope.restated_concurrently",
            f"another submission stored different figures for {scope} a moment ago: check it and retry",
        )
        return IngestResult(report, None, False, 0)
    except PeriodLocked as exc:
        report.add(0, "period", "period.locked", str(exc))
        return IngestResult(report, None, False, 0)
    except RestatementNeedsReason:
        report.add(
            0,
            "period",
            "scope.already_reported",
            f"{scope} was already reported with different figures; to restate it, "
            "pass --reason with why the figures changed",
        )
        return IngestResult(report, None, False, 0)
    # store_submission writes its row without an ORM object: read it once, by primary key
    submission = session.get(Submission, stored.submission_id)
    if stored.created and settings is not None and staged is not None:
        assert submission is not None
        keep_original(settings, staged, submission, path.name)
        session.add(submission)
        session.flush()
    return IngestResult(report, stored.submission_id, stored.created, stored.observation_count, submission)


# --- reading ------------------------------------------------------------------------------


def _read(data: bytes, path: Path, report: ValidationReport) -> tuple[pa.Table, int] | None:
    """The file as a table of text cells and the row number of its first record, or None.

    A file that plainly starts as CSV is parsed straight from its bytes: no decoded copy of
    a file that may be a gigabyte. Arrow validates UTF-8 as it converts the cells, and only
    when it fails is the file decoded to tell an encoding error (and its line) from bad CSV.
    """
    if looks_like_xlsx(data, path.suffix):  # a ZIP: its container is checked before any XML parser runs
        return read_xlsx_for_pipeline(data, report)
    nul = data.find(b"\x00")
    if nul >= 0:
        report.add(
            data.count(b"\n", 0, nul) + 1,
            "",
            "cell.nul_byte",
            "the file holds NUL bytes; it may be UTF-16 or binary: save it as UTF-8 text",
        )
        return None
    start = 3 if data.startswith(b"\xef\xbb\xbf") else 0  # a UTF-8 byte-order mark
    lead = re.compile(rb"[ \t\n\r\x0b\x0c]*").match(data, start)  # ASCII blanks (re caches it)
    first = data[lead.end() : lead.end() + 1] if lead else b""
    if path.suffix.lower() != ".json" and b"!" <= first <= b"~" and first not in (b"{", b"["):
        return _read_csv(data, start, report)  # printable ASCII first: neither empty nor JSON
    if not _is_utf8(data, report):
        return None
    text = data.decode("utf-8").removeprefix("\ufeff")
    if not text.strip():
        report.add(0, "", "file.empty", "the file is empty")
        return None
    if path.suffix.lower() == ".json" or text.lstrip().startswith(("{", "[")):
        report.file_format = "aggregate-json"
        table = _read_json(text, report)
        return None if table is None else (table, 1)
    return _read_csv(data, start, report)


def _is_utf8(data: bytes, report: ValidationReport) -> bool:
    """True for UTF-8 text; else report the line of the first bad byte."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        report.add(line, "", "file.encoding", "the file is not UTF-8 text: save it as UTF-8")
        return False
    return True


def _read_csv(data: bytes, start: int, report: ValidationReport) -> tuple[pa.Table, int] | None:
    """CSV with every column as text and no NA inference ('NA' is Namibia, not missing).

    ``start`` skips a byte-order mark. Parsed once, zero-copy from ``data``, multi-threaded;
    an event file's closed-list columns come out dictionary-encoded (see ingest.events).
    """
    end = data.find(b"\n", start)
    try:
        first_line = data[start : end if end >= 0 else len(data)].decode("utf-8")
    except UnicodeDecodeError:
        report.add(1, "", "file.encoding", "the file is not UTF-8 text: save it as UTF-8")
        return None
    try:
        header = next(csv.reader(io.StringIO(first_line)), [])
    except csv.Error:  # e.g. classic-Mac line ends: the whole file is one "line" with bare CRs
        report.add(1, "", "csv.malformed", "end lines with LF or CRLF, and balance the quotes")
        return None
    report.file_format = "events" if {"case_ref", "received_at"} & set(header) else "aggregate-csv"
    if len(set(header)) != len(header) or any(not name for name in header):
        report.add(1, "", "format.bad_header", "column names must be present and unique")
        return None
    if report.file_format == "events":
        typed = _read_typed_events(data, header)
        if typed is not None:
            return typed, 2
        convert = event_convert_options(header)
    else:
        convert = pacsv.ConvertOptions(
            column_types=dict.fromkeys(header, pa.string()),
            null_values=[],
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        )
    try:
        table = pacsv.read_csv(
            pa.BufferReader(pa.py_buffer(data)),
            read_options=pacsv.ReadOptions(column_names=header, skip_rows=1, block_size=16 << 20),
            convert_options=convert,
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        if not _is_utf8(data, report):  # Arrow refuses bad UTF-8 in a cell: say which line
            return None
        # Arrow's message quotes the offending row: never repeat it
        report.add(0, "", "csv.malformed", "every row needs as many cells as the header, quotes balanced")
        return None
    return table, 2


def _read_typed_events(data: bytes, header: list[str]) -> pa.Table | None:
    """An event file read with its time columns parsed as it is read, or None when any cell
    is not a time with a UTC offset (or the CSV is malformed): the caller then reads it as text,
    which finds and reports every such cell. A clean file, the usual case, is parsed once, and
    its times are never held as text."""
    try:
        return pacsv.read_csv(
            pa.BufferReader(pa.py_buffer(data)),
            read_options=pacsv.ReadOptions(column_names=header, skip_rows=1, block_size=16 << 20),
            convert_options=event_convert_options(header, parse_times=True),
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return None


def _cell(value: Any) -> str | None:
    """A JSON value as the text a CSV cell would hold; None for a type no cell can have."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool | list | dict):
        return None
    return str(value)


def _read_json(text: str, report: ValidationReport) -> pa.Table | None:
    """A JSON aggregate submission as a table (the top-level reporter repeated in each row)."""
    try:
        doc = json.loads(text, parse_constant=_reject_constant, parse_float=str, parse_int=str)
    except _NonFiniteJson:
        report.add(0, "value", "value.not_finite", "only finite numbers are accepted (JSON allows no other)")
        return None
    except (json.JSONDecodeError, RecursionError) as exc:
        line = exc.lineno if isinstance(exc, json.JSONDecodeError) else 0
        report.add(line, "", "json.invalid", "the file is not valid JSON")
        return None
    if not isinstance(doc, dict) or not isinstance(doc.get("observations"), list):
        report.add(
            0, "", "json.shape", 'give {"schema_version": "1", "reporter": ..., "observations": [...]}'
        )
        return None
    if set(doc) - {"schema_version", "reporter", "observations"}:
        report.add(
            0, "", "json.unknown_key", "the top level holds only schema_version, reporter, observations"
        )
    if doc.get("schema_version") != SCHEMA_VERSION:
        report.add(0, "schema_version", "json.schema_version", f'schema_version must be "{SCHEMA_VERSION}"')
    reporter = doc.get("reporter")
    if not isinstance(reporter, str):
        report.add(0, "reporter", "reporter.missing", "give the reporter: your organisation's code")
        reporter = ""
    records: list[dict[str, str]] = []
    for number, item in enumerate(doc["observations"], start=1):
        if not isinstance(item, dict):
            report.add(number, "", "json.shape", "each observation is an object of field: value")
            continue
        record: dict[str, str] = {}
        for key, value in item.items():
            cell = _cell(value)
            if cell is None:
                if key in AGGREGATE_KINDS:
                    report.add(number, key, "json.type", "give a string or a number")
                cell = ""
            record[str(key)] = cell
        if record.get("reporter", "") == "":
            record["reporter"] = reporter
        records.append(record)
    if not records:
        report.add(0, "", "file.empty", "the submission holds no observation")
        return None
    names = list(dict.fromkeys(key for record in records for key in record))
    return pa.table({name: pa.array([r.get(name, "") for r in records], pa.string()) for name in names})


# --- aggregate observations ----------------------------------------------------------------


def _firewall(
    table: pa.Table,
    kinds: dict[str, ColumnKind],
    first_row: int,
    report: ValidationReport,
    *,
    proven_timestamps: Collection[str] = (),
    suspicious: dict[str, list[int]] | None = None,
) -> bool:
    """Report every personal-data finding; True when the file is clean."""
    findings = scan_table(
        table, columns=kinds, first_row=first_row, proven_timestamps=proven_timestamps, suspicious=suspicious
    )
    for finding in findings:
        report.add(finding.row, finding.column, finding.rule, f"{finding.data_kind}: {finding.hint}")
    return not findings


def _parse_value(text: str) -> tuple[float | None, str | None]:
    """(value, rule broken) of a value cell; empty means not available."""
    text = text.strip()
    if text == "":
        return None, None
    if _NON_FINITE.fullmatch(text):
        return None, "value.not_finite"
    if not _NUMBER.fullmatch(text):
        return None, "value.not_a_number"
    value = float(text)
    if not math.isfinite(value):
        return None, "value.not_finite"
    return value, None


_VALUE_HINTS = {
    "value.not_finite": "only finite numbers within the float range are accepted",
    "value.not_a_number": "give a plain decimal number, e.g. 1234 or 0.75, or leave empty if not available",
}


def _map_problem(message: str, row: ObservationIn) -> tuple[str, str, str]:
    """(column, rule, hint) of a hub.validation message, with a hint that repeats no submitted value."""
    metric = row.metric
    if "is not reported by a" in message:
        return (
            "metric",
            "metric.not_for_reporter",
            f"metric {metric} is not reported by your type of organisation",
        )
    if "is reported by" in message:
        return (
            "period",
            "period.kind_mismatch",
            message.split(", not by")[0],
        )
    if "is in the future" in message:
        return "period", "period.future", "the period has not started yet; only past periods can be reported"
    if "has not ended yet" in message:
        return "period", "period.not_ended", "the period has not ended: set flag to provisional"
    if "has no dimension" in message:
        dimension = message.rsplit("'", 2)[-2]
        return dimension, "dimension.not_for_metric", f"metric {metric} is not broken down by {dimension}"
    if "value is not one of the allowed" in message:
        dimension = message.split()[1]
        return dimension, "dimension.unknown_value", f"use one of the catalogue's {dimension} codes"
    if "is a distribution" in message:
        return "time_bucket", "dimension.time_bucket_required", f"metric {metric} needs a time_bucket per row"
    value_rules = {
        "value cannot be negative": "value.negative",
        "a count must be a whole number": "value.not_whole",
        "a share must lie between 0 and 1": "value.share_range",
        "a capability is 0 (no) or 1 (yes)": "value.boolean",
        "value must be a finite number": "value.not_finite",
        "value is not a number": "value.not_a_number",
    }
    if message in value_rules:
        return "value", value_rules[message], message
    return "", "observation.invalid", "the observation breaks a catalogue rule"


def _org_codes(session: Session, catalogue: Catalogue, columns: dict[str, list[Any]]) -> set[str]:
    """The registered organisation codes when a cell names one (a dimension whose values are
    organisations, e.g. counterpart), else an empty set: most files name none, and reading every
    code for each of them would cost a query of hundreds of rows per API batch."""
    named = any(
        catalogue.dimensions[name].values == "organisations" and any(v not in ("", TOTAL) for v in values)
        for name, values in columns.items()
        if name in catalogue.dimensions
    )
    return set(session.exec(select(Organisation.code))) if named else set()


def _aggregate(
    session: Session,
    table: pa.Table,
    first_row: int,
    catalogue: Catalogue,
    organisation: Organisation,
    now: datetime,
    report: ValidationReport,
    lines: list[int] | None = None,
) -> list[ObservationIn]:
    """Observations of an aggregate file, every problem of every row reported.

    ``lines`` receives the file line of each returned observation. A distribution metric's row
    without a time_bucket is the distribution's total: checked against its buckets, not stored.
    """
    clean = _firewall(table, AGGREGATE_KINDS, first_row, report)
    missing = [c for c in REQUIRED_AGGREGATE_COLUMNS if c not in table.column_names]
    for column in missing:
        report.add(first_row - 1 if first_row > 1 else 0, column, "format.missing_column", "add this column")
    if not clean or missing:
        return []
    columns = {name: table[name].to_pylist() for name in table.column_names if name in AGGREGATE_KINDS}
    org_codes = _org_codes(session, catalogue, columns)
    observations: list[ObservationIn] = []
    found_lines: list[int] = [] if lines is None else lines
    buckets: list[tuple[int, ObservationIn]] = []
    totals: list[tuple[int, ObservationIn]] = []
    seen: dict[tuple[str, str, tuple[tuple[str, str], ...]], int] = {}
    for index in range(table.num_rows):
        line = first_row + index
        cell = {name: values[index] for name, values in columns.items()}
        before = len(report.problems)
        if cell["reporter"] != organisation.code:
            report.add(
                line,
                "reporter",
                "reporter.mismatch",
                "the reporter must be the submitting organisation's code",
            )
        period: PeriodRef | None = None
        try:
            period = parse_period(cell["period"])
        except PeriodError:
            report.add(line, "period", "period.invalid", "give YYYY-MM, YYYY-Qn, YYYY-Hn or YYYY")
        metric = catalogue.metrics.get(cell["metric"])
        if metric is None:
            report.add(line, "metric", "metric.unknown", "use a metric code of the catalogue")
        value, rule = _parse_value(cell["value"])
        if rule:
            report.add(line, "value", rule, _VALUE_HINTS[rule])
        if metric is not None and cell["unit"] != metric.unit:
            report.add(line, "unit", "unit.mismatch", f"metric {metric.code} is measured in {metric.unit}")
        flag = cell.get("flag", "")
        if flag not in FLAGS:
            report.add(line, "flag", "flag.unknown", "flag is empty, provisional or estimated")
        if period is None or metric is None:
            continue
        dims = {name: cell[name] for name in DIMENSION_COLUMNS if cell.get(name, "") not in ("", TOTAL)}
        observation = ObservationIn(
            metric.code,
            period,
            value,
            dims,
            is_provisional=flag == "provisional",
            is_estimated=flag == "estimated",
        )
        for message in observation_problems(
            catalogue,
            observation,
            stakeholder_type=organisation.stakeholder_type,
            org_codes=org_codes,
            today=now.date(),
        ):
            column, rule, hint = _map_problem(message, observation)
            if rule == "value.not_finite" and any(p.rule == rule for p in report.problems[before:]):
                continue
            if rule == "dimension.time_bucket_required":
                continue  # a total row: checked with its buckets below
            report.add(line, column, rule, hint)
        key = observation.key()
        if key in seen:
            report.add(line, "", "row.duplicate", f"same metric, period and dimensions as row {seen[key]}")
        else:
            seen[key] = line
        if metric.combination == "distribution":
            if "time_bucket" not in observation.dims:
                totals.append((line, observation))
                continue
            buckets.append((line, observation))
        observations.append(observation)
        found_lines.append(line)
    for problem in distribution_problems(catalogue.buckets, buckets, totals):
        report.add(problem.row, problem.column, problem.rule, problem.hint)
    return observations


# --- events ------------------------------------------------------------------------------------


def _events(
    table: pa.Table,
    data: bytes,
    catalogue: Catalogue,
    organisation: Organisation,
    now: datetime,
    report: ValidationReport,
) -> list[ObservationIn]:
    """Observations reduced from event records; row errors reported with their file line.

    Columnar throughout (files have millions of rows): the table read once by ``_read_csv``
    is scanned, checked and reduced as it is; only offending row numbers are materialised,
    at most ``MAX_ROW_ERRORS`` per rule. ``data`` is not read again.
    """
    del data
    times: dict[str, pa.ChunkedArray] = {}
    for name in ("received_at", "actioned_at"):
        if name not in table.column_names:
            continue
        column = table[name]
        if pa.types.is_timestamp(column.type):  # parsed by the reader (_read_typed_events)
            times[name] = column
        elif (cast := cast_times(column)) is not None:
            times[name] = cast
    suspicious: dict[str, list[int]] = {}
    clean = _firewall(table, EVENT_KINDS, 2, report, proven_timestamps=times.keys(), suspicious=suspicious)
    missing = [c for c in EVENT_COLUMNS if c not in table.column_names]
    for column in missing:
        report.add(1, column, "format.missing_column", "event files have exactly the event columns")
    if not clean or missing:
        return []
    for column, dimension in _EVENT_DIMS.items():
        values = table[column]
        distinct = (
            {v for chunk in values.chunks for v in chunk.dictionary.to_pylist()}
            if pa.types.is_dictionary(values.type)
            else set(pc.unique(values).to_pylist())
        )
        bad = [v for v in distinct if dimension_value_problem(catalogue, dimension, v, set()) is not None]
        if not bad:
            continue
        text = values.cast(pa.string()) if pa.types.is_dictionary(values.type) else values
        rows = pc.indices_nonzero(pc.is_in(text, value_set=pa.array(bad, pa.string())))
        for index in rows[:MAX_ROW_ERRORS].to_pylist():
            report.add(
                index + 2, column, "events.unknown_value", f"use one of the catalogue's {dimension} codes"
            )
    empty = pc.equal(table["case_ref"], "")
    if pc.any(empty).as_py():
        for index in pc.indices_nonzero(empty)[:MAX_ROW_ERRORS].to_pylist():
            report.add(
                index + 2, "case_ref", "events.missing_case_ref", "every row needs your own case reference"
            )
    # 1-64 of [A-Za-z0-9_-] (the firewall has already refused digests and personal data). A cell
    # that passed the firewall's allow-pattern for case references (at most 31 of those
    # characters, or empty) is well formed, so only the cells it flagged are looked at here.
    case_refs = table["case_ref"]
    malformed = [
        index
        for index in suspicious.get("case_ref", [])
        if (value := case_refs[index].as_py()) and not _CASE_REF.fullmatch(value)
    ]
    if malformed:
        for index in malformed[:MAX_ROW_ERRORS]:
            report.add(
                index + 2,
                "case_ref",
                "events.bad_case_ref",
                "a case reference is 1-64 letters, digits, '_' or '-'",
            )
    try:
        reduction = reduce_events(
            table, catalogue=catalogue, stakeholder_type=organisation.stakeholder_type, now=now, times=times
        )
    except ValueError:
        report.add(
            0, "", "events.not_supported", "the catalogue derives no metrics from events for your type"
        )
        return []
    for error in reduction.errors:
        report.add(error.row + 1, error.column, f"events.{error.rule}", error.hint)
    return reduction.observations if report.ok else []
