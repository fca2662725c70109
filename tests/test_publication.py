"""A release as `hub release build` makes it: approved data, indicators, disclosure control,
targets, reconciliation, on a real database; and nothing in it that may not be public."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest
from sqlmodel import Session

import hub.publication
from hub.approval import approve
from hub.auth import create_user
from hub.catalogue import Catalogue
from hub.disclosure import KNOWN_VALUE_COLUMNS, build_constraints, load_policy, public_view
from hub.disclosure_audit import audit
from hub.models import Organisation, User
from hub.organisations import OrganisationIn, add_organisation
from hub.periods import parse_period
from hub.publication import (
    MIN_RECONCILIATION_PAIRS,
    RESTATED,
    _previous_indicators,
    build_protected_release,
    protect_approved,
    public_observations,
    public_reconciliation,
)
from hub.releases import (
    REVISIONS,
    ReleaseError,
    build_release,
    publish_release,
    read_release,
    read_release_table,
    unprotected_compose,
)
from hub.settings import REPO_ROOT
from hub.store import store_submission
from hub.targets import load_targets
from hub.validation import ObservationIn
from hub.vocab import DIMENSIONS, TOTAL

NOW = datetime(2026, 3, 1, tzinfo=UTC)
DATA = REPO_ROOT / "data"
ANONYMOUS = ("quiet-police", "quiet-video", "quiet-chat")  # have not consented to be named


def _org(session: Session, code: str, kind: str, country: str, named: bool) -> Organisation:
    return add_organisation(
        session,
        OrganisationIn(
            code=code,
            name=code.replace("-", " ").title(),
            stakeholder_type=kind,
            country=country,
            consents_to_be_named=named,
        ),
    )


def _submit(
    session: Session,
    catalogue: Catalogue,
    org: Organisation,
    scope: str,
    rows: list[tuple[str, str, float, dict[str, str]]],
    reason: str | None = None,
) -> int:
    observations = [
        ObservationIn(metric, parse_period(period), value, dims) for metric, period, value, dims in rows
    ]
    result = store_submission(
        session,
        catalogue,
        org,
        observations,
        channel="cli",
        scope=scope,
        actor="t",
        supersede_reason=reason,
        today=NOW,
    )
    return result.submission_id


@pytest.fixture
def alliance(session: Session, catalogue: Catalogue) -> dict[str, object]:
    """Two police forces (one anonymous, with a small count of victims), three companies (two
    anonymous), approved for 2024 and 2025."""
    sec = create_user(session, "sec-ann", "Sec Ann", "secretariat", None, "correct horse battery staple")
    police_a = _org(session, "quiet-police", "law_enforcement", "FR", named=False)
    police_b = _org(session, "open-police", "law_enforcement", "DE", named=True)
    named_co = _org(session, "open-social", "company", "IE", named=True)
    anon_co = _org(session, "quiet-video", "company", "IE", named=False)
    anon_co2 = _org(session, "quiet-chat", "company", "FR", named=False)
    session.commit()
    ids = []
    for year, small in (("2024", 12), ("2025", 4)):
        ids.append(
            _submit(
                session,
                catalogue,
                police_a,
                year,
                [
                    ("le_victims_identified", year, small, {}),
                    ("le_victims_identified", year, small, {"country": "FR"}),
                    ("le_cases_opened", year, 300, {}),
                ],
            )
        )
        ids.append(
            _submit(
                session,
                catalogue,
                police_b,
                year,
                [
                    ("le_victims_identified", year, 40, {}),
                    ("le_victims_identified", year, 40, {"country": "DE"}),
                ],
            )
        )
        for org, actioned in ((named_co, 5000), (anon_co, 700), (anon_co2, 650)):
            ids.append(
                _submit(
                    session,
                    catalogue,
                    org,
                    year,
                    [
                        ("co_items_actioned", year, actioned, {}),
                        ("co_items_detected_proactively", year, actioned / 2, {}),
                    ],
                )
            )
    session.commit()
    approve(session, sec, ids)
    session.commit()
    return {"sec": sec, "police_a": police_a, "named_co": named_co}


def _strings(tables: dict[str, pd.DataFrame]) -> set[str]:
    """Every text value of every table, column names included."""
    found: set[str] = set()
    for frame in tables.values():
        found.update(str(c) for c in frame.columns)
        for column in frame.columns:
            if frame[column].dtype == object or str(frame[column].dtype).startswith("string"):
                found.update(str(v) for v in frame[column].dropna().unique())
    return found


def test_a_release_publishes_only_protected_figures(
    session: Session, catalogue: Catalogue, alliance: dict[str, object]
) -> None:
    sec = alliance["sec"]
    assert isinstance(sec, User)
    release = build_protected_release(session, catalogue=catalogue, data_dir=DATA, title="2025", built_by=sec)
    session.commit()
    tables = read_release(session, release.number)
    assert set(tables) == {"indicators", "observations", "targets", "reconciliation", "coverage", "peers"}
    assert tables["peers"].empty  # three companies and two forces: too few for a peer distribution

    # no anonymous organisation is named anywhere, and no contributor shares are published
    leaked = _strings(tables) & set(ANONYMOUS)
    assert not leaked
    assert not {"largest_org", "second_org", "largest_share", "second_share"} & set(
        tables["indicators"].columns
    )

    indicators = tables["indicators"]
    victims = indicators[
        (indicators["metric"] == "le_victims_identified")
        & (indicators["statistic"] == "value")
        & (indicators["country"] == "_T")
    ]
    # the anonymous force's 4 victims in 2025 are nowhere: not at FR level, and not as the
    # alliance total minus the named force's 40 (the alliance total is hidden too)
    fr = victims[
        (victims["level"] == "country") & (victims["entity"] == "FR") & (victims["period"] == "2025")
    ]
    assert fr["suppressed"].all() and fr["value"].isna().all() and set(fr["display"]) <= {"<10", "x"}
    total = victims[(victims["level"] == "alliance") & (victims["period"] == "2025")]
    assert total["suppressed"].all() and total["value"].isna().all()
    for frame in tables.values():
        for column in frame.select_dtypes("number").columns:
            assert not (frame[column] == 4).any() or column in ("coverage", "organisations", "pairs"), column
    named = victims[(victims["level"] == "organisation") & (victims["entity"] == "open-police")]
    # the named force's own figure is shown in both years; a total of the two forces never is
    # (the anonymous one would be the total minus the named one's: dominance, or primary)
    assert named.set_index("period")["value"].to_dict() == {"2024": 40, "2025": 40}
    assert victims[(victims["level"] == "alliance") & (victims["period"] == "2024")]["suppressed"].all()
    germany = victims[
        (victims["level"] == "country") & (victims["entity"] == "DE") & (victims["period"] == "2024")
    ]
    assert germany["value"].tolist() == [40]  # resting on the named force alone

    # observations: named organisations only, their figures as the protected cells show them
    observations = tables["observations"]
    assert set(observations["organisation"]) == {"open-police", "open-social"}
    assert set(observations.loc[observations["metric"] == "co_items_actioned", "value"]) == {5000.0}

    # every target is assessed, on published cells only
    targets = tables["targets"]
    assert set(targets["code"]) == {t.code for t in load_targets(DATA, catalogue)}


def test_the_published_table_survives_the_linear_programming_audit(
    session: Session, catalogue: Catalogue, alliance: dict[str, object]
) -> None:
    state = protect_approved(session, catalogue, data_dir=DATA)
    policy = load_policy(DATA)
    result = audit(
        public_view(state.protected),
        build_constraints(state.protected, policy, organisations=state.organisations),
        policy,
    )
    assert result.checked > 0
    assert result.failures.empty, result.failures.drop(columns=["metric"]).to_string()


def test_a_restatement_shows_in_the_next_release_with_its_reason_but_not_its_words(
    session: Session, catalogue: Catalogue, alliance: dict[str, object]
) -> None:
    sec, named_co = alliance["sec"], alliance["named_co"]
    assert isinstance(sec, User) and isinstance(named_co, Organisation)
    first = build_protected_release(session, catalogue=catalogue, data_dir=DATA, title="First", built_by=sec)
    publish_release(session, first.number, sec)
    session.commit()
    restated = _submit(
        session,
        catalogue,
        named_co,
        "2025",
        [("co_items_actioned", "2025", 5200, {}), ("co_items_detected_proactively", "2025", 2500, {})],
        reason="deduplicated after an audit by J. Smith",
    )
    approve(session, sec, [restated])
    session.commit()
    second = build_protected_release(
        session, catalogue=catalogue, data_dir=DATA, title="Second", built_by=sec
    )
    session.commit()
    tables = read_release(session, second.number, with_revisions=True)
    log = tables[REVISIONS]
    own = log[(log["metric"] == "co_items_actioned") & log["key"].str.contains("open-social")]
    assert not own.empty
    assert set(own["reason"]) == {"restatement"}
    assert (own["old_value"] == 5000).any() and (own["new_value"] == 5200).any()
    assert not any("Smith" in text for text in _strings(tables))
    assert RESTATED in set(tables["observations"]["supersede_reason"])


def test_disclosure_reads_what_the_latest_published_release_showed_and_refuses_a_corrupted_one(
    session: Session, catalogue: Catalogue, alliance: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    sec = alliance["sec"]
    assert isinstance(sec, User)
    assert _previous_indicators(session) is None  # nothing published yet
    bare = build_release(
        session, catalogue=catalogue, title="Bare", built_by=sec, compose=unprotected_compose
    )
    publish_release(session, bare.number, sec)
    assert _previous_indicators(session) is None  # published, but without indicators
    first = build_protected_release(session, catalogue=catalogue, data_dir=DATA, title="First", built_by=sec)
    publish_release(session, first.number, sec)
    previous = _previous_indicators(session)
    published = read_release_table(session, first.number, "indicators")
    assert previous is not None and list(previous.columns) == list(KNOWN_VALUE_COLUMNS)
    coded = [name for name, kind in previous.dtypes.items() if isinstance(kind, pd.CategoricalDtype)]
    assert set(coded) == {name for name in KNOWN_VALUE_COLUMNS if published[name].dtype == "string"}
    as_text = previous.astype(dict.fromkeys(coded, "string"))  # text read coded: only matched on
    pd.testing.assert_frame_equal(as_text, published.loc[:, list(KNOWN_VALUE_COLUMNS)])

    # a table that cannot be read (the database triggers refuse any change to a published
    # release, so here the read fails as a corrupted copy would) is not quietly taken as
    # "nothing published": protection would lose what the public already knows
    def corrupted(*args: object, **kwargs: object) -> pd.DataFrame:
        raise ReleaseError("table 'indicators' of release 2 does not match its checksum")

    monkeypatch.setattr(hub.publication, "read_release_table", corrupted)
    with pytest.raises(ReleaseError, match="does not match its checksum"):
        _previous_indicators(session)


def test_published_observations_are_the_newest_figures_as_their_cells_show_them() -> None:
    """One row per key, the newest submission's (whatever the row order), only where the
    protected organisation-level cell is named, hidden where that cell is, in key order."""

    def observation(
        org: str, period: str, submission: int, value: float, reason: str = ""
    ) -> dict[str, object]:
        return {
            "metric": "co_items_actioned", "period": period, "period_kind": "year", "organisation": org,
            "stakeholder_type": "company", "org_country": "FR", **dict.fromkeys(DIMENSIONS, TOTAL),
            "value": value, "provisional": False, "submission_id": submission, "version": 1,
            "supersede_reason": reason, "channel": "cli",
        }  # fmt: skip

    def cell(org: str, period: str, reason: str, statistic: str = "value") -> dict[str, object]:
        return {
            "metric": "co_items_actioned", "period": period, "level": "organisation", "entity": org,
            "statistic": statistic, **dict.fromkeys(DIMENSIONS, TOTAL), "suppressed": reason != "",
            "suppression_reason": reason, "display": "x" if reason else "1",
        }  # fmt: skip

    observations = pd.DataFrame(
        [
            observation("zeta", "2025", 7, 70.0),
            observation("alpha", "2025", 9, 95.0, reason="typo fixed by J. Smith"),  # newer, listed first
            observation("alpha", "2025", 3, 30.0),
            observation("alpha", "2024", 3, 24.0),
            observation("hidden-co", "2025", 4, 4.0),
            observation("anonymous", "2025", 5, 5.0),
        ]
    )
    protected = pd.DataFrame(
        [
            cell("zeta", "2025", ""),
            cell("alpha", "2025", ""),
            cell("alpha", "2025", "", statistic="reporters"),  # not a figure of its own
            cell("alpha", "2024", ""),
            cell("hidden-co", "2025", "secondary"),
            cell("anonymous", "2025", "not_named"),
        ]
    )
    out = public_observations(observations, protected)
    assert list(zip(out["organisation"], out["period"], strict=True)) == [
        ("alpha", "2024"), ("alpha", "2025"), ("hidden-co", "2025"), ("zeta", "2025")
    ]  # fmt: skip
    assert out["submission_id"].tolist() == [3, 9, 4, 7]
    assert out["value"].iloc[1] == 95.0 and np.isnan(out["value"].iloc[2])
    assert out["suppression_reason"].tolist() == ["", "", "secondary", ""]
    assert out["supersede_reason"].tolist() == ["", RESTATED, "", ""]
    assert public_observations(observations.iloc[:0], protected).empty
    assert public_observations(observations, protected.iloc[:0]).empty


def test_reconciliation_totals_resting_on_few_pairs_are_hidden() -> None:
    summary = pd.DataFrame(
        {
            "flow": ["f", "f"],
            "period": ["2025", "2024"],
            "period_kind": ["year", "year"],
            "pairs_compared": [MIN_RECONCILIATION_PAIRS - 1, MIN_RECONCILIATION_PAIRS],
            "total_sent": [100.0, 300.0],
            "total_received": [90.0, 310.0],
            "gap": [-10.0, 10.0],
            "relative_gap": [-0.1, 0.03],
        }
    )
    out = public_reconciliation(summary)
    assert out["suppressed"].tolist() == [True, False]
    assert np.isnan(out.loc[0, "total_sent"]) and out.loc[1, "total_sent"] == 300


def test_a_release_publishes_banded_peer_means_and_names_nobody(
    session: Session, catalogue: Catalogue
) -> None:
    """Seven anonymous companies: their items actioned in two bands (lower half 3, upper 4:
    array_split puts the extra one first, so 4 + 3), their means only; four hotlines: none."""
    sec = create_user(session, "sec-peer", "Sec Peer", "secretariat", None, "correct horse battery staple")
    figures = [110.0, 120.0, 130.0, 140.0, 500.0, 650.0, 700.0]
    ids = []
    for number, value in enumerate(figures):
        org = _org(session, f"peer-co-{number}", "company", "FR", named=False)
        session.commit()
        ids.append(_submit(session, catalogue, org, "2025", [("co_items_actioned", "2025", value, {})]))
    for number in range(4):
        org = _org(session, f"peer-hl-{number}", "hotline", "DE", named=False)
        session.commit()
        ids.append(
            _submit(session, catalogue, org, "2025", [("ht_reports_received", "2025", 50.0 + number, {})])
        )
    session.commit()
    approve(session, sec, ids)
    session.commit()
    release = build_protected_release(session, catalogue=catalogue, data_dir=DATA, title="2025", built_by=sec)
    session.commit()
    peers = read_release(session, release.number)["peers"]
    items = peers[(peers["metric"] == "co_items_actioned") & (peers["period"] == "2025")]
    assert items["band_size"].tolist() == [4, 3]
    assert items["mean"].tolist() == [sum(figures[:4]) / 4, sum(figures[4:]) / 3]
    assert items["display"].tolist() == ["125", "616.7"]
    assert set(items["contributors"]) == {7} and set(items["band_name"]) == {"lower half", "upper half"}
    assert not peers["metric"].str.startswith("ht_").any()  # four hotlines: fewer than five
    # no single figure, and no organisation code, anywhere in the table
    assert not peers.isin(figures).to_numpy().any()
    assert not _strings({"peers": peers}) & {f"peer-co-{n}" for n in range(7)}
