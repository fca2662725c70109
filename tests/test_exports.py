"""Exports of a published release: every format readable back to the release's own figures,
checksums that verify, suppressed cells empty everywhere, nothing written for a release the
public may not see, and no partial file left by a failure or a killed process."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import signal
import subprocess
import sys
import zipfile
from pathlib import Path

import openpyxl
import pandas as pd
import pytest
from hubcli import hub_in_process, hub_process
from sqlmodel import Session
from test_public_pages import releases  # noqa: F401 - a fixture
from test_publication import ANONYMOUS, alliance  # noqa: F401 - a fixture

from hub import exports, tabular
from hub.catalogue import Catalogue
from hub.files import atomic_output, remove_stale_parts
from hub.models import User
from hub.releases import add_notice, read_release, read_release_table, withdraw_release
from hub.settings import REPO_ROOT

FORMULA_NOTICE = '=HYPERLINK("http://example.invalid","x") figures for 2024 corrected'


def _sums(folder: Path, listing: str) -> dict[str, str]:
    pairs = (line.split("  ", 1) for line in listing.splitlines())
    return {name: digest for digest, name in pairs}


def _verify(folder: Path, sums: dict[str, str]) -> None:
    for name, digest in sums.items():
        assert hashlib.sha256((folder / name).read_bytes()).hexdigest() == digest, name


@pytest.fixture
def exported(
    session: Session,
    catalogue: Catalogue,
    releases: dict[str, int],
    alliance: dict[str, object],
    tmp_path: Path,
) -> tuple[Path, int]:
    sec = alliance["sec"]
    assert isinstance(sec, User)
    add_notice(session, releases["published"], sec, FORMULA_NOTICE)
    session.commit()
    export = exports.export_release(session, catalogue, releases["published"], ["zip"], tmp_path)
    assert export.folder == tmp_path / f"release-{releases['published']}"
    return export.folder, releases["published"]


def test_every_format_reads_back_to_the_release(session: Session, exported: tuple[Path, int]) -> None:
    folder, number = exported
    tables = read_release(session, number, with_revisions=True)
    indicators = tables["indicators"]
    # SHA256SUMS covers every file and verifies, as `sha256sum -c` would
    sums = _sums(folder, (folder / exports.CHECKSUMS).read_text())
    on_disk = {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()} - {exports.CHECKSUMS}
    assert set(sums) == on_disk
    _verify(folder, sums)
    for table in (*tables, exports.METRICS, exports.NOTICES):
        for name in (f"csv/{table}.csv", f"json/{table}.json", f"parquet/{table}.parquet"):
            assert name in sums, name

    # CSV: RFC 4180 with CRLF, the same figures; suppressed cells empty
    raw = (folder / "csv/indicators.csv").read_bytes()
    assert raw.count(b"\r\n") == len(indicators) + 1 and b"\n" not in raw.replace(b"\r\n", b"")
    back = pd.read_csv(io.BytesIO(raw), keep_default_na=False, na_values=[""])
    assert list(back.columns) == list(indicators.columns) and len(back) == len(indicators)
    assert back["value"].sum() == pytest.approx(indicators["value"].sum())
    assert (
        back.loc[back["suppressed"], ["value", "lower", "upper", "numerator", "denominator"]]
        .isna()
        .all()
        .all()
    )
    assert set(back.loc[back["suppressed"], "display"]) <= {"<10", "x"} and (back["display"] == "<10").any()

    # Parquet: the release's own stored bytes
    for table in tables:
        assert pd.read_parquet(folder / f"parquet/{table}.parquet").equals(
            read_release_table(session, number, table)
        )

    # JSON: columns with types, rows as arrays, null for missing
    document = json.loads((folder / "json/indicators.json").read_bytes())
    assert document["table"] == "indicators" and document["release"] == number
    assert {c["name"]: c["type"] for c in document["columns"]}["value"] == "number"
    rows = exports.read_json_table((folder / "json/indicators.json").read_bytes())
    assert len(rows) == len(indicators) and rows["value"].sum() == pytest.approx(indicators["value"].sum())
    assert rows.loc[rows["suppressed"], "value"].isna().all()

    # XLSX: an about sheet, then one sheet per table with the same header and figures
    book = openpyxl.load_workbook(folder / f"xlsx/release-{number}.xlsx", read_only=True)
    assert book.sheetnames[0] == "about" and "indicators" in book.sheetnames
    sheet_rows = list(book["indicators"].iter_rows(values_only=True))
    assert list(sheet_rows[0]) == list(indicators.columns) and len(sheet_rows) == len(indicators) + 1
    values = [r[list(indicators.columns).index("value")] for r in sheet_rows[1:]]
    assert sum(v for v in values if v is not None) == pytest.approx(indicators["value"].sum())
    notices = list(book[exports.NOTICES].iter_rows(values_only=True))
    assert notices[1][1] == "'" + FORMULA_NOTICE  # a formula stays text

    # the formula-like notice is neutralised in CSV, kept as data in JSON and release.json
    notices_csv = list(csv.reader(io.StringIO((folder / "csv/notices.csv").read_text())))
    assert notices_csv[1][1] == "'" + FORMULA_NOTICE
    assert json.loads((folder / exports.METADATA).read_text())["notices"][0]["text"] == FORMULA_NOTICE


def test_sdmx_csv_marks_suppressed_and_provisional_values(
    session: Session, exported: tuple[Path, int], catalogue: Catalogue
) -> None:
    folder, number = exported
    indicators = read_release_table(session, number, "indicators")
    sdmx = pd.read_csv(
        folder / "sdmx/indicators.csv",
        keep_default_na=False,
        na_values=[""],
        dtype={"STAT_PARAM": str, "TIME_PERIOD": str},
    )
    structure = json.loads((folder / "sdmx/structure.json").read_text())
    dimension_ids = [d["id"] for d in structure["dimensions"]]
    assert list(sdmx.columns[:1]) == ["DATAFLOW"] and (sdmx["DATAFLOW"] == exports.SDMX_DATAFLOW).all()
    assert list(sdmx.columns[1 : 1 + len(dimension_ids)]) == dimension_ids
    assert "TIME_PERIOD" in sdmx.columns and "OBS_VALUE" in sdmx.columns
    assert [a["id"] for a in structure["attributes"]] == [
        c for c in sdmx.columns if c in exports.SDMX_ATTRIBUTES
    ]
    assert len(sdmx) == len(indicators)
    # one observation per key
    assert not sdmx.duplicated([*dimension_ids, "TIME_PERIOD"]).any()
    withheld = sdmx["OBS_STATUS"] == "O"
    assert withheld.sum() == indicators["suppressed"].sum() > 0
    assert sdmx.loc[withheld, "OBS_VALUE"].isna().all()
    assert set(sdmx.loc[withheld, "CONF_STATUS"]) <= {"C", "D"} and set(
        sdmx.loc[~withheld, "CONF_STATUS"]
    ) == {"F"}
    assert (sdmx.loc[sdmx["SUPPRESSION"] == "primary", "CONF_STATUS"] == "C").all()
    provisional = indicators["provisional"].to_numpy() & ~indicators["suppressed"].to_numpy()
    assert (sdmx.loc[provisional, "OBS_STATUS"] == "P").all()
    assert (
        set(sdmx["FREQ"]) <= {"A", "Q", "M"}
        and (sdmx.loc[sdmx["FREQ"] == "A", "TIME_PERIOD"].str.len() == 4).all()
    )
    assert set(sdmx.loc[sdmx["STATISTIC"] == "value", "STAT_PARAM"]) == {exports.SDMX_NOT_APPLICABLE}
    metric = next(d for d in structure["dimensions"] if d["id"] == "METRIC")
    assert metric["labels"]["le_victims_identified"] == catalogue.metrics["le_victims_identified"].name


def test_the_data_package_describes_the_csv_files(exported: tuple[Path, int]) -> None:
    from frictionless import Package

    folder, number = exported
    descriptor = json.loads((folder / "datapackage.json").read_text())
    assert descriptor["name"] == f"csea-hub-release-{number}"
    names = {r["name"] for r in descriptor["resources"]}
    assert {"indicators", "targets", "observations", "metrics", "notices"} <= names
    indicators = next(r for r in descriptor["resources"] if r["name"] == "indicators")
    assert indicators["schema"]["primaryKey"][:3] == ["metric", "period", "period_kind"]
    for resource in descriptor["resources"]:
        assert (
            resource["hash"]
            == "sha256:" + hashlib.sha256((folder / resource["path"]).read_bytes()).hexdigest()
        )
    # frictionless checks the descriptor, every row against its schema, the primary keys, the hashes
    report = Package(folder / "datapackage.json").validate()
    errors = [e.message for task in report.tasks for e in task.errors][:5]
    assert report.valid, errors


def test_the_zip_holds_everything_with_checksums_that_verify(
    exported: tuple[Path, int], tmp_path: Path
) -> None:
    folder, number = exported
    archive_path = folder / f"release-{number}.zip"
    digest, name = (folder / f"release-{number}.zip.sha256").read_text().split()
    assert name == archive_path.name and hashlib.sha256(archive_path.read_bytes()).hexdigest() == digest
    with zipfile.ZipFile(archive_path) as archive:
        assert archive.testzip() is None
        archive.extractall(tmp_path / "unzipped")
    inside = tmp_path / "unzipped" / f"release-{number}"
    sums = _sums(inside, (inside / exports.CHECKSUMS).read_text())
    formats = {n.split("/")[0] for n in sums}
    assert {"csv", "xlsx", "json", "parquet", "sdmx", "datapackage.json", "release.json"} <= formats
    _verify(inside, sums)


def test_no_export_holds_an_anonymous_organisation_or_an_unpublished_figure(
    session: Session, exported: tuple[Path, int], releases: dict[str, int]
) -> None:
    folder, _ = exported
    texts = [p for p in folder.rglob("*") if p.suffix in {".csv", ".json"}]
    for path in texts:
        content = path.read_text(encoding="utf-8")
        for code in ANONYMOUS:
            assert code not in content, (path, code)
    # the draft release restated co_items_actioned 2025 to 5,234: not in the published export
    assert "5234" not in (folder / "csv/observations.csv").read_text()
    assert not (folder.parent / f"release-{releases['unpublished']}").exists()


def test_only_a_published_release_is_exported(
    session: Session,
    catalogue: Catalogue,
    releases: dict[str, int],
    alliance: dict[str, object],
    tmp_path: Path,
) -> None:
    out = tmp_path / "exports"
    with pytest.raises(exports.ExportError, match="is built: only a published release"):
        exports.export_release(session, catalogue, releases["unpublished"], ["csv"], out)
    with pytest.raises(exports.ExportError, match="unknown export format pdf"):
        exports.export_release(session, catalogue, releases["published"], ["pdf"], out)
    sec = alliance["sec"]
    assert isinstance(sec, User)
    withdraw_release(session, releases["published"], sec, reason="a figure was wrong")
    session.commit()
    with pytest.raises(exports.ExportError, match="is withdrawn"):
        exports.export_release(session, catalogue, releases["published"], ["csv"], out)
    assert not out.exists()


def test_a_failing_format_leaves_no_file_and_the_earlier_ones_intact(
    session: Session,
    catalogue: Catalogue,
    releases: dict[str, int],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    number = releases["published"]
    exports.export_release(session, catalogue, number, ["csv"], tmp_path)
    folder = tmp_path / f"release-{number}"
    before = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}

    def half_then_fail(frame: pd.DataFrame, sink: io.BufferedWriter, header: object = None) -> None:
        sink.write(b'{"table": "half')
        raise OSError("disk full")

    monkeypatch.setattr(tabular, "write_json_table", half_then_fail)
    with pytest.raises(OSError, match="disk full"):
        exports.export_release(session, catalogue, number, ["json"], tmp_path)
    assert not (folder / "json").exists() or list((folder / "json").iterdir()) == []
    assert [p.name for p in folder.rglob("*.part")] == []
    after = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file() and p.name != exports.METADATA}
    assert after == {p: c for p, c in before.items() if p.name != exports.METADATA}


def test_a_killed_writer_leaves_only_a_hidden_part_file(tmp_path: Path) -> None:
    target = tmp_path / "out" / "big.csv"
    script = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from hub.files import atomic_output\n"
        "with atomic_output(Path(sys.argv[1])) as handle:\n"
        "    handle.write(b'x' * 100000); handle.flush()\n"
        "    print('writing', flush=True)\n"
        "    time.sleep(60)\n"
    )
    writer = subprocess.Popen(
        [sys.executable, "-c", script, str(target)], stdout=subprocess.PIPE, cwd=REPO_ROOT, text=True
    )
    assert writer.stdout is not None and writer.stdout.readline().strip() == "writing"
    writer.send_signal(signal.SIGKILL)
    writer.wait(timeout=10)
    assert not target.exists()
    parts = list(target.parent.iterdir())
    assert len(parts) == 1 and parts[0].name.startswith(".big.csv.") and parts[0].name.endswith(".part")
    assert remove_stale_parts(tmp_path) == 1 and list(target.parent.iterdir()) == []
    # and a completed write replaces the old file whole
    target.write_bytes(b"old")
    with atomic_output(target) as handle:
        handle.write(b"new")
        assert target.read_bytes() == b"old"
    assert target.read_bytes() == b"new"


def test_cli_exports_and_refuses_in_one_line(
    cli_env: dict[str, str], releases: dict[str, int], tmp_path: Path
) -> None:
    result = hub_process(
        cli_env, "export", "--release", str(releases["published"]), "--format", "csv", "--out", str(tmp_path)
    )
    assert result.returncode == 0, result.stderr
    assert "  csv/indicators.csv" in result.stdout and f"release {releases['published']}: " in result.stdout
    refused = hub_in_process(
        cli_env,
        "export",
        "--release",
        str(releases["unpublished"]),
        "--format",
        "all",
        "--out",
        str(tmp_path),
    )
    assert refused.returncode == 1
    assert refused.stderr.strip() == (
        f"error: release {releases['unpublished']} is built: only a published release is exported"
    )
    missing = hub_in_process(cli_env, "export", "--release", "99", "--format", "csv", "--out", str(tmp_path))
    assert missing.returncode == 1 and missing.stderr.strip() == "error: no release number 99"
