"""Queries on brands and the GS1 company prefixes assigned to them."""

from __future__ import annotations

from uuid import UUID

import asyncpg

from transparency.db.errors import translated
from transparency.db.pool import Conn
from transparency.domain.models import Brand, BrandProfile
from transparency.domain.verification import BrandFace


async def insert(conn: Conn, brand_id: UUID, name: str) -> Brand:
    with translated(f"brand {name!r}"):
        row = await conn.fetchrow(
            "insert into brands (id, name) values ($1, $2) returning id, name, created_at",
            brand_id,
            name,
        )
    assert row is not None
    return Brand(**row)


async def get(conn: Conn | asyncpg.Pool, brand_id: UUID) -> Brand | None:
    row = await conn.fetchrow("select id, name, created_at from brands where id = $1", brand_id)
    return None if row is None else Brand(**row)


async def assign_prefix(conn: Conn, brand_id: UUID, prefix: str) -> bool:
    """Assign the GS1 company prefix ``prefix`` to the brand (in the caller's transaction);
    False when it overlaps a prefix already assigned, to this brand or another."""
    # Two assignments at once could each miss the other's overlap; operators assign rarely,
    # so they take turns (checks and product registrations read on meanwhile).
    await conn.execute("lock table brand_gs1_prefixes in share row exclusive mode")
    with translated(f"brand {brand_id}"):
        status = await conn.execute(
            "insert into brand_gs1_prefixes (prefix, brand_id) select $2::text, $1::uuid"
            " where not exists (select from brand_gs1_prefixes"
            "   where starts_with($2::text, prefix) or starts_with(prefix, $2::text))",
            brand_id,
            prefix,
        )
    return status != "INSERT 0 0"


async def prefixes(conn: Conn | asyncpg.Pool, brand_id: UUID) -> list[str]:
    """The GS1 company prefixes assigned to the brand, in order."""
    rows = await conn.fetch(
        "select prefix from brand_gs1_prefixes where brand_id = $1 order by prefix", brand_id
    )
    return [r["prefix"] for r in rows]


# A brand as its customers see it, for a query naming the brands table ``br``: the
# display name it chose, else its name.
BRAND_FACE = (
    "br.id as brand_id, coalesce(br.display_name, br.name) as brand_name,"
    " br.logo_url as brand_logo_url, br.support as brand_support,"
    " br.recall_instructions as brand_recall_instructions"
)


def brand_face_of(row: asyncpg.Record) -> BrandFace:
    return BrandFace(
        row["brand_id"],
        row["brand_name"],
        row["brand_logo_url"],
        row["brand_support"],
        row["brand_recall_instructions"],
    )


async def face(conn: Conn | asyncpg.Pool, brand_id: UUID) -> BrandFace | None:
    row = await conn.fetchrow(f"select {BRAND_FACE} from brands br where br.id = $1", brand_id)
    return None if row is None else brand_face_of(row)


_PROFILE = (
    "id as brand_id, name, display_name, logo_url, support, recall_instructions, resolver_domain"
)
PROFILE_FIELDS = ("display_name", "logo_url", "support", "recall_instructions", "resolver_domain")


async def profile(conn: Conn | asyncpg.Pool, brand_id: UUID) -> BrandProfile | None:
    row = await conn.fetchrow(f"select {_PROFILE} from brands where id = $1", brand_id)
    return None if row is None else BrandProfile(**row)


async def resolver_domain(conn: Conn | asyncpg.Pool, brand_id: UUID) -> str | None:
    """The https origin the brand's GS1 labels print their Digital Link URIs on, if it set one."""
    value: str | None = await conn.fetchval(
        "select resolver_domain from brands where id = $1", brand_id
    )
    return value


async def update_profile(
    conn: Conn, brand_id: UUID, changes: dict[str, str | None]
) -> BrandProfile | None:
    """Set the profile fields named in ``changes`` (None clears one); None for no brand."""
    fields = [f for f in PROFILE_FIELDS if f in changes]  # names from our list, never input
    assignments = ", ".join(f"{f} = ${i}" for i, f in enumerate(fields, start=2))
    row = await conn.fetchrow(
        f"update brands set {assignments or 'id = id'} where id = $1 returning {_PROFILE}",
        brand_id,
        *(changes[f] for f in fields),
    )
    return None if row is None else BrandProfile(**row)
