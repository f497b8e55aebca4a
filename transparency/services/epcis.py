"""EPCIS 2.0 capture and query, as the REST binding defines them.

A capture is a job: the document is read (its size counted as it arrives, hostile JSON
refused with its position, its events counted against the advertised limit) before the
202, then checked, hashed and written in the background, where its status is read. Events
that concern the brand's units act on them through the import's registration and the
lifecycle's rules, in the same transaction as the events: ``rollback`` writes all or
nothing, ``proceed`` leaves out each refused event (and what it would have done) and lists
it. An event already stored (the same event hash) is counted, not stored twice.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from itertools import groupby
from typing import Any
from uuid import UUID, uuid4

import asyncpg

from transparency.db import epcis as db
from transparency.db import units
from transparency.db.pool import Conn, lift_timeouts
from transparency.domain import epcis
from transparency.domain import epcis_query as q
from transparency.domain.epcis_events import (
    LIFECYCLE,
    OUR_CODE_EPC,
    Captured,
    CaptureJob,
    EventError,
    UnitAction,
    check_event,
    epc_key,
    event_list,
    problem,
)
from transparency.domain.errors import (
    InvalidCode,
    InvalidInput,
    InvalidTransition,
    LimitExceeded,
    NotFound,
    PayloadTooLarge,
)
from transparency.domain.identity import Principal, Role
from transparency.domain.imports import MAX_EPCIS_CHARS
from transparency.domain.lifecycle import UnitState, next_state
from transparency.runtime.jobs import JobRunner

log = logging.getLogger("transparency.services.epcis")

# Advertised (GS1-EPCIS-Capture-Limit): events of one capture. A 100,000-event document is
# about 40 MB of JSON and is checked in a few seconds.
CAPTURE_LIMIT = 100_000
# Advertised (GS1-EPCIS-Capture-File-Size-Limit): bytes of one capture, as for an import's
# EPCIS document (decoded whole).
CAPTURE_FILE_SIZE_LIMIT = MAX_EPCIS_CHARS
MAX_RUNNING_CAPTURES = 2  # per brand, as for batch jobs
ERROR_BEHAVIOURS = ("rollback", "proceed")
JSON_TYPES = ("application/json", "application/ld+json")
XML_TYPES = ("application/xml", "text/xml")
_CHECK_SLICE = 10_000  # events checked by one worker call
_running: set[asyncio.Task[None]] = set()  # held so the loop does not drop them


async def read_body(body: AsyncIterator[bytes], max_bytes: int) -> bytes:
    """The whole body, counted as it arrives: 413 past ``max_bytes``."""
    parts, size = [], 0
    async for chunk in body:
        size += len(chunk)
        if size > max_bytes:
            raise PayloadTooLarge(f"a capture holds at most {max_bytes} bytes")
        parts.append(chunk)
    return b"".join(parts)


def _document(data: bytes, content_type: str | None) -> Any:
    """The JSON-LD document the body holds (XML through ``epcis_xml`` when present)."""
    media = (content_type or "application/json").split(";")[0].strip().lower()
    if media in XML_TYPES:
        try:
            from transparency.domain import epcis_xml  # written by another change
        except ImportError:
            raise InvalidInput("XML capture is not available", field="content-type") from None
        return epcis_xml.document_from_xml(data)
    if media not in JSON_TYPES:
        raise InvalidInput(f"send one of {', '.join(JSON_TYPES + XML_TYPES)}", field="content-type")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"the document is not UTF-8 (byte {exc.start})", field="body") from None
    return epcis.load_document(text)


def _events_of(data: bytes, content_type: str | None) -> list[Any]:
    events = event_list(_document(data, content_type))
    if len(events) > CAPTURE_LIMIT:
        raise PayloadTooLarge(f"a capture holds at most {CAPTURE_LIMIT} events")
    return events


async def start_capture(
    pool: asyncpg.Pool,
    runner: JobRunner,
    actor: Principal,
    *,
    data: bytes,
    content_type: str | None,
    error_behaviour: str,
) -> CaptureJob:
    """Read the document and queue its capture; the job as it starts (running)."""
    actor.require(Role.BRAND)
    assert actor.brand_id is not None
    if error_behaviour not in ERROR_BEHAVIOURS:
        raise InvalidInput(
            "GS1-Capture-Error-Behaviour is rollback or proceed",
            field="GS1-Capture-Error-Behaviour",
        )
    events = await asyncio.to_thread(_events_of, data, content_type)
    async with pool.acquire() as conn, conn.transaction():
        if await db.lock_running_captures(conn, actor.brand_id) >= MAX_RUNNING_CAPTURES:
            raise LimitExceeded(
                f"this brand already has {MAX_RUNNING_CAPTURES} captures running", retry_after=5
            )
        job = await db.insert_capture(
            conn, capture_id=uuid4(), brand_id=actor.brand_id, api_key_id=actor.key_id,
            error_behaviour=error_behaviour,
        )  # fmt: skip
    task = asyncio.create_task(
        _run_capture(pool, runner, actor.brand_id, job.id, events, error_behaviour == "rollback")
    )
    _running.add(task)
    task.add_done_callback(_running.discard)
    return job


async def get_capture(pool: asyncpg.Pool, actor: Principal, capture_id: UUID) -> CaptureJob:
    actor.require(Role.BRAND)
    assert actor.brand_id is not None
    job = await db.get_capture(pool, actor.brand_id, capture_id)
    if job is None:
        raise NotFound(f"no capture {capture_id}")
    return job


async def list_captures(pool: asyncpg.Pool, actor: Principal, limit: int) -> list[CaptureJob]:
    actor.require(Role.BRAND)
    assert actor.brand_id is not None
    return await db.list_captures(pool, actor.brand_id, limit)


def _check_all(events: Sequence[Any], first: int = 0) -> tuple[list[Captured], list[EventError]]:
    checked, errors = [], []
    for index, event in enumerate(events, first):
        try:
            checked.append(check_event(index, event))
        except InvalidCode as exc:
            errors.append(EventError(index, exc.reason, exc.detail))
    return checked, errors


class _RollBack(Exception):
    def __init__(self, errors: list[EventError]) -> None:
        super().__init__(len(errors))
        self.errors = errors


@dataclass(frozen=True, slots=True)
class Outcome:
    events: int
    stored: list[Captured]
    duplicates: int
    errors: list[EventError]


async def _check_in_workers(
    runner: JobRunner, events: list[Any]
) -> tuple[list[Captured], list[EventError]]:
    """``_check_all`` in the job runner's worker processes, a slice each: checking and
    hashing is pure Python (about 50 us an event), so both cores take part."""
    slices = [
        runner.cpu(_check_all, events[start : start + _CHECK_SLICE], start)
        for start in range(0, len(events), _CHECK_SLICE)
    ]
    checked: list[Captured] = []
    errors: list[EventError] = []
    for part_checked, part_errors in await asyncio.gather(*slices):
        checked += part_checked
        errors += part_errors
    return checked, errors


async def capture_events(
    conn: Conn,
    brand_id: UUID,
    capture_id: UUID | None,
    checked: list[Captured],
    errors: list[EventError],
    rollback: bool,
) -> Outcome:
    """Act on and store the ``checked`` events of a capture (``errors``: those refused by
    the checks) in the caller's transaction; with ``rollback``, _RollBack (the caller rolls
    back) if any event is refused, after trying them all (the job lists every refusal)."""
    await db.lock_brand_events(conn, brand_id)
    # An event already stored, or twice in the document, is a duplicate: it acts no more.
    stored_before = await db.existing_hashes(conn, brand_id, {e.event_hash for e in checked})
    fresh: list[Captured] = []
    seen: set[str] = set()
    for event in checked:
        if event.event_hash not in stored_before and event.event_hash not in seen:
            fresh.append(event)
        seen.add(event.event_hash)
    refused = await _act(conn, brand_id, capture_id, fresh)
    all_errors = sorted(errors + refused, key=lambda e: e.index)
    if all_errors and rollback:
        raise _RollBack(all_errors)
    left_out = {e.index for e in refused}
    stored = [e for e in fresh if e.index not in left_out]
    await db.store_events(conn, brand_id, capture_id, stored)
    return Outcome(len(checked) + len(errors), stored, len(checked) - len(fresh), all_errors)


async def _run_capture(
    pool: asyncpg.Pool,
    runner: JobRunner,
    brand_id: UUID,
    capture_id: UUID,
    events: list[Any],
    rollback: bool,
) -> None:
    try:
        started = time.perf_counter()
        checked, errors = await _check_in_workers(runner, events)
        checked_at = time.perf_counter()
        async with pool.acquire() as conn, conn.transaction():
            await lift_timeouts(conn)  # a large capture's one transaction: bounded by its size
            outcome = await capture_events(conn, brand_id, capture_id, checked, errors, rollback)
            log.info(
                "capture %s: %d events checked in %.2f s, written in %.2f s", capture_id,
                len(events), checked_at - started, time.perf_counter() - checked_at,
            )  # fmt: skip
            await db.finish_capture(
                conn, capture_id, success=not outcome.errors, events=outcome.events,
                captured=len(outcome.stored), duplicates=outcome.duplicates,
                errors=[problem(e) for e in outcome.errors],
            )  # fmt: skip
    except _RollBack as exc:
        await db.finish_capture(
            pool, capture_id, success=False, events=len(events), captured=0, duplicates=0,
            errors=[problem(e) for e in exc.errors],
        )  # fmt: skip
    except Exception:
        log.exception("capture %s failed", capture_id)
        error = {"type": "epcisException:ImplementationException", "title": "Capture failed",
                 "status": 500, "detail": "the capture could not be completed"}  # fmt: skip
        await db.finish_capture(
            pool, capture_id, success=False, events=len(events), captured=0, duplicates=0,
            errors=[error],
        )  # fmt: skip


async def _act(
    conn: Conn, brand_id: UUID, capture_id: UUID | None, events: list[Captured]
) -> list[EventError]:
    """Apply each event to the brand's units, in document order (a run of events of one
    kind at a time); the events refused, whose units are left as they were."""
    refused: list[EventError] = []
    for action, run in groupby(events, key=lambda e: e.unit_action):
        batch = list(run)
        if action is None:
            continue
        if action is UnitAction.COMMISSION:
            refused += await _commission(conn, brand_id, capture_id, batch)
        else:
            refused += await _move(conn, brand_id, action, batch)
    return refused


async def _commission(
    conn: Conn, brand_id: UUID, capture_id: UUID | None, events: list[Captured]
) -> list[EventError]:
    """Register the units commissioning events name, as an import does: each GTIN one of
    the brand's products, each serial new (in the database and in the capture)."""
    gtins = {unit.gtin for e in events for unit in e.commissioned}
    products = await db.products_by_gtin(conn, brand_id, gtins)
    taken = await db.taken_codes(conn, [key for e in events for key in e.unit_keys])
    refused, seen = [], set(taken)
    rows: dict[UUID, list[tuple[str, epcis.Commissioned]]] = {}
    for event in events:
        error = None
        for key, unit in zip(event.unit_keys, event.commissioned, strict=True):
            if unit.gtin not in products:
                error = ("unknown_product", f"{unit.gtin} is not a GTIN of the brand's products")
            elif key in seen:
                error = ("already_registered", f"{key} is registered")
            if error:
                break
        if error:
            refused.append(EventError(event.index, *error))
            continue
        seen.update(event.unit_keys)
        for key, unit in zip(event.unit_keys, event.commissioned, strict=True):
            rows.setdefault(products[unit.gtin], []).append((key, unit))
    for product_id, units_of in rows.items():
        batch_id = await db.insert_capture_batch(
            conn, brand_id=brand_id, product_id=product_id,
            capture_id=capture_id or uuid4(), count=len(units_of),
        )  # fmt: skip
        await units.copy(
            conn,
            [(key, brand_id, product_id, batch_id, u.lot, u.expiry, UnitState.ACTIVE.value)
             for key, u in units_of],
        )  # fmt: skip
    return refused


async def _move(
    conn: Conn, brand_id: UUID, action: UnitAction, events: list[Captured]
) -> list[EventError]:
    """Move the brand's units these events name through the lifecycle (the API's rules):
    an event naming a unit of the brand's GTINs that is not registered, or one the
    lifecycle does not allow, is refused whole."""
    codes = {key for e in events for key in e.unit_keys}
    states = await db.units_for_update(conn, brand_id, codes)
    gtins = {key[4:18] for key in codes if key.startswith("(01)")}
    products = await db.products_by_gtin(conn, brand_id, gtins)
    lifecycle_event = LIFECYCLE[action]
    refused: list[EventError] = []
    moved: list[str] = []
    reached: UnitState | None = None
    for event in events:
        ours = [
            k for k in event.unit_keys
            if k in states or (k.startswith("(01)") and k[4:18] in products)
            or not k.startswith("(01)")
        ]  # fmt: skip
        changes: dict[str, UnitState] = {}
        try:
            for key in ours:
                if key not in states:
                    shown = OUR_CODE_EPC + key if not key.startswith("(01)") else key
                    raise InvalidCode("unknown_unit", f"{shown} is not a unit of the brand")
                changes[key] = next_state(states[key], lifecycle_event)
        except InvalidCode as exc:
            refused.append(EventError(event.index, exc.reason, exc.detail))
            continue
        except InvalidTransition as exc:
            refused.append(EventError(event.index, "invalid_transition", exc.detail))
            continue
        states.update(changes)
        moved.extend(changes)
        reached = next(iter(changes.values()), reached)
    if moved and reached is not None:
        reason = f"EPCIS {events[0].biz_step} event"
        await db.move_units(conn, brand_id, moved, reached, reason)
    return refused


async def capture_one(
    pool: asyncpg.Pool, actor: Principal, data: bytes, content_type: str | None
) -> tuple[str, bool]:
    """The synchronous single-event capture (``POST /events``, a JSON event): the event's id
    and whether it is new (False: the same event is stored already)."""
    media = (content_type or "application/json").split(";")[0].strip().lower()
    if media not in JSON_TYPES:
        raise InvalidInput(f"send one of {', '.join(JSON_TYPES)}", field="content-type")
    try:
        event = epcis.load_document(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"the event is not UTF-8 (byte {exc.start})", field="body") from None
    actor.require(Role.BRAND)
    assert actor.brand_id is not None
    try:
        checked, errors = _check_all([event])
        async with pool.acquire() as conn, conn.transaction():
            outcome = await capture_events(conn, actor.brand_id, None, checked, errors, True)
    except _RollBack as exc:
        first = exc.errors[0]
        raise InvalidInput(f"{first.reason}: {first.detail}", field="event") from None
    if outcome.stored:
        return outcome.stored[0].event_id, True
    return checked[0].event_id, False


# ---------------------------------------------------------------- query


async def query_events(
    pool: asyncpg.Pool,
    actor: Principal,
    params: Sequence[tuple[str, str]],
    *,
    epc: str | None = None,
) -> tuple[dict[str, Any], str | None]:
    """An EPCISQueryDocument of the brand's events ``params`` ask for (one EPC's with
    ``epc``), and the next page's token, if any."""
    actor.require(Role.BRAND)
    assert actor.brand_id is not None
    query = q.parse_query(params)
    if epc is not None:
        if query.epcs is not None:
            raise InvalidInput("the EPC is in the path", field="MATCH_epc")
        query = replace(query, epcs=(epc_key(epc),))
    found = await db.query_events(pool, actor.brand_id, query)
    page = found[: query.per_page]
    events = [f.body if f.own is None else q.own_event(f.own) for f in page]
    token = q.encode_token(page[-1].position) if len(found) > query.per_page else None
    return q.query_document(events, datetime.now(UTC)), token


def render(document: dict[str, Any], accept: str | None) -> tuple[bytes | None, str]:
    """The query document in the form ``accept`` asks for: EPCIS XML for ``application/xml``
    or ``text/xml`` (through ``epcis_xml``), else JSON-LD (None: the caller writes JSON)."""
    wanted = {part.split(";")[0].strip().lower() for part in (accept or "").split(",")}
    xml = next((media for media in XML_TYPES if media in wanted), None)
    if xml is None:
        return None, "application/ld+json"
    try:
        from transparency.domain import epcis_xml
    except ImportError:
        return None, "application/ld+json"
    try:
        return epcis_xml.document_to_xml(document), xml
    except ValueError as exc:
        raise InvalidInput(f"the events cannot be written as XML: {exc}", field="accept") from exc
