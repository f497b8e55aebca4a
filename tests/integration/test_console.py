"""The brand console through the ASGI client: sessions, CSRF, pages, downloads and actions.

What the browser shows is tested in tests/e2e/test_console_browser.py; which brand may see
what is in the authorisation matrix (test_auth_matrix.py).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from tests.support.asgi import make_client
from tests.support.console import csrf_in, issue, sign_in, signed_in
from tests.support.world import World, bearer
from transparency.api.app import create_app
from transparency.domain import codes
from transparency.runtime.settings import Settings


async def state_of(client: httpx.AsyncClient, world: World, code: str) -> str:
    r = await client.get(f"/v1/codes/{code}/history", headers=bearer(world.brand_a))
    assert r.status_code == 200, r.text
    state: str = r.json()["state"]
    return state


async def test_a_brand_key_opens_a_session_in_a_strict_httponly_cookie(
    client: httpx.AsyncClient, world: World
) -> None:
    r = await sign_in(client, world.brand_a)
    assert r.status_code == 303
    assert r.headers["location"] == "/console/dashboard"
    cookie = next(c for c in r.headers.get_list("set-cookie") if c.startswith("tp_console="))
    attributes = {part.strip().lower() for part in cookie.split(";")}
    assert {"httponly", "samesite=strict", "path=/console"} <= attributes
    assert "secure" not in attributes  # http://test: a Secure cookie would never come back
    page = await client.get("/console/products")
    assert page.status_code == 200
    assert world.product_a["name"] in page.text
    assert world.product_a["gtin"] in page.text
    assert "no-store" in page.headers["cache-control"]
    assert "script-src" not in page.headers["content-security-policy"]  # default 'none'


async def test_the_session_token_is_stored_only_as_its_hash(
    client: httpx.AsyncClient, world: World, dsn: str
) -> None:
    await signed_in(client, world.brand_a)
    token = client.cookies["tp_console"]
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("select * from console_sessions")
    finally:
        await conn.close()
    assert [r["token_sha256"] for r in rows] == [hashlib.sha256(token.encode()).digest()]
    assert token not in str([dict(r) for r in rows])


@pytest.fixture
async def behind_a_proxy(settings: Settings) -> AsyncIterator[FastAPI]:
    """The app with the test client's address (127.0.0.1) as its trusted proxy."""
    application = create_app(settings.model_copy(update={"trusted_proxies": "127.0.0.1"}))
    async with application.router.lifespan_context(application) as state:
        application.state.lifespan_state = state
        yield application


async def test_the_cookie_is_secure_when_the_browser_came_over_https(
    app: FastAPI, behind_a_proxy: FastAPI, world: World
) -> None:
    async def cookie(application: FastAPI, base: str, proto: str | None) -> str:
        async with make_client(application) as http:
            http.base_url = httpx.URL(base)
            if proto:
                http.headers["X-Forwarded-Proto"] = proto
            # The form's token by hand: a browser on https sends back the Secure cookie of
            # the form, which this client, talking plain http to the "proxy", would not.
            token = csrf_in((await http.get("/console/sign-in")).text)
            r = await http.post(
                "/console/sign-in",
                data={"key": world.brand_a, "csrf": token},
                headers={"Cookie": f"tp_console_signin={token}"},
            )
            assert r.status_code == 303, r.text
            return next(c for c in r.headers.get_list("set-cookie") if "tp_console=" in c)

    assert "secure" in (await cookie(app, "https://test", None)).lower()
    # X-Forwarded-Proto is believed from a trusted proxy only.
    assert "secure" in (await cookie(behind_a_proxy, "http://test", "https")).lower()
    assert "secure" not in (await cookie(app, "http://test", "https")).lower()


@pytest.mark.parametrize("who", ["admin", "station", "garbage"])
async def test_only_a_brand_key_signs_in(client: httpx.AsyncClient, world: World, who: str) -> None:
    key = "tpk_aaaaaaaaaaaaaaaa_" + "b" * 32 if who == "garbage" else getattr(world, who)
    r = await sign_in(client, key)
    assert r.status_code == (401 if who == "garbage" else 403)
    assert "tp_console" not in client.cookies
    assert "cannot open the console" in r.text


async def test_a_sign_in_without_its_csrf_token_is_refused(
    client: httpx.AsyncClient, world: World
) -> None:
    await client.get("/console/sign-in")  # the CSRF cookie, but not the form's token
    for data in ({"key": world.brand_a}, {"key": world.brand_a, "csrf": "forged"}):
        r = await client.post("/console/sign-in", data=data)
        assert r.status_code == 403
        assert "tp_console" not in client.cookies


async def test_a_form_without_the_sessions_csrf_token_changes_nothing(
    client: httpx.AsyncClient, world: World
) -> None:
    _, (code,) = await issue(client, world.brand_a, world.product_a["id"], 1)
    csrf = await signed_in(client, world.brand_a)
    action = {"code": code, "action": "revoke", "reason": "x", "confirm": "yes"}
    for token in (None, "forged", csrf[:-1]):
        data = action if token is None else {**action, "csrf": token}
        r = await client.post("/console/actions", data=data)
        assert r.status_code == 403, r.text
    r = await client.post("/console/sign-out", data={})
    assert r.status_code == 403
    assert await state_of(client, world, code) == "active"
    assert (await client.get("/console/products")).status_code == 200  # still signed in


async def test_signing_out_ends_the_session_on_the_server(
    client: httpx.AsyncClient, world: World
) -> None:
    csrf = await signed_in(client, world.brand_a)
    token = client.cookies["tp_console"]
    r = await client.post("/console/sign-out", data={"csrf": csrf})
    assert r.status_code == 303
    assert r.headers["location"] == "/console/sign-in"
    # The old cookie, replayed, opens nothing: the session is gone, not just forgotten here.
    client.cookies.set("tp_console", token, path="/console")
    r = await client.get("/console/products")
    assert r.status_code == 303
    assert r.headers["location"] == "/console/sign-in"


async def test_sessions_end_when_they_expire_or_their_key_is_revoked(
    client: httpx.AsyncClient, world: World, dsn: str
) -> None:
    await signed_in(client, world.brand_a)
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("update console_sessions set expires_at = now() - interval '1 second'")
    finally:
        await conn.close()
    assert (await client.get("/console/products")).status_code == 303

    await signed_in(client, world.brand_a)
    key_id = world.brand_a.split("_")[1]
    r = await client.delete(f"/v1/api-keys/{key_id}", headers=bearer(world.admin))
    assert r.status_code == 204
    assert (await client.get("/console/products")).status_code == 303


async def test_every_page_renders_in_english_and_french(
    client: httpx.AsyncClient, world: World
) -> None:
    batch, (code,) = await issue(client, world.brand_a, world.product_a["id"], 1)
    await signed_in(client, world.brand_a)
    pages = [
        *(
            f"/console/{page}"
            for page in ("dashboard", "products", "batches", "imports", "codes", "reports")
        ),
        f"/console/codes?code={code}",
        f"/console/actions?batch_id={batch}",
    ]
    for path in pages:
        english = await client.get(path, headers={"Accept-Language": "en-GB"})
        assert english.status_code == 200, (path, english.text)
        assert english.headers["content-language"] == "en"
        french = await client.get(path, headers={"Accept-Language": "fr-CA, en;q=0.5"})
        assert french.headers["content-language"] == "fr"
        assert "Se déconnecter" in french.text
    # The switch wins over the browser's languages, and is remembered.
    switched = await client.get("/console/products?lang=fr", headers={"Accept-Language": "en"})
    assert switched.headers["content-language"] == "fr"
    again = await client.get("/console/products", headers={"Accept-Language": "en"})
    assert again.headers["content-language"] == "fr"


async def test_the_dashboard_draws_what_the_service_counts(
    client: httpx.AsyncClient, world: World
) -> None:
    await issue(client, world.brand_a, world.product_a["id"], 3)
    await signed_in(client, world.brand_a)
    board = (
        await client.get(f"/v1/brands/{world.brand_a_id}/dashboard", headers=bearer(world.brand_a))
    ).json()
    issued = sum(day["issued"] for day in board["days"])
    page = await client.get("/console/dashboard")
    assert page.status_code == 200
    assert page.text.count("<svg") >= 4  # issued, passed, customer checks, suspicious ...
    assert f'Codes issued <span class="num">({issued})</span>' in page.text
    assert world.product_a["name"] in page.text  # the table by product names it


async def test_the_dashboard_charts_forged_scans_of_the_brands_codes(
    client: httpx.AsyncClient, world: World, app: FastAPI
) -> None:
    _, (code,) = await issue(client, world.brand_a, world.product_a["id"], 1)
    payload = codes.parse(code).payload
    assert payload is not None
    forged = codes.sign_transparency(payload, b"f" * 32)  # brand A's key id, a wrong tag
    for _ in range(2):
        verdict = (await client.get("/v1/verify", params={"code": forged})).json()
        assert verdict["reason"] == "forged"
    await app.state.lifespan_state["events"].flush()  # customers' scans are written behind
    await signed_in(client, world.brand_a)
    page = (await client.get("/console/dashboard")).text
    assert 'Forged attempts <span class="num">(2)</span>' in page
    assert ": 2</title>" in page  # the day's bar says how many
    by_product = page[page.index('id="by-product"') :]
    assert "Forged attempts" not in by_product  # they name no product of the brand
    client.cookies.clear()
    await signed_in(client, world.brand_b)
    assert "Forged attempts" not in (await client.get("/console/dashboard")).text


async def test_downloads_are_the_apis_files(client: httpx.AsyncClient, world: World) -> None:
    batch, _ = await issue(client, world.brand_a, world.product_a["id"], 2)
    await signed_in(client, world.brand_a)
    page = await client.get("/console/batches")
    assert f"/console/batches/{batch}/labels.pdf" in page.text
    api = await client.get(f"/v1/code-batches/{batch}/codes.csv", headers=bearer(world.brand_a))
    mine = await client.get(f"/console/batches/{batch}/codes.csv")
    assert mine.status_code == 200
    assert mine.content == api.content
    # The API's own handler: its label presets come along.
    pdf = await client.get(f"/console/batches/{batch}/labels.pdf?preset=roll-50x25")
    assert pdf.status_code == 200
    assert pdf.content.startswith(b"%PDF")
    bad = await client.get(f"/console/batches/{batch}/labels.pdf?preset=napkin")
    assert bad.status_code == 422  # refused by the API's validation, drawn as a page


async def test_an_import_shows_its_report_and_rejections(
    client: httpx.AsyncClient, world: World
) -> None:
    body = "serial\nA1\nA1\n" + "\n"
    r = await client.post(
        f"/v1/products/{world.product_a['id']}/serial-imports?mode=accept_valid",
        content=body,
        headers={**bearer(world.brand_a), "Content-Type": "text/csv"},
    )
    assert r.status_code == 202, r.text
    batch = r.json()["id"]
    for _ in range(400):
        got = await client.get(f"/v1/code-batches/{batch}", headers=bearer(world.brand_a))
        if got.json()["status"] in ("done", "failed"):
            break
        await asyncio.sleep(0.05)
    await signed_in(client, world.brand_a)
    page = await client.get("/console/imports")
    assert page.status_code == 200
    report = got.json()["report"]
    assert report["rejected"] >= 1, report
    assert f"/console/batches/{batch}/rejections.csv" in page.text
    rejections = await client.get(f"/console/batches/{batch}/rejections.csv")
    assert rejections.status_code == 200
    assert "duplicate_in_file" in rejections.text
    assert "duplicate_in_file" in page.text  # the report's first rejected rows


async def test_a_recall_asks_for_confirmation_then_goes_through_the_service(
    client: httpx.AsyncClient, world: World
) -> None:
    _, (code,) = await issue(client, world.brand_a, world.product_a["id"], 1)
    csrf = await signed_in(client, world.brand_a)
    form = {"csrf": csrf, "code": code, "action": "recall", "reason": "Return it to the shop"}
    confirm = await client.post("/console/actions", data=form)
    assert confirm.status_code == 200
    assert 'name="confirm" value="yes"' in confirm.text
    assert await state_of(client, world, code) == "active"  # nothing yet
    done = await client.post("/console/actions", data={**form, "confirm": "yes"})
    assert done.status_code == 200
    assert "1 unit" in done.text
    history = (await client.get(f"/v1/codes/{code}/history", headers=bearer(world.brand_a))).json()
    assert (history["state"], history["status_reason"]) == ("recalled", "Return it to the shop")


async def test_a_recall_gives_customers_its_instructions_apart_from_its_reason(
    client: httpx.AsyncClient, world: World
) -> None:
    _, (code, default) = await issue(client, world.brand_a, world.product_a["id"], 2)
    profile = {"recall_instructions": "Return it to any shop of ours."}
    r = await client.patch("/v1/brand/profile", json=profile, headers=bearer(world.brand_a))
    assert r.status_code == 200, r.text
    csrf = await signed_in(client, world.brand_a)
    form = {
        "csrf": csrf, "code": code, "action": "recall", "reason": "Contaminated batch",
        "instructions": "Do not use it; bring it to a pharmacy.",
    }  # fmt: skip
    confirm = await client.post("/console/actions", data=form)
    assert confirm.status_code == 200, confirm.text
    assert "<dd>Contaminated batch</dd>" in confirm.text
    assert "<dd>Do not use it; bring it to a pharmacy.</dd>" in confirm.text
    assert await state_of(client, world, code) == "active"  # nothing yet
    done = await client.post("/console/actions", data={**form, "confirm": "yes"})
    assert done.status_code == 200, done.text
    verdict = (await client.get("/v1/verify", params={"code": code})).json()
    assert verdict["notice"] == {
        "reason": "Contaminated batch",
        "instructions": "Do not use it; bring it to a pharmacy.",
    }
    # Left empty, the confirmation says what customers will read: the profile's default.
    mute = {**form, "code": default, "instructions": " "}
    confirm = await client.post("/console/actions", data=mute)
    assert "Return it to any shop of ours." in confirm.text
    assert 'name="instructions"' not in confirm.text  # the confirmation posts none
    await client.post("/console/actions", data={**mute, "confirm": "yes"})
    verdict = (await client.get("/v1/verify", params={"code": default})).json()
    assert verdict["notice"] == {
        "reason": "Contaminated batch",
        "instructions": "Return it to any shop of ours.",
    }


@pytest.mark.parametrize(
    ("form", "said"),
    [
        ({"action": "explode", "reason": "x"}, "choose one of"),
        ({"action": "recall", "reason": " "}, "give a reason"),
        ({"action": "recall", "reason": "x", "batch_id": "not-a-uuid"}, "not a batch id"),
        ({"action": "revoke", "reason": "x", "instructions": "y"}, "instructions go with a"),
        ({"action": "recall", "reason": "x" * 501}, "give a reason"),
        ({"action": "recall", "reason": "x", "instructions": "y" * 2001}, "give instructions"),
        ({"action": "recall", "reason": "x\x00"}, "give a reason"),
    ],
)
async def test_a_bad_action_form_is_refused_and_changes_nothing(
    client: httpx.AsyncClient, world: World, form: dict[str, str], said: str
) -> None:
    _, (code,) = await issue(client, world.brand_a, world.product_a["id"], 1)
    csrf = await signed_in(client, world.brand_a)
    data = {"csrf": csrf, "code": code, "confirm": "yes", **form}
    r = await client.post("/console/actions", data=data)
    assert r.status_code == 422, r.text
    assert said in r.text  # the page says what to fix
    assert await state_of(client, world, code) == "active"
    unconfirmed = {k: v for k, v in data.items() if k != "confirm"}
    assert (await client.post("/console/actions", data=unconfirmed)).status_code == 422
