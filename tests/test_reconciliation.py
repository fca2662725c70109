"""Reconciliation: both ends' counts of a flow, the gap, its status, history and summary.

Values are worked out by hand in the comments; a property test compares ``reconcile`` with a
plain-Python computation on random observations; the real published figures (NCMEC and
Discord) are imported into SQLite and PostgreSQL and reconciled from the database.
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import Session, col, select

from hub.catalogue import Catalogue
from hub.errors import CatalogueError
from hub.figures import OBSERVATION_COLUMNS, OBSERVATION_TYPES, load_observations, load_organisations
from hub.models import Submission
from hub.reconciliation import (
    RECONCILIATION_COLUMNS,
    SUMMARY_COLUMNS,
    Flow,
    load_flows,
    organisation_parents,
    reconcile,
    reconciliation_history,
    reconciliation_summary,
)
from hub.settings import REPO_ROOT
from hub.vocab import DIMENSIONS, TOTAL
from ingest.public_data import import_public_data

DATA = REPO_ROOT / "data"

ORGS = {
    "co_a": ("company", "US"),
    "co_b": ("company", "US"),
    "co_c": ("company", "DE"),
    "co_d": ("company", "DE"),
    "co_e": ("company", "FR"),
    "ht_1": ("hotline", "GB"),
    "ht_2": ("hotline", "NL"),
    "ch_x": ("clearinghouse", "US"),
    "ch_y": ("clearinghouse", "BE"),
    "le_de1": ("law_enforcement", "DE"),
    "le_de2": ("law_enforcement", "DE"),
    "le_fr": ("law_enforcement", "FR"),
}


def organisations(parents: dict[str, str] | None = None) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "organisation": list(ORGS),
            "stakeholder_type": [kind for kind, _ in ORGS.values()],
            "org_country": [country for _, country in ORGS.values()],
            "status": "member",
            "consents_to_be_named": False,
        }
    )
    if parents is not None:
        frame["parent"] = [parents.get(code, "") for code in ORGS]
    return frame


def kind_of(period: str) -> str:
    if "-Q" in period:
        return "quarter"
    if "-H" in period:
        return "half_year"
    return "month" if "-" in period else "year"


def row(
    metric: str, period: str, org: str, value: float, *, submission: int = 1, **dims: str
) -> dict[str, Any]:
    kind, country = ORGS[org]
    return {
        "metric": metric,
        "period": period,
        "period_kind": kind_of(period),
        "organisation": org,
        "stakeholder_type": kind,
        "org_country": country,
        **{d: dims.get(d, TOTAL) for d in DIMENSIONS},
        "value": value,
        "provisional": False,
        "submission_id": submission,
        "version": 1,
        "supersede_reason": "",
        "channel": "upload",
    }


def frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    if not rows:
        return pd.DataFrame({name: pd.Series(dtype=kind) for name, kind in OBSERVATION_TYPES.items()})
    return pd.DataFrame(rows).loc[:, list(OBSERVATION_COLUMNS)].astype(OBSERVATION_TYPES)


@pytest.fixture(scope="module")
def flows(catalogue: Catalogue) -> dict[str, Flow]:
    return {flow.code: flow for flow in load_flows(DATA, catalogue)}


def sent(period: str, company: str, clearinghouse: str, value: float, **kw: Any) -> dict[str, Any]:
    return row("co_reports_to_authority", period, company, value, counterpart=clearinghouse, **kw)


def received(period: str, clearinghouse: str, company: str, value: float, **kw: Any) -> dict[str, Any]:
    return row(
        "ch_reports_received",
        period,
        clearinghouse,
        value,
        counterpart=company,
        notice_source="provider_report",
        **kw,
    )


def run(rows: list[dict[str, Any]], *chosen: Flow, parents: dict[str, str] | None = None) -> pd.DataFrame:
    return reconcile(frame(rows), chosen, organisations=organisations(parents))


def pair(result: pd.DataFrame, sender: str, receiver: str, period: str) -> pd.Series:
    found = result[
        (result["sender"] == sender) & (result["receiver"] == receiver) & (result["period"] == period)
    ]
    assert len(found) == 1, found
    return found.iloc[0]


def with_tolerance(flow: Flow, relative: float, absolute: float, **more: Any) -> Flow:
    return flow.model_copy(
        update={
            "tolerance": flow.tolerance.model_copy(update={"relative": relative, "absolute": absolute}),
            **more,
        }
    )


# ----------------------------------------------------------------------------- the flow file


def test_the_flow_file_names_the_three_flows_of_the_issue(flows: dict[str, Flow]) -> None:
    assert {
        "hotline_notices_to_companies",
        "company_reports_to_clearinghouses",
        "clearinghouse_referrals_to_agencies",
        "clearinghouse_referrals_to_countries",
    } <= set(flows)
    reports = flows["company_reports_to_clearinghouses"]
    assert reports.sender_side.metric == "co_reports_to_authority"
    assert reports.receiver_side.metric == "ch_reports_received"
    assert reports.receiver_side.filters == {"notice_source": ("provider_report", "_T")}
    assert reports.tolerance.relative == 0.05 and reports.tolerance.absolute == 10
    assert flows["hotline_notices_to_companies"].sender_side.metrics == (
        "ht_notices_sent",
        "ch_hosted_notices_sent",
    )


# ----------------------------------------------------------------------------- statuses by hand


def test_every_status_worked_by_hand(flows: dict[str, Flow]) -> None:
    flow = flows["company_reports_to_clearinghouses"]  # relative 0.05, absolute 10
    result = run(
        [
            sent("2023", "co_a", "ch_x", 100),
            received("2023", "ch_x", "co_a", 100),  # equal: match
            sent("2023", "co_b", "ch_x", 100),
            received("2023", "ch_x", "co_b", 108),  # gap 8 <= max(0.05*108=5.4, 10): within
            sent("2023", "co_c", "ch_x", 1000),
            received("2023", "ch_x", "co_c", 1060),  # gap 60 > max(53, 10): discrepancy
            sent("2023", "co_d", "ch_x", 70),  # nothing at the clearinghouse: receiver_missing
            received("2023", "ch_x", "co_e", 40),  # nothing from the company: sender_missing
        ],
        flow,
    )
    assert len(result) == 5
    assert list(result.columns) == list(RECONCILIATION_COLUMNS)
    a, b, c = (pair(result, org, "ch_x", "2023") for org in ("co_a", "co_b", "co_c"))
    assert (a["status"], a["gap"], a["relative_gap"]) == ("match", 0, 0)
    assert (b["status"], b["gap"], b["allowed_gap"]) == ("within_tolerance", 8, 10)
    assert b["relative_gap"] == pytest.approx(8 / 108)
    assert (c["status"], c["gap"], c["allowed_gap"]) == ("discrepancy", 60, pytest.approx(53))
    assert c["relative_gap"] == pytest.approx(60 / 1060)
    d = pair(result, "co_d", "ch_x", "2023")
    assert d["status"] == "receiver_missing" and d["sender_count"] == 70 and math.isnan(d["receiver_count"])
    assert math.isnan(d["gap"]) and d["receiver_reporters"] == 0 and d["sender_reporters"] == 1
    e = pair(result, "co_e", "ch_x", "2023")
    assert e["status"] == "sender_missing" and e["receiver_count"] == 40 and math.isnan(e["sender_count"])
    assert not result["public"].any()


@pytest.mark.parametrize(
    ("relative", "absolute", "sender", "receiver", "status"),
    [
        (0.05, 0, 1000, 950, "within_tolerance"),  # gap 50 = 0.05 x 1000 exactly
        (0.05, 0, 1000, 949, "discrepancy"),  # gap 51 > 50
        (0.05, 0, 950, 1000, "within_tolerance"),  # symmetric: the larger count is the base
        (0.05, 0, 949, 1000, "discrepancy"),
        (0.1, 0, 100, 110, "within_tolerance"),  # 10 = 0.1 x 110 would be 11; within
        (0.1, 0, 90, 100, "within_tolerance"),  # gap 10 = 0.1 x 100 exactly (float 0.1)
        (0.1, 0, 89, 100, "discrepancy"),
        (0.0, 10, 100, 110, "within_tolerance"),  # gap 10 = absolute exactly
        (0.0, 10, 100, 111, "discrepancy"),
        (0.0, 10, 110, 100, "within_tolerance"),  # negative gap, same size
        (0.0, 0, 5, 5, "match"),
        (0.0, 0, 5, 6, "discrepancy"),
        (0.0, 0, 0, 0, "match"),
        (0.5, 0, 0, 1, "discrepancy"),  # 1 > 0.5 x 1
        (1.0, 0, 0, 1, "within_tolerance"),  # 1 = 1.0 x 1
    ],
)
def test_tolerance_boundaries(
    flows: dict[str, Flow], relative: float, absolute: float, sender: int, receiver: int, status: str
) -> None:
    flow = with_tolerance(flows["company_reports_to_clearinghouses"], relative, absolute)
    result = run([sent("2024", "co_a", "ch_x", sender), received("2024", "ch_x", "co_a", receiver)], flow)
    assert pair(result, "co_a", "ch_x", "2024")["status"] == status


def test_relative_gap_is_a_share_of_the_larger_count(flows: dict[str, Flow]) -> None:
    result = run(
        [sent("2024", "co_a", "ch_x", 0), received("2024", "ch_x", "co_a", 4)],
        flows["company_reports_to_clearinghouses"],
    )
    got = pair(result, "co_a", "ch_x", "2024")
    assert (got["gap"], got["relative_gap"], got["status"]) == (4, 1.0, "within_tolerance")  # 4 <= 10


def test_not_available_counts_as_missing_and_only_totals_are_compared(flows: dict[str, Flow]) -> None:
    flow = flows["company_reports_to_clearinghouses"]
    result = run(
        [
            sent("2023", "co_a", "ch_x", float("nan")),  # reported as not available
            received("2023", "ch_x", "co_a", 50),
            sent("2023", "co_b", "ch_x", 30),
            sent("2023", "co_b", "ch_x", 20, country="US"),  # a breakdown: never added to its total
            sent("2023", "co_b", "ch_x", 10, country="ZZ"),
            received("2023", "ch_x", "co_b", 30),
            received("2023", "ch_x", "co_b", 999, jurisdiction="domestic"),
            row("ch_reports_received", "2023", "ch_x", 31, counterpart="co_b"),  # provider_report preferred
            row("ch_reports_received", "2023", "ch_x", 7, counterpart="co_b", notice_source="public_report"),
            row("co_reports_to_authority", "2023", "co_b", 12),  # no counterpart: not a pair
        ],
        flow,
    )
    assert pair(result, "co_a", "ch_x", "2023")["status"] == "sender_missing"
    b = pair(result, "co_b", "ch_x", "2023")
    assert (b["sender_count"], b["receiver_count"], b["status"]) == (30, 30, "match")
    assert len(result) == 2


def test_a_filter_with_alternatives_takes_the_first_present(flows: dict[str, Flow]) -> None:
    flow = flows["company_reports_to_clearinghouses"]  # notice_source: [provider_report, _T]
    by_counterpart_only = row("ch_reports_received", "2023", "ch_y", 40, counterpart="co_a")  # _T
    both = [
        row("ch_reports_received", "2023", "ch_x", 41, counterpart="co_a"),
        received("2023", "ch_x", "co_a", 40),
    ]
    result = run(
        [by_counterpart_only, *both, sent("2023", "co_a", "ch_x", 40), sent("2023", "co_a", "ch_y", 40)], flow
    )
    # ch_y gives only the total over notice sources: used; ch_x gives both: provider_report, once
    assert pair(result, "co_a", "ch_y", "2023")["receiver_count"] == 40
    assert pair(result, "co_a", "ch_x", "2023")["receiver_count"] == 40


def test_the_other_end_must_be_of_the_flow_s_stakeholder_type(flows: dict[str, Flow]) -> None:
    flow = flows["company_reports_to_clearinghouses"]
    result = run(
        [
            sent("2023", "co_a", "le_de1", 10),  # a company reporting to the police: another flow
            sent("2023", "co_a", "ch_x", 10),
            received("2023", "ch_x", "co_a", 10),
            received("2023", "ch_x", "ht_1", 5),  # reports from a hotline: not a company's
        ],
        flow,
    )
    assert list(zip(result["sender"], result["receiver"], strict=True)) == [("co_a", "ch_x")]


def test_hotline_notices_are_added_up_over_hotlines(flows: dict[str, Flow]) -> None:
    flow = flows["hotline_notices_to_companies"]
    result = run(
        [
            row("ht_notices_sent", "2024-Q1", "ht_1", 30, counterpart="co_a"),
            row("ht_notices_sent", "2024-Q1", "ht_2", 25, counterpart="co_a"),
            row("ch_hosted_notices_sent", "2024-Q1", "ch_x", 6, counterpart="co_a"),  # NCMEC-like notices
            row("ch_hosted_notices_sent", "2024-Q1", "ch_x", 60),  # its total over providers
            row("ht_notices_sent", "2024-Q1", "ht_2", 9, counterpart="ht_1"),  # to a partner hotline
            row("ht_notices_sent", "2024-Q1", "ht_2", 64),  # the hotline's total
            row("ht_notices_sent", "2024-Q1", "ht_2", 40, country="NL"),
            row("co_notices_received", "2024-Q1", "co_a", 76, notice_source="hotline"),
            row("co_notices_received", "2024-Q1", "co_a", 500, notice_source="user_report"),
            row("co_notices_received", "2024-Q1", "co_a", 576),
            row("co_notices_received", "2024-Q1", "co_b", 3, notice_source="hotline"),
        ],
        flow,
    )
    a = pair(result, "_T", "co_a", "2024-Q1")
    # 30 + 25 + 6 sent, 76 received: gap 15 > max(0.05 x 76 = 3.8, 10)
    assert (a["sender_count"], a["receiver_count"], a["gap"], a["status"]) == (61, 76, 15, "discrepancy")
    assert (a["sender_reporters"], a["receiver_reporters"]) == (3, 1)
    assert pair(result, "_T", "co_b", "2024-Q1")["status"] == "sender_missing"
    assert len(result) == 2


def test_compare_at_leaves_months_out(flows: dict[str, Flow]) -> None:
    flow = flows["hotline_notices_to_companies"]  # compare_at: quarter, half_year, year
    months = [row("ht_notices_sent", f"2024-{m:02d}", "ht_1", 10, counterpart="co_a") for m in (1, 2, 3)]
    months += [
        row("co_notices_received", f"2024-{m:02d}", "co_a", 10, notice_source="hotline") for m in (1, 2, 3)
    ]
    result = run(months, flow)
    assert result[["period", "sender_count", "receiver_count", "status"]].values.tolist() == [
        ["2024-Q1", 30, 30, "match"]
    ]
    everything = run(months, flow.model_copy(update={"compare_at": ()}))
    assert sorted(everything["period"]) == ["2024-01", "2024-02", "2024-03", "2024-Q1"]


def test_referrals_per_agency_and_per_country(flows: dict[str, Flow]) -> None:
    rows = [
        row("ch_referrals_sent", "2024-Q1", "ch_y", 40, counterpart="le_de1"),
        row("ch_referrals_sent", "2024-Q1", "ch_y", 52, counterpart="le_de2"),
        row("ch_referrals_sent", "2024-Q1", "ch_y", 100, country="DE"),
        row("ch_referrals_sent", "2024-Q1", "ch_y", 30, country="FR"),
        row("ch_referrals_sent", "2024-Q1", "ch_y", 130),
        row("ch_referrals_sent", "2024-Q1", "ch_y", 80, detail_level="actionable"),
        row("le_referrals_received", "2024-Q1", "le_de1", 40, counterpart="ch_y"),
        row("le_referrals_received", "2024-Q1", "le_de2", 50, counterpart="ch_y"),
        row("le_referrals_received", "2024-Q1", "le_de2", 7, counterpart="ht_1"),
        row("le_referrals_received", "2024-Q1", "le_de2", 61),
    ]
    per_agency = run(rows, flows["clearinghouse_referrals_to_agencies"])
    assert pair(per_agency, "ch_y", "le_de1", "2024-Q1")["status"] == "match"
    de2 = pair(per_agency, "ch_y", "le_de2", "2024-Q1")  # 52 sent, 50 received: within 10
    assert (de2["gap"], de2["status"]) == (-2, "within_tolerance")
    assert len(per_agency) == 2
    per_country = run(rows, flows["clearinghouse_referrals_to_countries"])
    de = pair(per_country, "ch_y", "DE", "2024-Q1")  # 100 vs 40 + 50 = 90: gap -10 <= 10
    assert (de["sender_count"], de["receiver_count"], de["receiver_reporters"], de["status"]) == (
        100,
        90,
        2,
        "within_tolerance",
    )
    assert pair(per_country, "ch_y", "FR", "2024-Q1")["status"] == "receiver_missing"  # le_fr silent
    assert len(per_country) == 2


def test_a_figure_given_in_two_submissions_is_counted_once(flows: dict[str, Flow]) -> None:
    flow = flows["company_reports_to_clearinghouses"]
    # Submission 1 is the clearinghouse's full table (3 figures), submission 2 a compilation
    # repeating one of them, with another value: the full table's figure is used, once.
    rows = [
        received("2023", "ch_x", "co_a", 100, submission=1),
        received("2023", "ch_x", "co_b", 10, submission=1),
        received("2023", "ch_x", "co_c", 10, submission=1),
        received("2023", "ch_x", "co_a", 120, submission=2),
        sent("2023", "co_a", "ch_x", 100, submission=3),
        sent("2023", "co_b", "ch_x", 10, submission=4),
        sent("2023", "co_b", "ch_x", 10, submission=5),  # the same figure again, same value
    ]
    result = run(rows, flow)
    a = pair(result, "co_a", "ch_x", "2023")
    assert (a["receiver_count"], a["status"], a["sources_differ"]) == (100, "match", True)
    b = pair(result, "co_b", "ch_x", "2023")
    assert (b["sender_count"], b["sources_differ"]) == (10, False)


def test_a_group_s_count_covers_the_organisations_below_it(flows: dict[str, Flow]) -> None:
    flow = flows["company_reports_to_clearinghouses"]  # sender_counts_group: true
    rows = [
        sent("2023", "co_a", "ch_x", 100),  # co_a counts for its group: itself and co_b
        received("2023", "ch_x", "co_a", 60),
        received("2023", "ch_x", "co_b", 40),
        received("2023", "ch_x", "co_c", 5),  # co_c is below co_d, which reports nothing
        sent("2022", "co_a", "ch_x", 50),
        received("2022", "ch_x", "co_b", 45),  # the clearinghouse lists only co_b in 2022
    ]
    parents = {"co_b": "co_a", "co_c": "co_d"}
    result = run(rows, flow, parents=parents)
    a = pair(result, "co_a", "ch_x", "2023")
    assert (a["sender_count"], a["receiver_count"], a["status"], a["group_total"]) == (
        100,
        100,
        "match",
        True,
    )
    a22 = pair(result, "co_a", "ch_x", "2022")  # 50 vs 45 (all of it co_b's): within 10
    assert (a22["receiver_count"], a22["status"], a22["group_total"]) == (45, "within_tolerance", True)
    # the subsidiaries keep their own rows; no pair is made up for the silent co_d
    assert pair(result, "co_b", "ch_x", "2023")["status"] == "sender_missing"
    assert pair(result, "co_c", "ch_x", "2023")["receiver_count"] == 5
    assert "co_d" not in set(result["sender"])
    # without the group tree (no parent column) nothing is added
    plain = pair(run(rows, flow), "co_a", "ch_x", "2023")
    assert (plain["receiver_count"], plain["group_total"]) == (60, False)
    # and a flow that does not count groups ignores the tree
    apart = flow.model_copy(update={"sender_counts_group": False})
    assert pair(run(rows, apart, parents=parents), "co_a", "ch_x", "2023")["receiver_count"] == 60


def test_a_cycle_in_the_group_tree_does_not_hang(flows: dict[str, Flow]) -> None:
    flow = flows["company_reports_to_clearinghouses"]
    rows = [sent("2023", "co_a", "ch_x", 10), received("2023", "ch_x", "co_b", 10)]
    result = run(rows, flow, parents={"co_a": "co_b", "co_b": "co_a"})
    assert pair(result, "co_a", "ch_x", "2023")["receiver_count"] == 10


def test_period_kinds_are_never_mixed(flows: dict[str, Flow]) -> None:
    flow = flows["company_reports_to_clearinghouses"]
    no_roll_up = flow.model_copy(update={"roll_up_to": ()})
    rows = [
        sent("2023", "co_a", "ch_x", 100),  # the company counts the year
        *[received(f"2023-Q{q}", "ch_x", "co_a", 25) for q in range(1, 5)],  # the clearinghouse quarters
        sent("2023-Q1", "co_b", "ch_x", 7),
        received("2023-Q1", "ch_x", "co_b", 7),
    ]
    result = run(rows, no_roll_up)
    # only quarters are compared (the kind both ends report in); the year is never set
    # against the quarters, and no year row claims the clearinghouse's count is missing
    assert set(result["period_kind"]) == {"quarter"}
    assert set(result.loc[result["sender"] == "co_a", "status"]) == {"sender_missing"}
    assert pair(result, "co_b", "ch_x", "2023-Q1")["status"] == "match"
    # asking for a roll-up to years compares the year with the sum of the four quarters
    year = pair(run(rows, flow), "co_a", "ch_x", "2023")
    assert (year["sender_count"], year["receiver_count"], year["rolled_up"]) == (100, 100, True)
    assert not run(rows[:5], no_roll_up).shape[0]  # one end counts years, the other quarters only


def test_roll_up_uses_complete_sets_only(flows: dict[str, Flow]) -> None:
    flow = flows["company_reports_to_clearinghouses"]  # roll_up_to: quarter, year
    months = [sent(f"2023-{m:02d}", "co_a", "ch_x", 10) for m in range(1, 13)]
    months += [sent(f"2023-{m:02d}", "co_b", "ch_x", 10) for m in range(1, 12)]  # December missing
    quarters = [received(f"2023-Q{q}", "ch_x", org, 30) for q in range(1, 5) for org in ("co_a", "co_b")]
    result = run([*months, *quarters], flow)
    a_q = pair(result, "co_a", "ch_x", "2023-Q4")
    assert (a_q["sender_count"], a_q["receiver_count"], a_q["status"], a_q["rolled_up"]) == (
        30,
        30,
        "match",
        True,
    )
    a_y = pair(result, "co_a", "ch_x", "2023")
    assert (a_y["sender_count"], a_y["receiver_count"], a_y["rolled_up"]) == (120, 120, True)
    # co_b: Q4 has two months only, so no Q4 and no year from months; the year from quarters
    assert pair(result, "co_b", "ch_x", "2023-Q4")["status"] == "sender_missing"
    b_y = pair(result, "co_b", "ch_x", "2023")
    assert (math.isnan(b_y["sender_count"]), b_y["receiver_count"], b_y["status"]) == (
        True,
        120,
        "sender_missing",
    )
    assert pair(result, "co_b", "ch_x", "2023-Q3")["sender_count"] == 30
    # the clearinghouse counts no months, so months are not compared at all
    assert "month" not in set(result["period_kind"])


def test_a_reported_period_wins_over_a_roll_up(flows: dict[str, Flow]) -> None:
    flow = flows["company_reports_to_clearinghouses"]
    months = [sent(f"2023-{m:02d}", "co_a", "ch_x", 10) for m in (1, 2, 3)]
    quarter = sent("2023-Q1", "co_a", "ch_x", 33)  # the company's own quarterly count
    result = run([*months, quarter, received("2023-Q1", "ch_x", "co_a", 33)], flow)
    q1 = pair(result, "co_a", "ch_x", "2023-Q1")
    assert (q1["sender_count"], q1["rolled_up"], q1["status"]) == (33, False, "match")


# ----------------------------------------------------------------------------- summary, history


def test_summary_counts_pairs_and_totals_over_compared_pairs(flows: dict[str, Flow]) -> None:
    flow = flows["company_reports_to_clearinghouses"]
    result = run(
        [
            sent("2023", "co_a", "ch_x", 100),
            received("2023", "ch_x", "co_a", 100),
            sent("2023", "co_b", "ch_x", 100),
            received("2023", "ch_x", "co_b", 108),
            sent("2023", "co_c", "ch_x", 1000),
            received("2023", "ch_x", "co_c", 1060),
            sent("2023", "co_d", "ch_x", 70),
            received("2023", "ch_x", "co_e", 40),
            sent("2022", "co_d", "ch_x", 5),
        ],
        flow,
    )
    summary = reconciliation_summary(result)
    assert list(summary.columns) == list(SUMMARY_COLUMNS)
    assert summary["public"].all()
    assert not {"sender", "receiver"} & set(summary.columns)
    y23 = summary[summary["period"] == "2023"].iloc[0]
    assert y23[["pairs", "pairs_compared", "pairs_matching", "pairs_within_tolerance"]].tolist() == [
        5,
        3,
        1,
        2,
    ]
    assert y23[["pairs_discrepant", "pairs_sender_missing", "pairs_receiver_missing"]].tolist() == [1, 1, 1]
    # 100 + 100 + 1000 sent, 100 + 108 + 1060 received
    assert (y23["total_sent"], y23["total_received"], y23["gap"]) == (1200, 1268, 68)
    assert y23["relative_gap"] == pytest.approx(68 / 1268)
    y22 = summary[summary["period"] == "2022"].iloc[0]
    assert (y22["pairs"], y22["pairs_compared"]) == (1, 0)
    assert math.isnan(y22["total_sent"]) and math.isnan(y22["relative_gap"])


def test_history_follows_a_pair_over_periods(flows: dict[str, Flow]) -> None:
    flow = flows["company_reports_to_clearinghouses"]
    rows = [
        sent("2020", "co_a", "ch_x", 100),  # only the company: one-sided
        sent("2021", "co_a", "ch_x", 1000),
        received("2021", "ch_x", "co_a", 1000),  # relative gap 0
        sent("2022", "co_a", "ch_x", 1000),
        received("2022", "ch_x", "co_a", 1250),  # 250 / 1250 = 0.2: discrepancy
        sent("2023", "co_a", "ch_x", 1000),
        received("2023", "ch_x", "co_a", 2500),  # 1500 / 2500 = 0.6: discrepancy
        sent("2023", "co_b", "ch_x", 50),
        received("2023", "ch_x", "co_b", 50),
        sent("2023-Q1", "co_a", "ch_x", 1),  # another period kind: another history
        received("2023-Q1", "ch_x", "co_c", 1),
    ]
    history = reconciliation_history(run(rows, flow.model_copy(update={"roll_up_to": ()})))
    a = history[(history["sender"] == "co_a") & (history["period_kind"] == "year")].iloc[0]
    assert a[["periods", "periods_compared", "periods_out_of_tolerance", "periods_one_sided"]].tolist() == [
        4,
        3,
        2,
        1,
    ]
    assert a[["first_seen", "last_seen", "first_discrepancy", "latest_compared"]].tolist() == [
        "2020",
        "2023",
        "2022",
        "2023",
    ]
    assert (a["latest_gap"], a["latest_relative_gap"]) == (1500, pytest.approx(0.6))
    assert a["mean_relative_gap"] == pytest.approx((0 + 0.2 + 0.6) / 3)
    # slope of (0, 0.2, 0.6) on (0, 1, 2): sxy = (-1)(-0.2667) + 0 + (1)(0.3333) = 0.6, sxx = 2
    assert a["gap_trend"] == pytest.approx(0.3) and a["trend"] == "widening"
    b = history[history["sender"] == "co_b"].iloc[0]
    assert (b["trend"], b["first_discrepancy"], b["periods_out_of_tolerance"]) == ("insufficient_data", "", 0)
    q = history[history["period_kind"] == "quarter"].iloc[0]
    assert (q["periods"], q["latest_compared"], q["trend"]) == (1, "", "insufficient_data")
    assert not history["public"].any()


def test_history_names_narrowing_and_stable_gaps(flows: dict[str, Flow]) -> None:
    flow = flows["company_reports_to_clearinghouses"]
    rows = []
    for year, (a_rec, b_rec) in zip(
        ("2021", "2022", "2023"), ((2000, 1000), (1500, 1004), (1000, 1000)), strict=True
    ):
        rows += [sent(year, "co_a", "ch_x", 1000), received(year, "ch_x", "co_a", a_rec)]
        rows += [sent(year, "co_b", "ch_x", 1000), received(year, "ch_x", "co_b", b_rec)]
    history = reconciliation_history(run(rows, flow)).set_index("sender")
    assert history.loc["co_a", "trend"] == "narrowing"  # 0.5, 0.333, 0: slope -0.25
    assert history.loc["co_a", "gap_trend"] == pytest.approx(-0.25)
    assert history.loc["co_b", "trend"] == "stable"  # 0, 0.004, 0


# ----------------------------------------------------------------------------- property test


def _by_hand(
    rows: list[dict[str, Any]], relative: float, absolute: float
) -> dict[tuple[str, str, str], tuple]:
    """The company-to-clearinghouse flow computed with dictionaries, one pair at a time."""
    sender_side: dict[tuple[str, str, str], float] = defaultdict(float)
    receiver_side: dict[tuple[str, str, str], float] = defaultdict(float)
    for r in rows:
        if r["metric"] == "co_reports_to_authority":
            sender_side[(r["period"], r["organisation"], r["counterpart"])] += r["value"]
        else:
            receiver_side[(r["period"], r["counterpart"], r["organisation"])] += r["value"]
    expected = {}
    both_kinds = {kind_of(k[0]) for k in sender_side} & {kind_of(k[0]) for k in receiver_side}
    for key in set(sender_side) | set(receiver_side):
        if kind_of(key[0]) not in both_kinds:  # a kind one end never reports in: not compared
            continue
        s, r = sender_side.get(key), receiver_side.get(key)
        if s is None:
            status = "sender_missing"
        elif r is None:
            status = "receiver_missing"
        elif r == s:
            status = "match"
        elif abs(r - s) <= max(relative * max(abs(s), abs(r)), absolute):
            status = "within_tolerance"
        else:
            status = "discrepancy"
        expected[key] = (s, r, status)
    return expected


COMPANIES = ["co_a", "co_b", "co_c"]
CLEARINGHOUSES = ["ch_x", "ch_y"]
PERIODS = ["2022", "2023", "2023-Q1"]


@st.composite
def flow_rows(draw: st.DrawFn) -> list[dict[str, Any]]:
    cells = list(itertools.product(PERIODS, COMPANIES, CLEARINGHOUSES))
    rows = []
    for period, company, clearinghouse in cells:
        if draw(st.booleans()):
            rows.append(sent(period, company, clearinghouse, draw(st.integers(0, 2000))))
        if draw(st.booleans()):
            rows.append(received(period, clearinghouse, company, draw(st.integers(0, 2000))))
    return rows


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=flow_rows(), relative=st.sampled_from([0.0, 0.01, 0.05, 0.25]), absolute=st.integers(0, 50))
def test_reconcile_agrees_with_a_computation_by_hand(
    flows: dict[str, Flow], rows: list[dict[str, Any]], relative: float, absolute: int
) -> None:
    flow = with_tolerance(flows["company_reports_to_clearinghouses"], relative, absolute, roll_up_to=())
    result = run(rows, flow)
    expected = _by_hand(rows, relative, absolute)
    got = {
        (r.period, r.sender, r.receiver): (
            None if math.isnan(r.sender_count) else r.sender_count,
            None if math.isnan(r.receiver_count) else r.receiver_count,
            r.status,
        )
        for r in result.itertuples()
    }
    assert got == expected
    summary = reconciliation_summary(result)
    for s in summary.itertuples():
        compared = [
            v for k, v in expected.items() if k[0] == s.period and v[0] is not None and v[1] is not None
        ]
        assert s.pairs_compared == len(compared)
        assert s.pairs_within_tolerance == sum(v[2] in ("match", "within_tolerance") for v in compared)
        if compared:
            assert s.total_sent == sum(v[0] for v in compared)
            assert s.total_received == sum(v[1] for v in compared)


@st.composite
def monthly_and_quarterly_rows(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Companies count months (some missing), clearinghouses quarters (some missing)."""
    rows = []
    for company, clearinghouse in itertools.product(COMPANIES, CLEARINGHOUSES):
        for month in range(1, 13):
            if draw(st.integers(0, 9)) < 8:
                rows.append(sent(f"2023-{month:02d}", company, clearinghouse, draw(st.integers(0, 500))))
        for quarter in range(1, 5):
            if draw(st.integers(0, 9)) < 8:
                rows.append(received(f"2023-Q{quarter}", clearinghouse, company, draw(st.integers(0, 1500))))
    return rows


def _rolled_up_by_hand(
    rows: list[dict[str, Any]],
) -> dict[tuple[str, str, str], tuple[float | None, float | None]]:
    """Quarter and year counts of each pair: a sum only where the organisation reported the
    metric in every month (quarter) of the period."""
    months_of: dict[str, set[int]] = defaultdict(set)
    quarters_of: dict[str, set[int]] = defaultdict(set)
    sender_side: dict[tuple[str, str, str], float] = defaultdict(float)
    receiver_side: dict[tuple[str, str, str], float] = defaultdict(float)
    for r in rows:
        if r["metric"] == "co_reports_to_authority":
            months_of[r["organisation"]].add(int(r["period"][5:]))
        else:
            quarters_of[r["organisation"]].add(int(r["period"][6:]))
    for r in rows:
        if r["metric"] == "co_reports_to_authority":
            month = int(r["period"][5:])
            quarter = (month - 1) // 3 + 1
            if set(range(3 * quarter - 2, 3 * quarter + 1)) <= months_of[r["organisation"]]:
                sender_side[(f"2023-Q{quarter}", r["organisation"], r["counterpart"])] += r["value"]
            if len(months_of[r["organisation"]]) == 12:
                sender_side[("2023", r["organisation"], r["counterpart"])] += r["value"]
        else:
            receiver_side[(r["period"], r["counterpart"], r["organisation"])] += r["value"]
            if len(quarters_of[r["organisation"]]) == 4:
                receiver_side[("2023", r["counterpart"], r["organisation"])] += r["value"]
    both_kinds = {kind_of(k[0]) for k in sender_side} & {kind_of(k[0]) for k in receiver_side}
    return {
        key: (sender_side.get(key), receiver_side.get(key))
        for key in set(sender_side) | set(receiver_side)
        if kind_of(key[0]) in both_kinds
    }


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=monthly_and_quarterly_rows())
def test_roll_up_agrees_with_a_computation_by_hand(
    flows: dict[str, Flow], rows: list[dict[str, Any]]
) -> None:
    result = run(rows, flows["company_reports_to_clearinghouses"])  # roll_up_to: quarter, year
    got = {
        (r.period, r.sender, r.receiver): (
            None if math.isnan(r.sender_count) else r.sender_count,
            None if math.isnan(r.receiver_count) else r.receiver_count,
        )
        for r in result.itertuples()
    }
    assert got == _rolled_up_by_hand(rows)
    assert result.loc[result["period_kind"] == "year", "rolled_up"].all()


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    counts=st.lists(
        st.tuples(st.integers(0, 1000), st.one_of(st.none(), st.integers(0, 1000))), min_size=1, max_size=8
    )
)
def test_history_trend_agrees_with_numpy(
    flows: dict[str, Flow], counts: list[tuple[int, int | None]]
) -> None:
    """gap_trend is numpy's least-squares slope of |relative gap| over the years compared."""
    flow = flows["company_reports_to_clearinghouses"]
    rows = []
    for offset, (s, r) in enumerate(counts):
        rows.append(sent(str(2010 + offset), "co_a", "ch_x", s))
        if r is not None:
            rows.append(received(str(2010 + offset), "ch_x", "co_a", r))
    rows.append(received("2009", "ch_x", "co_b", 1))  # so that years are compared at all
    history = reconciliation_history(run(rows, flow))
    got = history[history["sender"] == "co_a"].iloc[0]
    points = [
        (i, abs(r - s) / max(s, r) if max(s, r) else 0.0) for i, (s, r) in enumerate(counts) if r is not None
    ]
    assert got["periods_compared"] == len(points)
    assert got["periods_one_sided"] == len(counts) - len(points)
    distinct_x = len({x for x, _ in points})
    if distinct_x < 2:
        assert math.isnan(got["gap_trend"]) and got["trend"] == "insufficient_data"
    else:
        xs, ys = zip(*points, strict=True)
        slope = float(np.polyfit(xs, ys, 1)[0])
        assert got["gap_trend"] == pytest.approx(slope, abs=1e-9)
        expected = "widening" if slope >= 0.01 else "narrowing" if slope <= -0.01 else "stable"
        if abs(abs(slope) - 0.01) > 1e-9:
            assert got["trend"] == expected


# ----------------------------------------------------------------------------- real public data


def test_the_real_discord_2023_gap_from_the_database(
    session: Session, catalogue: Catalogue, settings: Any, flows: dict[str, Flow]
) -> None:
    import_public_data(session, catalogue, settings.public_data_dir, DATA)
    session.commit()
    observations = load_observations(session, select(col(Submission.id)))
    reports = flows["company_reports_to_clearinghouses"]
    result = reconcile(observations, [reports], organisations=organisation_parents(session))
    discord = pair(result, "discord", "ncmec", "2023")
    assert (discord["sender_count"], discord["receiver_count"]) == (164_478, 339_412)
    assert discord["gap"] == 339_412 - 164_478 == 174_934
    assert discord["relative_gap"] == pytest.approx(174_934 / 339_412)
    assert discord["status"] == "discrepancy" and discord["period_kind"] == "year"
    # NCMEC gives the figure in two publications (its per-provider table and the comparable
    # counts): counted once, and the two agree
    assert discord["receiver_reporters"] == 1 and not discord["sources_differ"]
    assert pair(result, "discord", "ncmec", "2021")[["sender_count", "receiver_count"]].tolist() == [
        24_623,
        29_606,
    ]
    # Discord's own quarterly disclosures are by category: never added to the yearly count
    assert not (result["period_kind"] == "quarter").any()
    # Amazon counts for its group; NCMEC lists Amazon 197, Amazon Photos 25,497 and Twitch
    # 6,665 apart (its comparable count for Amazon, 32,359, is their sum)
    amazon = pair(result, "amazon", "ncmec", "2023")
    assert (amazon["sender_count"], amazon["receiver_count"]) == (31_281, 197 + 25_497 + 6_665)
    assert amazon["group_total"] and amazon["status"] == "within_tolerance"  # 1,078 <= 0.05 x 32,359
    apart = reconcile(observations, [reports], organisations=load_organisations(session))
    assert pair(apart, "amazon", "ncmec", "2023")["receiver_count"] == 197  # no tree: Amazon alone
    summary = reconciliation_summary(result)
    y23 = summary[summary["period"] == "2023"].iloc[0]
    assert y23["pairs_compared"] >= 2 and y23["public"]


# ----------------------------------------------------------------------------- bad flow files


GOOD_FLOW: dict[str, Any] = {
    "code": "company_reports",
    "name": "Company reports",
    "description": "Reports a company sent against reports the clearinghouse received.",
    "key": ["sender", "receiver"],
    "sender_types": ["company"],
    "receiver_types": ["clearinghouse"],
    "sender_side": {
        "metric": "co_reports_to_authority",
        "sender_from": "organisation",
        "receiver_from": "counterpart",
    },
    "receiver_side": {
        "metric": "ch_reports_received",
        "filters": {"notice_source": "provider_report"},
        "sender_from": "counterpart",
        "receiver_from": "organisation",
    },
    "tolerance": {"relative": 0.05, "absolute": 10},
}


def _write(tmp_path: Path, *flows: dict[str, Any]) -> Path:
    folder = tmp_path / "reconciliation"
    folder.mkdir(exist_ok=True)
    (folder / "flows.yaml").write_text(
        yaml.safe_dump({"version": "1", "flows": list(flows)}), encoding="utf-8"
    )
    return tmp_path


def _changed(**changes: Any) -> dict[str, Any]:
    flow = yaml.safe_load(yaml.safe_dump(GOOD_FLOW))
    for path, value in changes.items():
        target = flow
        *parents, last = path.split("__")
        for part in parents:
            target = target[part]
        target[last] = value
    return flow


def test_a_good_flow_file_loads(tmp_path: Path, catalogue: Catalogue) -> None:
    (flow,) = load_flows(_write(tmp_path, GOOD_FLOW), catalogue)
    assert flow.code == "company_reports" and flow.key == ("sender", "receiver")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"sender_side__metric": "co_reports_to_nobody"},
            "sender_side: unknown metric 'co_reports_to_nobody'",
        ),
        (
            {"receiver_side__filters": {"colour": "red"}},
            "receiver_side: filter on unknown dimension 'colour'",
        ),
        (
            {"receiver_side__filters": {"service": "x"}},
            "metric 'ch_reports_received' has no dimension 'service'",
        ),
        (
            {"receiver_side__filters": {"notice_source": "carrier_pigeon"}},
            "filter notice_source='carrier_pigeon' is not a value of the dimension",
        ),
        ({"receiver_side__filters": {"notice_source": []}}, "a list of alternatives must be non-empty"),
        (
            {"receiver_side__sender_from": "planet"},
            "receiver_side: sender_from names unknown dimension 'planet'",
        ),
        ({"receiver_side__sender_from": "category"}, "sender_from 'category' cannot name the sender"),
        ({"tolerance__relative": -0.05}, "tolerance relative must be a finite number >= 0, not -0.05"),
        ({"tolerance__absolute": -1}, "tolerance absolute must be a finite number >= 0, not -1"),
        ({"sender_side__metric": "co_share_actioned_24h"}, "only counts combined as a sum can be reconciled"),
        ({"receiver_types": ["martians"]}, "unknown stakeholder type 'martians' in receiver_types"),
        (
            {"receiver_side__receiver_from": None},
            "receiver_from is missing, and the flow is keyed on the receiver",
        ),
        ({"key": ["sender"]}, "key must include the receiver"),
        ({"roll_up_to": ["decade"]}, "roll_up_to 'decade' is not a period kind above month"),
        ({"compare_at": ["week"]}, "compare_at 'week' is not a period kind"),
        ({"sender_side__metric": []}, "a list of metrics must be non-empty, each metric once"),
        (
            {"sender_side__metric": ["co_reports_to_authority", "co_reports_to_nobody"]},
            "sender_side: unknown metric 'co_reports_to_nobody'",
        ),
        ({"receiver_side__sender_from": "country"}, "the two sides name the sender differently"),
        ({"tolerance": {"relative": 0.05}}, "field 'tolerance.absolute': Field required"),
        ({"colour": "red"}, "field 'colour': Extra inputs are not permitted"),
    ],
)
def test_bad_flow_files_are_refused_with_a_clear_error(
    tmp_path: Path, catalogue: Catalogue, changes: dict[str, Any], message: str
) -> None:
    with pytest.raises(CatalogueError) as caught:
        load_flows(_write(tmp_path, _changed(**changes)), catalogue)
    assert any(message in problem for problem in caught.value.problems), caught.value.problems
    assert all("flow 'company_reports'" in problem for problem in caught.value.problems)


def test_duplicate_codes_and_missing_files_are_refused(tmp_path: Path, catalogue: Catalogue) -> None:
    with pytest.raises(CatalogueError, match="file is missing"):
        load_flows(tmp_path, catalogue)
    with pytest.raises(CatalogueError, match="duplicate code 'company_reports'"):
        load_flows(_write(tmp_path, GOOD_FLOW, GOOD_FLOW), catalogue)
    (tmp_path / "reconciliation" / "flows.yaml").write_text("flows: []\n", encoding="utf-8")
    with pytest.raises(CatalogueError, match="non-empty 'flows' list"):
        load_flows(tmp_path, catalogue)


def test_reconcile_refuses_a_frame_without_the_observation_columns(flows: dict[str, Flow]) -> None:
    with pytest.raises(ValueError, match="observations lack column"):
        reconcile(pd.DataFrame({"metric": ["x"]}), flows.values(), organisations=organisations())


def test_no_observations_give_an_empty_typed_table(flows: dict[str, Flow]) -> None:
    result = run([], *flows.values())
    assert result.empty and list(result.columns) == list(RECONCILIATION_COLUMNS)
    assert reconciliation_summary(result).empty and reconciliation_history(result).empty
