"""Plausibility warnings against the organisation's own history: shown, stored, never blocking."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import event, func
from sqlmodel import Session, select

from hub.catalogue import Catalogue
from hub.models import Submission
from hub.organisations import OrganisationIn, add_organisation
from hub.periods import parse_period
from hub.plausibility import (
    check_value,
    drop_to_zero,
    far_above_history,
    plausibility_warnings,
    share_jump,
)
from hub.validation import ObservationIn
from ingest.pipeline import ingest_bytes

ORG = "example-platform"
TODAY = datetime(2026, 1, 15, tzinfo=UTC)
HEADER = "reporter,period,metric,country,value,unit,flag\n"


def test_rules_over_plain_history() -> None:
    assert far_above_history([100, 110, 90], 1101)
    assert not far_above_history([100, 110, 90], 1000)  # 10x the median is not more than 10x
    assert not far_above_history([100, 110], 5000)  # fewer than 3 points say nothing
    assert not far_above_history([0, 0, 0], 5)  # a median of 0 says nothing either
    assert drop_to_zero([0, 5], 0) and not drop_to_zero([5, 0], 0) and not drop_to_zero([], 0)
    assert not drop_to_zero([5], 1)
    assert share_jump([0.8], 0.49) and not share_jump([0.8], 0.5) and not share_jump([], 0.1)
    assert check_value("share", [0.9], 0.1) == ["plausibility.share_jump"]
    assert check_value("boolean", [1, 1, 1], 0) == []
    assert check_value("count", [10, 10, 10], 0) == ["plausibility.drop_to_zero"]


def _csv(rows: list[tuple[str, str, str, str]]) -> bytes:
    lines = [
        f"{ORG},{period},{metric},{country},{value},{unit}," for period, metric, country, value, unit in rows
    ]
    return (HEADER + "\n".join(lines) + "\n").encode()


@pytest.fixture
def history(session: Session, catalogue: Catalogue) -> Iterator[Session]:
    """Three quarters of notices (100, 120, 90) and a proactive share of 0.8, all stored."""
    add_organisation(session, OrganisationIn(code=ORG, name="Example Platform", stakeholder_type="company"))
    for period, value in (("2024-Q2", "100"), ("2024-Q3", "120"), ("2024-Q4", "90")):
        rows = [(period, "co_notices_received", "", value, "count")]
        rows.append((period, "co_proactive_share", "", "0.8", "share"))
        result = ingest_bytes(session, catalogue, _csv(rows), "h.csv", ORG, dry_run=False, today=TODAY)
        assert result.created and not result.report.warnings, result.report.to_text()
    session.commit()
    yield session


def _ingest(session: Session, catalogue: Catalogue, data: bytes, dry_run: bool = False) -> Any:
    result = ingest_bytes(session, catalogue, data, "new.csv", ORG, dry_run=dry_run, today=TODAY)
    session.commit()
    return result


def test_warnings_are_reported_stored_and_do_not_block(history: Session, catalogue: Catalogue) -> None:
    data = _csv(
        [
            ("2025-Q1", "co_notices_received", "", "7777", "count"),  # > 10 x median 100
            ("2025-Q1", "co_notices_received", "NA", "5000", "count"),  # no history for NA: silent
            ("2025-Q1", "co_proactive_share", "", "0.45", "share"),  # moved 0.35
        ]
    )
    dry = _ingest(history, catalogue, data, dry_run=True)
    assert dry.report.ok and dry.submission_id is None
    assert {(w.row, w.rule) for w in dry.report.warnings} == {
        (2, "plausibility.far_above_history"),
        (4, "plausibility.share_jump"),
    }
    result = _ingest(history, catalogue, data)
    assert result.report.ok and result.created
    submission = history.get(Submission, result.submission_id)
    assert submission is not None and submission.warning_count == 2
    stored = submission.validation_report
    assert stored is not None and stored["warning_count"] == 2 and stored["accepted"] is True
    assert {w["rule"] for w in stored["warnings"]} == {
        "plausibility.far_above_history",
        "plausibility.share_jump",
    }
    assert set(stored["warnings"][0]) == {"row", "column", "rule", "hint"}
    text = json.dumps(stored) + result.report.to_text()
    for value in ("7777", "0.45", "0.35", "5000"):
        assert value not in text
    assert "warnings do not block" in result.report.to_text()


def test_drop_to_zero_and_earlier_periods_of_the_same_file(history: Session, catalogue: Catalogue) -> None:
    data = _csv(
        [
            ("2025-Q1", "co_notices_received", "", "80", "count"),
            ("2025-Q2", "co_notices_received", "", "0", "count"),  # after 80 in the same file
        ]
    )
    result = _ingest(history, catalogue, data)
    assert result.report.ok and result.created
    assert [(w.row, w.rule) for w in result.report.warnings] == [(3, "plausibility.drop_to_zero")]


def test_a_restated_period_is_not_its_own_history(history: Session, catalogue: Catalogue) -> None:
    """Restating 2024-Q4 compares with the quarters before it, not with the old 2024-Q4 figure."""
    data = _csv([("2024-Q4", "co_notices_received", "", "0", "count")])
    result = ingest_bytes(
        history, catalogue, data, "r.csv", ORG, dry_run=False, today=TODAY, supersede_reason="recount"
    )
    assert result.created
    assert [w.rule for w in result.report.warnings] == ["plausibility.drop_to_zero"]  # after 120 in Q3


def test_history_of_a_whole_submission_takes_a_fixed_number_of_queries(
    history: Session, catalogue: Catalogue
) -> None:
    """At most four statements (current submissions, window periods, metrics, observations), whether the
    submission holds one figure or 48: never a query per observation."""
    many = [
        ObservationIn("co_notices_received", parse_period(f"2025-{m:02d}"), 10.0, {"country": c})
        for m in range(1, 13)
        for c in ("NA", "NL", "FR", "DE")
    ]
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(str(args[2]))

    engine = history.get_bind()
    organisation_id = history.exec(select(Submission.organisation_id)).first()
    assert organisation_id is not None
    counts = []
    event.listen(engine, "before_cursor_execute", count)
    try:
        for observations in (many[:1], many):
            statements.clear()
            plausibility_warnings(history, catalogue, organisation_id, observations)
            counts.append(len(statements))
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert counts[0] == counts[1] <= 4
    assert history.exec(select(func.count()).select_from(Submission)).one() == 3


def test_a_breakdown_is_compared_with_its_own_history_only(history: Session, catalogue: Catalogue) -> None:
    """History rows broken down by a dimension the submission does not name (here: country) are
    never read as totals, and a country's figure is compared with that country's history only."""
    for period in ("2024-Q2", "2024-Q3", "2024-Q4"):
        rows = [(period, "co_notices_received", "NA", "1000", "count")]
        result = ingest_bytes(
            history,
            catalogue,
            _csv(rows),
            "na.csv",
            ORG,
            dry_run=False,
            today=TODAY,
            supersede_reason="add NA",
        )
        assert result.created, result.report.to_text()
    history.commit()
    # totals are gone from 2024-Q2..Q4 now (each restatement holds NA only): no total history left
    totals = _ingest(
        history, catalogue, _csv([("2025-Q1", "co_notices_received", "", "7777", "count")]), True
    )
    assert totals.report.warnings == []
    data = _csv(
        [
            ("2025-Q2", "co_notices_received", "NA", "20000", "count"),  # > 10 x NA's median 1000
            ("2025-Q2", "co_notices_received", "FR", "20000", "count"),  # no history for FR
        ]
    )
    result = _ingest(history, catalogue, data, dry_run=True)
    assert [(w.row, w.rule) for w in result.report.warnings] == [(2, "plausibility.far_above_history")]


def test_totals_are_not_confused_with_breakdowns(history: Session, catalogue: Catalogue) -> None:
    """A total compared with the stored totals, though the same periods also hold country rows."""
    for period, value in (("2024-Q2", "100"), ("2024-Q3", "120"), ("2024-Q4", "90")):
        rows = [(period, "co_notices_received", "", value, "count")]
        rows.append((period, "co_notices_received", "NA", "5000", "count"))
        rows.append((period, "co_proactive_share", "", "0.8", "share"))
        result = ingest_bytes(
            history,
            catalogue,
            _csv(rows),
            "b.csv",
            ORG,
            dry_run=False,
            today=TODAY,
            supersede_reason="add NA",
        )
        assert result.created, result.report.to_text()
    history.commit()
    # 7777 is far above the totals' median 100, not above NA's 5000 (read as totals it would pass)
    result = _ingest(
        history, catalogue, _csv([("2025-Q1", "co_notices_received", "", "7777", "count")]), True
    )
    assert [w.rule for w in result.report.warnings] == ["plausibility.far_above_history"]


def test_plain_sql_of_current_submissions_matches_the_query(history: Session, catalogue: Catalogue) -> None:
    """hub.plausibility sends CURRENT_SUBMISSIONS_OF_ORGANISATION to the driver itself: it must
    name the same submissions as :func:`current_submissions` (restated versions left out)."""
    from hub.plausibility import _placeholder
    from hub.store import CURRENT_SUBMISSIONS_OF_ORGANISATION, current_submissions

    organisation_id = history.exec(select(Submission.organisation_id)).first()
    assert organisation_id is not None
    data = _csv([("2024-Q4", "co_notices_received", "", "95", "count")])
    restated = ingest_bytes(
        history, catalogue, data, "r.csv", ORG, dry_run=False, today=TODAY, supersede_reason="recount"
    )
    assert restated.created
    connection = history.connection()
    plain = connection.exec_driver_sql(
        CURRENT_SUBMISSIONS_OF_ORGANISATION.replace("?", _placeholder(connection)), (organisation_id,)
    )
    expected = history.execute(current_submissions(organisation_id=organisation_id)).scalars().all()
    assert sorted(row[0] for row in plain) == sorted(expected)
    assert len(expected) == 3 and history.exec(select(func.count()).select_from(Submission)).one() == 4
