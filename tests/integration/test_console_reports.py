"""Customers' reports in the brand console: the list (GET /v1/reports's service), its pages,
a report's photo, and their chart on the dashboard; a brand sees its own reports only."""

from __future__ import annotations

import re

import httpx

from tests.support.console import issue, signed_in
from tests.support.world import World, bearer, expect, issue_codes
from transparency.domain import codes

JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 64  # a JPEG's first bytes: all a report checks
_PHOTO = re.compile(r'href="(/console/reports/[0-9a-f-]{36}/photo)"')
_NEXT = re.compile(r'href="(/console/reports\?cursor=[^"]+)"')


def forged_of(code: str) -> str:
    """A real key id with a wrong tag: a forgery naming brand A's key."""
    payload = codes.parse(code).payload
    assert payload is not None
    return codes.sign_transparency(payload, b"f" * 32)


async def send(client: httpx.AsyncClient, code: str, place: str, **extra: str) -> str:
    files = {"photo": ("p.jpg", JPEG, "image/jpeg")} if extra.pop("photo", None) else None
    r = await client.post("/v1/reports", data={"code": code, "place": place, **extra}, files=files)
    report_id: str = (await expect(r, 201))["id"]
    return report_id


async def test_a_brand_lists_its_own_customer_reports(
    client: httpx.AsyncClient, world: World
) -> None:
    own, other = await issue_codes(client, world, 2)
    _, (b_code,) = await issue(client, world.brand_b, world.product_b["id"], 1)
    await send(client, own["symbol"], "Shop on Main Street", region="FR", note="cheap")
    await send(client, forged_of(other["code"]), "market stall, Rue X", photo="yes")
    await send(client, b_code, "Brand B's outlet", photo="yes")

    await signed_in(client, world.brand_a)
    page = await client.get("/console/reports")
    assert page.status_code == 200, page.text
    for shown in ("Shop on Main Street", "FR", "cheap", "market stall, Rue X", "Forged code"):
        assert shown in page.text
    assert f'href="/console/codes?code={own["code"]}"' in page.text  # its unit, looked up
    assert "Brand B&#39;s outlet" not in page.text
    assert "Brand B" not in page.text
    (photo,) = _PHOTO.findall(page.text)  # the forgery's; the unit's report has none
    got = await client.get(photo)
    assert (got.status_code, got.content, got.headers["content-type"]) == (200, JPEG, "image/jpeg")
    # The same rows as the API's list, newest first.
    api = await expect(await client.get("/v1/reports", headers=bearer(world.brand_a)), 200)
    assert [r["place"] for r in api["items"]] == ["market stall, Rue X", "Shop on Main Street"]
    assert page.text.index("market stall, Rue X") < page.text.index("Shop on Main Street")

    # A page at a time: the next page's link leads to the older report.
    first = await client.get("/console/reports?limit=1")
    assert "market stall, Rue X" in first.text
    assert "Shop on Main Street" not in first.text
    (more,) = _NEXT.findall(first.text)
    second = await client.get(more.replace("&amp;", "&"))
    assert "Shop on Main Street" in second.text
    assert "market stall, Rue X" not in second.text
    assert not _NEXT.findall(second.text)

    # Their chart on the dashboard.
    board = await client.get("/console/dashboard")
    assert 'Reports from customers <span class="num">(2)</span>' in board.text

    # Brand B's session: its own report only, and brand A's photo is as missing as none.
    client.cookies.clear()
    await signed_in(client, world.brand_b)
    mine = await client.get("/console/reports")
    assert "Brand B&#39;s outlet" in mine.text
    assert "Shop on Main Street" not in mine.text
    assert "market stall" not in mine.text
    assert (await client.get(photo)).status_code == 404
    board = await client.get("/console/dashboard")
    assert 'Reports from customers <span class="num">(1)</span>' in board.text


async def test_a_bad_cursor_is_a_page_that_says_so(client: httpx.AsyncClient, world: World) -> None:
    await signed_in(client, world.brand_a)
    r = await client.get("/console/reports?cursor=nonsense")
    assert r.status_code == 422
    assert "cursor is not one this service gave out" in r.text
    assert r.headers["content-type"].startswith("text/html")
