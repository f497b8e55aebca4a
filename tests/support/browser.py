"""Driving Debian's Chromium with playwright, and checking pages with axe-core.

Chromium comes from the system, never from a download: a missing browser fails the test
with the command that installs it. The customer page's and the console's browser tests use
it.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, Page, sync_playwright

INSTALL = "install it with: sudo apt-get install chromium"

# Chromium's own calls home are refused on a closed network, many at a time, and slow its
# start; root needs --no-sandbox.
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str:
    found = (
        os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    )
    if found is None:
        pytest.fail(f"the browser tests need Chromium and none is installed: {INSTALL}")
    return found


@contextmanager
def chromium() -> Iterator[Browser]:
    executable = chromium_path()
    with sync_playwright() as playwright:
        try:
            launched = playwright.chromium.launch(
                executable_path=executable, headless=True, args=CHROMIUM_FLAGS
            )
        except Exception as exc:  # the message names the install command, then the cause
            pytest.fail(f"Chromium at {executable} did not start ({exc}); {INSTALL}")
        try:
            yield launched
        finally:
            launched.close()


def assert_accessible(page: Page) -> None:
    results = Axe().run(page, options={"resultTypes": ["violations"]})
    assert len(results.response["passes"]) > 10  # axe really ran its rules on this page
    assert results.violations_count == 0, results.generate_report()


def assert_fits(page: Page, width: int) -> None:
    scrolled = page.evaluate("document.documentElement.scrollWidth")
    assert scrolled <= width, f"the page scrolls sideways: {scrolled}px"
