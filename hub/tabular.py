"""Tables as files a reader downloads or an export writes: CSV (RFC 4180, UTF-8), XLSX, JSON.

A cell a spreadsheet would read as a formula (starting with = + - @, a tab or a carriage
return) is neutralised with a leading apostrophe in CSV and XLSX, so opening a download never
runs anything. Numbers are left as numbers. The writers are C-backed (pyarrow's CSV writer,
pandas' JSON encoder, xlsxwriter in constant-memory mode): an export writes tables of a
million rows.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from typing import IO, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv

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


def _neutralised(column: pd.Series) -> pd.Series:
    """``column`` with its formula-like texts neutralised (looked up once per distinct value)."""
    risky = {
        value: "'" + value
        for value in pd.unique(column.dropna())
        if isinstance(value, str) and value.startswith(FORMULA_STARTS)
    }
    return column.replace(risky) if risky else column


def _text_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """Formula-like texts neutralised; an infinite number (an open-ended bucket's upper edge)
    written as missing, as CSV readers, JSON and XLSX have no common spelling for it."""
    safe = frame.copy(deep=False)
    for name in safe.columns:
        column = safe[name]
        if pd.api.types.is_float_dtype(column):
            infinite = np.isinf(column.to_numpy(dtype="float64", na_value=np.nan))
            if infinite.any():
                safe[name] = column.mask(infinite)
        elif not (pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column)):
            safe[name] = _neutralised(column)
    return safe


CSV_OPTIONS = pa_csv.WriteOptions(quoting_style="needed", eol=b"\r\n", batch_size=65_536)


def write_csv(frame: pd.DataFrame, sink: IO[bytes]) -> None:
    """RFC 4180: comma, text in double quotes (doubled inside), CRLF line ends, UTF-8; a missing
    value is an empty field."""
    table = pa.Table.from_pandas(_text_safe(frame), preserve_index=False)
    pa_csv.write_csv(table, sink, CSV_OPTIONS)


def to_csv(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    write_csv(frame, buffer)
    return buffer.getvalue()


def to_xlsx(frame: pd.DataFrame, sheet: str = "data") -> bytes:
    if len(frame) > XLSX_MAX_ROWS:
        raise TooLargeForFormat(f"{len(frame):,} rows do not fit an XLSX sheet ({XLSX_MAX_ROWS:,} at most)")
    buffer = io.BytesIO()
    write_xlsx_workbook({sheet: frame}, buffer)
    return buffer.getvalue()


def _sheet_names(name: str, rows: int) -> list[tuple[str, int, int]]:
    """(sheet name, first row, end row) for a table, split over sheets when longer than one."""
    parts = max(1, -(-rows // XLSX_MAX_ROWS))
    return [
        (
            name[:31] if part == 0 else f"{name[:25]} ({part + 1})",
            part * XLSX_MAX_ROWS,
            min(rows, (part + 1) * XLSX_MAX_ROWS),
        )
        for part in range(parts)
    ]


def write_xlsx_workbook(
    tables: Mapping[str, pd.DataFrame], sink: IO[bytes], about: pd.DataFrame | None = None
) -> None:
    """One workbook: an optional ``about`` sheet, then a sheet per table (a table longer than a
    sheet goes on in ``name (2)``, ...). Header row in bold and frozen; missing values empty."""
    import xlsxwriter

    workbook = xlsxwriter.Workbook(
        sink, {"constant_memory": True, "in_memory": False, "nan_inf_to_errors": False}
    )
    bold = workbook.add_format({"bold": True})
    sheets = {"about": about} if about is not None else {}
    for name, frame in {**sheets, **tables}.items():
        safe = _text_safe(frame)
        header = [str(c) for c in safe.columns]
        columns = [_cells(safe[c]) for c in safe.columns]
        for sheet_name, start, end in _sheet_names(name, len(safe)):
            sheet = workbook.add_worksheet(sheet_name)
            sheet.write_row(0, 0, header, bold)
            sheet.freeze_panes(1, 0)
            for row in range(start, end):
                sheet.write_row(row - start + 1, 0, [column[row] for column in columns])
    workbook.close()


def _cells(column: pd.Series) -> list[Any]:
    """A column as Python values an XLSX cell takes: None for missing (left empty)."""
    return column.to_numpy(dtype=object, na_value=None).tolist()


def write_json_table(frame: pd.DataFrame, sink: IO[bytes], header: Mapping[str, Any] | None = None) -> None:
    """``{...header, "columns": [{name, type}], "rows": [[...], ...]}``: rows as arrays, null for
    a missing value (never NaN, which is not JSON)."""
    columns = [{"name": str(c), "type": field_type(frame[c])} for c in frame.columns]
    head = json.dumps({**(header or {}), "columns": columns}, ensure_ascii=False)
    sink.write(head[:-1].encode("utf-8") + b', "rows": ')
    sink.write(_finite(frame).to_json(orient="values", force_ascii=False, date_format="iso").encode("utf-8"))
    sink.write(b"}")


def _finite(frame: pd.DataFrame) -> pd.DataFrame:
    """Infinite numbers as missing (JSON has no infinity); texts kept exactly."""
    finite = frame.copy(deep=False)
    for name in finite.columns:
        if pd.api.types.is_float_dtype(finite[name]):
            finite[name] = finite[name].mask(
                np.isinf(finite[name].to_numpy(dtype="float64", na_value=np.nan))
            )
    return finite


def field_type(series: pd.Series) -> str:
    """The Frictionless/JSON Table Schema type of a column."""
    if pd.api.types.is_bool_dtype(series):
        return "boolean"
    if pd.api.types.is_integer_dtype(series):
        return "integer"
    if pd.api.types.is_numeric_dtype(series):
        return "number"
    if pd.api.types.is_datetime64_any_dtype(series):
        return "datetime"
    return "string"


def to_json(frame: pd.DataFrame) -> bytes:
    """A list of records; a missing value is null (never NaN, which is not JSON)."""
    return frame.to_json(orient="records", force_ascii=False, date_format="iso").encode("utf-8")


WRITERS = {"csv": to_csv, "xlsx": to_xlsx, "json": to_json}
