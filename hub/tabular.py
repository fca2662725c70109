"""Tables as files a reader downloads or an export writes: CSV (RFC 4180, UTF-8), XLSX, JSON.

A cell a spreadsheet would read as a formula (starting with = + - @, a tab or a carriage
return) is neutralised with a leading apostrophe in CSV and XLSX, so opening a download never
runs anything. Numbers are left as numbers. The writers are C-backed (pyarrow's CSV writer,
pandas' JSON encoder, an XLSX writer on Arrow's compute kernels): an export writes tables of
a million rows.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections.abc import Mapping, Sequence
from typing import IO, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
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
    sheet goes on in ``name (2)``, ...). Header row in bold and frozen; missing values empty.

    The sheets' XML is built column by column with Arrow's compute kernels and texts go to
    one shared-strings table: xlsxwriter, writing cell by cell in Python, took 320 s for the
    demo release's 37 million cells (docs/benchmarks.md, "Exports"); this takes seconds."""
    sheets = {"about": about} if about is not None else {}
    strings = _SharedStrings()
    names: list[str] = []
    with zipfile.ZipFile(
        sink, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1, allowZip64=True
    ) as book:
        for name, frame in {**sheets, **tables}.items():
            safe = _text_safe(frame)
            for sheet_name, start, end in _sheet_names(name, len(safe)):
                names.append(sheet_name)
                with book.open(f"xl/worksheets/sheet{len(names)}.xml", "w", force_zip64=True) as sheet:
                    _write_sheet(sheet, safe.iloc[start:end], strings)
        book.writestr("xl/sharedStrings.xml", strings.xml())
        for member, content in _workbook_parts(names).items():
            book.writestr(member, content)


XLSX_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
XLSX_RELS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
XLSX_CHUNK_ROWS = 100_000
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _xml_text(text: str) -> str:
    """Text for an XML text node: escaped, and the characters XML 1.0 cannot hold written as
    Excel's own _xHHHH_ escapes."""
    escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _XML_ILLEGAL.sub(lambda m: f"_x{ord(m.group()):04X}_", escaped)


class _SharedStrings:
    """The workbook's shared-strings table: each distinct text once."""

    def __init__(self) -> None:
        self.index: dict[str, int] = {}

    def codes(self, texts: Sequence[Any]) -> np.ndarray:
        return np.fromiter((self.index.setdefault(str(t), len(self.index)) for t in texts), dtype=np.int64)

    def xml(self) -> bytes:
        items = "".join(f'<si><t xml:space="preserve">{_xml_text(text)}</t></si>' for text in self.index)
        head = f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<sst xmlns="{XLSX_MAIN}" count="{len(self.index)}" uniqueCount="{len(self.index)}">'
        return (head + items + "</sst>").encode("utf-8")


def _cells(column: pd.Series, strings: _SharedStrings) -> pa.Array:
    """A column as XML cell elements, one string per row; a missing value is an empty cell."""
    if pd.api.types.is_bool_dtype(column):
        values = pc.cast(pa.array(column.astype("boolean"), type=pa.bool_()), pa.int8())
        cells = pc.binary_join_element_wise('<c t="b"><v>', pc.cast(values, pa.string()), "</v></c>", "")
    elif pd.api.types.is_numeric_dtype(column):
        values = pa.array(column, from_pandas=True)
        cells = pc.binary_join_element_wise("<c><v>", pc.cast(values, pa.string()), "</v></c>", "")
    else:
        codes, uniques = pd.factorize(column, use_na_sentinel=True)
        shared = strings.codes(list(uniques))
        indices = pa.array(np.where(codes >= 0, shared[np.maximum(codes, 0)], 0), mask=codes < 0)
        cells = pc.binary_join_element_wise('<c t="s"><v>', pc.cast(indices, pa.string()), "</v></c>", "")
    return pc.fill_null(cells, "<c/>")


def _write_sheet(sheet: IO[bytes], frame: pd.DataFrame, strings: _SharedStrings) -> None:
    header = "".join(
        f'<c t="s" s="1"><v>{code}</v></c>' for code in strings.codes([str(c) for c in frame.columns])
    )
    sheet.write(
        f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<worksheet xmlns="{XLSX_MAIN}">'
        '<sheetViews><sheetView workbookViewId="0"><pane ySplit="1" topLeftCell="A2" activePane="bottomLeft" '
        'state="frozen"/></sheetView></sheetViews><sheetData>'
        f'<row r="1">{header}</row>'.encode()
    )
    for start in range(0, len(frame), XLSX_CHUNK_ROWS):
        chunk = frame.iloc[start : start + XLSX_CHUNK_ROWS]
        numbers = pc.cast(pa.array(np.arange(start + 2, start + 2 + len(chunk))), pa.string())
        rows = pc.binary_join_element_wise(
            '<row r="', numbers, '">', *[_cells(chunk[c], strings) for c in chunk.columns], "</row>", ""
        )
        sheet.write(_string_bytes(rows))
    sheet.write(b"</sheetData></worksheet>")


def _string_bytes(array: pa.Array) -> bytes:
    """The characters of a string array without nulls, end to end (its value buffer)."""
    array = array.cast(pa.large_string()) if array.type != pa.large_string() else array
    offsets = np.frombuffer(array.buffers()[1], dtype=np.int64)[array.offset : array.offset + len(array) + 1]
    return array.buffers()[2].to_pybytes()[offsets[0] : offsets[-1]]


def _workbook_parts(names: Sequence[str]) -> dict[str, str]:
    """The workbook's fixed parts: content types, relationships, the sheet list, two styles."""
    sheets = "".join(
        f'<sheet name="{_xml_text(name).replace(chr(34), "&quot;")}" sheetId="{i}" r:id="rId{i}"/>'
        for i, name in enumerate(names, start=1)
    )
    relations = "".join(
        f'<Relationship Id="rId{i}" Type="{XLSX_RELS}/worksheet" Target="worksheets/sheet{i}.xml"/>'
        for i in range(1, len(names) + 1)
    )
    n = len(names)
    overrides = "".join(
        f'<Override PartName="/xl/worksheets/sheet{i}.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
        for i in range(1, n + 1)
    )
    head = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    package = "http://schemas.openxmlformats.org/package/2006"
    return {
        "[Content_Types].xml": head
        + f'<Types xmlns="{package}/content-types">'
        + '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        + '<Default Extension="xml" ContentType="application/xml"/>'
        + '<Override PartName="/xl/workbook.xml" '
        + 'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
        + overrides
        + '<Override PartName="/xl/styles.xml" '
        + 'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>'
        + '<Override PartName="/xl/sharedStrings.xml" '
        + 'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/>'
        + "</Types>",
        "_rels/.rels": head
        + f'<Relationships xmlns="{package}/relationships">'
        + f'<Relationship Id="rId1" Type="{XLSX_RELS}/officeDocument" Target="xl/workbook.xml"/>'
        + "</Relationships>",
        "xl/workbook.xml": head
        + f'<workbook xmlns="{XLSX_MAIN}" xmlns:r="{XLSX_RELS}"><sheets>{sheets}</sheets></workbook>',
        "xl/_rels/workbook.xml.rels": head
        + f'<Relationships xmlns="{package}/relationships">{relations}'
        + f'<Relationship Id="rId{n + 1}" Type="{XLSX_RELS}/styles" Target="styles.xml"/>'
        + f'<Relationship Id="rId{n + 2}" Type="{XLSX_RELS}/sharedStrings" Target="sharedStrings.xml"/>'
        + "</Relationships>",
        "xl/styles.xml": head
        + f'<styleSheet xmlns="{XLSX_MAIN}">'
        + '<fonts count="2"><font><sz val="11"/><name val="Calibri"/></font>'
        + '<font><b/><sz val="11"/><name val="Calibri"/></font></fonts>'
        + '<fills count="2"><fill><patternFill patternType="none"/></fill>'
        + '<fill><patternFill patternType="gray125"/></fill></fills>'
        + '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
        + '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
        + '<cellXfs count="2"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
        + '<xf numFmtId="0" fontId="1" fillId="0" borderId="0" xfId="0" applyFont="1"/></cellXfs>'
        + '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>'
        + "</styleSheet>",
    }


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
