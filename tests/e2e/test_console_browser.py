"""The brand console in a real headless Chromium: sign in, every page checked by axe, a batch
downloaded, a customer's report read, a unit recalled with instructions through the
confirmation step (and the customer page showing them), signed out.

It runs the service as a user does (``python -m transparency serve``) and drives the pages
with their own links, forms and buttons; no page needs a script. Screenshots land in
``artifacts/`` (``console-readme.png`` is the README's docs/console.png, made smaller: copy
it there by hand when the console changes; a test writes nothing into the repository).
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from PIL import Image
from playwright.sync_api import Browser, Page, ViewportSize

from tests.support import paths
from tests.support.browser import assert_accessible, assert_fits, chromium
from tests.support.served import Served
from tests.support.world import bearer, new_gtin

ARTIFACTS = paths.ARTIFACTS
PHONE: ViewportSize = {"width": 390, "height": 844}
DESKTOP: ViewportSize = {"width": 1100, "height": 900}
INSTRUCTIONS = "Stop using it and return it to the shop for a full refund."


@pytest.fixture
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


def issue(http: httpx.Client, brand: str, product_id: str, count: int) -> tuple[str, list[str]]:
    r = http.post(
        f"/v1/products/{product_id}/code-batches",
        json={"count": count, "lot": "LOT-2407", "expiry": "2030-06-30"},
        headers=bearer(brand),
    )
    assert r.status_code == 202, r.text
    location = r.headers["location"]
    for _ in range(400):  # a poll with a deadline: a few codes take milliseconds
        if http.get(location, headers=bearer(brand)).json()["status"] == "done":
            break
        time.sleep(0.05)
    text = http.get(f"{location}/codes.csv", headers=bearer(brand)).text
    return r.json()["id"], [row["code"] for row in csv.DictReader(io.StringIO(text))]


def jpeg() -> bytes:
    """A customer's photo of a product, as a phone would send it."""
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 180, 150)).save(out, "JPEG")
    return out.getvalue()


def make_world(url: str, admin: str) -> dict[str, Any]:
    """A brand with a product, a batch whose first code shipped and was checked, an import,
    a customer's report on its last code."""
    with httpx.Client(base_url=url, timeout=30) as http:
        auth = bearer(admin)
        brand = http.post(
            "/v1/brands", json={"name": "Maison Lumière", "gs1_prefixes": ["950600"]}, headers=auth
        ).json()
        key = brand["api_key"]["key"]
        site = http.post("/v1/sites", json={"name": "DC1", "stations": ["s1"]}, headers=auth)
        station = http.post(
            "/v1/api-keys", json={"role": "station", "site_id": site.json()["id"]}, headers=auth
        ).json()["key"]
        product = http.post(
            "/v1/products",
            json={
                "gtin": new_gtin(),
                "name": "Eau de parfum 50 ml",
                "attributes": {"size": "50 ml"},
            },
            headers=bearer(key),
        ).json()
        batch, codes = issue(http, key, product["id"], 4)
        r = http.post(
            "/v1/fulfilment/verifications",
            json={"scan": codes[0], "gtin": product["gtin"], "shipment_id": "S-1"},
            headers=bearer(station),
        )
        assert r.json()["result"] == "pass", r.text
        http.get(f"/v1/verify?code={codes[0]}")
        imported = http.post(
            f"/v1/products/{product['id']}/serial-imports?mode=accept_valid",
            content="serial\nSN-1\nSN-2\nSN-2\n",
            headers={**bearer(key), "Content-Type": "text/csv"},
        )
        assert imported.status_code == 202, imported.text
        reported = http.post(
            "/v1/reports",
            data={"code": codes[3], "place": "Marché Saint-Pierre", "region": "FR"},
            files={"photo": ("photo.jpg", jpeg(), "image/jpeg")},
        )
        assert reported.status_code == 201, reported.text
    return {"key": key, "product": product, "batch": batch, "codes": codes}


def checked(page: Page, name: str, width: int) -> None:
    """The page as it is now: accessible, not wider than the screen, photographed."""
    assert_fits(page, width)
    assert_accessible(page)
    page.screenshot(path=ARTIFACTS / f"console-{name}.png", full_page=True)


def test_the_console_in_chromium(served: tuple[Served, str], browser: Browser) -> None:
    service, admin = served
    world = make_world(service.url, admin)
    ARTIFACTS.mkdir(exist_ok=True)
    context = browser.new_context(
        viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True, locale="en-GB",
        accept_downloads=True,
    )  # fmt: skip
    page = context.new_page()

    # Signed out, the console is its sign-in page.
    page.goto(f"{service.url}/console", wait_until="load")
    assert page.url.endswith("/console/sign-in")
    checked(page, "sign-in", PHONE["width"])
    page.get_by_label("Brand API key").fill(world["key"])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/console/dashboard")
    assert page.get_by_role("heading", level=1, name="Dashboard").is_visible()
    assert page.get_by_role("heading", name="Codes issued (6)").is_visible()  # 4 + 2 imported
    assert page.get_by_role("heading", name="Reports from customers (1)").is_visible()
    assert page.get_by_role("heading", name="Forged attempts (0)").is_visible()
    checked(page, "dashboard", PHONE["width"])

    for link, heading in [("Products", "Products"), ("Code batches", "Code batches"),
                          ("Imports", "Imports"), ("Code look-up", "Code look-up"),
                          ("Customer reports", "Customer reports")]:  # fmt: skip
        page.get_by_role("navigation").get_by_role("link", name=link).click()
        assert page.get_by_role("heading", level=1, name=heading).is_visible()
        checked(page, heading.lower().replace(" ", "-"), PHONE["width"])
        if link == "Products":
            assert page.get_by_text("Eau de parfum 50 ml").is_visible()
        if link == "Imports":
            assert page.get_by_role("link", name="Every rejected row (CSV)").is_visible()
        if link == "Customer reports":
            assert page.get_by_text("Marché Saint-Pierre").is_visible()
            with page.expect_download() as photo:
                page.get_by_role("link", name="Photo").click()
            assert photo.value.path().read_bytes() == jpeg()

    # A batch download: the codes file the API would give.
    page.get_by_role("link", name="Code batches").click()
    with page.expect_download() as download:
        page.get_by_role("link", name="Codes (CSV)").first.click()
    text = download.value.path().read_text()
    assert all(code in text for code in world["codes"])
    page.get_by_label("Label stock").first.select_option("roll-40x30")
    with page.expect_download() as labels:
        page.get_by_role("button", name="Labels (PDF)").first.click()
    assert labels.value.path().read_bytes().startswith(b"%PDF")
    assert "preset=roll-40x30" in labels.value.url

    # A recall: look the code up, choose the action, confirm it.
    code = world["codes"][1]
    page.get_by_role("link", name="Code look-up").click()
    page.get_by_label("Code (as printed, or the label's URL)").fill(code)
    page.get_by_role("button", name="Look up").click()
    page.get_by_label("Action").select_option("recall")
    page.get_by_label("Reason (customers see it)").fill("Bring it back to the shop")
    page.get_by_label("Instructions for customers (a recall only)").fill(INSTRUCTIONS)
    page.get_by_role("button", name="Continue").click()
    assert page.get_by_role("button", name="Confirm: Recall").is_visible()
    assert page.get_by_text("Bring it back to the shop").is_visible()
    assert page.get_by_text(INSTRUCTIONS).is_visible()
    checked(page, "confirm-recall", PHONE["width"])
    with httpx.Client(base_url=service.url) as http:
        history = http.get(f"/v1/codes/{code}/history", headers=bearer(world["key"])).json()
        assert history["state"] == "active"  # nothing happens before the confirmation
        page.get_by_role("button", name="Confirm: Recall").click()
        assert page.get_by_text("Recall: 1 unit(s) changed.").is_visible()
        history = http.get(f"/v1/codes/{code}/history", headers=bearer(world["key"])).json()
        verdict = http.get("/v1/verify", params={"code": code}).json()
    assert (history["state"], history["status_reason"]) == ("recalled", "Bring it back to the shop")
    assert verdict["notice"] == {
        "reason": "Bring it back to the shop",
        "instructions": INSTRUCTIONS,
    }
    customer = context.new_page()  # what a customer who checks the unit now reads
    customer.goto(f"{service.url}/t/{code}", wait_until="load")
    assert customer.get_by_text(INSTRUCTIONS).is_visible()
    assert customer.get_by_text("Bring it back to the shop").is_visible()
    customer.screenshot(path=ARTIFACTS / "console-recalled-customer.png", full_page=True)
    customer.close()

    # In French, with the page's switch.
    page.get_by_role("link", name="Français").click()
    assert page.get_by_role("heading", level=1, name="Retirer des unités").is_visible()
    page.get_by_role("link", name="Tableau de bord").click()
    checked(page, "dashboard-fr", PHONE["width"])
    page.get_by_role("link", name="English").click()

    # Signing out ends the session: the console is its sign-in page again.
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/console/sign-in")
    page.goto(f"{service.url}/console/products", wait_until="load")
    assert page.url.endswith("/console/sign-in")
    context.close()

    # The README's picture: the dashboard on a desktop screen.
    wide = browser.new_context(viewport=DESKTOP, locale="en-GB")
    desk = wide.new_page()
    desk.goto(f"{service.url}/console/sign-in", wait_until="load")
    desk.get_by_label("Brand API key").fill(world["key"])
    desk.get_by_role("button", name="Sign in").click()
    desk.wait_for_url("**/console/dashboard")
    checked(desk, "dashboard-desktop", DESKTOP["width"])
    desk.screenshot(path=ARTIFACTS / "console-desktop.png")
    shot = Image.open(ARTIFACTS / "console-desktop.png").convert(
        "P", palette=Image.Palette.ADAPTIVE
    )
    shot.save(ARTIFACTS / "console-readme.png", optimize=True)
    assert (ARTIFACTS / "console-readme.png").stat().st_size < 300_000
    wide.close()
