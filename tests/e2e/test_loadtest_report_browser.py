"""A run's HTML report in a real headless Chromium, checked by axe.

The report of a realistic ramp (nine request types, a killed API process, an outage) is
written to ``artifacts/loadtest-report`` and opened from disk as a user opens it, with
every request outside the file refused: the report must need nothing but itself.
Screenshots land in ``artifacts/``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, Route

from loadtest import report
from tests.support import loadtest_summary, paths
from tests.support.browser import assert_accessible, assert_fits, chromium

ARTIFACTS = paths.ARTIFACTS
WIDTH = 1280


@pytest.fixture
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


def open_report(browser: Browser, path: Path) -> tuple[Page, list[str]]:
    page = browser.new_page(viewport={"width": WIDTH, "height": 900})
    outside: list[str] = []

    def refuse(route: Route) -> None:
        outside.append(route.request.url)
        route.abort()

    page.route("http*://**", refuse)
    page.goto(path.as_uri())
    return page, outside


def test_the_report_opens_offline_reads_well_and_passes_axe(browser: Browser) -> None:
    path = ARTIFACTS / "loadtest-report.html"
    ARTIFACTS.mkdir(exist_ok=True)
    path.write_text(report.render(loadtest_summary.realistic()), encoding="utf-8")
    page, outside = open_report(browser, path)
    assert outside == []
    banner = page.locator(".verdict")
    assert banner.locator("p").inner_text() == "FAIL"
    assert "claim p99 61.2 ms > 50 ms at 1000/s" in banner.inner_text()
    plots = page.locator("figure svg[role=img]")
    assert plots.count() == 5  # main, latency, errors, CPU, ramp
    for i in range(plots.count()):
        box = plots.nth(i).bounding_box()
        assert box is not None
        assert box["width"] > 600, "a plot is drawn too small to read"
    assert_fits(page, WIDTH)
    assert_accessible(page)
    page.screenshot(path=str(ARTIFACTS / "loadtest-report.png"), full_page=True)
    plots.first.screenshot(path=str(ARTIFACTS / "loadtest-report-main.png"))


def test_a_minimal_passing_report_passes_axe(browser: Browser) -> None:
    path = report.write(loadtest_summary.minimal(), ARTIFACTS / "loadtest-report-minimal")
    page, outside = open_report(browser, path)
    assert outside == []
    assert page.locator(".verdict p").inner_text() == "PASS"
    assert_accessible(page)
    page.screenshot(path=str(ARTIFACTS / "loadtest-report-minimal.png"), full_page=True)
