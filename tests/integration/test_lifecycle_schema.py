"""The unit lifecycle: every (state, event) pair, allowed and forbidden."""

from __future__ import annotations

import asyncpg
import pytest

from transparency.domain.lifecycle import (
    UnitState,
)


async def test_database_enum_mirrors_the_domain_states(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        labels = await conn.fetchval("select enum_range(null::unit_state)::text[]")
        with pytest.raises(asyncpg.InvalidTextRepresentationError):
            await conn.execute("select 'lost'::unit_state")
    finally:
        await conn.close()
    assert labels == [s.value for s in UnitState]
