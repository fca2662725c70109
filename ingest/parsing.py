"""Reading published tables: CSV rows with their line numbers, periods and printed numbers.

Everything is read as text and converted by explicit rules, never by a library's guess:
pandas' defaults would turn the string "NA" (Namibia) into a missing value.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from hub.periods import PeriodError, PeriodRef, parse_period

NOT_AVAILABLE = "N/A"  # how publishers print "not available"; "NA" is a country code, not this
_COUNT = re.compile(r"^\d{1,3}(,\d{3})+$|^\d+$")
_DECIMAL = re.compile(r"^\d+\.\d+$")
_PERCENT = re.compile(r"^(\d+(?:\.\d+)?)\s*%$")
_PERIOD = re.compile(r"^(\d{4})\s*([QH])([1-4])$")


class CellError(ValueError):
    """A cell that no rule reads; the caller adds the file, line and column."""


@dataclass(frozen=True)
class CsvRow:
    """One data row of a CSV file and its 1-based line number (the header is line 1)."""

    line: int
    cells: dict[str, str]


@dataclass(frozen=True)
class CsvTable:
    header: tuple[str, ...]
    rows: tuple[CsvRow, ...]


@dataclass(frozen=True)
class PrintedValue:
    """A number as printed: ``value`` None means published as not available."""

    value: Decimal | None
    is_plain: bool  # printed as a plain number, stored without conversion


def read_csv(path: Path) -> CsvTable:
    """Every row as strings keyed by the header; a ragged row or repeated column is an error."""
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle)
        header = tuple(next(reader, ()))
        if not header:
            raise CellError("the file is empty (no header line)")
        if len(set(header)) != len(header):
            raise CellError(f"the header names a column twice: {', '.join(header)}")
        rows = []
        for cells in reader:
            if not cells:
                continue
            if len(cells) != len(header):
                raise CellError(f"line {reader.line_num}: {len(cells)} cells for {len(header)} columns")
            rows.append(CsvRow(reader.line_num, dict(zip(header, cells, strict=True))))
    return CsvTable(header, tuple(rows))


def parse_published_period(text: str) -> PeriodRef:
    """Read the period forms publishers use ("2023", "2023 H2", "2023 Q4", "2024Q2")."""
    match = _PERIOD.match(text.strip())
    code = f"{match.group(1)}-{match.group(2)}{match.group(3)}" if match else text
    try:
        return parse_period(code)
    except PeriodError as exc:
        raise CellError(str(exc)) from None


def parse_printed_number(text: str, scale: Decimal | None = None) -> PrintedValue | None:
    """A printed number as a value: None for an empty cell (nothing published).

    "1,234" is 1234, "97.80%" is 0.978, "N/A" is a value not available. ``scale`` is how a
    column's plain numbers convert (0.01 for percentages printed as 0-100, 24 for days into
    hours); it is declared per column, never inferred from the value.
    """
    raw = text.strip()
    if not raw:
        return None
    if raw == NOT_AVAILABLE:
        return PrintedValue(None, is_plain=False)
    percent = _PERCENT.match(raw)
    if percent:
        if scale is not None:
            raise CellError(f"{raw!r} carries a % sign but the column declares a scale")
        return PrintedValue(Decimal(percent.group(1)) / 100, is_plain=False)
    if _COUNT.match(raw):
        number = Decimal(raw.replace(",", ""))
    elif _DECIMAL.match(raw):
        number = Decimal(raw)
    else:
        raise CellError(f"{raw!r} is not a number, a percentage or {NOT_AVAILABLE!r}")
    if scale is None:
        return PrintedValue(number, is_plain=True)
    return PrintedValue(number * scale, is_plain=False)
