"""The verification page in a real headless Chromium, on a phone-sized screen, checked by axe.

It runs the service as a user does (``python -m transparency serve``), makes a brand, a
product and codes through the API, and opens the label's URL. Chromium comes from the
system (Debian's ``chromium``), never from a download: a missing browser fails this test
with the command that installs it. Screenshots land in ``artifacts/`` at the repo root.
"""

from __future__ import annotations

import csv
import io
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from PIL import Image, ImageDraw
from playwright.sync_api import Browser, Page, ViewportSize

from tests.support import paths
from tests.support.browser import assert_accessible, assert_fits, chromium
from tests.support.served import Served
from tests.support.world import bearer, new_gtin
from transparency.domain import codes

ARTIFACTS = paths.ARTIFACTS
PHONE: ViewportSize = {"width": 390, "height": 844}


def product_photo() -> bytes:
    image = Image.new("RGB", (480, 320), "#e9e4da")
    draw = ImageDraw.Draw(image)
    draw.rounded_rectangle((150, 40, 330, 290), radius=30, fill="#2f5d8a")
    draw.rectangle((180, 110, 300, 200), fill="#f4f1ea")
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


@pytest.fixture
def photo_server() -> Iterator[str]:
    """The brand's image host: the one thing the page may load from elsewhere."""
    body = product_photo()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/photo.png"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


@pytest.fixture
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


def issue(
    http: httpx.Client, brand: str, product_id: str, count: int, expiry: str = "2030-06-30"
) -> list[str]:
    r = http.post(
        f"/v1/products/{product_id}/code-batches",
        json={"count": count, "lot": "LOT-2407", "expiry": expiry},
        headers=bearer(brand),
    )
    assert r.status_code == 202, r.text
    location = r.headers["location"]
    for _ in range(400):
        if http.get(location, headers=bearer(brand)).json()["status"] == "done":
            break
        time.sleep(0.05)
    text = http.get(f"{location}/codes.csv", headers=bearer(brand)).text
    return [row["code"] for row in csv.DictReader(io.StringIO(text))]


def make_world(url: str, admin: str, photo: str) -> dict[str, Any]:
    """A brand with a profile, a station and a product with a photo sold through checked
    fulfilment only; codes shipped, unshipped, recalled, and shipped past its expiry."""
    with httpx.Client(base_url=url, timeout=30) as http:
        auth = bearer(admin)
        brand = http.post(
            "/v1/brands", json={"name": "Maison Lumière", "gs1_prefixes": ["950600"]}, headers=auth
        ).json()
        brand_key = brand["api_key"]["key"]
        site = http.post("/v1/sites", json={"name": "DC1", "stations": ["s1"]}, headers=auth)
        station = http.post(
            "/v1/api-keys", json={"role": "station", "site_id": site.json()["id"]}, headers=auth
        ).json()["key"]
        product = http.post(
            "/v1/products",
            json={
                "gtin": new_gtin(),
                "name": "Eau de parfum 50 ml",
                "image_url": photo,
                "attributes": {"origin": "Grasse, France"},
                "channel": "checked_only",  # so a unit no station shipped is suspicious
            },
            headers=bearer(brand_key),
        ).json()
        shipped, unshipped, recalled = issue(http, brand_key, product["id"], 3)
        (expired,) = issue(http, brand_key, product["id"], 1, expiry="2020-01-31")
        r = http.patch("/v1/brand/profile", json=PROFILE, headers=bearer(brand_key))
        assert r.status_code == 200, r.text
        r = http.post(
            "/v1/units/actions",
            json={
                "action": "recall",
                "code": recalled,
                "reason": "Faulty spray pump",
                "instructions": "Stop using it and return it to the shop for a refund.",
            },
            headers=bearer(brand_key),
        )
        assert r.status_code == 200, r.text
        for code in (shipped, expired):
            r = http.post(
                "/v1/fulfilment/verifications",
                json={"scan": code, "gtin": product["gtin"], "shipment_id": "S-1"},
                headers=bearer(station),
            )
            assert r.json()["result"] == "pass", r.text
    return {
        "brand": brand_key,
        "product": product,
        "shipped": shipped,
        "unshipped": unshipped,
        "recalled": recalled,
        "expired": expired,
    }


# The brand's logo host: https only (the profile refuses http), served by the browser's own
# request routing, since no test can hold a certificate for it.
PROFILE = {
    "display_name": "Maison Lumière Paris",
    "logo_url": "https://logo.example/lumiere.png",
    "support": "https://support.example/help",
}


def open_page(browser: Browser, url: str, locale: str, *, javascript: bool = True) -> Page:
    context = browser.new_context(
        viewport=PHONE,
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
        locale=locale,
        java_script_enabled=javascript,
    )
    logo = product_photo()
    context.route(
        "https://logo.example/**", lambda route: route.fulfill(body=logo, content_type="image/png")
    )
    page = context.new_page()
    response = page.goto(url, wait_until="load")
    assert response is not None
    assert response.status == 200
    return page


def assert_fits_a_phone(page: Page) -> None:
    assert_fits(page, PHONE["width"])


def test_the_page_in_chromium_on_a_phone(
    served: tuple[Served, str], photo_server: str, browser: Browser
) -> None:
    service, admin = served
    world = make_world(service.url, admin, photo_server)
    ARTIFACTS.mkdir(exist_ok=True)
    label = f"{service.url}/t/{world['shipped']}"

    # The verdict needs no script at all.
    bare = open_page(browser, label, "en-GB", javascript=False)
    heading = bare.get_by_role("heading", level=1, name="Authentic")
    assert heading.is_visible()
    bare.context.close()

    page = open_page(browser, label, "en-GB")
    assert page.get_by_role("heading", level=1, name="Authentic").is_visible()
    assert page.get_by_text("Eau de parfum 50 ml").is_visible()
    assert page.get_by_text("30 June 2030").is_visible()
    photo = page.get_by_role("img", name="Photo of Eau de parfum 50 ml")
    assert photo.evaluate("img => img.complete && img.naturalWidth > 0")
    assert_fits_a_phone(page)
    assert_accessible(page)
    page.screenshot(path=ARTIFACTS / "verify-authentic-en.png", full_page=True)
    page.context.close()

    suspicious = open_page(browser, f"{service.url}/t/{world['unshipped']}", "fr-FR")
    assert suspicious.get_by_role("heading", level=1, name="Suspect").is_visible()
    assert suspicious.get_by_text("Non expédié par la marque").is_visible()
    assert suspicious.get_by_role("heading", name="Signaler ce produit").is_visible()
    assert_fits_a_phone(suspicious)
    assert_accessible(suspicious)
    suspicious.screenshot(path=ARTIFACTS / "verify-suspicious-fr.png", full_page=True)
    suspicious.context.close()

    junk = open_page(browser, f"{service.url}/t/not-a-code", "en-US")
    assert junk.get_by_role("heading", level=1, name="Not authentic").is_visible()
    assert_accessible(junk)
    junk.screenshot(path=ARTIFACTS / "verify-not-authentic-en.png", full_page=True)
    junk.context.close()

    recalled = open_page(browser, f"{service.url}/t/{world['recalled']}", "en-GB")
    assert recalled.get_by_role("heading", level=1, name="Recalled").is_visible()
    assert recalled.get_by_text("Faulty spray pump").is_visible()
    assert recalled.get_by_text("return it to the shop for a refund").is_visible()
    assert recalled.get_by_role("link", name=PROFILE["support"]).is_visible()
    logo = recalled.get_by_role("img", name="Maison Lumière Paris logo")
    assert logo.evaluate("img => img.complete && img.naturalWidth > 0")
    assert_fits_a_phone(recalled)
    assert_accessible(recalled)
    recalled.screenshot(path=ARTIFACTS / "verify-recalled-en.png", full_page=True)
    recalled.context.close()

    expired = open_page(browser, f"{service.url}/t/{world['expired']}", "fr-FR")
    assert expired.get_by_role("heading", level=1, name="Périmé").is_visible()
    assert_fits_a_phone(expired)
    assert_accessible(expired)
    expired.screenshot(path=ARTIFACTS / "verify-expired-fr.png", full_page=True)
    expired.context.close()

    payload = codes.parse(world["shipped"]).payload
    assert payload is not None
    forged = codes.sign_transparency(payload, b"f" * 32)  # brand's key id, wrong tag
    report = open_page(browser, f"{service.url}/t/{forged}", "en-GB")
    assert report.get_by_role("heading", level=1, name="Not authentic").is_visible()
    assert report.get_by_role("img", name="Maison Lumière Paris logo").is_visible()
    assert report.get_by_role("link", name=PROFILE["support"]).is_visible()
    report.get_by_label("Where did you buy it?").fill("Stall 12, Marché aux Puces")
    report.get_by_label("Country, optional").fill("FR")
    assert_fits_a_phone(report)
    assert_accessible(report)
    report.screenshot(path=ARTIFACTS / "verify-report-form-en.png", full_page=True)
    report.get_by_role("button", name="Send the report").click()
    report.wait_for_load_state("load")
    assert report.get_by_role("heading", level=1, name="Thank you").is_visible()
    assert_accessible(report)
    report.screenshot(path=ARTIFACTS / "verify-report-sent-en.png", full_page=True)
    report.context.close()
    sent = httpx.get(f"{service.url}/v1/reports", headers=bearer(world["brand"])).json()
    assert [(r["place"], r["region"]) for r in sent["items"]] == [
        ("Stall 12, Marché aux Puces", "FR")
    ]

    r = httpx.post(
        f"{service.url}/v1/signing-keys/{payload.key_id}/revoke",
        json={"reason": "leak"},
        headers=bearer(world["brand"]),
    )
    assert r.status_code == 200, r.text
    revoked = open_page(browser, label, "en")
    assert revoked.get_by_role("heading", level=1, name="Revoked").is_visible()
    assert_accessible(revoked)
    revoked.screenshot(path=ARTIFACTS / "verify-revoked-en.png", full_page=True)
    revoked.context.close()
