"""The synthetic alliance: believable, complete, deterministic, and loaded idempotently.

Most tests look at the generator's output in memory; the database tests load a short
window (six months) on both backends; the full load runs through the CLI in test_cli.py.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from datetime import date

import pytest
from sqlalchemy import func
from sqlmodel import Session, col, select

from hub import vocab
from hub.catalogue import Catalogue
from hub.demo import DemoSubmission, GeneratedAlliance, generate_alliance, load_demo_alliance
from hub.models import Observation, Organisation, Submission
from hub.organisations import read_registry
from hub.settings import REPO_ROOT
from hub.validation import ObservationIn, batch_problems

SEED = 20121205
TODAY = date(2026, 11, 23)  # fixed, so the tests do not change with the calendar
SHORT = date(2021, 7, 15)  # six months and two quarters of figures


@pytest.fixture(scope="module")
def alliance(catalogue: Catalogue) -> GeneratedAlliance:
    return generate_alliance(catalogue, seed=SEED, today=TODAY)


def _types(alliance: GeneratedAlliance) -> dict[str, str]:
    return {o.code: o.stakeholder_type for o in alliance.registry}


def _current(alliance: GeneratedAlliance) -> list[DemoSubmission]:
    """The newest version of every (organisation, scope), as the hub would use it."""
    newest: dict[tuple[str, str], DemoSubmission] = {}
    for sub in alliance.submissions:
        newest[(sub.org, sub.scope)] = sub
    return list(newest.values())


def _rows(alliance: GeneratedAlliance, metric: str) -> list[tuple[str, ObservationIn]]:
    return [(s.org, r) for s in _current(alliance) for r in s.rows if r.metric == metric]


def _yearly(alliance: GeneratedAlliance, metric: str, by_org: bool = False) -> dict[tuple[str, int], float]:
    """Totals (rows without breakdown) per year, for the alliance or per organisation."""
    sums: dict[tuple[str, int], float] = defaultdict(float)
    for org, row in _rows(alliance, metric):
        if not row.dims and row.value is not None:
            sums[(org if by_org else "", row.period.year)] += row.value
    return sums


def _cagr(first: float, last: float, years: int) -> float:
    return (last / first) ** (1 / years) - 1


# --- the registry ------------------------------------------------------------------------


def test_registry_spans_every_stakeholder_type_in_forty_countries(alliance: GeneratedAlliance) -> None:
    registry = alliance.registry
    kinds = Counter(o.stakeholder_type for o in registry)
    assert len(registry) >= 150
    assert set(kinds) == set(vocab.STAKEHOLDER_TYPES)
    assert kinds["company"] >= 75 and kinds["hotline"] >= 30 and kinds["law_enforcement"] >= 20
    assert len({o.country for o in registry if o.country}) >= 40
    hotline_countries = [o.country for o in registry if o.stakeholder_type == "hotline"]
    assert len(hotline_countries) == len(set(hotline_countries))  # one per country, as in INHOPE
    assert all(o.sector for o in registry if o.stakeholder_type == "company")
    assert all(o.status == "member" for o in registry)
    assert 0.5 <= sum(o.consents_to_be_named for o in registry) / len(registry) <= 0.7


def test_registry_never_reuses_a_real_organisations_code_or_name(alliance: GeneratedAlliance) -> None:
    real = read_registry(REPO_ROOT / "data" / "organisations" / "public_sources.yaml")
    assert not {o.code for o in alliance.registry} & {o.code for o in real}
    assert not {o.name.lower() for o in alliance.registry} & {o.name.lower() for o in real}


# --- the figures -------------------------------------------------------------------------


def test_figures_cover_five_years_of_months_and_quarters(alliance: GeneratedAlliance) -> None:
    assert len(alliance.months) >= 60 and len(alliance.quarters) >= 20
    assert alliance.months[-1].code == "2026-10" and alliance.quarters[-1].code == "2026-Q3"
    kinds_by_type: dict[str, set[str]] = defaultdict(set)
    types = _types(alliance)
    for sub in alliance.submissions:
        kinds_by_type[types[sub.org]] |= {row.period.kind for row in sub.rows}
    assert kinds_by_type["company"] == {"month", "quarter"}  # capabilities are quarterly
    assert kinds_by_type["hotline"] == {"month"}
    for kind in ("law_enforcement", "clearinghouse", "government", "intergovernmental"):
        assert kinds_by_type[kind] == {"quarter"}
    assert set(kinds_by_type) == set(vocab.STAKEHOLDER_TYPES) - {"ngo"}  # NGOs have no metric yet


def test_every_submission_passes_the_hubs_validation(
    alliance: GeneratedAlliance, catalogue: Catalogue
) -> None:
    types, codes = _types(alliance), {o.code for o in alliance.registry}
    problems = [
        (sub.org, sub.scope, problem)
        for sub in alliance.submissions
        for problem in batch_problems(
            catalogue, sub.rows, stakeholder_type=types[sub.org], org_codes=codes, today=TODAY
        )
    ]
    assert problems == []
    scopes = Counter((sub.org, sub.scope, sub.version) for sub in alliance.submissions)
    assert max(scopes.values()) == 1
    assert all({row.period.code for row in sub.rows} == {sub.scope} for sub in alliance.submissions)


def test_shares_are_submitted_with_their_counts_and_agree_with_them(alliance: GeneratedAlliance) -> None:
    pairs = {
        "co_proactive_share": ("co_items_detected_proactively", "co_items_actioned"),
        "ht_illegal_share": ("ht_reports_confirmed_csam", "ht_reports_assessed"),
    }
    checked = 0
    for sub in alliance.submissions:
        totals = {row.metric: row.value for row in sub.rows if not row.dims}
        for share, (numerator, denominator) in pairs.items():
            if share in totals:
                assert totals[share] == pytest.approx((totals[numerator] or 0) / (totals[denominator] or 1))
                checked += 1
    assert checked > 5000


COMPLETE_BREAKDOWNS = {  # breakdowns that cover everything (counterparts cover members only)
    "co_notices_received": {"notice_source", "service"},
    "co_items_actioned": {"notice_source", "category", "content_type", "service"},
    "ht_reports_received": {"notice_source"},
    "ht_notices_sent": {"country"},
    "ch_reports_received": {"country", "notice_source", "jurisdiction", "category"},
    "ch_referrals_sent": {"country", "detail_level", "recipient_type"},
    "le_victims_identified": {"country"},
}


def test_breakdowns_add_up_to_their_totals(alliance: GeneratedAlliance) -> None:
    for sub in alliance.submissions:
        if sub.provisional or sub.version > 1:
            continue
        totals = {row.metric: row.value for row in sub.rows if not row.dims}
        parts: dict[tuple[str, str], float] = defaultdict(float)
        for row in sub.rows:
            if len(row.dims) == 1 and row.value is not None:
                parts[(row.metric, next(iter(row.dims)))] += row.value
        for (metric, dimension), whole in parts.items():
            if metric in COMPLETE_BREAKDOWNS and dimension in COMPLETE_BREAKDOWNS[metric]:
                assert whole == totals[metric], (sub.org, sub.scope, metric, dimension)


# --- coordination realism ----------------------------------------------------------------


def test_some_submissions_are_late_missing_restated_or_provisional(alliance: GeneratedAlliance) -> None:
    firsts = [s for s in alliance.submissions if s.version == 1]
    late = sum(s.late for s in firsts)
    restated = [s for s in alliance.submissions if s.version > 1]
    assert 0.03 <= late / len(firsts) <= 0.2
    assert 0 < len(alliance.missing) <= 0.05 * len(firsts)
    assert 0.01 <= len(restated) / len(firsts) <= 0.08
    assert any(s.provisional for s in firsts)
    received = {(s.org, s.scope, s.version): s.received_at for s in alliance.submissions}
    reasons = Counter(s.supersede_reason for s in restated)
    assert None not in reasons and len(reasons) >= 5
    assert "final figures replace provisional ones" in reasons
    for sub in restated:
        assert sub.received_at > received[(sub.org, sub.scope, sub.version - 1)]
        assert not sub.provisional
    assert all(s.received_at.date() < TODAY for s in alliance.submissions)
    assert [s.received_at for s in alliance.submissions] == sorted(
        s.received_at for s in alliance.submissions
    )


# --- distributions, magnitudes, trends ---------------------------------------------------


def _share_within(
    alliance: GeneratedAlliance, catalogue: Catalogue, metric: str, minutes: int
) -> dict[int, float]:
    """Share of cases done within ``minutes`` per year, not-yet-actioned cases included."""
    upper = {b.code: b.upper_minutes for b in catalogue.buckets.buckets}
    within: dict[int, float] = defaultdict(float)
    total: dict[int, float] = defaultdict(float)
    for _, row in _rows(alliance, metric):
        bound = upper[row.dims["time_bucket"]]
        total[row.period.year] += row.value or 0
        if bound is not None and bound <= minutes:
            within[row.period.year] += row.value or 0
    return {year: within[year] / total[year] for year in sorted(total)}


def test_takedown_distributions_use_every_bucket_with_plausible_shares(
    alliance: GeneratedAlliance, catalogue: Catalogue
) -> None:
    for metric in ("co_takedown_time", "ht_notice_to_removal_time"):
        rows = _rows(alliance, metric)
        assert {row.dims["time_bucket"] for _, row in rows} == set(catalogue.buckets.codes)
        assert sum(row.value or 0 for _, row in rows if row.dims["time_bucket"] == "not_actioned") > 0
    hotlines = _share_within(alliance, catalogue, "ht_notice_to_removal_time", 72 * 60)
    assert all(0.6 <= share <= 0.95 for share in hotlines.values())  # INHOPE: 62-91% in 3 days
    assert hotlines[2025] > hotlines[2021]  # faster over the years
    companies = _share_within(alliance, catalogue, "co_takedown_time", 24 * 60)
    assert all(0.6 <= share <= 0.98 for share in companies.values())


def test_company_figures_are_heavy_tailed_and_growing(alliance: GeneratedAlliance) -> None:
    reports = _yearly(alliance, "co_reports_to_authority", by_org=True)
    year_2023 = sorted(v for (_, year), v in reports.items() if year == 2023)
    assert 5e6 <= year_2023[-1] <= 3e7  # the largest platform, like the real 17.8 million
    assert year_2023[0] < 200 and statistics.median(year_2023) < 5000
    alliance_total = _yearly(alliance, "co_reports_to_authority")
    assert 0.05 <= _cagr(alliance_total[("", 2021)], alliance_total[("", 2025)], 4) <= 0.25
    proactive = _yearly(alliance, "co_items_detected_proactively", by_org=True)
    actioned = _yearly(alliance, "co_items_actioned", by_org=True)
    largest = sorted(actioned, key=lambda k: -actioned[k])[:5]
    assert all(0.85 <= proactive[k] / actioned[k] <= 0.995 for k in largest)


def test_capabilities_spread_over_time_and_livestream_detection_stays_rare(
    alliance: GeneratedAlliance,
) -> None:
    def adoption(metric: str, year: int) -> float:
        values = [r.value or 0 for _, r in _rows(alliance, metric) if r.period.code == f"{year}-Q4"]
        return sum(values) / len(values)

    assert adoption("co_capability_hash_matching", 2025) > adoption("co_capability_hash_matching", 2021)
    assert adoption("co_capability_hash_matching", 2025) >= 0.8
    assert adoption("co_capability_livestream_detection", 2025) <= 0.5
    livestreamers = {org for org, _ in _rows(alliance, "co_capability_livestream_detection")}
    assert 0 < len(livestreamers) < len({org for org, _ in _rows(alliance, "co_capability_hash_matching")})


def test_victims_are_small_counts_and_only_some_countries_meet_ten_percent(
    alliance: GeneratedAlliance,
) -> None:
    cells = [r.value for _, r in _rows(alliance, "le_victims_identified")]
    assert sum(1 for v in cells if v is not None and v < 10) >= 0.1 * len(cells)
    victims = _yearly(alliance, "le_victims_identified", by_org=True)
    growth = [
        _cagr(victims[(org, 2021)], victims[(org, 2025)], 4)
        for org in {org for org, _ in victims}
        if victims.get((org, 2021)) and victims.get((org, 2025))
    ]
    assert any(g >= 0.1 for g in growth) and any(g < 0.1 for g in growth)
    stock = {r.period.code: r.value or 0 for _, r in _rows(alliance, "le_victims_identified_icse_cumulative")}
    assert 28000 <= stock["2022-Q4"] <= 34000  # INTERPOL: over 30,000 identified by 2022


def test_flows_are_counted_at_both_ends_with_small_gaps_and_a_few_large_ones(
    alliance: GeneratedAlliance,
) -> None:
    own: dict[str, float] = defaultdict(float)
    seen: dict[str, float] = defaultdict(float)
    for org, row in _rows(alliance, "co_reports_to_authority"):
        if "counterpart" in row.dims and row.period.year == 2023:
            own[org] += row.value or 0
    for _, row in _rows(alliance, "ch_reports_received"):
        if "counterpart" in row.dims and row.period.year == 2023:
            seen[row.dims["counterpart"]] += row.value or 0
    gaps = [own[k] / seen[k] - 1 for k in own.keys() & seen.keys() if seen[k] > 1000]
    assert abs(statistics.median(gaps)) < 0.05
    assert 1 <= sum(abs(g) > 0.25 for g in gaps) <= 3


# --- determinism -------------------------------------------------------------------------


def test_same_seed_gives_identical_rows_and_another_seed_other_rows(catalogue: Catalogue) -> None:
    first = generate_alliance(catalogue, seed=SEED, today=SHORT)
    again = generate_alliance(catalogue, seed=SEED, today=SHORT)
    other = generate_alliance(catalogue, seed=SEED + 1, today=SHORT)
    assert first == again
    assert first.registry == other.registry  # who is who does not depend on the seed
    assert [s.rows for s in first.submissions][:50] != [s.rows for s in other.submissions][:50]


def test_a_period_s_figures_do_not_depend_on_today(alliance: GeneratedAlliance, catalogue: Catalogue) -> None:
    """Loading again later only adds: what had arrived by an earlier day is unchanged."""
    earlier = generate_alliance(catalogue, seed=SEED, today=SHORT)
    later = {(s.org, s.scope, s.version): s for s in alliance.submissions}
    assert earlier.submissions
    for sub in earlier.submissions:
        assert later[(sub.org, sub.scope, sub.version)] == sub


# --- loading -----------------------------------------------------------------------------


def _demo_observations(session: Session) -> int:
    query = select(func.count(col(Observation.id))).join(Submission).where(Submission.channel == "demo")
    return session.exec(query).one()


def test_loading_twice_stores_nothing_new_and_later_adds_periods(
    session: Session, catalogue: Catalogue
) -> None:
    report = load_demo_alliance(session, catalogue, seed=SEED, today=SHORT)
    session.commit()
    stored = _demo_observations(session)
    assert report.stored_submissions == report.submissions > 0
    assert stored == report.stored_observations == report.observations
    members = session.exec(
        select(func.count()).select_from(Organisation).where(Organisation.status == "member")
    )
    assert members.one() >= 150
    assert "organisations" in report.summary() and "restated" in report.summary()

    again = load_demo_alliance(session, catalogue, seed=SEED, today=SHORT)
    session.commit()
    assert again.stored_submissions == 0 and _demo_observations(session) == stored

    later = load_demo_alliance(session, catalogue, seed=SEED, today=date(2021, 8, 15))
    session.commit()
    assert later.stored_submissions > 0
    assert _demo_observations(session) == stored + later.stored_observations


# The full load, twice, through `hub demo --no-serve` on both backends: tests/test_cli.py.
