"""A claim whose database connection dies mid-statement changes nothing; a retry passes."""

from __future__ import annotations

import asyncio

import asyncpg
import httpx

from tests.support.world import World, bearer, issue_codes


async def test_a_claim_cut_off_mid_transaction_leaves_the_unit_active(
    client: httpx.AsyncClient, world: World, dsn: str
) -> None:
    (row,) = await issue_codes(client, world, 1)
    body = {"scan": row["code"], "gtin": world.product_a["gtin"], "shipment_id": "S-1"}
    holder = await asyncpg.connect(dsn)
    killer = await asyncpg.connect(dsn)
    try:
        # Hold the unit's row so that the claim waits inside its transaction.
        transaction = holder.transaction()
        await transaction.start()
        await holder.execute("select 1 from units where code = $1 for update", row["code"])
        request = asyncio.create_task(
            client.post("/v1/fulfilment/verifications", json=body, headers=bearer(world.station))
        )
        # The backend running the claim's transaction, waiting for the row: on Citus the
        # worker's that runs the claim function (named by its global pid), not the
        # coordinator's, which only waits for the worker's answer.
        citus = await killer.fetchval(
            "select exists (select from pg_extension where extname = 'citus')"
        )
        waiting = (
            "select global_pid from citus_stat_activity where wait_event_type = 'Lock'"
            " and query like '%claim_unit(%' and datname = current_database()"
            if citus
            else "select pid from pg_stat_activity where wait_event_type = 'Lock'"
            " and query like '%for update of u%' and datname = current_database()"
        )
        pid = None
        for _ in range(200):
            pid = await killer.fetchval(waiting)
            if pid:
                break
            await asyncio.sleep(0.02)
        assert pid, "the claim never reached the database"
        terminate = "select pg_terminate_backend($1::{})".format("bigint" if citus else "int")
        assert await killer.fetchval(terminate, pid)
        response = await request
        await transaction.rollback()
        assert response.status_code == 503
        assert response.json()["type"] == "/problems/unavailable"
        assert response.headers["retry-after"]
        state = await killer.fetchval("select state::text from units where code = $1", row["code"])
        events = await killer.fetchval(
            "select count(*) from scan_events where code = $1", row["code"]
        )
        assert (state, events) == ("active", 0)
    finally:
        await holder.close()
        await killer.close()
    retry = await client.post(
        "/v1/fulfilment/verifications", json=body, headers=bearer(world.station)
    )
    assert retry.json()["result"] == "pass"
