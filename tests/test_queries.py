"""hub.queries: the read functions of the public pages, on both backends.

Small known figures are stored through the normal path (store_submission), including
figures that arrived through non-public channels, which must never come back out.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pandas as pd
import pytest
from conftest import PUBLIC_DATA
from sqlmodel import Session, select

from hub import queries
from hub.catalogue import Catalogue
from hub.models import Organisation
from hub.organisations import OrganisationIn, add_organisation
from hub.periods import parse_period
from hub.settings import REPO_ROOT
from hub.store import store_submission
from hub.validation import ObservationIn
from ingest.public_data import import_public_data

NOW = datetime(2026, 3, 1, tzinfo=UTC)
TIPLINE_TOTAL_2023 = 36_210_368
DISCORD_OWN_2023 = 164_478
DISCORD_NCMEC_2023 = 339_412
SECRET = 987_654_321  # a member's submitted figure: must never reach a public query
NCMEC_ESP = "NCMEC, CyberTipline Reports by Electronic Service Provider"
NCMEC_YEARLY = "NCMEC, CyberTipline reports per year"


def _org(session: Session, code: str) -> Organisation:
    org = session.exec(select(Organisation).where(Organisation.code == code)).one()
    return org


def _obs(metric: str, period: str, value: float, **dims: str) -> ObservationIn:
    return ObservationIn(metric, parse_period(period), value, dims=dims)


def _public(session: Session, catalogue: Catalogue, code: str, scope: str, source: str, rows: list) -> None:
    store_submission(
        session,
        catalogue,
        _org(session, code),
        rows,
        channel="public_source",
        scope=scope,
        actor="test",
        source_name=source,
        today=NOW,
    )


def seed_public_sample(session: Session, catalogue: Catalogue) -> None:
    """Published figures (real 2021-2023 values) plus non-public figures that must stay hidden."""
    _public(
        session,
        catalogue,
        "ncmec",
        "cybertipline-yearly",
        NCMEC_YEARLY,
        [
            _obs("ch_reports_received", "2021", 29_397_681),
            _obs("ch_reports_received", "2022", 32_059_029),
            _obs("ch_reports_received", "2023", TIPLINE_TOTAL_2023),
        ],
    )
    providers = {"facebook": 17_838_422, "instagram": 11_430_007, "google": 1_470_958}
    providers |= {"discord": DISCORD_NCMEC_2023, "amazon": 25_100, "twitch": 6_281}
    _public(
        session,
        catalogue,
        "ncmec",
        "cybertipline-by-esp",
        NCMEC_ESP,
        [_obs("ch_reports_received", "2023", v, counterpart=c) for c, v in providers.items()]
        + [_obs("ch_reports_received", "2022", 169_800, counterpart="discord")],
    )
    _public(
        session,
        catalogue,
        "ncmec",
        "cybertipline-by-country",
        "NCMEC, CyberTipline Reports by Country",
        [
            _obs("ch_reports_received", "2023", 8_923_738, country="IN"),
            _obs("ch_reports_received", "2023", 2_740_905, country="PH"),
            _obs("ch_reports_received", "2023", 1_000, country="ZZ"),
            _obs("ch_reports_received", "2022", 5_675_324, country="IN"),
        ],
    )
    _public(
        session,
        catalogue,
        "ncmec",
        "notifications-to-esps",
        "NCMEC, Notifications sent by NCMEC per ESP",
        [
            _obs("ch_hosted_notices_sent", "2021", 75_038),
            _obs("ch_mean_hours_to_takedown", "2021", 1.22 * 24),
            _obs("ch_hosted_notices_sent", "2021", 68, counterpart="discord"),
            _obs("ch_mean_hours_to_takedown", "2021", 3.21 * 24, counterpart="discord"),
            _obs("ch_hosted_notices_sent", "2021", 975, counterpart="google"),
            _obs("ch_mean_hours_to_takedown", "2021", 6.77 * 24, counterpart="google"),
        ],
    )
    _public(
        session,
        catalogue,
        "discord",
        "comparable-reports",
        "Discord transparency report",
        [
            _obs("co_reports_to_authority", "2023", DISCORD_OWN_2023, counterpart="ncmec"),
            _obs("co_reports_to_authority", "2022", 169_800, counterpart="ncmec"),
        ],
    )
    _public(
        session,
        catalogue,
        "amazon",
        "comparable-reports",
        "Amazon transparency report",
        [_obs("co_reports_to_authority", "2023", 31_281, counterpart="ncmec")],
    )
    # Not public: the same metrics through the demo and upload channels.
    store_submission(
        session,
        catalogue,
        _org(session, "ncmec"),
        [
            _obs("ch_reports_received", "2023", SECRET),
            _obs("ch_reports_received", "2023", SECRET, counterpart="discord"),
            _obs("ch_reports_received", "2023", SECRET, country="FR"),
        ],
        channel="demo",
        scope="demo-2023",
        actor="test",
        today=NOW,
    )
    store_submission(
        session,
        catalogue,
        _org(session, "discord"),
        [_obs("co_reports_to_authority", "2023", SECRET, counterpart="ncmec")],
        channel="upload",
        scope="upload-2023",
        actor="test",
        today=NOW,
    )
    session.commit()


def seed_members(session: Session, catalogue: Catalogue) -> None:
    """Four members of three types in three countries, one former member, and their submissions."""
    members = [
        ("alpha-social", "company", "FR", "member"),
        ("beta-cloud", "company", "DE", "member"),
        ("gamma-hotline", "hotline", "FR", "member"),
        ("delta-police", "law_enforcement", "BR", "member"),
        ("old-member", "company", "US", "former_member"),
    ]
    for code, kind, country, status in members:
        add_organisation(
            session,
            OrganisationIn(
                code=code,
                name=code.title(),
                stakeholder_type=kind,
                country=country,
                status=status,
                consents_to_be_named=code == "delta-police",
            ),
        )
    for code, received, scope in [
        ("alpha-social", datetime(2025, 2, 3, tzinfo=UTC), "2025-01"),
        ("alpha-social", datetime(2025, 3, 3, tzinfo=UTC), "2025-02"),
        ("beta-cloud", datetime(2025, 4, 9, tzinfo=UTC), "2025-03"),
        ("gamma-hotline", datetime(2025, 1, 20, tzinfo=UTC), "2024-12"),
    ]:
        metric = "co_items_actioned" if code != "gamma-hotline" else "ht_reports_received"
        store_submission(
            session,
            catalogue,
            _org(session, code),
            [_obs(metric, scope, SECRET)],
            channel="demo",
            scope=scope,
            actor="test",
            received_at=received,
            today=NOW,
        )
    session.commit()


def test_reports_per_year_are_the_published_totals_only(session: Session, catalogue: Catalogue) -> None:
    seed_public_sample(session, catalogue)
    series = queries.cybertipline_reports_per_year(session)
    assert series.frame["year"].tolist() == [2021, 2022, 2023]
    assert series.frame["reports"].tolist() == [29_397_681, 32_059_029, TIPLINE_TOTAL_2023]
    assert series.sources == (NCMEC_YEARLY,)
    assert series.metric_name == "Reports received by the clearinghouse"


def test_top_providers_rank_the_latest_year_with_names_and_shares(
    session: Session, catalogue: Catalogue
) -> None:
    seed_public_sample(session, catalogue)
    top = queries.top_reporting_providers(session, limit=3)
    assert top.year == 2023
    assert top.frame["code"].tolist() == ["facebook", "instagram", "google"]
    assert top.frame["name"].tolist()[0] == "Facebook"
    assert top.frame["rank"].tolist() == [1, 2, 3]
    assert top.frame["share"].iloc[0] == pytest.approx(17_838_422 / TIPLINE_TOTAL_2023)
    assert top.sources == (NCMEC_ESP,)
    earlier = queries.top_reporting_providers(session, year=2022)
    assert earlier.frame["code"].tolist() == ["discord"]


def test_reports_by_country_keep_unmappable_codes_for_the_table(
    session: Session, catalogue: Catalogue
) -> None:
    seed_public_sample(session, catalogue)
    countries = queries.reports_by_country(session)
    assert countries.year == 2023
    assert countries.frame["country"].tolist() == ["IN", "PH", "ZZ"]
    assert countries.frame["alpha3"].fillna("").tolist() == ["IND", "PHL", ""]  # ZZ is on no map
    assert countries.frame["name"].tolist()[0] == "India"


def test_hosted_notices_convert_hours_to_days_and_keep_the_total_row(
    session: Session, catalogue: Catalogue
) -> None:
    seed_public_sample(session, catalogue)
    notices = queries.hosted_notices(session)
    per = notices.per_provider.set_index("code")
    assert per.loc["google", "notices"] == 975
    assert per.loc["discord", "mean_days"] == pytest.approx(3.21)
    assert per.loc["discord", "name"] == "Discord"
    assert notices.totals["notices"].tolist() == [75_038]
    assert notices.totals["mean_days"].iloc[0] == pytest.approx(1.22)


def test_sources_disagree_compares_a_provider_with_ncmec_for_the_same_year(
    session: Session, catalogue: Catalogue
) -> None:
    seed_public_sample(session, catalogue)
    table = queries.sources_disagree(session)
    discord = table[(table["provider"] == "discord") & (table["year"] == 2023)].iloc[0]
    assert discord["provider_count"] == DISCORD_OWN_2023
    assert discord["clearinghouse_count"] == DISCORD_NCMEC_2023
    assert discord["clearinghouse"] == "ncmec"
    assert discord["gap_pct"] == pytest.approx(100 * (164_478 - 339_412) / 339_412)
    assert 2022 not in table[table["provider"] == "discord"]["year"].tolist()  # equal counts
    amazon = table[table["provider"] == "amazon"].iloc[0]
    assert amazon["clearinghouse_count"] == 25_100 + 6_281  # Amazon with Twitch, as NCMEC counts it
    assert amazon["clearinghouse_covers"] == ("Amazon", "Twitch")
    with_equal = queries.sources_disagree(session, include_equal=True)
    assert len(with_equal) == len(table) + 1


def test_no_public_query_returns_figures_from_other_channels(session: Session, catalogue: Catalogue) -> None:
    seed_public_sample(session, catalogue)
    frames = [
        queries.cybertipline_reports_per_year(session).frame,
        queries.top_reporting_providers(session).frame,
        queries.reports_by_country(session).frame,
        queries.hosted_notices(session).per_provider,
        queries.sources_disagree(session, include_equal=True),
        queries.published_figures(
            session, ["ch_reports_received", "co_reports_to_authority"], free=["country"]
        ),
    ]
    for frame in frames:
        assert SECRET not in frame.to_numpy().ravel().tolist()
    assert "FR" not in queries.reports_by_country(session).frame["country"].tolist()
    assert queries.headline(session).cybertipline_total == TIPLINE_TOTAL_2023


def test_a_restated_public_figure_replaces_the_earlier_version(
    session: Session, catalogue: Catalogue
) -> None:
    seed_public_sample(session, catalogue)
    store_submission(
        session,
        catalogue,
        _org(session, "ncmec"),
        [_obs("ch_reports_received", "2023", 36_210_370)],
        channel="public_source",
        scope="cybertipline-yearly",
        actor="test",
        source_name=NCMEC_YEARLY,
        supersede_reason="NCMEC corrected its total",
        today=NOW,
    )
    session.commit()
    frame = queries.cybertipline_reports_per_year(session).frame
    assert frame["reports"].tolist() == [36_210_370]  # the new version holds only 2023


def test_published_figures_refuse_unknown_dimensions(session: Session) -> None:
    with pytest.raises(ValueError, match="unknown dimension"):
        queries.published_figures(session, ["ch_reports_received"], by=["colour"])


def test_empty_database_gives_empty_results(session: Session) -> None:
    assert queries.cybertipline_reports_per_year(session).empty
    assert queries.top_reporting_providers(session).year is None
    assert queries.hosted_notices(session).empty
    assert queries.sources_disagree(session).empty
    assert queries.members_by_type(session).empty
    assert queries.submissions_by_quarter(session).empty
    head = queries.headline(session)
    assert (head.cybertipline_total, head.members, head.countries) == (None, 0, 0)


def test_membership_counts_members_only(session: Session, catalogue: Catalogue) -> None:
    seed_members(session, catalogue)
    by_type = queries.members_by_type(session)
    assert dict(zip(by_type["stakeholder_type"], by_type["members"], strict=True)) == {
        "company": 2,
        "hotline": 1,
        "law_enforcement": 1,
    }
    by_country = queries.members_by_country(session)
    assert by_country.iloc[0][["country", "alpha3", "name"]].tolist() == ["FR", "FRA", "France"]
    shown = {
        c: None if pd.isna(n) else int(n)
        for c, n in zip(by_country["country"], by_country["members"], strict=True)
    }
    assert shown == {"FR": None, "DE": None, "BR": 1}  # withheld: fewer than 3, one anonymous
    assert set(by_country["country"]) == {"FR", "DE", "BR"}
    # fewer than 3 members and one of them anonymous: the count is not shown exactly
    exact = dict(zip(by_country["country"], by_country["exact"], strict=True))
    assert exact == {"FR": False, "DE": False, "BR": True}  # delta-police consents to be named
    head = queries.headline(session)
    assert (head.members, head.countries, head.stakeholder_types) == (4, 3, 3)


def test_submissions_are_counted_by_quarter_of_arrival_and_type(
    session: Session, catalogue: Catalogue
) -> None:
    seed_members(session, catalogue)
    seed_public_sample(session, catalogue)  # public imports are not members' submissions
    frame = queries.submissions_by_quarter(session)
    rows = {(q, t): n for q, t, n in frame.itertuples(index=False)}
    # every type has fewer than 3 members here, so all are shown together as 'other'
    assert rows == {("2025-Q1", "other"): 3, ("2025-Q2", "other"): 1}
    assert not any(math.isnan(n) for n in frame["submissions"])


@pytest.fixture
def public_data(session: Session, catalogue: Catalogue) -> Session:
    """The real published figures of shared/public-data, imported as the CLI does."""
    if not PUBLIC_DATA.is_dir():
        pytest.skip(f"{PUBLIC_DATA} not found")
    import_public_data(session, catalogue, PUBLIC_DATA, REPO_ROOT / "data")
    session.commit()
    return session


def test_real_cybertipline_totals_and_providers(public_data: Session) -> None:
    yearly = queries.cybertipline_reports_per_year(public_data)
    assert yearly.frame["year"].tolist() == list(range(1998, 2024))
    assert yearly.frame["reports"].iloc[-1] == TIPLINE_TOTAL_2023
    top = queries.top_reporting_providers(public_data)
    assert top.year == 2023
    assert len(top.frame) == 15
    assert top.frame[["code", "reports"]].head(3).values.tolist() == [
        ["facebook", 17_838_422],
        ["instagram", 11_430_007],
        ["google", 1_470_958],
    ]
    assert top.sources == ("NCMEC, CyberTipline Reports by Electronic Service Provider 2019-2023",)
    head = queries.headline(public_data)
    assert (head.cybertipline_year, head.cybertipline_total) == (2023, TIPLINE_TOTAL_2023)


def test_real_reports_by_country(public_data: Session) -> None:
    countries = queries.reports_by_country(public_data)
    assert countries.year == 2023
    assert countries.frame.iloc[0][["country", "alpha3"]].tolist() == ["IN", "IND"]
    # As README says: 2023's country rows add up to 4 less than the printed total.
    assert countries.frame["reports"].sum() == TIPLINE_TOTAL_2023 - 4


def test_real_hosted_notices(public_data: Session) -> None:
    notices = queries.hosted_notices(public_data)
    totals = notices.totals.set_index("year")
    assert totals.loc[2021, "notices"] == 75_038
    assert totals.loc[2021, "mean_days"] == pytest.approx(1.22)
    microsoft = notices.per_provider[notices.per_provider["code"] == "microsoft"]
    assert sorted(microsoft["year"].tolist()) == [2021, 2021, 2022, 2022, 2022]  # rows kept apart


def test_real_disagreements(public_data: Session) -> None:
    table = queries.sources_disagree(public_data).set_index(["provider", "year"])
    discord = table.loc[("discord", 2023)]
    assert (discord["provider_count"], discord["clearinghouse_count"]) == (
        DISCORD_OWN_2023,
        DISCORD_NCMEC_2023,
    )
    assert discord["gap_pct"] == pytest.approx(-51.54, abs=0.01)
    # NCMEC's comparable count for Amazon includes Twitch: the group sum reproduces it.
    assert table.loc[("amazon", 2023), "clearinghouse_count"] == 32_359
    assert "Twitch" in table.loc[("amazon", 2023), "clearinghouse_covers"]


def test_small_groups_are_folded_until_none_is_small() -> None:
    fold = queries._fold_small_groups
    assert fold({"company": 80, "hotline": 35, "intergovernmental": 2, "clearinghouse": 3}, 3) == {
        "company": "company",
        "hotline": "hotline",
        "intergovernmental": "other",
        "clearinghouse": "other",  # 'other' alone would hold 2 members
    }
    assert fold({"company": 5, "ngo": 1, "government": 2}, 3)["company"] == "company"
    assert set(fold({"company": 5, "ngo": 4}, 3).values()) == {"company", "ngo"}


def test_a_single_withheld_country_count_withholds_another(session: Session, catalogue: Catalogue) -> None:
    seed_members(session, catalogue)  # FR 2 anonymous, DE 1 anonymous, BR 1 named
    add_organisation(
        session, OrganisationIn(code="de-second", name="De Second", stakeholder_type="ngo", country="DE")
    )
    add_organisation(
        session, OrganisationIn(code="de-third", name="De Third", stakeholder_type="ngo", country="DE")
    )
    session.commit()
    frame = queries.members_by_country(session)  # DE 3 (exact), FR 2 (withheld), BR 1 named
    exact = dict(zip(frame["country"], frame["exact"], strict=True))
    assert exact == {"DE": True, "FR": False, "BR": False}  # BR withheld too: else FR = total - DE - BR
    assert frame.loc[frame["country"] == "FR", "members"].isna().all()
    assert frame.loc[frame["country"] == "DE", "members"].tolist() == [3]
