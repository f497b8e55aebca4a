"""The database refuses what the lifecycle refuses: its unit_state ENUM is UnitState."""

from __future__ import annotations

import asyncpg
import pytest

from transparency.domain.lifecycle import UnitState


async def test_database_enum_mirrors_the_domain_states(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        labels = await conn.fetchval("select enum_range(null::unit_state)::text[]")
        with pytest.raises(asyncpg.InvalidTextRepresentationError):
            await conn.execute("select 'lost'::unit_state")
    finally:
        await conn.close()
    assert labels == [s.value for s in UnitState]


async def test_the_enum_labels_in_pg_enum_are_the_unit_states(dsn: str) -> None:
    """Read from the catalogue: one unit_state type, its labels exactly UnitState's values
    (no label left over from an earlier lifecycle, such as 'issued')."""
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "select t.typname, e.enumlabel from pg_enum e join pg_type t on t.oid = e.enumtypid"
            " where t.typname like 'unit_state%' order by e.enumsortorder"
        )
        column_type = await conn.fetchval(
            "select atttypid::regtype::text from pg_attribute"
            " where attrelid = 'units'::regclass and attname = 'state'"
        )
    finally:
        await conn.close()
    assert {r["typname"] for r in rows} == {"unit_state"}
    assert [r["enumlabel"] for r in rows] == [s.value for s in UnitState]
    assert column_type == "unit_state"


@pytest.mark.parametrize("state", ["issued", "lost"])
async def test_a_state_the_domain_lacks_is_refused(dsn: str, state: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        with pytest.raises(asyncpg.InvalidTextRepresentationError):
            await conn.execute(f"select '{state}'::unit_state")
    finally:
        await conn.close()
