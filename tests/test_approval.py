"""Approval: the secretariat approves or rejects submissions, locks periods; a release uses the
newest approved version of every scope. Real databases (SQLite and PostgreSQL)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import pytest
from factories import NOW, make_org, make_user
from hubcli import hub_in_process, hub_process
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import Session, col, select

from hub.approval import (
    ApprovalError,
    PeriodLocked,
    acting_user,
    approve,
    approve_period,
    approved_submission_ids,
    list_locks,
    list_submissions,
    lock_period,
    pending_submissions,
    reject,
    reject_period,
    unlock_period,
)
from hub.catalogue import Catalogue
from hub.demo import load_demo_alliance
from hub.demo.secretariat import SECRETARIAT_USERNAME, approve_demo_data
from hub.errors import NotFoundError
from hub.models import AuditEvent, Organisation, Submission, User
from hub.periods import parse_period
from hub.store import RestatementNeedsReason, current_submission_ids, store_submission
from hub.validation import ObservationIn
from ingest.pipeline import ingest_bytes


def _store(
    session: Session,
    catalogue: Catalogue,
    org: Organisation,
    period: str = "2025-Q1",
    value: float = 120,
    reason: str | None = None,
) -> int:
    rows = [ObservationIn("co_items_actioned", parse_period(period), value)]
    result = store_submission(
        session,
        catalogue,
        org,
        rows,
        channel="cli",
        scope=period,
        actor="test",
        supersede_reason=reason,
        today=NOW,
    )
    session.commit()
    return result.submission_id


def _status(session: Session, submission_id: int) -> str:
    submission = session.get(Submission, submission_id)
    assert submission is not None
    session.refresh(submission)
    return submission.status


# --- approve and reject ---------------------------------------------------------------------


def test_approval_records_who_and_when_on_the_submission_and_in_the_audit(
    session: Session, catalogue: Catalogue
) -> None:
    org, sec = make_org(session), make_user(session)
    sid = _store(session, catalogue, org)
    assert approve(session, sec, [sid]) == [sid]
    session.commit()
    submission = session.get(Submission, sid)
    assert submission is not None and submission.status == "approved"
    assert submission.reviewed_by_id == sec.id and submission.reviewed_at is not None
    assert submission.review_reason is None
    events = session.exec(select(AuditEvent).where(AuditEvent.action == "submission.approve")).all()
    assert [(e.actor_user_id, e.object_id, e.organisation_id) for e in events] == [(sec.id, str(sid), org.id)]
    assert events[0].details == {"scope": "2025-Q1", "version": 1}


def test_rejection_needs_a_reason_and_keeps_it(session: Session, catalogue: Catalogue) -> None:
    org, sec = make_org(session), make_user(session)
    sid = _store(session, catalogue, org)
    for reason in (None, "", "   "):
        with pytest.raises(ApprovalError, match="needs a reason"):
            reject(session, sec, [sid], reason)
    with pytest.raises(ApprovalError, match="at most 500"):
        reject(session, sec, [sid], "x" * 501)
    assert _status(session, sid) == "validated"
    reject(session, sec, [sid], " figures double-count appeals ")
    session.commit()
    submission = session.get(Submission, sid)
    assert submission is not None
    assert (submission.status, submission.review_reason) == ("rejected", "figures double-count appeals")
    event = session.exec(select(AuditEvent).where(AuditEvent.action == "submission.reject")).one()
    assert event.actor_user_id == sec.id and event.details["reason"] == "figures double-count appeals"


def test_only_an_active_secretariat_or_admin_account_decides(session: Session, catalogue: Catalogue) -> None:
    org = make_org(session)
    sid = _store(session, catalogue, org)
    submitter = make_user(session, "sub-bob", "org_submitter", org.code)
    viewer = make_user(session, "view-cy", "org_viewer", org.code)
    for user in (submitter, viewer):
        with pytest.raises(ApprovalError, match="only the secretariat"):
            approve(session, user, [sid])
        with pytest.raises(ApprovalError, match="only the secretariat"):
            reject(session, user, [sid], "no")
        with pytest.raises(ApprovalError, match="only the secretariat"):
            acting_user(session, user.username)
    admin = make_user(session, "admin-di", "admin")
    gone = make_user(session, "sec-old")
    gone.is_active = False
    session.add(gone)
    session.commit()
    with pytest.raises(ApprovalError, match="deactivated"):
        acting_user(session, "sec-old")
    with pytest.raises(NotFoundError, match="no account"):
        acting_user(session, "nobody")
    assert acting_user(session, "admin-di").id == admin.id
    assert approve(session, admin, [sid]) == [sid]


def test_decisions_are_all_or_nothing_and_refuse_what_is_not_validated(
    session: Session, catalogue: Catalogue
) -> None:
    org, sec = make_org(session), make_user(session)
    first = _store(session, catalogue, org, "2025-Q1")
    second = _store(session, catalogue, org, "2025-Q2")
    third = _store(session, catalogue, org, "2025-Q3")
    with pytest.raises(NotFoundError, match="no submission with id 999999"):
        approve(session, sec, [first, 999999])
    assert _status(session, first) == "validated"
    with pytest.raises(ApprovalError, match="no submission given"):
        approve(session, sec, [])
    approve(session, sec, [first])
    reject(session, sec, [second], "wrong metric")
    session.commit()
    with pytest.raises(ApprovalError, match=f"submission {first} is already approved"):
        approve(session, sec, [third, first])
    with pytest.raises(ApprovalError, match=f"submission {second} is already rejected"):
        approve(session, sec, [second])
    with pytest.raises(ApprovalError, match=f"submission {first} is already approved"):
        reject(session, sec, [first], "too late")
    assert _status(session, third) == "validated"
    received = session.get(Submission, third)
    assert received is not None
    received.status = "received"
    session.add(received)
    session.commit()
    with pytest.raises(ApprovalError, match="is received, not validated"):
        approve(session, sec, [third])


def test_a_version_with_a_newer_live_version_cannot_be_approved(
    session: Session, catalogue: Catalogue
) -> None:
    org, sec = make_org(session), make_user(session)
    v1 = _store(session, catalogue, org, value=120)
    v2 = _store(session, catalogue, org, value=150, reason="late reports counted")
    with pytest.raises(ApprovalError, match="has a newer version"):
        approve(session, sec, [v1])
    reject(session, sec, [v2], "not plausible")
    assert approve(session, sec, [v1]) == [v1]  # the newer one is rejected: the older may count


# --- which version a release uses -----------------------------------------------------------


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        (["approved", "validated"], 1),  # a pending restatement keeps the approved figures
        (["approved", "rejected"], 1),  # a rejected newest version too
        (["approved", "approved"], 2),
        (["validated"], None),
        (["rejected", "approved"], 2),
        (["approved", "rejected", "approved"], 3),
        (["approved", "approved", "validated", "rejected"], 2),
        (["rejected", "rejected"], None),
    ],
)
def test_approved_submissions_picks_the_newest_approved_version(
    session: Session, catalogue: Catalogue, statuses: list[str], expected: int | None
) -> None:
    org, sec = make_org(session), make_user(session)
    other = make_org(session, "beta-video")
    other_id = _store(session, catalogue, other)  # another organisation's scope is independent
    approve(session, sec, [other_id])
    ids = []
    for version, status in enumerate(statuses, start=1):
        ids.append(
            _store(session, catalogue, org, value=100 + version, reason=None if version == 1 else "fix")
        )
        if status == "approved":
            approve(session, sec, [ids[-1]])
        elif status == "rejected":
            reject(session, sec, [ids[-1]], "no")
        session.commit()
    wanted = {other_id} | ({ids[expected - 1]} if expected else set())
    assert set(approved_submission_ids(session)) == wanted


_counter = itertools.count()


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    scopes=st.lists(
        st.lists(st.sampled_from(["validated", "approved", "rejected"]), min_size=1, max_size=5),
        min_size=1,
        max_size=4,
    )
)
def test_approved_submissions_agrees_with_a_plain_computation(
    session: Session, scopes: Sequence[Sequence[str]]
) -> None:
    org = session.exec(select(Organisation).where(Organisation.code == "ncmec")).one()
    reviewer = session.exec(select(User).where(User.username == "sec-prop")).first() or make_user(
        session, "sec-prop"
    )
    expected: set[int] = set()
    created: set[int] = set()
    for statuses in scopes:
        scope = f"prop-{next(_counter)}"
        previous: Submission | None = None
        newest_approved = None
        for version, status in enumerate(statuses, start=1):
            sub = Submission(
                organisation_id=org.id,
                channel="cli",
                scope=scope,
                checksum=f"{version:064d}",
                status=status,
                version=version,
                supersedes_id=None if previous is None else previous.id,
                supersede_reason=None if previous is None else "restated",
                reviewed_by_id=None if status == "validated" else reviewer.id,
                reviewed_at=None if status == "validated" else NOW,
                review_reason="no" if status == "rejected" else None,
            )
            session.add(sub)
            session.flush()
            assert sub.id is not None
            created.add(sub.id)
            if status == "approved":
                newest_approved = sub.id
            previous = sub
        if newest_approved is not None:
            expected.add(newest_approved)
    session.commit()
    assert set(approved_submission_ids(session)) & created == expected


# --- bulk decisions per period --------------------------------------------------------------


def test_bulk_approval_per_period_organisation_and_type(session: Session, catalogue: Catalogue) -> None:
    sec = make_user(session)
    acme, beta = make_org(session), make_org(session, "beta-video")
    line = make_org(session, "hotline-fr", "hotline")
    rows = {
        "acme_q1": _store(session, catalogue, acme, "2025-Q1"),
        "beta_q1": _store(session, catalogue, beta, "2025-Q1"),
        "acme_q2": _store(session, catalogue, acme, "2025-Q2"),
        "acme_m04": _store(session, catalogue, acme, "2025-04"),
        "acme_2024": _store(session, catalogue, acme, "2024-Q4"),
    }
    hotline_rows = [ObservationIn("ht_reports_received", parse_period("2025-01"), 40)]
    rows["line_m01"] = store_submission(
        session, catalogue, line, hotline_rows, channel="cli", scope="2025-01", actor="t", today=NOW
    ).submission_id
    session.commit()
    assert pending_submissions(session, "2025-Q1") == sorted(
        [rows["acme_q1"], rows["beta_q1"], rows["line_m01"]]
    )
    assert approve_period(session, sec, "2025-Q1", organisation="beta-video") == [rows["beta_q1"]]
    assert approve_period(session, sec, "2025-Q1", stakeholder_type="hotline") == [rows["line_m01"]]
    assert reject_period(session, sec, "2025-Q2", "quarter resubmitted monthly") == sorted(
        [rows["acme_q2"], rows["acme_m04"]]
    )
    assert approve_period(session, sec, "2025") == [rows["acme_q1"]]  # a year covers its quarters
    assert approve_period(session, sec, "2025") == []  # nothing pending any more
    session.commit()
    assert _status(session, rows["acme_2024"]) == "validated"
    with pytest.raises(NotFoundError, match="no organisation"):
        approve_period(session, sec, "2025", organisation="nobody")
    with pytest.raises(ApprovalError, match="needs a reason"):
        reject_period(session, sec, "2024-Q4", "")
    listed = list_submissions(session, status="rejected", period="2025")
    assert [(r.id, r.review_reason) for r in listed] == [
        (rows["acme_q2"], "quarter resubmitted monthly"),
        (rows["acme_m04"], "quarter resubmitted monthly"),
    ]


def test_bulk_approval_takes_only_the_newest_live_version(session: Session, catalogue: Catalogue) -> None:
    org, sec = make_org(session), make_user(session)
    _store(session, catalogue, org, value=1)
    v2 = _store(session, catalogue, org, value=2, reason="final figures")
    assert approve_period(session, sec, "2025-Q1") == [v2]
    session.commit()
    assert approved_submission_ids(session) == [v2]


# --- period locks ---------------------------------------------------------------------------


def test_a_locked_period_takes_only_restatements_until_unlocked(
    session: Session, catalogue: Catalogue
) -> None:
    acme, beta, sec = make_org(session), make_org(session, "beta-video"), make_user(session)
    q1 = _store(session, catalogue, acme, "2025-Q1", 120)
    with pytest.raises(ApprovalError, match=r"1 submission.* still await"):
        lock_period(session, sec, "2025")
    approve(session, sec, [q1])
    lock_period(session, sec, "2025")
    session.commit()
    assert [lock.period for lock in list_locks(session)] == ["2025"]
    with pytest.raises(ApprovalError, match="already locked"):
        lock_period(session, sec, "2025")

    for org, period in ((beta, "2025-Q1"), (acme, "2025-03"), (acme, "2025")):
        with pytest.raises(PeriodLocked, match="locked after approval"):
            _store(session, catalogue, org, period)
        session.rollback()
    with pytest.raises(RestatementNeedsReason):
        _store(session, catalogue, acme, "2025-Q1", 130)
    session.rollback()
    restated = _store(session, catalogue, acme, "2025-Q1", 130, reason="appeals were double counted")
    assert _status(session, restated) == "validated"
    assert _store(session, catalogue, acme, "2024-Q4") > 0  # another year stays open

    with pytest.raises(ApprovalError, match="needs a reason"):
        unlock_period(session, sec, "2025", " ")
    unlock_period(session, sec, "2025", "late member joined")
    session.commit()
    assert _store(session, catalogue, beta, "2025-Q1") > 0
    with pytest.raises(ApprovalError, match="not locked"):
        unlock_period(session, sec, "2025", "again")
    actions = session.exec(
        select(AuditEvent.action, AuditEvent.object_id, AuditEvent.actor_user_id)
        .where(col(AuditEvent.action).in_(["period.lock", "period.unlock"]))
        .order_by(col(AuditEvent.id))
    ).all()
    assert actions == [("period.lock", "2025", sec.id), ("period.unlock", "2025", sec.id)]
    unlock = session.exec(select(AuditEvent).where(AuditEvent.action == "period.unlock")).one()
    assert unlock.details == {"reason": "late member joined"}


def test_locking_a_month_leaves_the_quarter_and_the_year_open(session: Session, catalogue: Catalogue) -> None:
    org, sec = make_org(session), make_user(session)
    lock_period(session, sec, "2025-03")
    session.commit()
    assert _store(session, catalogue, org, "2025-Q1") > 0
    with pytest.raises(PeriodLocked, match="2025-03"):
        _store(session, catalogue, org, "2025-03")


def test_a_submission_over_several_periods_is_refused_when_one_is_locked(
    session: Session, catalogue: Catalogue
) -> None:
    org, sec = make_org(session), make_user(session)
    lock_period(session, sec, "2025-02")
    session.commit()
    rows = [ObservationIn("co_items_actioned", parse_period(p), 5) for p in ("2025-01", "2025-02", "2025-03")]
    with pytest.raises(PeriodLocked, match="2025-02"):
        store_submission(
            session, catalogue, org, rows, channel="cli", scope="2025-01..2025-03", actor="t", today=NOW
        )


def test_the_pipeline_reports_a_locked_period_as_a_problem(session: Session, catalogue: Catalogue) -> None:
    org, sec = make_org(session), make_user(session)
    lock_period(session, sec, "2025-Q1")
    session.commit()
    data = (
        b"reporter,period,metric,country,value,unit,flag\nacme-social,2025-Q1,co_items_actioned,,100,count,\n"
    )
    result = ingest_bytes(session, catalogue, data, "q1.csv", org.code, dry_run=False, today=NOW)
    assert result.submission_id is None
    assert [p.rule for p in result.report.problems] == ["period.locked"]


def test_only_the_secretariat_locks(session: Session) -> None:
    org = make_org(session)
    submitter = make_user(session, "sub-bob", "org_submitter", org.code)
    with pytest.raises(ApprovalError, match="only the secretariat"):
        lock_period(session, submitter, "2025")
    with pytest.raises(ApprovalError, match="only the secretariat"):
        unlock_period(session, submitter, "2025", "why")


# --- the demo -------------------------------------------------------------------------------


def test_the_demo_secretariat_approves_the_newest_demo_versions(
    session: Session, catalogue: Catalogue
) -> None:
    from datetime import date

    load_demo_alliance(session, catalogue, seed=20121205, today=date(2021, 4, 15))
    session.commit()
    approved = approve_demo_data(session)
    session.commit()
    current_demo = set(current_submission_ids(session, "demo"))
    assert approved == len(current_demo) > 0
    assert set(approved_submission_ids(session)) == current_demo
    assert approve_demo_data(session) == 0  # again: nothing new
    reviewer = acting_user(session, SECRETARIAT_USERNAME)
    assert reviewer.role == "secretariat"


# --- the command line -----------------------------------------------------------------------


def test_cli_approves_rejects_lists_and_locks(
    session: Session, catalogue: Catalogue, cli_env: dict[str, str]
) -> None:
    org = make_org(session)
    make_user(session)
    make_user(session, "sub-bob", "org_submitter", org.code)
    first = _store(session, catalogue, org, "2025-Q1")
    second = _store(session, catalogue, org, "2025-Q2")
    session.close()

    # one real `hub` process proves the installed script reaches the approval commands; the
    # rest run the same entry point in this process (hubcli.hub_in_process), 2-3 s less each
    refused = hub_process(cli_env, "approve", str(first), "--as", "sub-bob")
    assert refused.returncode == 1 and "only the secretariat" in refused.stderr
    both = hub_in_process(cli_env, "approve", str(first), "--period", "2025", "--as", "sec-ann")
    assert both.returncode == 1 and "not both" in both.stderr
    ok = hub_in_process(cli_env, "approve", str(first), "--as", "sec-ann")
    assert ok.returncode == 0, ok.stderr
    assert f"approved 1 submission(s): {first}" in ok.stdout
    no_reason = hub_in_process(cli_env, "reject", str(second), "--as", "sec-ann")
    assert no_reason.returncode == 1 and "needs a reason" in no_reason.stderr
    rejected = hub_in_process(
        cli_env, "reject", "--period", "2025-Q2", "--reason", "wrong unit", "--as", "sec-ann"
    )
    assert rejected.returncode == 0 and f"rejected 1 submission(s): {second}" in rejected.stdout
    listed = hub_in_process(cli_env, "submissions", "list", "--status", "rejected")
    assert listed.returncode == 0
    assert listed.stdout.splitlines()[1].split("\t")[:7] == [
        str(second),
        "acme-social",
        "company",
        "2025-Q2",
        "1",
        "cli",
        "rejected",
    ]
    assert listed.stdout.splitlines()[1].endswith("wrong unit")
    assert hub_in_process(cli_env, "submissions", "list", "--status", "bogus").returncode == 1
    locked = hub_in_process(cli_env, "period", "lock", "2025", "--as", "sec-ann")
    assert locked.returncode == 0, locked.stderr
    assert "2025\t" in hub_in_process(cli_env, "period", "list").stdout
    unlock = hub_in_process(cli_env, "period", "unlock", "2025", "--reason", "reopened", "--as", "sec-ann")
    assert unlock.returncode == 0, unlock.stderr
    unknown = hub_in_process(cli_env, "approve", "424242", "--as", "sec-ann")
    assert unknown.returncode == 1 and "no submission with id 424242" in unknown.stderr


def test_a_period_with_pending_submissions_locks_only_when_allowed(
    session: Session, catalogue: Catalogue
) -> None:
    org, sec = make_org(session), make_user(session)
    _store(session, catalogue, org, "2025-Q1")
    with pytest.raises(ApprovalError, match="decide them first"):
        lock_period(session, sec, "2025-Q1")
    lock_period(session, sec, "2025-Q1", allow_pending=True)
    session.commit()
    event = session.exec(select(AuditEvent).where(AuditEvent.action == "period.lock")).one()
    assert event.details == {"pending": 1} and event.object_id == "2025-Q1"
