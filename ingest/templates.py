"""Downloadable submission templates per stakeholder type: only the metrics that type reports.

A template is the aggregate format (``ingest.formats.AGGREGATE_COLUMNS``) with one row per
metric the type reports (a distribution metric: one row per time bucket), reporter, metric,
unit (and time_bucket) filled in: the submitter adds period and value. Filled in, it is
accepted by ``hub ingest`` unchanged, which the tests prove for both formats.

The XLSX template adds what a spreadsheet can carry: drop-down lists for metric, unit and
flag, an input note on the period, text formatting for every code column (so Excel does not
turn ``2025-03`` into a date or ``NA`` into anything), a ``metrics`` sheet describing each
metric and a ``read me`` sheet with the instructions and the schema version.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Annotated

import typer

from hub.catalogue import Catalogue
from hub.errors import HubError

FORMATS = ("csv", "xlsx")
FLAG_VALUES = ("provisional", "estimated")
PERIOD_NOTE = "2025-03 (month), 2025-Q1 (quarter), 2025-H1 (half year) or 2025 (year), as text"
_EDITABLE_ROWS = 2000  # rows the drop-down lists and text formats cover
_README = (
    "How to fill in this template",
    "",
    "1. One figure per row on the 'observations' sheet. Reporter, metric and unit are filled in.",
    f"2. Period: {PERIOD_NOTE}; it must be a kind the metric is reported by (see 'metrics').",
    "3. Value: a plain number. Counts are whole and non-negative; shares lie between 0 and 1;",
    "   capabilities are 0 (no) or 1 (yes). Leave empty when not available.",
    "4. Dimension columns (country, category, ...): empty means the total. Add rows for breakdowns,",
    "   using only the dimensions the 'metrics' sheet lists for the metric. Country is ISO 3166-1",
    "   alpha-2 (NA is Namibia).",
    "5. Flag: empty, provisional or estimated.",
    "6. Type values, never formulas: formulas are refused. Keep every code column formatted as text.",
    "7. Never enter personal data, URLs, hashes or free text: the whole file would be rejected.",
    "8. Upload the file, or run: hub ingest FILE --org YOUR-CODE --dry-run",
)


def template_metrics(catalogue: Catalogue, stakeholder_type: str) -> list[str]:
    """Codes of the metrics an organisation of ``stakeholder_type`` reports, in catalogue order."""
    return [code for code, spec in catalogue.metrics.items() if stakeholder_type in spec.reported_by]


def template_rows(catalogue: Catalogue, stakeholder_type: str, reporter: str = "") -> list[dict[str, str]]:
    """The template's rows: one per metric, one per time bucket for a distribution metric."""
    from ingest.formats import AGGREGATE_COLUMNS

    rows: list[dict[str, str]] = []
    for code in template_metrics(catalogue, stakeholder_type):
        spec = catalogue.metrics[code]
        buckets = [""]
        if spec.combination == "distribution":
            buckets = [bucket.code for bucket in catalogue.buckets.buckets]
        for bucket in buckets:
            row = dict.fromkeys(AGGREGATE_COLUMNS, "")
            row.update(reporter=reporter, metric=code, unit=spec.unit, time_bucket=bucket)
            rows.append(row)
    return rows


def build_template(catalogue: Catalogue, stakeholder_type: str, fmt: str, reporter: str = "") -> bytes:
    """A template file (``fmt`` csv or xlsx) for organisations of ``stakeholder_type``."""
    if fmt not in FORMATS:
        raise ValueError(f"template format must be one of {', '.join(FORMATS)}")
    if not template_metrics(catalogue, stakeholder_type):
        raise ValueError("the catalogue has no metric reported by this stakeholder type")
    from ingest.formats import AGGREGATE_COLUMNS

    rows = template_rows(catalogue, stakeholder_type, reporter)
    if fmt == "xlsx":
        return _xlsx(catalogue, stakeholder_type, rows)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(AGGREGATE_COLUMNS)
    writer.writerows(row.values() for row in rows)
    return buffer.getvalue().encode()


def _xlsx(catalogue: Catalogue, stakeholder_type: str, rows: list[dict[str, str]]) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter
    from openpyxl.worksheet.datavalidation import DataValidation

    from ingest.formats import AGGREGATE_COLUMNS, SCHEMA_VERSION

    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = "observations"
    sheet.append(list(AGGREGATE_COLUMNS))
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    sheet.freeze_panes = "A2"
    letter = {name: get_column_letter(i) for i, name in enumerate(AGGREGATE_COLUMNS, start=1)}
    for name, column in letter.items():
        sheet.column_dimensions[column].width = 14 if name != "metric" else 36
        if name != "value":
            sheet.column_dimensions[column].number_format = "@"
    for row in rows:
        sheet.append(list(row.values()))
    for line in range(2, len(rows) + 2):
        for name, column in letter.items():
            if name != "value":
                sheet[f"{column}{line}"].number_format = "@"

    metrics = template_metrics(catalogue, stakeholder_type)
    last = _EDITABLE_ROWS + 1
    validations = [
        ("metric", f"metrics!$A$2:$A${len(metrics) + 1}", "Metric", "a metric of the 'metrics' sheet"),
        ("unit", f'"{",".join(sorted({catalogue.metrics[m].unit for m in metrics}))}"', "Unit", "the unit"),
        ("flag", f'"{",".join(FLAG_VALUES)}"', "Flag", "empty, provisional or estimated"),
    ]
    for name, formula, title, prompt in validations:
        rule = DataValidation(type="list", formula1=formula, allow_blank=True)
        rule.promptTitle, rule.prompt, rule.showInputMessage = title, prompt, True
        rule.errorTitle, rule.error, rule.showErrorMessage = title, f"choose {prompt}", True
        rule.add(f"{letter[name]}2:{letter[name]}{last}")
        sheet.add_data_validation(rule)
    period = DataValidation(type="textLength", operator="between", formula1="4", formula2="7")
    period.promptTitle, period.prompt, period.showInputMessage = "Period", PERIOD_NOTE, True
    period.errorTitle, period.error, period.showErrorMessage = "Period", PERIOD_NOTE, True
    period.add(f"{letter['period']}2:{letter['period']}{last}")
    sheet.add_data_validation(period)

    described = workbook.create_sheet("metrics")
    described.append(["code", "name", "unit", "frequencies", "dimensions", "definition"])
    for cell in described[1]:
        cell.font = Font(bold=True)
    for code in metrics:
        spec = catalogue.metrics[code]
        described.append(
            [
                code,
                spec.name,
                spec.unit,
                ", ".join(spec.frequencies),
                ", ".join(spec.dimensions),
                " ".join(spec.definition.split()),
            ]
        )
    for column, width in zip("ABCDEF", (36, 40, 10, 30, 40, 100), strict=True):
        described.column_dimensions[column].width = width

    readme = workbook.create_sheet("read me")
    readme.append([f"Submission template for a {stakeholder_type.replace('_', ' ')}"])
    readme["A1"].font = Font(bold=True)
    readme.append([f"schema_version: {SCHEMA_VERSION}"])
    readme.append([f"catalogue_version: {catalogue.version}"])
    for note in _README:
        readme.append([note])
    readme.column_dimensions["A"].width = 100

    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def template_command(
    stakeholder_type: Annotated[
        str | None, typer.Option("--type", help="Stakeholder type, e.g. company, hotline.")
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="csv or xlsx.")] = "csv",
    out: Annotated[Path | None, typer.Option("--out", help="Write here (required for xlsx).")] = None,
    reporter: Annotated[str, typer.Option("--reporter", help="Organisation code to fill in.")] = "",
    schema: Annotated[
        bool, typer.Option("--schema", help="Print the JSON Schema of a JSON submission instead.")
    ] = False,
) -> None:
    """Write a submission template for a stakeholder type, or print the JSON Schema."""
    if schema:
        from ingest.formats import aggregate_json_schema

        text = json.dumps(aggregate_json_schema(), indent=2) + "\n"
        if out is None:
            typer.echo(text, nl=False)
        else:
            out.write_text(text, encoding="utf-8")
        return
    from hub import vocab
    from hub.catalogue import load_catalogue_uncached
    from hub.cli import _settings

    if stakeholder_type not in vocab.STAKEHOLDER_TYPES:
        raise typer.BadParameter(f"give one of: {', '.join(vocab.STAKEHOLDER_TYPES)}", param_hint="--type")
    if fmt not in FORMATS:
        raise typer.BadParameter(f"give one of: {', '.join(FORMATS)}", param_hint="--format")
    if fmt == "xlsx" and out is None:
        raise typer.BadParameter("an XLSX template is binary: give --out FILE", param_hint="--out")
    catalogue = load_catalogue_uncached(_settings().data_dir)
    try:
        data = build_template(catalogue, stakeholder_type, fmt, reporter)
    except ValueError as exc:
        raise HubError(str(exc)) from None
    if out is None:
        typer.echo(data.decode(), nl=False)
    else:
        out.write_bytes(data)
        typer.echo(f"wrote {out} ({len(template_metrics(catalogue, stakeholder_type))} metric(s))", err=True)
