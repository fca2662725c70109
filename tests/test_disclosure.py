"""Disclosure control (hub.disclosure) and its audit (hub.disclosure_audit).

Tables are built by hand in the indicator contract's shape (hub.figures.conform); the audit's
linear programmes are the independent check that secondary suppression is sufficient.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub.disclosure import (
    DisclosureError,
    DisclosurePolicy,
    build_constraints,
    load_policy,
    protect,
    public_view,
)
from hub.disclosure_audit import Constraints, audit, key_positions
from hub.errors import CatalogueError
from hub.figures import DISCLOSURE_COLUMNS, INDICATOR_COLUMNS, NO_PARAM, conform
from hub.vocab import DIMENSIONS, PERIOD_KINDS, TOTAL

DATA = Path(__file__).resolve().parent.parent / "data"


@pytest.fixture(scope="module")
def policy() -> DisclosurePolicy:
    return load_policy(DATA)


def cell(value: float, **key: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "metric": "le_victims_identified",
        "period": "2025",
        "period_kind": "year",
        "level": "alliance",
        "entity": "ALL",
        "statistic": "value",
        "value": float(value),
        "unit": "count",
        "disclosure_class": "people",
        "coverage": 5,
    }
    row.update(key)
    return row


def table(rows: list[dict[str, Any]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows)
    for name in DIMENSIONS:
        if name in frame.columns:
            frame[name] = frame[name].fillna(TOTAL)
    if "param" in frame.columns:
        frame["param"] = frame["param"].fillna(NO_PARAM)
    return conform(frame)


def reasons(protected: pd.DataFrame, **where: Any) -> list[str]:
    mask = np.ones(len(protected), dtype=bool)
    for name, value in where.items():
        mask &= (protected[name] == value).to_numpy()
    return list(protected.loc[mask, "suppression_reason"])


def check(protected: pd.DataFrame, policy: DisclosurePolicy, **kwargs: Any) -> None:
    """The audit must find every sensitive cell protected."""
    result = audit(public_view(protected), build_constraints(protected, policy, **kwargs), policy)
    assert result.ok, result.failures


def grid(values: list[list[float]], **extra: Any) -> pd.DataFrame:
    """Countries (rows) x categories (columns) with every total, at alliance level."""
    rows = []
    n_rows, n_cols = len(values), len(values[0])
    for i in range(n_rows + 1):
        for j in range(n_cols + 1):
            country = f"C{i}" if i < n_rows else "_T"
            category = f"K{j}" if j < n_cols else "_T"
            if i < n_rows and j < n_cols:
                v = values[i][j]
            elif i < n_rows:
                v = sum(values[i])
            elif j < n_cols:
                v = sum(r[j] for r in values)
            else:
                v = sum(map(sum, values))
            rows.append(cell(v, country=country, category=category, metric="le_offenders_arrested", **extra))
    return table(rows)


# --- policy -------------------------------------------------------------------------------


def test_policy_file_is_valid(policy: DisclosurePolicy) -> None:
    assert policy.classes["people"].threshold == 10
    assert policy.classes["people"].label == "<10"
    assert policy.dominance.k == 85
    assert policy.min_events == 10
    assert policy.ratio_parts["co_proactive_share"] == ("co_items_detected_proactively", "co_items_actioned")


def _policy_dir(tmp_path: Path, text: str) -> Path:
    for name in ("catalogue", "categories"):
        (tmp_path / name).symlink_to(DATA / name)
    (tmp_path / "disclosure.yaml").write_text(text, encoding="utf-8")
    return tmp_path


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (("threshold: 10", "threshold: -1"), "classes.people.threshold"),
        (("  capability:\n    threshold: 0\n", ""), "no rule for ['capability']"),
        (("k: 85", "k: 150"), "dominance.k"),
        (("n: 2", "n: 3"), "dominance.n"),
        (("min_events: 10", "min_events: 0"), "min_events"),
        (("dominance_fraction: 0.1", "dominance_fraction: 0.1\n  extra: 1"), "protection.extra"),
        (("show_zero: true", "show_zero: maybe"), "classes.people.show_zero"),
        (("verify: [primary]", "verify: [dominance]"), "must include 'primary'"),
        (("verify: [primary]", "verify: [primary, secondary]"), "protection.verify"),
    ],
)
def test_bad_policy_files_name_file_and_field(tmp_path: Path, edit: tuple[str, str], message: str) -> None:
    text = (DATA / "disclosure.yaml").read_text(encoding="utf-8")
    assert edit[0] in text
    folder = _policy_dir(tmp_path, text.replace(edit[0], edit[1]))
    with pytest.raises(CatalogueError) as caught:
        load_policy(folder)
    assert "disclosure.yaml" in str(caught.value)
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("classes: [\n", "not valid YAML"),
        ("- 1\n", "expected a mapping"),
        ("ratio_parts: {}\n", "ratio_parts"),
    ],
)
def test_malformed_policy_files(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(CatalogueError, match=message):
        load_policy(_policy_dir(tmp_path, text))


def test_missing_policy_file(tmp_path: Path) -> None:
    with pytest.raises(CatalogueError, match=r"disclosure\.yaml: file is missing"):
        load_policy(tmp_path)


# --- primary, display, public view ------------------------------------------------------


def test_primary_threshold_zero_and_display(policy: DisclosurePolicy) -> None:
    frame = table(
        [
            cell(0, country="FR"),
            cell(1, country="DE"),
            cell(9, country="IT"),
            cell(10, country="ES"),
            cell(1234, country="_T"),
            cell(3, metric="co_appeals", disclosure_class="items", period="2024"),
            cell(0.125, metric="co_proactive_share", unit="share", disclosure_class="share", period="2024"),
        ]
    )
    out = protect(frame, policy, named_organisations=set())
    assert list(out.columns) == [*INDICATOR_COLUMNS, *DISCLOSURE_COLUMNS]
    by_country = out.set_index("country")
    assert by_country.loc["FR", "display"] == "0"  # a true zero identifies nobody
    assert by_country.loc["DE", "suppression_reason"] == "primary"
    assert by_country.loc["IT", "display"] == "<10"
    assert by_country.loc["ES", "display"] == "10"
    assert not by_country.loc["ES", "suppressed"]
    items = out[out["metric"] == "co_appeals"].iloc[0]
    assert (items["suppressed"], items["display"]) == (False, "3")  # items have no threshold
    share = out[out["metric"] == "co_proactive_share"].iloc[0]
    assert share["display"] == "0.125"


def test_show_zero_false_hides_zero(policy: DisclosurePolicy) -> None:
    classes = dict(policy.classes)
    classes["people"] = classes["people"].model_copy(update={"show_zero": False})
    strict = policy.model_copy(update={"classes": classes})
    out = protect(table([cell(0)]), strict, named_organisations=set())
    assert reasons(out) == ["primary"]


def test_public_view_blanks_and_drops(policy: DisclosurePolicy) -> None:
    frame = table(
        [
            cell(4, level="organisation", entity="named_org", numerator=4.0, denominator=9.0, yoy_change=0.5),
            cell(50, level="organisation", entity="secret_org"),
            cell(
                54,
                largest_org="secret_org",
                largest_share=50 / 54,
                second_org="named_org",
                second_share=4 / 54,
            ),
        ]
    )
    out = protect(frame, policy, named_organisations={"named_org"})
    public = public_view(out)
    assert "secret_org" not in set(public["entity"])
    assert not {"largest_org", "largest_share", "second_org", "second_share"} & set(public.columns)
    named = public[public["entity"] == "named_org"].iloc[0]
    assert named["suppression_reason"] == "primary"
    assert np.isnan(named["value"]) and np.isnan(named["numerator"]) and np.isnan(named["yoy_change"])
    assert named["display"] == "<10"
    alliance = public[public["level"] == "alliance"].iloc[0]
    assert alliance["suppression_reason"] == "dominance"  # 100% from two, one not named
    assert alliance["display"] == "x"


# --- secondary suppression ---------------------------------------------------------------


def test_two_by_two_one_small_cell_forces_three_more(policy: DisclosurePolicy) -> None:
    frame = grid([[3, 20], [30, 40]])
    out = protect(frame, policy, named_organisations=set())
    inner = out[(out["country"] != "_T") & (out["category"] != "_T")].set_index(["country", "category"])
    assert inner.loc[("C0", "K0"), "suppression_reason"] == "primary"
    assert inner["suppressed"].all()  # the small cell, its row and column partners, the fourth
    assert set(inner["suppression_reason"]) == {"primary", "secondary"}
    totals = out[(out["country"] == "_T") | (out["category"] == "_T")]
    assert not totals["suppressed"].any()
    check(out, policy)


def test_hierarchy_country_to_alliance(policy: DisclosurePolicy) -> None:
    organisations = pd.DataFrame(
        {
            "organisation": ["a", "b", "c"],
            "stakeholder_type": ["law_enforcement"] * 3,
            "org_country": ["FR", "DE", "IT"],
        }
    )
    rows = [
        cell(4, level="country", entity="FR", coverage=2),
        cell(25, level="country", entity="DE", coverage=2),
        cell(40, level="country", entity="IT", coverage=2),
        cell(69, coverage=6),
    ]
    out = protect(table(rows), policy, named_organisations=set(), organisations=organisations)
    assert reasons(out, entity="FR") == ["primary"]
    assert reasons(out, entity="DE") == ["secondary"]  # the smaller partner
    assert reasons(out, entity="IT") == [""]
    check(out, policy, organisations=organisations)


def test_months_to_quarter(policy: DisclosurePolicy) -> None:
    rows = [
        cell(5, period="2025-01", period_kind="month"),
        cell(30, period="2025-02", period_kind="month"),
        cell(12, period="2025-03", period_kind="month"),
        cell(47, period="2025-Q1", period_kind="quarter"),
    ]
    out = protect(table(rows), policy, named_organisations=set())
    assert reasons(out, period="2025-01") == ["primary"]
    assert reasons(out, period="2025-03") == ["secondary"]
    assert reasons(out, period="2025-02") == [""]
    check(out, policy)


def test_distribution_buckets_add_to_events_total(policy: DisclosurePolicy) -> None:
    rows = [
        cell(
            v,
            statistic="events",
            time_bucket=b,
            unit="hours",
            disclosure_class="people",
            metric="le_victims_identified",
        )
        for b, v in (("0-1h", 3), ("1h-24h", 50), ("24h+", 60), ("_T", 113))
    ]
    out = protect(table(rows), policy, named_organisations=set())
    assert reasons(out, time_bucket="0-1h") == ["primary"]
    assert reasons(out, time_bucket="1h-24h") == ["secondary"]
    check(out, policy)


def test_small_count_of_an_organisation_not_named_is_protected(policy: DisclosurePolicy) -> None:
    organisations = pd.DataFrame(
        {
            "organisation": ["a", "b", "c"],
            "stakeholder_type": ["law_enforcement"] * 3,
            "org_country": ["", "", ""],
        }
    )
    base = {"level": "organisation", "coverage": 1}
    rows = [
        cell(30, entity="a", **base),
        cell(40, entity="b", **base),
        cell(3, entity="c", **base),
        cell(73, level="stakeholder_type", entity="law_enforcement", coverage=3),
    ]
    out = protect(table(rows), policy, named_organisations={"a", "b"}, organisations=organisations)
    assert reasons(out, entity="c") == ["not_named"]
    assert reasons(out, entity="a") == ["secondary"]  # else 73 - 30 - 40 gives the 3 away
    assert reasons(out, entity="b") == [""]
    assert "c" not in set(public_view(out)["entity"])
    check(out, policy, organisations=organisations)
    # the audit checks it: publishing a again would leak c
    leaky = out.copy()
    leaky.loc[leaky["entity"] == "a", ["suppressed", "suppression_reason"]] = (False, "")
    result = audit(public_view(leaky), build_constraints(leaky, policy, organisations=organisations), policy)
    assert list(result.failures["entity"]) == ["c"]


# --- dominance, min events, derived cells ----------------------------------------------------


@pytest.mark.parametrize(
    ("named", "expected"), [(set(), "dominance"), ({"big", "second"}, ""), ({"big"}, "dominance")]
)
def test_dominance_with_and_without_consent(policy: DisclosurePolicy, named: set[str], expected: str) -> None:
    row = cell(
        1000,
        metric="co_appeals",
        disclosure_class="items",
        level="stakeholder_type",
        entity="company",
        largest_org="big",
        largest_share=0.80,
        second_org="second",
        second_share=0.06,
    )
    out = protect(table([row]), policy, named_organisations=named)
    assert reasons(out) == [expected]


def test_dominance_at_the_limit_is_published(policy: DisclosurePolicy) -> None:
    row = cell(
        1000,
        metric="co_appeals",
        disclosure_class="items",
        largest_org="a",
        largest_share=0.80,
        second_org="b",
        second_share=0.05,
    )
    assert reasons(protect(table([row]), policy, named_organisations=set())) == [""]


def test_dominance_cell_is_protected_by_partners(policy: DisclosurePolicy) -> None:
    rows = [
        cell(
            900,
            metric="co_appeals",
            disclosure_class="items",
            level="stakeholder_type",
            entity="company",
            largest_org="a",
            largest_share=0.9,
            second_org="b",
            second_share=0.05,
        ),
        cell(500, metric="co_appeals", disclosure_class="items", level="stakeholder_type", entity="hotline"),
        cell(100, metric="co_appeals", disclosure_class="items", level="stakeholder_type", entity="ngo"),
        cell(1500, metric="co_appeals", disclosure_class="items"),
    ]
    out = protect(table(rows), policy, named_organisations=set())
    assert reasons(out, entity="company") == ["dominance"]
    assert reasons(out, entity="ngo") == ["secondary"]
    check(out, policy)


@pytest.mark.parametrize(
    ("events", "expected"), [(9.0, "min_events"), (10.0, ""), (float("nan"), "min_events")]
)
def test_percentile_needs_ten_events(policy: DisclosurePolicy, events: float, expected: str) -> None:
    row = cell(
        5.5,
        metric="co_takedown_time",
        statistic="percentile",
        param=0.5,
        unit="hours",
        disclosure_class="time",
        event_count=events,
    )
    assert reasons(protect(table([row]), policy, named_organisations=set())) == [expected]


def test_share_of_hidden_parts_is_hidden(policy: DisclosurePolicy) -> None:
    base = {"disclosure_class": "items", "level": "country", "entity": "FR", "coverage": 3}
    rows = [
        cell(90, metric="co_items_detected_proactively", largest_org="a", largest_share=0.95, **base),
        cell(100, metric="co_items_actioned", **base),
        cell(
            0.9,
            metric="co_proactive_share",
            unit="share",
            numerator=90.0,
            denominator=100.0,
            **{**base, "disclosure_class": "share"},
        ),
    ]
    out = protect(table(rows), policy, named_organisations=set())
    assert reasons(out, metric="co_items_detected_proactively") == ["dominance"]
    assert reasons(out, metric="co_proactive_share") == ["secondary"]
    assert reasons(out, metric="co_items_actioned") == [""]


def test_percentile_of_a_hidden_event_count_is_hidden(policy: DisclosurePolicy) -> None:
    base = {
        "metric": "co_takedown_time",
        "unit": "hours",
        "disclosure_class": "time",
        "level": "country",
        "entity": "FR",
        "coverage": 1,
    }
    rows = [
        cell(40, statistic="events", **base),
        cell(3.5, statistic="percentile", param=0.5, event_count=40.0, **base),
    ]
    out = protect(table(rows), policy, named_organisations=set())
    assert reasons(out, statistic="events") == ["dominance"]  # a single organisation's figure
    assert reasons(out, statistic="percentile") in (["dominance"], ["secondary"])


def test_share_within_of_a_hidden_bucket_is_hidden(policy: DisclosurePolicy) -> None:
    base = {
        "metric": "co_takedown_time",
        "unit": "hours",
        "disclosure_class": "time",
        "level": "country",
        "entity": "FR",
    }
    dominated = {"largest_org": "a", "largest_share": 0.95, "second_org": "b", "second_share": 0.01}
    rows = [
        cell(30, statistic="events", time_bucket="0-1h", **base, **dominated),
        cell(70, statistic="events", time_bucket="1h+", **base),
        cell(100, statistic="events", **base),
        cell(
            0.3,
            statistic="share_within",
            param=1.0,
            numerator=30.0,
            denominator=100.0,
            event_count=100.0,
            **base,
        ),
    ]
    out = protect(table(rows), policy, named_organisations=set())
    assert reasons(out, time_bucket="0-1h") == ["dominance"]
    assert reasons(out, time_bucket="1h+") == ["secondary"]
    assert reasons(out, statistic="share_within") == ["secondary"]  # its numerator is the bucket


def test_organisations_tie_to_the_alliance_without_the_organisation_list(policy: DisclosurePolicy) -> None:
    base = {"level": "organisation", "coverage": 1}
    rows = [
        cell(3, entity="a", **base),
        cell(40, entity="b", **base),
        cell(60, entity="c", **base),
        cell(103),
    ]
    out = protect(table(rows), policy, named_organisations={"a", "b", "c"})
    assert reasons(out, entity="a") == ["primary"]
    assert reasons(out, entity="b") == ["secondary"]
    check(out, policy)


def test_yoy_leak_is_blanked(policy: DisclosurePolicy) -> None:
    rows = [
        cell(8, period="2024", country="FR"),
        cell(16, period="2025", country="FR", yoy_change=1.0),  # 16 / (1 + 1.0) would reveal 8
        cell(40, period="2024", country="DE"),
        cell(44, period="2025", country="DE", yoy_change=0.1),
    ]
    out = protect(table(rows), policy, named_organisations=set())
    fr = out[(out["country"] == "FR") & (out["period"] == "2025")].iloc[0]
    de = out[(out["country"] == "DE") & (out["period"] == "2025")].iloc[0]
    assert not fr["suppressed"] and np.isnan(fr["yoy_change"])
    assert de["yoy_change"] == pytest.approx(0.1)


def test_restatement_cannot_be_read_by_comparing_releases(policy: DisclosurePolicy) -> None:
    def release(fr: float) -> pd.DataFrame:
        return table(
            [
                cell(fr, country="FR"),
                cell(30, country="DE"),
                cell(50, country="IT"),
                cell(fr + 80, country="_T"),
            ]
        )

    first = protect(release(12), policy, named_organisations=set())
    assert not first["suppressed"].any()
    # Without the earlier release, hiding DE would do; with it, DE (30) and IT (50) are
    # already public, so the total must go.
    second = protect(release(8), policy, named_organisations=set(), previous=first)
    assert reasons(second, country="FR") == ["primary"]
    assert reasons(second, country="_T") == ["secondary"]
    assert reasons(second, country="DE") == [""]
    check(second, policy, previous=first)
    naive = protect(release(8), policy, named_organisations=set())
    assert reasons(naive, country="DE") == ["secondary"]
    result = audit(public_view(naive), build_constraints(naive, policy, previous=first), policy)
    assert not result.ok  # across releases the naive pattern leaks the 8


def test_unprotectable_table_is_refused(policy: DisclosurePolicy) -> None:
    # FR is the only country: the total equals it, and an earlier release published the total.
    rows = [cell(8, country="FR"), cell(8, country="_T")]
    earlier = table(rows).assign(suppressed=False, suppression_reason="", display="8")
    earlier = earlier[earlier["country"] == "_T"]
    alone = protect(table(rows), policy, named_organisations=set())
    assert list(alone["suppression_reason"]) == ["primary", "primary"]  # both below 10
    with pytest.raises(DisclosureError, match="cannot protect le_victims_identified 2025 alliance ALL"):
        protect(table(rows), policy, named_organisations=set(), previous=earlier)


def test_missing_key_values_are_refused(policy: DisclosurePolicy) -> None:
    frame = conform(pd.DataFrame([cell(5, country="FR"), cell(5)]))
    with pytest.raises(DisclosureError, match="without"):
        protect(frame, policy, named_organisations=set())


def test_duplicate_keys_are_refused(policy: DisclosurePolicy) -> None:
    with pytest.raises(DisclosureError, match="same key"):
        protect(table([cell(5), cell(5)]), policy, named_organisations=set())


# --- the audit can fail -------------------------------------------------------------------


def test_audit_catches_an_unprotected_table(policy: DisclosurePolicy) -> None:
    protected = protect(grid([[3, 20], [30, 40]]), policy, named_organisations=set())
    leaky = protected.copy()
    partner = (leaky["country"] == "C0") & (leaky["category"] == "K1")
    leaky.loc[partner, ["suppressed", "suppression_reason"]] = (False, "")
    result = audit(public_view(leaky), build_constraints(leaky, policy), policy)
    assert not result.ok
    failure = result.failures.iloc[0]
    assert (failure["country"], failure["category"]) == ("C0", "K0")
    assert failure["lower"] == pytest.approx(3) and failure["upper"] == pytest.approx(3)


def test_audit_catches_a_narrow_range(policy: DisclosurePolicy) -> None:
    # 3 and 5 hidden in a row totalling 8: each is within [0, 8], under the threshold 10.
    rows = [cell(3, country="FR"), cell(5, country="DE"), cell(100, country="IT"), cell(108, country="_T")]
    protected = protect(table(rows), policy, named_organisations=set())
    leaky = protected.copy()
    leaky.loc[leaky["country"] == "IT", ["suppressed", "suppression_reason"]] = (False, "")
    result = audit(public_view(leaky), build_constraints(leaky, policy), policy)
    assert set(result.failures["country"]) == {"FR", "DE"}
    assert (result.failures["upper"] == 8).all()
    check(protected, policy)


# --- property tests -----------------------------------------------------------------------

values_strategy = st.one_of(st.integers(1, 9), st.integers(10, 200), st.just(0))


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.integers(1, 5).flatmap(
        lambda r: st.lists(
            st.lists(values_strategy, min_size=1, max_size=4).map(tuple), min_size=r, max_size=r
        )
    )
)
def test_random_grids_are_protected(policy: DisclosurePolicy, raw: list[tuple[int, ...]]) -> None:
    width = min(len(r) for r in raw)
    values = [list(map(float, r[:width])) for r in raw]
    out = protect(grid(values), policy, named_organisations=set())
    # independent: the primary cells are exactly the counts 1-9, totals included
    small = (out["value"] > 0) & (out["value"] < 10)
    assert ((out["suppression_reason"] == "primary") == small).all()
    assert (out.loc[small, "display"] == "<10").all()
    result = audit(public_view(out), build_constraints(out, policy), policy)
    assert result.ok, result.failures


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.lists(values_strategy, min_size=3, max_size=3), min_size=2, max_size=4),
    st.lists(st.sampled_from(["FR", "DE"]), min_size=2, max_size=4),
)
def test_random_months_and_countries_are_protected(
    policy: DisclosurePolicy, months: list[list[int]], countries_of: list[str]
) -> None:
    """Quarter months x countries x the alliance, with an independent audit."""
    countries = sorted({*countries_of, "FR"})
    rows = []
    grid_values = [m[: len(countries)] + [0] * (len(countries) - len(m)) for m in months[:3]]
    while len(grid_values) < 3:
        grid_values.append([20] * len(countries))
    for index, country in enumerate(countries):
        series = [float(g[index]) for g in grid_values]
        for month, v in enumerate(series, start=1):
            rows.append(
                cell(v, period=f"2025-{month:02d}", period_kind="month", level="country", entity=country)
            )
        rows.append(
            cell(sum(series), period="2025-Q1", period_kind="quarter", level="country", entity=country)
        )
    for month in range(3):
        rows.append(
            cell(
                float(sum(g for g in grid_values[month])), period=f"2025-{month + 1:02d}", period_kind="month"
            )
        )
    rows.append(cell(float(sum(map(sum, grid_values))), period="2025-Q1", period_kind="quarter"))
    out = protect(table(rows), policy, named_organisations=set())
    result = audit(public_view(out), build_constraints(out, policy), policy)
    assert result.ok, result.failures


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(st.integers(0, 300), st.floats(0.3, 1.0), st.floats(0.0, 1.0)),
        min_size=2,
        max_size=6,
    )
)
def test_random_dominance_cells_are_proved_when_verified(
    policy: DisclosurePolicy, countries: list[tuple[int, float, float]]
) -> None:
    """Country totals of an items metric, some dominated by one or two organisations, with
    verification of dominance on: the audit finds every dominance cell's range at least 10%
    either side of its value."""
    verified = policy.model_copy(
        update={"protection": policy.protection.model_copy(update={"verify": ("primary", "dominance")})}
    )
    base = {"metric": "co_appeals", "disclosure_class": "items", "level": "country", "coverage": 3}
    rows = []
    for index, (value, top, rest) in enumerate(countries):
        second = (1 - top) * rest
        rows.append(
            cell(
                value,
                entity=f"C{index}",
                largest_org="a",
                largest_share=top,
                second_org="b",
                second_share=second,
                **base,
            )
        )
    rows.append(cell(sum(v for v, _, _ in countries), metric="co_appeals", disclosure_class="items"))
    try:
        out = protect(table(rows), verified, named_organisations=set())
    except DisclosureError:
        # legitimate only when every country is dominated: nothing is left to hide
        assert all(top + (1 - top) * rest > 0.85 + 1e-9 for _, top, rest in countries)
        return
    expected = {f"C{i}" for i, (_, top, rest) in enumerate(countries) if top + (1 - top) * rest > 0.85 + 1e-9}
    assert set(out.loc[out["suppression_reason"] == "dominance", "entity"]) == expected
    result = audit(public_view(out), build_constraints(out, verified), verified)
    assert result.ok, result.failures


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.lists(st.integers(0, 60), min_size=3, max_size=3), min_size=2, max_size=4),
    st.lists(st.tuples(st.integers(0, 3), st.integers(0, 2), st.integers(0, 60)), min_size=1, max_size=3),
)
def test_random_restatements_are_protected_across_releases(
    policy: DisclosurePolicy, first: list[list[int]], changes: list[tuple[int, int, int]]
) -> None:
    """A release, then a second with some cells restated: with the first release known, no
    small count of the second can be narrowed (the audit treats the first's unchanged
    published cells as known). A restated cell changes every total above it, so hiding
    those is always possible and protect never gives up here."""
    before = [list(map(float, row)) for row in first]
    after = [row[:] for row in before]
    for i, j, v in changes:
        after[i % len(after)][j] = float(v)
    released = protect(grid(before), policy, named_organisations=set())
    second = protect(grid(after), policy, named_organisations=set(), previous=released)
    result = audit(public_view(second), build_constraints(second, policy, previous=released), policy)
    assert result.ok, result.failures


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.lists(values_strategy, min_size=3, max_size=3), min_size=2, max_size=4),
    st.lists(st.lists(values_strategy, min_size=3, max_size=3), min_size=2, max_size=4),
)
def test_one_programme_over_all_components_agrees_with_linprog_per_cell(
    policy: DisclosurePolicy, left: list[list[int]], right: list[list[int]]
) -> None:
    """Two independent grids (two metrics: two components) checked in one programme per
    direction give, cell by cell, the answer of a minimum and a maximum per cell by
    scipy's linprog on the dense system (the independent computation)."""
    from hub.disclosure_audit import unprotected

    tables = [grid([list(map(float, r)) for r in left])]
    other = grid([list(map(float, r)) for r in right])
    tables.append(other.assign(metric="le_offenders_prosecuted"))
    out = protect(pd.concat(tables, ignore_index=True), policy, named_organisations=set())
    constraints = build_constraints(out, policy)
    values = out["value"].to_numpy(dtype=float)
    known = np.where(out["suppressed"].to_numpy(dtype=bool), np.nan, values)
    targets = np.flatnonzero(np.isnan(known))
    need_low, need_high = values[targets] * 0.7, values[targets] + 2.0
    got = unprotected(constraints, known, targets, need_low, need_high)
    assert list(got) == list(linprog_short(constraints, known, targets, need_low, need_high))


def linprog_short(
    constraints: Constraints,
    known: np.ndarray,
    targets: np.ndarray,
    need_low: np.ndarray,
    need_high: np.ndarray,
) -> np.ndarray:
    """Per target, whether its range misses ``need_low`` or ``need_high``: a minimum and a
    maximum per cell by scipy's linprog on the dense system (the independent computation)."""
    from scipy.optimize import linprog

    dense = np.zeros((constraints.equations, len(known)))
    np.add.at(dense, (constraints.eq, constraints.cell), constraints.coef)
    unknown = np.isnan(known)
    rhs = -dense[:, ~unknown] @ known[~unknown]
    a, eq = dense[:, unknown], constraints.equality
    index = {cell: i for i, cell in enumerate(np.flatnonzero(unknown))}
    short = np.zeros(len(targets), dtype=bool)
    for k, target in enumerate(targets):
        c = np.zeros(a.shape[1])
        c[index[target]] = 1.0
        ranges = []
        for sign in (1.0, -1.0):
            kwargs: dict[str, Any] = {"A_eq": a[eq], "b_eq": rhs[eq]} if eq.any() else {}
            if (~eq).any():
                kwargs |= {"A_ub": -a[~eq], "b_ub": -rhs[~eq]}
            solved = linprog(sign * c, bounds=(0, None), method="highs", **kwargs)
            ranges.append(np.inf if solved.status == 3 else sign * solved.fun)
        low, high = ranges
        short[k] = low > need_low[k] + 1e-6 or high < need_high[k] - 1e-6
    return short


@st.composite
def linear_systems(draw: st.DrawFn) -> tuple[Constraints, np.ndarray]:
    """A random table as linear constraints: leaves, then totals over random parts (equal
    to their sum, or larger: an inequality), some of one part only (two cells an equation
    makes equal, which the audit merges into one variable); each cell's period kind; and
    which cells a reader knows."""
    values = [float(v) for v in draw(st.lists(st.integers(0, 30), min_size=2, max_size=8))]
    eq: list[int] = []
    cell: list[int] = []
    coef: list[float] = []
    equality: list[bool] = []
    for row in range(draw(st.integers(1, 7))):
        parts = draw(st.lists(st.integers(0, len(values) - 1), min_size=1, max_size=4, unique=True))
        excess = draw(st.sampled_from([0, 0, 0, 3]))
        values.append(sum(values[p] for p in parts) + excess)
        eq += [row] * (len(parts) + 1)
        cell += [*parts, len(values) - 1]
        coef += [-1.0] * len(parts) + [1.0]
        equality.append(excess == 0)
    shown = draw(st.lists(st.booleans(), min_size=len(values), max_size=len(values)))
    # period kinds decide the stages of the search for witnesses (held coarser periods first)
    kinds = draw(st.lists(st.sampled_from(PERIOD_KINDS), min_size=len(values), max_size=len(values)))
    cells = pd.DataFrame({"value": values, "period_kind": kinds})
    constraints = Constraints(
        cells, np.asarray(eq), np.asarray(cell), np.asarray(coef), np.asarray(equality, dtype=bool)
    )
    known = np.where(shown, values, np.nan)
    return constraints, known


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(linear_systems(), st.sampled_from([1, 10_000]))
def test_unprotected_agrees_with_linprog_on_random_systems(
    monkeypatch: pytest.MonkeyPatch, system: tuple[Constraints, np.ndarray], bin_variables: int
) -> None:
    """Exact: the same answer as a minimum and a maximum per cell, whether every component
    is solved apart (in parallel threads) or all in one programme, with equal cells merged,
    witnesses stretched along their line and looked for first with the coarser periods held,
    then with only the cells near the targets free. Not exact: never calls a short target
    protected (it may call a protected one short)."""
    from hub import disclosure_audit

    constraints, known = system
    targets = np.flatnonzero(np.isnan(known))
    if not len(targets):
        return
    values = constraints.cells["value"].to_numpy(dtype=float)
    need_low, need_high = values[targets] * 0.7, values[targets] + 2.0
    expected = linprog_short(constraints, known, targets, need_low, need_high)
    with monkeypatch.context() as patch:
        patch.setattr(disclosure_audit, "BIN_VARIABLES", bin_variables)
        exact = disclosure_audit.unprotected(constraints, known, targets, need_low, need_high)
        quick = disclosure_audit.unprotected(constraints, known, targets, need_low, need_high, exact=False)
    assert list(exact) == list(expected)
    assert not (expected & ~quick).any()


def test_repeated_equalities_are_dropped_and_inequalities_kept() -> None:
    """Rows with the same terms (also negated) are one constraint; an inequality is never
    merged with anything (its negation is the opposite constraint)."""
    from scipy import sparse

    from hub.disclosure_audit import _drop_repeated_equalities

    rows = [[1, -1, 0], [-1, 1, 0], [1, -1, 0], [0, 1, 1], [0, 1, 1], [0, -1, -1]]
    matrix = sparse.csr_matrix(np.array(rows, dtype=float))
    rhs = np.array([0.0, 0.0, 0.0, 5.0, 5.0, -5.0])
    is_equal = np.array([True, True, True, True, False, False])
    kept, kept_rhs, kept_equal = _drop_repeated_equalities(matrix, rhs, is_equal)
    assert kept.toarray().tolist() == [[1, -1, 0], [0, 1, 1], [0, 1, 1], [0, -1, -1]]
    assert kept_rhs.tolist() == [0.0, 5.0, 5.0, -5.0]
    assert kept_equal.tolist() == [True, True, False, False]


def test_rows_whose_hashes_collide_are_compared_term_by_term(monkeypatch: pytest.MonkeyPatch) -> None:
    """The rows are grouped by a hash of their terms; with every hash equal (a collision for
    every pair) a row is dropped only when its terms are those of the row kept for its hash;
    a collision with a different row keeps it (keeping a row is always safe)."""
    from scipy import sparse

    from hub import disclosure_audit

    monkeypatch.setattr(disclosure_audit, "_splitmix", lambda z: np.zeros_like(z))
    rows = [[1, -1, 0], [0, 1, -1], [-1, 1, 0], [1, 0, -1], [0, 1, -1]]
    matrix = sparse.csr_matrix(np.array(rows, dtype=float))
    kept, _, _ = disclosure_audit._drop_repeated_equalities(matrix, np.zeros(5), np.ones(5, dtype=bool))
    assert kept.toarray().tolist() == [[1, -1, 0], [0, 1, -1], [1, 0, -1], [0, 1, -1]]


def test_each_failing_cell_gets_a_partner_in_the_same_round() -> None:
    """hide_near serves every failing cell on its own: a cell whose equations offer nothing
    publishable looks one equation further, even while another failing cell found a
    partner next to it (before, that second cell waited a round per partner hidden)."""
    from hub.disclosure import _Pattern

    # eq 0: 20 = A(3) + 17; eq 1: 12 = B(4) + 8 (all hidden); eq 2: 30 = 8 + 22
    values = np.array([20.0, 3.0, 17.0, 12.0, 4.0, 8.0, 22.0, 30.0])
    eq = np.array([0, 0, 0, 1, 1, 1, 2, 2, 2])
    cell = np.array([0, 1, 2, 3, 4, 5, 7, 5, 6])
    coef = np.array([1.0, -1.0, -1.0, 1.0, -1.0, -1.0, 1.0, -1.0, -1.0])
    constraints = Constraints(pd.DataFrame({"value": values}), eq, cell, coef, np.ones(3, dtype=bool))
    reason = np.array(["", "primary", "", "dominance", "primary", "not_named", "", ""], dtype=object)
    pattern = _Pattern(constraints, reason, np.zeros(8, dtype=bool), values, np.zeros(8))
    assert pattern.hide_near(np.array([1, 4]))
    assert np.flatnonzero(reason == "secondary").tolist() == [2, 6]  # the smaller partner in eq 0 and eq 2
    assert pattern.hide_near(np.array([3]))  # nothing in eq 1: the last publishable cell of eq 2
    assert reason[7] == "secondary"
    assert not pattern.hide_near(np.array([3]))  # nothing publishable left within its reach


def test_the_near_stage_frees_only_cells_two_equations_from_a_target() -> None:
    """A chain of cells a - b - c - d - e (one equation per neighbouring pair, as total and
    part): from target a, the near stage frees a, b and c (two equations away, through
    unknown cells), holds d and e at their true values, and keeps what the reader knows.
    A known cell stops the walk: from e, with d known, only e is free."""
    from hub.disclosure_audit import _near_stage

    values = np.array([10.0, 8.0, 6.0, 4.0, 2.0])
    cells = pd.DataFrame({"value": values})
    eq = np.array([0, 0, 1, 1, 2, 2, 3, 3])
    cell = np.array([0, 1, 1, 2, 2, 3, 3, 4])
    coef = np.array([1.0, -1.0] * 4)
    constraints = Constraints(cells, eq, cell, coef, np.zeros(4, dtype=bool))
    unknown = np.full(5, np.nan)
    held, free = _near_stage(constraints, unknown, np.array([0]))
    assert free.tolist() == [True, True, True, False, False]
    assert np.array_equal(held, [np.nan, np.nan, np.nan, 4.0, 2.0], equal_nan=True)
    reader = np.array([np.nan, np.nan, np.nan, 4.0, np.nan])
    held, free = _near_stage(constraints, reader, np.array([4]))
    assert free.tolist() == [False, False, False, False, True]
    assert np.array_equal(held, [10.0, 8.0, 6.0, 4.0, np.nan], equal_nan=True)


def test_witness_stages_hold_the_coarser_periods_first() -> None:
    """Months alone, then months and quarters, then everything: each stage holds every other
    unknown cell at its true value, and keeps what the reader knows."""
    from hub.disclosure_audit import _stages

    kinds = ["year", "month", "quarter", "half_year", "month"]
    values = np.array([40.0, 3.0, 9.0, 20.0, 5.0])
    cells = pd.DataFrame({"value": values, "period_kind": kinds})
    empty = np.zeros(0, dtype=np.int64)
    constraints = Constraints(cells, empty, empty, np.zeros(0), np.zeros(0, dtype=bool))
    known = np.array([np.nan, np.nan, np.nan, np.nan, 5.0])
    stages = _stages(constraints, known)
    assert [None if free is None else free.tolist() for _, free in stages] == [
        [False, True, False, False, True],
        [False, True, True, False, True],
        None,
    ]
    assert np.array_equal(stages[0][0], [40.0, np.nan, 9.0, 20.0, 5.0], equal_nan=True)
    assert np.array_equal(stages[1][0], [40.0, np.nan, np.nan, 20.0, 5.0], equal_nan=True)
    assert stages[2][0] is known
    yearly = Constraints(cells.assign(period_kind="year"), empty, empty, np.zeros(0), np.zeros(0, dtype=bool))
    assert len(_stages(yearly, known)) == 1  # one kind: nothing to hold


def test_key_positions_find_each_cell_of_one_table_in_another() -> None:
    """What an earlier release published is matched to this release's cells by their whole key,
    the parameter included (a float, missing for most statistics)."""
    rows = [
        ("m1", "2025", "alliance", "ALL", "value", NO_PARAM),
        ("m1", "2025", "country", "FR", "value", NO_PARAM),
        ("m2", "2025", "alliance", "ALL", "share_within", 24.0),
        ("m2", "2025", "alliance", "ALL", "share_within", 48.0),
        ("m2", "2025", "alliance", "ALL", "value", NO_PARAM),
    ]
    target = conform(
        pd.DataFrame(rows, columns=["metric", "period", "level", "entity", "statistic", "param"]).assign(
            value=1.0, period_kind="year", unit="count", disclosure_class="default"
        )
    )
    source = target.iloc[[4, 2, 0]].reset_index(drop=True).copy()
    source.loc[1, "param"] = 72.0  # no such parameter in the target
    extra = source.iloc[[0]].assign(entity="DE")  # no such entity in the target
    source = pd.concat([source, extra], ignore_index=True)
    assert list(key_positions(target, source)) == [4, -1, 0, -1]
    assert list(key_positions(target.iloc[::-1].reset_index(drop=True), target)) == [4, 3, 2, 1, 0]
    with pytest.raises(ValueError, match="two rows with the same key"):
        key_positions(pd.concat([target, target.iloc[[1]]], ignore_index=True), source)
