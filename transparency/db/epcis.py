"""Queries of EPCIS capture and query: capture jobs, captured events and their EPCs, the
units a capture acts on, and the simple event query over captured events and the
service's own records.

Every statement names the brand: another brand's events, captures and units are never
read, and look exactly like missing ones.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID, uuid4

import asyncpg

from transparency.db.pool import Conn, is_citus, lift_timeouts
from transparency.domain.epcis_events import Captured, CaptureJob
from transparency.domain.epcis_query import OWN_KINDS, EventQuery, OwnRecord, Position
from transparency.domain.lifecycle import UnitState

_CAPTURE_COLUMNS = (
    "id, error_behaviour, running, success, events, captured, duplicates, errors,"
    " created_at, finished_at"
)


# A capture runs in one transaction in the process that took it: one still "running" this
# long after it began lost its process (its transaction rolled back), and no longer counts.
STALE_AFTER = "15 minutes"
_ABANDONED = [{"type": "epcisException:ImplementationException", "title": "Capture abandoned",
               "status": 500, "detail": "the process running the capture stopped; nothing of"
               " it was stored: capture the document again"}]  # fmt: skip


async def lock_running_captures(conn: Conn, brand_id: UUID) -> int:
    """Lock the brand's row and count its running captures (for the per-brand cap), after
    marking those that lost their process as failed."""
    await conn.execute("select from brands where id = $1 for update", brand_id)
    await conn.execute(
        "update epcis_captures set running = false, success = false, errors = $2,"
        f" finished_at = now() where brand_id = $1 and running"
        f" and created_at < now() - interval '{STALE_AFTER}'",
        brand_id,
        _ABANDONED,
    )
    count: int = await conn.fetchval(
        "select count(*) from epcis_captures where brand_id = $1 and running", brand_id
    )
    return count


async def insert_capture(
    conn: Conn, *, capture_id: UUID, brand_id: UUID, api_key_id: str, error_behaviour: str
) -> CaptureJob:
    row = await conn.fetchrow(
        "insert into epcis_captures (id, brand_id, api_key_id, error_behaviour)"
        f" values ($1, $2, $3, $4) returning {_CAPTURE_COLUMNS}",
        capture_id,
        brand_id,
        api_key_id,
        error_behaviour,
    )
    assert row is not None
    return CaptureJob(**row)


async def finish_capture(
    conn: Conn | asyncpg.Pool,
    capture_id: UUID,
    *,
    success: bool,
    events: int,
    captured: int,
    duplicates: int,
    errors: list[dict[str, Any]],
) -> None:
    await conn.execute(
        "update epcis_captures set running = false, success = $2, events = $3, captured = $4,"
        " duplicates = $5, errors = $6, finished_at = now() where id = $1",
        capture_id,
        success,
        events,
        captured,
        duplicates,
        errors,
    )


async def get_capture(
    conn: Conn | asyncpg.Pool, brand_id: UUID, capture_id: UUID
) -> CaptureJob | None:
    row = await conn.fetchrow(
        f"select {_CAPTURE_COLUMNS} from epcis_captures where id = $1 and brand_id = $2",
        capture_id,
        brand_id,
    )
    return None if row is None else CaptureJob(**row)


async def list_captures(conn: Conn | asyncpg.Pool, brand_id: UUID, limit: int) -> list[CaptureJob]:
    rows = await conn.fetch(
        f"select {_CAPTURE_COLUMNS} from epcis_captures where brand_id = $1"
        " order by created_at desc, id limit $2",
        brand_id,
        limit,
    )
    return [CaptureJob(**row) for row in rows]


# ---------------------------------------------------------------- what a capture acts on


async def lock_brand_events(conn: Conn, brand_id: UUID) -> None:
    """Take the brand's capture lock for the transaction: two captures of one brand write
    events in turn, so a duplicate is always seen by the second (never a unique error).

    On Citus the capture's transaction reads many shards (its units, its events) and then
    writes reference tables (a batch of the units it commissions): one connection per node
    for all of it, or Citus refuses the write ("parallel operation on a distributed
    table")."""
    if await is_citus(conn):
        await conn.execute("set local citus.multi_shard_modify_mode = 'sequential'")
    await conn.execute(
        "select pg_advisory_xact_lock(hashtextextended($1::uuid::text, 25))", brand_id
    )


async def products_by_gtin(conn: Conn, brand_id: UUID, gtins: Collection[str]) -> dict[str, UUID]:
    rows = await conn.fetch(
        "select gtin, id from products where brand_id = $1 and gtin = any($2::text[])",
        brand_id,
        list(gtins),
    )
    return {row["gtin"]: row["id"] for row in rows}


_UNITS_FOR_UPDATE = (
    "select u.code, u.state::text as state from unnest($2::text[]) c (code)"
    " join units u on u.code = c.code"
    " join code_batches b on b.id = u.batch_id and b.status = 'done'"
    " where u.brand_id = $1 for update of u"
)
# Citus locks no rows of many shards with FOR UPDATE ("could not run distributed query
# with FOR UPDATE/SHARE commands"); an UPDATE that changes nothing locks the same rows on
# their nodes (each shard's statement in the capture's transaction), returning them.
_UNITS_FOR_UPDATE_CITUS = (
    "update units u set state = u.state from unnest($2::text[]) c (code), code_batches b"
    " where u.code = c.code and b.id = u.batch_id and b.status = 'done' and u.brand_id = $1"
    " returning u.code, u.state"  # the enum: a cast in RETURNING is refused (not immutable)
)


async def units_for_update(
    conn: Conn, brand_id: UUID, codes: Collection[str]
) -> dict[str, UnitState]:
    """The states of the brand's units among ``codes`` (of finished batches), locked."""
    rows = await conn.fetch(
        _UNITS_FOR_UPDATE_CITUS if await is_citus(conn) else _UNITS_FOR_UPDATE,
        brand_id,
        list(codes),
    )
    return {row["code"]: UnitState(row["state"]) for row in rows}


# A capture asks about up to 100,000 codes or hashes at once: joined from unnest, each is
# one index probe; as ``= any($1)`` under a generic plan the planner may scan the table and
# compare each row with the whole array (minutes at 100,000 of each).


async def taken_codes(conn: Conn, codes: Collection[str]) -> set[str]:
    """Which of ``codes`` are units already (any brand's: a code is one unit)."""
    rows = await conn.fetch(
        "select u.code from unnest($1::text[]) c (code) join units u on u.code = c.code",
        list(codes),
    )
    return {row["code"] for row in rows}


async def insert_capture_batch(
    conn: Conn, *, brand_id: UUID, product_id: UUID, capture_id: UUID, count: int
) -> UUID:
    """A finished import batch holding the units a capture commissions for one product
    (marked with the capture, so the query does not read it as an issuance too)."""
    batch_id = uuid4()
    report = {"mode": "epcis_capture", "rows": count, "accepted": count, "rejected": 0,
              "registered": True, "first_rejections": []}  # fmt: skip
    await conn.execute(
        "insert into code_batches (id, brand_id, product_id, kind, format, requested, status,"
        " progress, report, options, started_at, finished_at)"
        " values ($1, $2, $3, 'import', 'gs1', $4, 'done', $4, $5, $6, now(), now())",
        batch_id,
        brand_id,
        product_id,
        count,
        report,
        {"epcis_capture": str(capture_id)},
    )
    return batch_id


async def move_units(
    conn: Conn, brand_id: UUID, codes: Sequence[str], state: UnitState, reason: str
) -> None:
    """Set the state of the brand's units (already checked against the lifecycle, and
    locked, by the caller's transaction); a shipped unit records when it left."""
    await conn.execute(
        # The clock is read once in the FROM list: Citus refuses now() inside CASE in an
        # UPDATE (tests/integration/test_citus_rules.py).
        "update units set state = $3::unit_state, updated_at = t.at,"
        " status_reason = case when $3 in ('active', 'shipped') then status_reason else $4 end,"
        " shipped_at = case when $3 = 'shipped' then t.at else shipped_at end"
        " from unnest($2::text[]) c (code), (select now() as at) t"
        " where units.code = c.code and units.brand_id = $1",
        brand_id,
        list(codes),
        state.value,
        reason,
    )


async def existing_hashes(conn: Conn, brand_id: UUID, hashes: Collection[str]) -> set[str]:
    rows = await conn.fetch(
        "select e.event_hash from unnest($2::text[]) h (event_hash)"
        " join epcis_events e on e.brand_id = $1 and e.event_hash = h.event_hash",
        brand_id,
        list(hashes),
    )
    return {row["event_hash"] for row in rows}


async def store_events(
    conn: Conn, brand_id: UUID, capture_id: UUID | None, events: Sequence[Captured]
) -> None:
    """Write events (none a duplicate: the caller checked under ``lock_brand_events``) and
    their EPCs, by binary COPY."""
    if not events:
        return
    await lift_timeouts(conn)
    ids: list[int] = [
        row[0]
        for row in await conn.fetch(
            "select nextval(pg_get_serial_sequence('epcis_events', 'id'))"
            " from generate_series(1, $1)",
            len(events),
        )
    ]
    records = [
        (brand_id, ident, e.event_id, e.event_hash, e.type, e.action, e.event_time, e.biz_step,
         e.disposition, e.read_point, e.biz_location, capture_id, json.dumps(e.body))
        for ident, e in zip(ids, events, strict=True)
    ]  # fmt: skip
    await conn.copy_records_to_table(
        "epcis_events",
        records=records,
        columns=("brand_id", "id", "event_id", "event_hash", "type", "action", "event_time",
                 "biz_step", "disposition", "read_point", "biz_location", "capture_id", "body"),
    )  # fmt: skip
    await conn.copy_records_to_table(
        "epcis_event_epcs",
        records=[
            (brand_id, epc, ident) for ident, e in zip(ids, events, strict=True) for epc in e.epcs
        ],
        columns=("brand_id", "epc", "event"),
    )


# ---------------------------------------------------------------- the simple event query

# The service's own records as rows of the query's shape: (source, key, record time,
# event time, type, action, biz_step, disposition, read_point, biz_location, body, code,
# gtin, lot, quantity, site_id, shipment_id). Captured events carry their body; the others
# are written as events from the rest (``epcis_query.own_event``).
_SITE = "'urn:transparency:site:' || {0}::text"


def _kind_case(source: str, column: str) -> str:
    """``case <source> when 'pass' then 'shipping' ... end`` from ``OWN_KINDS``."""
    whens = " ".join(
        f"when '{name}' then {_literal(getattr(kind, column))}" for name, kind in OWN_KINDS.items()
    )
    return f"(case {source} {whens} end)"


def _literal(value: str | None) -> str:
    return "null" if value is None else "'" + value.replace("'", "''") + "'"


_OWN_COLUMNS = (
    "{src} as source, {key} as key, {at} as record_time, {at} as event_time,"
    " 'ObjectEvent'::text as type,"
    " {action} as action, {step} as biz_step, {disposition} as disposition,"
    " {read_point} as read_point, null::text as biz_location, null::text as body,"
    " {code} as code, {gtin} as gtin, {lot} as lot, {quantity} as quantity,"
    " {site} as site_id, {shipment} as shipment_id, null::bigint as seq"
)


def _own(src: str, **columns: str) -> str:
    return _OWN_COLUMNS.format(
        src=src,
        action=_kind_case(src, "action"),
        step=_kind_case(src, "biz_step"),
        disposition=_kind_case(src, "disposition"),
        **columns,
    )


_SCAN_SOURCE = "(case s.kind when 'fulfilment' then 'pass' else s.kind end)"
_SCANS = (
    "select "
    + _own(
        _SCAN_SOURCE, key="s.id::text", at="s.scanned_at",
        read_point=_SITE.format("s.site_id"), code="s.code", gtin="null::text", lot="null::text",
        quantity="null::bigint", site="s.site_id", shipment="s.shipment_id",
    )
    + " from scan_events s where s.brand_id = $1 and s.result = 'pass'"
    " and s.kind in ('fulfilment', 'reversal', 'return', 'restock')"
)  # fmt: skip
_UNITS = (
    "select "
    + _own(
        "'issue'", key="u.code", at="u.issued_at", read_point="null::text", code="u.code",
        gtin="null::text", lot="u.lot", quantity="null::bigint", site="null::uuid",
        shipment="null::text",
    )
    + " from units u join code_batches b on b.id = u.batch_id and b.status = 'done'"
    " and not b.options ? 'epcis_capture'"
    " where u.brand_id = $1 and u.code = any($2::text[])"
)  # fmt: skip
_BATCHES = (
    "select "
    + _own(
        "'issue'", key="b.id::text", at="b.finished_at", read_point="null::text",
        code="null::text", gtin="p.gtin::text", lot="b.lot",
        quantity="(case b.kind when 'import' then (b.report->>'accepted')::bigint"
        " else b.progress end)", site="null::uuid", shipment="null::text",
    )
    + " from code_batches b join products p on p.id = b.product_id"
    " where b.brand_id = $1 and b.status = 'done' and not b.options ? 'epcis_capture'"
)  # fmt: skip
# A withdrawal names a unit (its code), a batch (its id) or a product's lot ("<id>/<lot>"):
# a batch's or a lot's reads as an event about its class (GTIN and lot) and quantity.
_WITHDRAWALS = (
    "select "
    + _own(
        "substr(a.action, 7)", key="a.id::text", at="a.at", read_point="null::text",
        code="(case when b.id is null and p.id is null then a.target end)",
        gtin="coalesce(bp.gtin, p.gtin)::text",
        lot="(case when b.id is not null then b.lot else split_part(a.target, '/', 2) end)",
        quantity="(a.detail->>'units')::bigint", site="null::uuid", shipment="null::text",
    )
    + " from audit_log a"
    " left join code_batches b on b.brand_id = a.brand_id and b.id::text = a.target"
    " left join products bp on bp.id = b.product_id"
    " left join products p on p.brand_id = a.brand_id and a.target like '%/%'"
    " and p.id::text = split_part(a.target, '/', 1)"
    " where a.brand_id = $1 and a.action = any(array['units.revoke',"
    " 'units.recall', 'units.destroy', 'units.report_stolen'])"
)  # fmt: skip
# The targets naming a unit among $2: itself, its batch, its product's lot.
_UNIT_TARGETS = (
    " and a.target in (select unnest($2::text[]) union all"
    " select t from units u, lateral (values (u.batch_id::text),"
    " (u.product_id::text || '/' || u.lot)) v (t)"
    " where u.brand_id = $1 and u.code = any($2::text[]))"
)
_CAPTURED = (
    "select 'captured' as source, lpad(e.id::text, 20, '0') as key, e.record_time,"
    " e.event_time, e.type, e.action, e.biz_step, e.disposition, e.read_point,"
    " e.biz_location, e.body, null::text as code, null::text as gtin, null::text as lot,"
    " null::bigint as quantity, null::uuid as site_id, null::text as shipment_id, e.id as seq"
    " from epcis_events e where e.brand_id = $1"
)


_C = 'collate "C"'  # keys compare as bytes: the same order in every database
_CAPTURED_SOURCE = "captured"


@dataclass(frozen=True, slots=True)
class Found:
    """A row of the query: a captured event's body, or one of the service's records."""

    position: Position
    body: dict[str, Any]  # empty for one of the service's records
    own: OwnRecord | None


def _filters(query: EventQuery, args: list[Any]) -> str:
    """The query's filters over the union's columns, its parameters appended to ``args``."""
    clauses = []

    def arg(value: Any) -> str:
        args.append(value)
        return f"${len(args)}"

    for column, values in (
        ("type", query.event_types), ("action", query.actions), ("biz_step", query.biz_steps),
        ("disposition", query.dispositions), ("read_point", query.read_points),
        ("biz_location", query.biz_locations),
    ):  # fmt: skip
        if values is not None:
            clauses.append(f"{column} = any({arg(list(values))}::text[])")
    for column, bound, op in (
        ("event_time", query.ge_event_time, ">="), ("event_time", query.lt_event_time, "<"),
        ("record_time", query.ge_record_time, ">="), ("record_time", query.lt_record_time, "<"),
    ):  # fmt: skip
        if bound is not None:
            clauses.append(f"{column} {op} {arg(bound)}")
    return " and ".join(clauses) or "true"


def _after(after: Position | None, args: list[Any]) -> tuple[str, str]:
    """The keyset clause past ``after`` for the captured events, and for the others.

    A capture's events share one record time (its transaction's): a tie of up to 100,000
    rows. So the captured ones are ordered by (record time, id), which their index holds
    (the key is the id, zero-padded, in the same order), and are passed by that pair; the
    service's own records, rarely tied, by the whole position."""
    if after is None:
        return "true", "true"
    args.append(after.record_time)
    at = f"${len(args)}::timestamptz"
    if after.source == _CAPTURED_SOURCE:
        args.append(int(after.key))
        captured = f"(record_time, seq) > ({at}, ${len(args)}::bigint)"
    elif after.source < _CAPTURED_SOURCE:
        captured = f"record_time >= {at}"
    else:
        captured = f"record_time > {at}"
    args.append(after.source)
    args.append(after.key)
    others = (  # the first clause is the one an index on the record time can use
        f"record_time >= {at} and (record_time, source {_C}, key {_C})"
        f" > ({at}, ${len(args) - 1}::text, ${len(args)}::text)"
    )
    return captured, others


async def query_events(conn: Conn | asyncpg.Pool, brand_id: UUID, query: EventQuery) -> list[Found]:
    """A page (``per_page`` + 1 rows: one more says a next page exists) of the brand's
    events that ``query`` matches, captured and its own, in (record time, source, key)
    order. With EPCs, the service's records are looked up by unit (an index each); without,
    an issuance reads as one event per batch (its quantity), not one per unit."""
    args: list[Any] = [brand_id]
    if query.epcs is not None:
        args.append(list(query.unit_keys))
        args.append(list(query.epcs))
        parts = (
            _CAPTURED + " and e.id in (select x.event from epcis_event_epcs x"
            " where x.brand_id = $1 and x.epc = any($3::text[]))",
            _SCANS + " and s.code = any($2::text[])",
            _UNITS,
            _WITHDRAWALS + _UNIT_TARGETS,
        )
    else:
        parts = (_CAPTURED, _SCANS, _BATCHES, _WITHDRAWALS)
    where = _filters(query, args)
    after_captured, after_others = _after(query.after, args)
    args.append(query.per_page + 1)
    limit = f"${len(args)}"
    # Each source is read in the page's order up to a page, from its own index on the
    # record time (the keyset clause starts there), and the pages are merged: ordered as
    # one union, 10M captured events would be sorted for every page.
    branches = " union all ".join(
        f"(select * from ({part}) b where {where} and {after_captured}"
        f" order by record_time, seq limit {limit})"
        if part is parts[0]
        else f"(select * from ({part}) b where {where} and {after_others}"
        f" order by record_time, key {_C} limit {limit})"
        for part in parts
    )
    rows = await conn.fetch(
        f"select * from ({branches}) ev order by record_time, source {_C}, key {_C} limit {limit}",
        *args,
    )
    found = []
    for row in rows:
        position = Position(row["record_time"], row["source"], row["key"])
        if row["source"] == "captured":
            body = json.loads(row["body"])
            body["recordTime"] = row["record_time"].isoformat(timespec="milliseconds")
            found.append(Found(position, body, None))
        else:
            own = OwnRecord(
                source=row["source"], key=row["key"], at=row["record_time"], code=row["code"],
                gtin=row["gtin"], lot=row["lot"], quantity=row["quantity"],
                site_id=row["site_id"], shipment_id=row["shipment_id"],
            )  # fmt: skip
            found.append(Found(position, {}, own))
    return found
