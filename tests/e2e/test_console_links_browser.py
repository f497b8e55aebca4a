"""A brand points its Digital Link QR codes at its own pages from the console, in a real
headless Chromium: add a French product page as the default, see the resolver follow it,
delete it, and scans go back to the verification page. Every state is checked by axe and
photographed into ``artifacts/``."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Browser, Page, ViewportSize

from tests.support import paths
from tests.support.browser import assert_accessible, assert_fits, chromium
from tests.support.served import Served
from tests.support.world import bearer, new_gtin

ARTIFACTS = paths.ARTIFACTS
PHONE: ViewportSize = {"width": 390, "height": 844}
TARGET = "https://maison.example/fr/serum"


@pytest.fixture
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


def checked(page: Page, name: str) -> None:
    assert_fits(page, PHONE["width"])
    assert_accessible(page)
    page.screenshot(path=ARTIFACTS / f"console-links-{name}.png", full_page=True)


def test_a_brand_manages_its_resolver_links(served: tuple[Served, str], browser: Browser) -> None:
    service, admin = served
    with httpx.Client(base_url=service.url, timeout=30) as http:
        brand = http.post(
            "/v1/brands", json={"name": "Maison Lumière", "gs1_prefixes": ["950600"]},
            headers=bearer(admin),
        ).json()  # fmt: skip
        key = brand["api_key"]["key"]
        gtin = new_gtin()
        made = http.post(
            "/v1/products", json={"gtin": gtin, "name": "Sérum de nuit"}, headers=bearer(key)
        )
        assert made.status_code == 201, made.text
        before = http.get(f"/01/{gtin}/21/SN-1")
        assert before.status_code == 307
        assert before.headers["location"] == f"{service.url}/verify/01/{gtin}/21/SN-1"

    ARTIFACTS.mkdir(exist_ok=True)
    context = browser.new_context(
        viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True, locale="en-GB"
    )
    page = context.new_page()
    page.goto(f"{service.url}/console", wait_until="load")
    page.get_by_label("Brand API key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/console/dashboard")
    page.get_by_role("navigation").get_by_role("link", name="Products").click()
    page.get_by_role("link", name="Resolver links").click()
    assert page.get_by_role("heading", level=1, name="Resolver links").is_visible()
    assert page.get_by_text("No links yet").is_visible()
    checked(page, "empty")

    page.get_by_label("Link type").select_option("pip")
    page.get_by_label("Target (https)").fill(TARGET)
    page.get_by_label("Title").fill("Sérum de nuit")
    page.get_by_label("Language (en, fr-FR)").fill("fr")
    page.get_by_label("Default").check()
    page.get_by_role("button", name="Add the link").click()
    row = page.get_by_role("row").filter(has_text=TARGET)
    assert row.get_by_text("gs1:pip").is_visible()
    assert row.get_by_text("Sérum de nuit (fr)").is_visible()
    checked(page, "added")

    with httpx.Client(base_url=service.url) as http:
        assert http.get(f"/01/{gtin}/21/SN-1?src=qr").headers["location"] == f"{TARGET}?src=qr"
        verify = http.get(f"/01/{gtin}/21/SN-1", params={"linkType": "gs1:verificationService"})
        assert verify.headers["location"] == (
            f"{service.url}/verify/01/{gtin}/21/SN-1?linkType=gs1%3AverificationService"
        )  # the query string is passed on, linkType included

    # A target that is not https is refused with a page that says why; nothing is added.
    page.get_by_label("Target (https)").fill("http://maison.example/")
    page.get_by_role("button", name="Add the link").click()
    assert page.get_by_text("the target must be an https URL").is_visible()
    checked(page, "refused")
    page.go_back()
    page.reload()
    assert page.get_by_role("row").filter(has_text="http://maison.example/").count() == 0

    row = page.get_by_role("row").filter(has_text=TARGET)
    row.get_by_role("button", name="Delete").click()
    assert page.get_by_text("No links yet").is_visible()
    with httpx.Client(base_url=service.url) as http:
        after = http.get(f"/01/{gtin}/21/SN-1")
        assert after.headers["location"] == f"{service.url}/verify/01/{gtin}/21/SN-1"
    context.close()
