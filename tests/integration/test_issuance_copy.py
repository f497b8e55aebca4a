"""Issuance writes its units with binary COPY: the stream is PostgreSQL's binary file
format, whole rows in every piece, and what PostgreSQL stores is what the text and
record paths store."""

from __future__ import annotations

import asyncio
import struct
import uuid
from datetime import date
from typing import Any

import asyncpg
import httpx
from hypothesis import given
from hypothesis import strategies as st

from tests.support.console import issue
from tests.support.world import World
from transparency.db import units

SIGNATURE = b"PGCOPY\n\xff\r\n\x00"


def read_binary_copy(pieces: list[bytes]) -> list[list[bytes | None]]:
    """A reference reader of PostgreSQL's binary COPY format: each row's raw fields."""
    header, *body, trailer = pieces
    assert header == SIGNATURE + struct.pack("!ii", 0, 0)
    assert trailer == struct.pack("!h", -1)
    rows: list[list[bytes | None]] = []
    for piece in body:  # each piece whole rows: parsed on its own
        at = 0
        while at < len(piece):
            (count,) = struct.unpack_from("!h", piece, at)
            at += 2
            fields: list[bytes | None] = []
            for _ in range(count):
                (length,) = struct.unpack_from("!i", piece, at)
                at += 4
                if length < 0:
                    fields.append(None)
                else:
                    fields.append(piece[at : at + length])
                    at += length
            rows.append(fields)
        assert at == len(piece)
    return rows


def collect(codes: bytes, tail: bytes, size: int) -> list[bytes]:
    async def pieces() -> list[bytes]:
        return [piece async for piece in units._rows(codes, tail, size)]

    return asyncio.run(pieces())


@given(
    st.one_of(
        st.lists(st.text("0123456789ABCDEFGHJKMNPQRSTVWXYZ-()", max_size=40), max_size=60),
        st.integers(0, 42).flatmap(  # one width, as a job's codes always have
            lambda width: st.lists(
                st.text("0123456789ABCDEFGHJKMNPQRSTVWXYZ", min_size=width, max_size=width),
                max_size=60,
            )
        ),
    ),
    st.integers(min_value=1, max_value=300),
    st.one_of(st.none(), st.text(max_size=12)),
    st.one_of(st.none(), st.dates()),
)
def test_binary_rows_are_each_code_and_the_tail_whatever_the_piece_size(
    chosen: list[str], size: int, lot: str | None, expiry: date | None
) -> None:
    ids = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    tail = units.row_tail(*ids, lot, expiry, "active")
    lines = "".join(code + "\n" for code in chosen).encode()
    rows = read_binary_copy(collect(lines, tail, size))
    days = None if expiry is None else struct.pack("!i", (expiry - date(2000, 1, 1)).days)
    fields = [i.bytes for i in ids] + [None if lot is None else lot.encode(), days, b"active"]
    assert rows == [[code.encode(), *fields] for code in chosen]


async def test_binary_copy_stores_what_record_copy_stores(
    client: httpx.AsyncClient, world: World, dsn: str
) -> None:
    batch_id, _ = await issue(client, world.brand_a, world.product_a["id"], 1)
    ids = uuid.UUID(world.brand_a_id), uuid.UUID(world.product_a["id"]), uuid.UUID(batch_id)
    lot, expiry = "L\t1\\é\n", date(2031, 2, 28)  # what text COPY would have to escape
    fixed = [f"TEST{n:026d}" for n in range(1000)]  # one width: the fast path
    mixed = ["TESTMIXED", "TESTMIXED-LONGER", "TESTM"]
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction():
            tail = units.row_tail(*ids, lot, expiry, "active")
            for chosen in (fixed, mixed):
                await units.copy_codes(conn, "".join(c + "\n" for c in chosen).encode(), tail)
            await units.copy(conn, [("TESTRECORD", *ids, lot, expiry, "active")])
        stored = await conn.fetch(
            "select code, brand_id, product_id, batch_id, lot, expiry, state::text as state"
            " from units where code like 'TEST%' order by code"
        )
    finally:
        await conn.close()
    expected: list[tuple[Any, ...]] = sorted(
        (code, *ids, lot, expiry, "active") for code in [*fixed, *mixed, "TESTRECORD"]
    )
    assert [tuple(row) for row in stored] == expected
