"""Releases: built from approved data only, numbered, immutable once published (in code and in
the database), readable later, with a revisions log that says what changed and why."""

from __future__ import annotations

import hashlib
import io
import math

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from alembic import command
from factories import NOW, make_org, make_user
from hubcli import hub_in_process, hub_process
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import inspect, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session, select

import hub.releases
from hub import migrate
from hub.approval import ApprovalError, approve, reject
from hub.catalogue import Catalogue
from hub.errors import NotFoundError
from hub.figures import KEY_COLUMNS, conform
from hub.models import AuditEvent, Organisation, Release, ReleaseTable, User
from hub.periods import parse_period
from hub.releases import (
    REVISIONS,
    ReleaseError,
    add_notice,
    build_release,
    content_checksum,
    diff_releases,
    latest_published_release,
    list_releases,
    notices,
    publish_release,
    read_release_table,
    revisions,
    unprotected_compose,
    withdraw_release,
)
from hub.store import store_submission
from hub.validation import ObservationIn

DIMS_T = {d: "_T" for d in ("country", "category", "notice_source", "content_type", "time_bucket")}


def _store(
    session: Session,
    catalogue: Catalogue,
    org: Organisation,
    period: str,
    values: dict[str, float],
    reason: str | None = None,
) -> int:
    rows = [
        ObservationIn(
            "co_items_actioned", parse_period(period), value, dims={"notice_source": source} if source else {}
        )
        for source, value in values.items()
    ]
    result = store_submission(
        session,
        catalogue,
        org,
        rows,
        channel="cli",
        scope=period,
        actor="t",
        supersede_reason=reason,
        today=NOW,
    )
    session.commit()
    return result.submission_id


@pytest.fixture
def world(session: Session, catalogue: Catalogue) -> dict[str, object]:
    """Two companies and a hotline; one company's Q1 approved, the other's pending, one rejected."""
    sec = make_user(session)
    acme, beta = make_org(session, "acme-social"), make_org(session, "beta-video", country="DE")
    gamma = make_org(session, "gamma-host", country="DE")
    a1 = _store(session, catalogue, acme, "2025-Q1", {"": 120, "hotline": 40})
    b1 = _store(session, catalogue, beta, "2025-Q1", {"": 30})
    g1 = _store(session, catalogue, gamma, "2025-Q1", {"": 99})
    approve(session, sec, [a1, b1])
    reject(session, sec, [g1], "test figures")
    session.commit()
    return {"sec": sec, "acme": acme, "beta": beta, "gamma": gamma, "a1": a1, "b1": b1, "g1": g1}


def _build(session: Session, catalogue: Catalogue, sec: User, title: str = "Release") -> Release:
    release = build_release(
        session, catalogue=catalogue, title=title, built_by=sec, compose=unprotected_compose
    )
    session.commit()
    return release


# --- building -------------------------------------------------------------------------------


def test_a_release_holds_approved_data_only_with_coverage_and_checksums(
    session: Session, catalogue: Catalogue, world: dict[str, object]
) -> None:
    sec = world["sec"]
    assert isinstance(sec, User)
    release = _build(session, catalogue, sec, "Q1 2025")
    assert (release.number, release.status, release.previous_release_id) == (1, "built", None)
    assert release.built_at is not None and release.published_at is None and release.built_by_id == sec.id
    observations = read_release_table(session, 1, "observations")
    assert sorted(
        zip(observations["organisation"], observations["notice_source"], observations["value"], strict=True)
    ) == [
        ("acme-social", "_T", 120.0),
        ("acme-social", "hotline", 40.0),
        ("beta-video", "_T", 30.0),
    ]  # gamma's rejected figures are not there
    assert set(observations["submission_id"]) == {world["a1"], world["b1"]}
    coverage = read_release_table(session, 1, "coverage")
    assert coverage.to_dict("records") == [
        {
            "metric": "co_items_actioned",
            "period": "2025-Q1",
            "period_kind": "quarter",
            "stakeholder_type": "company",
            "organisations": 2,
        }
    ]
    assert len(read_release_table(session, 1, REVISIONS)) == 0  # nothing published before
    stored = {
        t.name: t for t in session.exec(select(ReleaseTable).where(ReleaseTable.release_id == release.id))
    }
    assert set(stored) == {"observations", "coverage", REVISIONS}
    for row in stored.values():
        assert row.checksum == hashlib.sha256(row.content).hexdigest()
    assert release.content_checksum == content_checksum({n: t.checksum for n, t in stored.items()})
    assert stored["observations"].row_count == 3
    event = session.exec(select(AuditEvent).where(AuditEvent.action == "release.build")).one()
    assert event.actor_user_id == sec.id and event.details["tables"] == {"observations": 3, "coverage": 1}


def test_tables_come_back_with_their_types(
    session: Session, catalogue: Catalogue, world: dict[str, object]
) -> None:
    sec = world["sec"]
    assert isinstance(sec, User)
    composed = unprotected_compose(session, catalogue)
    _build(session, catalogue, sec)
    for name, frame in composed.items():  # codes (categoricals) come back as the text they stand for
        coded = [column for column, kind in frame.dtypes.items() if isinstance(kind, pd.CategoricalDtype)]
        assert name != "observations" or coded  # the case is exercised
        as_text = frame.astype(dict.fromkeys(coded, "string")).reset_index(drop=True)
        pd.testing.assert_frame_equal(read_release_table(session, 1, name), as_text)


def test_numbers_follow_on_and_a_composer_adds_tables(
    session: Session, catalogue: Catalogue, world: dict[str, object]
) -> None:
    sec = world["sec"]
    assert isinstance(sec, User)

    def with_indicators(s: Session, c: Catalogue) -> dict[str, pd.DataFrame]:
        tables = unprotected_compose(s, c)
        indicators = conform(
            pd.DataFrame(
                {
                    "metric": ["co_items_actioned"],
                    "period": ["2025-Q1"],
                    "period_kind": ["quarter"],
                    "level": ["alliance"],
                    "entity": ["ALL"],
                    "statistic": ["value"],
                    "value": [150.0],
                    "coverage": [2],
                }
            )
        )
        return {**tables, "indicators": indicators}

    assert _build(session, catalogue, sec).number == 1
    second = build_release(
        session, catalogue=catalogue, title="With indicators", built_by=sec, compose=with_indicators
    )
    session.commit()
    assert second.number == 2
    assert read_release_table(session, 2, "indicators")["value"].tolist() == [150.0]
    assert [(r.number, sorted(r.tables)) for r in list_releases(session)] == [
        (1, ["coverage", "observations", REVISIONS]),
        (2, ["coverage", "indicators", "observations", REVISIONS]),
    ]


def test_a_rebuild_compares_only_the_tables_that_changed_since_the_published_release(
    session: Session, catalogue: Catalogue, world: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    sec = world["sec"]
    assert isinstance(sec, User)
    first = _build(session, catalogue, sec)
    publish_release(session, first.number, sec)
    session.commit()
    read: list[str] = []
    original = hub.releases.read_release_table

    def counted(session: Session, number: int, name: str, **kwargs: object) -> pd.DataFrame:
        read.append(name)
        return original(session, number, name)

    monkeypatch.setattr(hub.releases, "read_release_table", counted)
    again = _build(session, catalogue, sec, "Nothing new")  # byte for byte the same tables
    assert read == [] and len(original(session, again.number, REVISIONS)) == 0

    acme = world["acme"]
    assert isinstance(acme, Organisation)
    later = _store(session, catalogue, acme, "2025-Q2", {"": 70})
    approve(session, sec, [later])
    session.commit()
    changed = _build(session, catalogue, sec, "Q2")  # new observations and coverage
    assert sorted(read) == ["coverage", "observations"]
    log = original(session, changed.number, REVISIONS)
    assert set(zip(log["table"], log["change"], log["reason"], strict=True)) == {
        ("observations", "added", "new_data"),
        ("coverage", "added", "new_data"),  # explained by the new observations
    }


@pytest.mark.parametrize(
    ("tables", "problem"),
    [
        ({}, "no table"),
        ({"Bad-Name": pd.DataFrame()}, "table name"),
        ({REVISIONS: pd.DataFrame()}, "table name"),
        ({"mystery": pd.DataFrame({"a": [1]})}, "no key for table 'mystery'"),
        ({"coverage": pd.DataFrame({"metric": ["m"]})}, "lacks its key columns period, stakeholder_type"),
    ],
)
def test_a_composer_s_bad_tables_are_refused(
    session: Session, catalogue: Catalogue, tables: dict[str, pd.DataFrame], problem: str
) -> None:
    sec = make_user(session)
    with pytest.raises(ReleaseError, match=problem):
        build_release(session, catalogue=catalogue, title="x", built_by=sec, compose=lambda s, c: tables)
    assert session.exec(select(Release)).first() is None


def test_only_the_secretariat_builds_publishes_and_titles_are_checked(
    session: Session, catalogue: Catalogue, world: dict[str, object]
) -> None:
    acme = world["acme"]
    assert isinstance(acme, Organisation)
    submitter = make_user(session, "sub-bob", "org_submitter", acme.code)
    with pytest.raises(ApprovalError, match="only the secretariat"):
        build_release(
            session, catalogue=catalogue, title="x", built_by=submitter, compose=unprotected_compose
        )
    sec = world["sec"]
    assert isinstance(sec, User)
    with pytest.raises(ReleaseError, match="title"):
        build_release(session, catalogue=catalogue, title="  ", built_by=sec, compose=unprotected_compose)
    _build(session, catalogue, sec)
    with pytest.raises(ApprovalError, match="only the secretariat"):
        publish_release(session, 1, submitter)


# --- publishing and immutability ------------------------------------------------------------


def test_publishing_then_nothing_changes_in_code_or_in_the_database(
    session: Session, catalogue: Catalogue, world: dict[str, object]
) -> None:
    sec = world["sec"]
    assert isinstance(sec, User)
    _build(session, catalogue, sec)
    assert latest_published_release(session) is None
    release = publish_release(session, 1, sec)
    session.commit()
    assert (
        release.status == "published"
        and release.published_at is not None
        and release.published_by_id == sec.id
    )
    assert latest_published_release(session) == release
    with pytest.raises(ReleaseError, match="only a built release"):
        publish_release(session, 1, sec)

    # through the ORM: refused before any SQL is sent
    table = session.exec(select(ReleaseTable).where(ReleaseTable.name == "observations")).one()
    table.content = b"forged"
    with pytest.raises(ReleaseError, match="its tables never change"):
        session.flush()
    session.rollback()
    release = session.exec(select(Release)).one()
    release.title = "Renamed"
    with pytest.raises(ReleaseError, match="can only be withdrawn"):
        session.flush()
    session.rollback()
    release = session.exec(select(Release)).one()
    session.delete(release)
    with pytest.raises(ReleaseError, match="never deleted"):
        session.flush()
    session.rollback()
    assert release.id is not None
    session.add(
        ReleaseTable(release_id=release.id, name="extra", row_count=0, checksum="0" * 64, content=b"")
    )
    with pytest.raises(ReleaseError, match="its tables never change"):
        session.flush()
    session.rollback()

    # behind the code's back: the database's triggers refuse
    for statement in (
        "UPDATE release_table SET content = :x",
        "DELETE FROM release_table",
        "UPDATE release SET title = 'Renamed'",
        "UPDATE release SET status = 'built'",
        "UPDATE release SET content_checksum = :c",
        "DELETE FROM release",
        "INSERT INTO release_table (release_id, name, row_count, checksum, content) "
        "VALUES (:r, 'extra', 0, :c, :x)",
    ):
        connection = session.connection()
        with pytest.raises(DBAPIError, match="release is published"):
            connection.execute(text(statement), {"x": b"forged", "c": "0" * 64, "r": release.id})
        session.rollback()
    assert read_release_table(session, 1, "observations")["value"].sum() == 190.0


def test_withdrawal_needs_a_reason_keeps_the_tables_and_is_final(
    session: Session, catalogue: Catalogue, world: dict[str, object]
) -> None:
    sec = world["sec"]
    assert isinstance(sec, User)
    _build(session, catalogue, sec)
    with pytest.raises(ReleaseError, match="only a published release"):
        withdraw_release(session, 1, sec, "mistake")
    publish_release(session, 1, sec)
    with pytest.raises(ReleaseError, match="needs a reason"):
        withdraw_release(session, 1, sec, " ")
    withdrawn = withdraw_release(session, 1, sec, "a member's figures were wrong")
    session.commit()
    assert withdrawn.status == "withdrawn" and withdrawn.withdrawn_reason == "a member's figures were wrong"
    assert latest_published_release(session) is None
    assert len(read_release_table(session, 1, "observations")) == 3
    with pytest.raises(ReleaseError, match="only a published release"):
        withdraw_release(session, 1, sec, "again")
    with pytest.raises(DBAPIError, match="release is published"):
        session.connection().execute(text("UPDATE release SET status = 'published'"))
    session.rollback()


def test_a_release_built_against_an_older_publication_cannot_be_published(
    session: Session, catalogue: Catalogue, world: dict[str, object]
) -> None:
    sec = world["sec"]
    assert isinstance(sec, User)
    _build(session, catalogue, sec)
    _build(session, catalogue, sec)  # both built against "nothing published"
    publish_release(session, 1, sec)
    session.commit()
    with pytest.raises(ReleaseError, match="build a new release"):
        publish_release(session, 2, sec)
    assert (
        _build(session, catalogue, sec).previous_release_id
        == session.exec(select(Release.id).where(Release.number == 1)).one()
    )


def test_notices_are_added_to_published_releases(
    session: Session, catalogue: Catalogue, world: dict[str, object]
) -> None:
    sec = world["sec"]
    assert isinstance(sec, User)
    _build(session, catalogue, sec)
    publish_release(session, 1, sec)
    add_notice(session, 1, sec, "Beta Video's Q1 figure will be restated.")
    session.commit()
    assert [n.text for n in notices(session, 1)] == ["Beta Video's Q1 figure will be restated."]
    with pytest.raises(ReleaseError, match="1 to 2000"):
        add_notice(session, 1, sec, "")
    with pytest.raises(NotFoundError, match="no release number 7"):
        add_notice(session, 7, sec, "x")


# --- the revisions log ----------------------------------------------------------------------


def test_a_restated_figure_shows_old_new_and_the_reason(
    session: Session, catalogue: Catalogue, world: dict[str, object]
) -> None:
    sec, acme, beta = world["sec"], world["acme"], world["beta"]
    assert isinstance(sec, User) and isinstance(acme, Organisation) and isinstance(beta, Organisation)
    _build(session, catalogue, sec)
    publish_release(session, 1, sec)
    session.commit()
    # acme restates Q1 (approved); beta restates too but it is still pending; beta adds Q2
    a2 = _store(session, catalogue, acme, "2025-Q1", {"": 150, "hotline": 40}, reason="appeals were left out")
    _store(session, catalogue, beta, "2025-Q1", {"": 31}, reason="typo")
    b2 = _store(session, catalogue, beta, "2025-Q2", {"": 35})
    approve(session, sec, [a2, b2])
    session.commit()
    second = _build(session, catalogue, sec)
    assert second.previous_release_id == session.exec(select(Release.id).where(Release.number == 1)).one()
    log = read_release_table(session, 2, REVISIONS)
    rows = {(r["table"], r["key"]): r for r in log.to_dict("records")}
    restated = rows[("observations", "organisation=acme-social|metric=co_items_actioned|period=2025-Q1")]
    assert (restated["change"], restated["old_value"], restated["new_value"]) == ("changed", 120.0, 150.0)
    assert restated["abs_change"] == 30.0 and restated["rel_change"] == pytest.approx(0.25)
    assert (restated["reason"], restated["detail"]) == ("restatement", "appeals were left out")
    added = rows[("observations", "organisation=beta-video|metric=co_items_actioned|period=2025-Q2")]
    assert (added["change"], added["reason"], math.isnan(added["old_value"]), added["new_value"]) == (
        "added",
        "new_data",
        True,
        35.0,
    )
    new_coverage = rows[("coverage", "metric=co_items_actioned|period=2025-Q2|stakeholder_type=company")]
    assert (new_coverage["change"], new_coverage["reason"], new_coverage["new_value"]) == (
        "added",
        "new_data",
        1.0,
    )
    # the unchanged hotline breakdown, the pending beta restatement and Q1 coverage are not listed
    assert len(log) == 3
    pd.testing.assert_frame_equal(diff_releases(session, 1, 2, catalogue=catalogue), log)


def _obs(rows: list[tuple[str, str, float, int, int, str]]) -> pd.DataFrame:
    """Observations (organisation, period, value, submission_id, version, reason) of one metric."""
    frame = pd.DataFrame(
        rows, columns=["organisation", "period", "value", "submission_id", "version", "supersede_reason"]
    )
    frame["metric"] = "m"
    frame["stakeholder_type"] = "company"
    frame["org_country"] = frame["organisation"].map({"a": "FR", "b": "DE", "c": "DE"})
    for dim in (
        "country",
        "category",
        "notice_source",
        "content_type",
        "time_bucket",
        "counterpart",
        "service",
        "recipient_type",
        "detail_level",
        "jurisdiction",
    ):
        frame[dim] = "_T"
    return frame


def _ind(rows: list[tuple[str, str, str, float, bool]]) -> pd.DataFrame:
    """Indicator rows (level, entity, period, value, suppressed) of metric m."""
    frame = pd.DataFrame(rows, columns=["level", "entity", "period", "value", "suppressed"])
    frame["metric"] = "m"
    frame["statistic"] = "value"
    return conform(frame).assign(suppressed=frame["suppressed"].to_numpy())


def test_revisions_by_hand_attribute_aggregates_to_their_observations() -> None:
    before = {
        "observations": _obs(
            [("a", "2025-01", 10, 1, 1, ""), ("b", "2025-01", 20, 2, 1, ""), ("c", "2025-02", 5, 3, 1, "")]
        ),
        "indicators": _ind(
            [
                ("alliance", "ALL", "2025-Q1", 35, False),
                ("country", "FR", "2025-Q1", 10, False),
                ("country", "DE", "2025-Q1", 25, False),
                ("organisation", "c", "2025-02", 5, True),
                ("organisation", "b", "2025-01", 20, False),
            ]
        ),
    }
    after = {
        "observations": _obs(
            [
                ("a", "2025-01", 12, 4, 2, "late notices"),
                ("b", "2025-01", 20, 2, 1, ""),
                ("c", "2025-02", 6, 3, 1, ""),
                ("c", "2025-03", 7, 5, 1, ""),
            ]
        ),
        "indicators": _ind(
            [
                ("alliance", "ALL", "2025-Q1", 45, False),
                ("country", "FR", "2025-Q1", 12, False),
                ("country", "DE", "2025-Q1", 33, False),
                ("organisation", "c", "2025-02", 6, True),  # hidden before and after: not listed
                ("organisation", "b", "2025-01", 20, True),  # newly suppressed: no value shown
            ]
        ),
    }
    log = revisions(
        before, after, {"observations": ("organisation", "metric", "period"), "indicators": KEY_COLUMNS}
    )
    got = {
        (r["table"], r["key"]): (r["change"], r["old_value"], r["new_value"], r["reason"], r["detail"])
        for r in log.to_dict("records")
    }
    nan = got[("indicators", "metric=m|period=2025-01|level=organisation|entity=b|statistic=value")]
    assert nan[0] == "suppressed" and nan[1] == 20.0 and math.isnan(nan[2]) and nan[3:] == ("suppression", "")
    del got[("indicators", "metric=m|period=2025-01|level=organisation|entity=b|statistic=value")]
    added = got.pop(("observations", "organisation=c|metric=m|period=2025-03"))
    assert added[0] == "added" and math.isnan(added[1]) and added[2:] == (7.0, "new_data", "")
    assert got == {
        ("observations", "organisation=a|metric=m|period=2025-01"): (
            "changed",
            10.0,
            12.0,
            "restatement",
            "late notices",
        ),
        ("observations", "organisation=c|metric=m|period=2025-02"): ("changed", 5.0, 6.0, "correction", ""),
        # the alliance total rests on a's restatement (and c's new month): restatement wins
        ("indicators", "metric=m|period=2025-Q1|level=alliance|entity=ALL|statistic=value"): (
            "changed",
            35.0,
            45.0,
            "restatement",
            "late notices",
        ),
        ("indicators", "metric=m|period=2025-Q1|level=country|entity=FR|statistic=value"): (
            "changed",
            10.0,
            12.0,
            "restatement",
            "late notices",
        ),
        # Germany: c's new month, no restatement
        ("indicators", "metric=m|period=2025-Q1|level=country|entity=DE|statistic=value"): (
            "changed",
            25.0,
            33.0,
            "new_data",
            "",
        ),
    }


def test_revisions_refuse_ambiguous_or_unkeyed_tables() -> None:
    frame = pd.DataFrame({"metric": ["m", "m"], "period": ["2025", "2025"], "value": [1.0, 2.0]})
    with pytest.raises(ReleaseError, match="same key"):
        revisions({"t": frame}, {"t": frame.iloc[:1]}, {"t": ("metric", "period")})
    with pytest.raises(ReleaseError, match="no key for table 't'"):
        revisions({"t": frame}, {"t": frame}, {})
    with pytest.raises(ReleaseError, match="lacks columns value"):
        revisions({"t": frame.drop(columns="value")}, {"t": frame.iloc[:1]}, {"t": ("metric",)})
    log = revisions({"t": frame.iloc[:1]}, {"u": frame.iloc[:1]}, {"t": ("metric",), "u": ("metric",)})
    assert log[["table", "change", "reason"]].values.tolist() == [
        ["t", "table_removed", "table"],
        ["u", "table_added", "table"],
    ]


cells = st.dictionaries(
    st.tuples(st.sampled_from(["a", "b", "c"]), st.sampled_from(["2025-01", "2025-02"])),
    st.tuples(st.one_of(st.none(), st.integers(0, 5).map(float)), st.booleans()),
    max_size=6,
)


@settings(max_examples=50, deadline=None)
@given(old=cells, new=cells)
def test_revisions_agree_with_a_plain_comparison(
    old: dict[tuple[str, str], tuple[float | None, bool]],
    new: dict[tuple[str, str], tuple[float | None, bool]],
) -> None:
    def frame(cells: dict[tuple[str, str], tuple[float | None, bool]]) -> pd.DataFrame:
        return pd.DataFrame(
            [(k[0], k[1], np.nan if v[0] is None else v[0], v[1]) for k, v in cells.items()],
            columns=["entity", "period", "value", "suppressed"],
        ).astype({"entity": "string", "period": "string", "value": "float64", "suppressed": "bool"})

    log = revisions({"t": frame(old)}, {"t": frame(new)}, {"t": ("entity", "period")})
    expected = {}
    for key in set(old) | set(new):
        label = f"entity={key[0]}|period={key[1]}"
        if key not in new:
            expected[label] = ("removed", None if old[key][1] else old[key][0], None)
        elif key not in old:
            expected[label] = ("added", None, None if new[key][1] else new[key][0])
        else:
            (ov, os_), (nv, ns) = old[key], new[key]
            if os_ and ns:
                continue
            if os_ != ns:
                expected[label] = (
                    "unsuppressed" if os_ else "suppressed",
                    None if os_ else ov,
                    None if ns else nv,
                )
            elif ov != nv:
                expected[label] = ("changed", ov, nv)

    def plain(x: float) -> float | None:
        return None if pd.isna(x) else float(x)

    got = {
        r["key"]: (r["change"], plain(r["old_value"]), plain(r["new_value"])) for r in log.to_dict("records")
    }
    assert got == expected
    for r in log.to_dict("records"):
        if r["change"] == "changed" and r["old_value"] not in (0.0,) and not pd.isna(r["old_value"]):
            assert r["rel_change"] == pytest.approx(
                (r["new_value"] - r["old_value"]) / r["old_value"], nan_ok=True
            )


# --- the command line -----------------------------------------------------------------------


def test_cli_builds_publishes_shows_and_diffs(
    session: Session, catalogue: Catalogue, world: dict[str, object], cli_env: dict[str, str]
) -> None:
    session.close()
    # one real `hub` process proves the installed script reaches the release commands; the
    # rest run the same entry point in this process (hubcli.hub_in_process), 2-3 s less each
    built = hub_process(cli_env, "release", "build", "--title", "First", "--as", "sec-ann")
    assert built.returncode == 0, built.stderr
    assert built.stdout.startswith("built release 1 (")
    published = hub_in_process(cli_env, "release", "publish", "1", "--as", "sec-ann")
    assert published.returncode == 0 and "published release 1" in published.stdout
    again = hub_in_process(cli_env, "release", "publish", "1", "--as", "sec-ann")
    assert again.returncode == 1 and "only a built release" in again.stderr
    assert (
        hub_in_process(
            cli_env, "release", "notice", "1", "--text", "Q2 follows.", "--as", "sec-ann"
        ).returncode
        == 0
    )
    assert hub_in_process(cli_env, "release", "build", "--title", "Second", "--as", "sec-ann").returncode == 0
    listing = hub_in_process(cli_env, "release", "list").stdout.splitlines()
    assert [line.split("\t")[:2] for line in listing[1:]] == [["1", "published"], ["2", "built"]]
    shown = hub_in_process(cli_env, "release", "show", "1")
    assert "status: published" in shown.stdout and "table targets: 17 row(s)" in shown.stdout
    # the protected release: no organisation here consented to be named, so none of their own
    # figures is published, only indicators over them
    assert "table observations: 0 row(s)" in shown.stdout and "table indicators: " in shown.stdout
    assert "notice " in shown.stdout and "Q2 follows." in shown.stdout
    table = hub_in_process(cli_env, "release", "show", "1", "--table", "coverage")
    assert table.stdout.splitlines() == [
        "metric\tperiod\tperiod_kind\tstakeholder_type\torganisations",
        "co_items_actioned\t2025-Q1\tquarter\tcompany\t2",
    ]
    missing = hub_in_process(cli_env, "release", "show", "1", "--table", "nope")
    assert missing.returncode == 1 and "has no table 'nope'" in missing.stderr
    diff = hub_in_process(cli_env, "release", "diff", "1", "2")
    assert diff.returncode == 0 and diff.stdout.startswith("table\tkey\tmetric")
    withdrawn = hub_in_process(cli_env, "release", "withdraw", "1", "--reason", "wrong", "--as", "sec-ann")
    assert withdrawn.returncode == 0, withdrawn.stderr
    assert hub_in_process(cli_env, "release", "build", "--title", "x", "--as", "nobody").returncode == 1


def test_a_figure_dropped_by_a_restatement_is_explained_by_it() -> None:
    before = _obs(
        [("a", "2025-01", 10, 1, 1, ""), ("a", "2025-01", 3, 1, 1, ""), ("b", "2025-01", 20, 2, 1, "")]
    )
    before.loc[1, "metric"] = "m2"
    after = _obs([("a", "2025-01", 10, 4, 2, "m2 was not ours to report")])
    log = revisions(
        {"observations": before},
        {"observations": after},
        {"observations": ("organisation", "metric", "period")},
    )
    got = {r["key"]: (r["change"], r["old_value"], r["reason"], r["detail"]) for r in log.to_dict("records")}
    assert got == {
        "organisation=a|metric=m2|period=2025-01": (
            "removed",
            3.0,
            "restatement",
            "m2 was not ours to report",
        ),
        "organisation=b|metric=m|period=2025-01": ("removed", 20.0, "removed_data", ""),
    }  # a's m: same value from the restated version, not listed


def test_the_schema_is_at_revision_0007_and_matches_the_models(engine: Engine) -> None:
    config = migrate.alembic_config(engine)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.check(config)  # raises if the models drifted from the migrations
    assert migrate.current_revision(engine) == migrate.head_revision() == "0007"
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0004")  # drops the triggers, tables and columns again
    assert migrate.current_revision(engine) == "0004"
    tables = {"scheduled_job", "scheduled_run", "period_lock", "build_request"}
    assert not tables & set(inspect(engine).get_table_names())
    migrate.upgrade(engine)
    assert migrate.current_revision(engine) == "0007"
    assert tables <= set(inspect(engine).get_table_names())


def test_nothing_approved_nothing_to_release(session: Session, catalogue: Catalogue) -> None:
    sec, org = make_user(session), make_org(session, "acme-social")
    _store(session, catalogue, org, "2025-Q1", {"": 1})  # validated, not approved
    with pytest.raises(ReleaseError, match="nothing to release"):
        build_release(session, catalogue=catalogue, title="Empty", built_by=sec, compose=unprotected_compose)


def test_categorical_text_is_stored_as_the_text_it_stands_for() -> None:
    """The indicator engine's text columns are categoricals: a release stores them as text, in
    the very file pandas would write for the text (schema and all), so every reader, the
    hub's and the public's, gets the text back; the hub's key matching may read them coded."""
    text = pd.DataFrame(
        {
            "entity": pd.Series(["b", "a", None, "é"], dtype="string"),
            "value": [1.0, float("nan"), 3.0, 4.0],
            "note": pd.Series(["x", "", "y", None], dtype="string"),
        }
    )
    coded = text.assign(entity=pd.Categorical(text["entity"], categories=["é", "b", "a", "unused"]))
    plain = io.BytesIO()
    text.to_parquet(plain, index=False, engine="pyarrow", compression="zstd", write_statistics=["value"])
    stored = hub.releases.to_parquet(coded)
    assert pq.ParquetFile(io.BytesIO(stored)).metadata.metadata == pq.ParquetFile(plain).metadata.metadata
    pd.testing.assert_frame_equal(pd.read_parquet(io.BytesIO(stored)), text)
    pd.testing.assert_frame_equal(hub.releases.from_parquet(stored), text)
    assert hub.releases.to_parquet(text) == plain.getvalue()  # as pandas writes it (no text statistics)
    read_coded = hub.releases.from_parquet(stored, ["entity", "value"], categorical=True)
    assert isinstance(read_coded["entity"].dtype, pd.CategoricalDtype)
    pd.testing.assert_frame_equal(read_coded.astype({"entity": "string"}), text[["entity", "value"]])
