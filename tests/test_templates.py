"""Submission templates (ingest/templates.py, ``hub template``): what they hold, and that a
filled-in template is accepted by the real pipeline and stored, on both backends."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
from openpyxl import load_workbook
from sqlalchemy import func
from sqlmodel import Session, select

from hub.catalogue import Catalogue
from hub.models import Observation
from hub.organisations import OrganisationIn, add_organisation
from hub.settings import REPO_ROOT
from ingest.formats import AGGREGATE_COLUMNS, SCHEMA_VERSION, aggregate_json_schema
from ingest.pipeline import ingest_bytes
from ingest.templates import build_template, template_metrics, template_rows

HUB = str(REPO_ROOT / ".venv" / "bin" / "hub")
TODAY = datetime(2026, 1, 15, tzinfo=UTC)
TYPES = ("company", "hotline", "law_enforcement", "clearinghouse")
SAMPLE = {"count": "7", "share": "0.5", "boolean": "1", "hours": "2.5"}


def _value(catalogue: Catalogue, metric: str) -> str:
    spec = catalogue.metrics[metric]
    return "3" if spec.combination == "distribution" else SAMPLE[spec.unit]


def fill_csv(catalogue: Catalogue, data: bytes, period: str) -> bytes:
    rows = list(csv.DictReader(io.StringIO(data.decode())))
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(AGGREGATE_COLUMNS), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({**row, "period": period, "value": _value(catalogue, row["metric"])})
    return out.getvalue().encode()


def fill_xlsx(catalogue: Catalogue, data: bytes, period: str) -> bytes:
    """Fill the template as a spreadsheet user would: type a period (text) and a number per row."""
    workbook = load_workbook(io.BytesIO(data))
    sheet = workbook["observations"]
    names = [cell.value for cell in sheet[1]]
    for row in sheet.iter_rows(min_row=2):
        cells = dict(zip(names, row, strict=True))
        cells["period"].value = period
        cells["value"].value = float(_value(catalogue, str(cells["metric"].value)))
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def test_csv_template_has_the_types_metrics_only(catalogue: Catalogue) -> None:
    rows = list(csv.reader(io.StringIO(build_template(catalogue, "hotline", "csv", "my-hotline").decode())))
    assert tuple(rows[0]) == AGGREGATE_COLUMNS
    metrics = {row[rows[0].index("metric")] for row in rows[1:]}
    assert metrics == set(template_metrics(catalogue, "hotline"))
    assert all(catalogue.metrics[m].reported_by.count("hotline") for m in metrics)
    assert {row[0] for row in rows[1:]} == {"my-hotline"}
    distribution = [
        r for r in template_rows(catalogue, "hotline") if r["metric"] == "ht_notice_to_removal_time"
    ]
    assert [r["time_bucket"] for r in distribution] == [b.code for b in catalogue.buckets.buckets]
    with pytest.raises(ValueError):
        build_template(catalogue, "hotline", "ods")


def test_xlsx_template_sheets_lists_and_instructions(catalogue: Catalogue) -> None:
    workbook = load_workbook(io.BytesIO(build_template(catalogue, "company", "xlsx", "example-platform")))
    assert workbook.sheetnames == ["observations", "metrics", "read me"]
    sheet = workbook["observations"]
    assert tuple(cell.value for cell in sheet[1]) == AGGREGATE_COLUMNS
    assert sheet["B2"].number_format == "@"  # the period stays text: Excel cannot make it a date
    validations = {str(v.sqref).split(":")[0][0]: v for v in sheet.data_validations.dataValidation}
    columns = {name: chr(ord("A") + i) for i, name in enumerate(AGGREGATE_COLUMNS)}
    company = template_metrics(catalogue, "company")
    assert validations[columns["metric"]].formula1 == f"metrics!$A$2:$A${len(company) + 1}"
    assert set(validations[columns["unit"]].formula1.strip('"').split(",")) == {
        "count",
        "share",
        "boolean",
        "hours",
    }
    assert validations[columns["flag"]].formula1 == '"provisional,estimated"'
    assert "2025-Q1" in (validations[columns["period"]].prompt or "")
    described = [row for row in workbook["metrics"].iter_rows(values_only=True)]
    assert described[0] == ("code", "name", "unit", "frequencies", "dimensions", "definition")
    assert [row[0] for row in described[1:]] == company
    readme = "\n".join(str(row[0]) for row in workbook["read me"].iter_rows(values_only=True) if row[0])
    assert f"schema_version: {SCHEMA_VERSION}" in readme and "formulas are refused" in readme


def test_filled_templates_are_accepted_and_stored(session: Session, catalogue: Catalogue) -> None:
    for stakeholder_type in TYPES:
        code = f"tpl-{stakeholder_type.replace('_', '-')}"
        add_organisation(session, OrganisationIn(code=code, name=code, stakeholder_type=stakeholder_type))
    session.commit()
    stored = 0
    for stakeholder_type in TYPES:
        code = f"tpl-{stakeholder_type.replace('_', '-')}"
        for fmt, period, fill in (("csv", "2025-Q1", fill_csv), ("xlsx", "2025-Q2", fill_xlsx)):
            data = fill(catalogue, build_template(catalogue, stakeholder_type, fmt, code), period)
            result = ingest_bytes(
                session, catalogue, data, f"template.{fmt}", code, dry_run=False, today=TODAY
            )
            assert result.report.ok, f"{stakeholder_type} {fmt}: {result.report.to_text()}"
            assert result.created and result.observations == len(template_rows(catalogue, stakeholder_type))
            assert result.report.file_format == ("aggregate-xlsx" if fmt == "xlsx" else "aggregate-csv")
            stored += result.observations
            session.commit()
    assert session.exec(select(func.count()).select_from(Observation)).one() == stored


def _cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env.update(HUB_ENV="test", HUB_VAR_DIR=str(tmp_path / "var"))
    return subprocess.run([HUB, "template", *args], env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.slow
def test_hub_template_command(tmp_path: Path, catalogue: Catalogue) -> None:
    as_csv = _cli(tmp_path, "--type", "company", "--format", "csv", "--reporter", "example-platform")
    assert as_csv.returncode == 0, as_csv.stderr
    assert as_csv.stdout.encode() == build_template(catalogue, "company", "csv", "example-platform")
    out = tmp_path / "company.xlsx"
    as_xlsx = _cli(tmp_path, "--type", "company", "--format", "xlsx", "--out", str(out))
    assert as_xlsx.returncode == 0, as_xlsx.stderr
    assert load_workbook(out).sheetnames == ["observations", "metrics", "read me"]
    schema = _cli(tmp_path, "--schema")
    assert schema.returncode == 0 and json.loads(schema.stdout) == aggregate_json_schema()
    assert _cli(tmp_path, "--type", "bakery").returncode == 2
    assert _cli(tmp_path, "--type", "company", "--format", "xlsx").returncode == 2  # binary needs --out
    assert _cli(tmp_path, "--type", "company", "--format", "ods").returncode == 2
