"""Storage: the database itself enforces the rules, and submissions are immutable versions."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import func, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from hub import migrate
from hub.catalogue import Catalogue
from hub.db import build_engine
from hub.errors import HubError
from hub.models import AuditEvent, Observation, Organisation, Period, Submission
from hub.organisations import OrganisationIn, add_organisation
from hub.periods import parse_period
from hub.store import SubmissionRejected, current_submission_ids, store_submission
from hub.validation import ObservationIn

NOW = datetime(2026, 3, 1, tzinfo=UTC)


def _company(session: Session, code: str = "acme-social") -> Organisation:
    org = add_organisation(
        session, OrganisationIn(code=code, name="Acme Social", stakeholder_type="company", country="FR")
    )
    session.commit()
    return org


def _rows(value: float = 120) -> list[ObservationIn]:
    q1 = parse_period("2025-Q1")
    return [
        ObservationIn("co_items_actioned", q1, value),
        ObservationIn("co_items_actioned", q1, 80, dims={"notice_source": "user_report"}),
        ObservationIn("co_items_actioned", q1, 40, dims={"notice_source": "hotline"}),
    ]


def _count(session: Session, model: type) -> int:
    return session.exec(select(func.count()).select_from(model)).one()  # type: ignore[no-any-return]


def test_migrations_match_the_models(engine: Engine) -> None:
    config = migrate.alembic_config(engine)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.check(config)  # raises if the models drifted from the migrations
    assert migrate.current_revision(engine) == migrate.head_revision()


def test_sqlite_connections_enforce_foreign_keys_and_use_wal(tmp_path: Path) -> None:
    engine = build_engine(f"sqlite:///{tmp_path / 'pragmas.sqlite3'}", busy_timeout_ms=4321)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 4321
    engine.dispose()


@pytest.mark.parametrize(
    ("statement", "why"),
    [
        (
            "INSERT INTO organisation (code, name, stakeholder_type, consents_to_be_named, status, created_at) "
            "VALUES ('x-org', 'X', 'pirate', false, 'member', CURRENT_TIMESTAMP)",
            "stakeholder type",
        ),
        (
            "INSERT INTO organisation (code, name, stakeholder_type, consents_to_be_named, status, created_at) "
            "VALUES ('ncmec', 'dup', 'company', false, 'member', CURRENT_TIMESTAMP)",
            "unique code",
        ),
        (
            "INSERT INTO organisation (code, name, stakeholder_type, consents_to_be_named, status, parent_id, "
            "created_at) VALUES ('y-org', 'Y', 'company', false, 'member', 999999, CURRENT_TIMESTAMP)",
            "foreign key",
        ),
        (
            "INSERT INTO period (code, kind, year, number, start_date, end_date) "
            "VALUES ('2025-W1', 'week', 2025, 1, '2025-01-01', '2025-01-08')",
            "period kind",
        ),
        (
            "INSERT INTO period (code, kind, year, number, start_date, end_date) "
            "VALUES ('2025-Q5', 'quarter', 2025, 5, '2025-01-01', '2025-04-01')",
            "period number",
        ),
        (
            "INSERT INTO hub_user (username, display_name, password_hash, role, is_active, session_version, "
            "created_at) VALUES ('u', 'U', 'h', 'org_submitter', true, 1, CURRENT_TIMESTAMP)",
            "org role without organisation",
        ),
    ],
)
def test_database_constraints_refuse_bad_rows(session: Session, statement: str, why: str) -> None:
    with pytest.raises(IntegrityError):
        session.execute(text(statement))
        session.flush()


def test_observation_constraints(session: Session, catalogue: Catalogue) -> None:
    org = _company(session)
    result = store_submission(
        session, catalogue, org, _rows(), channel="cli", scope="2025-Q1", actor="test", today=NOW
    )
    session.commit()
    existing = session.exec(select(Observation)).first()
    assert existing is not None
    base = existing.model_dump(exclude={"id"})
    for change in ({"value": -1.0}, {"submission_id": 999999}, {"country": "FRA"}, {}):
        with pytest.raises(IntegrityError):  # {} = the same key again
            session.add(Observation(**{**base, **change}))
            session.flush()
        session.rollback()
    assert _count(session, Observation) == result.observation_count


def test_version_without_supersedes_is_refused_by_the_database(session: Session) -> None:
    org = _company(session)
    session.add(Submission(organisation_id=org.id, channel="cli", scope="s", checksum="a" * 64, version=2))
    with pytest.raises(IntegrityError):
        session.flush()


def test_store_is_idempotent_and_versioned(session: Session, catalogue: Catalogue) -> None:
    org = _company(session)
    first = store_submission(
        session, catalogue, org, _rows(), channel="cli", scope="2025-Q1", actor="test", today=NOW
    )
    again = store_submission(
        session, catalogue, org, _rows(), channel="cli", scope="2025-Q1", actor="test", today=NOW
    )
    assert first.created and not again.created and again.submission_id == first.submission_id
    with pytest.raises(HubError, match="restatement needs a reason"):
        store_submission(
            session, catalogue, org, _rows(130), channel="cli", scope="2025-Q1", actor="test", today=NOW
        )
    second = store_submission(
        session,
        catalogue,
        org,
        _rows(130),
        channel="cli",
        scope="2025-Q1",
        actor="test",
        today=NOW,
        supersede_reason="double-counted notices",
    )
    session.commit()
    assert second.version == 2
    newer = session.get(Submission, second.submission_id)
    assert newer is not None and newer.supersedes_id == first.submission_id
    assert current_submission_ids(session) == [second.submission_id]
    # the old version is kept, and the new figures are flagged as revised
    assert _count(session, Observation) == 6
    revised = session.exec(select(Observation).where(Observation.submission_id == second.submission_id))
    assert all(o.is_revised for o in revised)
    actions = [e.action for e in session.exec(select(AuditEvent))]
    assert actions.count("submission.store") == 2


def test_rejected_submission_lists_every_problem_and_stores_nothing(
    session: Session, catalogue: Catalogue
) -> None:
    org = _company(session)
    before = (_count(session, Submission), _count(session, Observation), _count(session, Period))
    q1 = parse_period("2025-Q1")
    bad = [
        ObservationIn("co_items_actioned", q1, -3),
        ObservationIn("co_items_actioned", q1, 2.5, dims={"notice_source": "user_report"}),
        ObservationIn("co_items_actioned", q1, float("nan"), dims={"notice_source": "hotline"}),
        ObservationIn("co_proactive_share", q1, 1.7),
        ObservationIn("no_such_metric", q1, 1),
        ObservationIn("le_victims_identified", parse_period("2025"), 12),
        ObservationIn(
            "co_items_actioned", parse_period("2027-Q1"), 1, dims={"notice_source": "trusted_flagger"}
        ),
        ObservationIn("co_items_actioned", q1, 1, dims={"shoe_size": "42"}),
        ObservationIn("co_items_actioned", q1, 1, dims={"country": "XX"}),
        ObservationIn("co_items_actioned", q1, 7),
    ]
    with pytest.raises(SubmissionRejected) as info:
        store_submission(
            session, catalogue, org, bad, channel="cli", scope="2025-Q1", actor="test", today=NOW
        )
    problems = "\n".join(info.value.problems)
    for expected in (
        "row 1: value cannot be negative",
        "row 2: a count must be a whole number",
        "row 3: value must be a finite number",
        "row 4: a share must lie between 0 and 1",
        "row 5: unknown metric 'no_such_metric'",
        "row 6: metric 'le_victims_identified' is not reported by a company",
        "row 7: period 2027-Q1 is in the future",
        "row 8: metric 'co_items_actioned' has no dimension 'shoe_size'",
        "row 9: the country value is not one of the allowed country values",
        "row 10: duplicates row 1",
    ):
        assert expected in problems
    session.rollback()
    assert (_count(session, Submission), _count(session, Observation), _count(session, Period)) == before


def test_period_kind_must_match_the_metric(session: Session, catalogue: Catalogue) -> None:
    org = _company(session)
    kinds = catalogue.metric("co_capability_hash_matching").frequencies
    assert "month" not in kinds
    rows = [ObservationIn("co_capability_hash_matching", parse_period("2025-03"), 1)]
    with pytest.raises(SubmissionRejected, match="not by month"):
        store_submission(session, catalogue, org, rows, channel="cli", scope="m", actor="t", today=NOW)


def test_periods_are_stored_once_per_kind(session: Session, catalogue: Catalogue) -> None:
    org = _company(session)
    store_submission(session, catalogue, org, _rows(), channel="cli", scope="a", actor="t", today=NOW)
    session.commit()
    stored = session.exec(select(Period).where(Period.code == "2025-Q1")).one()
    assert (stored.kind, stored.start_date, stored.end_date) == (
        "quarter",
        date(2025, 1, 1),
        date(2025, 4, 1),
    )


def test_a_period_created_by_another_transaction_meanwhile_is_reused(loaded_engine: Engine) -> None:
    """Two transactions create the same new period: the second looked before the first
    committed, then inserts with ON CONFLICT DO NOTHING, and gets the first one's id."""
    import threading

    from hub.store import ensure_periods

    refs = [parse_period("2024-Q3"), parse_period("2024-Q4")]
    first = Session(loaded_engine)
    created = ensure_periods(first, refs[:1])  # not committed yet
    timer = threading.Timer(0.5, first.commit)
    with Session(loaded_engine) as second:
        # the first SELECT misses 2024-Q3 (uncommitted) ...
        assert second.exec(select(Period.id).where(Period.code == "2024-Q3")).first() is None
        timer.start()  # ... and its insert waits for the first transaction, then skips the row
        ids = ensure_periods(second, refs)
        second.commit()
    timer.join()
    first.close()
    assert ids["2024-Q3"] == created["2024-Q3"] and len(set(ids.values())) == 2
    with Session(loaded_engine) as check:
        assert (
            check.exec(select(func.count()).select_from(Period).where(col(Period.code).in_(ids))).one() == 2
        )


def test_ids_cached_in_a_rolled_back_transaction_are_forgotten(
    session: Session, catalogue: Catalogue
) -> None:
    org = _company(session)
    store_submission(session, catalogue, org, _rows(), channel="cli", scope="2025-Q1", actor="t", today=NOW)
    session.rollback()  # the period 2025-Q1 created above is gone again
    result = store_submission(
        session, catalogue, org, _rows(), channel="cli", scope="2025-Q1", actor="t", today=NOW
    )
    session.commit()
    periods = session.exec(select(Period).where(Period.code == "2025-Q1")).all()
    assert result.created and len(periods) == 1 and _count(session, Observation) == 3


def test_a_correction_back_to_earlier_figures_is_a_new_version(
    session: Session, catalogue: Catalogue
) -> None:
    org = _company(session)
    kw = {"channel": "cli", "scope": "2025-Q1", "actor": "t", "today": NOW}
    a = store_submission(session, catalogue, org, _rows(120), **kw)
    b = store_submission(session, catalogue, org, _rows(130), supersede_reason="new count", **kw)
    back = store_submission(session, catalogue, org, _rows(120), supersede_reason="130 was wrong", **kw)
    session.commit()
    assert (a.version, b.version, back.version) == (1, 2, 3) and back.created
    assert current_submission_ids(session) == [back.submission_id]


def test_the_same_figures_for_another_scope_are_stored_for_it(session: Session, catalogue: Catalogue) -> None:
    org = _company(session)
    one = store_submission(
        session, catalogue, org, _rows(), channel="cli", scope="file-a", actor="t", today=NOW
    )
    two = store_submission(
        session, catalogue, org, _rows(), channel="cli", scope="file-b", actor="t", today=NOW
    )
    assert two.created and two.submission_id != one.submission_id


def test_whole_numbers_given_as_floats_are_the_same_content(session: Session, catalogue: Catalogue) -> None:
    org = _company(session)
    q1 = parse_period("2025-Q1")
    as_int = [ObservationIn("co_items_actioned", q1, 100)]
    as_float = [ObservationIn("co_items_actioned", q1, 100.0)]
    first = store_submission(session, catalogue, org, as_int, channel="cli", scope="s", actor="t", today=NOW)
    again = store_submission(
        session, catalogue, org, as_float, channel="cli", scope="s", actor="t", today=NOW
    )
    assert not again.created and again.submission_id == first.submission_id


def test_current_versions_ignore_the_channel_older_versions_came_by(
    session: Session, catalogue: Catalogue
) -> None:
    org = _company(session)
    kw = {"scope": "2025-Q1", "actor": "t", "today": NOW}
    by_cli = store_submission(session, catalogue, org, _rows(120), channel="cli", **kw)
    by_api = store_submission(
        session, catalogue, org, _rows(125), channel="api", supersede_reason="fix", **kw
    )
    session.commit()
    assert current_submission_ids(session, "cli") == []  # superseded by the API version
    assert current_submission_ids(session, "api") == [by_api.submission_id]
    assert by_cli.submission_id not in current_submission_ids(session)


def test_a_period_that_has_not_ended_must_be_provisional(session: Session, catalogue: Catalogue) -> None:
    org = _company(session)
    running = parse_period("2026-Q1")  # NOW is 2026-03-01
    final = [ObservationIn("co_items_actioned", running, 10)]
    with pytest.raises(SubmissionRejected, match="2026-Q1 has not ended yet"):
        store_submission(session, catalogue, org, final, channel="cli", scope="q", actor="t", today=NOW)
    provisional = [ObservationIn("co_items_actioned", running, 10, is_provisional=True)]
    assert store_submission(
        session, catalogue, org, provisional, channel="cli", scope="q", actor="t", today=NOW
    ).created


@pytest.mark.parametrize(
    ("field", "value"),
    [("scope", "s" * 65), ("scope", ""), ("supersede_reason", "r" * 501), ("source_name", "n" * 301)],
)
def test_text_longer_than_its_column_is_refused_on_every_backend(
    session: Session, catalogue: Catalogue, field: str, value: str
) -> None:
    org = _company(session)
    kw: dict[str, str] = {"scope": "2025-Q1", field: value}
    with pytest.raises(HubError, match=f"{field} must be 1 to"):
        store_submission(session, catalogue, org, _rows(), channel="cli", actor="t", today=NOW, **kw)  # type: ignore[arg-type]


def test_timestamps_come_back_in_utc_on_every_backend(session: Session, catalogue: Catalogue) -> None:
    org = _company(session)
    eastern = datetime(2025, 3, 31, 22, 30, tzinfo=timezone(timedelta(hours=-5)))  # 2025-04-01 03:30 UTC
    result = store_submission(
        session, catalogue, org, _rows(), channel="cli", scope="tz", actor="t", today=NOW, received_at=eastern
    )
    session.commit()
    session.expunge_all()
    stored = session.get(Submission, result.submission_id)
    assert stored is not None and stored.received_at == eastern
    assert stored.received_at.utcoffset() == timedelta(0)
    month = session.execute(text("SELECT received_at FROM submission WHERE scope = 'tz'")).scalar_one()
    assert str(month).startswith("2025-04-01 03:30")


def test_a_counterpart_in_a_file_must_be_a_registered_organisation(
    session: Session, catalogue: Catalogue
) -> None:
    """The pipeline reads the organisation codes only when a cell names one: a file naming a
    registered counterpart is accepted, one naming an unknown code is rejected for it."""
    from ingest.pipeline import ingest_bytes

    add_organisation(
        session, OrganisationIn(code="cp-platform", name="Counterpart Platform", stakeholder_type="company")
    )
    header = "reporter,period,metric,counterpart,country,value,unit,flag\n"

    def ingest(counterpart: str) -> list[tuple[str, str]]:
        row = f"cp-platform,2025-Q1,co_reports_to_authority,{counterpart},,10,count,\n"
        result = ingest_bytes(
            session, catalogue, (header + row).encode(), "cp.csv", "cp-platform", dry_run=True, today=NOW
        )
        return [(p.column, p.rule) for p in result.report.errors]

    assert ingest("ncmec") == []
    assert ingest("no-such-org") == [("counterpart", "dimension.unknown_value")]
    assert ingest("") == []  # no counterpart named: no organisation codes needed
