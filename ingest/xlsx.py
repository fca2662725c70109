"""XLSX submissions, read safely: the ZIP is inspected before any XML parser sees it.

An XLSX file is a ZIP of XML parts, so it carries the risks of both: a zip bomb (a small file
that unpacks to gigabytes, or a directory of millions of entries), XML entity expansion
("billion laughs") and external entities (XXE), and macros. The checks run in this order, each
on bytes only, and the first that fails rejects the file:

1. ZIP magic and a readable central directory (an HTML page or a CSV renamed ``.xlsx`` is
   ``xlsx.not_a_workbook``); the entry count read from the end-of-central-directory record
   before ``zipfile`` builds its index (``xlsx.too_many_entries``);
2. declared sizes: the total unpacked size and, for entries over 1 MB, the compression ratio
   (``xlsx.zip_bomb``; ``zipfile`` enforces the declared size when it inflates, so a lying
   header fails its CRC check instead of inflating further);
3. macros: a ``vbaProject.bin`` anywhere or a macro-enabled content type (``xlsx.macros``);
4. ``[Content_Types].xml`` and ``xl/workbook.xml`` present (``xlsx.not_a_workbook``);
5. every XML part scanned, in bounded chunks, for ``<!DOCTYPE`` / ``<!ENTITY``
   (``xlsx.xml_entities``). openpyxl also parses through defusedxml when it is installed (it
   is pinned), which would raise on both; that exception is mapped to the same rule.

Then openpyxl reads (``read_only=True``, ``keep_links=False``) the sheet named
``observations`` or ``events`` if there is one, else the first sheet: a header row, then one
record per row, every cell turned into the text a CSV cell would hold, so the pipeline applies
the same checks to both. Decisions:

- Formulas are refused (``cell.formula``): the workbook is read with ``data_only=False`` so a
  formula cell is recognisable, and the value a formula last computed (the cached value) is
  never trusted: it may be stale and it is not what the submitter typed.
- Whole numbers are written without ``.0`` (``1250.0`` -> ``1250``); other numbers in their
  shortest round-trip form (``0.82``).
- A date or time cell has no UTC offset (XLSX has no time zones): in ``received_at`` /
  ``actioned_at`` it is ``xlsx.datetime_without_offset`` (type the time as ISO 8601 text with
  its offset); in any other column (e.g. a period Excel turned into a date) ``xlsx.type``, as
  are booleans and error cells (``#DIV/0!``).
- Fully empty rows at the end are ignored; an empty row between records is
  ``xlsx.empty_row``; a filled cell beyond the header is ``xlsx.cell_outside_header``.

No problem ever repeats a cell's value; rows are sheet row numbers (the header is row 1).
"""

from __future__ import annotations

import io
import math
import struct
import warnings
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

import pyarrow as pa

from ingest.report import Problem, ValidationReport

ZIP_MAGIC = b"PK\x03\x04"
XLSX_SUFFIXES = (".xlsx", ".xlsm", ".xls")
MAX_ENTRIES = 1000
MAX_UNCOMPRESSED_BYTES = 100 * 1024 * 1024
MAX_RATIO = 100
RATIO_MIN_BYTES = 1024 * 1024  # small parts compress well and cannot hurt; the ratio applies above this
MAX_ROWS = 100_000  # openpyxl reads some 10^4 rows per second: larger files belong in CSV
MAX_COLUMNS = 64
TIMESTAMP_COLUMNS = frozenset({"received_at", "actioned_at"})
SHEET_NAMES = ("observations", "events")
_SCAN_CHUNK = 1 << 20
_XML_SUFFIXES = (".xml", ".rels", ".vml")
_FORBIDDEN_XML = (b"<!doctype", b"<!entity")

_HINTS = {
    "xlsx.not_a_workbook": "the file is not an Excel workbook (.xlsx): save it from Excel or LibreOffice "
    "as 'Excel Workbook (.xlsx)', or send CSV",
    "xlsx.too_many_entries": f"a workbook has far fewer than {MAX_ENTRIES} parts: save it again from "
    "Excel or LibreOffice",
    "xlsx.zip_bomb": "the workbook unpacks to an implausible size: save it again, or send CSV",
    "xlsx.macros": "workbooks with macros are not accepted: save as 'Excel Workbook (.xlsx)' without macros",
    "xlsx.xml_entities": "the workbook holds XML document type or entity declarations, which Excel never "
    "writes: save it again from Excel or LibreOffice",
    "xlsx.no_sheet": "the workbook has no worksheet",
    "xlsx.too_many_rows": f"at most {MAX_ROWS:,} rows per workbook: send larger files as CSV",
    "xlsx.empty_row": "remove empty rows between records",
    "xlsx.cell_outside_header": "a filled cell has no column name above it: remove it or name the column",
    "cell.formula": "formulas are not accepted: paste the values only (Paste special > Values)",
    "xlsx.type": "format this cell as text or a plain number (dates, TRUE/FALSE and errors are not accepted)",
    "xlsx.datetime_without_offset": "an Excel date/time has no UTC offset: type the time as ISO 8601 text "
    "with its offset, e.g. 2025-03-01T09:30:00+01:00, in a cell formatted as text",
    "format.bad_header": "the first row holds the column names: text, present and unique",
    "file.empty": "the file is empty",
    "file.empty_sheet": "the sheet holds no record under the header",
}


@dataclass
class XlsxRead:
    """What was read: the table of text cells (None when rejected) and every problem found."""

    table: pa.Table | None = None
    problems: list[Problem] = field(default_factory=list)
    sheet_kind: str = "aggregate"  # "events" when the header names event columns

    def add(self, row: int, column: str, rule: str) -> None:
        self.problems.append(Problem(row, column, rule, _HINTS[rule]))


def looks_like_xlsx(data: bytes, suffix: str) -> bool:
    """True for a ZIP (every XLSX is one) or a file named like a workbook, whatever it holds."""
    return data[:4] == ZIP_MAGIC or suffix.lower() in XLSX_SUFFIXES


# --- the container, before any XML parser ----------------------------------------------------


def _declared_entries(data: bytes) -> int | None:
    """Entry count of the end-of-central-directory record, read without building the ZIP index."""
    tail_start = max(0, len(data) - (65535 + 22))
    position = data.rfind(b"PK\x05\x06", tail_start)
    if position < 0 or position + 22 > len(data):
        return None
    (total,) = struct.unpack_from("<H", data, position + 10)
    return None if total == 0xFFFF else int(total)  # 0xFFFF: a ZIP64 count, zipfile reads it


def _scan_part(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> bool:
    """True when the part holds a DOCTYPE or ENTITY declaration (any case), read in bounded chunks."""
    overlap = max(len(token) for token in _FORBIDDEN_XML) - 1
    previous = b""
    with archive.open(info) as part:
        while chunk := part.read(_SCAN_CHUNK):
            window = (previous + chunk).lower()
            if any(token in window for token in _FORBIDDEN_XML):
                return True
            previous = window[-overlap:]
    return False


def inspect_container(data: bytes, result: XlsxRead) -> bool:
    """The ZIP-level checks (1-5 of the module docstring); True when the file may be parsed."""
    if data[:4] != ZIP_MAGIC:
        result.add(0, "", "xlsx.not_a_workbook")
        return False
    declared = _declared_entries(data)
    if declared is not None and declared > MAX_ENTRIES:
        result.add(0, "", "xlsx.too_many_entries")
        return False
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError, NotImplementedError):
        result.add(0, "", "xlsx.not_a_workbook")
        return False
    with archive:
        entries = archive.infolist()
        if len(entries) > MAX_ENTRIES:
            result.add(0, "", "xlsx.too_many_entries")
            return False
        total = sum(info.file_size for info in entries)
        inflated = any(
            info.file_size > RATIO_MIN_BYTES and info.file_size > MAX_RATIO * max(info.compress_size, 1)
            for info in entries
        )
        if total > MAX_UNCOMPRESSED_BYTES or inflated:
            result.add(0, "", "xlsx.zip_bomb")
            return False
        names = {info.filename for info in entries}
        if any(name.lower().rsplit("/", 1)[-1] == "vbaproject.bin" for name in names):
            result.add(0, "", "xlsx.macros")
            return False
        if "[Content_Types].xml" not in names or "xl/workbook.xml" not in names:
            result.add(0, "", "xlsx.not_a_workbook")
            return False
        try:
            content_types = archive.read("[Content_Types].xml").lower()
            if b"macroenabled" in content_types or b"vbaproject" in content_types:
                result.add(0, "", "xlsx.macros")
                return False
            for info in entries:
                if info.filename.lower().endswith(_XML_SUFFIXES) and _scan_part(archive, info):
                    result.add(0, "", "xlsx.xml_entities")
                    return False
        except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError, RuntimeError):
            result.add(0, "", "xlsx.not_a_workbook")  # bad CRC (a lying size), encrypted part, ...
            return False
    return True


# --- the sheet --------------------------------------------------------------------------------


def _number_text(value: int | float) -> str:
    """A number as the text a CSV cell would hold: 1250.0 -> '1250', 0.82 -> '0.82'."""
    if isinstance(value, int):
        return str(value)
    if math.isfinite(value) and value.is_integer() and abs(value) < 2**53:
        return str(int(value))
    return repr(value)


def _cells(sheet: Any) -> Iterator[tuple[int, list[Any]]]:
    """(sheet row number, cells) of each row; rows openpyxl skips keep their numbers."""
    for row in sheet.iter_rows():
        cells = [cell for cell in row if cell.__class__.__name__ != "EmptyCell"]
        if not cells:
            continue
        yield int(cells[0].row), list(row)


def _is_blank(cell: Any) -> bool:
    value = getattr(cell, "value", None)
    return value is None or (isinstance(value, str) and value == "")


def _text(cell: Any, column: str, line: int, result: XlsxRead) -> str:
    """One cell as text, or '' after reporting why it cannot be one. Never echoes the value."""
    value = getattr(cell, "value", None)
    kind = getattr(cell, "data_type", None)
    if value is None:
        return ""
    if kind == "f":
        result.add(line, column, "cell.formula")
        return ""
    if kind == "e" or isinstance(value, bool):
        result.add(line, column, "xlsx.type")
        return ""
    if isinstance(value, datetime | date | time | timedelta):
        rule = "xlsx.datetime_without_offset" if column in TIMESTAMP_COLUMNS else "xlsx.type"
        result.add(line, column, rule)
        return ""
    if isinstance(value, int | float):
        return _number_text(value)
    if isinstance(value, str):
        if value.startswith("=") and kind != "s":  # a formula string that escaped typing
            result.add(line, column, "cell.formula")
            return ""
        return value
    result.add(line, column, "xlsx.type")
    return ""


def _header(cells: list[Any], result: XlsxRead) -> list[str] | None:
    names: list[str] = []
    for cell in cells:
        value = getattr(cell, "value", None)
        names.append(value if isinstance(value, str) else "" if value is None else "\x00")
    while names and names[-1] == "":
        names.pop()
    if not names or len(names) > MAX_COLUMNS or len(set(names)) != len(names):
        result.add(1, "", "format.bad_header")
        return None
    if any(name in ("", "\x00") for name in names):
        result.add(1, "", "format.bad_header")
        return None
    return names


def _select_sheet(workbook: Any) -> Any:
    for sheet in workbook.worksheets:
        if sheet.title.strip().lower() in SHEET_NAMES:
            return sheet
    return workbook.worksheets[0] if workbook.worksheets else None


def _read_sheet(sheet: Any, max_rows: int, result: XlsxRead) -> pa.Table | None:
    rows = _cells(sheet)
    first = next(rows, None)
    if first is None:
        result.add(0, "", "file.empty")
        return None
    header_line, header_cells = first
    if header_line != 1:
        result.add(1, "", "format.bad_header")
        return None
    names = _header(header_cells, result)
    if names is None:
        return None
    if {"case_ref", "received_at"} & set(names):
        result.sheet_kind = "events"
    columns: list[list[str]] = [[] for _ in names]
    expected = 2
    for line, cells in rows:
        if line - 1 > max_rows:
            result.add(line, "", "xlsx.too_many_rows")
            return None
        if all(_is_blank(cell) for cell in cells):
            continue  # openpyxl yields rows whose cells are all empty but formatted
        if line != expected:  # empty rows in between: reported once each, then read on
            for gap in range(expected, line):
                result.add(gap, "", "xlsx.empty_row")
            for values in columns:
                values.extend([""] * (line - expected))
        expected = line + 1
        for position, cell in enumerate(cells):
            if position >= len(names):
                if not _is_blank(cell):
                    result.add(line, "", "xlsx.cell_outside_header")
                continue
            columns[position].append(_text(cell, names[position], line, result))
        for position in range(len(cells), len(names)):
            columns[position].append("")
    if expected == 2:
        result.add(0, "", "file.empty_sheet")
        return None
    return pa.table(
        {name: pa.array(values, pa.string()) for name, values in zip(names, columns, strict=True)}
    )


def _caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, kind):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def read_xlsx(data: bytes, *, max_rows: int = MAX_ROWS) -> XlsxRead:
    """An XLSX submission as a table of text cells (sheet row numbers: records start at 2), or
    the problems that reject it. The container is checked before openpyxl parses anything."""
    from defusedxml import DefusedXmlException

    result = XlsxRead()
    if not data:
        result.add(0, "", "file.empty")
        return result
    if not inspect_container(data, result):
        return result
    from openpyxl import load_workbook

    workbook = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. "data validation extension not supported"
            workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=False, keep_links=False)
            sheet = _select_sheet(workbook)
            if sheet is None:
                result.add(0, "", "xlsx.no_sheet")
                return result
            table = _read_sheet(sheet, max_rows, result)
    except Exception as exc:  # openpyxl raises many types on malformed parts; the message may quote cells
        result.problems.clear()
        entities = _caused_by(exc, DefusedXmlException)  # openpyxl may wrap it in a ValueError
        result.add(0, "", "xlsx.xml_entities" if entities else "xlsx.not_a_workbook")
        return result
    finally:
        if workbook is not None:
            workbook.close()
    result.table = table  # with cell problems in ``result.problems`` the caller rejects the file
    return result


def read_xlsx_for_pipeline(data: bytes, report: ValidationReport) -> tuple[pa.Table, int] | None:
    """For ``ingest.pipeline._read``: the sheet as the CSV path's all-text table and its first
    record's row (2), or None with the problems added to ``report``."""
    read = read_xlsx(data)
    report.problems.extend(read.problems)
    report.file_format = "events" if read.sheet_kind == "events" else "aggregate-xlsx"
    if read.table is None or not report.ok:
        return None
    return read.table, 2
