"""The public-data importer: NCMEC's and platforms' published figures, exactly as printed.

Runs on SQLite and PostgreSQL (the ``session`` fixture). The key checks are NCMEC's own
printed totals: if the per-provider or per-country figures do not add up to them, a name
mapping or the parsing is wrong.
"""

from __future__ import annotations

import csv
import shutil
import subprocess
from decimal import Decimal
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError
from sqlalchemy import func
from sqlmodel import Session, col, select

from hub.catalogue import Catalogue
from hub.errors import ImportProblem
from hub.models import AuditEvent, MetricDefinition, Observation, Organisation, Period, Submission
from hub.settings import REPO_ROOT, Settings
from ingest.parsing import parse_printed_number, parse_published_period, read_csv
from ingest.public_data import PublicImportReport, import_public_data
from ingest.public_spec import Target

DATA = REPO_ROOT / "data"
BAD = Path(__file__).parent / "fixtures" / "public_bad"
HUB = str(REPO_ROOT / ".venv" / "bin" / "hub")
ESP_FILE = "ncmec_cybertipline_reports_by_esp_2019_2023.csv"
COUNTRY_FILE = "ncmec_cybertipline_reports_by_country_2020_2023.csv"

NCMEC_ESP_TOTALS = {
    "2019": 16_836_694,
    "2020": 21_447_786,
    "2021": 29_157_083,
    "2022": 31_802_525,
    "2023": 35_944_826,
}
NCMEC_ALL_SOURCES = {"2020": 21_751_085, "2021": 29_397_681}


def _import(session: Session, catalogue: Catalogue, folder: Path) -> PublicImportReport:
    report = import_public_data(session, catalogue, folder, DATA)
    session.commit()
    return report


@pytest.fixture
def public_data(settings: Settings) -> Path:
    """The real published files (shared/public-data, or HUB_PUBLIC_DATA_DIR)."""
    return settings.public_data_dir


@pytest.fixture
def imported(session: Session, catalogue: Catalogue, public_data: Path) -> PublicImportReport:
    return _import(session, catalogue, public_data)


@pytest.fixture
def is_sqlite(session: Session) -> bool:
    return session.get_bind().dialect.name == "sqlite"


def _observations(
    session: Session, scope: str, metric: str, publisher: str = "ncmec", **dims: str
) -> dict[str, Observation]:
    """Period code -> observation of one metric and dimension combination in one submission."""
    query = (
        select(Period.code, Observation)
        .join(Submission, col(Submission.id) == Observation.submission_id)
        .join(Organisation, col(Organisation.id) == Submission.organisation_id)
        .join(MetricDefinition, col(MetricDefinition.id) == Observation.metric_id)
        .join(Period, col(Period.id) == Observation.period_id)
        .where(Submission.scope == scope, MetricDefinition.code == metric, Organisation.code == publisher)
    )
    for dimension, value in dims.items():
        query = query.where(getattr(Observation, dimension) == value)
    found = list(session.exec(query))
    result = dict(found)
    assert len(result) == len(found), "one observation per period expected"
    return result


def _sums_by_year(session: Session, scope: str, broken_down_by: str) -> dict[str, int]:
    """Year -> sum of ch_reports_received over the rows that name a ``broken_down_by`` value."""
    query = (
        select(Period.code, func.sum(Observation.value))
        .join(Submission, col(Submission.id) == Observation.submission_id)
        .join(MetricDefinition, col(MetricDefinition.id) == Observation.metric_id)
        .join(Period, col(Period.id) == Observation.period_id)
        .where(
            Submission.scope == scope,
            MetricDefinition.code == "ch_reports_received",
            getattr(Observation, broken_down_by) != "_T",
        )
        .group_by(col(Period.code))
    )
    return {code: int(total or 0) for code, total in session.exec(query)}


def _row_counts(session: Session) -> dict[str, int]:
    tables = (Observation, Submission, Period, AuditEvent, Organisation, MetricDefinition)
    return {table.__name__: session.exec(select(func.count()).select_from(table)).one() for table in tables}


def _copy(source: Path, tmp_path: Path) -> Path:
    """A writable copy of the (read-only) public folder."""
    folder = tmp_path / "public-data"
    shutil.copytree(source, folder, copy_function=shutil.copyfile)
    folder.chmod(0o755)
    return folder


def _altered_copy(source: Path, tmp_path: Path, file: str, old: str, new: str) -> tuple[Path, int]:
    """The public folder with one printed string changed; returns the folder and the line."""
    folder = _copy(source, tmp_path)
    path = folder / file
    raw = path.read_bytes().decode("utf-8")
    assert raw.count(old) == 1, f"{old!r} must occur once in {file}"
    path.write_bytes(raw.replace(old, new).encode("utf-8"))
    line = raw[: raw.index(old)].count("\n") + 1
    return folder, line


# --------------------------------------------------------------------------- key checks


def test_per_provider_reports_add_up_to_ncmec_printed_totals(
    session: Session, imported: PublicImportReport
) -> None:
    sums = _sums_by_year(session, "public:ncmec_esp", "counterpart")
    assert sums == NCMEC_ESP_TOTALS


def test_per_country_reports_add_up_to_the_yearly_totals(
    session: Session, public_data: Path, imported: PublicImportReport
) -> None:
    yearly_file = read_csv(public_data / "ocse-reports-per-year.csv")
    printed = {row.cells["year"]: int(row.cells["reports"]) for row in yearly_file.rows}
    assert {year: printed[year] for year in NCMEC_ALL_SOURCES} == NCMEC_ALL_SOURCES
    yearly = _observations(session, "public:ncmec_yearly", "ch_reports_received")
    assert {year: yearly[year].value for year in NCMEC_ALL_SOURCES} == NCMEC_ALL_SOURCES
    by_country = _sums_by_year(session, "public:ncmec_country", "country")
    assert {year: by_country[year] for year in NCMEC_ALL_SOURCES} == NCMEC_ALL_SOURCES
    # as the README says: 2022 is 1 short and 2023 is 4 short (rows lost when NCMEC's PDF was parsed)
    assert printed["2022"] - by_country["2022"] == 1
    assert printed["2023"] - by_country["2023"] == 4


def test_ncmec_facts_of_the_brief(session: Session, imported: PublicImportReport) -> None:
    for provider, reports in {"facebook": 17_838_422, "instagram": 11_430_007, "google": 1_470_958}.items():
        by_year = _observations(session, "public:ncmec_esp", "ch_reports_received", counterpart=provider)
        assert by_year["2023"].value == reports, provider
    notices = _observations(session, "public:ncmec_notifications", "ch_hosted_notices_sent", counterpart="_T")
    assert notices["2021"].value == 75_038
    hours = _observations(
        session, "public:ncmec_notifications", "ch_mean_hours_to_takedown", counterpart="_T"
    )
    assert hours["2021"].value == pytest.approx(1.22 * 24)
    assert hours["2021"].source_label == "ESP Total | average days to takedown as published: 1.22"
    assert "2022" not in hours  # NCMEC printed no average for 2022: no observation


def test_both_ends_of_the_discord_flow_are_kept(session: Session, imported: PublicImportReport) -> None:
    scope = "public:comparable_reports"
    own = _observations(session, scope, "co_reports_to_authority", publisher="discord", counterpart="ncmec")
    seen = _observations(session, scope, "ch_reports_received", counterpart="discord")
    assert own["2023"].value == 164_478
    assert seen["2023"].value == 339_412


# ---------------------------------------------------------------------- values and names


def test_cells_are_read_as_printed() -> None:
    table = read_csv(BAD / "cells_as_printed.csv")
    assert [row.cells["country"] for row in table.rows] == ["NA", "Namibia", "NA", "NA"]
    assert [row.line for row in table.rows] == [2, 3, 4, 5]
    values = [parse_printed_number(row.cells["value"]) for row in table.rows]
    assert values[0] is not None and values[0].value == 1234 and values[0].is_plain
    assert values[1] is not None and values[1].value == Decimal("0.978")
    assert values[2] is not None and values[2].value is None  # "N/A": published as not available
    assert values[3] is None  # empty: nothing published
    scaled = parse_printed_number("99.1", Decimal("0.01"))
    assert scaled is not None and scaled.value == Decimal("0.991")
    periods = [parse_published_period(row.cells["period"]).code for row in table.rows]
    assert periods == ["2023", "2023-H2", "2023-Q4", "2024-Q2"]


def test_stored_values_keep_what_was_printed(session: Session, imported: PublicImportReport) -> None:
    meta = "public:meta_metrics"
    rate = _observations(
        session, meta, "co_proactive_share", "facebook", category="child_sexual_exploitation"
    )
    assert rate["2024-Q2"].value == pytest.approx(0.978)
    assert rate["2024-Q2"].source_label == (
        "Child Endangerment: Sexual Exploitation | Proactive rate as published: 97.80%"
    )
    actioned = _observations(
        session, meta, "co_items_actioned", "facebook", category="child_endangerment_other"
    )
    assert actioned["2017-Q4"].value is None
    assert actioned["2017-Q4"].source_label == (
        "Child Endangerment: Nudity and Physical Abuse | Content Actioned as published: N/A"
    )
    total = _observations(
        session, "public:ncmec_contents", "ch_reports_received", category="_T", jurisdiction="_T"
    )
    assert total["2020"].value == 21_751_085  # printed "21,751,085"


def test_namibia_stays_namibia(session: Session, imported: PublicImportReport) -> None:
    namibia = _observations(session, "public:ncmec_country", "ch_reports_received", country="NA")
    assert {year: o.value for year, o in namibia.items()} == {
        "2020": 789,
        "2021": 906,
        "2022": 1318,
        "2023": 1345,
    }
    assert namibia["2020"].source_label == "Namibia"


def test_two_printed_names_of_one_code_add_up(session: Session, imported: PublicImportReport) -> None:
    guiana = _observations(session, "public:ncmec_country", "ch_reports_received", country="GF")
    assert guiana["2020"].source_label == "French Guiana + Guiana, French"
    microsoft = _observations(session, "public:ncmec_esp", "ch_reports_received", counterpart="microsoft")
    assert microsoft["2022"].value == 107_274 + 138


def test_several_rows_per_period_become_service_parts(session: Session, imported: PublicImportReport) -> None:
    scope = "public:platform_microsoft"
    part_1 = _observations(session, scope, "co_items_actioned", "microsoft", service="part-1")
    part_2 = _observations(session, scope, "co_items_actioned", "microsoft", service="part-2")
    assert (part_1["2023-H2"].value, part_2["2023-H2"].value) == (66_603, 61_348)
    share = _observations(session, scope, "co_proactive_share", "microsoft", service="part-1")
    assert share["2023-H2"].value == pytest.approx(0.991)  # printed 99.1, scale 0.01
    reports = _observations(session, scope, "co_reports_to_authority", "microsoft", service="_T")
    assert [reports[half].value for half in ("2023-H1", "2023-H2")] == [79_971, 60_749]  # 140,720 a year
    notices = "public:ncmec_notifications", "ch_hosted_notices_sent"
    assert _observations(session, *notices, counterpart="microsoft", service="_T") == {}  # only parts
    parts = [
        _observations(session, *notices, counterpart="microsoft", service=f"part-{n}") for n in (1, 2, 3)
    ]
    assert [part["2022"].value for part in parts] == [29, 136, 577]
    assert "2021" not in parts[2]  # two rows in 2021, three in 2022
    discord = _observations(session, *notices, counterpart="discord", service="_T")  # a lone row: no part
    assert discord["2021"].value == 68


def test_report_says_what_was_skipped(public_data: Path, imported: PublicImportReport) -> None:
    files = {report.name: report for report in imported.files}
    assert len(files) == len(list(public_data.glob("*.csv")))
    assert files["platform_twitch_csea_disclosures.csv"].stored == 0
    assert (
        files["platform_twitch_csea_disclosures.csv"].skipped["redundant rows (repeat another disclosure)"]
        == 8
    )
    assert files["meta_child_safety_metrics_to_2024q2.csv"].not_available == 325
    summary = imported.summary()
    assert "platform_twitch_csea_disclosures.csv: 8 rows read" in summary
    assert "8 redundant rows" in summary and "published as N/A" in summary
    assert imported.observations_stored == sum(report.figures for report in imported.files)


def test_import_is_fast(is_sqlite: bool, imported: PublicImportReport) -> None:
    if is_sqlite:
        assert imported.seconds < 10


def test_importing_twice_stores_nothing_new(
    session: Session, catalogue: Catalogue, public_data: Path, imported: PublicImportReport
) -> None:
    before = _row_counts(session)
    again = _import(session, catalogue, public_data)
    assert again.observations_stored == 0
    assert all(report.submissions_new == 0 for report in again.files)
    assert _row_counts(session) == before


def test_dry_run_stores_nothing(session: Session, catalogue: Catalogue, public_data: Path) -> None:
    before = _row_counts(session)
    report = import_public_data(session, catalogue, public_data, DATA, dry_run=True)
    assert report.observations_stored == 0
    assert _row_counts(session) == before


def test_every_public_submission_keeps_its_source_definition(
    session: Session, imported: PublicImportReport
) -> None:
    submissions = session.exec(select(Submission).where(Submission.channel == "public_source")).all()
    assert len(submissions) == sum(report.submissions_new for report in imported.files) > 20
    assert all(s.source_name and (s.source_definition or "").strip() for s in submissions)
    by_scope = {s.scope: s.source_definition or "" for s in submissions}
    assert by_scope["public:ncmec_esp"].startswith("CyberTipline reports NCMEC received from each")
    assert by_scope["public:platform_instagram"].startswith("Instagram's figures")  # not Facebook's
    # a column's own definition is added where its figures are stored, and only there
    assert "'reports': reports GitHub made to NCMEC" in by_scope["public:platform_github"]
    assert "'pieces (automated)': " in by_scope["public:platform_x"]
    assert "automated" not in by_scope["public:platform_twitter"]
    comparable = dict(
        session.exec(
            select(Organisation.code, Submission.source_definition)
            .join(Organisation, col(Organisation.id) == Submission.organisation_id)
            .where(Submission.scope == "public:comparable_reports")
        ).all()
    )
    assert "NCMEC's count of the CyberTipline reports" in (comparable["ncmec"] or "")
    assert "the provider's own count" in (comparable["discord"] or "")
    assert "NCMEC's count" not in (comparable["discord"] or "")


# ----------------------------------------------------------------------- refused imports


@pytest.mark.parametrize(
    ("file", "old", "new", "message"),
    [
        (
            ESP_FILE,
            "2021,Facebook,",
            "2021,Facebook Platforms Ltd,",
            "unknown organisation name 'Facebook Platforms Ltd'",
        ),
        (COUNTRY_FILE, "2021,Namibia,", "2021,Namibya,", "unknown country name 'Namibya'"),
        (
            "meta_child_safety_metrics_to_2024q2.csv",
            "Instagram,Child Endangerment: Sexual Exploitation,Proactive rate,2024Q2",
            "Instagram,Child Endangerment: Grooming,Proactive rate,2024Q2",
            "unmapped category 'Child Endangerment: Grooming'",
        ),
        (
            "platform_snap_csea_disclosures.csv",
            '"5.43 / 100 * 2,510,798",,True',
            '"5.43 / 100 * 2,510,798",,False',
            "'accounts': '5.43 / 100 * 2,510,798' is not a number",
        ),
    ],
    ids=["organisation", "country", "category", "value"],
)
def test_an_unreadable_row_stops_the_import_and_stores_nothing(
    session: Session,
    catalogue: Catalogue,
    public_data: Path,
    imported: PublicImportReport,
    tmp_path: Path,
    file: str,
    old: str,
    new: str,
    message: str,
) -> None:
    folder, line = _altered_copy(public_data, tmp_path, file, old, new)
    (folder / "platform_twitch_csea_disclosures.csv").write_text(  # new content: would be stored
        "period,reports,redundant\n2024 H1,1,False\n", encoding="utf-8"
    )
    before = _row_counts(session)
    with pytest.raises(ImportProblem) as refused:
        import_public_data(session, catalogue, folder, DATA)
    assert f"{file} line {line}: {message}" in str(refused.value)
    assert _row_counts(session) == before  # counted in the same transaction: nothing was written


def test_an_unmapped_column_stops_the_import(
    session: Session, catalogue: Catalogue, public_data: Path, tmp_path: Path
) -> None:
    folder = _copy(public_data, tmp_path)
    shutil.copyfile(
        BAD / "platform_youtube_csea_disclosures.csv", folder / "platform_youtube_csea_disclosures.csv"
    )
    before = _row_counts(session)
    with pytest.raises(ImportProblem) as refused:
        import_public_data(session, catalogue, folder, DATA)
    assert "platform_youtube_csea_disclosures.csv line 1: column 'livestreams ended' is not in" in str(
        refused.value
    )
    assert _row_counts(session) == before


def test_a_file_without_mapping_stops_the_import(
    session: Session, catalogue: Catalogue, public_data: Path, tmp_path: Path
) -> None:
    folder = _copy(public_data, tmp_path)
    with (folder / "platform_newcomer_csea_disclosures.csv").open(
        "w", newline="", encoding="utf-8"
    ) as handle:
        csv.writer(handle).writerows([["period", "reports", "redundant"], ["2023", "5", "False"]])
    with pytest.raises(ImportProblem, match=r"platform_newcomer_csea_disclosures\.csv: no entry"):
        import_public_data(session, catalogue, folder, DATA)


@pytest.mark.parametrize("definition", [None, "   "], ids=["missing", "blank"])
def test_a_mapping_entry_without_a_definition_is_refused_and_stores_nothing(
    session: Session, catalogue: Catalogue, public_data: Path, tmp_path: Path, definition: str | None
) -> None:
    data = tmp_path / "data"
    shutil.copytree(DATA, data)
    columns = data / "mappings" / "public_columns.yaml"
    raw = yaml.safe_load(columns.read_text(encoding="utf-8"))
    entry = raw["files"]["platform_snap_csea_disclosures.csv"]
    del entry["definition"]
    if definition is not None:
        entry["definition"] = definition
    columns.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    before = _row_counts(session)
    with pytest.raises(ImportProblem, match=r"platform_snap_csea_disclosures\.csv: definition: "):
        import_public_data(session, catalogue, public_data, data)
    assert _row_counts(session) == before


def test_a_mapping_entry_needs_a_metric_or_a_reason() -> None:
    assert Target(ignore="no catalogue metric for reach").metric is None
    for entry in ({"metric": "co_appeals", "ignore": "both is ambiguous"}, {}, {"ignore": "short"}):
        with pytest.raises(ValidationError):
            Target.model_validate(entry)


# --------------------------------------------------------------------------------- CLI


def _hub(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([HUB, *args], env=env, capture_output=True, text=True, timeout=300, check=False)


def test_cli_imports_and_summarises(cli_env: dict[str, str], public_data: Path) -> None:
    result = _hub(cli_env, "import-public", str(public_data))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("public data: 25 files")
    assert f"{ESP_FILE}: 1029 rows read" in result.stdout


def test_cli_refusal_is_one_line_and_exit_1(
    cli_env: dict[str, str], public_data: Path, tmp_path: Path
) -> None:
    folder, line = _altered_copy(public_data, tmp_path, ESP_FILE, "2023,X Corp,", "2023,Xcorp Holdings,")
    result = _hub(cli_env, "import-public", str(folder))
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("error: public data not imported, 1 problem(s): ")
    assert f"{ESP_FILE} line {line}: unknown organisation name 'Xcorp Holdings'" in result.stderr


def test_a_repeated_row_after_a_merge_is_refused_not_added(
    session: Session, catalogue: Catalogue, public_data: Path, tmp_path: Path
) -> None:
    """'French Guiana' and 'Guiana, French' add up; 'French Guiana' printed twice does not."""
    folder = _copy(public_data, tmp_path)
    path = folder / COUNTRY_FILE
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    repeated = next(line for line in lines if line.startswith("2020,French Guiana,"))
    merged_partner = max(i for i, line in enumerate(lines) if line.startswith('2020,"Guiana, French"'))
    lines.insert(merged_partner + 1, repeated)
    path.write_text("".join(lines), encoding="utf-8")
    before = _row_counts(session)
    with pytest.raises(ImportProblem, match=f"{COUNTRY_FILE} line {merged_partner + 2}: same metric, period"):
        import_public_data(session, catalogue, folder, DATA)
    assert _row_counts(session) == before


def test_a_mapping_change_restates_only_the_publisher_it_touches(
    session: Session, catalogue: Catalogue, public_data: Path, imported: PublicImportReport, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    shutil.copytree(DATA, data)
    columns = data / "mappings" / "public_columns.yaml"
    text = columns.read_text(encoding="utf-8")
    youtube_entry = text.index("  platform_youtube_csea_disclosures.csv:")
    old = "pieces: {metric: co_items_actioned, dims: {category: csam}}"
    at = text.index(old, youtube_entry)
    columns.write_text(text[:at] + old.replace("csam", "child_sexual_exploitation") + text[at + len(old) :])
    submissions_before = session.exec(select(func.count()).select_from(Submission)).one()
    report = import_public_data(session, catalogue, public_data, data)
    session.commit()
    assert sum(file.submissions_new for file in report.files) == 1
    assert session.exec(select(func.count()).select_from(Submission)).one() == submissions_before + 1
    youtube = session.exec(
        select(Submission)
        .where(Submission.scope == "public:platform_youtube")
        .order_by(col(Submission.version))
    ).all()
    assert [s.version for s in youtube] == [1, 2] and "mapping" in (youtube[1].supersede_reason or "")
