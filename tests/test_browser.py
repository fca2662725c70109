"""The overview in a real browser: waitress on 127.0.0.1, headless Debian Chromium.

Checks what only a browser shows: the charts render (Plotly draws SVG, the maps load the
world from our own assets), the key figures are on the page, the console holds no error
(a Content-Security-Policy violation is one), and the page fits a phone's width.
Screenshots go to /tmp/overview.png and /tmp/overview-phone.png for people to look at.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from browser import (
    DESKTOP,
    PHONE,
    browser_missing,
    console_errors,
    full_page_screenshot,
    headless_chromium,
    serve_in_thread,
)
from conftest import PUBLIC_DATA
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait
from sqlalchemy.engine import Engine
from sqlmodel import Session
from test_queries import DISCORD_NCMEC_2023, DISCORD_OWN_2023, TIPLINE_TOTAL_2023, seed_members

from dashboards.app import create_app
from dashboards.pages.overview import RELEASE_NOTICE
from hub.catalogue import Catalogue
from hub.settings import REPO_ROOT, Settings
from ingest.public_data import import_public_data

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    # One backend is enough here: what the browser adds does not depend on the database.
    pytest.mark.parametrize("database_url", ["sqlite"], indirect=True),
]

CHARTS = 7  # per year, providers, country map, notices, members by type, submissions, members map
SCREENSHOTS = Path(os.environ.get("HUB_SCREENSHOT_DIR", "/tmp"))


@pytest.fixture
def base_url(loaded_engine: Engine, settings: Settings, catalogue: Catalogue) -> Iterator[str]:
    reason = browser_missing()
    if reason:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    if not PUBLIC_DATA.is_dir():
        pytest.skip(f"{PUBLIC_DATA} not found")
    with Session(loaded_engine) as session:
        import_public_data(session, catalogue, PUBLIC_DATA, REPO_ROOT / "data")
        session.commit()
        seed_members(session, catalogue)
    with serve_in_thread(create_app(loaded_engine, settings).server) as url:
        yield url


def _load_overview(driver: webdriver.Chrome, url: str) -> None:
    driver.get(url + "/sources")
    WebDriverWait(driver, 60).until(
        lambda d: len(d.find_elements(By.CSS_SELECTOR, ".js-plotly-plot .main-svg")) >= CHARTS * 2
    )


def _check_sources_page(driver: webdriver.Chrome, window: tuple[int, int]) -> None:
    assert len(driver.find_elements(By.CSS_SELECTOR, ".js-plotly-plot")) == CHARTS
    # The maps drew countries, so the world map came from /assets (no CDN here).
    assert len(driver.find_elements(By.CSS_SELECTOR, ".choroplethlocation")) > 150
    text = driver.find_element(By.TAG_NAME, "body").text
    for figure in (TIPLINE_TOTAL_2023, DISCORD_OWN_2023, DISCORD_NCMEC_2023, 17_838_422, 75_038):
        assert f"{figure:,}" in text, (window, figure)
    assert RELEASE_NOTICE in text
    assert "Source: NCMEC, CyberTipline Reports by Electronic Service Provider" in text
    overflow = driver.execute_script(
        "return document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, f"the page is wider than the window {window}"
    assert console_errors(driver) == [], window


def test_sources_page_draws_every_chart_on_a_laptop_and_a_phone_and_its_tables_open(base_url: str) -> None:
    """One server and one data load for both widths (each Chromium start costs seconds)."""
    for window, name in ((DESKTOP, "overview.png"), (PHONE, "overview-phone.png")):
        with headless_chromium(window) as driver:
            _load_overview(driver, base_url)
            _check_sources_page(driver, window)
            full_page_screenshot(driver, SCREENSHOTS / name, window[0])
            if window == PHONE:  # a chart's data table opens with the same figures
                driver.find_element(By.CSS_SELECTOR, "#top-providers summary").click()
                table = driver.find_element(By.CSS_SELECTOR, "#top-providers table")
                assert table.is_displayed()
                rows = table.find_elements(By.CSS_SELECTOR, "tbody tr")
                assert len(rows) == 15
                assert rows[0].text.split() == ["1", "Facebook", "17,838,422", "49.3%"]
                assert console_errors(driver) == []
