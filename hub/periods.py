"""Reporting periods: months, quarters, half-years and years, all first-class.

A value belongs to exactly one period of one kind; nothing here converts between kinds.
Roll-ups (month -> quarter -> year) are explicit and only where a metric allows them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from hub.errors import HubError

_KIND_COUNT = {"month": 12, "quarter": 4, "half_year": 2, "year": 1}
_MONTHS_PER = {"month": 1, "quarter": 3, "half_year": 6, "year": 12}
_PATTERNS = (
    (re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$"), "month"),
    (re.compile(r"^(\d{4})-Q([1-4])$"), "quarter"),
    (re.compile(r"^(\d{4})-H([12])$"), "half_year"),
    (re.compile(r"^(\d{4})$"), "year"),
)


class PeriodError(HubError):
    """A period code that is not one of the accepted forms."""


@dataclass(frozen=True, order=True)
class PeriodRef:
    """A period identified by kind, year and number (month 1-12, quarter 1-4, half 1-2)."""

    year: int
    kind: str
    number: int

    def __post_init__(self) -> None:
        if self.kind not in _KIND_COUNT:
            raise PeriodError(f"unknown period kind {self.kind!r}")
        if not 1 <= self.number <= _KIND_COUNT[self.kind]:
            raise PeriodError(f"{self.kind} number must be 1-{_KIND_COUNT[self.kind]}")
        if not 1990 <= self.year <= 2100:
            raise PeriodError(f"year {self.year} is out of range 1990-2100")

    @property
    def code(self) -> str:
        if self.kind == "month":
            return f"{self.year}-{self.number:02d}"
        if self.kind == "quarter":
            return f"{self.year}-Q{self.number}"
        if self.kind == "half_year":
            return f"{self.year}-H{self.number}"
        return f"{self.year}"

    @property
    def first_month(self) -> int:
        return (self.number - 1) * _MONTHS_PER[self.kind] + 1

    @property
    def start(self) -> date:
        return date(self.year, self.first_month, 1)

    @property
    def end(self) -> date:
        """The first day after the period (exclusive end)."""
        month = self.first_month + _MONTHS_PER[self.kind]
        return date(self.year + (month - 1) // 12, (month - 1) % 12 + 1, 1)

    def contains(self, other: PeriodRef) -> bool:
        return self.start <= other.start and other.end <= self.end

    def parent(self, kind: str) -> PeriodRef:
        """The period of a coarser ``kind`` that contains this one."""
        if kind == self.kind:
            return self
        if _MONTHS_PER[kind] < _MONTHS_PER[self.kind]:
            raise PeriodError(f"a {self.kind} is not inside a {kind}")
        return PeriodRef(self.year, kind, (self.first_month - 1) // _MONTHS_PER[kind] + 1)

    def children(self, kind: str) -> list[PeriodRef]:
        """The periods of a finer ``kind`` that make up this one, in order."""
        if _MONTHS_PER[kind] > _MONTHS_PER[self.kind]:
            raise PeriodError(f"a {kind} is not inside a {self.kind}")
        step = _MONTHS_PER[kind]
        first = (self.first_month - 1) // step + 1
        count = _MONTHS_PER[self.kind] // step
        return [PeriodRef(self.year, kind, n) for n in range(first, first + count)]

    def next(self) -> PeriodRef:
        """The period of the same kind that follows this one."""
        if self.number < _KIND_COUNT[self.kind]:
            return PeriodRef(self.year, self.kind, self.number + 1)
        return PeriodRef(self.year + 1, self.kind, 1)

    def __str__(self) -> str:
        return self.code


def parse_period(code: str) -> PeriodRef:
    """Parse ``2025-03``, ``2025-Q1``, ``2025-H1`` or ``2025``; anything else is an error."""
    text = code.strip()
    for pattern, kind in _PATTERNS:
        match = pattern.match(text)
        if match:
            year = int(match.group(1))
            number = int(match.group(2)) if match.lastindex and match.lastindex > 1 else 1
            return PeriodRef(year, kind, number)
    raise PeriodError(f"period {code!r} is not one of YYYY-MM, YYYY-Qn, YYYY-Hn or YYYY")


def parse_period_or_none(code: str) -> PeriodRef | None:
    """``parse_period``, or None for a code that is not a period (for filtering mixed lists)."""
    try:
        return parse_period(code)
    except PeriodError:
        return None


def periods_between(kind: str, first: PeriodRef, last: PeriodRef) -> list[PeriodRef]:
    """Every period of ``kind`` from the one containing ``first`` to the one containing ``last``."""
    current, stop = first.parent(kind), last.parent(kind)
    result = []
    while current.start <= stop.start:
        result.append(current)
        current = current.next()
    return result
