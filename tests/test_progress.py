"""Target progress: the statuses of docs/targets.md recomputed from indicator tables built by hand.

The indicator engine is written in parallel, so every table here is built in the contract's
shape (hub.figures.conform) from figures chosen so the expected status can be worked out on
paper; the property tests compare with an independent computation in value space (the value
the latest figure must reach for each band) instead of the ratio of rates the code uses.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from functools import cache
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from hub import vocab
from hub.catalogue import load_catalogue
from hub.figures import ALLIANCE, NO_PARAM, conform
from hub.progress import (
    ACHIEVED,
    DETERIORATION,
    INSUFFICIENT,
    LIMITED,
    METHOD,
    MODERATE,
    NOT_ACHIEVED,
    ON_TRACK,
    PROGRESS_COLUMNS,
    PROGRESS_TYPES,
    STATUS_LABELS,
    STATUSES,
    ProgressError,
    SeriesKey,
    assess_target,
    assess_targets,
    cagr,
    progress_history,
    select_series,
    series_key,
    status_for_ratio,
)
from hub.settings import REPO_ROOT
from hub.targets import Baseline, Goal, GrowthParameters, Scope, TargetSpec, load_targets

DATA = REPO_ROOT / "data"
DOC = REPO_ROOT / "docs" / "targets.md"
LABEL_TO_STATUS = {label: code for code, label in STATUS_LABELS.items()}


@cache
def _targets() -> dict[str, TargetSpec]:
    return {spec.code: spec for spec in load_targets(DATA, load_catalogue(DATA))}


def target(code: str, **changes: Any) -> TargetSpec:
    """A shipped target, optionally with fields replaced (validated models, copied)."""
    return _targets()[code].model_copy(update=changes)


def rows_for(spec: TargetSpec, values: Mapping[str, float], **extra: Any) -> list[dict[str, Any]]:
    """Indicator rows of ``spec``'s series, one per period code (kind read from the code)."""
    key = series_key(spec)
    rows = []
    for period, value in values.items():
        kind = (
            "quarter"
            if "-Q" in period
            else "half_year"
            if "-H" in period
            else "month"
            if "-" in period
            else "year"
        )
        rows.append(
            {
                "metric": key.metric,
                "period": period,
                "period_kind": kind,
                "level": key.level,
                "entity": key.entity,
                "country": key.country,
                "statistic": key.statistic,
                "param": key.param,
                "value": value,
                **extra,
            }
        )
    return rows


def table(*row_lists: list[dict[str, Any]]) -> pd.DataFrame:
    """The rows in the contract's shape; a dimension or param a row leaves out is TOTAL or NO_PARAM."""
    frame = pd.DataFrame([row for rows in row_lists for row in rows])
    for name in (*vocab.DIMENSIONS, "param"):
        if name in frame.columns:
            frame[name] = frame[name].fillna(NO_PARAM if name == "param" else vocab.TOTAL)
    return conform(frame)


_TEMPLATES: dict[tuple[SeriesKey, tuple[str, ...]], pd.DataFrame] = {}


def assess(spec: TargetSpec, values: Mapping[str, float], **kwargs: Any) -> Any:
    """``spec`` assessed on a table holding only its series (the table's shape built once per
    series and periods: the property tests call this thousands of times)."""
    periods = tuple(values)
    shape_key = (series_key(spec), periods)
    if shape_key not in _TEMPLATES:
        _TEMPLATES[shape_key] = table(rows_for(spec, dict.fromkeys(periods, 0.0)))
    frame = _TEMPLATES[shape_key].copy()
    frame["value"] = pd.array([float(values[period]) for period in periods], dtype="float64")
    return assess_target(spec, frame, **kwargs)


# --- docs/targets.md worked examples -----------------------------------------------------


def _doc_examples() -> list[dict[str, str]]:
    text = DOC.read_text(encoding="utf-8")
    block = text.split("<!-- progress-examples: start -->")[1].split("<!-- progress-examples: end -->")[0]
    lines = [line.strip() for line in block.strip().splitlines()]
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    examples = []
    for line in lines[2:]:
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        examples.append(dict(zip(header, cells, strict=True)))
    return examples


DOC_EXAMPLES = _doc_examples()


def test_the_doc_has_worked_examples_of_every_kind_and_status() -> None:
    codes = {example["target"].strip("`") for example in DOC_EXAMPLES}
    assert {_targets()[code].kind for code in codes} == set(vocab.TARGET_KINDS)
    statuses = {LABEL_TO_STATUS[example["status"]] for example in DOC_EXAMPLES}
    assert statuses == set(STATUSES)


@pytest.mark.parametrize("example", DOC_EXAMPLES, ids=[example["#"] for example in DOC_EXAMPLES])
def test_every_worked_example_of_the_doc_is_what_the_code_computes(example: dict[str, str]) -> None:
    spec = target(example["target"].strip("`"))
    values = {
        period.strip(): float(value)
        for period, value in (item.split(":") for item in example["series"].split(";"))
    }
    result = assess(spec, values)
    assert result.status == LABEL_TO_STATUS[example["status"]], result.explanation
    for column, field, digits in (
        ("required CAGR", "required_cagr", 4),
        ("observed CAGR", "observed_cagr", 4),
        ("ratio", "ratio", 2),
    ):
        expected = example[column]
        actual = getattr(result, field)
        if expected:
            assert f"{actual:.{digits}f}" == expected, (column, actual)
        else:
            assert math.isnan(actual), (column, actual)


def test_the_doc_prose_quotes_the_table() -> None:
    """Each prose example states the ratio and the status of its row in the table."""
    text = DOC.read_text(encoding="utf-8").split("<!-- progress-examples: end -->")[1].split("## Adding")[0]
    paragraphs = re.split(r"\n(?=\*\*\d+\. )", text)
    seen = 0
    for paragraph in paragraphs:
        match = re.match(r"\*\*(\d+)\. ", paragraph)
        if not match:
            continue
        row = next(example for example in DOC_EXAMPLES if example["#"] == match.group(1))
        assert f"**{row['status']}**" in paragraph, row["#"]
        if row["ratio"]:
            assert f"**{row['ratio'].replace('-', '−')}**" in paragraph, row["#"]
        seen += 1
    assert seen >= 5


def test_example_1_by_hand() -> None:
    """ICSE: 27,000 -> 34,000 in 3 years against 10% a year, every number worked on paper."""
    result = assess(target("ga_icse_victims_growth"), {"2021": 27000, "2022": 29000, "2024": 34000})
    assert result.target_value == pytest.approx(27000 * 1.1**9)
    assert result.observed_cagr == pytest.approx((34000 / 27000) ** (1 / 3) - 1)
    assert result.ratio == pytest.approx(((34000 / 27000) ** (1 / 3) - 1) / 0.1)
    assert (result.years_elapsed, result.years_to_target) == (3, 9)
    assert (result.points_used, result.points_available) == (2, 3)
    assert (result.baseline_period, result.latest_period, result.latest_value) == ("2021", "2024", 34000)
    assert result.method == METHOD
    assert "+7.99% a year" in result.explanation and "ratio 0.80" in result.explanation


# --- bands -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ratio", "status"),
    [
        (0.95, ON_TRACK),
        (np.nextafter(0.95, 0), MODERATE),
        (3.0, ON_TRACK),
        (0.6, MODERATE),
        (np.nextafter(0.6, 0), LIMITED),
        (5e-324, LIMITED),
        (0.0, DETERIORATION),
        (-0.0, DETERIORATION),
        (-2.0, DETERIORATION),
    ],
)
def test_band_boundaries_are_exactly_those_of_the_method(ratio: float, status: str) -> None:
    assert status_for_ratio(float(ratio)) == status


def test_a_nan_ratio_has_no_band() -> None:
    with pytest.raises(ProgressError, match="NaN"):
        status_for_ratio(math.nan)


@pytest.mark.parametrize(
    ("band", "above", "below"),
    [(0.95, ON_TRACK, MODERATE), (0.6, MODERATE, LIMITED)],
)
def test_band_boundaries_through_the_whole_assessment(band: float, above: str, below: str) -> None:
    """The latest value just above and below the one that makes the ratio ``band``."""
    spec = target("ga_icse_victims_growth")
    at_band = 1000 * (1 + band * 0.10) ** 3  # observed CAGR = band x 10%
    assert assess(spec, {"2021": 1000, "2024": at_band * (1 + 1e-9)}).status == above
    assert assess(spec, {"2021": 1000, "2024": at_band * (1 - 1e-9)}).status == below


def test_a_falling_growth_target() -> None:
    """A growth target whose rate is negative (lower is better): d turns the ratio round."""
    spec = target(
        "ga_items_scanned_growth",
        direction="lower_is_better",
        parameters=GrowthParameters(annual_rate=-0.10),
    )
    result = assess(spec, {"2021": 1000.0, "2024": 800.0})
    assert result.target_value == pytest.approx(1000 * 0.9**9)
    assert result.observed_cagr == pytest.approx(0.8 ** (1 / 3) - 1)
    assert result.ratio == pytest.approx((1 - 0.8 ** (1 / 3)) / 0.10)  # 0.72
    assert result.status == MODERATE
    assert assess(spec, {"2021": 1000.0, "2024": 380.0}).status == ACHIEVED
    assert assess(spec, {"2021": 1000.0, "2024": 1100.0}).status == DETERIORATION


def test_no_change_is_deterioration_and_any_rise_is_limited_progress() -> None:
    spec = target("ga_icse_victims_growth")
    unchanged = assess(spec, {"2021": 1000, "2024": 1000})
    assert (unchanged.status, unchanged.ratio) == (DETERIORATION, 0.0)
    assert assess(spec, {"2021": 1000, "2024": 1000.001}).status == LIMITED


# --- series selection per kind and scope -------------------------------------------------

EXPECTED_KEYS = {
    "ga_icse_victims_growth": SeriesKey(
        "le_victims_identified_icse_cumulative", "alliance", ALLIANCE, "value"
    ),
    "ga_hotline_removal_within_72h": SeriesKey(
        "ht_notice_to_removal_time", "alliance", ALLIANCE, "share_within", 72.0
    ),
    "iwf_uk_removal_within_60_minutes": SeriesKey(
        "ht_notice_to_removal_time", "alliance", ALLIANCE, "share_within", 1.0, "GB"
    ),
    "ga_company_takedown_p90_24h": SeriesKey(
        "co_takedown_time", "stakeholder_type", "company", "percentile", 0.9
    ),
    "dsa_company_median_hours": SeriesKey(
        "co_takedown_time", "stakeholder_type", "company", "percentile", 0.5
    ),
    "ncmec_mean_hours_to_takedown": SeriesKey(
        "ch_mean_hours_to_takedown", "stakeholder_type", "clearinghouse", "value"
    ),
    "ga_company_hash_matching_adoption": SeriesKey(
        "co_capability_hash_matching", "stakeholder_type", "company", "value"
    ),
    "ga_companies_reporting": SeriesKey("co_items_actioned", "stakeholder_type", "company", "reporters"),
    "ga_icse_countries_connected": SeriesKey("le_countries_connected_icse", "alliance", ALLIANCE, "value"),
}


@pytest.mark.parametrize("code", sorted(EXPECTED_KEYS))
def test_each_kind_and_scope_reads_its_row(code: str) -> None:
    assert series_key(target(code)) == EXPECTED_KEYS[code]


def test_a_country_scope_on_organisations_reads_the_country_level() -> None:
    spec = target("ga_items_scanned_growth", scope=Scope(type="country", value="DE"))
    assert series_key(spec) == SeriesKey("co_items_scanned", "country", "DE", "value")
    explicit = target(
        "ga_items_scanned_growth", scope=Scope(type="country", value="DE", basis="organisation_country")
    )
    assert series_key(explicit) == series_key(spec)


def _decoys(spec: TargetSpec) -> list[dict[str, Any]]:
    """Rows of the same metric that are not the target's series: each would give another status."""
    key = series_key(spec)
    base = {"metric": key.metric, "period_kind": "year", "statistic": key.statistic, "param": key.param}
    decoys = []
    for period, value in (("2021", 1.0), ("2024", 1e6)):
        common = {**base, "period": period, "value": value}
        decoys += [
            {**common, "level": "organisation", "entity": "org_a", "country": key.country},
            {**common, "level": "country", "entity": "FR", "country": vocab.TOTAL},
            {**common, "level": key.level, "entity": key.entity, "country": "FR"},
            {**common, "level": key.level, "entity": key.entity, "country": key.country, "category": "A"},
            {**common, "level": key.level, "entity": key.entity, "country": key.country, "param": 24.0},
            {
                **common,
                "level": key.level,
                "entity": key.entity,
                "country": key.country,
                "statistic": "events",
            },
            {
                **common,
                "level": key.level,
                "entity": key.entity,
                "country": key.country,
                "period": f"{period}-Q4",
            }
            | {"period_kind": "quarter"},
        ]
    return decoys


def test_every_shipped_target_is_assessed_from_its_own_series_among_decoys() -> None:
    """One table holding every target's series and rows that must not be read."""
    specs = list(_targets().values())
    assert {spec.kind for spec in specs} == set(vocab.TARGET_KINDS)
    assert {(spec.scope.type, spec.scope.basis) for spec in specs} >= {
        ("alliance", None),
        ("stakeholder_type", None),
        ("country", "country_dimension"),
    }
    pieces = []
    expected: dict[str, str] = {}
    for spec in specs:
        good = spec.direction == "higher_is_better"
        if spec.baseline.rule == "published":
            assert spec.baseline.value is not None
            base = spec.baseline.value
        else:
            base = 0.4 if spec.kind == "adoption" else 30.0 if spec.kind != "time_threshold" else 200.0
        latest = base * (1.001 if good else 0.999)  # a little better: limited progress
        values = {spec.baseline.period: base, "2024": latest}
        if spec.baseline.rule == "published":
            values = {"2024": latest}
        pieces.append(rows_for(spec, values))
        expected[spec.code] = LIMITED
    frame = table(*pieces, *(_decoys(spec) for spec in specs))
    result = assess_targets(specs, frame)
    assert list(result["code"]) == [spec.code for spec in specs]
    assert dict(zip(result["code"], result["status"], strict=True)) == expected
    assert set(result["latest_period"]) == {"2024"}


def test_the_result_frame_has_the_columns_a_release_stores() -> None:
    specs = list(_targets().values())
    result = assess_targets(specs, table(rows_for(target("ga_icse_victims_growth"), {"2021": 1.0})))
    assert tuple(result.columns) == PROGRESS_COLUMNS
    assert {name: str(kind) for name, kind in result.dtypes.items()} == PROGRESS_TYPES
    assert len(result) == len(specs) and set(result["status"]) == {INSUFFICIENT}
    assert result["as_of_year"].isna().all()


def test_an_empty_list_of_targets_gives_an_empty_frame() -> None:
    result = assess_targets([], table(rows_for(target("ga_icse_victims_growth"), {"2021": 1.0})))
    assert len(result) == 0 and tuple(result.columns) == PROGRESS_COLUMNS


# --- edge cases ----------------------------------------------------------------------------


def test_baseline_zero_higher_is_better_is_insufficient_data_with_the_reason() -> None:
    result = assess(target("grooming_detection_adoption"), {"2021": 0.0, "2024": 0.3})
    assert result.status == INSUFFICIENT
    assert "no growth rate can be computed from zero" in result.explanation
    assert result.points_used == 2 and math.isnan(result.ratio)


def test_baseline_zero_still_achieved_when_the_target_is_met() -> None:
    assert assess(target("grooming_detection_adoption"), {"2021": 0.0, "2024": 0.5}).status == ACHIEVED


def test_baseline_zero_at_the_target_year_is_not_achieved() -> None:
    missed = assess(target("grooming_detection_adoption"), {"2021": 0.0, "2030": 0.3})
    assert missed.status == NOT_ACHIEVED and "baseline was 0" in missed.explanation
    rose = assess(target("dsa_company_median_hours"), {"2021": 0.0, "2027": 3.0})
    assert rose.status == NOT_ACHIEVED


def test_baseline_zero_lower_is_better() -> None:
    spec = target("dsa_company_median_hours")  # at most 2 hours
    assert assess(spec, {"2021": 0.0, "2024": 1.5}).status == ACHIEVED
    rose = assess(spec, {"2021": 0.0, "2024": 3.0})
    assert rose.status == DETERIORATION and "baseline was 0" in rose.explanation


def test_latest_zero() -> None:
    collapse = assess(target("ga_items_scanned_growth"), {"2021": 500.0, "2023": 0.0})
    assert collapse.status == DETERIORATION
    assert collapse.observed_cagr == -1.0 and collapse.ratio == pytest.approx(-10.0)
    assert assess(target("dsa_company_median_hours"), {"2021": 5.0, "2024": 0.0}).status == ACHIEVED


def test_target_already_met_at_an_observed_baseline() -> None:
    spec = target("ga_company_takedown_p90_24h")  # at most 24 hours by 2030
    assert assess(spec, {"2021": 20.0, "2023": 22.0}).status == ACHIEVED
    slipped = assess(spec, {"2021": 20.0, "2023": 30.0})
    # required rate points the wrong way ((24/20)^(1/9) - 1 > 0); d keeps the ratio negative
    assert slipped.required_cagr == pytest.approx((24 / 20) ** (1 / 9) - 1)
    assert slipped.ratio == pytest.approx(-((30 / 20) ** 0.5 - 1) / ((24 / 20) ** (1 / 9) - 1))
    assert slipped.status == DETERIORATION


def test_baseline_exactly_on_the_target_then_missed() -> None:
    spec = target("ga_company_takedown_p90_24h")
    result = assess(spec, {"2021": 24.0, "2023": 25.0})
    assert result.status == DETERIORATION and math.isnan(result.ratio)
    assert "equalled the target" in result.explanation
    assert assess(spec, {"2021": 24.0, "2030": 25.0}).status == NOT_ACHIEVED


def test_figures_after_the_target_year_are_not_used() -> None:
    spec = target("iwf_uk_removal_within_60_minutes")  # 0.38 in 2015, 0.60 by 2027
    missed = assess(spec, {"2026": 0.5, "2027": 0.55, "2028": 0.9})
    assert (missed.status, missed.latest_period) == (NOT_ACHIEVED, "2027")
    assert "(2028) are not used" in missed.explanation
    made = assess(spec, {"2027": 0.61, "2029": 0.1})
    assert (made.status, made.latest_period) == (ACHIEVED, "2027")
    as_of_2027 = assess(spec, {"2026": 0.5, "2027": 0.55, "2028": 0.9}, as_of_year=2027)
    assert as_of_2027.status == NOT_ACHIEVED and "not used" not in as_of_2027.explanation
    # no 2027 figure: the last one before is judged by the bands, not as the deadline
    early = assess(spec, {"2026": 0.55, "2030": 0.9})
    assert (early.latest_period, early.status) == ("2026", MODERATE)


def test_nan_and_infinite_values_are_missing() -> None:
    spec = target("ga_icse_countries_connected")
    result = assess(spec, {"2021": 60.0, "2022": 70.0, "2023": math.nan, "2024": math.inf})
    assert (result.latest_period, result.points_available) == ("2022", 2)
    baseline_missing = assess(spec, {"2021": math.nan, "2022": 70.0})
    assert baseline_missing.status == INSUFFICIENT and "No baseline" in baseline_missing.explanation


def test_suppressed_cells_are_missing_whatever_their_value() -> None:
    spec = target("ga_icse_countries_connected")
    rows = rows_for(spec, {"2021": 60.0, "2023": 66.0}, suppressed=False)
    rows += rows_for(spec, {"2024": 95.0}, suppressed=True)
    result = assess_target(spec, table(rows).assign(suppressed=[row["suppressed"] for row in rows]))
    assert (result.latest_period, result.latest_value, result.points_available) == ("2023", 66.0, 2)
    # (66/60)^(1/2) - 1 = 0.0488 against (80/60)^(1/9) - 1 = 0.0325: on track, where the
    # suppressed 95 would have read achieved
    assert result.status == ON_TRACK


def test_only_the_baseline_is_insufficient_data() -> None:
    result = assess(target("ga_icse_countries_connected"), {"2021": 60.0, "2020": 50.0})
    assert result.status == INSUFFICIENT and result.points_used == 1
    assert "no year figure after it" in result.explanation


def test_only_sub_annual_figures_are_insufficient_data_and_the_reason_says_so() -> None:
    spec = target("ga_icse_countries_connected")
    result = assess(spec, {"2021-Q4": 60.0, "2023-Q4": 70.0})
    assert result.status == INSUFFICIENT
    assert "only quarter figures" in result.explanation and "never mixes period kinds" in result.explanation


def test_a_sub_annual_baseline_measures_time_in_months() -> None:
    spec = target("ga_icse_countries_connected", baseline=Baseline(period="2021-Q4", rule="observed"))
    result = assess(spec, {"2021-Q4": 64.0, "2023-Q2": 70.0, "2023": 99.0})
    assert (result.years_elapsed, result.years_to_target) == (1.5, 9.0)
    assert result.observed_cagr == pytest.approx((70 / 64) ** (1 / 1.5) - 1)
    assert result.required_cagr == pytest.approx((80 / 64) ** (1 / 9) - 1)
    assert result.latest_period == "2023-Q2"  # the yearly figure is another kind


def test_a_published_baseline_wins_over_the_hub_s_figure() -> None:
    spec = target("ga_hotline_removal_within_72h")  # 0.62 published for 2017
    result = assess(spec, {"2017": 0.1, "2023": 0.80})
    assert result.baseline_value == 0.62 and result.baseline_rule == "published"
    assert result.baseline_source.startswith("INHOPE")


def test_provisional_figures_are_flagged() -> None:
    spec = target("ga_icse_countries_connected")
    rows = rows_for(spec, {"2021": 60.0}) + rows_for(spec, {"2023": 66.0}, provisional=True)
    assert assess_target(spec, table(rows)).provisional
    assert not assess(spec, {"2021": 60.0, "2023": 66.0}).provisional


def test_a_frame_without_optional_columns_is_read() -> None:
    spec = target("ga_icse_countries_connected")
    frame = pd.DataFrame(rows_for(spec, {"2021": 60.0, "2024": 71.0})).drop(columns=["param", "country"])
    assert assess_target(spec, frame).status == ON_TRACK


# --- as of a year, history ---------------------------------------------------------------


def test_as_of_year_ignores_later_figures() -> None:
    spec = target("ga_icse_victims_growth")
    values = {"2021": 1000.0, "2022": 1100.0, "2023": 1100.0}
    assert assess(spec, values, as_of_year=2022).status == ON_TRACK
    assert assess(spec, values, as_of_year=2023).status == LIMITED  # (1.1^(1/2) - 1) / 0.1 = 0.49
    before = assess(spec, values, as_of_year=2020)
    assert before.status == INSUFFICIENT and "before the baseline" in before.explanation


def test_progress_history_gives_the_status_each_year() -> None:
    icse, hash_matching = target("ga_icse_victims_growth"), target("ga_company_hash_matching_adoption")
    frame = table(
        rows_for(icse, {"2021": 1000.0, "2022": 1100.0, "2023": 1100.0, "2024": 1000.0}),
        rows_for(hash_matching, {"2021": 0.5, "2023": 0.95}),
    )
    history = progress_history([icse, hash_matching], frame)
    statuses = {
        (code, int(year)): status
        for code, year, status in zip(history["code"], history["as_of_year"], history["status"], strict=True)
    }
    assert statuses == {
        ("ga_icse_victims_growth", 2021): INSUFFICIENT,
        ("ga_icse_victims_growth", 2022): ON_TRACK,
        ("ga_icse_victims_growth", 2023): LIMITED,
        ("ga_icse_victims_growth", 2024): DETERIORATION,
        ("ga_company_hash_matching_adoption", 2021): INSUFFICIENT,
        ("ga_company_hash_matching_adoption", 2022): INSUFFICIENT,
        ("ga_company_hash_matching_adoption", 2023): ACHIEVED,
        ("ga_company_hash_matching_adoption", 2024): ACHIEVED,
    }
    assert tuple(history.columns) == PROGRESS_COLUMNS
    some = progress_history([icse], frame, years=[2024, 2022, 2022])
    assert list(some["as_of_year"]) == [2022, 2024]


def test_history_rows_equal_single_assessments() -> None:
    icse = target("ga_icse_victims_growth")
    frame = table(rows_for(icse, {"2021": 1000.0, "2023": 1150.0}))
    history = progress_history([icse], frame, years=[2023]).iloc[0]
    single = assess_target(icse, frame, as_of_year=2023)
    assert history["ratio"] == single.ratio and history["explanation"] == single.explanation


# --- bad inputs ----------------------------------------------------------------------------


def test_missing_columns_are_named() -> None:
    frame = table(rows_for(target("ga_icse_victims_growth"), {"2021": 1.0})).drop(columns=["value", "level"])
    with pytest.raises(ProgressError, match=r"lacks column\(s\) level, value"):
        assess_target(target("ga_icse_victims_growth"), frame)


def test_not_a_frame_is_refused() -> None:
    with pytest.raises(ProgressError, match="must be a pandas DataFrame"):
        assess_target(target("ga_icse_victims_growth"), [{"metric": "x"}])  # type: ignore[arg-type]


def test_a_negative_value_is_refused() -> None:
    with pytest.raises(ProgressError, match="negative value of 'le_countries_connected_icse' at 2022"):
        assess(target("ga_icse_countries_connected"), {"2021": 60.0, "2022": -1.0})


def test_two_rows_for_one_period_are_refused() -> None:
    spec = target("ga_icse_countries_connected")
    rows = rows_for(spec, {"2021": 60.0, "2022": 61.0}) + rows_for(spec, {"2022": 62.0})
    with pytest.raises(ProgressError, match=r"several rows .* period\(s\) 2022"):
        assess_target(spec, table(rows))


def test_a_period_code_must_match_its_kind() -> None:
    spec = target("ga_icse_countries_connected")
    rows = rows_for(spec, {"2021": 60.0, "2022": 61.0})
    rows[1]["period_kind"] = "quarter"
    with pytest.raises(ProgressError, match="period 2022 is a year, but its period_kind says 'quarter'"):
        assess_target(spec, table(rows))
    rows[1].update(period="2022-13", period_kind="month")
    with pytest.raises(ProgressError, match="2022-13"):
        assess_target(spec, table(rows))


def test_history_of_a_table_with_a_bad_period_is_refused() -> None:
    spec = target("ga_icse_countries_connected")
    rows = rows_for(spec, {"2021": 60.0})
    rows[0].update(period="21", period_kind="year")
    with pytest.raises(ProgressError, match="bad period: period '21'"):
        progress_history([spec], table(rows))


def test_a_country_scope_with_a_population_is_refused() -> None:
    spec = target("ga_companies_reporting", scope=Scope(type="country", value="DE"))
    with pytest.raises(ProgressError, match="no country x stakeholder type level"):
        series_key(spec)


def test_unknown_scope_type_is_refused() -> None:
    spec = target("ga_icse_countries_connected", scope=Scope(type="region"))
    with pytest.raises(ProgressError, match="unknown scope type 'region'"):
        series_key(spec)


def test_a_target_given_twice_is_refused() -> None:
    spec = target("ga_icse_countries_connected")
    frame = table(rows_for(spec, {"2021": 60.0}))
    with pytest.raises(ProgressError, match="given twice"):
        assess_targets([spec, spec], frame)
    with pytest.raises(ProgressError, match="given twice"):
        progress_history([spec, spec], frame)


@pytest.mark.parametrize("bad", [2024.0, "2024", True])
def test_as_of_year_must_be_an_int(bad: Any) -> None:
    with pytest.raises(ProgressError, match="as_of_year must be a year"):
        assess(target("ga_icse_countries_connected"), {"2021": 60.0}, as_of_year=bad)


@pytest.mark.parametrize(("start", "end", "years"), [(0.0, 1.0, 1.0), (1.0, -1.0, 1.0), (1.0, 2.0, 0.0)])
def test_cagr_refuses_what_has_no_rate(start: float, end: float, years: float) -> None:
    with pytest.raises(ProgressError, match="no growth rate"):
        cagr(start, end, years)


def test_select_series_orders_by_time() -> None:
    spec = target("ga_icse_countries_connected")
    series = select_series(spec, table(rows_for(spec, {"2024": 3.0, "2021": 1.0, "2022": 2.0})))
    assert list(series["period"]) == ["2021", "2022", "2024"]


# --- properties against an independent computation ----------------------------------------

RANK = {DETERIORATION: 0, LIMITED: 1, MODERATE: 2, ON_TRACK: 3, ACHIEVED: 4}
positive = st.floats(min_value=1e-3, max_value=1e9, allow_nan=False, allow_infinity=False)


def _band_in_value_space(
    base: float, latest: float, target_level: float, required: float, years: float
) -> str:
    """The status from the value the latest figure must reach for each band (higher is better):
    ratio >= k  <=>  latest >= base x (1 + k x required)^years."""
    if latest >= target_level:
        return ACHIEVED
    if latest >= base * (1 + 0.95 * required) ** years:
        return ON_TRACK
    if latest >= base * (1 + 0.6 * required) ** years:
        return MODERATE
    return LIMITED if latest > base else DETERIORATION


def _near_a_bound(value: float, bounds: list[float]) -> bool:
    return any(abs(value - bound) <= 1e-9 * max(abs(bound), 1e-12) for bound in bounds)


@settings(max_examples=300, deadline=None)
@given(base=positive, growth=st.floats(min_value=0.0, max_value=5.0), year=st.integers(2022, 2029))
def test_growth_status_matches_the_value_space_computation(base: float, growth: float, year: int) -> None:
    spec = target("ga_icse_victims_growth")
    latest = base * growth
    t = year - 2021
    bounds = [base * 1.1**9, base * (1 + 0.095) ** t, base * (1 + 0.06) ** t, base]
    assume(not _near_a_bound(latest, bounds))
    result = assess(spec, {"2021": base, str(year): latest})
    assert result.status == _band_in_value_space(base, latest, base * 1.1**9, 0.1, t)


@settings(max_examples=300, deadline=None)
@given(
    base=st.floats(min_value=25.0, max_value=5000.0),
    factor=st.floats(min_value=0.0, max_value=4.0),
    year=st.integers(2022, 2029),
)
def test_lower_is_better_status_matches_the_value_space_computation(
    base: float, factor: float, year: int
) -> None:
    """A time limit: with required < 0, ratio >= k <=> latest <= base x (1 + k x required)^t."""
    spec = target("ga_company_takedown_p90_24h")  # at most 24 hours by 2030
    latest, t = base * factor, year - 2021
    required = (24 / base) ** (1 / 9) - 1
    bounds = [24.0, base * (1 + 0.95 * required) ** t, base * (1 + 0.6 * required) ** t, base]
    assume(not _near_a_bound(latest, bounds))
    if latest <= 24:
        expected = ACHIEVED
    elif latest <= bounds[1]:
        expected = ON_TRACK
    elif latest <= bounds[2]:
        expected = MODERATE
    else:
        expected = LIMITED if latest < base else DETERIORATION
    assert assess(spec, {"2021": base, str(year): latest}).status == expected


@settings(max_examples=200, deadline=None)
@given(base=positive, first=st.floats(0.0, 4.0), second=st.floats(0.0, 4.0), year=st.integers(2022, 2029))
def test_status_is_monotone_in_the_latest_value(base: float, first: float, second: float, year: int) -> None:
    low, high = sorted((first, second))
    growth, time_limit = target("ga_icse_victims_growth"), target("ga_company_takedown_p90_24h")
    up = [RANK[assess(growth, {"2021": base, str(year): base * f}).status] for f in (low, high)]
    assert up[0] <= up[1]
    hours = 24 + base  # above the 24-hour limit at the baseline
    down = [RANK[assess(time_limit, {"2021": hours, str(year): hours * f}).status] for f in (low, high)]
    assert down[0] >= down[1]


@settings(max_examples=200, deadline=None)
@given(
    base=st.floats(min_value=25.0, max_value=5000.0),
    factor=st.floats(min_value=0.01, max_value=4.0),
    scale=st.floats(min_value=1e-3, max_value=1e3),
    year=st.integers(2022, 2029),
)
def test_scaling_every_value_keeps_the_status(base: float, factor: float, scale: float, year: int) -> None:
    """Rates are unit-free: hours in minutes, or a count in thousands, give the same status."""
    growth = target("ga_icse_victims_growth")
    time_limit = target("ga_company_takedown_p90_24h")
    scaled_limit = target("ga_company_takedown_p90_24h", target=Goal(value=24 * scale, year=2030))
    assume(abs(factor - 1.1**9) > 1e-9)  # the growth target's level, reached exactly
    for plain, scaled, limit in ((growth, growth, 1.0), (time_limit, scaled_limit, scale)):
        one = assess(plain, {"2021": base, str(year): base * factor})
        other = assess(scaled, {"2021": base * scale, str(year): base * factor * scale})
        if not math.isnan(one.ratio):
            bands = [0.95, 0.6, 0.0]
            assume(not any(abs(one.ratio - bound) < 1e-9 for bound in bands))
            assert other.ratio == pytest.approx(one.ratio, rel=1e-9, abs=1e-12)
        assume(abs(base * factor - 24) > 1e-6 * 24)
        assert other.status == one.status, (plain.code, limit)


def test_no_param_is_minus_one() -> None:
    """The selection relies on the contract's NO_PARAM for value and reporters rows."""
    assert NO_PARAM == -1.0 and series_key(target("ga_companies_reporting")).param == NO_PARAM
