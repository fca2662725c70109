"""PDF reports: the alliance report read back as text (key figures, table of contents with page
numbers, suppression marks, running headers) and as images (the first pages are not blank);
a renderer that fetches nothing outside its package, escapes every value, keeps to its time
limit and leaves no partial file."""

from __future__ import annotations

import http.server
import re
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest
from dashpages import page_callback
from hubcli import hub_in_process, hub_process
from PIL import Image
from sqlalchemy.engine import Engine
from sqlmodel import Session
from test_public_pages import releases  # noqa: F401 - a fixture
from test_publication import ANONYMOUS, alliance  # noqa: F401 - a fixture

from dashboards.app import create_app
from hub.catalogue import Catalogue
from hub.models import User
from hub.releases import withdraw_release
from hub.settings import Settings
from reports import render, svg
from reports.parts import ReportError as ReportMadeError
from reports.render import ReportError, render_html, write_pdf

pytestmark = pytest.mark.slow


def _text(pdf: Path) -> str:
    return subprocess.run(
        ["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True
    ).stdout


def _pages(pdf: Path, folder: Path, last: int) -> list[Path]:
    subprocess.run(
        ["pdftoppm", "-r", "40", "-png", "-f", "1", "-l", str(last), str(pdf), str(folder / "page")],
        check=True,
    )
    return sorted(folder.glob("page-*.png"))


def _ink(png: Path) -> float:
    """Share of the page's pixels that are not white."""
    counts = Image.open(png).convert("L").histogram()  # pixels per grey level 0-255
    return sum(counts[:235]) / sum(counts)


@pytest.fixture
def alliance_pdf(cli_env: dict[str, str], releases: dict[str, int], tmp_path: Path) -> Path:
    out = tmp_path / "reports" / "alliance-2025.pdf"
    result = hub_process(cli_env, "report", "alliance", "--period", "2025", "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert f"alliance report 2025, release {releases['published']}" in result.stdout
    assert "weasyprint" not in result.stderr.lower()  # no line per page in the log
    return out


def test_the_alliance_report_reads_back_with_its_figures_and_contents(
    alliance_pdf: Path, releases: dict[str, int], tmp_path: Path
) -> None:
    text = _text(alliance_pdf)
    pages = text.split("\f")
    cover = " ".join(pages[0].split())
    assert (
        "Alliance transparency report 2025" in cover
        and f"Release {releases['published']}: Published" in cover
    )
    # the table of contents gives each chapter's page, and the chapter is on that page
    found = re.findall(r"^\s*([A-Z][A-Za-z ,%0-9-]+?)\s*\.{3,}\s*(\d+)\s*$", pages[1], flags=re.MULTILINE)
    contents = {title.strip(): page for title, page in found}
    for chapter in (
        "Executive summary",
        "Takedown speed",
        "Victim identification",
        "Methodology",
        "Data notes",
        "Country annex",
    ):
        assert chapter in contents, (chapter, pages[1][:600])
        assert chapter in pages[int(contents[chapter]) - 1], chapter
    # running headers and page numbers
    count = len(pages) - 1 if pages[-1].strip() == "" else len(pages)
    assert f"Page 3 of {count}" in pages[2] and "Release 1: Published" in " ".join(pages[2].split())
    assert "Executive summary" in pages[2].splitlines()[0]
    # victims by country: the small count is "<10", the other shown with its value
    victims = pages[int(contents["Victim identification"]) - 1]
    assert re.search(r"France \(FR\)\s+<10", victims) and re.search(r"Germany \(DE\)\s+40", victims)
    assert "Disclosure control" in text and "Open SDG / Statistics Canada" in text
    notes = " ".join(pages[int(contents["Data notes"]) - 1].split())
    assert (
        "Organisations that reported figures for 2025" in notes
        and "a missing quarter is never estimated" in notes
    )
    for code in ANONYMOUS:
        assert code not in text
    assert "5234" not in text and "5,234" not in text  # the unpublished release's restatement
    # the first pages as images: drawn, not blank
    images = _pages(alliance_pdf, tmp_path, 3)
    assert len(images) == 3 and all(_ink(image) > 0.01 for image in images)


def test_an_unknown_period_or_release_is_one_line_and_writes_nothing(
    cli_env: dict[str, str], releases: dict[str, int], tmp_path: Path
) -> None:
    out = tmp_path / "nothing.pdf"
    result = hub_in_process(cli_env, "report", "alliance", "--period", "1999", "-o", str(out))
    assert result.returncode == 1 and result.stderr.startswith(
        "error: release 1 has no alliance figures for 1999"
    )
    draft = hub_in_process(
        cli_env,
        "report",
        "alliance",
        "--period",
        "2025",
        "--release",
        str(releases["unpublished"]),
        "-o",
        str(out),
    )
    assert (
        draft.returncode == 1
        and draft.stderr.strip() == f"error: release {releases['unpublished']} is not published"
    )
    assert not out.exists() and list(tmp_path.glob(".*.part")) == []


def test_country_profiles_show_their_figures_and_marks(
    cli_env: dict[str, str], releases: dict[str, int], tmp_path: Path
) -> None:
    germany, france = tmp_path / "de.pdf", tmp_path / "fr.pdf"
    for iso, out in (("DE", germany), ("fr", france)):
        result = hub_in_process(cli_env, "report", "country", iso, "--period", "2025", "-o", str(out))
        assert result.returncode == 0, result.stderr
        assert f"country profile {iso.upper()} 2025, release {releases['published']}" in result.stdout
    de_text = " ".join(_text(germany).split())
    assert "Germany (DE): country profile 2025" in de_text and "Law enforcement in Germany, 2025" in de_text
    assert re.search(r"Victims identified 40", de_text), de_text[:2000]
    fr_text = " ".join(_text(france).split())
    assert re.search(r"Victims identified <10", fr_text), fr_text[:2000]
    for code in ANONYMOUS:
        assert code not in de_text and code not in fr_text
    for bad, message in (
        ("XX", "'XX' is not an ISO 3166 country code"),
        ("JP", "no figures for Japan in 2025"),
    ):
        refused = hub_in_process(
            cli_env, "report", "country", bad, "--period", "2025", "-o", str(tmp_path / "x.pdf")
        )
        assert (
            refused.returncode == 1
            and message in refused.stderr
            and len(refused.stderr.strip().splitlines()) == 1
        )
    assert not (tmp_path / "x.pdf").exists()


def test_the_dashboards_hand_out_public_reports_of_published_releases_only(
    loaded_engine: Engine,
    settings: Settings,
    session: Session,
    releases: dict[str, int],
    alliance: dict[str, object],
) -> None:
    client = create_app(loaded_engine, settings).server.test_client()
    number = releases["published"]
    first = client.get(f"/reports/{number}/alliance-2025.pdf")
    assert first.status_code == 200 and first.mimetype == "application/pdf" and first.data.startswith(b"%PDF")
    assert f"filename=release-{number}-alliance-2025.pdf" in first.headers["Content-Disposition"]
    kept = list((settings.var_dir / "reports").rglob("alliance-2025.pdf"))
    assert len(kept) == 1
    stamp = kept[0].stat().st_mtime_ns
    again = client.get(f"/reports/{number}/alliance-2025.pdf")
    assert again.data == first.data and kept[0].stat().st_mtime_ns == stamp  # the kept file, not a new render
    country = client.get(f"/reports/{number}/country-DE-2025.pdf")
    assert country.status_code == 200 and country.data.startswith(b"%PDF")
    for path in (
        f"/reports/{releases['unpublished']}/alliance-2025.pdf",  # built, not published
        f"/reports/{number}/alliance-1999.pdf",  # no such year
        f"/reports/{number}/country-XX-2025.pdf",
        f"/reports/{number}/country-de-2025.pdf",
        f"/reports/{number}/..%2F..%2Fhub.sqlite3.pdf",
        f"/reports/{number}/org-quiet-video-2025.pdf",  # no public report of an organisation
    ):
        assert client.get(path).status_code == 404, path
    assert "/reports/" in page_callback(client, "/data") and "alliance-2025.pdf" in page_callback(
        client, "/data"
    )
    assert f"/reports/{number}/country-DE-2025.pdf" in page_callback(client, "/countries/DE")
    sec = alliance["sec"]
    assert isinstance(sec, User)
    withdraw_release(session, number, sec, reason="a figure was wrong")
    session.commit()
    assert client.get(f"/reports/{number}/alliance-2025.pdf").status_code == 404  # kept, but not handed out


class _Counter(http.server.BaseHTTPRequestHandler):
    hits: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        type(self).hits.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "text/css")
        self.end_headers()
        self.wfile.write(b"body { color: red }")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def http_server() -> Iterator[str]:
    server = http.server.HTTPServer(("127.0.0.1", 0), _Counter)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Counter.hits = []
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_the_renderer_fetches_nothing_outside_its_package(http_server: str, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("do not read")
    html = (
        f'<html><head><link rel="stylesheet" href="{http_server}/evil.css">'
        '<link rel="stylesheet" href="report.css"></head><body>'
        f'<img src="file://{secret}"><img src="{http_server}/pixel.png">'
        '<img src="data:image/svg+xml;utf8,<svg xmlns=%22http://www.w3.org/2000/svg%22 width=%222%22 height=%222%22/>">'
        f'<a rel="attachment" href="file://{secret}">attached</a><p>fine</p></body></html>'
    )
    pdf = render.pdf_bytes_in_process(html)
    assert pdf.startswith(b"%PDF") and _Counter.hits == []
    assert b"do not read" not in pdf
    fetcher = render._fetcher()
    with pytest.raises(ValueError, match="nothing outside its package"):
        fetcher.fetch(f"file://{secret}")
    with pytest.raises(ValueError, match="nothing outside its package"):
        fetcher.fetch(f"file://{render.STATIC}/../render.py")
    assert b"@page" in fetcher.fetch(f"file://{render.STATIC}/report.css").read()


def test_every_value_is_escaped() -> None:
    hostile = '<script>alert(1)</script> & "quoted"'
    section = {"anchor": "a", "title": hostile, "parts": [{"kind": "text", "text": hostile}]}
    html = render_html(
        "report.html",
        {
            "title": hostile,
            "period": "2025",
            "release": 1,
            "release_title": hostile,
            "published": "",
            "checksum": "",
            "kicker": hostile,
            "subtitle": hostile,
            "date_label": hostile,
            "cover_note": hostile,
            "logo": "",
            "sections": [section],
        },
    )
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt; &amp;" in html
    chart = svg.bar_chart([svg.Bar(hostile, 3.0, "3")], title=hostile)
    assert "<script>" not in chart and "&lt;script&gt;" in chart


def test_a_render_over_its_time_limit_leaves_no_file(tmp_path: Path) -> None:
    rows = "".join(f"<tr><td>{i}</td><td>{'long text ' * 20}</td></tr>" for i in range(20_000))
    out = tmp_path / "slow.pdf"
    with pytest.raises(ReportError, match="took longer than"):
        write_pdf(f"<table>{rows}</table>", out, timeout=1.0)
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_an_alliance_report_for_a_quarter_and_a_half_year(session: Session, catalogue: Catalogue) -> None:
    """Quarterly figures of 2025: the report of 2025-Q2 shows Q2's volumes, of 2025-H1 the
    half-year's, and a quarter nobody reported is refused in words."""
    from test_publication import DATA, _org, _submit

    from hub.approval import approve
    from hub.auth import create_user
    from hub.publication import build_protected_release
    from hub.published import ReleaseCache
    from hub.releases import publish_release
    from hub.targets import load_targets
    from reports.alliance import alliance_report

    sec = create_user(session, "sec-q", "Sec Q", "secretariat", None, "correct horse battery staple")
    ids = []
    for number, code in enumerate(("quarter-a", "quarter-b", "quarter-c")):
        org = _org(session, code, "company", "FR", named=True)
        session.commit()
        rows = [("co_items_actioned", f"2025-Q{q}", 1000.0 * (number + 1) + q, {}) for q in (1, 2, 3, 4)]
        ids.append(_submit(session, catalogue, org, "2025", rows))
    session.commit()
    approve(session, sec, ids)
    release = build_protected_release(session, catalogue=catalogue, data_dir=DATA, title="Q", built_by=sec)
    publish_release(session, release.number, sec)
    session.commit()
    cache = ReleaseCache(session.get_bind(), keep=1)  # type: ignore[arg-type]
    summary = cache.choose(release.number)
    assert summary is not None
    data = cache.get(summary)
    targets = load_targets(DATA, catalogue)

    def volumes(period: str) -> list[str]:
        document = alliance_report(data, catalogue, targets, period)
        section = next(s for s in document["sections"] if s.anchor == "volumes")
        rows = section.parts[0]["rows"]
        return next(r for r in rows if r[0] == catalogue.metrics["co_items_actioned"].name)[1:2]

    assert volumes("2025-Q2") == [f"{1002 + 2002 + 3002:,}"]
    assert volumes("2025-H1") == [f"{1001 + 1002 + 2001 + 2002 + 3001 + 3002:,}"]
    assert volumes("2025") == [f"{sum(1000 * n + q for n in (1, 2, 3) for q in (1, 2, 3, 4)):,}"]
    document = alliance_report(data, catalogue, targets, "2025-Q2")
    assert document["title"] == "Alliance transparency report 2025-Q2"
    with pytest.raises(ReportMadeError, match="has no alliance figures for 2024-Q1"):
        alliance_report(data, catalogue, targets, "2024-Q1")
    pdf = render.pdf_bytes_in_process(render_html("report.html", document))
    assert pdf.startswith(b"%PDF")
