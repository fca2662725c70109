"""The indicator engine: values worked out by hand, properties against brute-force loops, bad
inputs, and one run on observations read back from a real database."""

from __future__ import annotations

import dataclasses
import math
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import Session, col, select

from hub.catalogue import Catalogue
from hub.figures import (
    ALLIANCE,
    COLUMN_TYPES,
    INDICATOR_COLUMNS,
    KEY_COLUMNS,
    OBSERVATION_TYPES,
    load_observations,
)
from hub.indicators import IndicatorError, compute_indicators
from hub.models import Submission
from hub.organisations import OrganisationIn, add_organisation
from hub.periods import parse_period
from hub.store import store_submission
from hub.validation import ObservationIn
from hub.vocab import DIMENSIONS, TOTAL

ORGS = {
    "a": ("company", "FR"),
    "b": ("company", "DE"),
    "c": ("company", "FR"),
    "h": ("hotline", "FR"),
    "ch1": ("clearinghouse", "US"),
    "ch2": ("clearinghouse", "CA"),
    "ig1": ("intergovernmental", ""),
    "ig2": ("intergovernmental", ""),
}


def obs(*rows: dict[str, Any]) -> pd.DataFrame:
    """An observation frame like hub.figures.load_observations returns."""
    out = []
    for index, row in enumerate(rows):
        org = row.get("organisation", "a")
        period = str(row["period"])
        base: dict[str, Any] = {
            "organisation": org,
            "stakeholder_type": ORGS[org][0],
            "org_country": ORGS[org][1],
            "period_kind": parse_period(period).kind,
            "value": np.nan,
            "provisional": False,
            "submission_id": 1,
            "version": 1,
            "supersede_reason": "",
            "channel": "cli",
            **dict.fromkeys(DIMENSIONS, TOTAL),
        }
        base.update(row)
        base["value"] = float(base["value"]) if base["value"] is not None else np.nan
        out.append(base)
        del index
    return pd.DataFrame(out)[list(OBSERVATION_TYPES)].astype(OBSERVATION_TYPES)


def row(metric: str, period: str, value: float | None, org: str = "a", **extra: Any) -> dict[str, Any]:
    return {"metric": metric, "period": period, "value": value, "organisation": org, **extra}


def one(frame: pd.DataFrame, **where: Any) -> pd.Series:
    """The single row matching ``where`` (statistic value, all dimensions TOTAL unless given)."""
    where = {"statistic": "value", **{d: TOTAL for d in DIMENSIONS}, **where}
    mask = np.ones(len(frame), dtype=bool)
    for name, value in where.items():
        if name == "param":
            mask &= np.isclose(frame[name].to_numpy(dtype=float), value)
        else:
            mask &= (frame[name] == value).to_numpy(dtype=bool)
    found = frame[mask]
    assert len(found) == 1, f"{len(found)} rows for {where}"
    return found.iloc[0]


def has(frame: pd.DataFrame, **where: Any) -> bool:
    where = {"statistic": "value", **{d: TOTAL for d in DIMENSIONS}, **where}
    mask = np.ones(len(frame), dtype=bool)
    for name, value in where.items():
        mask &= (frame[name] == value).to_numpy(dtype=bool)
    return bool(mask.any())


def with_metric(catalogue: Catalogue, code: str, **changes: Any) -> Catalogue:
    metrics = dict(catalogue.metrics)
    metrics[code] = metrics[code].model_copy(update=changes)
    return dataclasses.replace(catalogue, metrics=metrics)


# ---------------------------------------------------------------------------------------------
# Combination rules, by hand


def test_the_table_has_exactly_the_contract_columns(catalogue: Catalogue) -> None:
    frame = compute_indicators(obs(row("co_items_actioned", "2024-01", 3)), catalogue)
    assert tuple(frame.columns) == INDICATOR_COLUMNS
    assert compute_indicators(obs(row("co_items_actioned", "2024-01", 3)).iloc[:0], catalogue).empty


def test_text_columns_are_categoricals_of_the_values_present_sorted(catalogue: Catalogue) -> None:
    """Coded, not text per row (a release stores them as text, hub.releases.to_parquet): the
    categories are exactly the values present, in code point order, so the table sorts and
    groups as text and the same figures always give the same categories (and bytes)."""
    frame = compute_indicators(
        obs(row("co_items_actioned", "2024-01", 3), row("co_items_actioned", "2024-02", 5)),
        catalogue,
    )
    for name, kind in COLUMN_TYPES.items():
        if kind != "string":
            continue
        column = frame[name]
        assert isinstance(column.dtype, pd.CategoricalDtype), name
        present = sorted(set(column.dropna().astype(str)))
        assert list(column.cat.categories) == present, name


def test_sums_at_every_level_with_coverage_and_dominance(catalogue: Catalogue) -> None:
    frame = compute_indicators(
        obs(
            row("co_items_actioned", "2024-01", 100, "a"),
            row("co_items_actioned", "2024-01", 60, "a", notice_source="hotline"),
            row("co_items_actioned", "2024-01", 30, "b"),
            row("co_items_actioned", "2024-01", 10, "c"),
            row("co_items_actioned", "2024-01", None, "c", notice_source="hotline"),
        ),
        catalogue,
    )
    key = {"metric": "co_items_actioned", "period": "2024-01"}
    assert one(frame, **key, level="organisation", entity="a")["value"] == 100
    alliance = one(frame, **key, level="alliance", entity=ALLIANCE)
    assert alliance["value"] == 140 and alliance["coverage"] == 3
    assert alliance["largest_org"] == "a" and alliance["largest_share"] == pytest.approx(100 / 140)
    assert alliance["second_org"] == "b" and alliance["second_share"] == pytest.approx(30 / 140)
    assert one(frame, **key, level="country", entity="FR")["value"] == 110
    assert one(frame, **key, level="country", entity="DE")["value"] == 30
    assert one(frame, **key, level="stakeholder_type", entity="company")["value"] == 140
    # NaN = not available: left out of the sum; coverage counts the organisations with a value
    hotline = one(frame, **key, level="alliance", entity=ALLIANCE, notice_source="hotline")
    assert hotline["value"] == 60 and hotline["coverage"] == 1
    # a figure resting on one organisation names it (disclosure control asks for its consent)
    assert (hotline["largest_org"], hotline["largest_share"], hotline["second_org"]) == ("a", 1.0, "")
    assert math.isnan(hotline["second_share"])
    only_nan = one(frame, **key, level="organisation", entity="c", notice_source="hotline")
    assert math.isnan(only_nan["value"]) and only_nan["coverage"] == 0
    reporters = one(frame, **key, level="alliance", entity=ALLIANCE, statistic="reporters")
    assert reporters["value"] == 3
    assert one(frame, **key, level="organisation", entity="a")["unit"] == "count"
    assert one(frame, **key, level="organisation", entity="a")["disclosure_class"] == "items"


def test_ratio_of_sums_is_never_an_average_of_ratios(catalogue: Catalogue) -> None:
    frame = compute_indicators(
        obs(
            row("co_items_actioned", "2024-01", 10, "a"),
            row("co_items_detected_proactively", "2024-01", 5, "a"),
            row("co_items_actioned", "2024-01", 30, "b"),
            row("co_items_detected_proactively", "2024-01", 3, "b"),
            row("co_items_actioned", "2024-01", 50, "c"),  # no numerator: not in the ratio
        ),
        catalogue,
    )
    key = {"metric": "co_proactive_share", "period": "2024-01"}
    alliance = one(frame, **key, level="alliance", entity=ALLIANCE)
    assert alliance["value"] == pytest.approx(8 / 40)  # not (0.5 + 0.1) / 2
    assert (alliance["numerator"], alliance["denominator"], alliance["coverage"]) == (8, 40, 2)
    assert one(frame, **key, level="organisation", entity="a")["value"] == 0.5
    assert not has(frame, **key, level="organisation", entity="c")
    assert one(frame, **key, level="alliance", entity=ALLIANCE, statistic="reporters")["value"] == 2


def test_ratio_reported_without_its_parts_stands_only_for_its_organisation(catalogue: Catalogue) -> None:
    frame = compute_indicators(
        obs(
            row("co_proactive_share", "2024-01", 0.9, "a"),
            row("co_items_actioned", "2024-01", 10, "b"),
            row("co_items_detected_proactively", "2024-01", 4, "b"),
        ),
        catalogue,
    )
    key = {"metric": "co_proactive_share", "period": "2024-01"}
    assert one(frame, **key, level="organisation", entity="a")["value"] == 0.9
    assert math.isnan(one(frame, **key, level="organisation", entity="a")["numerator"])
    assert one(frame, **key, level="alliance", entity=ALLIANCE)["value"] == pytest.approx(0.4)


def test_weighted_mean_and_its_yearly_recomputation(catalogue: Catalogue) -> None:
    rows = []
    for org, mean, weight in (("ch1", 10.0, 100), ("ch2", 40.0, 300)):
        for q in range(1, 5):
            rows.append(row("ch_mean_hours_to_takedown", f"2024-Q{q}", mean * q, org))
            for month in range(3 * q - 2, 3 * q + 1):
                rows.append(row("ch_hosted_notices_sent", f"2024-{month:02d}", weight / 3, org))
    frame = compute_indicators(obs(*rows), catalogue)
    key = {"metric": "ch_mean_hours_to_takedown", "level": "alliance", "entity": ALLIANCE}
    q1 = one(frame, **key, period="2024-Q1")
    assert q1["value"] == pytest.approx((10 * 100 + 40 * 300) / 400)
    assert (q1["numerator"], q1["denominator"]) == pytest.approx((13000, 400))
    # the year: each organisation's quarterly means weighted by its quarterly weights
    ch1_year = one(
        frame, metric="ch_mean_hours_to_takedown", period="2024", level="organisation", entity="ch1"
    )
    assert ch1_year["value"] == pytest.approx(sum(10 * q * 100 for q in range(1, 5)) / 400)
    year = one(frame, **key, period="2024")
    assert year["value"] == pytest.approx(sum((10 * q * 100 + 40 * q * 300) for q in range(1, 5)) / 1600)


def test_share_of_reporters_for_capabilities(catalogue: Catalogue) -> None:
    frame = compute_indicators(
        obs(
            row("co_capability_hash_matching", "2024-Q4", 1, "a"),
            row("co_capability_hash_matching", "2024-Q4", 0, "b"),
            row("co_capability_hash_matching", "2024-Q4", 1, "c"),
            row(
                "co_capability_hash_matching", "2024-Q4", None, "h"
            ),  # not available: not a reporter of a value
        ).assign(stakeholder_type="company"),
        catalogue,
    )
    alliance = one(
        frame, metric="co_capability_hash_matching", period="2024-Q4", level="alliance", entity=ALLIANCE
    )
    assert alliance["value"] == pytest.approx(2 / 3)
    assert (alliance["numerator"], alliance["denominator"], alliance["coverage"]) == (2, 3, 3)
    fr = one(frame, metric="co_capability_hash_matching", period="2024-Q4", level="country", entity="FR")
    assert (fr["numerator"], fr["denominator"]) == (2, 2)


def test_latest_takes_the_largest_report_never_the_sum(catalogue: Catalogue) -> None:
    frame = compute_indicators(
        obs(
            row("le_countries_connected_icse", "2024-Q4", 64, "ig1"),
            row("le_countries_connected_icse", "2024-Q4", 60, "ig2"),
        ),
        catalogue,
    )
    alliance = one(
        frame, metric="le_countries_connected_icse", period="2024-Q4", level="alliance", entity=ALLIANCE
    )
    assert alliance["value"] == 64 and alliance["coverage"] == 2
    # no country recorded: no country-level figure
    assert not (frame["level"] == "country").any()


# ---------------------------------------------------------------------------------------------
# Period roll-ups


def test_sum_rollups_need_every_sub_period(catalogue: Catalogue) -> None:
    rows = [row("co_items_actioned", f"2024-{m:02d}", m, "a") for m in range(1, 13)]
    rows += [row("co_items_actioned", f"2024-{m:02d}", 1, "b") for m in range(1, 13) if m != 5]
    frame = compute_indicators(obs(*rows), catalogue)
    org = {"metric": "co_items_actioned", "level": "organisation"}
    assert one(frame, **org, entity="a", period="2024-Q1")["value"] == 6
    assert one(frame, **org, entity="a", period="2024-H2")["value"] == sum(range(7, 13))
    assert one(frame, **org, entity="a", period="2024")["value"] == 78
    assert one(frame, **org, entity="b", period="2024-Q1")["value"] == 3
    assert not has(frame, **org, entity="b", period="2024-Q2")  # May is missing
    assert not has(frame, **org, entity="b", period="2024-H1")
    assert not has(frame, **org, entity="b", period="2024")
    # an aggregate of a kind combines the organisations' figures of that kind only
    year = one(frame, metric="co_items_actioned", level="alliance", entity=ALLIANCE, period="2024")
    assert year["value"] == 78 and year["coverage"] == 1
    assert (
        one(frame, metric="co_items_actioned", level="alliance", entity=ALLIANCE, period="2024-Q1")["value"]
        == 9
    )


def test_a_year_rolls_up_from_quarters_or_halves_and_a_native_figure_wins(catalogue: Catalogue) -> None:
    rows = [row("co_items_actioned", f"2024-Q{q}", 10, "a") for q in range(1, 5)]
    rows += [row("co_items_actioned", "2024-H1", 7, "b"), row("co_items_actioned", "2024-Q3", 1, "b")]
    rows += [row("co_items_actioned", "2024-Q4", 2, "b")]
    rows += [row("co_items_actioned", f"2024-{m:02d}", 1, "c") for m in range(1, 13)]
    rows += [row("co_items_actioned", "2024", 15, "c")]  # restated year: the native figure counts
    frame = compute_indicators(obs(*rows), catalogue)
    org = {"metric": "co_items_actioned", "level": "organisation", "period": "2024"}
    assert one(frame, **org, entity="a")["value"] == 40
    assert one(frame, **org, entity="b")["value"] == 10
    assert one(frame, **org, entity="c")["value"] == 15
    assert one(frame, **{**org, "period": "2024-H1"}, entity="c")["value"] == 6


def test_last_rollup_takes_the_last_sub_period(catalogue: Catalogue) -> None:
    frame = compute_indicators(
        obs(
            *(row("co_capability_hash_matching", f"2024-Q{q}", q % 2, "a") for q in range(1, 5)),
            *(row("co_capability_hash_matching", f"2024-Q{q}", 1, "b") for q in range(1, 4)),
        ),
        catalogue,
    )
    key = {"metric": "co_capability_hash_matching", "level": "organisation"}
    assert one(frame, **key, entity="a", period="2024")["value"] == 0  # Q4 = 0
    assert one(frame, **key, entity="a", period="2024-H1")["value"] == 0  # Q2 = 0
    assert not has(frame, **key, entity="b", period="2024")  # no Q4: no year
    assert one(frame, **key, entity="b", period="2024-H1")["value"] == 1
    assert not (frame["period_kind"] == "month").any()


def test_ratio_rollup_recomputes_from_rolled_up_parts(catalogue: Catalogue) -> None:
    rows = []
    for m, (num, den) in enumerate(((1, 10), (9, 10), (0, 80)), start=1):
        rows += [
            row("co_items_detected_proactively", f"2024-{m:02d}", num),
            row("co_items_actioned", f"2024-{m:02d}", den),
        ]
    frame = compute_indicators(obs(*rows), catalogue)
    q1 = one(frame, metric="co_proactive_share", period="2024-Q1", level="organisation", entity="a")
    assert q1["value"] == pytest.approx(10 / 100)  # not the mean of 0.1, 0.9 and 0


def test_refused_rollups(catalogue: Catalogue) -> None:
    no_rollup = with_metric(catalogue, "co_items_actioned", period_rollup="none")
    rows = [row("co_items_actioned", f"2024-{m:02d}", 1) for m in range(1, 13)]
    frame = compute_indicators(obs(*rows), no_rollup)
    assert set(frame["period_kind"]) == {"month"}
    # only kinds in the metric's frequencies: a year through quarters that are never published
    month_year = with_metric(catalogue, "co_items_actioned", frequencies=("month", "year"))
    frame = compute_indicators(obs(*rows), month_year)
    assert set(frame["period_kind"]) == {"month", "year"}
    assert (
        one(frame, metric="co_items_actioned", period="2024", level="alliance", entity=ALLIANCE)["value"]
        == 12
    )


def test_year_on_year_change(catalogue: Catalogue) -> None:
    frame = compute_indicators(
        obs(
            row("co_items_actioned", "2023-03", 40),
            row("co_items_actioned", "2024-03", 50),
            row("co_items_actioned", "2023-04", 0),
            row("co_items_actioned", "2024-04", 5),
            row("co_items_actioned", "2024-05", 5),
        ),
        catalogue,
    )
    key = {"metric": "co_items_actioned", "level": "alliance", "entity": ALLIANCE}
    assert one(frame, **key, period="2024-03")["yoy_change"] == pytest.approx(0.25)
    assert math.isnan(one(frame, **key, period="2024-04")["yoy_change"])  # a year earlier was 0
    assert math.isnan(one(frame, **key, period="2024-05")["yoy_change"])  # no figure a year earlier
    assert math.isnan(one(frame, **key, period="2023-03")["yoy_change"])


def test_provisional_and_newest_submission(catalogue: Catalogue) -> None:
    frame = compute_indicators(
        obs(
            row("co_items_actioned", "2024-01", 5, "a", provisional=True),
            row("co_items_actioned", "2024-01", 7, "b", submission_id=3),
            row("co_items_actioned", "2024-01", 9, "b", submission_id=4),  # an overlapping newer scope
        ),
        catalogue,
    )
    alliance = one(frame, metric="co_items_actioned", period="2024-01", level="alliance", entity=ALLIANCE)
    assert alliance["value"] == 14 and bool(alliance["provisional"])
    assert not bool(
        one(frame, metric="co_items_actioned", period="2024-01", level="country", entity="DE")["provisional"]
    )


# ---------------------------------------------------------------------------------------------
# Distributions


def dist(
    org: str, period: str, buckets: dict[str, int], metric: str = "co_takedown_time"
) -> list[dict[str, Any]]:
    return [row(metric, period, n, org, time_bucket=code) for code, n in buckets.items()]


def test_distribution_buckets_shares_and_percentiles_by_hand(catalogue: Catalogue) -> None:
    frame = compute_indicators(
        obs(
            *dist("a", "2024-01", {"0-1d": 6, "1d-7d": 3, "7d+": 1}),
            *dist("b", "2024-01", {"0-1d": 4, "1d-7d": 6, "7d+": 0}),
        ),
        catalogue,
        share_within_hours=(24, 48),
        percentiles=(0.5, 0.9),
    )
    key = {"metric": "co_takedown_time", "period": "2024-01", "level": "alliance", "entity": ALLIANCE}
    assert one(frame, **key, statistic="events", time_bucket="0-1d")["value"] == 10
    total = one(frame, **key, statistic="events")
    assert total["value"] == 20 and total["largest_share"] == 0.5 and total["coverage"] == 2
    within_day = one(frame, **key, statistic="share_within", param=24)
    assert within_day["value"] == 0.5 and (within_day["numerator"], within_day["denominator"]) == (10, 20)
    assert within_day["lower"] == within_day["upper"] == 0.5
    # 48 h is not an edge of the merged buckets: bounds, and a linear interpolation inside 1d-7d
    two_days = one(frame, **key, statistic="share_within", param=48)
    assert (two_days["lower"], two_days["upper"]) == (0.5, 0.95)
    assert two_days["value"] == pytest.approx((10 + 9 * (2880 - 1440) / (10080 - 1440)) / 20)
    assert math.isnan(two_days["numerator"])
    # median: rank 10 of 20 is the last event of 0-1d: interpolated to its upper edge
    median = one(frame, **key, statistic="percentile", param=0.5)
    assert (median["value"], median["lower"], median["upper"]) == (24, 0, 24)
    p90 = one(frame, **key, statistic="percentile", param=0.9)
    assert p90["value"] == pytest.approx((1440 + (18 - 10) / 9 * (10080 - 1440)) / 60)
    assert (p90["lower"], p90["upper"], p90["event_count"]) == (24, 168, 20)


def test_censored_cases_stay_in_the_denominator(catalogue: Catalogue) -> None:
    frame = compute_indicators(
        obs(*dist("a", "2024-01", {"0-1d": 2, "1d-7d": 1, "7d+": 1, "not_actioned": 6})),
        catalogue,
        share_within_hours=(24,),
    )
    key = {"metric": "co_takedown_time", "period": "2024-01", "level": "organisation", "entity": "a"}
    assert one(frame, **key, statistic="events")["value"] == 10
    assert one(frame, **key, statistic="events", time_bucket="not_actioned")["value"] == 6
    assert one(frame, **key, statistic="share_within", param=24)["value"] == 0.2
    median = one(frame, **key, statistic="percentile", param=0.5)
    assert math.isnan(median["value"]) and median["lower"] == 168 and median["upper"] == math.inf


def test_percentile_in_the_open_last_bucket_has_no_upper_bound(catalogue: Catalogue) -> None:
    frame = compute_indicators(obs(*dist("a", "2024-01", {"0-1d": 1, "1d-7d": 1, "7d+": 8})), catalogue)
    p90 = one(
        frame,
        metric="co_takedown_time",
        period="2024-01",
        level="organisation",
        entity="a",
        statistic="percentile",
        param=0.9,
    )
    assert math.isnan(p90["value"]) and (p90["lower"], p90["upper"]) == (168, math.inf)


def test_coarse_and_fine_schemes_merge_on_their_common_edges(catalogue: Catalogue) -> None:
    fine = {code: 1 for code in catalogue.buckets.codes}  # 20 timed buckets and 1 not_actioned
    frame = compute_indicators(
        obs(
            *dist("a", "2024-01", fine),
            *dist("b", "2024-01", {"0-1d": 5, "1d-7d": 2, "7d+": 1, "not_actioned": 1}),
        ),
        catalogue,
        share_within_hours=(1, 24),
    )
    key = {"metric": "co_takedown_time", "period": "2024-01", "statistic": "events"}
    alliance = frame[(frame["level"] == "alliance") & (frame["statistic"] == "events")]
    assert set(alliance["time_bucket"]) == {"0-1d", "1d-7d", "7d+", "not_actioned", TOTAL}
    assert one(frame, **key, level="alliance", entity=ALLIANCE, time_bucket="0-1d")["value"] == 10 + 5
    assert one(frame, **key, level="alliance", entity=ALLIANCE, time_bucket="1d-7d")["value"] == 5 + 2
    assert one(frame, **key, level="alliance", entity=ALLIANCE, time_bucket="7d+")["value"] == 5 + 1
    assert one(frame, **key, level="alliance", entity=ALLIANCE)["value"] == 21 + 9
    # a keeps its own fine buckets at organisation level
    assert one(frame, **key, level="organisation", entity="a", time_bucket="30m-1h")["value"] == 1
    hour = {"metric": "co_takedown_time", "period": "2024-01", "statistic": "share_within", "param": 1}
    assert one(frame, **hour, level="organisation", entity="a")["numerator"] == 5
    merged_hour = one(frame, **hour, level="alliance", entity=ALLIANCE)
    assert (
        math.isnan(merged_hour["numerator"]) and merged_hour["lower"] == 0 and merged_hour["upper"] == 15 / 30
    )
    day = one(frame, **{**hour, "param": 24}, level="alliance", entity=ALLIANCE)
    assert (day["numerator"], day["denominator"]) == (15, 30)


def test_distribution_rollup_merges_months_and_needs_all_of_them(catalogue: Catalogue) -> None:
    rows = dist("a", "2024-01", {"0-1d": 1, "1d-7d": 1, "7d+": 1})
    rows += dist("a", "2024-02", {code: 1 for code in catalogue.buckets.codes})
    rows += dist("a", "2024-03", {"0-1d": 2, "1d-7d": 0, "7d+": 0})
    rows += dist("b", "2024-01", {"0-1d": 1, "1d-7d": 1, "7d+": 1})
    frame = compute_indicators(obs(*rows), catalogue)
    key = {"metric": "co_takedown_time", "period": "2024-Q1", "statistic": "events"}
    assert one(frame, **key, level="organisation", entity="a", time_bucket="0-1d")["value"] == 1 + 10 + 2
    assert one(frame, **key, level="organisation", entity="a")["value"] == 3 + 21 + 2
    assert not has(frame, **key, level="organisation", entity="b")


# ---------------------------------------------------------------------------------------------
# Properties against independent computations

EDGES_MIN = None


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    times=st.lists(st.floats(min_value=0, max_value=300_000, allow_nan=False), min_size=1, max_size=80),
    censored=st.integers(min_value=0, max_value=20),
    q=st.sampled_from([0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 1.0]),
)
def test_percentile_bounds_contain_the_true_value(
    catalogue: Catalogue, times: list[float], censored: int, q: float
) -> None:
    scheme = catalogue.buckets
    counts: dict[str, int] = defaultdict(int)
    for minutes in times:
        counts[scheme.bucket_for(minutes).code] += 1
    counts["not_actioned"] += censored
    full = {code: counts.get(code, 0) for code in scheme.codes}
    frame = compute_indicators(
        obs(*dist("a", "2024-01", full)), catalogue, percentiles=(q,), share_within_hours=(24,)
    )
    got = one(frame, metric="co_takedown_time", level="organisation", statistic="percentile", param=q)
    ordered = sorted(times) + [math.inf] * censored
    true_minutes = ordered[math.ceil(q * len(ordered)) - 1]
    assert got["lower"] * 60 <= true_minutes <= got["upper"] * 60
    if not math.isnan(got["value"]):
        assert got["lower"] <= got["value"] <= got["upper"]
    else:
        assert got["upper"] == math.inf


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(times=st.lists(st.floats(min_value=0, max_value=200_000, allow_nan=False), min_size=1, max_size=60))
def test_share_within_is_exact_on_every_edge(catalogue: Catalogue, times: list[float]) -> None:
    scheme = catalogue.buckets
    counts = {code: 0 for code in scheme.codes}
    for minutes in times:
        counts[scheme.bucket_for(minutes).code] += 1
    hours = tuple(edge / 60 for edge in scheme.edges_minutes)
    frame = compute_indicators(obs(*dist("a", "2024-01", counts)), catalogue, share_within_hours=hours)
    for edge in scheme.edges_minutes:
        got = one(
            frame, metric="co_takedown_time", level="organisation", statistic="share_within", param=edge / 60
        )
        within = sum(1 for t in times if t < edge)
        assert got["numerator"] == within and got["denominator"] == len(times)
        assert got["value"] == pytest.approx(within / len(times)) and got["lower"] == got["upper"]


observation_rows = st.lists(
    st.tuples(
        st.sampled_from(["a", "b", "c", "h"]),
        st.sampled_from(["co_items_actioned", "co_items_detected_proactively"]),
        st.sampled_from(["2024-01", "2024-02", "2024-03", "2025-01"]),
        st.sampled_from([TOTAL, "hotline", "user_report"]),
        st.one_of(st.none(), st.integers(min_value=0, max_value=1000)),
    ),
    min_size=1,
    max_size=40,
    unique_by=lambda r: (r[0], r[1], r[2], r[3]),
)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=observation_rows)
def test_sums_and_ratios_match_brute_force_loops(
    catalogue: Catalogue, rows: list[tuple[str, str, str, str, int | None]]
) -> None:
    data = [
        row(metric, period, value, org, notice_source=source) for org, metric, period, source, value in rows
    ]
    for entry in data:  # a hotline reporting a company metric is fine for the engine
        entry["stakeholder_type"] = "company"
    frame = compute_indicators(obs(*data), catalogue)

    def entities(org: str) -> list[tuple[str, str]]:
        return [
            ("organisation", org),
            ("stakeholder_type", "company"),
            ("country", ORGS[org][1]),
            ("alliance", ALLIANCE),
        ]

    sums: dict[tuple[str, ...], list[float]] = defaultdict(list)
    for org, metric, period, source, value in rows:
        for level, entity in entities(org):
            sums[(metric, period, level, entity, source)].append(np.nan if value is None else value)
        # quarter roll-up by brute force: all three months of 2024-Q1 with a value
    for (metric, period, level, entity, source), values in sums.items():
        got = one(frame, metric=metric, period=period, level=level, entity=entity, notice_source=source)
        known = [v for v in values if not math.isnan(v)]
        assert got["coverage"] == len(known)
        assert (math.isnan(got["value"]) and not known) or got["value"] == sum(known)
    values = {(org, metric, period, source): value for org, metric, period, source, value in rows}
    quarter: dict[tuple[str, ...], list[float]] = defaultdict(list)
    for (org, metric, period, source), _ in values.items():
        months = [values.get((org, metric, f"2024-0{m}", source)) for m in (1, 2, 3)]
        if period == "2024-01" and all(v is not None for v in months):
            for level, entity in entities(org):
                quarter[(metric, level, entity, source)].append(sum(v for v in months if v is not None))
    quarter_rows = frame[
        (frame["period"] == "2024-Q1")
        & (frame["statistic"] == "value")
        & frame["metric"].isin(["co_items_actioned", "co_items_detected_proactively"])
    ]
    assert len(quarter_rows) == len(quarter)
    for (metric, level, entity, source), parts in quarter.items():
        assert one(frame, metric=metric, period="2024-Q1", level=level, entity=entity, notice_source=source)[
            "value"
        ] == sum(parts)
    # the ratio: sums over the organisations that reported both parts with a value
    for period in ("2024-01", "2024-02", "2024-03", "2025-01"):
        for org_level in ("alliance",):
            num = den = 0.0
            n = 0
            for org in ("a", "b", "c", "h"):
                p = values.get((org, "co_items_detected_proactively", period, TOTAL))
                d = values.get((org, "co_items_actioned", period, TOTAL))
                if p is not None and d is not None:
                    num, den, n = num + p, den + d, n + 1
            if n:
                got = one(frame, metric="co_proactive_share", period=period, level=org_level, entity=ALLIANCE)
                assert (got["numerator"], got["denominator"], got["coverage"]) == (num, den, n)
                assert (math.isnan(got["value"]) and den == 0) or got["value"] == pytest.approx(num / den)
            else:
                assert not has(
                    frame, metric="co_proactive_share", period=period, level=org_level, entity=ALLIANCE
                )


# ---------------------------------------------------------------------------------------------
# Bad inputs


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([row("co_nonsense", "2024-01", 1)], "unknown metric code(s) not in the catalogue: co_nonsense"),
        (
            [row("co_items_actioned", "2024-01", 1, period_kind="quarter")],
            "period 2024-01 is a month but its period_kind says 'quarter'",
        ),
        ([row("co_items_actioned", "2024-01", -3)], "metric 'co_items_actioned' has a negative value"),
        (
            [row("co_capability_hash_matching", "2024-01", 1)],
            "metric 'co_capability_hash_matching' is reported by quarter, half_year, year, not by month",
        ),
        ([row("co_capability_hash_matching", "2024-Q1", 0.5)], "is a capability: its values are 0 or 1"),
        ([row("co_proactive_share", "2024-01", 1.5)], "is a share"),
        ([row("co_takedown_time", "2024-01", 1)], "is a distribution: every row needs a time_bucket"),
        ([row("co_takedown_time", "2024-01", 1, time_bucket="3h-9h")], "time bucket '3h-9h' is not a bucket"),
        (
            [row("co_takedown_time", "2024-01", None, time_bucket="0-1d")],
            "a distribution bucket needs a count",
        ),
        ([row("co_items_actioned", "2024-01", 1, time_bucket="0-1d")], "is not a distribution"),
    ],
)
def test_bad_observations_are_refused_with_a_clear_error(
    catalogue: Catalogue, rows: list[dict[str, Any]], message: str
) -> None:
    with pytest.raises(IndicatorError) as error:
        compute_indicators(obs(*rows), catalogue)
    assert message in str(error.value)


def test_bad_parameters_and_missing_columns(catalogue: Catalogue) -> None:
    frame = obs(row("co_items_actioned", "2024-01", 1))
    with pytest.raises(IndicatorError, match="quantile in"):
        compute_indicators(frame, catalogue, percentiles=(1.5,))
    with pytest.raises(IndicatorError, match="hours must be positive"):
        compute_indicators(frame, catalogue, share_within_hours=(0,))
    with pytest.raises(IndicatorError, match="lack the column"):
        compute_indicators(frame.drop(columns=["org_country"]), catalogue)


# ---------------------------------------------------------------------------------------------
# A real database


def test_indicators_from_stored_submissions(session: Session, catalogue: Catalogue) -> None:
    today = datetime(2026, 3, 1, tzinfo=UTC)
    orgs = {}
    for code, country in (("acme-social", "FR"), ("bolt-video", "DE")):
        orgs[code] = add_organisation(
            session, OrganisationIn(code=code, name=code.title(), stakeholder_type="company", country=country)
        )
    session.commit()
    for code, actioned, buckets in (
        ("acme-social", 120, {"0-1d": 8, "1d-7d": 1, "7d+": 1, "not_actioned": 0}),
        ("bolt-video", 80, {c: 1 for c in catalogue.buckets.codes}),
    ):
        q1 = parse_period("2025-Q1")
        rows = [
            ObservationIn("co_items_actioned", q1, actioned),
            ObservationIn("co_items_detected_proactively", q1, actioned / 2),
        ]
        rows += [
            ObservationIn("co_takedown_time", q1, n, dims={"time_bucket": b}) for b, n in buckets.items()
        ]
        store_submission(
            session, catalogue, orgs[code], rows, channel="cli", scope="2025-Q1", actor="test", today=today
        )
    session.commit()
    observations = load_observations(session, select(col(Submission.id)))
    frame = compute_indicators(observations, catalogue)
    key = {"period": "2025-Q1", "level": "alliance", "entity": ALLIANCE}
    assert one(frame, metric="co_items_actioned", **key)["value"] == 200
    assert one(frame, metric="co_proactive_share", **key)["value"] == pytest.approx(0.5)
    assert one(frame, metric="co_takedown_time", statistic="events", **key)["value"] == 10 + 21
    assert (
        one(frame, metric="co_takedown_time", statistic="events", time_bucket="0-1d", **key)["value"]
        == 8 + 10
    )
    assert one(frame, metric="co_takedown_time", statistic="share_within", param=24, **key)[
        "value"
    ] == pytest.approx(18 / 31)
    assert (
        one(frame, metric="co_items_actioned", period="2025-Q1", level="country", entity="DE")["value"] == 80
    )


def test_synthetic_alliance_agrees_with_duckdb(catalogue: Catalogue) -> None:
    """The benchmark's own check on a small synthetic alliance: every sum, ratio of sums and
    merged distribution bucket DuckDB computes (months at every level, every native period at
    organisation level) is the engine's figure, coverage included."""
    from bench.indicators import check, duckdb_figures
    from bench.release_synthetic import synthetic_alliance

    observations, organisations = synthetic_alliance(seed=7, years=2, organisations=30, countries=6)
    assert set(organisations["stakeholder_type"]) == {
        "company", "hotline", "law_enforcement", "clearinghouse", "ngo", "government", "intergovernmental"
    }  # fmt: skip
    assert {"0-1d", "7d+", "not_actioned", "1m-5m"} <= set(observations["time_bucket"])
    frame = compute_indicators(observations, catalogue)
    assert check(frame, duckdb_figures(observations, catalogue), catalogue) > 1000
    people = frame[(frame["disclosure_class"] == "people") & (frame["statistic"] == "value")]
    assert (people["value"] < 10).any()  # small counts of people exist for disclosure control


def test_rows_come_in_key_order_whatever_the_input_order(catalogue: Catalogue) -> None:
    """The engine sorts on its codes (hub.indicators._key_order), and a release publishes the
    table in that order without sorting again: it must be exactly pandas' sort by
    KEY_COLUMNS (strings by code point: "2024" < "2024-01" < "2024-H1" < "2024-Q1"), and
    the same whatever order the observations come in."""
    from bench.release_synthetic import synthetic_alliance

    observations, _ = synthetic_alliance(seed=3, years=2, organisations=25, countries=5)
    # an organisation whose code is also a country's and a stakeholder type's: the entity
    # sorts by level first, then by name
    renamed = {observations["organisation"].iloc[0]: "FR", observations["organisation"].iloc[-1]: "company"}
    observations["organisation"] = observations["organisation"].replace(renamed)
    frame = compute_indicators(observations, catalogue)
    assert {"month", "quarter", "half_year", "year"} <= set(frame["period_kind"])
    assert frame["time_bucket"].nunique() > 5 and frame["param"].nunique() > 3
    assert {"FR", "company"} <= set(frame.loc[frame["level"] == "organisation", "entity"])
    ordered = frame.sort_values(list(KEY_COLUMNS), kind="stable").reset_index(drop=True)
    pd.testing.assert_frame_equal(frame, ordered)
    shuffled = observations.sample(frac=1.0, random_state=5).reset_index(drop=True)
    pd.testing.assert_frame_equal(compute_indicators(shuffled, catalogue), frame)


def _label(minutes: int) -> str:
    if minutes == 0:
        return "0"
    for size, suffix in ((1440, "d"), (60, "h"), (1, "m")):
        if minutes % size == 0:
            return f"{minutes // size}{suffix}"
    raise AssertionError


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_merging_any_schemes_matches_brute_force(catalogue: Catalogue, data: st.DataObject) -> None:
    """Each organisation uses its own subset of the ttd-v1 edges; the alliance's buckets are the
    common edges and each count lands in the one merged bucket holding its organisation's bucket."""
    all_edges = list(catalogue.buckets.edges_minutes)
    schemes = {}
    rows = []
    for org in data.draw(
        st.lists(st.sampled_from(["a", "b", "c", "h"]), min_size=1, max_size=4, unique=True)
    ):
        edges = sorted(data.draw(st.sets(st.sampled_from(all_edges), max_size=6)))
        bounds = [0, *edges]
        counts = data.draw(st.lists(st.integers(0, 50), min_size=len(bounds) + 1, max_size=len(bounds) + 1))
        buckets = {}
        for i, low in enumerate(bounds):
            code = f"{_label(low)}-{_label(bounds[i + 1])}" if i + 1 < len(bounds) else f"{_label(low)}+"
            buckets[code] = counts[i]
        buckets["not_actioned"] = counts[-1]
        schemes[org] = (bounds, counts)
        rows += dist(org, "2024-01", buckets)
    frame = compute_indicators(obs(*rows), catalogue)
    common = sorted(set.intersection(*(set(bounds) for bounds, _ in schemes.values())))
    expected: dict[str, int] = defaultdict(int)
    for bounds, counts in schemes.values():
        for i, low in enumerate(bounds):
            start = max(edge for edge in common if edge <= low)
            after = [edge for edge in common if edge > start]
            code = f"{_label(start)}-{_label(after[0])}" if after else f"{_label(start)}+"
            expected[code] += counts[i]
        expected["not_actioned"] += counts[-1]
    got = frame[
        (frame["level"] == "alliance") & (frame["statistic"] == "events") & (frame["time_bucket"] != TOTAL)
    ]
    assert dict(zip(got["time_bucket"], got["value"], strict=True)) == dict(expected)
    total = one(frame, metric="co_takedown_time", level="alliance", entity=ALLIANCE, statistic="events")
    assert total["value"] == sum(expected.values()) and total["coverage"] == len(schemes)
