"""Test databases on a Citus cluster: TEST_CITUS_URL names the coordinator's maintenance
database, where the workers are registered (deploy/citus.md).

A Citus database cannot be copied from a template (its shards live on the workers, and
each node's maintenance daemon holds a connection to it), so every test's database is
made on each node, given the extension and the nodes, then migrated: 0030_citus.sql
distributes the schema as it would in production.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from tests.support.database import with_database


def _on(url: str, host: str, port: int) -> str:
    parts = urlsplit(url)
    login = parts.netloc.rpartition("@")[0]
    return urlunsplit(
        parts._replace(netloc=f"{login}@{host}:{port}" if login else f"{host}:{port}")
    )


async def _execute(url: str, sql: str, *args: object) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(sql, *args)
    finally:
        await conn.close()


@asynccontextmanager
async def database(url: str, name: str) -> AsyncIterator[str]:
    """A new database ``name`` on every node of the cluster, with citus and its nodes (no
    migrations); dropped on every node afterwards."""
    admin = await asyncpg.connect(url)
    try:
        nodes = await admin.fetch(
            "select groupid = 0 as coordinator, nodename, nodeport from pg_dist_node"
            " where noderole = 'primary' and isactive order by groupid"
        )
    finally:
        await admin.close()
    coordinator, *workers = nodes
    assert coordinator["coordinator"], "TEST_CITUS_URL must name the coordinator"
    urls = [url] + [_on(url, w["nodename"], w["nodeport"]) for w in workers]
    for node in urls:
        await _execute(node, f'create database "{name}"')
        await _execute(with_database(node, name), "create extension citus")
    try:
        here = with_database(url, name)
        await _execute(
            here,
            "select citus_set_coordinator_host($1, $2)",
            coordinator["nodename"],
            coordinator["nodeport"],
        )
        for w in workers:
            await _execute(here, "select citus_add_node($1, $2)", w["nodename"], w["nodeport"])
        yield here
    finally:
        for node in urls:
            await _execute(node, f'drop database if exists "{name}" with (force)')
