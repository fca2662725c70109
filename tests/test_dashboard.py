"""The web app over HTTP (Flask test client): pages, headers, health, errors, no leaks."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from pathlib import Path

import pytest
from dashpages import page_callback
from flask.testing import FlaskClient
from sqlalchemy import create_engine
from sqlalchemy.engine import Engine
from sqlmodel import Session
from test_queries import DISCORD_NCMEC_2023, DISCORD_OWN_2023, SECRET, seed_members, seed_public_sample

from dashboards import charts
from dashboards.app import create_app
from dashboards.pages.overview import RELEASE_NOTICE, UNAVAILABLE
from hub.catalogue import Catalogue
from hub.settings import REPO_ROOT, Settings


@pytest.fixture
def client(loaded_engine: Engine, settings: Settings, catalogue: Catalogue) -> FlaskClient:
    with Session(loaded_engine) as session:
        seed_public_sample(session, catalogue)
        seed_members(session, catalogue)
    return create_app(loaded_engine, settings).server.test_client()


def _broken_engine(tmp_path: Path) -> Engine:
    """An engine whose database cannot be opened (its folder does not exist)."""
    return create_engine(f"sqlite:///{tmp_path / 'missing' / 'hub.sqlite3'}")


def _offline_settings(tmp_path: Path, **overrides: str) -> Settings:
    values = {"env": "test", "database_url": "sqlite://", "var_dir": str(tmp_path)} | overrides
    return Settings(**values)  # type: ignore[arg-type]


def _layout_text(client: FlaskClient) -> str:
    """The public-sources page, which charts what publishers published."""
    return page_callback(client, "/sources")


def test_overview_is_served_with_security_headers(client: FlaskClient) -> None:
    response = client.get("/")
    assert response.status_code == 200
    headers = response.headers
    csp = headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp
    assert "object-src 'none'" in csp
    assert "unsafe-eval" not in csp
    script_src = next(d for d in csp.split("; ") if d.startswith("script-src"))
    assert "'unsafe-inline'" not in script_src
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Referrer-Policy"] == "strict-origin-when-cross-origin"
    assert "Strict-Transport-Security" not in headers  # only in production


def test_every_inline_script_of_the_page_is_allowed_by_its_hash(client: FlaskClient) -> None:
    response = client.get("/")
    html = response.get_data(as_text=True)
    script_src = next(
        d for d in response.headers["Content-Security-Policy"].split("; ") if d.startswith("script-src")
    )
    inline = re.findall(r"<script(?![^>]*\bsrc=)([^>]*)>(.*?)</script>", html, flags=re.S)
    executable = [body for attributes, body in inline if "application/json" not in attributes]
    assert executable, "Dash writes its renderer inline"
    for body in executable:
        digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in script_src


def test_the_page_loads_nothing_from_other_origins(client: FlaskClient) -> None:
    html = client.get("/").get_data(as_text=True)
    for url in re.findall(r'(?:src|href)="([^"]+)"', html):
        assert url.startswith("/"), url
    layout = _layout_text(client)
    assert "cdn.plot.ly" not in layout
    assert '"topojsonURL": "/assets/"' in layout  # maps read the world from our own assets


def test_layout_shows_published_figures_with_sources(client: FlaskClient) -> None:
    text = _layout_text(client)
    for expected in (
        "36,210,368",
        f"{DISCORD_OWN_2023:,}",
        f"{DISCORD_NCMEC_2023:,}",
        "−51.5%",
        "17,838,422",
        "75,038",
        "Source: NCMEC, CyberTipline reports per year",
        "averages cannot be combined into an alliance median",
        RELEASE_NOTICE,
    ):
        assert expected in text, expected
    answer = json.loads(text)
    first, notice = answer["response"]["page"]["children"][:2]
    assert (first["type"], first["props"]["children"]) == ("H2", "Public sources")
    assert notice["type"] == "P"  # then what these figures are


def test_layout_never_shows_members_submitted_figures(client: FlaskClient) -> None:
    text = _layout_text(client)
    assert f"{SECRET:,}" not in text
    assert str(SECRET) not in text
    assert "France" in text  # members' countries are shown, their figures are not


def test_healthz_reports_the_database(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "database": "ok"}
    assert response.headers["Cache-Control"] == "no-store"
    assert "Content-Security-Policy" in response.headers


def test_healthz_says_when_the_database_is_unreachable(tmp_path: Path) -> None:
    app = create_app(_broken_engine(tmp_path), _offline_settings(tmp_path))
    response = app.server.test_client().get("/healthz")
    assert response.status_code == 503
    assert response.get_json() == {"status": "error", "database": "unreachable"}


def test_unknown_pages_get_a_generic_404(client: FlaskClient) -> None:
    response = client.get("/no/such/page")
    assert response.status_code == 404
    body = response.get_data(as_text=True)
    assert "Page not found" in body
    assert response.headers["X-Frame-Options"] == "DENY"
    assert client.get("/assets/no-such-file.css").status_code == 404


def test_a_database_outage_shows_a_notice_not_an_error(tmp_path: Path) -> None:
    app = create_app(_broken_engine(tmp_path), _offline_settings(tmp_path))
    client = app.server.test_client()
    assert client.get("/_dash-layout").status_code == 200  # the frame needs no database
    for path in ("/sources", "/", "/targets"):
        text = page_callback(client, path)
        assert UNAVAILABLE in text or "cannot be shown" in text, path
        assert "sqlite" not in text and "Traceback" not in text


def test_server_errors_show_a_generic_page_without_details(tmp_path: Path) -> None:
    app = create_app(_broken_engine(tmp_path), _offline_settings(tmp_path))

    def explode() -> str:
        raise RuntimeError(f"secret detail {tmp_path}")

    app.server.add_url_rule("/explode", "explode", explode)
    response = app.server.test_client().get("/explode")
    assert response.status_code == 500
    body = response.get_data(as_text=True)
    assert "Something went wrong" in body
    for leak in ("Traceback", "RuntimeError", "secret detail", str(tmp_path)):
        assert leak not in body
    assert "Content-Security-Policy" in response.headers


def test_callback_endpoint_refuses_made_up_calls(client: FlaskClient) -> None:
    response = client.post("/_dash-update-component", json={"output": "x.children", "inputs": []})
    assert response.status_code >= 400
    assert "Traceback" not in response.get_data(as_text=True)
    too_big = b"[" + b"0," * (1024 * 1024) + b"0]"
    assert (
        client.post("/_dash-update-component", data=too_big, content_type="application/json").status_code
        == 413
    )


def test_production_adds_hsts_and_never_debugs(tmp_path: Path) -> None:
    settings = _offline_settings(tmp_path, env="production", secret_key="s" * 40)
    app = create_app(_broken_engine(tmp_path), settings)
    response = app.server.test_client().get("/healthz")
    assert response.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
    assert app.server.debug is False
    # two callbacks only: draw the page of a URL, and put a changed filter into the URL
    assert len(app.callback_map) == 2


def test_assets_are_served_locally() -> None:
    assets = REPO_ROOT / "dashboards" / "assets"
    assert (assets / "world_110m.json").stat().st_size > 100_000
    assert (assets / "hub.css").is_file()


def test_an_empty_hub_says_what_is_missing(loaded_engine: Engine, settings: Settings) -> None:
    client = create_app(loaded_engine, settings).server.test_client()
    text = _layout_text(client)
    assert "No published CyberTipline totals have been imported yet." in text
    assert "No member organisations are registered yet." in text
    assert RELEASE_NOTICE in text


@pytest.mark.parametrize(
    ("value", "text"),
    [(36_210_368.0, "36,210,368"), (None, "–"), (float("nan"), "–"), (0.0, "0")],
)
def test_counts_use_thousands_separators(value: float | None, text: str) -> None:
    assert charts.fmt_int(value) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [(-51.5403, "−51.5%"), (3600.0, "+3,600.0%"), (-0.0069, "−0.01%"), (0.0859, "+0.09%")],
)
def test_gaps_are_signed_and_small_ones_keep_two_decimals(value: float, text: str) -> None:
    assert charts.fmt_pct(value, signed=True) == text
