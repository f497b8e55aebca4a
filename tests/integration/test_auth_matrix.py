"""Every role against every endpoint, including another brand's objects."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.support.world import World, bearer, new_gtin

Who = str  # "admin", "brand_a", "brand_b", "station", "nobody", "garbage"
Request = Callable[[World], tuple[str, str, dict[str, Any] | None]]

ENDPOINTS: dict[str, tuple[Request, dict[Who, int]]] = {
    "create brand": (
        lambda w: ("POST", "/v1/brands", {"name": uuid.uuid4().hex}),
        {"admin": 201, "brand_a": 403, "station": 403},
    ),
    "create site": (
        lambda w: ("POST", "/v1/sites", {"name": uuid.uuid4().hex}),
        {"admin": 201, "brand_a": 403, "station": 403},
    ),
    "create key": (
        lambda w: ("POST", "/v1/api-keys", {"role": "brand", "brand_id": w.brand_a_id}),
        {"admin": 201, "brand_a": 403, "station": 403},
    ),
    "revoke key": (
        lambda w: ("DELETE", f"/v1/api-keys/{w.brand_b.split('_')[1]}", None),
        {"admin": 204, "brand_a": 403, "station": 403},
    ),
    "assign GS1 prefix": (
        lambda w: (
            "POST",
            f"/v1/brands/{w.brand_b_id}/gs1-prefixes",
            {"prefix": f"99{uuid.uuid4().int % 10**10:010d}"},  # no world brand's
        ),
        {"admin": 201, "brand_a": 403, "brand_b": 403, "station": 403},
    ),
    "create product": (
        lambda w: ("POST", "/v1/products", {"gtin": new_gtin(), "name": "x"}),
        {"admin": 403, "brand_a": 201, "station": 403},
    ),
    "list products": (
        lambda w: ("GET", "/v1/products", None),
        {"admin": 403, "brand_a": 200, "station": 403},
    ),
    "get own product": (
        lambda w: ("GET", f"/v1/products/{w.product_a['id']}", None),
        {"admin": 403, "brand_a": 200, "brand_b": 404, "station": 403},
    ),
    "metrics": (
        lambda w: ("GET", "/metrics", None),
        {"admin": 200, "brand_a": 403, "station": 403},
    ),
    "healthz": (
        lambda w: ("GET", "/healthz", None),
        {"admin": 200, "brand_a": 200, "station": 200, "nobody": 200, "garbage": 200},
    ),
    "readyz": (
        lambda w: ("GET", "/readyz", None),
        {"admin": 200, "brand_a": 200, "station": 200, "nobody": 200, "garbage": 200},
    ),
    "who am I": (
        lambda w: ("GET", "/v1/me", None),
        {"admin": 200, "brand_a": 200, "brand_b": 200, "station": 200},
    ),
    "forged scans of own codes": (
        lambda w: ("GET", "/v1/forged-scans", None),
        {"admin": 403, "brand_a": 200, "brand_b": 200, "station": 403},
    ),
    "dashboard": (
        lambda w: ("GET", f"/v1/brands/{w.brand_a_id}/dashboard", None),
        {"admin": 200, "brand_a": 200, "brand_b": 404, "station": 403},
    ),
    "update own product": (
        lambda w: ("PATCH", f"/v1/products/{w.product_a['id']}", {"channel": "any"}),
        {"admin": 403, "brand_a": 200, "brand_b": 404, "station": 403},
    ),
    "own brand profile": (
        lambda w: ("GET", "/v1/brand/profile", None),
        {"admin": 403, "brand_a": 200, "brand_b": 200, "station": 403},
    ),
    "update own brand profile": (
        lambda w: ("PATCH", "/v1/brand/profile", {"support": "help@example.com"}),
        {"admin": 403, "brand_a": 200, "brand_b": 200, "station": 403},
    ),
    "a brand's profile": (
        lambda w: ("GET", f"/v1/brands/{w.brand_a_id}/profile", None),
        {"admin": 200, "brand_a": 200, "brand_b": 404, "station": 403},
    ),
    "update a brand's profile": (
        lambda w: ("PATCH", f"/v1/brands/{w.brand_a_id}/profile", {"display_name": "A"}),
        {"admin": 200, "brand_a": 200, "brand_b": 404, "station": 403},
    ),
    "customers' reports": (
        lambda w: ("GET", "/v1/reports", None),
        {"admin": 200, "brand_a": 200, "brand_b": 200, "station": 403},
    ),
    "passes of own site": (
        lambda w: ("GET", "/v1/fulfilment/passes?shipment_prefix=lt-run-", None),
        {"admin": 403, "brand_a": 403, "brand_b": 403, "station": 200},
    ),
    "pass counts of own site": (
        lambda w: ("GET", "/v1/fulfilment/passes/summary?shipment_prefix=lt-run-", None),
        {"admin": 403, "brand_a": 403, "brand_b": 403, "station": 200},
    ),
    "a report's photo": (
        lambda w: ("GET", f"/v1/reports/{uuid.uuid4()}/photo", None),
        {"admin": 404, "brand_a": 404, "station": 403},
    ),
}

CASES = [
    (name, who, expected.get(who, 401 if who in ("nobody", "garbage") else None))
    for name, (_, expected) in ENDPOINTS.items()
    for who in ("admin", "brand_a", "brand_b", "station", "nobody", "garbage")
]
CASES = [c for c in CASES if c[2] is not None]


def _headers(world: World, who: Who) -> dict[str, str]:
    if who == "nobody":
        return {}
    if who == "garbage":
        return bearer("tpk_aaaaaaaaaaaaaaaa_" + "b" * 32)
    return bearer(getattr(world, who))


@pytest.mark.parametrize(("endpoint", "who", "status"), CASES, ids=lambda v: str(v))
async def test_matrix(
    client: httpx.AsyncClient, world: World, endpoint: str, who: Who, status: int
) -> None:
    method, path, body = ENDPOINTS[endpoint][0](world)
    r = await client.request(method, path, json=body, headers=_headers(world, who))
    assert r.status_code == status, r.text
    if status >= 400:
        assert r.headers["content-type"] == "application/problem+json"
    if status == 401:
        assert r.headers["www-authenticate"] == "Bearer"


async def test_another_brands_product_looks_like_a_missing_one(
    client: httpx.AsyncClient, world: World
) -> None:
    unknown = str(uuid.uuid4())
    theirs = await client.get(
        f"/v1/products/{world.product_b['id']}", headers=bearer(world.brand_a)
    )
    missing = await client.get(f"/v1/products/{unknown}", headers=bearer(world.brand_a))
    assert theirs.status_code == missing.status_code == 404

    def same_shape(r: httpx.Response, asked: str) -> dict[str, Any]:
        body: dict[str, Any] = r.json()
        body.pop("request_id")
        body["detail"] = body["detail"].replace(asked, "ID")
        return body

    assert same_shape(theirs, world.product_b["id"]) == same_shape(missing, unknown)


async def test_lists_show_only_the_callers_brand(client: httpx.AsyncClient, world: World) -> None:
    r = await client.get("/v1/products", headers=bearer(world.brand_a))
    ids = {p["id"] for p in r.json()["items"]}
    assert ids == {world.product_a["id"]}


async def test_a_revoked_key_is_refused_at_once(client: httpx.AsyncClient, world: World) -> None:
    assert (await client.get("/v1/products", headers=bearer(world.brand_a))).status_code == 200
    key_id = world.brand_a.split("_")[1]
    r = await client.delete(f"/v1/api-keys/{key_id}", headers=bearer(world.admin))
    assert r.status_code == 204
    r = await client.get("/v1/products", headers=bearer(world.brand_a))
    assert r.status_code == 401
    assert r.json()["type"] == "/problems/unauthenticated"


async def test_a_right_id_with_a_wrong_secret_is_refused(
    client: httpx.AsyncClient, world: World
) -> None:
    key_id = world.brand_a.split("_")[1]
    forged = f"tpk_{key_id}_{'a' * 32}"
    r = await client.get("/v1/products", headers=bearer(forged))
    assert r.status_code == 401


@pytest.mark.parametrize(
    "header", ["Basic abc", "Bearer", "Bearer not-a-key", "bearer tpk_x_y", "Token tpk"]
)
async def test_malformed_authorization_is_401(
    client: httpx.AsyncClient, world: World, header: str
) -> None:
    r = await client.get("/v1/products", headers={"Authorization": header})
    assert r.status_code == 401


async def test_revoking_an_unknown_key_is_404(client: httpx.AsyncClient, world: World) -> None:
    r = await client.delete("/v1/api-keys/nosuchkey", headers=bearer(world.admin))
    assert r.status_code == 404


@pytest.mark.parametrize(
    ("payload", "ok"),
    [
        ({"role": "admin"}, True),
        ({"role": "admin", "brand_id": "BRAND"}, False),
        ({"role": "brand"}, False),
        ({"role": "brand", "site_id": "SITE"}, False),
        ({"role": "station", "site_id": "SITE"}, True),
        ({"role": "station", "brand_id": "BRAND", "site_id": "SITE"}, False),
    ],
)
async def test_key_scope_must_fit_its_role(
    client: httpx.AsyncClient, world: World, payload: dict[str, str], ok: bool
) -> None:
    filled = {
        k: {"BRAND": world.brand_a_id, "SITE": world.site_id}.get(v, v) for k, v in payload.items()
    }
    r = await client.post("/v1/api-keys", json=filled, headers=bearer(world.admin))
    assert r.status_code == (201 if ok else 422), r.text


async def test_a_key_for_an_unknown_brand_is_404(client: httpx.AsyncClient, world: World) -> None:
    body = {"role": "brand", "brand_id": str(uuid.uuid4())}
    r = await client.post("/v1/api-keys", json=body, headers=bearer(world.admin))
    assert r.status_code == 404


async def test_new_keys_work_and_secrets_are_stored_hashed(
    client: httpx.AsyncClient, world: World, dsn: str
) -> None:
    import asyncpg

    r = await client.post(
        "/v1/api-keys",
        json={"role": "brand", "brand_id": world.brand_a_id},
        headers=bearer(world.admin),
    )
    key = r.json()["key"]
    assert (await client.get("/v1/products", headers=bearer(key))).status_code == 200
    conn = await asyncpg.connect(dsn)
    try:
        dump = await conn.fetchval("select string_agg(t::text, ' ') from api_keys t")
    finally:
        await conn.close()
    assert key.split("_")[2] not in dump


async def test_a_revocation_reaches_every_process(
    client: httpx.AsyncClient, world: World, settings: Any
) -> None:
    import asyncio

    from tests.support.asgi import make_client
    from transparency.api.app import create_app

    other = create_app(settings)  # a second API process on the same database
    async with other.router.lifespan_context(other) as state:
        other.state.lifespan_state = state
        async with make_client(other) as elsewhere:
            assert (
                await elsewhere.get("/v1/products", headers=bearer(world.brand_a))
            ).status_code == 200
            key_id = world.brand_a.split("_")[1]
            await client.delete(f"/v1/api-keys/{key_id}", headers=bearer(world.admin))
            for _ in range(50):  # NOTIFY arrives within milliseconds
                r = await elsewhere.get("/v1/products", headers=bearer(world.brand_a))
                if r.status_code == 401:
                    break
                await asyncio.sleep(0.02)
            assert r.status_code == 401


# The brand console: a session of brand A, one of brand B, and none, on brand A's objects.
# Another brand's object is as missing as one that never was (404); no session is sent to
# the sign-in page (303). Forms carry the CSRF token of the session that posts them.
CONSOLE: dict[str, tuple[str, str, dict[str, str] | None, dict[Who, int]]] = {
    "console products": ("GET", "/console/products", None, {"brand_a": 200, "brand_b": 200}),
    "console batches": ("GET", "/console/batches", None, {"brand_a": 200, "brand_b": 200}),
    "console imports": ("GET", "/console/imports", None, {"brand_a": 200, "brand_b": 200}),
    "console dashboard": ("GET", "/console/dashboard", None, {"brand_a": 200, "brand_b": 200}),
    "console reports": ("GET", "/console/reports", None, {"brand_a": 200, "brand_b": 200}),
    "console report photo": (
        "GET", "/console/reports/{report}/photo", None, {"brand_a": 200, "brand_b": 404}
    ),
    "console codes.csv": (
        "GET", "/console/batches/{batch}/codes.csv", None, {"brand_a": 200, "brand_b": 404}
    ),
    "console labels.zip": (
        "GET", "/console/batches/{batch}/labels.zip", None, {"brand_a": 200, "brand_b": 404}
    ),
    "console code history": (
        "GET", "/console/codes?code={code}", None, {"brand_a": 200, "brand_b": 404}
    ),
    "console batch action form": (
        "GET", "/console/actions?batch_id={batch}", None, {"brand_a": 200, "brand_b": 404}
    ),
    "console confirm a batch action": (
        "POST", "/console/actions", {"batch_id": "{batch}", "action": "revoke", "reason": "r"},
        {"brand_a": 200, "brand_b": 404},
    ),
    "console recall a code": (
        "POST", "/console/actions",
        {"code": "{code}", "action": "recall", "reason": "r", "confirm": "yes"},
        {"brand_a": 200, "brand_b": 404},
    ),
    "console revoke a batch": (
        "POST", "/console/actions",
        {"batch_id": "{batch}", "action": "revoke", "reason": "r", "confirm": "yes"},
        {"brand_a": 200, "brand_b": 404},
    ),
    "console sign out": ("POST", "/console/sign-out", {}, {"brand_a": 303, "brand_b": 303}),
}  # fmt: skip

CONSOLE_CASES = [
    (name, who, expected.get(who, 303))
    for name, (_, _, _, expected) in CONSOLE.items()
    for who in ("brand_a", "brand_b", "nobody")
]


@pytest.mark.parametrize(("endpoint", "who", "status"), CONSOLE_CASES, ids=lambda v: str(v))
async def test_console_matrix(
    client: httpx.AsyncClient, world: World, endpoint: str, who: Who, status: int
) -> None:
    from tests.support.console import issue, signed_in

    batch, (code, _) = await issue(client, world.brand_a, world.product_a["id"], 2)
    csrf = await signed_in(client, getattr(world, who)) if who != "nobody" else ""
    method, path, form, _ = CONSOLE[endpoint]
    report = ""
    if "{report}" in path:  # a customer's report, with a photo, on brand A's code
        sent = await client.post(
            "/v1/reports",
            data={"code": code, "place": "a shop"},
            files={"photo": ("p.jpg", b"\xff\xd8\xff\xe0" + bytes(64), "image/jpeg")},
        )
        assert sent.status_code == 201, sent.text
        report = sent.json()["id"]
    path = path.format(batch=batch, code=code, report=report)
    data = None if form is None else {"csrf": csrf, **form}
    if data is not None:
        data = {k: v.format(batch=batch, code=code) for k, v in data.items()}
    r = await client.request(method, path, data=data)
    assert r.status_code == status, r.text
    if status == 303 and who == "nobody":
        assert r.headers["location"] == "/console/sign-in"
    if who != "brand_a":  # brand A's units are as they were
        history = await client.get(f"/v1/codes/{code}/history", headers=bearer(world.brand_a))
        assert history.json()["state"] == "active"


async def test_console_lists_show_only_the_sessions_brand(
    client: httpx.AsyncClient, world: World
) -> None:
    from tests.support.console import issue, signed_in

    batch_a, _ = await issue(client, world.brand_a, world.product_a["id"], 1)
    batch_b, _ = await issue(client, world.brand_b, world.product_b["id"], 1)
    await signed_in(client, world.brand_a)
    products = (await client.get("/console/products")).text
    batches = (await client.get("/console/batches")).text
    assert world.product_a["gtin"] in products
    assert world.product_b["gtin"] not in products
    assert batch_a in batches
    assert batch_b not in batches
