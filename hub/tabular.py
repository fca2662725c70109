"""Tables as files a reader downloads: CSV (RFC 4180, UTF-8), XLSX and JSON.

A cell a spreadsheet would read as a formula (starting with = + - @, a tab or a carriage
return) is neutralised with a leading apostrophe in CSV and XLSX, so opening a download never
runs anything. Numbers are left as numbers.
"""

from __future__ import annotations

import io
from typing import Any

import pandas as pd

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
XLSX_MAX_ROWS = 1_048_575  # a worksheet's rows, less the header
MEDIA_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "json": "application/json",
}


class TooLargeForFormat(ValueError):
    """The table does not fit the format (an XLSX sheet holds about a million rows)."""


def neutralise(value: Any) -> Any:
    """A text cell that would start a formula, made inert; anything else unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def _text_safe(frame: pd.DataFrame) -> pd.DataFrame:
    safe = frame.copy()
    for name in safe.columns:
        if not (pd.api.types.is_numeric_dtype(safe[name]) or pd.api.types.is_bool_dtype(safe[name])):
            safe[name] = safe[name].map(neutralise, na_action="ignore")
    return safe


def to_csv(frame: pd.DataFrame) -> bytes:
    """RFC 4180: comma, double quotes where needed, CRLF line ends, UTF-8."""
    return _text_safe(frame).to_csv(index=False, lineterminator="\r\n").encode("utf-8")


def to_xlsx(frame: pd.DataFrame, sheet: str = "data") -> bytes:
    if len(frame) > XLSX_MAX_ROWS:
        raise TooLargeForFormat(f"{len(frame):,} rows do not fit an XLSX sheet ({XLSX_MAX_ROWS:,} at most)")
    buffer = io.BytesIO()
    with pd.ExcelWriter(buffer, engine="openpyxl") as writer:
        _text_safe(frame).to_excel(writer, sheet_name=sheet[:31], index=False)
    return buffer.getvalue()


def to_json(frame: pd.DataFrame) -> bytes:
    """A list of records; a missing value is null (never NaN, which is not JSON)."""
    return frame.to_json(orient="records", force_ascii=False, date_format="iso").encode("utf-8")


WRITERS = {"csv": to_csv, "xlsx": to_xlsx, "json": to_json}
