"""The rules a Citus coordinator holds the schema and the SQL to (deploy/citus.md), checked
on the plain migrated schema, where CI runs: Citus is built by hand, not in CI.

Each rule has a detector and two tests: the schema and the code as they are pass it, and a
copy broken on purpose fails it (the detector is no rubber stamp).

- every table is placed by 0030_citus.sql: sharded by code with units, sharded on a key
  of its own, or a reference table; and every name placed there is a table;
- the primary and unique keys of a sharded table include its distribution column (a
  shard can only enforce uniqueness within itself);
- an UPDATE calls no VOLATILE function (Citus refuses it: it cannot run the statement once
  per shard and keep the result), and no function but an IMMUTABLE one inside COALESCE or
  CASE (Citus evaluates stable functions on the coordinator, which it cannot do where
  evaluation is conditional);
- a trigger is on a table only where deploy/citus.md says why it is safe.
"""

from __future__ import annotations

import ast
import importlib
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from uuid import UUID

import asyncpg
import httpx
import pytest

from tests.support.paths import ROOT
from tests.support.world import World, issue_codes
from transparency.db import scans
from transparency.db.pool import connect
from transparency.domain.lifecycle import UnitState
from transparency.domain.verification import BLOCKING_STATES

# The plain schema, as CI has it: a Citus coordinator refuses the copies broken on purpose
# (and the plain statements) outright, which is what these rules are about.
pytestmark = pytest.mark.skipif(
    bool(os.environ.get("TEST_CITUS_URL")), reason="checks the plain schema that CI migrates"
)

DB = ROOT / "transparency" / "db"
PLACEMENT = DB / "migrations" / "0030_citus.sql"
GUIDE = ROOT / "deploy" / "citus.md"
# Tables that stay on the coordinator alone, never joined with a distributed table.
LOCAL = {"schema_migrations"}
# (table, trigger) pairs deploy/citus.md documents.
DOCUMENTED_TRIGGERS = {("scan_events", "scan_events_no_update")}


# --- where each table goes ------------------------------------------------------------


def _array(sql: str, name: str) -> str:
    match = re.search(rf"\b{name} constant text\[\](?:\[\])? := array\[(.*?)\n    \];", sql, re.S)
    assert match, f"0030_citus.sql declares no {name}"
    return match.group(1)


def placement(sql: str) -> dict[str, str | None]:
    """Table -> distribution column (None: a reference table), as 0030_citus.sql says."""
    placed: dict[str, str | None] = {}
    for table in re.findall(r"'(\w+)'", _array(sql, "by_code")):
        placed[table] = "code"
    for table in re.findall(r"'(\w+)'", _array(sql, "reference")):
        placed[table] = None
    for table, column in re.findall(r"\['(\w+)', '(\w+)'\]", _array(sql, "by_own_key")):
        placed[table] = column
    return placed


async def _tables(conn: asyncpg.Connection) -> set[str]:
    rows = await conn.fetch(
        "select relname from pg_class where relnamespace = 'public'::regnamespace"
        " and relkind in ('r', 'p') and not relispartition"
    )
    return {r["relname"] for r in rows} - LOCAL


async def unplaced(conn: asyncpg.Connection, placed: dict[str, str | None]) -> list[str]:
    """Tables of the schema 0030 places nowhere, and names it places that are no table."""
    tables = await _tables(conn)
    return sorted(
        [f"{t}: not placed by 0030_citus.sql" for t in tables - placed.keys()]
        + [f"{t}: placed, but no such table" for t in placed.keys() - tables]
    )


async def test_every_table_is_placed_by_the_citus_migration(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        assert await unplaced(conn, placement(PLACEMENT.read_text())) == []
    finally:
        await conn.close()


async def test_a_table_placed_nowhere_is_found(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("create table unit_notes (code text primary key)")
        placed = placement(PLACEMENT.read_text())
        assert await unplaced(conn, placed) == ["unit_notes: not placed by 0030_citus.sql"]
        assert await unplaced(conn, {**placed, "unit_notes": "code", "gone": None}) == [
            "gone: placed, but no such table"
        ]
    finally:
        await conn.close()


# --- unique keys of sharded tables --------------------------------------------------------


async def keys_without_their_column(
    conn: asyncpg.Connection, placed: dict[str, str | None]
) -> list[str]:
    """Unique indexes (primary keys too) of sharded tables that lack the table's
    distribution column."""
    rows = await conn.fetch(
        "select t.relname as tab, i.relname as idx,"
        "   array(select a.attname from pg_attribute a"
        "         where a.attrelid = t.oid and a.attnum = any(x.indkey)) as cols"
        " from pg_index x join pg_class t on t.oid = x.indrelid"
        " join pg_class i on i.oid = x.indexrelid"
        " where x.indisunique and t.relnamespace = 'public'::regnamespace"
        "   and t.relname = any($1::text[])",
        [t for t, column in placed.items() if column is not None],
    )
    return sorted(
        f"{r['tab']}.{r['idx']} lacks {placed[r['tab']]}"
        for r in rows
        if placed[r["tab"]] not in r["cols"]
    )


async def test_unique_keys_of_sharded_tables_include_their_distribution_column(
    dsn: str,
) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        assert await keys_without_their_column(conn, placement(PLACEMENT.read_text())) == []
    finally:
        await conn.close()


async def test_a_unique_key_without_the_distribution_column_is_found(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "create unique index replies_by_key on fulfilment_replies (idempotency_key)"
        )
        found = await keys_without_their_column(conn, placement(PLACEMENT.read_text()))
        assert found == ["fulfilment_replies.replies_by_key lacks api_key_id"]
    finally:
        await conn.close()


# --- functions in UPDATE statements ---------------------------------------------------


@dataclass(frozen=True)
class Volatility:
    volatile: frozenset[str]  # every function of the name is VOLATILE
    mutable: frozenset[str]  # some function of the name is not IMMUTABLE


async def volatility(conn: asyncpg.Connection) -> Volatility:
    rows = await conn.fetch(
        "select proname, bool_and(provolatile = 'v') as volatile,"
        "   bool_or(provolatile <> 'i') as mutable"
        " from pg_proc where pronamespace in ('pg_catalog'::regnamespace, 'public'::regnamespace)"
        " group by proname"
    )
    return Volatility(
        frozenset(r["proname"] for r in rows if r["volatile"]),
        frozenset(r["proname"] for r in rows if r["mutable"]),
    )


_UPDATE = re.compile(r"\bupdate\s+\w+(\s+(as\s+)?\w+)?\s+set\b", re.I)
_CALL = re.compile(r"\b([a-z_][a-z0-9_]*)\s*\(", re.I)


def _statements(sql: str) -> Iterator[str]:
    without_comments = re.sub(r"--[^\n]*", "", sql)
    yield from (s for s in without_comments.split(";") if _UPDATE.search(s))


def _conditional_parts(statement: str) -> Iterator[str]:
    """The text of every COALESCE(...) and CASE ... END of a statement."""
    low = statement.lower()
    for match in re.finditer(r"\bcoalesce\s*\(", low):
        depth, i = 1, match.end()
        while i < len(low) and depth:
            depth += {"(": 1, ")": -1}.get(low[i], 0)
            i += 1
        yield low[match.end() : i]
    for match in re.finditer(r"\bcase\b", low):
        depth, end = 1, len(low)
        for word in re.finditer(r"\b(case|end)\b", low[match.end() :]):
            depth += 1 if word.group(1) == "case" else -1
            if not depth:
                end = match.end() + word.start()
                break
        yield low[match.end() : end]


def update_offences(sql: str, functions: Volatility) -> list[str]:
    """What Citus refuses in the UPDATE statements of ``sql``."""
    found = []
    for statement in _statements(sql):
        calls = {c.lower() for c in _CALL.findall(statement)}
        found += [f"volatile {c}() in an UPDATE" for c in sorted(calls & functions.volatile)]
        for part in _conditional_parts(statement):
            mutable = {c.lower() for c in _CALL.findall(part)} & functions.mutable
            found += [f"non-immutable {c}() in CASE or COALESCE" for c in sorted(mutable)]
    return found


def _text(node: ast.expr, names: dict[str, object]) -> str | None:
    """A string literal's text, an f-string's with module-level names filled in."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        parts = []
        for value in node.values:
            if isinstance(value, ast.Constant):
                parts.append(str(value.value))
            elif isinstance(value, ast.FormattedValue) and isinstance(value.value, ast.Name):
                parts.append(str(names.get(value.value.id, "?")))
            else:
                parts.append("?")
        return "".join(parts)
    return None


def sql_of_the_db_package() -> dict[str, str]:
    """Every string the modules of transparency/db hold (module-level values, literals
    and f-strings in their code), by where it is."""
    found: dict[str, str] = {}
    for path in sorted(DB.glob("*.py")):
        module = importlib.import_module(f"transparency.db.{path.stem}")
        names = vars(module)
        for name, value in names.items():
            if isinstance(value, str):
                found[f"{path.name}:{name}"] = value
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.expr) and (text := _text(node, names)) is not None:
                found[f"{path.name}:{node.lineno}"] = text
    return found


async def _function_bodies(conn: asyncpg.Connection) -> dict[str, str]:
    rows = await conn.fetch(
        "select p.proname, p.prosrc from pg_proc p join pg_language l on l.oid = p.prolang"
        " where p.pronamespace = 'public'::regnamespace and l.lanname in ('sql', 'plpgsql')"
    )
    return {f"function {r['proname']}": r["prosrc"] for r in rows}


async def test_updates_call_no_volatile_and_no_conditional_stable_function(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        functions = await volatility(conn)
        sources = {**sql_of_the_db_package(), **await _function_bodies(conn)}
    finally:
        await conn.close()
    assert len([s for s in sources.values() if _UPDATE.search(s)]) >= 15  # found the SQL
    offences = {
        where: found for where, sql in sources.items() if (found := update_offences(sql, functions))
    }
    assert offences == {}


async def test_a_volatile_or_conditional_stable_function_in_an_update_is_found(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        functions = await volatility(conn)
    finally:
        await conn.close()
    lease = (
        "update code_batches set started_at = coalesce(started_at, now()),"
        " lease_token = gen_random_uuid() where id = $1"
    )
    assert update_offences(lease, functions) == [
        "volatile gen_random_uuid() in an UPDATE",
        "non-immutable now() in CASE or COALESCE",
    ]
    revoke = (
        "update api_keys set revoked_at = case when revoked_at is null"
        " then clock_timestamp() else revoked_at end"
    )
    assert update_offences(revoke, functions) == [
        "volatile clock_timestamp() in an UPDATE",
        "non-immutable clock_timestamp() in CASE or COALESCE",
    ]
    # the same calls outside an UPDATE, and now() where Citus evaluates it once, are fine
    assert (
        update_offences("insert into t values (gen_random_uuid(), coalesce($1, now()))", functions)
        == []
    )
    assert update_offences("update t set at = now(), n = coalesce(n, 0) + 1", functions) == []


# --- triggers ---------------------------------------------------------------------------


async def undocumented_triggers(conn: asyncpg.Connection) -> list[str]:
    rows = await conn.fetch(
        "select c.relname, t.tgname from pg_trigger t join pg_class c on c.oid = t.tgrelid"
        " where not t.tgisinternal and t.tgparentid = 0"
        "   and c.relnamespace = 'public'::regnamespace"
    )
    return sorted(
        f"{r['relname']}.{r['tgname']}"
        for r in rows
        if (r["relname"], r["tgname"]) not in DOCUMENTED_TRIGGERS
    )


async def test_triggers_are_only_the_documented_ones(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        assert await undocumented_triggers(conn) == []
    finally:
        await conn.close()
    guide = GUIDE.read_text()
    for table, trigger in DOCUMENTED_TRIGGERS:
        assert f"`{trigger}`" in guide
        assert f"`{table}`" in guide


async def test_an_undocumented_trigger_is_found(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "create trigger units_stamp before update on units"
            " for each row execute function scan_events_append_only()"
        )
        assert await undocumented_triggers(conn) == ["units.units_stamp"]
    finally:
        await conn.close()


# --- the claim function decides as the domain does -------------------------------------


async def test_the_claim_function_blocks_the_domains_states_with_its_reasons(dsn: str) -> None:
    """0029 writes the domain's table of blocking states out as SQL: the same pairs."""
    conn = await asyncpg.connect(dsn)
    try:
        body: str = await conn.fetchval("select prosrc from pg_proc where proname = 'claim_unit'")
    finally:
        await conn.close()
    written = dict(re.findall(r"when '(\w+)' then '(\w+)'", body))
    assert written == {s.value: r.value for s, r in BLOCKING_STATES.items()}
    assert "b.status = 'done'" in body


# --- the Citus statements answer as the plain ones --------------------------------------


async def test_the_claim_and_check_functions_answer_as_the_plain_statements(
    client: httpx.AsyncClient, world: World, dsn: str
) -> None:
    """On Citus the claims and the customer check are functions (0029); plain PostgreSQL
    runs the statements it always ran. For a unit in every state (and a wrong product, and
    an unknown code), triplets claimed by the plain statement, the function and the Citus
    tote answer alike, write the same events and leave the unit alike; so do the checks."""
    states = [s.value for s in UnitState]
    rows = iter(await issue_codes(client, world, 3 * (len(states) + 1)))
    cases = [tuple(next(rows)["code"] for _ in range(3)) for _ in range(len(states) + 1)]
    site, gtin = UUID(world.site_id), world.product_a["gtin"]
    conn = await connect(dsn)
    try:
        for codes, state in zip(cases, states, strict=False):
            await conn.execute(
                "update units set state = $2::unit_state, shipment_id = 'S-1',"
                " shipped_site_id = $3, shipped_at = now() - interval '1 day'"
                " where code = any($1::text[])",
                list(codes),
                state,
                site,
            )
        wrong_product = cases[-1]
        cases.append(("TPUNKNOWN1", "TPUNKNOWN2", "TPUNKNOWN3"))
        for shipment in ("S-1", "S-2"):  # the same shipment again, then another
            for plain, function, tote in cases:
                want = "00000000000000" if plain == wrong_product[0] else gtin
                args = (site, shipment, "k")
                answers = [
                    await conn.fetchrow(scans._CLAIM_ONE, plain, want, *args),
                    await conn.fetchrow(scans._CLAIM_ONE_CITUS, function, want, *args),
                    (await conn.fetch(scans._CLAIM_CITUS, [tote], [want], *args))[0],
                ]
                assert [_same(a) for a in answers] == [_same(answers[0])] * 3, plain
        for codes in cases:
            checks = [
                await conn.fetchrow(scans._CUSTOMER, codes[0], "FR"),
                await conn.fetchrow(scans._CUSTOMER_CITUS, codes[1], "FR"),
                await conn.fetchrow(scans._CUSTOMER_CITUS, codes[2], "FR"),
            ]
            assert [_same(c) for c in checks] == [_same(checks[0])] * 3, codes[0]
        for codes in cases:
            units = [
                await conn.fetchrow(
                    "select state, shipment_id, shipped_site_id, customer_scans,"
                    " scan_regions, scans_since_shipping from units where code = $1",
                    code,
                )
                for code in codes
            ]
            assert units == [units[0]] * 3, codes[0]
            events = [
                await conn.fetch(
                    "select kind, result, reason, brand_id, product_id, site_id, api_key_id,"
                    " shipment_id, region from scan_events where code = $1 order by scanned_at",
                    code,
                )
                for code in codes
            ]
            assert len(events[0]) == (2 if units[0] is None else 3)  # claims, a check
            assert events == [events[0]] * 3, codes[0]
    finally:
        await conn.close()


def _same(row: asyncpg.Record | None) -> dict[str, object] | None:
    """A claim's or a check's answer without its unit's own times."""
    if row is None:
        return None
    return {k: v for k, v in dict(row).items() if k not in ("shipped_at", "suspicious_at")}
