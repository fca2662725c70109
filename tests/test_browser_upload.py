"""The upload page in a real browser: waitress on 127.0.0.1, headless Debian Chromium.

A person signs in, uploads the sample file and sees it accepted, then uploads a file with an
e-mail address in a cell and sees the row, column and rule of the rejection, while the address
appears nowhere on the page. The console must stay free of errors (a Content-Security-Policy
violation is one). Screenshots go to /tmp/upload-report.png, /tmp/upload-rejected.png and /tmp/upload-history.png.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from browser import browser_missing, console_errors, full_page_screenshot, headless_chromium, serve_in_thread
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait
from sqlalchemy.engine import Engine
from sqlmodel import Session, select
from test_web_upload import EMAIL, EMAIL_FILE, PASSWORD, SAMPLE, counts, seed_accounts

from dashboards.app import create_app
from hub.models import Submission
from hub.settings import Settings

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.parametrize("database_url", ["sqlite"], indirect=True),
]
SCREENSHOTS = Path(os.environ.get("HUB_SCREENSHOT_DIR", "/tmp"))


@pytest.fixture
def base_url(loaded_engine: Engine, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    reason = browser_missing()
    if reason:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    monkeypatch.setattr("hub.auth.HASH_METHOD", "scrypt:1024:8:1")
    seed_accounts(loaded_engine)
    with serve_in_thread(create_app(loaded_engine, settings).server) as url:
        yield url


def _submit(driver: webdriver.Chrome) -> None:
    """Send the page's form and wait for the next page (the old one goes stale)."""
    old = driver.find_element(By.TAG_NAME, "html")
    driver.find_element(By.CSS_SELECTOR, "form.stack-form button[type=submit]").click()
    WebDriverWait(driver, 30).until(expected_conditions.staleness_of(old))


def _upload(driver: webdriver.Chrome, path: Path) -> None:
    driver.find_element(By.ID, "file").send_keys(str(path))
    _submit(driver)


def test_sign_in_upload_and_read_the_report(base_url: str, loaded_engine: Engine, tmp_path: Path) -> None:
    good, bad = tmp_path / "q1-figures.csv", tmp_path / "with-email.csv"
    good.write_bytes(SAMPLE)
    bad.write_bytes(EMAIL_FILE.replace(b"2025-Q1", b"2024-Q4"))
    with headless_chromium() as driver:
        driver.implicitly_wait(10)
        driver.get(base_url + "/submit")
        assert driver.current_url.startswith(base_url + "/login?next=")  # sign in first
        assert driver.find_element(By.TAG_NAME, "html").get_attribute("lang") == "en"
        driver.find_element(By.ID, "username").send_keys("alice")
        driver.find_element(By.ID, "password").send_keys(PASSWORD)
        _submit(driver)
        assert driver.find_element(By.CSS_SELECTOR, ".account-name").text.startswith("Signed in as Alice")
        assert driver.current_url == base_url + "/submit"

        _upload(driver, good)
        assert driver.find_element(By.ID, "report-title").text == "Accepted"
        assert "version 1 of 2025-Q1" in driver.find_element(By.CSS_SELECTOR, ".report-detail").text
        full_page_screenshot(driver, SCREENSHOTS / "upload-report.png", 1366)

        _upload(driver, bad)
        assert driver.find_element(By.ID, "report-title").text == "Rejected: nothing was stored"
        cells = [
            [cell.text for cell in row.find_elements(By.TAG_NAME, "td")]
            for row in driver.find_elements(By.CSS_SELECTOR, ".problem-table tbody tr")
        ]
        assert cells[0][:3] == ["3", "category", "pd.email"], cells
        assert EMAIL not in driver.page_source and "jane.doe" not in driver.page_source
        full_page_screenshot(driver, SCREENSHOTS / "upload-rejected.png", 1366)

        driver.find_element(By.LINK_TEXT, "Your submissions").click()
        rows = driver.find_elements(By.CSS_SELECTOR, ".history-table tbody tr")
        assert [row.find_element(By.TAG_NAME, "td").text for row in rows] == ["2025-Q1"]
        full_page_screenshot(driver, SCREENSHOTS / "upload-history.png", 1366)
        # the rejected report is answered 422, which Chromium logs; anything else is a failure
        assert [m for m in console_errors(driver) if "status of 422" not in m] == []
    assert counts(loaded_engine) == (1, 5)
    with Session(loaded_engine) as session:
        assert session.exec(select(Submission.channel)).all() == ["upload"]
