"""What a customer sees beyond the verdict: the brand's face, a withdrawn unit's notice, the
report form and where reports go, and a GS1 code that wraps between its parts."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest

from tests.support.asgi import make_client
from tests.support.world import World, bearer, issue_codes, ship
from transparency.api.app import create_app
from transparency.api.schemas import CustomerAnswer
from transparency.domain import codes
from transparency.runtime.settings import Settings

JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 64  # a JPEG's first bytes: all a report checks
PROFILE = {
    "display_name": "Acme Labs",
    "logo_url": "https://cdn.example.com/acme.png",
    "support": "help@acme.example",
    "recall_instructions": "Bring it back to the shop for a refund.",
}


async def answer(client: httpx.AsyncClient, scan: str) -> dict[str, object]:
    r = await client.post("/v1/verify", json={"scan": scan})
    assert r.status_code == 200, r.text
    CustomerAnswer.model_validate(r.json(), strict=True)
    found: dict[str, object] = r.json()
    return found


async def set_profile(client: httpx.AsyncClient, key: str, **fields: object) -> dict[str, object]:
    r = await client.patch("/v1/brand/profile", json=fields, headers=bearer(key))
    assert r.status_code == 200, r.text
    profile: dict[str, object] = r.json()
    return profile


async def recall(client: httpx.AsyncClient, world: World, code: str, **extra: str) -> None:
    r = await client.post(
        "/v1/units/actions",
        json={"action": "recall", "code": code, "reason": "contamination", **extra},
        headers=bearer(world.brand_a),
    )
    assert r.status_code == 200, r.text


def forged_of(code: str) -> str:
    """A real key id with a wrong tag: a forgery naming brand A's key."""
    payload = codes.parse(code).payload
    assert payload is not None
    return codes.sign_transparency(payload, b"f" * 32)


async def reports(client: httpx.AsyncClient, key: str) -> list[dict[str, object]]:
    r = await client.get("/v1/reports", headers=bearer(key))
    assert r.status_code == 200, r.text
    items: list[dict[str, object]] = r.json()["items"]
    return items


async def test_a_brand_reads_and_changes_its_profile(
    client: httpx.AsyncClient, world: World
) -> None:
    profile = await set_profile(client, world.brand_a, **PROFILE)
    assert profile == {
        "brand_id": world.brand_a_id,
        "name": profile["name"],
        "resolver_domain": None,
        **PROFILE,
    }
    r = await client.get("/v1/brand/profile", headers=bearer(world.brand_a))
    assert r.json() == profile
    cleared = await set_profile(client, world.brand_a, logo_url=None)
    assert cleared == {**profile, "logo_url": None}  # fields left out keep their values
    for bad in (
        {"logo_url": "http://cdn.example.com/acme.png"},  # https only: the page loads it
        {"logo_url": "javascript:alert(1)"},
        {"support": "call us"},
        {"support": 'x@y.z" onclick="alert(1)'},
        {"display_name": ""},
        {"name": "renamed"},
    ):
        r = await client.patch("/v1/brand/profile", json=bad, headers=bearer(world.brand_a))
        assert r.status_code == 422, bad
        assert r.json()["type"] == "/problems/invalid-input"
    r = await client.get("/v1/brand/profile", headers=bearer(world.brand_a))
    assert r.json() == cleared  # nothing the refused requests said was kept
    r = await client.get(f"/v1/brands/{world.brand_a_id}/profile", headers=bearer(world.admin))
    assert r.json() == cleared


async def test_a_recalled_unit_says_why_what_to_do_and_whom_to_ask(
    client: httpx.AsyncClient, world: World
) -> None:
    await set_profile(client, world.brand_a, **PROFILE)
    own, default = await issue_codes(client, world, 2)
    for row in (own, default):
        await ship(client, world, row["code"])
    await recall(client, world, own["code"], instructions="Return it to any pharmacy.")
    await recall(client, world, default["code"])
    first = await answer(client, own["code"])
    assert first["verdict"] == "recalled"
    assert first["notice"] == {
        "reason": "contamination",
        "instructions": "Return it to any pharmacy.",
    }
    assert first["brand"] == {
        "name": "Acme Labs",
        "logo_url": PROFILE["logo_url"],
        "support": PROFILE["support"],
    }
    second = await answer(client, default["code"])
    assert second["notice"] == {
        "reason": "contamination",
        "instructions": PROFILE["recall_instructions"],  # the profile's, when the recall is mute
    }
    text = (await client.get(f"/t/{own['code']}")).text
    assert '<section class="verdict v-recalled"' in text  # not v-authentic's green
    assert "contamination" in text
    assert "Return it to any pharmacy." in text
    assert f'<a href="mailto:{PROFILE["support"]}">' in text
    assert f'<img class="logo" src="{PROFILE["logo_url"]}"' in text
    assert "Acme Labs" in text
    assert "Report this product" not in text  # a genuine unit: the brand's own notice


async def test_instructions_go_with_a_recall_only(client: httpx.AsyncClient, world: World) -> None:
    (row,) = await issue_codes(client, world, 1)
    r = await client.post(
        "/v1/units/actions",
        json={"action": "revoke", "code": row["code"], "reason": "x", "instructions": "y"},
        headers=bearer(world.brand_a),
    )
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "instructions"
    assert (await answer(client, row["code"]))["verdict"] == "authentic"  # not revoked


async def test_a_forgery_of_a_brands_key_names_the_brand_and_takes_a_report(
    client: httpx.AsyncClient, world: World
) -> None:
    await set_profile(client, world.brand_a, **PROFILE)
    (row,) = await issue_codes(client, world, 1)
    forged = forged_of(row["code"])
    found = await answer(client, forged)
    assert (found["verdict"], found["reason"]) == ("not_authentic", "forged")
    assert found["brand"] == {
        "name": "Acme Labs",
        "logo_url": PROFILE["logo_url"],
        "support": PROFILE["support"],
    }
    junk = await answer(client, "hello")
    assert junk["brand"] is None  # names no brand

    page = (await client.get(f"/t/{forged}")).text
    assert '<form method="post" action="/t/report" enctype="multipart/form-data">' in page
    assert f'<input type="hidden" name="code" value="{forged}">' in page
    assert f'<a href="mailto:{PROFILE["support"]}">' in page

    sent = await client.post(
        "/t/report",
        data={"code": forged, "place": "market stall, Rue X", "region": "fr", "note": ""},
        files={"photo": ("p.jpg", JPEG, "image/jpeg")},
    )
    assert sent.status_code == 200, sent.text
    assert "Your report was sent to the brand." in sent.text
    r = await client.post("/v1/reports", data={"code": "hello", "place": "https://shop.example"})
    assert r.status_code == 201, r.text

    (report,) = await reports(client, world.brand_a)
    assert report["code"] == forged.strip()
    assert (report["reason"], report["unit_state"]) == ("forged", None)
    assert (report["place"], report["region"], report["note"]) == (
        "market stall, Rue X",
        "FR",
        None,
    )
    assert await reports(client, world.brand_b) == []  # another brand's reports: none
    assert len(await reports(client, world.admin)) == 2  # an operator sees the brandless one
    photo = await client.get(str(report["photo"]), headers=bearer(world.brand_a))
    assert (photo.status_code, photo.content) == (200, JPEG)
    assert photo.headers["content-type"] == "image/jpeg"
    assert photo.headers["x-content-type-options"] == "nosniff"
    other = await client.get(str(report["photo"]), headers=bearer(world.brand_b))
    assert other.status_code == 404


async def test_a_report_on_a_registered_unit_goes_to_its_brand(
    client: httpx.AsyncClient, world: World
) -> None:
    (row,) = await issue_codes(client, world, 1)
    await ship(client, world, row["code"])
    r = await client.post("/v1/reports", data={"code": row["symbol"], "place": "eBay"})
    assert r.status_code == 201, r.text
    (report,) = await reports(client, world.brand_a)
    assert (report["code"], report["unit_state"], report["photo"]) == (
        row["code"],
        "shipped",
        None,
    )


@pytest.mark.parametrize(
    ("fields", "photo", "status", "slug"),
    [
        ({"place": "  "}, None, 422, "invalid-input"),
        ({"place": "shop", "region": "F1"}, None, 422, "invalid-input"),
        ({"place": "shop"}, b"<svg onload=alert(1)>", 422, "unreadable-image"),
        ({"place": "shop"}, JPEG + b"\x00" * 5_000_000, 413, "payload-too-large"),
    ],
)
async def test_a_bad_report_is_refused_and_stores_nothing(
    client: httpx.AsyncClient,
    world: World,
    dsn: str,
    fields: dict[str, str],
    photo: bytes | None,
    status: int,
    slug: str,
) -> None:
    files = {"photo": ("p", photo, "image/jpeg")} if photo is not None else None
    r = await client.post("/v1/reports", data={"code": "hello", **fields}, files=files)
    assert r.status_code == status, r.text
    assert r.json()["type"] == f"/problems/{slug}"
    page = await client.post("/t/report", data={"code": "hello", **fields}, files=files)
    assert page.status_code == status
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    conn = await asyncpg.connect(dsn)
    try:
        assert await conn.fetchval("select count(*) from customer_reports") == 0
    finally:
        await conn.close()


@pytest.fixture
async def limited(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings.model_copy(update={"customer_burst": 2}))
    async with app.router.lifespan_context(app) as state:
        app.state.lifespan_state = state
        async with make_client(app) as http:
            yield http


async def test_reports_spend_the_customer_budget(limited: httpx.AsyncClient) -> None:
    statuses = [
        (await limited.post("/v1/reports", data={"code": "x", "place": "y"})).status_code
        for _ in range(3)
    ]
    assert statuses == [201, 201, 429]
    page = await limited.post("/t/report", data={"code": "x", "place": "y"})
    assert page.status_code == 429
    assert "Too many checks" in page.text


async def test_a_gs1_code_wraps_between_its_parts(client: httpx.AsyncClient, world: World) -> None:
    (row,) = await issue_codes(client, world, 1, fmt="gs1")
    parsed = codes.parse(row["symbol"])
    text = (await client.get(f"/01/{parsed.gtin}/21/{parsed.serial}", follow_redirects=True)).text
    footer = re.search(r"<footer><p>(.*?)</p></footer>", text)
    assert footer is not None
    assert footer.group(1) == (
        f'Code: <span class="part">(01){parsed.gtin}</span><wbr>'
        f'<span class="part">(21){parsed.serial}</span>'
    )
    assert "footer .part{white-space:nowrap}" in text
