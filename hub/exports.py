"""Exports of a published release for the secretariat and for re-users of the data.

``export_release`` writes, into ``OUT/release-N/``, any of:

- ``csv/TABLE.csv``: RFC 4180 (comma, double quotes, CRLF), UTF-8, formula cells neutralised;
- ``xlsx/release-N.xlsx``: one workbook, a sheet per table (a table longer than a sheet goes
  on over several: ``indicators``, ``indicators (2)``), formula cells neutralised;
- ``json/TABLE.json``: ``{"table", "release", "columns", "rows"}``, rows as arrays (a
  million records with their keys repeated would be three times the size), null for missing;
- ``parquet/TABLE.parquet``: the release's own stored bytes, typed and checksummed;
- ``sdmx/indicators.csv`` with ``sdmx/structure.json``: SDMX-CSV 1.0 of the indicator cube
  (dimensions, measure, attributes such as OBS_STATUS and CONF_STATUS; docs/exports.md);
- ``datapackage.json``: a Frictionless tabular data package over the CSV files (table
  schemas, primary keys, SHA-256 of every file);
- ``release-N.zip``: everything above with its ``SHA256SUMS``, and ``release-N.zip.sha256``.

Every export also writes ``release.json`` (the release's number, title, dates, checksum,
notices) and keeps ``SHA256SUMS`` (``sha256sum -c`` format) of every file in the folder.
Files are written atomically (hub.files). Only a published release is exported: a draft, a
built-but-unpublished or a withdrawn release has not been approved for the public.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from sqlmodel import Session, col, select

from hub import tabular
from hub.catalogue import Catalogue
from hub.errors import HubError
from hub.files import atomic_output, remove_stale_parts, sha256_of, write_atomically
from hub.models import ReleaseTable
from hub.public_views import metric_definitions
from hub.releases import DEFAULT_KEYS, REVISIONS, get_release, notices, read_release
from hub.vocab import DIMENSIONS

FORMATS = ("csv", "xlsx", "json", "parquet", "sdmx", "datapackage", "zip")
CHECKSUMS = "SHA256SUMS"
METADATA = "release.json"
METRICS = "metrics"  # the definitions of the metrics the release holds, added to every export
NOTICES = "notices"
EXTRA_KEYS: dict[str, tuple[str, ...]] = {METRICS: ("metric",), NOTICES: ("created_at", "text")}
SDMX_DATAFLOW = "CSEA_HUB:INDICATORS(1.0)"
SDMX_FREQUENCY = {"year": "A", "half_year": "S", "quarter": "Q", "month": "M"}
SDMX_NOT_APPLICABLE = "_Z"
# SDMX cross-domain code lists: CONF_STATUS (F free, C confidential, D secondary confidentiality
# set by the sender) and OBS_STATUS (A normal, P provisional, O missing value).
CONF_STATUS = {"primary": "C", "dominance": "C", "secondary": "D"}

COLUMN_DESCRIPTIONS = {
    "metric": "Code of the metric (see the metrics table).",
    "period": "Period code: 2025 (year), 2025-Q1 (quarter) or 2025-01 (month).",
    "period_kind": "year, quarter or month.",
    "level": "Level of the figure: alliance, country, stakeholder_type or organisation.",
    "entity": "The entity at that level: ALL, an ISO country code, a stakeholder type or an organisation code.",
    "statistic": "value, events, reporters, share_within or percentile.",
    "param": "The statistic's parameter (hours for share_within, rank for percentile); -1 when none.",
    "value": "The figure; empty where it is suppressed.",
    "lower": "Lower bound of an estimated percentile (bucket edge).",
    "upper": "Upper bound of an estimated percentile (bucket edge).",
    "numerator": "Numerator of a ratio of sums.",
    "denominator": "Denominator of a ratio of sums.",
    "coverage": "How many organisations the figure rests on.",
    "event_count": "Events a distribution statistic rests on.",
    "yoy_change": "Change against the same period a year earlier (0.1 is +10%).",
    "unit": "Unit of the metric.",
    "disclosure_class": "Disclosure class of the metric (people counts are protected).",
    "provisional": "true where the figure rests on provisional submissions.",
    "suppressed": "true where disclosure control withheld the figure.",
    "suppression_reason": "primary (small count of people), secondary (protects another cell) or dominance.",
    "display": "How the figure is shown: '<10' or 'x' where suppressed.",
    "organisation": "Code of the organisation (named only where it consented).",
    "stakeholder_type": "Stakeholder type of the organisation.",
    "contributors": "Organisations whose figures make up the peer distribution.",
    "bands": "How many bands the sorted figures are cut into (at most four).",
    "band": "The band, 1 holding the lowest figures.",
    "band_name": "The band in words: lowest quarter, lower half, all peers, ...",
    "band_size": "Organisations in the band.",
    "mean": "The mean of the band's figures; empty where it is suppressed.",
    **{name: f"Breakdown by {name.replace('_', ' ')}; _T is the total." for name in DIMENSIONS},
}


class ExportError(HubError):
    """A release cannot be exported as asked."""


@dataclass(frozen=True)
class ExportedFile:
    name: str  # relative to the release's export folder, with / separators
    size: int
    sha256: str


@dataclass(frozen=True)
class Export:
    folder: Path
    files: list[ExportedFile]


@dataclass
class _Job:
    """What every writer gets: the release, its tables and the folder, and what was written."""

    number: int
    tables: dict[str, pd.DataFrame]
    parquet: dict[str, bytes]
    metadata: dict[str, Any]
    folder: Path
    written: dict[str, ExportedFile]

    def record(self, name: str, path: Path) -> None:
        self.written[name] = ExportedFile(name, path.stat().st_size, sha256_of(path))

    def write(self, name: str, content: bytes) -> None:
        path = self.folder / name
        write_atomically(path, content)
        self.record(name, path)


# --- formats ------------------------------------------------------------------------------


def _csv(job: _Job) -> None:
    for table, frame in job.tables.items():
        name = f"csv/{table}.csv"
        path = job.folder / name
        with atomic_output(path) as handle:
            tabular.write_csv(frame, handle)
        job.record(name, path)


def _xlsx(job: _Job) -> None:
    name = f"xlsx/release-{job.number}.xlsx"
    path = job.folder / name
    with atomic_output(path) as handle:
        tabular.write_xlsx_workbook(job.tables, handle, about=_about_sheet(job))
    job.record(name, path)


def _about_sheet(job: _Job) -> pd.DataFrame:
    """The workbook's first sheet: what the release is and how to read it."""
    meta = job.metadata
    rows = [
        ("release", str(meta["release"])),
        ("title", meta["title"]),
        ("published_at", meta["published_at"]),
        ("content_checksum", meta["content_checksum"]),
        ("suppressed cells", "empty value; display shows '<10' (small count of people) or 'x'"),
        ("sheets", ", ".join(job.tables)),
    ]
    return pd.DataFrame(rows, columns=["field", "value"])


def _json(job: _Job) -> None:
    for table, frame in job.tables.items():
        name = f"json/{table}.json"
        path = job.folder / name
        with atomic_output(path) as handle:
            tabular.write_json_table(frame, handle, header={"table": table, "release": job.number})
        job.record(name, path)


def _parquet(job: _Job) -> None:
    """The stored Parquet bytes as they are (their SHA-256 is the release's own); the tables
    the export adds (metrics, notices) written the same way."""
    from hub.releases import to_parquet

    for table, frame in job.tables.items():
        content = job.parquet.get(table)
        job.write(f"parquet/{table}.parquet", content if content is not None else to_parquet(frame))


def sdmx_indicators(indicators: pd.DataFrame) -> pd.DataFrame:
    """The indicator table as SDMX-CSV 1.0 rows of the dataflow ``SDMX_DATAFLOW``."""
    frame = indicators
    param = frame["param"].astype("float64")
    param_code = param.map(lambda p: f"{p:g}").astype("string")
    param_code = param_code.where(param >= 0, SDMX_NOT_APPLICABLE)
    suppressed = frame["suppressed"].astype("bool")
    reason = frame["suppression_reason"].astype("string").fillna("")
    obs_status = pd.Series("A", index=frame.index, dtype="string")
    obs_status = obs_status.where(~frame["provisional"].astype("bool"), "P").where(~suppressed, "O")
    conf_status = reason.map(lambda r: CONF_STATUS.get(r, "F")).astype("string").where(suppressed, "F")
    out = {
        "DATAFLOW": pd.Series(SDMX_DATAFLOW, index=frame.index, dtype="string"),
        "FREQ": frame["period_kind"].map(SDMX_FREQUENCY).astype("string"),
        "METRIC": frame["metric"],
        "STATISTIC": frame["statistic"],
        "STAT_PARAM": param_code,
        "LEVEL": frame["level"],
        "ENTITY": frame["entity"],
        **{name.upper(): frame[name] for name in DIMENSIONS},
        "TIME_PERIOD": frame["period"].str.replace("-H", "-S", regex=False),  # SDMX: 2025-S1
        "OBS_VALUE": frame["value"].where(~suppressed),
        "UNIT_MEASURE": frame["unit"],
        "OBS_STATUS": obs_status,
        "CONF_STATUS": conf_status,
        "SUPPRESSION": reason.where(suppressed, ""),
        "COVERAGE": frame["coverage"],
        "EVENT_COUNT": frame["event_count"],
        "LOWER_BOUND": frame["lower"],
        "UPPER_BOUND": frame["upper"],
    }
    return pd.DataFrame(out)


SDMX_DIMENSIONS = (
    "FREQ",
    "METRIC",
    "STATISTIC",
    "STAT_PARAM",
    "LEVEL",
    "ENTITY",
    *[d.upper() for d in DIMENSIONS],
)
SDMX_ATTRIBUTES = {
    "UNIT_MEASURE": "Unit of the metric (the catalogue's unit code).",
    "OBS_STATUS": "A normal, P provisional, O missing (suppressed): SDMX CL_OBS_STATUS.",
    "CONF_STATUS": "F free, C confidential (small count or dominance), D secondary: SDMX CL_CONF_STATUS.",
    "SUPPRESSION": "primary, secondary or dominance where the value is withheld.",
    "COVERAGE": "Organisations the observation rests on.",
    "EVENT_COUNT": "Events a distribution statistic rests on.",
    "LOWER_BOUND": "Lower error bound of an estimated percentile.",
    "UPPER_BOUND": "Upper error bound of an estimated percentile.",
}


def sdmx_structure(sdmx: pd.DataFrame, catalogue: Catalogue) -> dict[str, Any]:
    """The data structure of the SDMX-CSV file: dimensions with their codes, the measure and
    the attributes, as JSON (docs/exports.md explains it)."""
    names = {code: spec.name for code, spec in catalogue.metrics.items()}
    dimensions = []
    for position, dimension in enumerate(SDMX_DIMENSIONS, start=1):
        codes = sorted(str(c) for c in sdmx[dimension].dropna().unique())
        entry: dict[str, Any] = {"id": dimension, "position": position, "codes": codes}
        if dimension == "METRIC":
            entry["labels"] = {code: names.get(code, code) for code in codes}
        dimensions.append(entry)
    return {
        "dataflow": SDMX_DATAFLOW,
        "format": "SDMX-CSV 1.0",
        "dimensions": dimensions,
        "time_dimension": {"id": "TIME_PERIOD", "formats": ["YYYY", "YYYY-Sn", "YYYY-Qn", "YYYY-MM"]},
        "measure": {"id": "OBS_VALUE", "description": "The figure; empty where suppressed."},
        "attributes": [{"id": key, "description": text} for key, text in SDMX_ATTRIBUTES.items()],
        "not_applicable": SDMX_NOT_APPLICABLE,
        "total": "_T",
    }


def _sdmx(job: _Job, catalogue: Catalogue) -> None:
    if "indicators" not in job.tables:
        raise ExportError(f"release {job.number} has no indicators table to export as SDMX-CSV")
    sdmx = sdmx_indicators(job.tables["indicators"])
    path = job.folder / "sdmx/indicators.csv"
    with atomic_output(path) as handle:
        tabular.write_csv(sdmx, handle)
    job.record("sdmx/indicators.csv", path)
    structure = sdmx_structure(sdmx, catalogue)
    job.write("sdmx/structure.json", json.dumps(structure, indent=1, ensure_ascii=False).encode())


def table_schema(table: str, frame: pd.DataFrame) -> dict[str, Any]:
    """A Frictionless Table Schema of ``frame``, with the table's primary key where it has one."""
    fields = []
    for name in frame.columns:
        field: dict[str, Any] = {"name": str(name), "type": tabular.field_type(frame[name])}
        if name in COLUMN_DESCRIPTIONS:
            field["description"] = COLUMN_DESCRIPTIONS[name]
        fields.append(field)
    schema: dict[str, Any] = {"fields": fields, "missingValues": [""]}
    key = {**DEFAULT_KEYS, **EXTRA_KEYS}.get(table)
    if key and table != "observations":  # an observation's key includes empty breakdowns
        schema["primaryKey"] = list(key)
    return schema


def _datapackage(job: _Job) -> None:
    if not all(f"csv/{t}.csv" in job.written for t in job.tables):
        _csv(job)  # the package describes the CSV files
    resources = []
    for table, frame in job.tables.items():
        exported = job.written[f"csv/{table}.csv"]
        resources.append(
            {
                "name": table.replace("_", "-"),
                "path": exported.name,
                "profile": "tabular-data-resource",
                "format": "csv",
                "mediatype": "text/csv",
                "encoding": "utf-8",
                "bytes": exported.size,
                "hash": f"sha256:{exported.sha256}",
                "dialect": {"delimiter": ",", "lineTerminator": "\r\n", "quoteChar": '"', "header": True},
                "schema": table_schema(table, frame),
            }
        )
    meta = job.metadata
    package = {
        "profile": "tabular-data-package",
        "name": f"csea-hub-release-{job.number}",
        "title": meta["title"],
        "version": str(job.number),
        "created": meta["published_at"],
        "description": "Disclosure-controlled figures of a published release of the CSEA transparency hub.",
        "resources": resources,
    }
    job.write("datapackage.json", json.dumps(package, indent=1, ensure_ascii=False).encode())


def _zip(job: _Job) -> None:
    """One zip of every file written, with their SHA256SUMS."""
    name = f"release-{job.number}.zip"
    path = job.folder / name
    members = sorted(n for n in job.written if not n.endswith(".zip") and not n.endswith(".zip.sha256"))
    sums = "".join(f"{job.written[n].sha256}  {n}\n" for n in members)
    with atomic_output(path) as handle, zipfile.ZipFile(handle, "w", allowZip64=True) as archive:
        for member in members:
            compressed = member.endswith((".xlsx", ".parquet"))  # compressed already
            archive.write(
                job.folder / member,
                f"release-{job.number}/{member}",
                compress_type=zipfile.ZIP_STORED if compressed else zipfile.ZIP_DEFLATED,
                compresslevel=None if compressed else 1,
            )
        archive.writestr(f"release-{job.number}/{CHECKSUMS}", sums)
    job.record(name, path)
    job.write(f"{name}.sha256", f"{job.written[name].sha256}  {name}\n".encode())


def _write_format(job: _Job, fmt: str, catalogue: Catalogue) -> None:
    writers: dict[str, Callable[[], None]] = {
        "csv": lambda: _csv(job),
        "xlsx": lambda: _xlsx(job),
        "json": lambda: _json(job),
        "parquet": lambda: _parquet(job),
        "sdmx": lambda: _sdmx(job, catalogue),
        "datapackage": lambda: _datapackage(job),
        "zip": lambda: _zip(job),
    }
    writers[fmt]()


# --- the release and the folder -------------------------------------------------------------


def _metadata(session: Session, number: int) -> dict[str, Any]:
    release = get_release(session, number)
    return {
        "release": release.number,
        "title": release.title,
        "status": release.status,
        "built_at": release.built_at.isoformat() if release.built_at else None,
        "published_at": release.published_at.isoformat() if release.published_at else None,
        "content_checksum": release.content_checksum,
        "notes": release.notes,
        "notices": [
            {"created_at": n.created_at.isoformat(), "text": n.text} for n in notices(session, number)
        ],
        "exported_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def _read_checksums(folder: Path) -> dict[str, str]:
    path = folder / CHECKSUMS
    if not path.is_file():
        return {}
    known = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        digest, _, name = line.partition("  ")
        if name and (folder / name).is_file():
            known[name] = digest
    return known


def export_release(
    session: Session, catalogue: Catalogue, number: int, formats: Sequence[str], out: Path
) -> Export:
    """Write release ``number`` in ``formats`` to ``out/release-N/``; what was written."""
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise ExportError(
            f"unknown export format {', '.join(unknown) or '(none)'}; known: {', '.join(FORMATS)}"
        )
    release = get_release(session, number)
    if release.status != "published":
        raise ExportError(f"release {number} is {release.status}: only a published release is exported")
    tables = read_release(session, number, with_revisions=True)
    metrics = sorted(set(tables.get("indicators", pd.DataFrame({"metric": []}))["metric"]))
    tables[METRICS] = metric_definitions(catalogue, metrics)
    metadata = _metadata(session, number)
    tables[NOTICES] = pd.DataFrame(metadata["notices"], columns=["created_at", "text"]).astype("string")
    ordered = {name: tables[name] for name in _table_order(tables)}
    stored = session.exec(
        select(ReleaseTable.name, ReleaseTable.content).where(col(ReleaseTable.release_id) == release.id)
    )
    folder = out / f"release-{number}"
    folder.mkdir(parents=True, exist_ok=True)
    remove_stale_parts(folder)
    job = _Job(number, ordered, dict(stored.all()), metadata, folder, {})
    job.write(METADATA, json.dumps(metadata, indent=1, ensure_ascii=False).encode())
    # the zip holds every other format; the XLSX workbook (Arrow kernels and zlib, which let go
    # of the GIL) is written in a second thread beside the others
    wanted = [f for f in FORMATS if f in formats or ("zip" in formats and f != "zip")]
    with ThreadPoolExecutor(max_workers=1) as side:
        workbook = side.submit(_write_format, job, "xlsx", catalogue) if "xlsx" in wanted else None
        for fmt in wanted:
            if fmt not in ("xlsx", "zip"):
                _write_format(job, fmt, catalogue)
        if workbook is not None:
            workbook.result()
    if "zip" in wanted:
        _zip(job)
    sums = {**_read_checksums(folder), **{n: f.sha256 for n, f in job.written.items()}}
    write_atomically(folder / CHECKSUMS, "".join(f"{d}  {n}\n" for n, d in sorted(sums.items())).encode())
    return Export(folder, sorted(job.written.values(), key=lambda f: f.name))


def _table_order(tables: dict[str, pd.DataFrame]) -> list[str]:
    first = [
        "indicators",
        "targets",
        "reconciliation",
        "coverage",
        "peers",
        "observations",
        METRICS,
        REVISIONS,
        NOTICES,
    ]
    return [t for t in first if t in tables] + sorted(t for t in tables if t not in first)


def read_json_table(content: bytes) -> pd.DataFrame:
    """A JSON export back as a table (for tests and re-users)."""
    document = json.load(io.BytesIO(content))
    return pd.DataFrame(document["rows"], columns=[c["name"] for c in document["columns"]])
