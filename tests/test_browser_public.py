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
from browser import (
    DESKTOP,
    PHONE,
    axe_violations,
    browser_missing,
    console_errors,
    full_page_screenshot,
    headless_chromium,
)
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
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
def base_url(loaded_engine: Engine, settings: Settings, releases: dict[str, int]) -> Iterator[str]:
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


def test_every_public_page_loads_with_its_figures_and_passes_axe(base_url: str) -> None:
    """Each page: its key figures, no anonymous organisation, no console error, and axe-core
    finds no serious or critical violation."""
    inaccessible = {}
    with headless_chromium(DESKTOP) as driver:
        _menu_navigates_without_reloading(driver, base_url)  # first, in the fresh browser
        for path, expected in {**PAGES, "/sources": ["Public sources"]}.items():
            text = _open(driver, base_url + path)
            for piece in expected:
                assert piece in text, (path, piece)
            for code in ANONYMOUS:
                assert code not in text, (path, code)
            assert console_errors(driver) == [], path
            violations = axe_violations(driver)
            if violations:
                inaccessible[path] = violations
        full_page_screenshot(driver, SCREENSHOTS / "public-sources.png", DESKTOP[0])
    assert inaccessible == {}


def _choose(driver: webdriver.Chrome, name: str, option: str) -> None:
    """Pick ``option`` in the filter ``name`` as a person would: open the list, click the option."""
    driver.find_element(By.CSS_SELECTOR, f"#filter-{name} .filter-select").click()
    WebDriverWait(driver, 10).until(lambda d: d.find_elements(By.CSS_SELECTOR, "[role=option]"))
    choice = next(o for o in driver.find_elements(By.CSS_SELECTOR, "[role=option]") if o.text == option)
    choice.click()


def test_a_filter_goes_into_the_url_and_other_browsers_keep_theirs(base_url: str) -> None:
    """Two readers at once: one on a laptop choosing filters with the mouse then the keyboard,
    one on a phone (the pages fit its width) whose view never follows the first one's."""
    with headless_chromium() as first, headless_chromium(PHONE) as second:
        _filters_work_from_the_keyboard(first, base_url)  # first, in the fresh browser
        _open(first, base_url + "/targets")
        _open(second, base_url + "/targets")
        _choose(first, "scope", "Country")
        WebDriverWait(first, 30).until(lambda d: "scope=country" in d.current_url)
        shared = first.current_url
        # the other browser's view did not change
        assert "scope=" not in second.current_url
        second.refresh()
        WebDriverWait(second, 30).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#page .page-title"))
        assert "scope=" not in second.current_url
        for path in ("/", "/takedown", "/victims"):
            _open(second, base_url + path)
            overflow = second.execute_script(
                "return document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            assert overflow <= 0, path
            assert console_errors(second) == [], path
        full_page_screenshot(second, SCREENSHOTS / "public-victims-phone.png", PHONE[0])
        # the shared link shows the same view in the other browser
        text = _open(second, shared)
        assert "scope=country" in second.current_url
        assert "Targets" in text
        assert console_errors(first) == [] and console_errors(second) == []


def _menu_navigates_without_reloading(driver: webdriver.Chrome, base_url: str) -> None:
    _open(driver, base_url + "/")
    driver.execute_script("window.__sameDocument = true")
    driver.find_element(By.LINK_TEXT, "Victim identification").click()
    WebDriverWait(driver, 30).until(lambda d: d.current_url.endswith("/victims"))
    # Dash may replace the title between finding it and reading it: look again, not fail
    WebDriverWait(driver, 30, ignored_exceptions=(StaleElementReferenceException,)).until(
        lambda d: "Victim identification" in d.find_element(By.CSS_SELECTOR, "#page .page-title").text
    )
    assert driver.execute_script("return window.__sameDocument === true")
    assert console_errors(driver) == []


def _filters_work_from_the_keyboard(driver: webdriver.Chrome, base_url: str) -> None:
    """Tab reaches the first filter's button (Dash's hidden focus input hands focus on at once),
    the arrow keys open the list and move through it, Enter chooses: the URL follows."""
    _open(driver, base_url + "/targets")
    body = driver.find_element(By.TAG_NAME, "body")
    body.send_keys(Keys.TAB)  # the skip link
    focused = driver.switch_to.active_element
    assert focused.text == "Skip to the figures"
    for _ in range(40):  # through the menu to the first filter
        driver.switch_to.active_element.send_keys(Keys.TAB)
        focused = driver.switch_to.active_element
        if focused.tag_name == "button" and "filter-select" in (focused.get_attribute("class") or ""):
            break
    else:
        pytest.fail("Tab never reached a filter")
    assert focused.get_attribute("aria-haspopup") == "listbox"
    assert "Release" in focused.text or focused.get_attribute("aria-labelledby")
    # the second filter: scope
    focused.send_keys(Keys.TAB)
    scope = driver.switch_to.active_element
    assert scope.tag_name == "button" and "All scopes" in scope.text
    scope.send_keys(Keys.ARROW_DOWN)  # opens the list: focus goes to the chosen option's radio
    radio = "dash-options-list-option-checkbox"
    WebDriverWait(driver, 10).until(lambda d: d.switch_to.active_element.get_attribute("class") == radio)
    for _ in range(4):  # down through the options to Alliance (each option's radio holds its value)
        active = driver.switch_to.active_element
        value = active.get_attribute("value")
        if value == "alliance":
            break
        active.send_keys(Keys.ARROW_DOWN)
        WebDriverWait(driver, 10).until(
            lambda d, v=value: d.switch_to.active_element.get_attribute("value") != v
        )
    else:
        pytest.fail("the arrow keys never reached Alliance")
    driver.switch_to.active_element.send_keys(Keys.ENTER)
    WebDriverWait(driver, 30).until(lambda d: "scope=alliance" in d.current_url)
    assert console_errors(driver) == []
