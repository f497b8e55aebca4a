"""``loadtest prepare``: make everything a load test needs, through the HTTP API only.

A brand, a product, a site with a station key, ``count`` fresh codes, a few codes already
shipped (for customer checks), a few forged ones and phone photos of shipped codes' labels.
The codes come from the service's own issuance (``/v1/products/{id}/code-batches``) and its
CSV download; the photos from its label download, degraded as a phone camera would.
"""

from __future__ import annotations

import csv
import io
import secrets
import time
import uuid
import zipfile
from typing import Any

import httpx
from PIL import Image, ImageFilter

from loadtest.answers import json_object, problem_text
from loadtest.data import LoadData
from loadtest.errors import PrepareError
from transparency.domain import codes

SHIPPED = 20
FORGED = 10
PHOTOS = 4
# Anything but the service's secret: the tag no longer matches, the code stays well-formed.
WRONG_SECRET = b"loadtest-wrong-secret-0123456789"
BATCH_LIMIT = 1000  # items per /v1/fulfilment/verifications/batch request


def gtin14(body13: str) -> str:
    digits = [int(c) for c in body13]
    total = sum(d * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(digits)))
    return body13 + str((10 - total % 10) % 10)


def forge(code: str) -> str:
    payload = codes.parse(code).payload
    if payload is None:
        raise PrepareError(f"{code}: not a Transparency code, cannot forge one from it")
    return codes.sign_transparency(payload, WRONG_SECRET)


def _call(
    http: httpx.Client, method: str, url: str, key: str, expect: int, **kwargs: Any
) -> httpx.Response:
    try:
        r = http.request(method, url, headers={"Authorization": f"Bearer {key}"}, **kwargs)
    except httpx.HTTPError as exc:
        raise PrepareError(f"{method} {url}: {exc!r}") from exc
    if r.status_code == 404 and "verification" in url:
        raise PrepareError(f"{method} {url}: 404, the verification endpoints are not deployed")
    if r.status_code != expect:
        raise PrepareError(
            f"{method} {url}: expected {expect}, got {r.status_code}: {problem_text(r)}"
        )
    return r


def _json(r: httpx.Response) -> dict[str, Any]:
    return json_object(r, PrepareError)


def _issue(
    http: httpx.Client, brand_key: str, product_id: str, count: int, wait: float
) -> tuple[str, list[str]]:
    r = _call(http, "POST", f"/v1/products/{product_id}/code-batches", brand_key, 202,
              json={"count": count})  # fmt: skip
    location = r.headers.get("location")
    if not location:
        raise PrepareError("POST code-batches: 202 without a Location header")
    deadline = time.monotonic() + wait
    while True:
        batch = _json(_call(http, "GET", location, brand_key, 200))
        if batch.get("status") == "done":
            break
        if batch.get("status") == "failed":
            raise PrepareError(f"code batch {location} failed: {batch}")
        if time.monotonic() > deadline:
            raise PrepareError(f"code batch {location} not done after {wait:.0f} s")
        time.sleep(0.05)
    text = _call(http, "GET", f"{location}/codes.csv", brand_key, 200).text
    issued = [row["code"] for row in csv.DictReader(io.StringIO(text))]
    if len(issued) != count:
        raise PrepareError(f"{location}/codes.csv: {len(issued)} codes, expected {count}")
    return location, issued


def phone_photo(label_png: bytes, turn: int) -> bytes:
    """A label as a phone sees it: on a desk, seen at a slant, a little out of focus, JPEG."""
    label = Image.open(io.BytesIO(label_png)).convert("RGB")
    w, h = label.size
    desk = Image.new("RGB", (w * 2, h * 2), (118, 112, 104))
    desk.paste(label, (w // 2, h // 2))
    # Corners pulled in by up to 8%: a camera held at an angle, a different one per photo.
    d = [int(0.02 * w * ((turn + i) % 4)) for i in range(4)]
    W, H = desk.size
    quad = (d[0], d[1], d[2], H - d[3], W - d[1], H - d[0], W - d[3], d[2])
    slanted = desk.transform(desk.size, Image.Transform.QUAD, quad, Image.Resampling.BICUBIC)
    out = io.BytesIO()
    slanted.filter(ImageFilter.GaussianBlur(0.8)).save(out, "JPEG", quality=75)
    return out.getvalue()


def _photos(http: httpx.Client, brand_key: str, location: str) -> list[bytes]:
    query = "?preset=roll-40x30&images=png"
    archive = _call(http, "GET", f"{location}/labels.zip{query}", brand_key, 200).content
    with zipfile.ZipFile(io.BytesIO(archive)) as z:
        labels = [z.read(name) for name in sorted(z.namelist())]
    return [phone_photo(png, turn) for turn, png in enumerate(labels)]


def _ship(http: httpx.Client, station_key: str, gtin: str, batch: list[str]) -> None:
    body = {"shipment_id": f"prepare-{uuid.uuid4()}", "items": [
        {"scan": code, "gtin": gtin} for code in batch]}  # fmt: skip
    results = _json(_call(http, "POST", "/v1/fulfilment/verifications/batch", station_key, 200,
                          json=body)).get("results")  # fmt: skip
    if not isinstance(results, list) or len(results) != len(batch):
        raise PrepareError("batch claim: expected one result per item")
    failed = [r for r in results if r.get("result") != "pass"]
    if failed:
        raise PrepareError(f"batch claim: {len(failed)} of fresh codes did not pass: {failed[0]}")


def prepare(
    api: str,
    admin_key: str,
    count: int,
    *,
    shipped: int = SHIPPED,
    forged: int = FORGED,
    photos: int = PHOTOS,
    transport: httpx.BaseTransport | None = None,
    wait: float = 600.0,
) -> LoadData:
    """Create a brand, product, site and station key; issue ``count + shipped`` codes."""
    if count < 1:
        raise PrepareError("--codes must be at least 1")
    tag = uuid.uuid4().hex[:8]
    with httpx.Client(base_url=api, transport=transport, timeout=120) as http:
        requested = gtin14(f"0{secrets.randbelow(10**12):012d}")
        # The brand holds the GTIN's whole company prefix (12 digits): a GTIN of its own.
        created = _json(_call(http, "POST", "/v1/brands", admin_key, 201,
                              json={"name": f"loadtest-{tag}",
                                    "gs1_prefixes": [requested[1:13]]}))  # fmt: skip
        brand_key = str(created["api_key"]["key"])
        product = _json(_call(http, "POST", "/v1/products", brand_key, 201,
                              json={"gtin": requested, "name": f"loadtest {tag}"}))  # fmt: skip
        gtin = str(product["gtin"])
        site = _json(_call(http, "POST", "/v1/sites", admin_key, 201,
                           json={"name": f"loadtest-{tag}", "stations": ["loadtest"]}))  # fmt: skip
        station = {"role": "station", "site_id": site["id"], "label": "loadtest"}
        station_key = str(_json(_call(http, "POST", "/v1/api-keys", admin_key, 201,
                                      json=station))["key"])  # fmt: skip
        _, issued = _issue(http, brand_key, str(product["id"]), count + shipped, wait)
        for start in range(0, shipped, BATCH_LIMIT):
            _ship(http, station_key, gtin, issued[start : min(shipped, start + BATCH_LIMIT)])
        pictured: list[bytes] = []
        if photos:
            location, labelled = _issue(http, brand_key, str(product["id"]), photos, wait)
            _ship(http, station_key, gtin, labelled)
            pictured = _photos(http, brand_key, location)
    return LoadData(
        api=api.rstrip("/"),
        station_key=station_key,
        brand_key=brand_key,
        photos=tuple(pictured),
        gtin=gtin,
        codes=tuple(issued[shipped:]),
        shipped=tuple(issued[:shipped]),
        forged=tuple(forge(code) for code in issued[shipped : shipped + forged]),
    )
