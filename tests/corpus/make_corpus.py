"""Generate the bad-input corpus (issue 3, section 7): the files and manifest.yaml.

Run ``python tests/corpus/make_corpus.py`` after changing a case; the output is committed.
Every file is built here, byte for byte, so the binary ones (UTF-16, NUL bytes, CR-only line
ends, XLSX bombs) are reviewable as code. XLSX files are written part by part with ``zipfile``
(fixed timestamps), not with openpyxl, so that hostile structures can be built at all.

A case names the organisation type it is submitted as, the rules its report must contain, why
it is in the corpus, and (``secret``) the submitted value that must never appear in the
report or the audit trail. ``good`` cases must be accepted. ``known_failure`` marks a case the
current pipeline gets wrong, with the reason (the test expects it to fail until fixed).
"""

from __future__ import annotations

import io
import json
import struct
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
FILES = HERE / "files"
ORG = {"company": "example-platform", "hotline": "example-hotline"}
OTHER_ORG = "other-platform"  # registered too, as a second company

AGG_HEADER = "reporter,period,metric,country,category,notice_source,content_type,value,unit,flag"
EVT_HEADER = "case_ref,notice_source,category,content_type,hosting_country,received_at,actioned_at,outcome"
GOOD_AGG = "example-platform,2025-Q1,co_notices_received,,,,,1250,count,"
GOOD_EVT = "case-0001,hotline,csam,image,NA,2025-03-01T09:30:00+01:00,2025-03-01T10:05:00+01:00,removed"


@dataclass
class Case:
    file: str
    org_type: str
    rules: list[str]
    why: str
    content: bytes = b""
    secret: str | None = None
    good: bool = False
    known_failure: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def manifest(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"file": self.file, "org_type": self.org_type}
        if self.good:
            entry.update(self.extra)
        else:
            entry["rules"] = self.rules
        entry["why"] = self.why
        if self.secret is not None:
            entry["secret"] = self.secret
        if self.known_failure:
            entry["known_failure"] = self.known_failure
        return entry


def agg(*rows: str, header: str = AGG_HEADER) -> bytes:
    return ("\n".join([header, *rows]) + "\n").encode()


def evt(*rows: str) -> bytes:
    return ("\n".join([EVT_HEADER, *rows]) + "\n").encode()


def agg_row(**cells: str) -> str:
    """The good aggregate row with some cells replaced (cells may not hold commas)."""
    names = AGG_HEADER.split(",")
    values = dict(zip(names, GOOD_AGG.split(","), strict=True))
    values.update(cells)
    return ",".join(values[name] for name in names)


def evt_row(**cells: str) -> str:
    names = EVT_HEADER.split(",")
    values = dict(zip(names, GOOD_EVT.split(","), strict=True))
    values.update(cells)
    return ",".join(values[name] for name in names)


# --- XLSX, part by part -------------------------------------------------------------------------

_STAMP = (2025, 1, 1, 0, 0, 0)
CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/xl/workbook.xml" ContentType="{workbook}"/>'
    '<Override PartName="/xl/worksheets/sheet1.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
    '<Override PartName="/xl/styles.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>'
    "</Types>"
)
WORKBOOK_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"
MACRO_TYPE = "application/vnd.ms-excel.sheet.macroEnabled.main+xml"
ROOT_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" '
    'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" '
    'Target="xl/workbook.xml"/></Relationships>'
)
WORKBOOK = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
    'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
    '<sheets><sheet name="{name}" sheetId="1" r:id="rId1"/></sheets></workbook>'
)
WORKBOOK_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" '
    'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" '
    'Target="worksheets/sheet1.xml"/>'
    '<Relationship Id="rId2" '
    'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles" '
    'Target="styles.xml"/></Relationships>'
)
STYLES = (  # style 0: General; style 1: a date (number format 14)
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<styleSheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
    '<fonts count="1"><font><sz val="11"/><name val="Calibri"/></font></fonts>'
    '<fills count="1"><fill><patternFill patternType="none"/></fill></fills>'
    '<borders count="1"><border/></borders>'
    '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
    '<cellXfs count="2"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
    '<xf numFmtId="14" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/></cellXfs>'
    "</styleSheet>"
)


class Formula(str):
    """A cell holding a formula (with a cached value of 2)."""


class DateCell(float):
    """A cell holding an Excel serial date (1.0 = 1900-01-01), styled as a date."""


def _column(index: int) -> str:
    name = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        name = chr(65 + rest) + name
    return name


def _xml_text(value: str) -> str:
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def sheet_xml(rows: list[list[Any]], prolog: str = "") -> str:
    lines = []
    for r, row in enumerate(rows, start=1):
        cells = []
        for c, value in enumerate(row):
            ref = f"{_column(c)}{r}"
            if value is None or value == "":
                continue
            if isinstance(value, Formula):
                cells.append(f'<c r="{ref}"><f>{_xml_text(value)}</f><v>2</v></c>')
            elif isinstance(value, bool):
                cells.append(f'<c r="{ref}" t="b"><v>{int(value)}</v></c>')
            elif isinstance(value, DateCell):
                cells.append(f'<c r="{ref}" s="1"><v>{float(value)}</v></c>')
            elif isinstance(value, int | float):
                cells.append(f'<c r="{ref}"><v>{value}</v></c>')
            else:
                cells.append(f'<c r="{ref}" t="inlineStr"><is><t>{_xml_text(str(value))}</t></is></c>')
        lines.append(f'<row r="{r}">{"".join(cells)}</row>')
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        + prolog
        + '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        + f"<sheetData>{''.join(lines)}</sheetData></worksheet>"
    )


def xlsx(
    rows: list[list[Any]],
    *,
    sheet_name: str = "observations",
    prolog: str = "",
    workbook_type: str = WORKBOOK_TYPE,
    extra: dict[str, bytes] | None = None,
) -> bytes:
    """A minimal workbook of one sheet; ``extra`` parts are appended as they are."""
    parts = {
        "[Content_Types].xml": CONTENT_TYPES.format(workbook=workbook_type).encode(),
        "_rels/.rels": ROOT_RELS.encode(),
        "xl/workbook.xml": WORKBOOK.format(name=sheet_name).encode(),
        "xl/_rels/workbook.xml.rels": WORKBOOK_RELS.encode(),
        "xl/styles.xml": STYLES.encode(),
        "xl/worksheets/sheet1.xml": sheet_xml(rows, prolog).encode(),
        **(extra or {}),
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in parts.items():
            info = zipfile.ZipInfo(name, _STAMP)
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data, compresslevel=9)
    return buffer.getvalue()


def agg_rows(*rows: str) -> list[list[Any]]:
    """CSV rows as sheet rows: value cells as numbers, everything else as text."""
    header = AGG_HEADER.split(",")
    out: list[list[Any]] = [header]
    for row in rows:
        cells: list[Any] = row.split(",")
        value = header.index("value")
        if cells[value]:
            cells[value] = int(cells[value]) if cells[value].isdigit() else cells[value]
        out.append(cells)
    return out


def declared_size_bomb() -> bytes:
    """A workbook whose sheet's central-directory entry declares 4 GB unpacked (a lying header)."""
    data = bytearray(xlsx(agg_rows(GOOD_AGG)))
    name = b"xl/worksheets/sheet1.xml"
    central = data.find(b"PK\x01\x02")
    while central >= 0:
        (name_length,) = struct.unpack_from("<H", data, central + 28)
        if data[central + 46 : central + 46 + name_length] == name:
            struct.pack_into("<I", data, central + 24, 0xFFFFFFF0)  # uncompressed size
            break
        central = data.find(b"PK\x01\x02", central + 4)
    return bytes(data)


def many_entries() -> bytes:
    """A valid workbook padded with 2,000 tiny parts."""
    extra = {f"p/{i}": b"" for i in range(2000)}
    return xlsx(agg_rows(GOOD_AGG), extra=extra)


def ratio_bomb() -> bytes:
    """A valid workbook plus a 64 MB part of zeros that deflates to about 64 KB (1000:1)."""
    return xlsx(agg_rows(GOOD_AGG), extra={"xl/media/padding.bin": bytes(64 * 1024 * 1024)})


BILLION_LAUGHS = (
    '<!DOCTYPE lolz [<!ENTITY lol "lol">'
    + "".join(
        f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">' for i in range(1, 10)
    )
    + "]>\n"
)
XXE = '<!DOCTYPE foo [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n'


# --- the cases --------------------------------------------------------------------------------

# kind -> (value, rule in an id/code column, rule in the value column). The digests are of
# b"hub corpus", not of the empty string: the SHA-256 of an empty file is a legitimate audit checksum.
PERSONAL_DATA = {
    "email": ("jane.doe@example.org", "pd.email", "pd.email"),
    "ipv4": ("192.168.10.20", "pd.ipv4", "pd.ipv4"),
    "ipv6": ("2001:db8::8a2e:370:7334", "pd.ipv6", "pd.ipv6"),
    "url": ("https://files.example.net/x", "pd.url_scheme", "pd.url_scheme"),
    "domain": ("files.example.net", "pd.domain", "pd.domain"),
    "phone": ("+44 20 7946 0958", "pd.phone", "pd.phone"),
    "handle": ("@janedoe99", "pd.handle", "pd.handle"),
    "md5": ("888b5d033ecce7c7f22ebafae527e585", "pd.hex_id", "pd.hex_digest"),
    "sha1": ("c47ea96d3c6bc79f5050c5543753927f4c051d76", "pd.hex_id", "pd.hex_digest"),
    "sha256": (
        "23157e48b16dad3ad4c6bd46676db371341c9061f150c86d82900b314fe152b9",
        "pd.hex_id",
        "pd.hex_digest",
    ),
    "base64": ("QmFzZTY0IGJsb2IgdGhhdCBpcyBsb25nIGVub3VnaA==", "pd.base64", "pd.base64"),
}


def personal_data_cases() -> list[Case]:
    cases = []
    for kind, (value, id_rule, value_rule) in PERSONAL_DATA.items():
        quoted = f'"{value}"'
        fields = {
            "agg_dimension": ("company", agg(agg_row(category=quoted)), id_rule, "an aggregate dimension"),
            "agg_code": ("company", agg(agg_row(metric=quoted)), id_rule, "an aggregate code column"),
            "agg_value": ("company", agg(agg_row(value=quoted)), value_rule, "the value column"),
            "evt_case_ref": ("company", evt(evt_row(case_ref=quoted)), id_rule, "an event case_ref"),
            "evt_code": ("hotline", evt(evt_row(outcome=quoted)), id_rule, "an event code column"),
        }
        for where, (org_type, content, rule, label) in fields.items():
            cases.append(
                Case(
                    f"pd_{kind}_{where}.csv",
                    org_type,
                    [rule],
                    f"{kind} in {label}: personal data is rejected, never stored or echoed",
                    content,
                    secret=value,
                )
            )
    return cases


def cases() -> list[Case]:
    out = [
        # --- CSV shape and bytes
        Case(
            "ragged_rows.csv",
            "company",
            ["csv.malformed"],
            "a row with more cells than the header",
            agg(GOOD_AGG, GOOD_AGG + ",extra,cells"),
        ),
        Case(
            "unbalanced_quotes.csv",
            "company",
            ["csv.malformed"],
            "a quote opened and never closed",
            agg(GOOD_AGG, 'example-platform,2025-Q2,co_notices_received,,"csam,,,12,count,'),
        ),
        Case(
            "utf16.csv",
            "company",
            ["cell.nul_byte"],
            "UTF-16 text (NUL bytes between ASCII letters)",
            agg(GOOD_AGG).decode().encode("utf-16"),
        ),
        Case(
            "latin1.csv",
            "company",
            ["file.encoding"],
            "Latin-1 bytes that are not UTF-8",
            agg(agg_row(category="caf\u00e9")).decode().encode("latin-1"),
        ),
        Case(
            "nul_byte.csv",
            "company",
            ["cell.nul_byte"],
            "a NUL byte inside a value",
            agg(agg_row(value="12\x0034")),
            secret="12\x0034",
        ),
        Case(
            "cr_only.csv",
            "company",
            ["csv.malformed"],
            "classic-Mac line ends (CR only)",
            agg(GOOD_AGG).replace(b"\n", b"\r"),
        ),
        Case(
            "rtl_override.csv",
            "company",
            ["cell.bidi_control"],
            "a right-to-left override in a code",
            agg(agg_row(category="csam\u202egpj")),
        ),
        Case(
            "zero_width.csv",
            "company",
            ["cell.zero_width"],
            "a zero-width space inside the metric code",
            agg(agg_row(metric="co_notices\u200b_received")),
        ),
        Case(
            "long_cell.csv",
            "company",
            ["cell.oversized"],
            "a 100,000-character cell",
            agg(agg_row(category="x" * 100_000)),
        ),
        Case("empty.csv", "company", ["file.empty"], "an empty file", b""),
        Case(
            "header_only.csv",
            "company",
            ["file.empty"],
            "a header and no record",
            agg(),
        ),
        Case(
            "duplicate_header.csv",
            "company",
            ["format.bad_header"],
            "a column named twice",
            agg(GOOD_AGG.replace(",count,", ",count,count"), header=AGG_HEADER.replace("flag", "unit")),
        ),
        Case(
            "unknown_column.csv",
            "company",
            ["format.unknown_column"],
            "a free-text column",
            agg(GOOD_AGG + ",seen twice", header=AGG_HEADER + ",comment"),
            secret="seen twice",
        ),
        Case(
            "missing_column.csv",
            "company",
            ["format.missing_column"],
            "no unit column",
            agg(GOOD_AGG.rsplit(",", 2)[0] + ",", header=AGG_HEADER.replace(",unit", "")),
        ),
        # --- values
        Case("negative.csv", "company", ["value.negative"], "a negative count", agg(agg_row(value="-517"))),
        Case("nan.csv", "company", ["value.not_finite"], "NaN", agg(agg_row(value="NaN"))),
        Case("infinity.csv", "company", ["value.not_finite"], "Infinity", agg(agg_row(value="Infinity"))),
        Case(
            "overflow.csv",
            "company",
            ["value.not_finite"],
            "1e309 is beyond the float range",
            agg(agg_row(value="1e309")),
        ),
        Case(
            "fractional_count.csv",
            "company",
            ["value.not_whole"],
            "a count of 12.5",
            agg(agg_row(value="12.5")),
        ),
        Case(
            "thousands_separator.csv",
            "company",
            ["value.not_a_number"],
            "1,250 with a separator (quoted)",
            agg(agg_row(value='"1,250"')),
        ),
        Case(
            "share_over_one.csv",
            "company",
            ["value.share_range"],
            "a share of 1.5",
            agg(agg_row(metric="co_proactive_share", value="1.5", unit="share")),
        ),
        Case(
            "nan.json",
            "company",
            ["value.not_finite"],
            "JSON with NaN (Python's reader would take it)",
            b'{"schema_version": "1", "reporter": "example-platform", "observations": [{"period": '
            b'"2025-Q1", "metric": "co_notices_received", "value": NaN, "unit": "count"}]}',
        ),
        Case(
            "infinity.json",
            "company",
            ["value.not_finite"],
            "JSON with Infinity",
            b'{"schema_version": "1", "reporter": "example-platform", "observations": [{"period": '
            b'"2025-Q1", "metric": "co_notices_received", "value": -Infinity, "unit": "count"}]}',
        ),
        Case(
            "overflow.json",
            "company",
            ["value.not_finite"],
            "JSON with 1e309",
            b'{"schema_version": "1", "reporter": "example-platform", "observations": [{"period": '
            b'"2025-Q1", "metric": "co_notices_received", "value": 1e309, "unit": "count"}]}',
        ),
        Case(
            "invalid.json",
            "company",
            ["json.invalid"],
            "truncated JSON",
            b'{"schema_version": "1", "reporter": "example-platform", "observations": [{',
        ),
        # --- catalogue rules
        Case(
            "unknown_metric.csv",
            "company",
            ["metric.unknown"],
            "a metric the catalogue lacks",
            agg(agg_row(metric="co_vibes")),
        ),
        Case(
            "metric_of_other_type.csv",
            "company",
            ["metric.not_for_reporter"],
            "a hotline metric from a company",
            agg(agg_row(metric="ht_reports_received")),
        ),
        Case("wrong_unit.csv", "company", ["unit.mismatch"], "hours for a count", agg(agg_row(unit="hours"))),
        Case(
            "wrong_period_kind.csv",
            "company",
            ["period.kind_mismatch"],
            "a month for a quarterly capability",
            agg(agg_row(period="2025-03", metric="co_capability_hash_matching", value="1", unit="boolean")),
        ),
        Case(
            "bad_period.csv",
            "company",
            ["period.invalid"],
            "2025-13 is no period",
            agg(agg_row(period="2025-13")),
        ),
        Case(
            "future_period.csv",
            "company",
            ["period.future"],
            "a period that has not started",
            agg(agg_row(period="2099")),
        ),
        Case(
            "unknown_country.csv",
            "company",
            ["dimension.unknown_value"],
            "a country code that does not exist",
            agg(agg_row(country="QQ")),
        ),
        Case(
            "unknown_flag.csv",
            "company",
            ["flag.unknown"],
            "a flag outside the list",
            agg(agg_row(flag="guessed")),
        ),
        Case(
            "duplicate_key.csv",
            "company",
            ["row.duplicate"],
            "the same figure twice",
            agg(GOOD_AGG, GOOD_AGG),
        ),
        Case(
            "other_org_code.csv",
            "company",
            ["reporter.mismatch"],
            "another organisation's code as reporter",
            agg(agg_row(reporter=OTHER_ORG)),
        ),
        # --- formula injection: every column refuses a cell that a spreadsheet would evaluate
        Case(
            "formula_eq_dimension.csv",
            "company",
            ["cell.formula_injection"],
            "=1+2 in a dimension",
            agg(agg_row(category="=1+2")),
        ),
        Case(
            "formula_plus_metric.csv",
            "company",
            ["cell.formula_injection"],
            "+cmd in the metric column",
            agg(agg_row(metric="+cmd")),
        ),
        Case(
            "formula_minus_dimension.csv",
            "company",
            ["cell.formula_injection"],
            "-1+2 in a dimension",
            agg(agg_row(notice_source="-1+2")),
        ),
        Case(
            "formula_minus_unit.csv",
            "company",
            ["unit.mismatch"],
            "-cmd in the unit column (not a code)",
            agg(agg_row(unit="-cmd")),
        ),
        Case(
            "formula_at_value.csv",
            "company",
            ["pd.handle"],
            "@SUM(A1) in the value column",
            agg(agg_row(value="@SUM(A1)")),
        ),
        Case(
            "formula_eq_value.csv",
            "company",
            ["value.not_a_number"],
            "=1+2 in the value column",
            agg(agg_row(value="=1+2")),
        ),
        Case(
            "formula_plus_value.csv",
            "company",
            ["value.not_a_number"],
            "+5 in the value column",
            agg(agg_row(value="+5")),
        ),
        Case(
            "formula_eq_case_ref.csv",
            "company",
            ["cell.formula_injection"],
            "=1+2 as a case_ref",
            evt(evt_row(case_ref="=1+2")),
        ),
        Case(
            "formula_eq_time.csv",
            "company",
            ["cell.formula_injection"],
            "=NOW() as received_at",
            evt(evt_row(received_at="=NOW()")),
        ),
        Case(
            "formula_text.xlsx",
            "company",
            ["cell.formula_injection"],
            "a text cell =1+2 in a workbook",
            xlsx(agg_rows(agg_row(category="=1+2"))),
        ),
        # --- events
        Case(
            "case_ref_bad_characters.csv",
            "company",
            ["events.bad_case_ref"],
            "a case reference outside [A-Za-z0-9_-]",
            evt(evt_row(case_ref="a;b")),
        ),
        Case(
            "case_ref_too_long.csv",
            "company",
            ["events.bad_case_ref"],
            "a case reference of 65 characters",
            evt(evt_row(case_ref="x" * 65)),
        ),
        Case(
            "actioned_before_received.csv",
            "company",
            ["events.actioned_before_received"],
            "actioned_at earlier than received_at",
            evt(evt_row(actioned_at="2025-03-01T08:01:00+01:00")),
        ),
        Case(
            "time_without_offset.csv",
            "company",
            ["events.invalid_time"],
            "received_at without a UTC offset",
            evt(evt_row(received_at="2025-03-01T09:30:00")),
        ),
        Case(
            "unknown_outcome.csv",
            "hotline",
            ["events.unknown_value"],
            "an outcome outside the list",
            evt(evt_row(outcome="deleted")),
        ),
        Case(
            "event_extra_column.csv",
            "company",
            ["format.unknown_column"],
            "an event file with a note column",
            (EVT_HEADER + ",note\n" + GOOD_EVT + ",called back\n").encode(),
            secret="called back",
        ),
        # --- XLSX
        Case(
            "html_renamed.xlsx",
            "company",
            ["xlsx.not_a_workbook"],
            "an HTML page renamed .xlsx",
            b"<!DOCTYPE html><html><body><table><tr><td>1250</td></tr></table></body></html>\n",
        ),
        Case("csv_renamed.xlsx", "company", ["xlsx.not_a_workbook"], "a CSV renamed .xlsx", agg(GOOD_AGG)),
        Case(
            "truncated.xlsx",
            "company",
            ["xlsx.not_a_workbook"],
            "a workbook cut in half",
            xlsx(agg_rows(GOOD_AGG))[:600],
        ),
        Case(
            "zip_not_workbook.xlsx",
            "company",
            ["xlsx.not_a_workbook"],
            "a ZIP without workbook parts",
            _zip({"readme.txt": b"hello"}),
        ),
        Case(
            "macro_renamed.xlsx",
            "company",
            ["xlsx.macros"],
            "a macro workbook (.xlsm) renamed .xlsx",
            xlsx(
                agg_rows(GOOD_AGG),
                workbook_type=MACRO_TYPE,
                extra={"xl/vbaProject.bin": b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504)},
            ),
        ),
        Case(
            "zip_bomb_ratio.xlsx",
            "company",
            ["xlsx.zip_bomb"],
            "a 64 MB part of zeros in a small file",
            ratio_bomb(),
        ),
        Case(
            "zip_bomb_declared.xlsx",
            "company",
            ["xlsx.zip_bomb"],
            "a part declaring 4 GB unpacked",
            declared_size_bomb(),
        ),
        Case(
            "many_entries.xlsx",
            "company",
            ["xlsx.too_many_entries"],
            "2,000 parts in one workbook",
            many_entries(),
        ),
        Case(
            "entity_bomb.xlsx",
            "company",
            ["xlsx.xml_entities"],
            "billion laughs in the sheet",
            xlsx(agg_rows(GOOD_AGG), prolog=BILLION_LAUGHS),
        ),
        Case(
            "xxe.xlsx",
            "company",
            ["xlsx.xml_entities"],
            "an external entity reading /etc/passwd",
            xlsx(agg_rows(GOOD_AGG), prolog=XXE),
        ),
        Case(
            "formula.xlsx",
            "company",
            ["cell.formula"],
            "a formula in the value column",
            xlsx([*agg_rows(), [*agg_row(value="").split(",")[:7], Formula("1+1"), "count", ""]]),
        ),
        Case(
            "boolean.xlsx",
            "company",
            ["xlsx.type"],
            "TRUE in a value cell",
            xlsx([*agg_rows(), [*agg_row(value="").split(",")[:7], True, "count", ""]]),
        ),
        Case(
            "date_period.xlsx",
            "company",
            ["xlsx.type"],
            "a period Excel turned into a date",
            xlsx([*agg_rows(), ["example-platform", DateCell(45658.0), *agg_row().split(",")[2:]]]),
        ),
        Case(
            "datetime_event.xlsx",
            "company",
            ["xlsx.datetime_without_offset"],
            "an Excel date-time as received_at",
            xlsx(
                [EVT_HEADER.split(","), [*GOOD_EVT.split(",")[:5], DateCell(45717.5), "", "pending"]],
                sheet_name="events",
            ),
        ),
        Case(
            "email.xlsx",
            "company",
            ["pd.email"],
            "an e-mail address in a workbook cell",
            xlsx(agg_rows(agg_row(category="jane.doe@example.org"))),
            secret="jane.doe@example.org",
        ),
        Case("empty.xlsx", "company", ["file.empty"], "an empty file named .xlsx", b""),
        Case(
            "outside_header.xlsx",
            "company",
            ["xlsx.cell_outside_header"],
            "a note right of the table",
            xlsx([*agg_rows(GOOD_AGG), [*agg_row(period="2025-Q2").split(","), "", "a note"]]),
            secret="a note",
        ),
        # --- good: accepted
        Case(
            "bom.csv",
            "company",
            [],
            "a UTF-8 byte-order mark is accepted",
            b"\xef\xbb\xbf" + agg(GOOD_AGG),
            good=True,
        ),
        Case(
            "namibia.csv",
            "company",
            [],
            "NA is Namibia, never missing",
            agg(agg_row(period="2025-Q2", country="NA", value="40")),
            good=True,
            extra={"country": "NA"},
        ),
        Case(
            "good.xlsx",
            "company",
            [],
            "a plain workbook",
            xlsx(agg_rows(agg_row(period="2025-Q3"), agg_row(period="2025-Q3", country="NA", value="40"))),
            good=True,
            extra={"country": "NA"},
        ),
        Case(
            "crlf.csv",
            "company",
            [],
            "Windows line ends",
            agg(agg_row(period="2025-Q4")).replace(b"\n", b"\r\n"),
            good=True,
        ),
    ]
    return out + personal_data_cases()


def _zip(parts: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in parts.items():
            archive.writestr(zipfile.ZipInfo(name, _STAMP), data)
    return buffer.getvalue()


def write(directory: Path = FILES) -> list[Case]:
    """Write every case's file into ``directory`` and the manifest next to it."""
    import yaml

    directory.mkdir(parents=True, exist_ok=True)
    all_cases = cases()
    names = [case.file for case in all_cases]
    assert len(set(names)) == len(names), "file names must be unique"
    for case in all_cases:
        (directory / case.file).write_bytes(case.content)
    manifest = {
        "organisations": {**ORG, "other": OTHER_ORG},
        "today": "2026-01-15T00:00:00+00:00",
        "bad": [case.manifest() for case in all_cases if not case.good],
        "good": [case.manifest() for case in all_cases if case.good],
    }
    header = "# Generated by tests/corpus/make_corpus.py: edit the cases there and re-run it.\n"
    text = yaml.safe_dump(manifest, sort_keys=False, allow_unicode=False, width=100)
    (directory.parent / "manifest.yaml").write_text(header + text, encoding="utf-8")
    return all_cases


if __name__ == "__main__":
    written = write()
    total = sum((FILES / case.file).stat().st_size for case in written)
    print(json.dumps({"files": len(written), "bytes": total}))
