"""An organisation's own figures and report: its approved data marked against the latest
release, small counts of people protected, its position among at least 5 peers from the
release's banded peer table, the PDF (`hub report org`, and signed in from the dashboards)
and its EU DSA Annex I CSV parts, filled only where a field means what a hub metric counts."""

from __future__ import annotations

import csv
import io
import subprocess
from pathlib import Path
from typing import Any

import flask
import pandas as pd
import pytest
from dashpages import page_callback
from hubcli import hub_in_process, hub_process
from PIL import Image
from sqlalchemy.engine import Engine
from sqlmodel import Session
from test_publication import _org, _submit
from test_reports import _ink, _pages, _text
from test_web_upload import PASSWORD, SQLITE_ONLY, _cheaper_scrypt, sign_in  # noqa: F401 - _cheaper_scrypt is a fixture

from dashboards.app import create_app
from hub.approval import approve
from hub.auth import create_user
from hub.catalogue import Catalogue
from hub.own_figures import NOT_YET, FigureContext, own_figures, peer_positions, totals
from hub.publication import build_protected_release
from hub.releases import publish_release
from hub.settings import REPO_ROOT, Settings
from reports.company import company_report, logo_data_url
from reports.dsa import TEMPLATES, dsa_parts, read_template
from reports.parts import ReportError

pytestmark = pytest.mark.slow
DATA = REPO_ROOT / "data"
COMPANY = "lantern-video"  # the company whose report is made; has not consented to be named
PEERS = {f"peer-{n}": 110.0 * (n + 1) for n in range(6)}  # 110 ... 660 items actioned
OWN_ITEMS = 700.0
CSAM_ROW = "KEYWORD_CHILD_SEXUAL_ABUSE_MATERIAL"
OWN_INITIATIVE_HEADER = "Number of measures taken at the provider's own initiative "


@pytest.fixture
def peer_alliance(session: Session, catalogue: Catalogue) -> dict[str, Any]:
    """Seven companies (one of them COMPANY, with notices by category and source) and a police
    force with a small count of victims; release 1 published; then COMPANY's 2024 figures
    approved after it."""
    sec = create_user(session, "sec-co", "Sec Co", "secretariat", None, "correct horse battery staple")
    company = _org(session, COMPANY, "company", "NL", named=False)
    peers = {code: _org(session, code, "company", "FR", named=False) for code in PEERS}
    police = _org(session, "small-force", "law_enforcement", "BE", named=False)
    session.commit()
    csam = {"category": "csam"}
    ids = [
        _submit(
            session,
            catalogue,
            company,
            "2025",
            [
                ("co_items_actioned", "2025", OWN_ITEMS, {}),
                ("co_notices_received", "2025", 1000, {}),
                ("co_notices_received", "2025", 600, csam),
                ("co_notices_received", "2025", 300, {**csam, "notice_source": "user_report"}),
                ("co_notices_received", "2025", 200, {**csam, "notice_source": "trusted_flagger"}),
                ("co_notices_received", "2025", 100, {**csam, "notice_source": "law_enforcement"}),
                ("co_items_detected_proactively", "2025", 400, {}),
                ("co_items_detected_proactively", "2025", 300, csam),
                ("co_capability_hash_matching", "2025", 1, {}),
            ],
        ),
        _submit(
            session,
            catalogue,
            police,
            "2025",
            [
                ("le_victims_identified", "2025", 14, {}),
                ("le_victims_identified", "2025", 4, {"country": "BE"}),
                ("le_victims_identified", "2025", 10, {"country": "FR"}),
            ],
        ),
    ]
    for code, org in peers.items():
        ids.append(_submit(session, catalogue, org, "2025", [("co_items_actioned", "2025", PEERS[code], {})]))
    session.commit()
    approve(session, sec, ids)
    session.commit()
    release = build_protected_release(session, catalogue=catalogue, data_dir=DATA, title="2025", built_by=sec)
    publish_release(session, release.number, sec)
    session.commit()
    later = _submit(session, catalogue, company, "2024", [("co_items_actioned", "2024", 777, {})])
    session.commit()
    approve(session, sec, [later])
    session.commit()
    return {"release": release.number, "sec": sec}


def _own(session: Session, catalogue: Catalogue, code: str = COMPANY) -> Any:
    context = FigureContext(session, catalogue, DATA)
    return context, own_figures(session, context, code)


def _cell(own: Any, metric: str, period: str) -> Any:
    cells = totals(own.cells)
    chosen = cells[
        (cells["metric"] == metric) & (cells["period"] == period) & (cells["statistic"] == "value")
    ]
    assert len(chosen) == 1, (metric, period)
    return chosen.iloc[0]


def test_own_figures_are_marked_against_the_latest_release(
    session: Session, catalogue: Catalogue, peer_alliance: dict[str, Any]
) -> None:
    _, own = _own(session, catalogue)
    assert own.release == peer_alliance["release"]
    assert _cell(own, "co_items_actioned", "2025")["status"] == f"in release {peer_alliance['release']}"
    later = _cell(own, "co_items_actioned", "2024")
    assert later["status"] == NOT_YET and later["value"] == 777
    # only its own organisation's cells, at organisation level
    assert set(own.cells["entity"]) == {COMPANY} and set(own.cells["level"]) == {"organisation"}


def test_a_small_count_of_people_stays_protected_in_an_own_report(
    session: Session, catalogue: Catalogue, peer_alliance: dict[str, Any]
) -> None:
    """The 4 of Belgium shows as "<10"; the total 14 and France's 10 as "x", since either with
    the other would give the 4 back by subtraction."""
    _, own = _own(session, catalogue, "small-force")
    cells = own.cells[(own.cells["metric"] == "le_victims_identified") & (own.cells["statistic"] == "value")]
    shown = dict(zip(cells["country"], cells["display"], strict=True))
    assert shown == {"_T": "x", "BE": "<10", "FR": "x"}
    assert cells["suppressed"].all() and cells["value"].isna().all()


def test_its_position_among_six_peers_from_the_published_bands(
    session: Session, catalogue: Catalogue, peer_alliance: dict[str, Any]
) -> None:
    context, own = _own(session, catalogue)
    peers = context.peers(session)
    items = peers[(peers["metric"] == "co_items_actioned") & (peers["period"] == "2025")]
    # 110-440 and 550-700: bands of 4 and 3
    assert items["mean"].tolist() == pytest.approx([275.0, (550 + 660 + 700) / 3])
    comparisons = [c for c in peer_positions(own, peers, year="2025") if c.metric == "co_items_actioned"]
    assert len(comparisons) == 1
    position = comparisons[0].position
    assert position.peers == 6 and position.text == "above the average of the peers' upper half"
    # a peer distribution of 7 where the company is one: 6 peers; the police force has none
    _, force = _own(session, catalogue, "small-force")
    assert peer_positions(force, peers) == []


def test_dsa_parts_fill_only_fields_the_hub_counts(
    session: Session, catalogue: Catalogue, peer_alliance: dict[str, Any]
) -> None:
    _, own = _own(session, catalogue)
    parts = dsa_parts(own, catalogue, "2025", data_dir=DATA)
    assert sorted(parts) == sorted(p.name for p in TEMPLATES.glob("part_*.csv")) and len(parts) == 10
    for name, rows in parts.items():
        template = read_template(name)
        assert rows[0] == template.header  # the official header, trailing spaces included
        assert [len(r) for r in rows[1:]] == [len(template.header)] * len(template.rows)
    summary = {row[2]: row[3] for row in parts["part_01_summary.csv"][1:]}
    assert summary["Name of the service provider"] == "Lantern Video"
    assert summary["Starting date of reporting period"] == "2025-01-01"
    assert summary["Date of the publication of the report"] == ""  # the company's to enter
    header, *notices = parts["part_04_notices.csv"]
    column = {name: i for i, name in enumerate(header)}
    csam = next(r for r in notices if r[column["Category of illegal content"]] == CSAM_ROW)
    # 600 notices of CSAM, 100 of them law enforcement's requests and orders (Part 3's, not notices)
    assert csam[column["Number of notices received "]] == "500"
    assert csam[column["Number of notices received from Trusted flaggers"]] == "200"
    assert csam[column["Median time to take action"]] == ""  # Annex II's unit: never guessed
    assert csam[column["Number of actions taken on the basis of the law"]] == ""
    # nothing else in Part 4 holds a number: every other row's figures are left empty
    figures = [i for name, i in column.items() if name.startswith("Number") or name.startswith("Median")]
    filled = [(r[3], header[i]) for r in notices for i in figures if r[i] != ""]
    assert sorted(filled) == sorted(
        [
            (CSAM_ROW, "Number of notices received "),
            (CSAM_ROW, "Number of notices received from Trusted flaggers"),
        ]
    )
    assert all(r[column["Reporting period"]] == "2025-01-01/2025-12-31" for r in notices)
    header5, *own_initiative = parts["part_05_own_initiative_illegal.csv"]
    row5 = next(r for r in own_initiative if r[3] == CSAM_ROW)
    assert row5[header5.index("Number of measures taken at the provider's own initiative ")] == "300"
    # parts the hub holds nothing for stay as the template has them, but for the period
    template = read_template("part_09_human_resources.csv")
    period = template.header.index("Reporting period")
    expected = [[*r[:period], "2025-01-01/2025-12-31", *r[period + 1 :]] for r in template.rows]
    assert parts["part_09_human_resources.csv"][1:] == expected


def test_an_incomplete_breakdown_leaves_the_notices_empty(
    session: Session, catalogue: Catalogue, peer_alliance: dict[str, Any]
) -> None:
    """Without the law enforcement part, 500 of 600 notices have a source: the number of
    notices other than authorities' cannot be known, so it is left empty, with the reason."""
    _, own = _own(session, catalogue)
    cells = own.cells
    drop = (cells["notice_source"] == "law_enforcement") & (cells["metric"] == "co_notices_received")
    incomplete = type(own)(own.organisation, cells[~drop].reset_index(drop=True), own.release)
    header, *rows = dsa_parts(incomplete, catalogue, "2025", data_dir=DATA)["part_04_notices.csv"]
    csam = next(r for r in rows if r[3] == CSAM_ROW)
    assert csam[header.index("Number of notices received ")] == ""
    assert csam[header.index("Number of notices received from Trusted flaggers")] == "200"
    assert (
        "without a complete breakdown"
        in csam[header.index("Contextual information on Number of notices received ")]
    )


@SQLITE_ONLY  # PDF rendering does not depend on the database; own figures run on both
def test_the_company_report_reads_back(
    cli_env: dict[str, str], peer_alliance: dict[str, Any], tmp_path: Path
) -> None:
    logo = tmp_path / "logo.png"
    Image.new("RGB", (200, 60), (0, 114, 178)).save(logo)
    out, dsa = tmp_path / "lantern-2025.pdf", tmp_path / "dsa"
    result = hub_process(
        cli_env,
        "report",
        "org",
        COMPANY,
        "--period",
        "2025",
        "-o",
        str(out),
        "--logo",
        str(logo),
        "--dsa",
        str(dsa),
    )
    assert result.returncode == 0, result.stderr
    assert "report of Lantern Video 2025" in result.stdout
    text = _text(out)
    pages = text.split("\f")
    flat = " ".join(text.split())
    assert "Lantern Video: transparency report 2025" in " ".join(pages[0].split())
    for chapter in (
        "Summary",
        "Figures for 2025",
        "Among its peers",
        "Capabilities",
        "Definitions and method",
    ):
        assert chapter in pages[1], chapter
    # (the layout wraps the position's words across lines)
    assert "700" in flat and "above the average of the peers'" in flat and "upper half" in flat
    assert "275 · 637" in flat  # the band averages, never a peer's own figure
    for code, value in PEERS.items():
        assert code not in text and f" {value:,.0f} " not in f" {flat} "
    assert NOT_YET not in flat  # every 2025 figure is in the release
    images = subprocess.run(
        ["pdfimages", "-list", str(out)], capture_output=True, text=True, check=True
    ).stdout
    assert len(images.strip().splitlines()) == 3  # header lines and the one logo
    first = _pages(out, tmp_path, 2)
    assert len(first) == 2 and all(_ink(p) > 0.005 for p in first)
    assert sorted(p.name for p in dsa.iterdir()) == sorted(p.name for p in TEMPLATES.glob("part_*.csv"))
    with (dsa / "part_04_notices.csv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    assert next(r for r in rows if r[3] == CSAM_ROW)[5] == "500"
    # 2024: approved after the release, marked; the peers section without a published distribution
    later = tmp_path / "lantern-2024.pdf"
    result = hub_process(
        cli_env, "report", "org", COMPANY, "--period", "2024", "-o", str(later), "--omit", "trends"
    )
    assert result.returncode == 0, result.stderr
    flat = " ".join(_text(later).split())
    assert "777 †" in flat and "approved after the latest published release" in flat
    assert "No figure of this year or its quarters has a published peer distribution" in flat
    assert "Trends" not in flat


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["no-such-org", "--period", "2025"], "no organisation 'no-such-org'"),
        ([COMPANY, "--period", "1999"], "Lantern Video has no approved figures for 1999"),
        ([COMPANY, "--period", "2025", "--omit", "secrets"], "no such section: secrets"),
    ],
)
def test_bad_requests_are_one_line_and_write_nothing(
    cli_env: dict[str, str], peer_alliance: dict[str, Any], tmp_path: Path, arguments: list[str], message: str
) -> None:
    folder = tmp_path / "out"
    result = hub_in_process(cli_env, "report", "org", *arguments, "-o", str(folder / "nothing.pdf"))
    assert result.returncode == 1 and message in result.stderr
    assert not folder.exists() or list(folder.iterdir()) == []


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b'<svg xmlns="http://www.w3.org/2000/svg"><image href="file:///etc/passwd"/></svg>', "PNG or JPEG"),
        (b"GIF89a" + b"\0" * 20, "PNG or JPEG"),
        (b"\x89PNG\r\n\x1a\n" + b"\0" * 1_000_001, "at most 1,000,000"),
    ],
)
def test_a_logo_must_be_a_small_png_or_jpeg(content: bytes, message: str) -> None:
    with pytest.raises(ReportError, match=message):
        logo_data_url(content)


@SQLITE_ONLY  # PDF rendering does not depend on the database; own figures run on both
def test_a_logo_file_that_is_not_an_image_writes_nothing(
    cli_env: dict[str, str], peer_alliance: dict[str, Any], tmp_path: Path
) -> None:
    logo = tmp_path / "logo.svg"
    logo.write_text("<svg/>")
    out = tmp_path / "out.pdf"
    result = hub_in_process(
        cli_env, "report", "org", COMPANY, "--period", "2025", "-o", str(out), "--logo", str(logo)
    )
    assert result.returncode == 1 and "PNG or JPEG" in result.stderr and not out.exists()


def test_organisation_names_are_escaped(
    session: Session, catalogue: Catalogue, peer_alliance: dict[str, Any]
) -> None:
    context, own = _own(session, catalogue)
    hostile = type(own.organisation)("x", '<img src="file:///etc/passwd">Evil', "company", "NL")
    document = company_report(
        type(own)(hostile, own.cells, own.release), context.peers(session), catalogue, "2025"
    )
    from reports.render import render_html

    html = render_html("report.html", document)
    assert "<img src=" not in html.replace('<img class="logo"', "") and "&lt;img src=" in html


# --- signed in, from the dashboards -----------------------------------------------------------


@pytest.fixture
def web(
    loaded_engine: Engine, settings: Settings, peer_alliance: dict[str, Any], session: Session
) -> flask.Flask:
    from hub.organisations import get_by_code

    for username, code in (("lena", COMPANY), ("pia", "peer-0")):
        org = get_by_code(session, code)
        assert org is not None
        create_user(session, username, username.title(), "org_viewer", org.code, PASSWORD)
    session.commit()
    server = create_app(loaded_engine, settings).server
    server.testing = True
    return server


def _pdf_text(body: bytes, tmp_path: Path, name: str) -> str:
    path = tmp_path / name
    path.write_bytes(body)
    return " ".join(_text(path).split())


@SQLITE_ONLY  # PDF rendering does not depend on the database; own figures run on both
def test_a_signed_in_organisation_downloads_its_own_report_only(
    web: flask.Flask, settings: Settings, tmp_path: Path
) -> None:
    anonymous = web.test_client()
    assert anonymous.get("/my/report-2025.pdf").status_code == 404
    lena = web.test_client()
    sign_in(lena, "lena")
    response = lena.get("/my/report-2025.pdf")
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    assert response.headers["Cache-Control"] == "no-store"
    assert "Lantern Video: transparency report 2025" in _pdf_text(response.data, tmp_path, "lena.pdf")
    assert lena.get("/my/report-1999.pdf").status_code == 404
    assert lena.get("/my/report-20x5.pdf").status_code == 404
    # another company's user gets its own report at the same address, never Lantern Video's
    pia = web.test_client()
    sign_in(pia, "pia")
    text = _pdf_text(pia.get("/my/report-2025.pdf").data, tmp_path, "pia.pdf")
    assert "Peer 0: transparency report 2025" in text and "Lantern" not in text
    # the page lists the reports and shows the position among peers
    page = page_callback(lena, "/my")
    assert "/my/report-2025.pdf" in page and "/my/report-2024.pdf" in page
    assert "Among your peers" in page and "above the average of the peers' upper half" in page
    assert not any(code in page for code in PEERS)
    assert not list((settings.var_dir / "reports" / "own").glob("*"))  # nothing kept on disk


def test_the_peer_bands_are_a_downloadable_release_table(
    web: flask.Flask, peer_alliance: dict[str, Any]
) -> None:
    client = web.test_client()
    response = client.get(f"/download/{peer_alliance['release']}/peers.csv")
    assert response.status_code == 200
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    items = [r for r in rows if r["metric"] == "co_items_actioned" and r["period"] == "2025"]
    assert [float(r["mean"]) for r in items] == pytest.approx([275.0, 1910 / 3])
    assert {r["contributors"] for r in items} == {"7"}


@SQLITE_ONLY  # PDF rendering does not depend on the database; own figures run on both
def test_every_companys_report_in_one_run(
    cli_env: dict[str, str], peer_alliance: dict[str, Any], tmp_path: Path
) -> None:
    out = tmp_path / "batch"
    result = hub_process(cli_env, "report", "orgs", "--period", "2025", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "8 of 8 organisation reports for 2025" in result.stdout
    made = sorted(p.name for p in out.iterdir())
    assert made == sorted(f"{code}-2025.pdf" for code in [COMPANY, *PEERS, "small-force"])
    peer = " ".join(_text(out / "peer-3-2025.pdf").split())
    assert "Peer 3: transparency report 2025" in peer and "Lantern" not in peer
    # the police force's report shows totals: its 14 victims as "x" (Belgium's 4 is in it)
    force = " ".join(_text(out / "small-force-2025.pdf").split())
    assert "Small Force: transparency report 2025" in force
    assert "Victims identified x" in force and " 14 " not in force
    # one stakeholder type, a year only one company has figures for: the others are skipped
    only = tmp_path / "y2024"
    result = hub_process(
        cli_env, "report", "orgs", "--period", "2024", "--out", str(only), "--type", "company"
    )
    assert result.returncode == 0, result.stderr
    assert "1 of 7 organisation reports for 2024" in result.stdout
    assert "skipped peer-0: Peer 0 has no approved figures for 2024" in result.stdout
    assert [p.name for p in only.iterdir()] == [f"{COMPANY}-2024.pdf"]


def test_the_peer_view_is_kept_until_an_approval_changes_it(
    session: Session, catalogue: Catalogue, peer_alliance: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from hub import member_views
    from hub.auth import load_account
    from hub.member_views import PeerViewCache

    computed: list[str] = []
    original = member_views.own_peer_view

    def counted(*args: Any) -> Any:
        computed.append("view")
        return original(*args)

    monkeypatch.setattr(member_views, "own_peer_view", counted)
    from hub.organisations import get_by_code

    org = get_by_code(session, COMPANY)
    assert org is not None
    user = create_user(session, "lena2", "Lena", "org_viewer", COMPANY, PASSWORD)
    session.commit()
    assert user.id is not None
    account = load_account(session, user.id, user.session_version)
    assert account is not None
    cache = PeerViewCache(catalogue, DATA)
    first = cache.get(session, account)
    assert first.year == "2025" and first.report_years == ["2025", "2024"]
    first.comparisons.clear()  # a copy: the kept view is untouched
    again = cache.get(session, account)
    assert again.comparisons and again == cache.get(session, account)
    assert computed == ["view"]  # computed once, then kept
    later = _submit(session, catalogue, org, "2023", [("co_items_actioned", "2023", 55, {})])
    session.commit()
    assert cache.get(session, account).report_years == ["2025", "2024"]  # pending: unchanged
    approve(session, peer_alliance["sec"], [later])
    session.commit()
    assert cache.get(session, account).report_years == ["2025", "2024", "2023"]
    assert computed == ["view", "view"]


def test_a_source_not_listed_is_not_taken_for_zero(
    session: Session, catalogue: Catalogue, peer_alliance: dict[str, Any]
) -> None:
    """300 from users and 100 from law enforcement make the 400 total: the notices are 300, and
    the trusted flaggers' field stays empty (the company gave no figure for them)."""
    _, own = _own(session, catalogue)
    cells = own.cells.copy()
    notices = (cells["metric"] == "co_notices_received") & (cells["category"] == "csam")
    cells = cells[~(notices & (cells["notice_source"] == "trusted_flagger"))]
    total = (
        (cells["metric"] == "co_notices_received")
        & (cells["category"] == "csam")
        & (cells["notice_source"] == "_T")
    )
    cells.loc[total & (cells["period"] == "2025") & (cells["statistic"] == "value"), "value"] = 400.0
    header, *rows = dsa_parts(
        type(own)(own.organisation, cells, own.release), catalogue, "2025", data_dir=DATA
    )["part_04_notices.csv"]
    csam = next(r for r in rows if r[3] == CSAM_ROW)
    assert csam[header.index("Number of notices received ")] == "300"
    assert csam[header.index("Number of notices received from Trusted flaggers")] == ""


def test_csam_reported_beside_its_deepfake_sub_category_is_left_empty(
    session: Session, catalogue: Catalogue, peer_alliance: dict[str, Any]
) -> None:
    """Whether the company's CSAM figure includes the AI-generated one it also reported is not
    recorded: the CSAM keyword row stays empty (with the reason), never counted twice."""
    _, own = _own(session, catalogue)
    extra = own.cells[
        (own.cells["metric"] == "co_notices_received") & (own.cells["category"] == "csam")
    ].copy()
    extra["category"] = "ai_generated_csam"
    both = type(own)(own.organisation, pd.concat([own.cells, extra], ignore_index=True), own.release)
    parts = dsa_parts(both, catalogue, "2025", data_dir=DATA)
    header, *rows = parts["part_04_notices.csv"]
    csam = next(r for r in rows if r[3] == CSAM_ROW)
    assert csam[header.index("Number of notices received ")] == ""
    assert "left empty" in csam[header.index("Contextual information on Number of notices received ")]
    deepfake = next(r for r in rows if r[3] == "KEYWORD_CHILD_SEXUAL_ABUSE_MATERIAL_DEEPFAKE")
    assert deepfake[header.index("Number of notices received ")] == "500"
    header5, *rows5 = parts["part_05_own_initiative_illegal.csv"]
    assert next(r for r in rows5 if r[3] == CSAM_ROW)[header5.index(OWN_INITIATIVE_HEADER)] == ""
