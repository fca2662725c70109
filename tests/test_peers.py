"""Peer distributions (hub.peers): banded means, never one organisation's figure."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.disclosure import load_policy
from hub.errors import CatalogueError
from hub.figures import NO_PARAM, conform
from hub.peers import PeerRule, band_sizes, peer_distributions, position
from hub.settings import REPO_ROOT
from hub.vocab import DIMENSIONS, TOTAL

RULE = PeerRule(min_contributors=5, min_band=3)


def org_cells(values: list[float], **key: Any) -> list[dict[str, Any]]:
    base: dict[str, Any] = {
        "metric": "co_items_actioned",
        "period": "2025",
        "period_kind": "year",
        "level": "organisation",
        "statistic": "value",
        "param": NO_PARAM,
        "unit": "count",
        "disclosure_class": "items",
        "coverage": 1,
        "event_count": np.nan,
        **dict.fromkeys(DIMENSIONS, TOTAL),
    }
    base.update(key)
    prefix = base.pop("prefix", "co")
    return [{**base, "entity": f"{prefix}-{i}", "value": v} for i, v in enumerate(values)]


def organisations(count: int, kind: str = "company", prefix: str = "co") -> pd.DataFrame:
    return pd.DataFrame(
        {"organisation": [f"{prefix}-{i}" for i in range(count)], "stakeholder_type": [kind] * count}
    ).astype("string")


def distributions(rows: list[dict[str, Any]], orgs: pd.DataFrame, rule: PeerRule = RULE) -> pd.DataFrame:
    """The peer table of ``rows`` as protect() would mark them: an organisation's cell hidden
    as not_named unless the row says otherwise, any other cell published unless it says so."""
    frame = conform(pd.DataFrame(rows))
    default = ["not_named" if r.get("level", "organisation") == "organisation" else "" for r in rows]
    reasons = [r.get("suppression_reason", d) for r, d in zip(rows, default, strict=True)]
    frame = frame.assign(suppressed=[reason != "" for reason in reasons], suppression_reason=reasons)
    return peer_distributions(
        frame, orgs, thresholds={"people": 10}, dominance_k=0.85, min_events=10, rule=rule
    )


@pytest.mark.parametrize(
    ("contributors", "sizes"),
    [
        (5, [5]),
        (6, [3, 3]),
        (8, [4, 4]),
        (9, [3, 3, 3]),
        (11, [4, 4, 3]),
        (12, [3, 3, 3, 3]),
        (14, [4, 4, 3, 3]),
    ],
)
def test_band_sizes(contributors: int, sizes: list[int]) -> None:
    assert band_sizes(contributors, 3) == sizes


@given(st.integers(min_value=3, max_value=500), st.integers(min_value=3, max_value=6))
def test_every_band_holds_at_least_min_band(contributors: int, min_band: int) -> None:
    if contributors < min_band:
        return
    sizes = band_sizes(contributors, min_band)
    assert sum(sizes) == contributors and 1 <= len(sizes) <= 4
    assert min(sizes) >= min_band and max(sizes) - min(sizes) <= 1


def _determined(n: int, sizes: list[int], known: int) -> list[int]:
    """Figures a reader who knows figure ``known``, every band's sum and the total can work out
    exactly: e_j is in the row space of the published equations."""
    rows, start = [], 0
    for size in sizes:
        row = np.zeros(n)
        row[start : start + size] = 1
        rows.append(row)
        start += size
    rows.append(np.ones(n))
    rows.append(np.eye(n)[known])
    system = np.array(rows)
    found = []
    for j in range(n):
        if j == known:
            continue
        target = np.eye(n)[j]
        solution = np.linalg.lstsq(system.T, target, rcond=None)[0]
        if np.allclose(system.T @ solution, target, atol=1e-9):
            found.append(j)
    return found


@pytest.mark.parametrize("contributors", range(5, 26))
def test_no_member_can_work_out_another_members_figure(contributors: int) -> None:
    sizes = band_sizes(contributors, 3)
    for known in range(contributors):
        assert _determined(contributors, sizes, known) == []


def test_overlapping_smoothed_quantiles_would_give_a_figure_away() -> None:
    """Why bands and not windows: the mean of the 3 around the lower quartile and of the 3
    around the median of five figures tell the lowest one the fourth (the test above can fail)."""
    n = 5
    system = np.array([[1, 1, 1, 0, 0], [0, 1, 1, 1, 0], [1, 0, 0, 0, 0]], dtype=float)
    target = np.eye(n)[3]
    solution = np.linalg.lstsq(system.T, target, rcond=None)[0]
    assert np.allclose(system.T @ solution, target)


def test_bands_are_means_of_sorted_figures_per_type() -> None:
    companies = org_cells([9.0, 1.0, 5.0, 3.0, 7.0, 2.0, 8.0, 4.0, 6.0])
    hotlines = org_cells([10.0, 20.0, 30.0, 40.0], prefix="hl")
    orgs = pd.concat([organisations(9), organisations(4, "hotline", "hl")])
    out = distributions(companies + hotlines, orgs)
    assert out["stakeholder_type"].unique().tolist() == ["company"]  # four hotlines: none
    assert out["band"].tolist() == [1, 2, 3]
    assert out["mean"].tolist() == [2.0, 5.0, 8.0]
    assert out["band_name"].tolist() == ["lowest third", "middle third", "highest third"]
    assert set(out["contributors"]) == {9} and out["band_size"].tolist() == [3, 3, 3]
    assert not out["suppressed"].any() and out["display"].tolist() == ["2", "5", "8"]


def test_only_organisation_level_totals_of_comparable_statistics() -> None:
    values = [1.0, 2.0, 3.0, 4.0, 5.0]
    rows = (
        org_cells(values)
        + org_cells(values, country="FR")  # broken down
        + org_cells(values, level="stakeholder_type")  # not organisations
        + org_cells(values, statistic="events", unit="hours", metric="co_takedown_time")
        + org_cells([1.0, 0.0, 1.0, 1.0, 0.0], metric="co_capability_hash_matching", unit="boolean")
        + org_cells([1.0, 2.0, np.nan, 4.0, 5.0], metric="co_appeals")  # NaN: not reported, four left
    )
    out = distributions(rows, organisations(5))
    assert out["metric"].unique().tolist() == ["co_items_actioned"]
    assert out["mean"].tolist() == [3.0]


def test_percentiles_on_too_few_events_are_left_out() -> None:
    many = org_cells([5.0, 6.0, 7.0, 8.0], statistic="percentile", param=0.5, unit="hours", event_count=50.0)
    few = org_cells([100.0], statistic="percentile", param=0.5, unit="hours", event_count=9.0)
    few[0]["entity"] = "co-4"
    out = distributions(many + few, organisations(5))
    assert out.empty  # four with enough events: fewer than five
    enough = dict(few[0], event_count=10.0)
    out = distributions([*many, enough], organisations(5))
    assert out["mean"].tolist() == [(5 + 6 + 7 + 8 + 100) / 5]


def test_a_small_count_of_people_hides_the_whole_distribution() -> None:
    people = {"metric": "le_victims_identified", "disclosure_class": "people"}
    # bands of four: with a zero in a band of three, its two others make up all of it (dominance)
    out = distributions(
        org_cells([0.0, 20.0, 25.0, 30.0, 45.0, 50.0, 60.0, 80.0], **people), organisations(8)
    )
    assert not out["suppressed"].any()  # a true zero identifies nobody
    out = distributions(
        org_cells([4.0, 20.0, 25.0, 30.0, 45.0, 50.0, 60.0, 80.0], **people), organisations(8)
    )
    assert out["suppressed"].all() and out["mean"].isna().all()
    assert set(out["suppression_reason"]) == {"primary"} and set(out["display"]) == {"x"}


def test_a_dominated_band_hides_the_whole_distribution() -> None:
    # upper band 40, 50, 10,000: two largest over 85% of the band; the lower band alone would
    # give the upper band's sum away through the published total
    out = distributions(org_cells([1.0, 2.0, 3.0, 40.0, 50.0, 10_000.0]), organisations(6))
    assert out["suppressed"].all() and set(out["suppression_reason"]) == {"dominance"}
    even = distributions(org_cells([1.0, 2.0, 3.0, 40.0, 50.0, 60.0]), organisations(6))
    assert not even["suppressed"].any()
    # a percentile is not a sum: no dominance
    hours = org_cells(
        [1.0, 2.0, 3.0, 40.0, 50.0, 10_000.0],
        statistic="percentile",
        param=0.5,
        unit="hours",
        event_count=99.0,
    )
    assert not distributions(hours, organisations(6))["suppressed"].any()


def test_position_against_the_bands() -> None:
    bands = distributions(org_cells([float(v) for v in range(1, 13)]), organisations(12))
    assert bands["mean"].tolist() == [2.0, 5.0, 8.0, 11.0]
    assert position(1.0, bands, includes_self=True).text == "below the average of the peers' lowest quarter"
    between = position(6.0, bands, includes_self=True)
    assert between is not None and between.peers == 11 and between.below == 2
    assert between.text == "between the averages of the peers' second quarter and third quarter"
    assert (
        position(12.0, bands, includes_self=False).text == "above the average of the peers' highest quarter"
    )
    single = distributions(org_cells([1.0, 2.0, 3.0, 4.0, 5.0, 6.0]), organisations(6), PeerRule(min_band=5))
    assert position(9.0, single, includes_self=False).text == "above the average of its 6 peers"


def test_no_position_with_fewer_than_five_peers_or_when_hidden() -> None:
    five = distributions(org_cells([1.0, 2.0, 3.0, 4.0, 5.0]), organisations(5))
    assert position(3.0, five, includes_self=True) is None  # the company and four peers
    assert position(3.0, five, includes_self=False) is not None
    assert position(float("nan"), five, includes_self=False) is None
    hidden = distributions(org_cells([1.0, 2.0, 3.0, 40.0, 50.0, 10_000.0]), organisations(6))
    assert position(3.0, hidden, includes_self=False) is None


def test_policy_file_sets_the_peer_rule() -> None:
    assert load_policy(REPO_ROOT / "data").peers == PeerRule(min_contributors=5, min_band=3)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"min_band": 2}, "greater than or equal to 3"),
        ({"min_band": 6, "min_contributors": 5}, "cannot exceed"),
    ],
)
def test_bad_peer_rules_are_refused(fields: dict[str, int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        PeerRule(**fields)


def test_bad_peer_rule_in_the_policy_file_names_the_field(tmp_path: Any) -> None:
    import shutil

    shutil.copytree(REPO_ROOT / "data", tmp_path / "data")
    path = tmp_path / "data" / "disclosure.yaml"
    path.write_text(path.read_text().replace("min_band: 3", "min_band: 2"))
    with pytest.raises(CatalogueError, match="peers"):
        load_policy(tmp_path / "data")
