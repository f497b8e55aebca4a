"""The page a phone opens: every verdict, both languages, escaping, Digital Link, 429."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import httpx
import pytest
from starlette.requests import Request

from tests.support.asgi import make_client
from tests.support.world import (
    World,
    bearer,
    issue_codes,
    make_product,
    sell_checked_only,
    ship,
)
from transparency.api.app import create_app
from transparency.api.pages import i18n
from transparency.api.pages import routes as pages
from transparency.domain import codes
from transparency.domain.errors import Unavailable
from transparency.runtime.settings import Settings

MAX_PAGE_BYTES = 30_000


def check_page(r: httpx.Response, status: int = 200, lang: str = "en") -> str:
    """What every page must be, whatever it says; returns its text."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "text/html; charset=utf-8"
    assert r.headers["cache-control"] == "no-store"
    assert r.headers["content-language"] == lang
    assert len(r.content) < MAX_PAGE_BYTES
    text = r.text
    assert text.startswith("<!doctype html>")
    assert f'<html lang="{lang}">' in text
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in text
    assert "<script" not in text.lower()
    assert not re.search(r'<link|src="(?!https?://)', text)  # nothing fetched but the photo
    return text


def verdict_of(text: str) -> str:
    match = re.search(r'<section class="verdict v-(\w+)"', text)
    assert match, text
    heading = re.search(r'<h1 id="verdict">([^<]+)</h1>', text)
    assert heading, text
    return f"{match.group(1)}: {heading.group(1)}"


async def customer_scans(dsn: str, code: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        count: int = await conn.fetchval(
            "select count(*) from scan_events where code = $1 and kind = 'customer'", code
        )
        return count
    finally:
        await conn.close()


@asynccontextmanager
async def client_with(settings: Settings, **update: int) -> AsyncIterator[httpx.AsyncClient]:
    """A client on another app over the same database, with limits a test can reach."""
    app = create_app(settings.model_copy(update=update))
    async with app.router.lifespan_context(app) as state:
        app.state.lifespan_state = state
        async with make_client(app) as http:
            yield http


@pytest.fixture
async def strict(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with client_with(settings, clone_max_scans=2) as http:
        yield http


@pytest.fixture
async def limited(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with client_with(settings, customer_burst=3, customer_rate_per_minute=1) as http:
        yield http


async def test_an_authentic_unit_with_its_facts(
    client: httpx.AsyncClient, world: World, dsn: str
) -> None:
    (row,) = await issue_codes(client, world, 1, lot="L5", expiry="2030-01-31")
    await ship(client, world, row["code"])
    text = check_page(await client.get(f"/t/{row['code']}"))
    assert verdict_of(text) == "authentic: Authentic"
    assert "<svg" in text
    assert 'aria-hidden="true"' in text
    product = world.product_a
    for fact in (product["name"], product["gtin"], "L5", "31 January 2030", row["code"]):
        assert fact in text
    assert "Why you should be careful" not in text
    assert await customer_scans(dsn, row["code"]) == 1  # recorded, as /v1/verify does


async def test_the_label_url_as_printed(client: httpx.AsyncClient, world: World) -> None:
    (row,) = await issue_codes(client, world, 1)
    await ship(client, world, row["code"])
    path = httpx.URL(row["symbol"]).path  # http://127.0.0.1:8000/t/<code>
    assert path == f"/t/{row['code']}"
    assert verdict_of(check_page(await client.get(path))) == "authentic: Authentic"


async def test_scanned_more_than_the_threshold_is_suspicious(
    client: httpx.AsyncClient, strict: httpx.AsyncClient, world: World
) -> None:
    (row,) = await issue_codes(client, world, 1)
    await ship(client, world, row["code"])
    verdicts = [verdict_of(check_page(await strict.get(f"/t/{row['code']}"))) for _ in range(3)]
    assert verdicts == ["authentic: Authentic"] * 2 + ["suspicious: Suspicious"]
    text = check_page(
        await strict.get(f"/t/{row['code']}", headers={"Accept-Language": "fr"}), lang="fr"
    )
    assert verdict_of(text) == "suspicious: Suspect"
    assert "Vérifié de nombreuses fois" in text
    assert "bien plus souvent qu&#39;un seul produit" in text


async def test_a_unit_scanned_before_it_shipped_is_authentic_by_default(
    client: httpx.AsyncClient, world: World
) -> None:
    (row,) = await issue_codes(client, world, 1)
    text = check_page(await client.get(f"/t/{row['code']}"))
    assert verdict_of(text) == "authentic: Authentic"
    assert "Why you should be careful" not in text
    assert "Report this product" not in text


async def test_a_checked_only_unit_scanned_before_it_shipped_is_suspicious(
    client: httpx.AsyncClient, world: World
) -> None:
    await sell_checked_only(client, world)
    (row,) = await issue_codes(client, world, 1)
    text = check_page(await client.get(f"/t/{row['code']}"))
    assert verdict_of(text) == "suspicious: Suspicious"
    assert "Not shipped by the brand" in text
    assert "has no record of shipping this one." in text
    assert "Report this product" in text


async def test_a_code_of_a_revoked_key_is_revoked(client: httpx.AsyncClient, world: World) -> None:
    (row,) = await issue_codes(client, world, 1)
    await ship(client, world, row["code"])
    payload = codes.parse(row["code"]).payload
    assert payload is not None
    r = await client.post(
        f"/v1/signing-keys/{payload.key_id}/revoke",
        json={"reason": "leak"},
        headers=bearer(world.brand_a),
    )
    assert r.status_code == 200, r.text
    text = check_page(await client.get(f"/t/{row['code']}"))
    assert verdict_of(text) == "revoked: Revoked"
    assert "The key the brand used to sign this code has been withdrawn." in text
    fr = check_page(
        await client.get(f"/t/{row['code']}", headers={"Accept-Language": "fr"}), lang="fr"
    )
    assert verdict_of(fr) == "revoked: Révoqué"


async def test_expired_and_recalled_are_explained(
    client: httpx.AsyncClient, world: World, dsn: str
) -> None:
    (row,) = await issue_codes(client, world, 1, expiry="2020-01-31")
    await ship(client, world, row["code"])
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("update units set state = 'recalled' where code = $1", row["code"])
    finally:
        await conn.close()
    text = check_page(await client.get(f"/t/{row['code']}"))
    assert "This product is past its expiry date." in text
    assert "The brand has recalled this product." in text
    assert "31 January 2020" in text


@pytest.mark.parametrize(
    ("path", "helps"),
    [
        ("/t/hello", "This is not a code we can read."),
        ("/t/TP" + "0" * 28, "This is not a code we can read."),
        ("/t/%3Cscript%3Ealert(1)%3Cscript%3E", "This is not a code we can read."),
        ("/01/09506000134352/21/NOT-OURS", "This code is not registered."),
        ("/verify/01/123/21/x", "This is not a code we can read."),  # /01/...: a 400
        ("/01/09506000134352", "This is not a code we can read."),  # a product, not a unit
    ],
)
async def test_junk_is_not_authentic_and_says_what_to_do(
    client: httpx.AsyncClient, path: str, helps: str
) -> None:
    text = check_page(await client.get(path, follow_redirects=True))  # /01/...: the resolver
    assert verdict_of(text) == "not_authentic: Not authentic"
    assert helps in text
    assert "<script>" not in text


async def test_a_forged_code_says_it_may_be_a_counterfeit(
    client: httpx.AsyncClient, world: World
) -> None:
    (row,) = await issue_codes(client, world, 1)
    payload = codes.parse(row["code"]).payload
    assert payload is not None
    forged = codes.sign_transparency(payload, b"f" * 32)
    text = check_page(
        await client.get(f"/t/{forged}", headers={"Accept-Language": "fr"}), lang="fr"
    )
    assert verdict_of(text) == "not_authentic: Non authentique"
    assert "Ce code n&#39;a pas été émis par la marque." in text


@pytest.mark.parametrize(
    ("header", "lang"),
    [
        (None, "en"),
        ("fr", "fr"),
        ("fr-CA,fr;q=0.9,en;q=0.8", "fr"),
        ("de, en;q=0.5, fr;q=0.6", "fr"),
        ("fr;q=0.1, en", "en"),
        ("en;q=0, fr;q=0", "en"),
        ("en;q=0, *", "fr"),
        ("de, *;q=0.1", "en"),
        ("es, it", "en"),
        ("FR-be;q=0.8, en-GB;q=0.8", "fr"),  # a tie goes to the range named first
        ("fr;q=2, en;q=0.3", "en"),  # q above 1 is malformed: that range is ignored
        (";;,fr;q=abc,,", "en"),
    ],
)
def test_accept_language_negotiation(header: str | None, lang: str) -> None:
    assert i18n.negotiate(header) == lang


def test_both_languages_say_everything() -> None:
    assert i18n.MESSAGES["en"].keys() == i18n.MESSAGES["fr"].keys()
    assert i18n.format_date("2030-08-01", "fr") == "1 août 2030"
    assert i18n.format_date("soon", "fr") == "soon"


async def test_english_or_french_by_accept_language(
    client: httpx.AsyncClient, world: World
) -> None:
    (row,) = await issue_codes(client, world, 1, lot="L9", expiry="2031-02-28")
    await ship(client, world, row["code"])
    headers = {"Accept-Language": "de-DE,fr-FR;q=0.9,en;q=0.5"}
    fr = check_page(await client.get(f"/t/{row['code']}", headers=headers), lang="fr")
    assert verdict_of(fr) == "authentic: Authentique"
    assert "Ce code a été émis par la marque pour ce produit." in fr
    assert "28 février 2031" in fr
    assert "Date de péremption" in fr
    en = check_page(await client.get(f"/t/{row['code']}", headers={"Accept-Language": "en-GB"}))
    assert verdict_of(en) == "authentic: Authentic"
    assert "28 February 2031" in en
    assert "Expiry date" in en


async def test_everything_the_brand_wrote_is_escaped(
    client: httpx.AsyncClient, world: World
) -> None:
    hostile = '<script>alert("x")</script>'
    world.product_a = await make_product(
        client,
        world.brand_a,
        name=hostile,
        attributes={"origin": "<b>France</b>", "<i>key</i>": "v"},
        image_url='https://img.example/a.png" onerror="alert(1)',
    )
    (row,) = await issue_codes(client, world, 1)
    await ship(client, world, row["code"])
    text = check_page(await client.get(f"/t/{row['code']}"))
    assert hostile not in text
    assert "<b>" not in text
    assert "<i>" not in text
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in text
    assert "&lt;b&gt;France&lt;/b&gt;" in text
    assert 'src="https://img.example/a.png&#34; onerror=&#34;alert(1)"' in text
    assert 'alt="Photo of &lt;script&gt;' in text


async def test_a_product_photo_has_alt_text_and_only_http(
    client: httpx.AsyncClient, world: World
) -> None:
    world.product_a = await make_product(
        client, world.brand_a, name="Tea", image_url="https://img.example/tea.png"
    )
    (row,) = await issue_codes(client, world, 1)
    await ship(client, world, row["code"])
    text = check_page(await client.get(f"/t/{row['code']}"))
    assert '<img src="https://img.example/tea.png" alt="Photo of Tea"' in text
    world.product_a = await make_product(
        client, world.brand_a, name="Tea", image_url="javascript:alert(1)"
    )
    (other,) = await issue_codes(client, world, 1)
    await ship(client, world, other["code"])
    assert "<img" not in check_page(await client.get(f"/t/{other['code']}"))


async def test_the_digital_link_of_a_gs1_unit(
    client: httpx.AsyncClient, world: World, dsn: str
) -> None:
    (row,) = await issue_codes(client, world, 1, fmt="gs1", lot="L7", expiry="2030-06-30")
    parsed = codes.parse(row["symbol"])
    assert parsed.gtin == world.product_a["gtin"]
    assert parsed.serial
    await ship(client, world, row["symbol"])
    base = f"/01/{parsed.gtin}"
    for path in (
        f"{base}/21/{parsed.serial}",
        f"{base}/10/L7/21/{parsed.serial}",
        f"{base}/21/{parsed.serial}?17=300630&linkType=gs1:verificationService",
    ):
        text = check_page(await client.get(path, follow_redirects=True))
        assert verdict_of(text) == "authentic: Authentic", path
        assert "L7" in text
        assert "30 June 2030" in text
    assert await customer_scans(dsn, row["code"]) == 3
    refused = check_page(await client.get(f"/verify{base}/21/{parsed.serial}?01=09506000134352"))
    assert verdict_of(refused) == "not_authentic: Not authentic"


async def test_a_rate_limited_phone_gets_a_page_to_wait(limited: httpx.AsyncClient) -> None:
    statuses = [(await limited.get("/t/x")).status_code for _ in range(3)]
    assert statuses == [200, 200, 200]
    r = await limited.get(
        "/01/09506000134352/21/A", headers={"Accept-Language": "fr"}, follow_redirects=True
    )
    text = check_page(r, status=429, lang="fr")
    seconds = r.headers["retry-after"]
    assert seconds.isdigit()
    assert "Trop de vérifications" in text
    assert f"Attendez {seconds} secondes" in text
    en = check_page(await limited.get("/t/x"), status=429)
    assert "Too many checks" in en
    json = await limited.get("/v1/verify", params={"code": "x"})  # one limit for both
    assert json.status_code == 429


async def test_resolutions_spend_the_customer_budget(limited: httpx.AsyncClient) -> None:
    """A resolution is a query made for an anonymous client: without a budget, one address
    could resolve as fast as it sends and take the pool from the stations."""
    path = "/01/09506000134352/21/A"
    json_client = {"Accept": "application/json"}
    statuses = [(await limited.get(path, headers=json_client)).status_code for _ in range(4)]
    assert statuses == [307, 307, 307, 429]
    r = await limited.get(path, headers=json_client)
    assert r.json()["type"] == "/problems/rate-limited"
    assert r.headers["retry-after"].isdigit()
    assert r.headers["access-control-allow-origin"] == "*"
    assert (await limited.get("/v1/verify", params={"code": "x"})).status_code == 429  # one budget
    compressed = await limited.get("/ARHKVAdpQg", headers=json_client)
    assert compressed.status_code == 429


async def test_pages_are_not_in_the_api_schema(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    assert not [p for p in paths if p.startswith(("/t/", "/01/"))]


def test_any_other_domain_error_is_a_page_with_its_problem_status() -> None:
    request = Request({"type": "http", "method": "GET", "path": "/t/x", "headers": []})
    r = pages.error_page(request, Unavailable("the database cannot be reached"))
    assert (r.status_code, r.headers["retry-after"]) == (503, "1")
    assert r.headers["cache-control"] == "no-store"
    assert b"We could not check this code" in bytes(r.body)
