"""The public release pages in a real browser: waitress on 127.0.0.1, headless Debian Chromium.

Every page loads from its URL, shows its key figures, and leaves no error in the console (a
Content-Security-Policy violation is one); a filter changes the URL, so the view can be
shared; two browsers keep their own filters. Screenshots go to HUB_SCREENSHOT_DIR (/tmp).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from browser import DESKTOP, PHONE, browser_missing, console_errors, full_page_screenshot, headless_chromium
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait
from sqlalchemy.engine import Engine
from test_public_pages import releases  # noqa: F401 - a fixture
from test_publication import ANONYMOUS, alliance  # noqa: F401 - a fixture

from dashboards.app import create_app
from hub.serving import serve_in_thread
from hub.settings import Settings

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.parametrize("database_url", ["sqlite"], indirect=True),
]

SCREENSHOTS = Path(os.environ.get("HUB_SCREENSHOT_DIR", "/tmp"))
PAGES = {
    "/": ["Overview", "Children identified as victims", "Targets"],
    "/targets": ["Targets", "Baseline"],
    "/takedown": ["Takedown speed"],
    "/volumes": ["Volumes", "Items actioned, alliance, by year"],
    "/victims": ["Victim identification", "<10"],
    "/flows": ["Flows"],
    "/countries": ["Countries"],
    "/countries/DE": ["Germany", "Victims identified"],
    "/organisations": ["Organisations", "Open Social"],
    "/organisations/open-social": ["Open Social", "5,000"],
    "/data": ["Data and downloads", "Metric definitions"],
}


@pytest.fixture
def base_url(loaded_engine: Engine, settings: Settings, releases: dict[str, int]) -> Iterator[str]:  # noqa: F811
    reason = browser_missing()
    if reason:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    with serve_in_thread(create_app(loaded_engine, settings).server) as url:
        yield url


def _open(driver: webdriver.Chrome, url: str) -> str:
    driver.get(url)
    WebDriverWait(driver, 60).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#page .page-title"))
    return str(driver.find_element(By.TAG_NAME, "body").text)


def test_every_public_page_loads_with_its_figures(base_url: str) -> None:
    with headless_chromium(DESKTOP) as driver:
        for path, expected in PAGES.items():
            text = _open(driver, base_url + path)
            for piece in expected:
                assert piece in text, (path, piece)
            for code in ANONYMOUS:
                assert code not in text, (path, code)
            assert console_errors(driver) == [], path
        full_page_screenshot(driver, SCREENSHOTS / "public-data.png", DESKTOP[0])


def test_pages_fit_a_phone(base_url: str) -> None:
    with headless_chromium(PHONE) as driver:
        for path in ("/", "/takedown", "/victims"):
            _open(driver, base_url + path)
            overflow = driver.execute_script(
                "return document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            assert overflow <= 0, path
            assert console_errors(driver) == [], path
        full_page_screenshot(driver, SCREENSHOTS / "public-victims-phone.png", PHONE[0])


def _choose(driver: webdriver.Chrome, name: str, option: str) -> None:
    """Pick ``option`` in the filter ``name`` as a person would: open the list, click the option."""
    driver.find_element(By.CSS_SELECTOR, f"#filter-{name} .filter-select").click()
    WebDriverWait(driver, 10).until(lambda d: d.find_elements(By.CSS_SELECTOR, "[role=option]"))
    choice = next(o for o in driver.find_elements(By.CSS_SELECTOR, "[role=option]") if o.text == option)
    choice.click()


def test_a_filter_goes_into_the_url_and_other_browsers_keep_theirs(base_url: str) -> None:
    with headless_chromium() as first, headless_chromium() as second:
        _open(first, base_url + "/targets")
        _open(second, base_url + "/targets")
        _choose(first, "scope", "Country")
        WebDriverWait(first, 30).until(lambda d: "scope=country" in d.current_url)
        # the shared link shows the same view in a fresh browser
        shared = first.current_url
        # the other browser's view did not change
        assert "scope=" not in second.current_url
        second.refresh()
        WebDriverWait(second, 30).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#page .page-title"))
        assert "scope=" not in second.current_url
        text = _open(second, shared)
        assert "scope=country" in second.current_url
        assert "Targets" in text
        assert console_errors(first) == [] and console_errors(second) == []


def test_the_menu_navigates_without_reloading(base_url: str) -> None:
    with headless_chromium() as driver:
        _open(driver, base_url + "/")
        driver.execute_script("window.__sameDocument = true")
        driver.find_element(By.LINK_TEXT, "Victim identification").click()
        WebDriverWait(driver, 30).until(lambda d: d.current_url.endswith("/victims"))
        WebDriverWait(driver, 30).until(
            lambda d: "Victim identification" in d.find_element(By.CSS_SELECTOR, "#page .page-title").text
        )
        assert driver.execute_script("return window.__sameDocument === true")
        assert console_errors(driver) == []
