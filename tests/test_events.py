"""Event records -> observations: hand-worked tables and a check against a plain-Python reference."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import Session

from hub.catalogue import NOT_ACTIONED, Catalogue
from hub.organisations import OrganisationIn, add_organisation
from hub.periods import PeriodRef
from hub.validation import ObservationIn, observation_problems
from ingest.events import COLUMNS, EventFormatError, EventReduction, read_events_csv, reduce_events
from ingest.pipeline import MAX_ROW_ERRORS, IngestResult, ingest_bytes

NOW = datetime(2026, 6, 1, tzinfo=UTC)
TODAY = date(2026, 6, 1)
Row = tuple[str, str, str, str, str, str, str, str]


def _row(
    received: str,
    actioned: str = "",
    outcome: str | None = None,
    *,
    source: str = "user_report",
    category: str = "csam",
    content: str = "image",
    country: str = "DE",
    ref: str = "c1",
) -> Row:
    if outcome is None:
        outcome = "removed" if actioned else "pending"
    return (ref, source, category, content, country, received, actioned, outcome)


def _table(rows: list[Row]) -> pa.Table:
    return pa.table({name: pa.array([r[i] for r in rows], pa.string()) for i, name in enumerate(COLUMNS)})


def _reduce(
    catalogue: Catalogue, rows: list[Row], stakeholder: str = "company", kind: str = "month"
) -> EventReduction:
    return reduce_events(
        _table(rows), catalogue=catalogue, stakeholder_type=stakeholder, period_kind=kind, now=NOW
    )


def _values(result: EventReduction) -> dict[tuple[str, str, frozenset[tuple[str, str]]], float]:
    values: dict[tuple[str, str, frozenset[tuple[str, str]]], float] = {}
    for obs in result.observations:
        key = (obs.metric, obs.period.code, frozenset(obs.dims.items()))
        assert key not in values, f"duplicate observation {key}"
        assert obs.value is not None
        values[key] = obs.value
    return values


def _assert_valid(catalogue: Catalogue, observations: list[ObservationIn], stakeholder: str) -> None:
    for obs in observations:
        problems = observation_problems(
            catalogue, obs, stakeholder_type=stakeholder, org_codes=set(), today=TODAY
        )
        assert problems == [], (obs, problems)


def _hist(
    values: dict[tuple[str, str, frozenset[tuple[str, str]]], float], metric: str, period: str
) -> dict[str, float]:
    return {
        dict(dims)["time_bucket"]: v
        for (m, p, dims), v in values.items()
        if m == metric and p == period and len(dims) == 1
    }


def test_buckets_edges_go_up_and_unactioned_stay_in_totals(catalogue: Catalogue) -> None:
    start = "2025-03-10T12:00:00+00:00"
    base = datetime(2025, 3, 10, 12, tzinfo=UTC)

    def after(**delta: float) -> str:
        return (base + timedelta(**delta)).isoformat()

    rows = [
        _row(start, start),  # 0 -> 0-1m
        _row(start, after(seconds=59)),  # 0-1m
        _row(start, after(minutes=1)),  # exactly on the 1m edge -> 1m-5m
        _row(start, after(minutes=4, seconds=59)),  # 1m-5m
        _row(start, after(minutes=60)),  # exactly 1h -> 1h-2h
        _row(start, after(minutes=1440)),  # exactly 24h -> 1d-2d
        _row(start, after(days=90)),  # exactly 90d -> open last bucket
        _row(start, after(days=400)),  # 90d+
        _row(start),  # not yet actioned
        _row(start),
        _row(start, after(minutes=3), "not_illegal"),  # closed without removal: not in histogram
    ]
    result = _reduce(catalogue, rows)
    assert result.errors == []
    hist = _hist(_values(result), "co_takedown_time", "2025-03")
    assert set(hist) == set(catalogue.buckets.codes)  # every bucket, zeros included
    expected = {"0-1m": 2, "1m-5m": 2, "1h-2h": 1, "1d-2d": 1, "90d+": 2, NOT_ACTIONED: 2}
    assert {k: v for k, v in hist.items() if v} == expected
    values = _values(result)
    assert values[("co_notices_received", "2025-03", frozenset())] == 11
    assert values[("co_items_actioned", "2025-03", frozenset())] == 6  # actions dated in March
    assert values[("co_items_actioned_within_24h", "2025-03", frozenset())] == 5  # 24h is not within
    assert values[("co_items_actioned", "2025-06", frozenset())] == 1  # +90 days
    assert values[("co_items_actioned", "2026-04", frozenset())] == 1  # +400 days
    _assert_valid(catalogue, result.observations, "company")


def test_period_is_the_utc_month_of_received_at(catalogue: Catalogue) -> None:
    rows = [
        _row("2025-01-31T23:30:00-02:00", ref="a"),  # 2025-02-01 01:30 UTC
        _row("2025-02-01T00:30:00+01:00", ref="b"),  # 2025-01-31 23:30 UTC
        _row("2025-03-31T22:00:00-05:00", ref="c"),  # 2025-04-01 03:00 UTC: Q2
        _row("2025-04-01T00:30:00+02:00", ref="d"),  # 2025-03-31 22:30 UTC: Q1
    ]
    months = _values(_reduce(catalogue, rows))
    for month in ("2025-01", "2025-02", "2025-03", "2025-04"):
        assert _hist(months, "co_takedown_time", month)[NOT_ACTIONED] == 1
    quarters = _reduce(catalogue, rows, kind="quarter")
    values = _values(quarters)
    assert _hist(values, "co_takedown_time", "2025-Q1")[NOT_ACTIONED] == 3
    assert _hist(values, "co_takedown_time", "2025-Q2")[NOT_ACTIONED] == 1
    assert values[("co_notices_received", "2025-Q1", frozenset())] == 3
    _assert_valid(catalogue, quarters.observations, "company")


def test_actioned_before_received_is_an_error_not_a_bucket(catalogue: Catalogue) -> None:
    rows = [
        _row("2025-03-10T12:00:00+00:00", "2025-03-10T12:30:00+00:00"),
        # 11:30 UTC, before the 12:00 UTC receipt although the local clock reads later
        _row("2025-03-10T12:00:00+00:00", "2025-03-10T12:30:00+01:00"),
    ]
    result = _reduce(catalogue, rows)
    assert [(e.row, e.column, e.rule) for e in result.errors] == [
        (2, "actioned_at", "actioned_before_received")
    ]
    hist = _hist(_values(result), "co_takedown_time", "2025-03")
    assert sum(hist.values()) == 1 and hist["30m-1h"] == 1


def test_bad_times_and_contradictory_outcomes_are_errors(catalogue: Catalogue) -> None:
    rows = [
        _row("2025-03-10T12:00:00"),  # no UTC offset
        _row("2025-02-30T12:00:00+00:00"),  # no such day
        _row("yesterday"),
        _row("2025-03-10T12:00:00Z", "2025-03-10T12:05:00Z", "pending"),
        _row("2025-03-10T12:00:00Z", "", "removed"),
        _row("2025-03-10T12:00:00Z", "", "deleted"),
        _row("2027-01-01T00:00:00Z"),  # in the future
        _row("2025-03-10T12:00:00Z", "2025-03-10T12:05:00Z"),  # the one good row
    ]
    result = _reduce(catalogue, rows)
    got = {(e.row, e.rule) for e in result.errors}
    assert got == {
        (1, "invalid_time"),
        (2, "invalid_time"),
        (3, "invalid_time"),
        (4, "pending_has_time"),
        (5, "outcome_needs_time"),
        (6, "unknown_value"),
        (7, "time_out_of_range"),
    }
    assert _values(result)[("co_notices_received", "2025-03", frozenset())] == 1


def test_namibia_is_a_country_not_missing(catalogue: Catalogue, tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    path.write_text(
        ",".join(COLUMNS) + "\n"
        "NA,hotline,csam,url,NA,2025-03-10T12:00:00+00:00,2025-03-10T12:10:00+00:00,removed\n"
        "n2,hotline,csam,url,NA,2025-03-10T12:00:00+00:00,,pending\n",
        encoding="utf-8",
    )
    table = read_events_csv(path)
    assert table["hosting_country"].to_pylist() == ["NA", "NA"]
    assert table["case_ref"].null_count == 0 and table["actioned_at"].to_pylist()[1] == ""
    result = reduce_events(table, catalogue=catalogue, stakeholder_type="hotline", now=NOW)
    values = _values(result)
    assert values[("ht_notices_sent", "2025-03", frozenset({("country", "NA")}))] == 2
    key = ("ht_notice_to_removal_time", "2025-03", frozenset({("country", "NA"), ("time_bucket", "5m-15m")}))
    assert values[key] == 1
    assert {o.metric for o in result.observations} == {"ht_notices_sent", "ht_notice_to_removal_time"}
    _assert_valid(catalogue, result.observations, "hotline")


def test_empty_and_sliced_tables(catalogue: Catalogue) -> None:
    empty = _reduce(catalogue, [])
    assert empty.observations == [] and empty.errors == [] and empty.rows == 0
    rows = [_row("2025-03-10T12:00:00Z", "2025-03-10T12:00:30Z"), _row("2025-03-10T12:00:00Z")] * 2
    sliced = reduce_events(_table(rows).slice(1), catalogue=catalogue, stakeholder_type="company", now=NOW)
    hist = _hist(_values(sliced), "co_takedown_time", "2025-03")
    assert (hist["0-1m"], hist[NOT_ACTIONED]) == (1, 2)


def test_read_rejects_unknown_columns(tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    path.write_text(",".join(COLUMNS) + ",email\n", encoding="utf-8")
    with pytest.raises(EventFormatError, match="unknown: email"):
        read_events_csv(path)


def test_other_stakeholder_types_have_no_event_metrics(catalogue: Catalogue) -> None:
    with pytest.raises(ValueError, match="no event-derived metrics"):
        _reduce(catalogue, [_row("2025-03-10T12:00:00Z")], stakeholder="law_enforcement")


# --- the independent check: a plain-Python reference on random small tables -------------------

SOURCES = ["user_report", "hotline", "law_enforcement", "trusted_flagger", "proactive_detection"]
CATEGORIES = ["csam", "grooming_enticement", "sextortion"]
CONTENT = ["image", "video", "url"]
COUNTRIES = ["NA", "DE", "ZZ"]
EDGE_MINUTES = [0, 1, 5, 60, 1440, 129600]


def _reference(
    catalogue: Catalogue, rows: list[Row], stakeholder: str, kind: str
) -> tuple[Counter[tuple[str, str, frozenset[tuple[str, str]]]], set[int]]:
    """The same counts, row by row with datetime and BucketScheme.bucket_for (nonzero only)."""
    months = {"month": 1, "quarter": 3, "half_year": 6, "year": 12}[kind]
    out: Counter[tuple[str, str, frozenset[tuple[str, str]]]] = Counter()
    errors: set[int] = set()

    def period(moment: datetime) -> str:
        return PeriodRef(moment.year, kind, (moment.month - 1) // months + 1).code

    def add(metric: str, when: str, dims: dict[str, str], groups: list[str], extra: dict[str, str]) -> None:
        out[(metric, when, frozenset(extra.items()))] += 1
        for group in groups:
            out[(metric, when, frozenset({group: dims[group], **extra}.items()))] += 1

    for number, (_, source, category, content, country, rec_text, act_text, outcome) in enumerate(rows, 1):
        received = datetime.fromisoformat(rec_text).astimezone(UTC)
        actioned = datetime.fromisoformat(act_text).astimezone(UTC) if act_text else None
        if actioned is not None and actioned < received:
            errors.add(number)
            continue
        dims = {"notice_source": source, "category": category, "content_type": content, "country": country}
        minutes = (actioned - received).total_seconds() / 60 if actioned else None
        removed = outcome in ("removed", "access_disabled")
        bucket = catalogue.buckets.bucket_for(minutes).code if (removed or actioned is None) else None
        when = period(received)
        if stakeholder == "hotline":
            add("ht_notices_sent", when, dims, ["country"], {})
            if bucket:
                add(
                    "ht_notice_to_removal_time",
                    when,
                    dims,
                    ["country", "category", "content_type"],
                    {"time_bucket": bucket},
                )
            continue
        if bucket:
            add("co_takedown_time", when, dims, list(dims), {"time_bucket": bucket})
        if source != "proactive_detection":
            add("co_notices_received", when, dims, ["notice_source", "category", "content_type"], {})
        if removed and actioned is not None and minutes is not None:
            done = period(actioned)
            add("co_items_actioned", done, dims, ["notice_source", "category", "content_type"], {})
            if source == "proactive_detection":
                add("co_items_detected_proactively", done, dims, ["category", "content_type"], {})
            if minutes < 1440:
                add(
                    "co_items_actioned_within_24h",
                    done,
                    dims,
                    ["notice_source", "category", "content_type"],
                    {},
                )
    return out, errors


@st.composite
def _event(draw: st.DrawFn) -> Row:
    received = draw(st.datetimes(min_value=datetime(2024, 12, 25), max_value=datetime(2025, 7, 5))).replace(
        microsecond=0
    )
    offset = timezone(timedelta(minutes=15 * draw(st.integers(-48, 56))))
    state = draw(st.sampled_from(["pending", "timed", "edge", "closed", "backwards"]))
    actioned = ""
    outcome = "pending"
    if state != "pending":
        if state == "edge":
            delta = timedelta(minutes=draw(st.sampled_from(EDGE_MINUTES)))
        elif state == "backwards":
            delta = -timedelta(seconds=draw(st.integers(1, 10**6)))
        else:
            delta = timedelta(seconds=draw(st.integers(0, 200 * 86400)))
        act_offset = timezone(timedelta(minutes=15 * draw(st.integers(-48, 56))))
        actioned = (received.replace(tzinfo=UTC) + delta).astimezone(act_offset).isoformat()
        outcome = (
            draw(st.sampled_from(["not_illegal", "not_found", "referred"]))
            if state == "closed"
            else draw(st.sampled_from(["removed", "access_disabled"]))
        )
    return _row(
        received.replace(tzinfo=UTC).astimezone(offset).isoformat(),
        actioned,
        outcome,
        source=draw(st.sampled_from(SOURCES)),
        category=draw(st.sampled_from(CATEGORIES)),
        content=draw(st.sampled_from(CONTENT)),
        country=draw(st.sampled_from(COUNTRIES)),
    )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rows=st.lists(_event(), min_size=1, max_size=40),
    stakeholder=st.sampled_from(["company", "hotline"]),
    kind=st.sampled_from(["month", "quarter", "half_year", "year"]),
)
def test_matches_plain_python_reference(
    catalogue: Catalogue, rows: list[Row], stakeholder: str, kind: str
) -> None:
    result = _reduce(catalogue, rows, stakeholder, kind)
    expected, errors = _reference(catalogue, rows, stakeholder, kind)
    assert {e.row for e in result.errors} == errors
    got = _values(result)
    assert {k: v for k, v in got.items() if v} == dict(expected)
    _assert_valid(catalogue, result.observations, stakeholder)


# --- the whole event ingest (ingest.pipeline), columnar ----------------------------------------

HEADER = ",".join(COLUMNS)
GOOD = "case-{i},hotline,csam,image,NA,2025-03-01T09:30:00+01:00,2025-03-01T10:05:00+01:00,removed"


def _company(session: Session) -> str:
    add_organisation(
        session, OrganisationIn(code="example-platform", name="Example", stakeholder_type="company")
    )
    session.commit()
    return "example-platform"


def _ingest(session: Session, catalogue: Catalogue, text: bytes, name: str = "events.csv") -> IngestResult:
    org = _company(session)
    return ingest_bytes(session, catalogue, text, name, org, dry_run=True, today=NOW)


def test_pipeline_reports_bad_values_and_missing_refs_as_file_lines_capped(
    session: Session, catalogue: Catalogue
) -> None:
    lines = [GOOD.format(i=i) for i in range(MAX_ROW_ERRORS + 30)]
    lines[3] = lines[3].replace(",csam,", ",not_a_category,")
    lines[7] = lines[7].replace(",NA,", ",XX,")
    for i in range(20, MAX_ROW_ERRORS + 30):  # more missing references than the cap
        lines[i] = lines[i].replace(f"case-{i},", ",", 1)
    data = ("\ufeff" + HEADER + "\r\n" + "\r\n".join(lines) + "\r\n").encode()
    result = _ingest(session, catalogue, data)
    by_rule = Counter(p.rule for p in result.report.problems)
    assert by_rule == {"events.unknown_value": 2, "events.missing_case_ref": MAX_ROW_ERRORS}
    unknown = sorted((p.row, p.column) for p in result.report.problems if p.rule == "events.unknown_value")
    assert unknown == [(5, "category"), (9, "hosting_country")]  # file lines: header is line 1
    missing = [p.row for p in result.report.problems if p.rule == "events.missing_case_ref"]
    assert missing == list(range(22, 22 + MAX_ROW_ERRORS))
    assert "not_a_category" not in result.report.to_json()
    assert result.report.file_format == "events" and result.report.rows == MAX_ROW_ERRORS + 30


def test_pipeline_reads_the_bytes_once_and_accepts_a_clean_file(
    session: Session, catalogue: Catalogue
) -> None:
    data = (HEADER + "\n" + "\n".join(GOOD.format(i=i) for i in range(50)) + "\n").encode()
    result = _ingest(session, catalogue, data)
    assert result.report.ok and result.report.rows == 50 and result.observations > 0


@pytest.mark.parametrize(
    ("data", "rule", "line"),
    [
        (
            (HEADER + "\n" + GOOD.format(i=1) + "\n" + GOOD.format(i=2)[:-7] + "r\xe9moved\n").encode(
                "latin-1"
            ),
            "file.encoding",
            3,
        ),
        (("case_r\xe9f" + HEADER[8:] + "\n" + GOOD.format(i=1) + "\n").encode("latin-1"), "file.encoding", 1),
        ((HEADER + "\n" + GOOD.format(i=1) + ",extra\n").encode(), "csv.malformed", 0),
        (b"  \n\t\n", "file.empty", 0),
        ((HEADER + "\n" + GOOD.format(i=1) + "\n").encode("utf-16"), "cell.nul_byte", 1),
    ],
)
def test_pipeline_byte_level_rejections_name_the_line(
    session: Session, catalogue: Catalogue, data: bytes, rule: str, line: int
) -> None:
    result = _ingest(session, catalogue, data)
    assert [(p.rule, p.row) for p in result.report.problems] == [(rule, line)]


@pytest.mark.slow
def test_end_to_end_benchmark_core_runs(tmp_path: Path) -> None:
    """The section-8 benchmark on a small file, so it cannot rot: real ingest, storage and DuckDB."""
    from bench.ingest_end_to_end import event_file, measure

    figures = measure(event_file(20_000, tmp_path / "events.csv"))
    assert figures.accepted and figures.rows == 20_000
    assert figures.observations > 1000 and figures.duckdb_groups > 1000
    assert figures.hub_peak_mb < 4096 and figures.hub_seconds > 0 and figures.duckdb_seconds > 0


def test_checksum_of_a_large_input_is_computed_in_a_thread_and_equal() -> None:
    """ingest.pipeline.Checksum: a large file's SHA-256 is hashed beside the parse, a small
    batch's at once; both are the plain SHA-256 of the bytes."""
    import hashlib

    from ingest.pipeline import PARALLEL_CHECKSUM_BYTES, Checksum

    small, large = b"reporter,period\n", bytes(range(256)) * (PARALLEL_CHECKSUM_BYTES // 256 + 1)
    quick = Checksum(small)
    assert quick._thread is None and quick.value() == hashlib.sha256(small).hexdigest()
    threaded = Checksum(large)
    assert threaded._thread is not None
    assert threaded.value() == hashlib.sha256(large).hexdigest() == threaded.value()


def _events_file(lines: list[str]) -> bytes:
    return (HEADER + "\n" + "\n".join(lines) + "\n").encode()


def test_a_clean_file_has_its_times_parsed_by_the_reader_with_the_same_result(
    session: Session, catalogue: Catalogue
) -> None:
    """A clean event file is read once with its time columns as timestamps (ingest.pipeline
    _read_typed_events); its observations are those of the text read plus cast_times."""
    from ingest.pipeline import _read_typed_events

    lines = [GOOD.format(i=i) for i in range(30)]
    lines[4] = lines[4].replace("2025-03-01T10:05:00+01:00,removed", ",pending")  # empty actioned_at
    lines[5] = lines[5].replace(",removed", ",not_found").replace("10:05:00+01:00", "23:59:59Z")
    lines[6] = lines[6].replace("2025-03-01T09:30:00+01:00", "2025-02-28 23:30:00-02:00")
    data = _events_file(lines)
    typed = _read_typed_events(data, list(COLUMNS))
    assert typed is not None and pa.types.is_timestamp(typed["actioned_at"].type)
    assert typed["actioned_at"].null_count == 1 and typed["case_ref"].type == pa.string()
    result = _ingest(session, catalogue, data)
    assert result.report.ok, result.report.to_text()
    reference = reduce_events(
        read_events_csv(data), catalogue=catalogue, stakeholder_type="company", now=NOW
    ).observations
    org = "example-platform"
    stored = ingest_bytes(session, catalogue, data, "e.csv", org, dry_run=False, today=NOW)
    assert stored.created and stored.observations == len(reference) == result.observations


@pytest.mark.parametrize(
    ("change", "rule"),
    [
        (("2025-03-01T10:05:00+01:00", "2025-03-01T10:05:00"), "events.invalid_time"),  # no offset
        (("2025-03-01T09:30:00+01:00", "2025-02-30T09:30:00Z"), "events.invalid_time"),
        (("2025-03-01T10:05:00+01:00", '""'), "events.outcome_needs_time"),  # quoted empty: text read
        (("case-7,", ","), "events.missing_case_ref"),  # an empty text cell stays "", not null
    ],
)
def test_a_cell_the_typed_read_refuses_is_found_by_the_text_read(
    session: Session, catalogue: Catalogue, change: tuple[str, str], rule: str
) -> None:
    lines = [GOOD.format(i=i) for i in range(10)]
    lines[7] = lines[7].replace(*change)
    result = _ingest(session, catalogue, _events_file(lines))
    assert [(p.row, p.rule) for p in result.report.errors] == [(9, rule)]


def test_an_event_file_without_records_is_empty(session: Session, catalogue: Catalogue) -> None:
    result = _ingest(session, catalogue, (HEADER + "\n").encode())
    assert [p.rule for p in result.report.problems] == ["file.empty"]
