"""The signed-in pages in a real browser: sign in, see one's own organisation, the secretariat
approves from its queue, sign out; no console error and no serious accessibility violation."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import flask
import pytest
from browser import (
    DESKTOP,
    axe_violations,
    browser_missing,
    console_errors,
    full_page_screenshot,
    headless_chromium,
)
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait
from test_member_pages import _uploaded
from test_web_upload import PASSWORD, _cheaper_scrypt, accounts, web  # noqa: F401 - fixtures

from hub.serving import serve_in_thread

SCREENSHOTS = Path(os.environ.get("HUB_SCREENSHOT_DIR", "/tmp"))

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.parametrize("database_url", ["sqlite"], indirect=True),
]


@pytest.fixture
def base_url(web: flask.Flask) -> Iterator[str]:
    reason = browser_missing()
    if reason:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    _uploaded(web)
    with serve_in_thread(web) as url:
        yield url


def _sign_in(driver: webdriver.Chrome, url: str, username: str, then: str) -> None:
    driver.get(f"{url}/login?next={then}")
    driver.find_element(By.NAME, "username").send_keys(username)
    driver.find_element(By.NAME, "password").send_keys(PASSWORD)
    driver.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
    WebDriverWait(driver, 60).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#page .page-title"))


def test_an_organisation_signs_in_sees_its_page_and_signs_out(base_url: str) -> None:
    with headless_chromium() as driver:
        _sign_in(driver, base_url, "alice", "/my")
        WebDriverWait(driver, 30).until(lambda d: "Submissions" in d.find_element(By.ID, "page").text)
        text = driver.find_element(By.ID, "page").text
        assert "Example-Platform Ltd" in text and "What is due" in text
        assert "other-platform" not in text
        assert axe_violations(driver) == []
        assert console_errors(driver) == []
        driver.find_element(By.CSS_SELECTOR, ".account-bar button[type=submit]").click()
        WebDriverWait(driver, 30).until(lambda d: "/login" in d.current_url)
        driver.get(base_url + "/my")
        WebDriverWait(driver, 30).until(lambda d: "Please sign in" in d.find_element(By.ID, "page").text)


def test_the_secretariat_approves_from_its_queue(base_url: str) -> None:
    with headless_chromium() as driver:
        _sign_in(driver, base_url, "sam", "/secretariat")
        WebDriverWait(driver, 30).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#approval-queue form"))
        assert "Completeness and timeliness" in driver.find_element(By.ID, "page").text
        assert axe_violations(driver) == []
        form = driver.find_element(By.CSS_SELECTOR, "#approval-queue form")
        submission = form.find_element(By.NAME, "submission").get_attribute("value")
        form.find_element(By.CSS_SELECTOR, "button[value=approve]").click()
        WebDriverWait(driver, 30).until(lambda d: d.find_elements(By.CSS_SELECTOR, "[role=status]"))
        assert (
            driver.find_element(By.CSS_SELECTOR, "[role=status]").text == f"Submission {submission} approved."
        )
        assert "Approval queue (1)" in driver.find_element(By.ID, "page").text
        assert "Scheduled exports" in driver.find_element(By.ID, "schedules").text
        # the registers are AG Grids, drawn under the Content-Security-Policy (no eval)
        WebDriverWait(driver, 30).until(
            lambda d: d.find_elements(By.CSS_SELECTOR, "#organisations-table .ag-row")
        )
        grid = driver.find_element(By.ID, "organisations-table").text
        assert grid.startswith("Code\nName\nType") and "company" in grid  # rows drawn as they scroll in
        assert len(driver.find_elements(By.CSS_SELECTOR, "#organisations-table .ag-row")) >= 5
        assert console_errors(driver) == []
        full_page_screenshot(driver, SCREENSHOTS / "secretariat.png", DESKTOP[0])
