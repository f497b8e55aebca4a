"""Ordered ``.sql`` migrations and the one function that applies them.

Used by ``transparency migrate``, by ``transparency serve`` and by the test fixtures.
Each file runs in its own transaction and is recorded with its checksum; a session-level
advisory lock makes two processes migrating at once take turns, and the second finds
nothing left to do.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources

from transparency.db.pool import Conn

# An arbitrary, fixed 64-bit key for pg_advisory_lock: "transparency migrations".
_LOCK_KEY = 0x7472616E73706172

_CREATE_TABLE = """
create table if not exists schema_migrations (
    version     text primary key,
    checksum    text not null,
    applied_at  timestamptz not null default now()
)
"""


class MigrationError(Exception):
    """An applied migration was edited afterwards, or the database is ahead of this code."""


@dataclass(frozen=True, slots=True)
class Migration:
    version: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def available() -> list[Migration]:
    """The migrations shipped with this code, in order."""
    folder = resources.files("transparency.db") / "migrations"
    files = sorted((f for f in folder.iterdir() if f.name.endswith(".sql")), key=lambda f: f.name)
    return [Migration(version=f.name.removesuffix(".sql"), sql=f.read_text()) for f in files]


async def applied(conn: Conn) -> dict[str, str]:
    """version -> checksum of every migration recorded in the database."""
    exists = await conn.fetchval("select to_regclass('schema_migrations') is not null")
    if not exists:
        return {}
    rows = await conn.fetch("select version, checksum from schema_migrations")
    return {r["version"]: r["checksum"] for r in rows}


async def pending(conn: Conn) -> list[Migration]:
    done = await applied(conn)
    known = available()
    for m in known:
        if m.version in done and done[m.version] != m.checksum:
            raise MigrationError(f"migration {m.version} was changed after it was applied")
    unknown = set(done) - {m.version for m in known}
    if unknown:
        raise MigrationError(f"database has migrations this code does not know: {sorted(unknown)}")
    return [m for m in known if m.version not in done]


async def migrate(conn: Conn, *, until: str | None = None) -> list[str]:
    """Apply every pending migration (or those up to version ``until``, inclusive); return
    the versions applied by this call."""
    await conn.execute("select pg_advisory_lock($1)", _LOCK_KEY)
    try:
        await conn.execute(_CREATE_TABLE)
        done: list[str] = []
        for m in await pending(conn):
            if until is not None and m.version > until:
                break
            async with conn.transaction():
                await conn.execute(m.sql)
                await conn.execute(
                    "insert into schema_migrations (version, checksum) values ($1, $2)",
                    m.version,
                    m.checksum,
                )
            done.append(m.version)
        return done
    finally:
        await conn.execute("select pg_advisory_unlock($1)", _LOCK_KEY)
