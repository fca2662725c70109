"""Helpers for browser tests: the real WSGI server in a thread, and headless Debian Chromium.

Chromium and chromedriver come from Debian (scripts/install-system-deps.sh); Selenium
Manager is never used (it would download a browser, and the machines have no internet).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from hub.serving import serve_in_thread as serve_in_thread  # the tests' server, re-exported

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
DESKTOP = (1366, 900)
PHONE = (390, 844)


def browser_missing() -> str | None:
    """Why the browser tests cannot run here, or None when they can."""
    for path in (CHROMIUM, CHROMEDRIVER):
        if not path.exists():
            return f"{path} not installed (run scripts/install-system-deps.sh)"
    return None


@contextmanager
def headless_chromium(window: tuple[int, int] = DESKTOP) -> Iterator[webdriver.Chrome]:
    """A headless Chromium with a throw-away profile that keeps the console log."""
    profile = tempfile.mkdtemp(prefix="hub-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--hide-scrollbars",
        f"--window-size={window[0]},{window[1]}",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        driver.set_window_size(*window)
        driver.set_page_load_timeout(30)
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def console_errors(driver: webdriver.Chrome) -> list[str]:
    """Console messages of level SEVERE (errors, CSP violations, failed loads) since the last call."""
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def full_page_screenshot(driver: webdriver.Chrome, path: Path, width: int) -> None:
    """Resize the window to the page's full height, then screenshot it."""
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(width, int(height) + 120)
    driver.save_screenshot(str(path))


AXE_TAGS = ("wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice")
# Dash 4's dropdown puts an aria-hidden, focusable <input> before its button: a focus
# trampoline that hands focus to the labelled button the moment it gets it (its onFocus), so
# keyboard and screen-reader users land on the button (tests/test_browser_public.py checks
# this). axe cannot see the hand-over and reports aria-hidden-focus; that element is left out.
AXE_EXCLUDE = (".dash-dropdown-focus-target",)


def axe_violations(driver: webdriver.Chrome, impacts: tuple[str, ...] = ("serious", "critical")) -> list[str]:
    """Run axe-core (packaged by axe-core-python) on the page; its violations of ``impacts``,
    one line each: rule, impact, how many elements, the first element's selector."""
    from importlib.resources import files

    driver.execute_script(files("axe_core_python").joinpath("axe.min.js").read_text(encoding="utf-8"))
    driver.set_script_timeout(60)
    result = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "axe.run({exclude: arguments[1].map(s => [s])}, "
        "{runOnly: {type: 'tag', values: arguments[0]}, resultTypes: ['violations']})"
        ".then(r => done(r.violations)).catch(e => done([{id: 'axe-error', impact: 'critical', "
        "help: String(e), nodes: []}]));",
        list(AXE_TAGS),
        list(AXE_EXCLUDE),
    )
    return [
        f"{v['id']} ({v['impact']}, {len(v['nodes'])} element(s), e.g. "
        f"{v['nodes'][0]['target'] if v['nodes'] else '-'}): {v['help']}"
        for v in result
        if v.get("impact") in impacts
    ]
