"""Coordination: the reporting calendar, completeness and timeliness, and `hub status`."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select
from test_cli import run

from hub.calendar import (
    Obligation,
    calendar_of,
    default_calendar,
    remove_obligation,
    set_contact,
    set_obligation,
    sync_calendar,
)
from hub.catalogue import Catalogue
from hub.coordination import compute_status, period_for_status, refresh_status, status_rows
from hub.db import session_scope
from hub.errors import HubError
from hub.models import AuditEvent, Organisation, ReportingObligation, ReportingStatus
from hub.organisations import OrganisationIn, add_organisation, get_by_code
from hub.periods import parse_period
from hub.store import store_submission
from hub.validation import ObservationIn

Q1 = parse_period("2025-Q1")  # ends 2025-04-01; due 30 days later: 2025-05-01 (inclusive)
AFTER_DUE = datetime(2025, 6, 15, tzinfo=UTC)
BEFORE_DUE = datetime(2025, 4, 20, tzinfo=UTC)
ITEMS, NOTICES = "co_items_actioned", "co_notices_received"
FIGURE = 987654  # a reported value: it must never show in a status or a reminder


def _org(session: Session, code: str, kind: str = "company", status: str = "member") -> Organisation:
    return add_organisation(
        session,
        OrganisationIn(code=code, name=code.title(), stakeholder_type=kind, country="FR", status=status),
    )


def _submit(
    session: Session,
    catalogue: Catalogue,
    org: Organisation,
    metrics: list[str],
    received: datetime,
    *,
    period: str = "2025-Q1",
    reason: str | None = None,
    value: float = FIGURE,
) -> None:
    ref = parse_period(period)
    rows = [ObservationIn(m, ref, value) for m in metrics]
    store_submission(
        session,
        catalogue,
        org,
        rows,
        channel="cli",
        scope=period,
        actor="test",
        supersede_reason=reason,
        received_at=received,
        today=datetime(2025, 12, 31, tzinfo=UTC),
    )


def _quarterly(
    session: Session, catalogue: Catalogue, org: Organisation, *metrics: str, **kw: object
) -> None:
    for metric in metrics:
        set_obligation(session, catalogue, org, Obligation(metric, "quarter", 30, date(2024, 1, 1), **kw))  # type: ignore[arg-type]


@pytest.fixture
def alliance(session: Session, catalogue: Catalogue) -> Session:
    """Members with every situation the status must tell apart, for 2025-Q1."""
    on_time = _org(session, "on-time-co")
    _quarterly(session, catalogue, on_time, ITEMS, NOTICES)
    _submit(session, catalogue, on_time, [ITEMS, NOTICES], datetime(2025, 5, 1, 23, 59, tzinfo=UTC))

    late = _org(session, "late-co")
    _quarterly(session, catalogue, late, ITEMS, NOTICES)
    _submit(session, catalogue, late, [ITEMS, NOTICES], datetime(2025, 5, 2, tzinfo=UTC))

    # first version on time with one metric; the restatement (late) adds the other and
    # restates the first: timeliness follows the first version that held each metric
    restated = _org(session, "restated-co")
    _quarterly(session, catalogue, restated, ITEMS, NOTICES)
    _submit(session, catalogue, restated, [ITEMS], datetime(2025, 4, 15, tzinfo=UTC))
    _submit(
        session,
        catalogue,
        restated,
        [ITEMS, NOTICES],
        datetime(2025, 6, 1, tzinfo=UTC),
        reason="corrected",
        value=5,
    )

    # reported a metric, then restated without it: it no longer counts as received
    dropped = _org(session, "dropped-co")
    _quarterly(session, catalogue, dropped, ITEMS, NOTICES)
    _submit(session, catalogue, dropped, [ITEMS, NOTICES], datetime(2025, 4, 10, tzinfo=UTC))
    _submit(session, catalogue, dropped, [ITEMS], datetime(2025, 4, 12, tzinfo=UTC), reason="withdrawn")

    partial = _org(session, "partial-co")
    _quarterly(session, catalogue, partial, ITEMS, NOTICES)
    # a breakdown without a total still counts as reporting the metric
    store_submission(
        session,
        catalogue,
        partial,
        [ObservationIn(ITEMS, Q1, 3, dims={"notice_source": "hotline"})],
        channel="cli",
        scope="2025-Q1",
        actor="test",
        received_at=datetime(2025, 4, 3, tzinfo=UTC),
        today=datetime(2025, 12, 31, tzinfo=UTC),
    )

    silent = _org(session, "silent-co")
    _quarterly(session, catalogue, silent, ITEMS, NOTICES)

    # obligations not active for Q1, or of another kind, or of an organisation that is no member
    later = _org(session, "joined-later-co")
    set_obligation(session, catalogue, later, Obligation(ITEMS, "quarter", 30, date(2025, 4, 1)))
    left = _org(session, "left-early-co")
    set_obligation(
        session, catalogue, left, Obligation(ITEMS, "quarter", 30, date(2020, 1, 1), date(2025, 3, 30))
    )
    monthly = _org(session, "monthly-co")
    set_obligation(session, catalogue, monthly, Obligation(ITEMS, "month", 30, date(2024, 1, 1)))
    _submit(session, catalogue, monthly, [ITEMS], datetime(2025, 2, 5, tzinfo=UTC), period="2025-01")
    former = _org(session, "former-co", status="former_member")
    _quarterly(session, catalogue, former, ITEMS)
    session.commit()
    return session


def _by_code(session: Session, now: datetime) -> dict[str, tuple[int, int, int, int, int, str]]:
    return {
        r.code: (r.expected, r.received, r.on_time, r.late, r.missing, r.state)
        for r in compute_status(session, Q1, now)
    }


def test_completeness_and_timeliness_per_organisation(alliance: Session) -> None:
    assert _by_code(alliance, AFTER_DUE) == {
        "on-time-co": (2, 2, 2, 0, 0, "complete"),  # received on the due date itself: on time
        "late-co": (2, 2, 0, 2, 0, "complete"),
        "restated-co": (2, 2, 1, 1, 0, "complete"),
        "dropped-co": (2, 1, 1, 0, 1, "partial"),
        "partial-co": (2, 1, 1, 0, 1, "partial"),
        "silent-co": (2, 0, 0, 0, 2, "missing"),
    }
    rows = {r.code: r for r in compute_status(alliance, Q1, AFTER_DUE)}
    assert rows["silent-co"].due_date == date(2025, 5, 1)
    assert [m.code for m in rows["partial-co"].missing_metrics] == [NOTICES]
    assert rows["partial-co"].overdue == 1


def test_before_the_due_date_nothing_is_overdue(alliance: Session) -> None:
    states = {code: row[-1] for code, row in _by_code(alliance, BEFORE_DUE).items()}
    assert states["silent-co"] == "not-due"
    assert states["partial-co"] == "not-due"
    assert states["dropped-co"] == "not-due"
    assert states["on-time-co"] == "complete"


def test_other_kinds_and_inactive_obligations_are_not_expected(alliance: Session) -> None:
    codes = {r.code for r in compute_status(alliance, Q1, AFTER_DUE)}
    assert not codes & {"joined-later-co", "left-early-co", "monthly-co", "former-co"}
    january = compute_status(alliance, parse_period("2025-01"), AFTER_DUE)
    assert [(r.code, r.received, r.on_time, r.state) for r in january] == [("monthly-co", 1, 1, "complete")]
    # the first quarter after it joined is expected
    q2 = {r.code for r in compute_status(alliance, parse_period("2025-Q2"), AFTER_DUE)}
    assert "joined-later-co" in q2 and "left-early-co" not in q2


def test_refresh_stores_one_row_per_organisation_and_updates_it(
    alliance: Session, catalogue: Catalogue
) -> None:
    refresh_status(alliance, Q1, AFTER_DUE)
    refresh_status(alliance, Q1, AFTER_DUE)
    alliance.commit()
    stored = {
        code: (s.expected, s.received, s.on_time, s.late, s.due_date)
        for s, code in alliance.exec(
            select(ReportingStatus, Organisation.code).join(
                Organisation, col(Organisation.id) == ReportingStatus.organisation_id
            )
        )
    }
    assert len(stored) == 6
    assert stored["restated-co"] == (2, 2, 1, 1, date(2025, 5, 1))
    silent = get_by_code(alliance, "silent-co")
    _submit(alliance, catalogue, silent, [ITEMS], datetime(2025, 6, 10, tzinfo=UTC))
    remove_obligation(alliance, catalogue, get_by_code(alliance, "on-time-co"), ITEMS, "quarter")
    remove_obligation(alliance, catalogue, get_by_code(alliance, "on-time-co"), NOTICES, "quarter")
    refresh_status(alliance, Q1, AFTER_DUE)
    alliance.commit()
    rows = dict(
        alliance.exec(
            select(Organisation.code, ReportingStatus.received).join(
                ReportingStatus, col(ReportingStatus.organisation_id) == Organisation.id
            )
        ).all()
    )
    assert rows["silent-co"] == 1 and "on-time-co" not in rows  # no obligation left: no status row


def test_summary_is_received_and_on_time_over_expected(alliance: Session) -> None:
    rows, summary = status_rows(alliance, Q1, AFTER_DUE, refresh=False)
    assert (summary.expected, summary.received, summary.on_time) == (12, 8, 5)
    assert summary.completeness == pytest.approx(8 / 12) and summary.timeliness == pytest.approx(5 / 12)
    assert summary.states == {"complete": 3, "partial": 2, "missing": 1}
    assert "completeness 66.7%" in summary.line() and "timeliness 41.7%" in summary.line()
    assert str(FIGURE) not in json.dumps([r.to_dict() for r in rows])


def test_status_is_computed_in_a_few_queries(alliance: Session, loaded_engine: Engine) -> None:
    from sqlalchemy import event

    statements: list[str] = []

    def count(*_args: object) -> None:
        statements.append("q")

    event.listen(loaded_engine, "before_cursor_execute", count)
    try:
        compute_status(alliance, Q1, AFTER_DUE)
    finally:
        event.remove(loaded_engine, "before_cursor_execute", count)
    assert len(statements) <= 3  # obligations, the period, arrivals: not one per organisation


def test_default_calendar_follows_the_catalogue(session: Session, catalogue: Catalogue) -> None:
    company = _org(session, "new-co")
    ngo = _org(session, "some-ngo", kind="ngo")
    external = session.exec(select(Organisation).where(Organisation.status == "external")).first()
    assert external is not None
    calendar = default_calendar(catalogue, company, due_days=45)
    expected = {(m.code, m.frequencies[0]) for m in catalogue.metrics_for("company")}
    assert {(o.metric, o.period_kind) for o in calendar} == expected
    assert {o.due_days for o in calendar} == {45}
    assert default_calendar(catalogue, ngo) == [] and default_calendar(catalogue, external) == []
    assert sync_calendar(session, catalogue, company) == len(expected)
    set_obligation(session, catalogue, company, Obligation(ITEMS, "month", 10, date(2024, 1, 1)))
    assert sync_calendar(session, catalogue, company) == 0  # idempotent, and keeps what was set
    stored = {o.metric: o for o in calendar_of(session, company) if o.period_kind == "month"}
    assert stored[ITEMS].due_days == 10
    assert sync_calendar(session, catalogue, ngo) == 0


@pytest.mark.parametrize(
    ("metric", "kind", "message"),
    [
        ("no_such_metric", "quarter", "unknown metric"),
        ("co_capability_hash_matching", "month", "not by month"),
        ("ht_reports_received", "month", "not reported by a company"),
    ],
)
def test_bad_obligations_are_refused(
    session: Session, catalogue: Catalogue, metric: str, kind: str, message: str
) -> None:
    org = _org(session, "strict-co")
    with pytest.raises(HubError, match=message):
        set_obligation(session, catalogue, org, Obligation(metric, kind, 30))
    assert session.exec(select(func.count()).select_from(ReportingObligation)).one() == 0


def test_contact_must_be_one_mailbox_and_is_never_echoed(session: Session) -> None:
    org = _org(session, "mail-co")
    for bad in (
        "not an address",
        "a@b",
        "Jo <jo@x.example>",
        "a@x.example, b@x.example",
        "x" * 250 + "@a.example",
    ):
        with pytest.raises(HubError) as caught:
            set_contact(session, org, bad)
        assert bad not in str(caught.value)
    set_contact(session, org, "reporting@mail-co.example")
    session.commit()
    assert get_by_code(session, "mail-co").reporting_contact == "reporting@mail-co.example"
    details = [json.dumps(e.details) for e in session.exec(select(AuditEvent))]
    assert not any("mail-co.example" in d for d in details)


def test_a_period_that_has_not_started_is_refused() -> None:
    with pytest.raises(HubError, match="not started"):
        period_for_status("2025-Q3", date(2025, 6, 30))
    with pytest.raises(HubError, match="is not one of"):
        period_for_status("2025-Q5", date(2025, 6, 30))
    assert period_for_status("2025-Q2", date(2025, 6, 30)).code == "2025-Q2"


# --- the command line -------------------------------------------------------------------


@pytest.fixture
def cli_alliance(alliance: Session, cli_env: dict[str, str]) -> dict[str, str]:
    return cli_env


def test_cli_status_table_and_summary(cli_alliance: dict[str, str], engine: Engine) -> None:
    result = run(cli_alliance, "status", "--period", "2025-Q1")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == [
        "organisation",
        "type",
        "expected",
        "received",
        "on_time",
        "late",
        "missing",
        "due_date",
        "state",
    ]
    table = {line.split()[0]: line.split()[1:] for line in lines[1:-1]}
    assert table["restated-co"] == ["company", "2", "2", "1", "1", "0", "2025-05-01", "complete"]
    assert table["silent-co"][-1] == "missing" and table["partial-co"][-1] == "partial"
    assert lines[-1].startswith("2025-Q1: 6 organisations") and "completeness 66.7%" in lines[-1]
    assert str(FIGURE) not in result.stdout
    with session_scope(engine) as session:  # the status is stored too
        assert session.exec(select(func.count()).select_from(ReportingStatus)).one() == 6


def test_cli_status_json_and_one_organisation(cli_alliance: dict[str, str]) -> None:
    result = run(cli_alliance, "status", "--period", "2025-Q1", "--org", "late-co", "--json")
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["period"] == "2025-Q1"
    [row] = payload["organisations"]
    assert row["organisation"] == "late-co" and (row["on_time"], row["late"], row["state"]) == (
        0,
        2,
        "complete",
    )
    assert payload["summary"]["timeliness"] == 0.0


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["status", "--period", "2025-Q9"], 1, "is not one of"),
        (["status", "--period", "2099-Q1"], 1, "has not started"),
        (["status", "--period", "2025-Q1", "--org", "nobody-co"], 1, "no organisation"),
        (["status"], 2, "--period"),
    ],
)
def test_cli_status_errors(cli_env: dict[str, str], args: list[str], code: int, message: str) -> None:
    result = run(cli_env, *args)
    assert result.returncode == code
    assert message in result.stderr and "Traceback" not in result.stderr
    if code == 1:
        assert len(result.stderr.strip().splitlines()) == 1


def test_cli_calendar_and_contact(session: Session, cli_env: dict[str, str]) -> None:
    _org(session, "cli-co")
    session.commit()
    assert run(cli_env, "calendar", "init", "cli-co", "--from", "2025-01-01").returncode == 0
    result = run(
        cli_env, "calendar", "set", "cli-co", "--metric", ITEMS, "--kind", "quarter", "--due-days", "45"
    )
    assert result.returncode == 0, result.stderr
    shown = run(cli_env, "calendar", "show", "cli-co").stdout
    assert f"{ITEMS}\tquarter\t45\t" in shown and f"{ITEMS}\tmonth\t30\t2025-01-01" in shown
    assert (
        run(cli_env, "calendar", "remove", "cli-co", "--metric", ITEMS, "--kind", "quarter").returncode == 0
    )
    assert f"{ITEMS}\tquarter" not in run(cli_env, "calendar", "show", "cli-co").stdout
    bad = run(cli_env, "org", "contact", "cli-co", "--email", "person at home")
    assert bad.returncode == 1 and "person at home" not in bad.stderr
    assert run(cli_env, "org", "contact", "cli-co", "--email", "reporting@cli-co.example").returncode == 0
    assert "reporting contact: reporting@cli-co.example" in run(cli_env, "calendar", "show", "cli-co").stdout
    assert run(cli_env, "calendar", "init").returncode == 2  # neither an organisation nor --all
    everyone = run(cli_env, "calendar", "init", "--all")
    assert everyone.returncode == 0 and "0 obligation(s) added for 1 organisation(s)" in everyone.stdout


# --- the demo alliance --------------------------------------------------------------------


@pytest.mark.slow
def test_the_demo_alliance_has_a_calendar_and_mailboxes(session: Session, catalogue: Catalogue) -> None:
    from hub.demo import load_demo_alliance

    load_demo_alliance(session, catalogue, seed=20121205, today=date(2021, 7, 15))
    session.commit()
    members = session.exec(select(Organisation).where(Organisation.status == "member")).all()
    assert all(m.reporting_contact == f"reporting@{m.code}.example" for m in members)
    with_calendar = set(session.exec(select(ReportingObligation.organisation_id).distinct()))
    assert {m.id for m in members if m.stakeholder_type != "ngo"} == with_calendar
    obligations = session.exec(select(func.count()).select_from(ReportingObligation)).one()

    rows, summary = status_rows(session, parse_period("2021-Q1"), datetime(2021, 7, 15, tzinfo=UTC))
    states = {r.state for r in rows}
    assert {"complete", "partial"} <= states
    assert any(r.late for r in rows) and any(r.missing for r in rows)
    assert 0.5 < (summary.completeness or 0) < 1 and (summary.timeliness or 0) < (summary.completeness or 0)

    load_demo_alliance(session, catalogue, seed=20121205, today=date(2021, 7, 15))
    assert session.exec(select(func.count()).select_from(ReportingObligation)).one() == obligations
