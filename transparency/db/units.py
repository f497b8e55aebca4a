"""Queries on units: bulk writes with COPY, and batch reads with a server-side cursor."""

from __future__ import annotations

import struct
from collections.abc import AsyncIterator, Sequence
from datetime import date
from uuid import UUID

from transparency.db.pool import Conn, is_citus, lift_timeouts

UnitRow = tuple[str, UUID, UUID, UUID, str | None, date | None, str]
COLUMNS = ("code", "brand_id", "product_id", "batch_id", "lot", "expiry", "state")
# A unit of a batch as its files list it: code, lot, expiry. A tuple, not a record: an
# export reads millions of them.
BatchUnit = tuple[str, str | None, date | None]


async def copy(conn: Conn, rows: Sequence[UnitRow]) -> None:
    """Write units with binary COPY (the caller owns the transaction, a job's: the request
    timeouts are lifted for it)."""
    await _before_copy(conn)
    await conn.copy_records_to_table("units", records=rows, columns=COLUMNS)


# Binary COPY (PostgreSQL's "format binary" file): the backend takes each uuid as its 16
# bytes and each text as its bytes, where text COPY splits each line on tabs and parses
# three uuids from 36 characters each: 2.6 against 3.2 us of the backend's CPU a unit
# row (psutil, a fresh table, 50,000-row chunks). The backend bounds an issuance's rate.
_BINARY_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack("!ii", 0, 0)  # no flags, no extension
_BINARY_TRAILER = struct.pack("!h", -1)
_ROW_HEAD = struct.Struct("!hi")  # the row's field count, then its first field's length
_FIELD_LENGTH = struct.Struct("!i")
_PG_EPOCH = date(2000, 1, 1)  # a binary date is a count of days from it


def row_tail(
    brand_id: UUID,
    product_id: UUID,
    batch_id: UUID,
    lot: str | None,
    expiry: date | None,
    state: str,
) -> bytes:
    """Every column after ``code`` of a units row, in binary COPY format (``copy_codes``).

    An issuance job's rows differ only in their code, so each row is its code's length and
    bytes followed by this tail.
    """
    fields = (
        brand_id.bytes,
        product_id.bytes,
        batch_id.bytes,
        None if lot is None else lot.encode(),
        None if expiry is None else _FIELD_LENGTH.pack((expiry - _PG_EPOCH).days),
        state.encode(),
    )
    return b"".join(
        _FIELD_LENGTH.pack(-1) if f is None else _FIELD_LENGTH.pack(len(f)) + f for f in fields
    )


async def copy_codes(conn: Conn, codes: bytes, tail: bytes) -> None:
    """Write units given as newline-ended codes, each completed by ``tail``
    (``row_tail``) into a row in COLUMNS order, with binary COPY (the caller owns
    the transaction; the request timeouts are lifted for it: a chunk may hold a million
    codes)."""
    await _before_copy(conn)
    await conn.copy_to_table("units", source=_rows(codes, tail), columns=COLUMNS, format="binary")


async def _before_copy(conn: Conn) -> None:
    await lift_timeouts(conn)
    if await is_citus(conn):
        await _one_connection_per_node(conn)


async def _one_connection_per_node(conn: Conn) -> None:
    """On Citus, a COPY into units (or a read of many shards) went over a connection per
    shard, and the same transaction then could not update its batch, a reference table
    ("parallel operation on a distributed table"): one connection per node instead, for
    the caller's transaction."""
    await conn.execute("set local citus.multi_shard_modify_mode = 'sequential'")


async def _rows(codes: bytes, tail: bytes, size: int = 1 << 16) -> AsyncIterator[bytes]:
    # An async iterable, not a file: asyncpg reads files in its thread pool, and every
    # thread that allocates there grows a malloc arena of its own in this process. Rows
    # are made a piece at a time, so only a piece of the rows is ever held.
    yield _BINARY_HEADER
    start = 0
    while start < len(codes):
        end = codes.find(b"\n", start + size) + 1 or len(codes)
        yield _binary_piece(codes[start:end], tail)
        start = end
    yield _BINARY_TRAILER


def _binary_piece(lines: bytes, tail: bytes) -> bytes:
    """Newline-ended codes as binary COPY rows."""
    width = lines.find(b"\n")
    rows = len(lines) // (width + 1)
    if (
        rows * (width + 1) == len(lines)
        and lines[width :: width + 1] == b"\n" * rows
        and lines.count(b"\n") == rows
    ):  # every code ``width`` bytes long, as a job's are: one C-level replace
        head = _ROW_HEAD.pack(len(COLUMNS), width)
        return head + lines[:-1].replace(b"\n", tail + head) + tail
    return b"".join(
        [_ROW_HEAD.pack(len(COLUMNS), len(code)) + code + tail for code in lines.split(b"\n")[:-1]]
    )


# Looking many codes up in the hash-partitioned units: ``code = any($1)`` cannot pick one
# partition per code, so every partition's index is probed with the whole list (8x the
# work); a LATERAL look-up per code is pruned to its partition at run time, and cannot be
# turned into a hash join over the whole table.
EXISTING = """
select u.code from unnest($1::text[]) as want(code)
cross join lateral (select code from units where units.code = want.code limit 1) as u
"""


# Citus pushes no LIMIT into a lateral subquery over a function's rows; it sends each node
# the list instead, and each shard looks up the codes it may hold.
EXISTING_CITUS = "select code from units where code = any($1::text[])"


async def existing(conn: Conn, codes: list[str]) -> set[str]:
    if await is_citus(conn):
        # one connection a node: the import's transaction updates its batch afterwards
        # (see _before_copy)
        await _one_connection_per_node(conn)
        rows = await conn.fetch(EXISTING_CITUS, codes)
    else:
        rows = await conn.fetch(EXISTING, codes)
    return {r["code"] for r in rows}


async def of_batch(
    conn: Conn, batch_id: UUID, *, size: int = 10_000
) -> AsyncIterator[list[BatchUnit]]:
    """Every unit of a batch, ``size`` at a time, in no particular order (call inside a
    transaction; ``pool.bulk_read`` gives one).

    One cursor over the whole batch, read at the database's pace: a keyset by code would
    need an index on (batch_id, code), and ``units_batch_idx`` holds batch_id alone, so
    each chunk would sort the whole batch again (quadratic in its size).
    """
    cursor = await conn.cursor("select code, lot, expiry from units where batch_id = $1", batch_id)
    while rows := await cursor.fetch(size):
        yield [(row["code"], row["lot"], row["expiry"]) for row in rows]


async def first_of_batch(conn: Conn, batch_id: UUID) -> str | None:
    """The code of one unit of a batch, any one (None for an empty batch)."""
    code: str | None = await conn.fetchval(
        "select code from units where batch_id = $1 limit 1", batch_id
    )
    return code
