"""The HTML report in a real headless browser (Debian's chromium through chromedriver, selenium).

Opened from a file: URL. Checks that the matrix renders, the filters hide rows and columns,
a cell's detail view opens on click, the page works with JavaScript off, and a target-sent
``<script>`` is shown as text and never runs.

Without chromium this module skips locally; in CI (``CI=true``) a missing browser fails.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from asgi_conformance.report import write_html
from tests.test_report import SCRIPT, synthetic

WAIT_S = 15.0
IN_CI = os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")
PWNED = "window.__pwned = 1; document.title = 'pwned';"
HOSTILE = f"<script>{PWNED}</script>"
_PROFILES: dict[int, str] = {}
HOSTILE_IMG = "<img src=x onerror=\"window.__pwned = 2; document.title = 'pwned'\">"


def _missing(what: str) -> None:
    if IN_CI:
        pytest.fail(f"{what} (CI=true: the browser test must run; .ci/run installs chromium and chromium-driver)")
    pytest.skip(what)


def _browser_paths() -> tuple[str, str]:
    chromium = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
    driver = shutil.which("chromedriver") or (
        "/usr/bin/chromedriver" if Path("/usr/bin/chromedriver").exists() else None
    )
    if chromium is None or driver is None:
        _missing("chromium and chromedriver are not installed (apt-get install chromium chromium-driver)")
    assert chromium is not None
    assert driver is not None
    return chromium, driver


def _start(javascript: bool = True) -> Any:
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        _missing("selenium is not installed (the test extra)")
    chromium, driver = _browser_paths()
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    profile = tempfile.mkdtemp(prefix="asgi-conformance-chromium-")
    for arg in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        f"--user-data-dir={profile}",
        "--window-size=1400,1000",
    ):
        options.add_argument(arg)
    if not javascript:
        options.add_experimental_option("prefs", {"profile.managed_default_content_settings.javascript": 2})
    browser = webdriver.Chrome(service=Service(driver), options=options)
    browser.set_page_load_timeout(WAIT_S)
    browser.set_script_timeout(WAIT_S)
    _PROFILES[id(browser)] = profile
    return browser


def _stop(browser: Any) -> None:
    try:
        browser.quit()
    finally:
        shutil.rmtree(_PROFILES.pop(id(browser)), ignore_errors=True)


def hostile_results() -> dict[str, Any]:
    """The synthetic results, with script-bearing text in every place a target can reach."""
    results = synthetic()
    for cell in results["results"]:
        if cell["target"] == "evil":
            for key in ("message", "observed", "expected"):
                if key in cell:
                    cell[key] = f"{cell[key]} {HOSTILE} {HOSTILE_IMG}".replace(SCRIPT, HOSTILE)
            cell["trace"] = ["connect 127.0.0.1:1", "< " + HOSTILE, "< " + HOSTILE_IMG]
            cell["log"] = f"--- server log\n{HOSTILE}\n{HOSTILE_IMG}\n"
    evil = results["targets"][1]
    evil.update(name="evil" + HOSTILE, version="6.6.6" + HOSTILE_IMG, variant=HOSTILE, command=HOSTILE_IMG)
    return results


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("report") / "index.html"
    write_html(hostile_results(), path)
    return path


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    driver = _start()
    try:
        yield driver
    finally:
        _stop(driver)


def wait_for(browser: Any, condition: Callable[[Any], Any]) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(browser, WAIT_S).until(condition)


def opened(browser: Any, report: Path, fragment: str = "") -> Any:
    browser.get("about:blank")  # a new document each time, even when only the fragment differs
    browser.get(report.as_uri() + fragment)
    wait_for(browser, lambda b: b.execute_script("return document.readyState") == "complete")
    return browser


def not_pwned(browser: Any) -> None:
    assert browser.execute_script("return window.__pwned === undefined")
    assert browser.title == "ASGI server conformance"


def test_matrix_renders(browser: Any, report: Path) -> None:
    from selenium.webdriver.common.by import By

    opened(browser, report)
    cell = browser.find_element(By.CSS_SELECTOR, "#matrix td.cell.v-fail a.cell-link")
    assert cell.is_displayed()
    assert cell.text.strip() == "fail"
    headers = [h.text for h in browser.find_elements(By.CSS_SELECTOR, "#matrix thead th[data-target]")]
    assert headers[0].splitlines() == ["good", "goodserver 1.2.3"]
    assert len(browser.find_elements(By.CSS_SELECTOR, "#matrix tr.scenario")) == 4
    # the script showed the filters and nothing target-sent ran
    assert browser.find_element(By.ID, "filters").is_displayed()
    not_pwned(browser)
    # no CSP violation and no script error: the page's own script was admitted and ran cleanly
    assert [e for e in browser.get_log("browser") if e.get("level") == "SEVERE"] == []


def test_filters_hide_rows_and_columns(browser: Any, report: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    opened(browser, report)
    rows = {r.get_attribute("data-id"): r for r in browser.find_elements(By.CSS_SELECTOR, "#matrix tr.scenario")}
    assert all(r.is_displayed() for r in rows.values())
    # level: drop MUST rows
    browser.find_element(By.CSS_SELECTOR, 'input[name="level"][value="MUST"]').click()
    wait_for(browser, lambda b: not rows["core.scope.type"].is_displayed())
    assert not rows["ls.scope.type"].is_displayed()
    assert rows["core.scope.fresh_per_call"].is_displayed()
    assert "2 of 4 scenarios shown" in browser.find_element(By.ID, "shown").text
    browser.find_element(By.CSS_SELECTOR, 'input[name="level"][value="MUST"]').click()
    wait_for(browser, lambda b: rows["core.scope.type"].is_displayed())
    # area
    Select(browser.find_element(By.CSS_SELECTOR, 'select[name="area"]')).select_by_value("lifespan")
    wait_for(browser, lambda b: not rows["core.scope.type"].is_displayed())
    assert rows["ls.scope.type"].is_displayed()
    Select(browser.find_element(By.CSS_SELECTOR, 'select[name="area"]')).select_by_value("")
    wait_for(browser, lambda b: rows["core.scope.type"].is_displayed())
    # verdict: problems only keeps the rows with a fail, warn or error cell
    browser.find_element(By.CSS_SELECTOR, 'button[data-preset="problems"]').click()
    wait_for(browser, lambda b: not rows["ls.scope.type"].is_displayed())
    assert rows["core.scope.type"].is_displayed()
    assert rows["core.scope.fresh_per_call"].is_displayed()
    assert not rows["http.scope.asgi.spec_version"].is_displayed()
    # target: hiding the column of "evil" leaves no problem row at all
    evil_cell = browser.find_element(By.CSS_SELECTOR, '#matrix td.cell[data-target="evil"]')
    browser.find_element(By.CSS_SELECTOR, 'input[name="target"][value="evil"]').click()
    wait_for(browser, lambda b: not evil_cell.is_displayed())
    header = browser.find_element(By.CSS_SELECTOR, '#matrix thead th[data-target="evil"]')
    assert not header.is_displayed()
    assert not any(r.is_displayed() for r in rows.values())
    browser.find_element(By.CSS_SELECTOR, '#filters button[type="reset"]').click()
    wait_for(browser, lambda b: all(r.is_displayed() for r in rows.values()))
    assert evil_cell.is_displayed()
    not_pwned(browser)


def test_detail_view_opens_and_shows_target_script_as_text(browser: Any, report: Path) -> None:
    from selenium.webdriver.common.by import By

    opened(browser, report)
    browser.find_element(By.CSS_SELECTOR, '#matrix td.cell[data-target="evil"].v-fail a.cell-link').click()
    dialog = wait_for(
        browser, lambda b: b.find_element(By.ID, "detail") if b.find_element(By.ID, "detail").is_displayed() else False
    )
    text = dialog.text
    assert "core.scope.type" in text
    assert "re-run: pytest --target=evil --scenario=core.scope.type" in text
    assert HOSTILE in text  # the script is shown, as text
    assert "onerror" in text
    assert dialog.find_elements(By.CSS_SELECTOR, "script, img") == []
    not_pwned(browser)
    dialog.find_element(By.CSS_SELECTOR, "button.close").click()
    wait_for(browser, lambda b: not b.find_element(By.ID, "detail").is_displayed())
    # the link carries the cell's anchor, so the URL of an open detail can be shared
    assert browser.current_url.endswith("#c-evil-core-scope-type")


def test_no_target_script_runs_anywhere(browser: Any, report: Path) -> None:
    from selenium.webdriver.common.by import By

    opened(browser, report, "#c-evil-core-scope-type")
    wait_for(browser, lambda b: b.find_element(By.ID, "detail").is_displayed())
    # scroll every part of the page into view: lazy or deferred content gets its chance to run
    browser.execute_script("window.scrollTo(0, document.body.scrollHeight)")
    body = browser.find_element(By.TAG_NAME, "body").get_attribute("textContent")
    assert body.count(HOSTILE) >= 5
    assert len(browser.find_elements(By.CSS_SELECTOR, "script")) == 1
    assert browser.find_elements(By.CSS_SELECTOR, "img, iframe, object, embed") == []
    not_pwned(browser)


def test_readable_without_javascript(report: Path) -> None:
    from selenium.webdriver.common.by import By

    browser = _start(javascript=False)
    try:
        opened(browser, report)
        assert not browser.find_element(By.ID, "filters").is_displayed()
        cell = browser.find_element(By.CSS_SELECTOR, '#matrix td.cell[data-target="evil"].v-fail a.cell-link')
        assert cell.is_displayed()
        cell.click()
        wait_for(browser, lambda b: b.current_url.endswith("#c-evil-core-scope-type"))
        detail = browser.find_element(By.ID, "c-evil-core-scope-type")
        assert detail.is_displayed()
        assert "re-run: pytest --target=evil --scenario=core.scope.type" in detail.text
        assert HOSTILE in detail.text
        assert not browser.find_element(By.ID, "detail").is_displayed()
        assert browser.title == "ASGI server conformance"
    finally:
        _stop(browser)
