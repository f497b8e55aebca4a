"""Migrations: from empty, twice, concurrently, and refusing an edited history."""

from __future__ import annotations

import asyncio
from uuid import uuid4

import asyncpg
import pytest

from transparency.db import imports
from transparency.db import migrate as m

TABLES = {
    "brands", "products", "sites", "stations", "api_keys", "signing_keys", "code_batches",
    "units", "scan_events", "audit_log", "schema_migrations", "import_uploads",
    "import_rejection_pages", "fulfilment_replies", "brand_gs1_prefixes", "customer_reports",
    "console_sessions", "resolver_links", "epcis_captures", "epcis_events", "epcis_event_epcs",
}  # fmt: skip


async def _tables(conn: asyncpg.Connection) -> set[str]:
    rows = await conn.fetch(
        "select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace"
        " where n.nspname = 'public' and c.relkind in ('r', 'p') and not c.relispartition"
    )
    return {r["relname"] for r in rows}


async def test_from_empty_then_again(empty_dsn: str) -> None:
    conn = await asyncpg.connect(empty_dsn)
    try:
        first = await m.migrate(conn)
        second = await m.migrate(conn)
        assert first == [x.version for x in m.available()]
        assert second == []
        assert await _tables(conn) == TABLES
        assert await m.pending(conn) == []
    finally:
        await conn.close()


async def test_concurrent_migrations_apply_each_file_once(empty_dsn: str) -> None:
    conns = [await asyncpg.connect(empty_dsn) for _ in range(5)]
    try:
        results = await asyncio.gather(*(m.migrate(c) for c in conns))
        applied = [v for r in results for v in r]
        assert sorted(applied) == sorted(x.version for x in m.available())
        count = await conns[0].fetchval("select count(*) from schema_migrations")
        assert count == len(m.available())
    finally:
        for c in conns:
            await c.close()


async def test_an_edited_migration_is_refused(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "update schema_migrations set checksum = 'x' where version = '0001_schema'"
        )
        with pytest.raises(m.MigrationError, match="changed after it was applied"):
            await m.migrate(conn)
    finally:
        await conn.close()


async def test_a_database_ahead_of_the_code_is_refused(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("insert into schema_migrations values ('9999_future', 'x')")
        with pytest.raises(m.MigrationError, match="does not know"):
            await m.pending(conn)
    finally:
        await conn.close()


async def test_a_failing_migration_leaves_nothing_half_applied(empty_dsn: str) -> None:
    conn = await asyncpg.connect(empty_dsn)
    try:
        broken = m.Migration("0001_schema", "create table half (id int); select 1/0;")
        await conn.execute(m._CREATE_TABLE)
        with pytest.raises(asyncpg.DivisionByZeroError):
            async with conn.transaction():
                await conn.execute(broken.sql)
        assert await conn.fetchval("select to_regclass('half')") is None
        assert await m.migrate(conn) == [x.version for x in m.available()]
    finally:
        await conn.close()


async def test_units_and_scan_events_are_hash_partitioned_on_code(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "select c.relname, pg_get_partkeydef(c.oid) as key from pg_class c"
            " where c.relname in ('units', 'scan_events')"
        )
    finally:
        await conn.close()
    assert {r["relname"]: r["key"] for r in rows} == {
        "units": "HASH (code)",
        "scan_events": "HASH (code)",
    }


async def test_scan_events_are_append_only(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "insert into scan_events (code, id, kind, result) values ('X', gen_random_uuid(),"
            " 'customer', 'authentic')"
        )
        with pytest.raises(asyncpg.RaiseError, match="append-only"):
            await conn.execute("update scan_events set result = 'x'")
        with pytest.raises(asyncpg.RaiseError, match="append-only"):
            await conn.execute("delete from scan_events")
    finally:
        await conn.close()


async def test_unit_states_survive_the_enum_without_issued(empty_dsn: str) -> None:
    """0008 moves units onto a unit_state without 'issued': every partition's units keep
    their state, and an 'issued' unit (never written, but possible) becomes active."""
    old_states = ["issued", "active", "shipped", "returned", "revoked", "recalled",
                  "destroyed", "stolen"]  # fmt: skip
    # Enough codes per state to land in every one of the 8 hash partitions.
    units = [(f"{state}-{i}", state) for state in old_states for i in range(40)]
    conn = await asyncpg.connect(empty_dsn)
    try:
        applied = await m.migrate(conn, until="0007_job_lease_token")
        assert applied[-1] == "0007_job_lease_token"
        await conn.executemany(
            "insert into units (code, brand_id, product_id, batch_id, state)"
            " values ($1, gen_random_uuid(), gen_random_uuid(), gen_random_uuid(),"
            " $2::unit_state)",
            units,
        )
        assert (await m.migrate(conn))[0] == "0008_unit_state_without_issued"
        rows = await conn.fetch("select code, state::text as state from units")
        # The partitions holding units, each asked by name (on Citus a row's tableoid is
        # its shard's, on a worker).
        partitions = 0
        for (name,) in await conn.fetch(
            "select inhrelid::regclass::text from pg_inherits where inhparent = 'units'::regclass"
        ):
            partitions += await conn.fetchval(f"select exists (select 1 from {name})")
    finally:
        await conn.close()
    assert partitions == 8
    assert {r["code"]: r["state"] for r in rows} == {
        code: "active" if s == "issued" else s for code, s in units
    }


async def test_rejections_kept_a_row_each_become_one_page_each_batch(empty_dsn: str) -> None:
    """0015 moves an import report's rows, in their order, to a page; the reader reads it."""
    first, second = uuid4(), uuid4()
    conn = await asyncpg.connect(empty_dsn)
    try:
        await m.migrate(conn, until="0014_signing_key_changes")
        # The rejections' batches: on Citus the pages' foreign key to them is checked when
        # the tables are distributed (0030), so no orphan rows, not even here.
        brand, product = uuid4(), uuid4()
        await conn.execute("insert into brands (id, name) values ($1, $2)", brand, f"b-{brand}")
        await conn.execute(
            "insert into products (id, brand_id, gtin, name) values ($1, $2, $3, 'p')",
            product,
            brand,
            "09506000134352",
        )
        await conn.executemany(
            "insert into code_batches (id, brand_id, product_id, kind, format, requested)"
            " values ($1, $2, $3, 'import', 'gs1', 1)",
            [(first, brand, product), (second, brand, product)],
        )
        await conn.executemany(
            "insert into import_rejections (batch_id, position, seq, reason, detail)"
            " values ($1, $2, $3, $4, $5)",
            [
                (first, "line 9", 2, "bad_serial", 'a "quoted"\nline, and é'),
                (first, "line 3", 1, "duplicate_in_file", "serial already at line 2"),
                (second, "event 1", 0, "bad_epc", "x"),
            ],
        )
        assert await m.migrate(conn) == [v.version for v in m.available()][14:]
        async with conn.transaction():
            found = {
                batch: [row async for page in imports.rejections(conn, batch) for row in page]
                for batch in (first, second)
            }
    finally:
        await conn.close()
    assert found == {
        first: [
            ("line 3", "duplicate_in_file", "serial already at line 2"),
            ("line 9", "bad_serial", 'a "quoted"\nline, and é'),
        ],
        second: [("event 1", "bad_epc", "x")],
    }
