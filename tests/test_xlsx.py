"""XLSX reading (ingest/xlsx.py): the container checks, defusedxml underneath openpyxl, and cells
turned into the text the CSV path produces. The hostile files themselves are in the corpus
(tests/corpus, test_corpus.py); these tests pin the behaviour that the corpus cannot show.
"""

from __future__ import annotations

import io
import zipfile
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from defusedxml import DefusedXmlException
from hubcli import HubCommands
from openpyxl import Workbook, load_workbook
from openpyxl.styles import Font

from hub.settings import REPO_ROOT
from ingest import xlsx as xlsx_module
from ingest.report import ValidationReport
from ingest.xlsx import looks_like_xlsx, read_xlsx, read_xlsx_for_pipeline

CORPUS = REPO_ROOT / "tests" / "corpus" / "files"
HEADER = ["reporter", "period", "metric", "value", "unit"]


def workbook_bytes(*sheets: tuple[str, list[list[Any]]]) -> bytes:
    book = Workbook()
    first = book.active
    assert first is not None
    book.remove(first)
    for title, rows in sheets:
        sheet = book.create_sheet(title)
        for row in rows:
            sheet.append(row)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def rules(data: bytes, **kwargs: Any) -> list[tuple[int, str, str]]:
    return [(p.row, p.column, p.rule) for p in read_xlsx(data, **kwargs).problems]


def test_numbers_become_the_text_a_csv_cell_would_hold() -> None:
    data = workbook_bytes(
        ("Sheet1", [HEADER, ["org", "2025-Q1", "m", 1250.0, "count"], ["org", "2025", "m", 0.82, "share"]]),
    )
    data2 = workbook_bytes(
        ("Sheet1", [HEADER, ["org", "2025", "m", 7, "count"], ["org", "2025", "m", 1e-7, "x"]])
    )
    first, second = read_xlsx(data), read_xlsx(data2)
    assert not first.problems and not second.problems
    assert first.table is not None and second.table is not None
    assert first.table["value"].to_pylist() == ["1250", "0.82"]
    assert second.table["value"].to_pylist() == ["7", "1e-07"]
    assert first.table.column_names == HEADER
    assert first.table.schema.types == [first.table.schema.types[0]] * len(HEADER)  # all strings


def test_the_sheet_named_observations_is_read_and_namibia_stays() -> None:
    data = workbook_bytes(
        ("read me", [["fill in the next sheet"]]),
        ("observations", [[*HEADER, "country"], ["org", "2025-Q1", "m", 40, "count", "NA"]]),
    )
    read = read_xlsx(data)
    assert read.table is not None and read.table["country"].to_pylist() == ["NA"]


def test_trailing_formatted_rows_are_ignored_and_gaps_reported() -> None:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(HEADER)
    sheet.append(["org", "2025-Q1", "m", 1, "count"])
    sheet.append(["org", "2025-Q2", "m", 2, "count"])
    for row in range(4, 40):  # styled but empty rows, as spreadsheets leave them
        sheet.cell(row=row, column=1).font = Font(bold=True)
    buffer = io.BytesIO()
    book.save(buffer)
    read = read_xlsx(buffer.getvalue())
    assert not read.problems and read.table is not None and read.table.num_rows == 2

    sheet.cell(row=6, column=1, value="org")
    buffer = io.BytesIO()
    book.save(buffer)
    assert rules(buffer.getvalue()) == [(4, "", "xlsx.empty_row"), (5, "", "xlsx.empty_row")]


def test_types_a_csv_cannot_have_are_refused_by_row_and_column() -> None:
    data = workbook_bytes(
        (
            "Sheet1",
            [
                HEADER,
                ["org", datetime(2025, 3, 1), "m", 1, "count"],
                ["org", "2025-Q1", "m", True, "count"],
                ["org", "2025-Q1", "m", "=SUM(1,2)", "count"],  # openpyxl writes it as a formula
            ],
        )
    )
    assert rules(data) == [
        (2, "period", "xlsx.type"),
        (3, "value", "xlsx.type"),
        (4, "value", "cell.formula"),
    ]


def test_event_times_must_be_text_with_an_offset() -> None:
    header = ["case_ref", "notice_source", "category", "content_type", "hosting_country"]
    header += ["received_at", "actioned_at", "outcome"]
    data = workbook_bytes(
        (
            "events",
            [
                header,
                ["c1", "hotline", "csam", "image", "NA", "2025-03-01T09:30:00+01:00", "", "pending"],
                ["c2", "hotline", "csam", "image", "NA", datetime(2025, 3, 1, 9, 30), "", "pending"],
            ],
        )
    )
    read = read_xlsx(data)
    assert read.sheet_kind == "events"
    assert [(p.row, p.column, p.rule) for p in read.problems] == [
        (3, "received_at", "xlsx.datetime_without_offset")
    ]
    assert read.table is not None and read.table["received_at"].to_pylist()[0] == "2025-03-01T09:30:00+01:00"


def test_headers_rows_and_cells_outside_the_table() -> None:
    assert rules(workbook_bytes(("S", [["reporter", "reporter"], ["a", "b"]]))) == [
        (1, "", "format.bad_header")
    ]
    assert rules(workbook_bytes(("S", [["reporter", 2025], ["a", "b"]]))) == [(1, "", "format.bad_header")]
    assert rules(workbook_bytes(("S", [HEADER]))) == [(0, "", "file.empty_sheet")]
    many = [HEADER, *[["org", "2025", "m", i, "count"] for i in range(5)]]
    assert rules(workbook_bytes(("S", many)), max_rows=3) == [(5, "", "xlsx.too_many_rows")]
    assert read_xlsx(workbook_bytes(("S", many)), max_rows=5).table is not None


def test_problems_never_carry_a_cell_value() -> None:
    secret = "jane.doe@example.org"
    data = workbook_bytes(
        ("S", [HEADER, ["org", datetime(2025, 1, 1), "m", f'=HYPERLINK("mailto:{secret}")', "count", secret]])
    )
    read = read_xlsx(data)
    assert {p.rule for p in read.problems} == {"xlsx.type", "cell.formula", "xlsx.cell_outside_header"}
    assert all(secret not in str(p) and "HYPERLINK" not in str(p) for p in read.problems)


def test_openpyxl_parses_through_defusedxml() -> None:
    """openpyxl picks defusedxml up when installed: a DTD in a part raises before any expansion."""
    import openpyxl.xml

    assert openpyxl.xml.DEFUSEDXML is True
    for name in ("xxe.xlsx", "entity_bomb.xlsx"):
        with pytest.raises(ValueError) as wrapped:  # openpyxl wraps the parser's exception
            load_workbook(io.BytesIO((CORPUS / name).read_bytes()), read_only=True)
        assert isinstance(wrapped.value.__context__, DefusedXmlException), name


def _rewrite(data: bytes, part: str, content: bytes) -> bytes:
    source = zipfile.ZipFile(io.BytesIO(data))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            target.writestr(info, content if info.filename == part else source.read(info))
    return buffer.getvalue()


def test_a_dtd_the_byte_scan_misses_is_refused_by_defusedxml(monkeypatch: pytest.MonkeyPatch) -> None:
    """Defence in depth: a UTF-16 sheet hides '<!DOCTYPE' from the byte scan, not from defusedxml."""
    good = (CORPUS / "good.xlsx").read_bytes()
    sheet = zipfile.ZipFile(io.BytesIO(good)).read("xl/worksheets/sheet1.xml").decode()
    sheet = sheet.replace('encoding="UTF-8"', 'encoding="UTF-16"').replace(
        "?>\n", '?>\n<!DOCTYPE w [<!ENTITY e SYSTEM "file:///etc/passwd">]>\n', 1
    )
    hidden = _rewrite(good, "xl/worksheets/sheet1.xml", sheet.encode("utf-16"))
    assert rules(hidden) == [(0, "", "xlsx.xml_entities")]
    monkeypatch.setattr(xlsx_module, "_scan_part", lambda archive, info: False)  # no byte scan at all
    assert rules((CORPUS / "xxe.xlsx").read_bytes()) == [(0, "", "xlsx.xml_entities")]
    assert rules((CORPUS / "entity_bomb.xlsx").read_bytes()) == [(0, "", "xlsx.xml_entities")]


def test_a_lying_size_fails_its_crc_instead_of_inflating() -> None:
    """The declared size bounds inflation (zipfile enforces it), so a header that understates it fails."""
    good = bytearray((CORPUS / "good.xlsx").read_bytes())
    name = b"xl/worksheets/sheet1.xml"
    for signature, size_at, name_at in ((b"PK\x03\x04", 22, 30), (b"PK\x01\x02", 24, 46)):
        position = good.find(signature)
        while position >= 0:
            if good[position + name_at : position + name_at + len(name)] == name:
                good[position + size_at : position + size_at + 4] = (10).to_bytes(4, "little")
            position = good.find(signature, position + 4)
    assert rules(bytes(good)) == [(0, "", "xlsx.not_a_workbook")]


def test_detection_and_the_pipeline_entry() -> None:
    good = (CORPUS / "good.xlsx").read_bytes()
    assert looks_like_xlsx(good, ".csv") and looks_like_xlsx(b"a,b\n", ".XLSX")
    assert not looks_like_xlsx(b"a,b\n", ".csv")
    report = ValidationReport("good.xlsx")
    read = read_xlsx_for_pipeline(good, report)
    assert read is not None and read[1] == 2 and report.file_format == "aggregate-xlsx" and report.ok
    events = ValidationReport("events.xlsx")
    header = ["case_ref", "notice_source", "category", "content_type", "hosting_country"]
    row = ["c1", "hotline", "csam", "image", "NA", "2025-03-01T09:30:00+01:00", "", "pending"]
    data = workbook_bytes(("events", [[*header, "received_at", "actioned_at", "outcome"], row]))
    read = read_xlsx_for_pipeline(data, events)
    assert events.file_format == "events"
    assert read is not None and events.ok


def test_corpus_xlsx_files_stay_small() -> None:
    for path in Path(CORPUS).glob("*.xlsx"):
        assert path.stat().st_size < 300_000, path.name


@pytest.mark.slow
def test_hub_ingest_takes_xlsx(cli_env: dict[str, str]) -> None:
    """The CLI channel: a workbook is accepted and stored, a hostile one rejected with its rule."""

    run = HubCommands(cli_env, "ingest")  # one real process: the first `hub ingest`

    added = run("org", "add", "example-platform", "--name", "Example Platform", "--type", "company")
    assert added.returncode == 0, added.stderr
    good = run("ingest", str(CORPUS / "good.xlsx"), "--org", "example-platform")
    assert good.returncode == 0, good.stderr
    assert "aggregate-xlsx" in good.stdout and "stored submission" in good.stdout
    bad = run("ingest", str(CORPUS / "xxe.xlsx"), "--org", "example-platform")
    assert bad.returncode == 1 and "xlsx.xml_entities" in bad.stderr
    assert "/etc/passwd" not in bad.stderr + bad.stdout


def test_xlsx_events_give_the_observations_of_the_same_csv(session: Any, catalogue: Any) -> None:
    """The workbook of the sample events gives exactly the observations of the CSV."""
    from hub.organisations import OrganisationIn, add_organisation
    from ingest.pipeline import ingest_bytes

    add_organisation(
        session, OrganisationIn(code="example-platform", name="Example", stakeholder_type="company")
    )
    csv_bytes = (REPO_ROOT / "data" / "samples" / "events.csv").read_bytes()
    rows = [line.split(",") for line in csv_bytes.decode().splitlines()]
    today = datetime(2026, 1, 15).astimezone()
    from_csv = ingest_bytes(
        session, catalogue, csv_bytes, "e.csv", "example-platform", dry_run=True, today=today
    )
    from_xlsx = ingest_bytes(
        session,
        catalogue,
        workbook_bytes(("events", rows)),
        "e.xlsx",
        "example-platform",
        dry_run=True,
        today=today,
    )
    assert from_csv.report.ok and from_xlsx.report.ok, from_xlsx.report.to_text()
    assert from_xlsx.observations == from_csv.observations > 0
