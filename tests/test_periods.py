"""Periods: every kind first-class, parsing strict, roll-ups explicit."""

from __future__ import annotations

import itertools
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.periods import PeriodError, PeriodRef, parse_period, periods_between


@pytest.mark.parametrize(
    ("code", "kind", "start", "end"),
    [
        ("2025-03", "month", date(2025, 3, 1), date(2025, 4, 1)),
        ("2025-12", "month", date(2025, 12, 1), date(2026, 1, 1)),
        ("2025-Q1", "quarter", date(2025, 1, 1), date(2025, 4, 1)),
        ("2025-Q4", "quarter", date(2025, 10, 1), date(2026, 1, 1)),
        ("2025-H2", "half_year", date(2025, 7, 1), date(2026, 1, 1)),
        ("2025", "year", date(2025, 1, 1), date(2026, 1, 1)),
    ],
)
def test_parse_each_kind(code: str, kind: str, start: date, end: date) -> None:
    period = parse_period(code)
    assert (period.kind, period.start, period.end, period.code) == (kind, start, end, code)


@pytest.mark.parametrize(
    "code", ["2025-13", "2025-00", "2025-Q5", "2025-H3", "25", "2025Q1", "2025 Q1", "", "1899", "2025-3"]
)
def test_malformed_codes_are_refused(code: str) -> None:
    with pytest.raises(PeriodError):
        parse_period(code)


def test_parent_and_children() -> None:
    march = parse_period("2025-03")
    assert march.parent("quarter").code == "2025-Q1"
    assert march.parent("half_year").code == "2025-H1"
    assert march.parent("year").code == "2025"
    assert [p.code for p in parse_period("2025-H2").children("quarter")] == ["2025-Q3", "2025-Q4"]
    with pytest.raises(PeriodError):
        parse_period("2025-Q1").parent("month")


def test_periods_between_crosses_years() -> None:
    codes = [p.code for p in periods_between("quarter", parse_period("2023-11"), parse_period("2024-Q2"))]
    assert codes == ["2023-Q4", "2024-Q1", "2024-Q2"]


@given(st.integers(1990, 2099), st.sampled_from(["month", "quarter", "half_year", "year"]), st.data())
def test_children_tile_the_parent(year: int, kind: str, data: st.DataObject) -> None:
    count = {"month": 12, "quarter": 4, "half_year": 2, "year": 1}[kind]
    period = PeriodRef(year, kind, data.draw(st.integers(1, count)))
    assert parse_period(period.code) == period
    months = period.children("month")
    assert months[0].start == period.start and months[-1].end == period.end
    assert all(a.end == b.start for a, b in itertools.pairwise(months))
    assert all(period.contains(m) for m in months)
