"""Photos sent to the API: decoded in a worker process, each code checked."""

from __future__ import annotations

import io
import struct
import zlib

import httpx
import qrcode

from tests.support.world import World, bearer, issue_codes


def qr_png(text: str) -> bytes:
    image = qrcode.make(text)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def bomb_png(width: int = 20_000, height: int = 20_000) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(b"\0" * 1000)) + chunk(b"IEND", b""))  # fmt: skip


async def test_a_customer_photo(client: httpx.AsyncClient, world: World) -> None:
    (row,) = await issue_codes(client, world, 1)
    r = await client.post("/v1/scans", files={"image": ("label.png", qr_png(row["symbol"]))})
    assert r.status_code == 200, r.text
    (code,) = r.json()["codes"]
    assert code["text"] == row["symbol"]
    assert code["verification"]["code"] == row["code"]
    assert code["verification"]["verdict"] in ("authentic", "suspicious")


async def test_a_station_photo_claims(client: httpx.AsyncClient, world: World) -> None:
    (row,) = await issue_codes(client, world, 1)
    form = {"gtin": world.product_a["gtin"], "shipment_id": "S-photo"}
    r = await client.post(
        "/v1/scans",
        files={"image": ("label.png", qr_png(row["symbol"]))},
        data=form,
        headers=bearer(world.station),
    )
    assert r.status_code == 200, r.text
    assert r.json()["codes"][0]["verification"]["result"] == "pass"
    r = await client.post(
        "/v1/scans",
        files={"image": ("label.png", qr_png(row["symbol"]))},
        data={**form, "shipment_id": "S-other"},
        headers=bearer(world.station),
    )
    assert r.json()["codes"][0]["verification"]["reason"] == "already_shipped"


async def test_bad_images_get_their_own_problems(client: httpx.AsyncClient) -> None:
    r = await client.post("/v1/scans", files={"image": ("x.png", b"not an image")})
    assert (r.status_code, r.json()["type"]) == (422, "/problems/unreadable-image")
    r = await client.post("/v1/scans", files={"image": ("bomb.png", bomb_png())})
    assert (r.status_code, r.json()["type"]) == (413, "/problems/image-too-large")
    blank = b""
    r = await client.post("/v1/scans", files={"image": ("x.png", blank)})
    assert r.status_code == 422


async def test_a_photo_with_no_code_is_an_empty_list(client: httpx.AsyncClient) -> None:
    import numpy as np
    from PIL import Image

    out = io.BytesIO()
    Image.fromarray(np.full((200, 300), 200, dtype=np.uint8)).save(out, format="PNG")
    r = await client.post("/v1/scans", files={"image": ("plain.png", out.getvalue())})
    assert r.json() == {"codes": []}


async def test_a_brand_key_may_not_post_station_photos(
    client: httpx.AsyncClient, world: World
) -> None:
    r = await client.post(
        "/v1/scans", files={"image": ("x.png", qr_png("x"))}, headers=bearer(world.brand_a)
    )
    assert r.status_code == 403
