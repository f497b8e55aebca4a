"""Bulk issuance: a job per batch, its progress, its files, its limits."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import uuid
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from tests.support.world import World, bearer
from transparency.db import units
from transparency.domain import codes
from transparency.domain.codes import CodeFormat
from transparency.runtime.settings import Settings


async def wait_done(client: httpx.AsyncClient, key: str, location: str) -> dict[str, Any]:
    for _ in range(300):
        batch: dict[str, Any] = (await client.get(location, headers=bearer(key))).json()
        if batch["status"] in ("done", "failed"):
            return batch
        await asyncio.sleep(0.05)
    raise AssertionError(f"batch still {batch['status']}")


async def issue(
    client: httpx.AsyncClient, world: World, count: int, fmt: str = "transparency", **extra: Any
) -> dict[str, Any]:
    r = await client.post(
        f"/v1/products/{world.product_a['id']}/code-batches",
        json={"count": count, "format": fmt, **extra},
        headers=bearer(world.brand_a),
    )
    assert r.status_code == 202, r.text
    assert r.headers["location"] == f"/v1/code-batches/{r.json()['id']}"
    return await wait_done(client, world.brand_a, r.headers["location"])


async def test_issue_and_download_csv_and_jsonl(
    client: httpx.AsyncClient, world: World, app: FastAPI
) -> None:
    batch = await issue(client, world, 2500, lot="L42", expiry="2027-12-31")
    assert batch["status"] == "done", batch
    assert batch["progress"] == batch["requested"] == 2500
    r = await client.get(batch["files"]["codes.csv"], headers=bearer(world.brand_a))
    assert r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert len(rows) == 2500
    assert len({row["code"] for row in rows}) == 2500
    key = app.state.lifespan_state["keyring"].get(batch["key_id"])
    for row in rows:
        parsed = codes.parse(row["code"])
        assert codes.verify_tag(parsed, key.hmac_secret)
        assert row["url"] == f"http://127.0.0.1:8000/t/{row['code']}"
        assert codes.parse(row["symbol"]).text == row["code"]
        assert (row["lot"], row["expiry"]) == ("L42", "2027-12-31")
    r = await client.get(batch["files"]["codes.jsonl"], headers=bearer(world.brand_a))
    lines = [json.loads(line) for line in r.text.splitlines()]
    assert {line["code"] for line in lines} == {row["code"] for row in rows}


async def test_offline_batch_symbols_verify_with_the_public_key(
    client: httpx.AsyncClient, world: World
) -> None:
    batch = await issue(client, world, 20, "offline")
    r = await client.get(batch["files"]["codes.csv"], headers=bearer(world.brand_a))
    rows = list(csv.DictReader(io.StringIO(r.text)))
    published = (await client.get("/v1/keys")).json()["keys"]
    import base64

    public = {
        k["id"]: base64.urlsafe_b64decode(k["public_key"] + "=" * (-len(k["public_key"]) % 4))
        for k in published
    }
    for row in rows:
        parsed = codes.parse(row["symbol"])
        assert parsed.format is CodeFormat.OFFLINE
        assert parsed.key_id is not None
        assert codes.verify_offline(parsed, public[parsed.key_id])
        assert codes.parse(row["human_readable"]).text == row["code"]


async def test_gs1_batch(client: httpx.AsyncClient, world: World) -> None:
    batch = await issue(client, world, 50, "gs1")
    r = await client.get(batch["files"]["codes.csv"], headers=bearer(world.brand_a))
    rows = list(csv.DictReader(io.StringIO(r.text)))
    for row in rows:
        parsed = codes.parse(row["code"])
        assert parsed.gtin == world.product_a["gtin"]
        assert parsed.serial is not None
        assert codes.is_issued_gs1_serial_shape(parsed.serial)
        assert row["url"].endswith(f"/01/{parsed.gtin}/21/{parsed.serial}")


async def test_codes_are_not_downloadable_before_the_batch_is_done(
    client: httpx.AsyncClient, world: World, dsn: str
) -> None:
    batch_id = uuid.uuid4()
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "insert into code_batches (id, brand_id, product_id, kind, format, requested,"
            " status, lease_until) values ($1, $2, $3, 'issue', 'transparency', 10, 'running',"
            " now() + interval '1 hour')",
            batch_id,
            uuid.UUID(world.brand_a_id),
            uuid.UUID(world.product_a["id"]),
        )
    finally:
        await conn.close()
    r = await client.get(f"/v1/code-batches/{batch_id}/codes.csv", headers=bearer(world.brand_a))
    assert r.status_code == 409
    assert r.json()["type"] == "/problems/not-ready"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"count": 0}, "count"),
        ({"count": 10_000_001}, "count"),
        ({"count": 5, "format": "barcode"}, "format"),
        ({"count": 5, "expiry": "31/12/2027"}, "expiry"),
        ({"count": 5, "colour": "red"}, "colour"),
    ],
)
async def test_bad_requests_name_the_field(
    client: httpx.AsyncClient, world: World, body: dict[str, Any], field: str
) -> None:
    r = await client.post(
        f"/v1/products/{world.product_a['id']}/code-batches",
        json=body,
        headers=bearer(world.brand_a),
    )
    assert r.status_code == 422
    assert [e["field"] for e in r.json()["errors"]] == [field]


async def test_another_brands_or_unknown_product_is_404(
    client: httpx.AsyncClient, world: World
) -> None:
    for product_id in (world.product_b["id"], str(uuid.uuid4())):
        r = await client.post(
            f"/v1/products/{product_id}/code-batches",
            json={"count": 5},
            headers=bearer(world.brand_a),
        )
        assert r.status_code == 404
    batch = await issue(client, world, 3)
    r = await client.get(f"/v1/code-batches/{batch['id']}", headers=bearer(world.brand_b))
    assert r.status_code == 404


async def test_the_per_brand_cap_on_running_jobs(
    client: httpx.AsyncClient, world: World, dsn: str
) -> None:
    conn = await asyncpg.connect(dsn)
    try:  # two jobs held by a live process elsewhere
        for _ in range(2):
            await conn.execute(
                "insert into code_batches (id, brand_id, product_id, kind, format, requested,"
                " status, lease_until) values ($1, $2, $3, 'issue', 'transparency', 10,"
                " 'running', now() + interval '1 hour')",
                uuid.uuid4(),
                uuid.UUID(world.brand_a_id),
                uuid.UUID(world.product_a["id"]),
            )
    finally:
        await conn.close()
    r = await client.post(
        f"/v1/products/{world.product_a['id']}/code-batches",
        json={"count": 5},
        headers=bearer(world.brand_a),
    )
    assert r.status_code == 429
    assert r.json()["type"] == "/problems/limit-exceeded"
    assert r.headers["retry-after"] == "10"


async def test_rotation_and_revocation_of_signing_keys(
    client: httpx.AsyncClient, world: World
) -> None:
    first = await issue(client, world, 1)
    rotated = await client.post("/v1/signing-keys/rotate", headers=bearer(world.brand_a))
    assert rotated.status_code == 201
    second = await issue(client, world, 1)
    assert second["key_id"] == rotated.json()["id"] != first["key_id"]
    listed = (await client.get("/v1/signing-keys", headers=bearer(world.brand_a))).json()["keys"]
    assert {k["id"]: k["status"] for k in listed} == {
        first["key_id"]: "retired",
        second["key_id"]: "active",
    }
    r = await client.post(
        f"/v1/signing-keys/{first['key_id']}/revoke",
        json={"reason": "leaked"},
        headers=bearer(world.brand_a),
    )
    assert r.json()["status"] == "revoked"
    public = {k["id"]: k["status"] for k in (await client.get("/v1/keys")).json()["keys"]}
    assert public[first["key_id"]] == "revoked"
    other = await client.post(
        f"/v1/signing-keys/{first['key_id']}/revoke",
        json={"reason": "x"},
        headers=bearer(world.brand_b),
    )
    assert other.status_code == 404


async def test_signing_keys_are_encrypted_at_rest(
    client: httpx.AsyncClient, world: World, app: FastAPI, dsn: str
) -> None:
    batch = await issue(client, world, 1)
    key = app.state.lifespan_state["keyring"].get(batch["key_id"])
    conn = await asyncpg.connect(dsn)
    try:
        row = await conn.fetchrow("select * from signing_keys where id = $1", batch["key_id"])
    finally:
        await conn.close()
    assert row is not None
    stored = b"".join(v for v in row.values() if isinstance(v, bytes))
    assert key.hmac_secret not in stored
    assert bytes(key.private_key) not in stored  # the Ed25519 seed
    assert key.hmac_secret.hex() not in repr(key)


async def test_a_gs1_batch_exports_as_epcis_commissioning(
    client: httpx.AsyncClient, world: World
) -> None:
    from transparency.domain import epcis

    batch = await issue(client, world, 25, "gs1", lot="L9", expiry="2028-02-29")
    r = await client.get(
        f"/v1/code-batches/{batch['id']}/epcis.jsonld",
        params={"company_prefix_length": 7},
        headers=bearer(world.brand_a),
    )
    assert r.status_code == 200, r.text
    document = r.json()
    assert document["type"] == "EPCISDocument"
    found, refused = epcis.parse_commissioning(document)
    assert refused == []
    rows = csv.DictReader(
        io.StringIO(
            (await client.get(batch["files"]["codes.csv"], headers=bearer(world.brand_a))).text
        )
    )
    assert sorted(f"(01){c.gtin}(21){c.serial}" for c in found) == sorted(r["code"] for r in rows)
    assert {(c.lot, str(c.expiry)) for c in found} == {("L9", "2028-02-29")}


async def test_epcis_export_needs_gs1_codes(client: httpx.AsyncClient, world: World) -> None:
    batch = await issue(client, world, 2)
    r = await client.get(
        f"/v1/code-batches/{batch['id']}/epcis.jsonld", headers=bearer(world.brand_a)
    )
    assert r.status_code == 409


async def test_labels_pdf_and_zip_read_back_to_the_exact_codes(
    client: httpx.AsyncClient, world: World
) -> None:
    import zipfile

    import numpy as np
    import pypdfium2

    import scanner

    for fmt in ("transparency", "offline", "gs1"):
        batch = await issue(client, world, 6, fmt)
        rows = list(
            csv.DictReader(
                io.StringIO(
                    (
                        await client.get(batch["files"]["codes.csv"], headers=bearer(world.brand_a))
                    ).text
                )
            )
        )
        expected = sorted(codes.parse(row["symbol"]).text for row in rows)
        r = await client.get(batch["files"]["labels.zip"], headers=bearer(world.brand_a))
        assert r.headers["content-type"] == "application/zip"
        with zipfile.ZipFile(io.BytesIO(r.content)) as archive:
            found = []
            for name in archive.namelist():
                results = scanner.decode(archive.read(name))
                assert len(results) == 1, name
                assert results[0].parsed is not None
                found.append(results[0].parsed.text)
        assert sorted(found) == expected

        r = await client.get(batch["files"]["labels.pdf"], headers=bearer(world.brand_a))
        assert r.headers["content-type"] == "application/pdf"
        page = pypdfium2.PdfDocument(r.content)[0]
        image = np.asarray(page.render(scale=300 / 72).to_pil().convert("L"))
        read = sorted(res.parsed.text for res in scanner.decode(image) if res.parsed)
        assert read == expected, fmt


async def test_a_label_layout_that_does_not_fit_is_refused(
    client: httpx.AsyncClient, world: World
) -> None:
    batch = await issue(client, world, 1)
    r = await client.get(
        f"/v1/code-batches/{batch['id']}/labels.pdf",
        params={"columns": 9, "label_width_mm": 60},
        headers=bearer(world.brand_a),
    )
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "layout"


async def test_the_database_refuses_batch_attributes_that_are_not_an_object(
    client: httpx.AsyncClient, world: World, dsn: str
) -> None:
    batch = await issue(client, world, 10, attributes={"made_in": "Lyon"})
    conn = await asyncpg.connect(dsn)
    try:
        for value in ("[]", '"Lyon"', "null"):
            with pytest.raises(asyncpg.CheckViolationError):
                await conn.execute(
                    "update code_batches set attributes = $1::jsonb where id = $2",
                    value,
                    uuid.UUID(batch["id"]),
                )
        stored = await conn.fetchval(
            "select attributes from code_batches where id = $1", uuid.UUID(batch["id"])
        )
    finally:
        await conn.close()
    assert json.loads(stored) == {"made_in": "Lyon"}


# ---------------------------------------------------------------- signing keys at scale


async def claim(client: httpx.AsyncClient, world: World, code: str) -> str:
    r = await client.post(
        "/v1/fulfilment/verifications",
        json={"scan": code, "gtin": world.product_a["gtin"], "shipment_id": "S1"},
        headers=bearer(world.station),
    )
    assert r.status_code == 200, r.text
    result: str = r.json()["result"]
    return result


async def rotate(client: httpx.AsyncClient, key: str) -> httpx.Response:
    return await client.post("/v1/signing-keys/rotate", headers=bearer(key))


async def test_new_codes_are_version_2_and_version_1_codes_still_pass(
    client: httpx.AsyncClient, world: World, app: FastAPI, dsn: str
) -> None:
    batch = await issue(client, world, 3)
    r = await client.get(batch["files"]["codes.csv"], headers=bearer(world.brand_a))
    rows = list(csv.DictReader(io.StringIO(r.text)))
    payloads = [codes.parse(row["code"]).payload for row in rows]
    assert {p.version for p in payloads if p is not None} == {2}
    # A label printed before version 2, of the same key: stored, claimed, passed.
    key = app.state.lifespan_state["keyring"].get(batch["key_id"])
    old = codes.sign_transparency(codes.Payload(batch["key_id"], 42, version=1), key.hmac_secret)
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction():
            tail = units.row_tail(
                uuid.UUID(world.brand_a_id), uuid.UUID(world.product_a["id"]),
                uuid.UUID(batch["id"]), None, None, "active",
            )  # fmt: skip
            await units.copy_codes(conn, f"{old}\n".encode(), tail)
    finally:
        await conn.close()
    assert await claim(client, world, old) == "pass"
    assert await claim(client, world, rows[0]["code"]) == "pass"


async def test_a_brand_makes_at_most_its_cap_of_signing_keys_a_day(
    client: httpx.AsyncClient, world: World, settings: Settings
) -> None:
    cap = settings.max_signing_keys_per_day
    await issue(client, world, 1)  # the brand's first key is one of them
    for _ in range(cap - 1):
        r = await rotate(client, world.brand_a)
        assert r.status_code == 201, r.text
    listed = await client.get("/v1/signing-keys", headers=bearer(world.brand_a))
    r = await rotate(client, world.brand_a)
    assert r.status_code == 429, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["type"] == "/problems/key-rotation-limit"
    assert 1 <= int(r.headers["retry-after"]) <= 86400
    after = await client.get("/v1/signing-keys", headers=bearer(world.brand_a))
    assert after.json() == listed.json()  # nothing changed
    # Revoking the active key and issuing is no way around the cap.
    (active,) = [k for k in listed.json()["keys"] if k["status"] == "active"]
    r = await client.post(
        f"/v1/signing-keys/{active['id']}/revoke",
        json={"reason": "leaked"},
        headers=bearer(world.brand_a),
    )
    assert r.status_code == 200, r.text
    r = await client.post(
        f"/v1/products/{world.product_a['id']}/code-batches",
        json={"count": 1},
        headers=bearer(world.brand_a),
    )
    assert r.status_code == 429, r.text
    assert r.json()["type"] == "/problems/key-rotation-limit"
    # Another brand's keys are its own count.
    assert (await rotate(client, world.brand_b)).status_code == 201
    assert (await client.get("/problems/key-rotation-limit")).status_code == 200


async def test_running_out_of_key_ids_is_a_503_problem_and_changes_nothing(
    client: httpx.AsyncClient, world: World, dsn: str
) -> None:
    conn = await asyncpg.connect(dsn)
    try:  # every id but the last is taken
        await conn.execute(
            "select setval(pg_get_serial_sequence('signing_keys', 'id'), $1)",
            codes.MAX_KEY_ID - 1,
        )
    finally:
        await conn.close()
    batch = await issue(client, world, 2)
    assert batch["key_id"] == codes.MAX_KEY_ID  # the last id signs codes that pass
    r = await client.get(batch["files"]["codes.csv"], headers=bearer(world.brand_a))
    code = next(csv.DictReader(io.StringIO(r.text)))["code"]
    assert codes.parse(code).key_id == codes.MAX_KEY_ID
    assert await claim(client, world, code) == "pass"
    listed = await client.get("/v1/signing-keys", headers=bearer(world.brand_a))
    refused = [
        await rotate(client, world.brand_a),
        await client.post(  # another brand's first batch needs its first key
            f"/v1/products/{world.product_b['id']}/code-batches",
            json={"count": 1},
            headers=bearer(world.brand_b),
        ),
    ]
    for r in refused:
        assert r.status_code == 503, r.text
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["type"] == "/problems/key-space-exhausted"
        assert "retry-after" in r.headers
    after = await client.get("/v1/signing-keys", headers=bearer(world.brand_a))
    assert after.json() == listed.json()
    assert (await client.get("/problems/key-space-exhausted")).status_code == 200


async def test_public_keys_come_a_page_at_a_time(client: httpx.AsyncClient, world: World) -> None:
    for key in (world.brand_a, world.brand_a, world.brand_a, world.brand_b, world.brand_b):
        assert (await rotate(client, key)).status_code == 201
    first = await client.get("/v1/keys")
    assert first.status_code == 200
    assert first.json()["next"] is None  # all of them fit the first page: the old shape
    assert "link" not in first.headers
    every = [k["id"] for k in first.json()["keys"]]
    assert len(every) == 5
    assert every == sorted(every)
    seen: list[int] = []
    url: str | None = "/v1/keys?limit=2"
    while url is not None:
        r = await client.get(url)
        assert r.status_code == 200, r.text
        page = r.json()
        assert 1 <= len(page["keys"]) <= 2
        seen += [k["id"] for k in page["keys"]]
        url = page["next"]
        if url is not None:
            assert r.headers["link"] == f'<{url}>; rel="next"'
    assert seen == every
    r = await client.get("/v1/keys", params={"brand_id": world.brand_b_id, "limit": 1})
    assert {k["brand_id"] for k in r.json()["keys"]} == {world.brand_b_id}
    following = await client.get(r.json()["next"])
    assert [k["brand_id"] for k in following.json()["keys"]] == [world.brand_b_id]
    for query in ({"limit": 0}, {"limit": 1001}, {"after": -1}, {"brand_id": "x"}):
        assert (await client.get("/v1/keys", params=query)).status_code == 422
