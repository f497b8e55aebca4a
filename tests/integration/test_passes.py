"""A station reads back the passes of its own site under a shipment prefix: listed in keyset
pages and counted, from an index range (GET /v1/fulfilment/passes and /passes/summary)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import asyncpg
import httpx
from hypothesis import example, given
from hypothesis import strategies as st

from tests.support.world import World, bearer, expect, issue_codes, make_station
from transparency.db import passes as db
from transparency.domain.passes import range_of

PASSES = "/v1/fulfilment/passes"
SUMMARY = "/v1/fulfilment/passes/summary"


def run_prefix() -> str:
    return f"lt-{uuid.uuid4().hex[:8]}-"


async def claim(
    client: httpx.AsyncClient, world: World, code: str, shipment: str, station: str | None = None
) -> None:
    r = await client.post(
        "/v1/fulfilment/verifications",
        json={"scan": code, "gtin": world.product_a["gtin"], "shipment_id": shipment},
        headers=bearer(station or world.station),
    )
    assert r.json()["result"] == "pass", r.text


async def listed(
    client: httpx.AsyncClient, station: str, prefix: str, limit: int = 1000
) -> tuple[list[dict[str, Any]], int]:
    """Every pass under ``prefix``, following the cursor; and the number of pages."""
    items: list[dict[str, Any]] = []
    params: dict[str, Any] = {"shipment_prefix": prefix, "limit": limit}
    pages = 0
    while True:
        page = await expect(await client.get(PASSES, params=params, headers=bearer(station)), 200)
        pages += 1
        items.extend(page["items"])
        if page["next_cursor"] is None:
            return items, pages
        params["cursor"] = page["next_cursor"]


async def summary(client: httpx.AsyncClient, station: str, prefix: str) -> dict[str, Any]:
    r = await client.get(SUMMARY, params={"shipment_prefix": prefix}, headers=bearer(station))
    return await expect(r, 200)


async def test_passes_of_two_shipments_under_one_prefix_are_listed(
    client: httpx.AsyncClient, world: World
) -> None:
    prefix = run_prefix()
    a, b, elsewhere = (row["code"] for row in await issue_codes(client, world, 3))
    await claim(client, world, a, f"{prefix}w1-000001")
    await claim(client, world, b, f"{prefix}w2-000001")
    await claim(client, world, elsewhere, f"x{prefix}w1-000002")  # another prefix

    items, _ = await listed(client, world.station, prefix)

    assert [(p["code"], p["shipment_id"]) for p in items] == [
        (a, f"{prefix}w1-000001"),
        (b, f"{prefix}w2-000001"),
    ]
    assert all(p["passed_at"].endswith(("Z", "+00:00")) for p in items)
    assert await summary(client, world.station, prefix) == {
        "pass_events": 2,
        "units": 2,
        "shipments": 2,
        "unit_shipments": 2,
    }


async def test_paging_returns_every_pass_once(client: httpx.AsyncClient, world: World) -> None:
    prefix = run_prefix()
    codes = [row["code"] for row in await issue_codes(client, world, 7)]
    for n, code in enumerate(codes):
        await claim(client, world, code, f"{prefix}w{n % 3}-{n:06d}")

    items, pages = await listed(client, world.station, prefix, limit=2)

    assert pages == 4
    assert sorted(p["code"] for p in items) == sorted(codes)
    keys = [(p["shipment_id"], p["code"]) for p in items]
    assert keys == sorted(keys)  # by shipment: a page boundary inside one shipment is fine


async def test_another_sites_passes_never_appear(client: httpx.AsyncClient, world: World) -> None:
    prefix = run_prefix()
    ours, theirs = (row["code"] for row in await issue_codes(client, world, 2))
    _, other_station = await make_station(client, world.admin)
    await claim(client, world, ours, f"{prefix}1")
    await claim(client, world, theirs, f"{prefix}1", station=other_station)

    assert [p["code"] for p in (await listed(client, world.station, prefix))[0]] == [ours]
    assert [p["code"] for p in (await listed(client, other_station, prefix))[0]] == [theirs]
    assert (await summary(client, world.station, prefix))["units"] == 1


async def test_a_unit_passed_twice_shows_more_events_than_units(
    client: httpx.AsyncClient, world: World
) -> None:
    prefix = run_prefix()
    (row,) = await issue_codes(client, world, 1)
    await claim(client, world, row["code"], f"{prefix}1")
    r = await client.post(
        "/v1/fulfilment/reversals",
        json={"scan": row["code"], "shipment_id": f"{prefix}1"},
        headers=bearer(world.station),
    )
    await expect(r, 200)
    await claim(client, world, row["code"], f"{prefix}2")

    items, _ = await listed(client, world.station, prefix)

    assert [p["code"] for p in items] == [row["code"], row["code"]]
    assert await summary(client, world.station, prefix) == {
        "pass_events": 2,
        "units": 1,
        "shipments": 2,
        "unit_shipments": 2,
    }


async def test_a_retry_for_the_same_shipment_is_an_event_but_not_a_second_move(
    client: httpx.AsyncClient, world: World
) -> None:
    prefix = run_prefix()
    (row,) = await issue_codes(client, world, 1)
    await claim(client, world, row["code"], f"{prefix}1")
    await claim(client, world, row["code"], f"{prefix}1")  # answered pass again, and logged

    assert await summary(client, world.station, prefix) == {
        "pass_events": 2,
        "units": 1,
        "shipments": 1,
        "unit_shipments": 1,
    }


async def test_a_short_prefix_is_refused(client: httpx.AsyncClient, world: World) -> None:
    for path in (PASSES, SUMMARY):
        r = await client.get(path, params={"shipment_prefix": "lt-"}, headers=bearer(world.station))
        assert r.status_code == 422, r.text
        assert r.headers["content-type"] == "application/problem+json"
        body = r.json()
        assert body["type"] == "/problems/shipment-prefix-too-short"
        assert body["errors"][0]["field"] == "shipment_prefix"


async def test_a_cursor_it_did_not_give_out_is_refused(
    client: httpx.AsyncClient, world: World
) -> None:
    for cursor in ("garbage", "eyJ4IjoxfQ=="):
        r = await client.get(
            PASSES,
            params={"shipment_prefix": "lt-run-", "cursor": cursor},
            headers=bearer(world.station),
        )
        assert r.status_code == 422, r.text
        assert r.json()["type"] == "/problems/invalid-input"


async def test_a_prefix_is_a_range_of_the_passes_index(dsn: str) -> None:
    """Both statements read the passes index of each partition, with the site and the prefix
    as its bounds: never a walk over the events of the site or the whole table."""
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "select c.relname from pg_inherits i join pg_class c on c.oid = i.inhrelid"
            " where i.inhparent = 'scan_events_passes_idx'::regclass"
        )
        ours = {r["relname"] for r in rows}
        # An empty test database: without this the planner rightly reads the tiny table.
        await conn.execute("set enable_seqscan = off; set plan_cache_mode = force_generic_plan")
        if await conn.fetchval("select exists (select from pg_extension where extname = 'citus')"):
            # On Citus each shard of each partition is read by a task on its node, from the
            # shard of the index (the index's name and the shard's id): every task's plan.
            await conn.execute("set citus.explain_all_tasks = on")
            shards = await conn.fetch(
                "select shard_name(i.inhrelid::regclass, s.shardid) as name"
                " from pg_inherits i join pg_index x on x.indexrelid = i.inhrelid"
                " join pg_dist_shard s on s.logicalrelid = x.indrelid"
                " where i.inhparent = 'scan_events_passes_idx'::regclass"
            )
            ours = {shard["name"] for shard in shards}
        site = uuid.uuid4()
        for statement, args in (
            (db.LIST, (site, "lt-a", "lt-b", "lt-a", uuid.UUID(int=0), 10)),
            (db.COUNT, (site, "lt-a", "lt-b")),
        ):
            plan = json.loads(await conn.fetchval(f"explain (format json) {statement}", *args))
            scans = list(index_scans(plan[0]["Plan"]))
            assert scans, plan
            assert {name for name, _ in scans} <= ours, plan
            for _, cond in scans:
                assert "site_id" in cond, plan
                assert "shipment_id" in cond, plan
    finally:
        await conn.close()


def index_scans(node: dict[str, Any]) -> Any:
    """(index name, index condition) of every index scan under ``node``."""
    if "Index Name" in node:
        yield node["Index Name"], node.get("Index Cond", "")
    for child in node.get("Plans", []):
        yield from index_scans(child)
    # Citus: the plan of each task, run on the node that holds its shard
    for task in node.get("Distributed Query", {}).get("Job", {}).get("Tasks", []):
        for remote in task.get("Remote Plan", []):
            for plan in remote:
                yield from index_scans(plan["Plan"])


async def test_any_text_as_a_prefix_is_answered_never_a_server_error(
    client: httpx.AsyncClient, world: World
) -> None:
    prefix = run_prefix()
    (row,) = await issue_codes(client, world, 1)
    edge = f"{prefix}\U0010ffff"  # nothing above it: a range open at the top
    await claim(client, world, row["code"], f"{edge}1")
    assert [p["code"] for p in (await listed(client, world.station, edge))[0]] == [row["code"]]
    for text in ("lt-\ud7ff", "ÿÿÿÿ", "|||||", "a" * 100):
        await listed(client, world.station, text)
        await summary(client, world.station, text)
    for bad in ("lt-\x00x", "a" * 101):
        r = await client.get(PASSES, params={"shipment_prefix": bad}, headers=bearer(world.station))
        assert r.status_code == 422, r.text


# Text PostgreSQL can store: no NUL, no lone surrogate; the top code point included.
TEXT = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"))


@given(prefix=TEXT.filter(lambda t: len(t) >= 4), rest=TEXT, other=TEXT)
@example(prefix="lt-\U0010ffff", rest="", other="lt-\U0010ffff\U0010ffff")
@example(prefix="\U0010ffff" * 4, rest="a", other="")
@example(prefix="lt-\ud7ff", rest="", other="lt-\ue000")
def test_a_prefix_range_holds_exactly_the_texts_starting_with_it(
    prefix: str, rest: str, other: str
) -> None:
    low, high = range_of(prefix)
    for text in (prefix + rest, other, prefix[:-1] + other, prefix + "\U0010ffff" + rest):
        inside = low <= text and (high is None or text < high)  # code-point order, as "C"
        assert inside == text.startswith(prefix), (prefix, text, high)
