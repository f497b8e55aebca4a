"""Fixtures: a real PostgreSQL for the whole run, a fresh migrated database per test.

The server is the embedded one (pgserver) in a temporary directory, or the one named by
TEST_DATABASE_URL (which must allow CREATE DATABASE). A template database is migrated
once with the same ``migrate()`` the service uses; each test gets its own copy of it, so
tests are isolated from each other and pass in any order.

TEST_CITUS_URL names a Citus coordinator instead (deploy/citus.md): each test's database
is made on every node and migrated, distributed (tests/support/citus.py).
"""

from __future__ import annotations

import os
import shutil
import signal
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import httpx
import hypothesis
import pytest
from fastapi import FastAPI
from pydantic import SecretStr

from tests.support import citus
from tests.support.asgi import make_client
from tests.support.database import pg_home, with_database
from tests.support.served import Served, free_port
from tests.support.world import World, build_world
from transparency.api.app import create_app
from transparency.db.migrate import migrate
from transparency.domain.api_keys import new_api_key
from transparency.runtime.envelope import MasterKey
from transparency.runtime.settings import Settings
from transparency.serve import embedded
from transparency.serve.cli import prepare

CITUS_URL = os.environ.get("TEST_CITUS_URL")

# Fixture modules shared by several test files.
pytest_plugins = ["tests.support.scanner_images"]


def pytest_configure(config: pytest.Config) -> None:
    """Ctrl-C for the commands the tests start, however the suite itself was started.

    A shell runs a background job (`make test &`, nohup) with SIGINT ignored, and every
    process it starts inherits that; Python then installs no KeyboardInterrupt handler, and
    a station the tests stop with SIGINT ran on: test_station_restart failed in a
    backgrounded `.ci/run` and passed in a terminal. The default handler here is reset to
    the default action in each command the tests start.
    """
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture
def data_home() -> Iterator[Path]:
    """A data directory for a `transparency serve` a test starts."""
    path = pg_home()
    yield path / "data"
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def server_dsn() -> Iterator[str]:
    given = CITUS_URL or os.environ.get("TEST_DATABASE_URL")
    if given:
        yield given
        return
    home = pg_home()
    yield embedded.start(home / "pg")


@pytest.fixture(scope="session")
async def template_db(server_dsn: str) -> AsyncIterator[str]:
    name = f"tp_template_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(server_dsn)
    try:
        await admin.execute(f'create database "{name}"')
        conn = await asyncpg.connect(with_database(server_dsn, name))
        try:
            await migrate(conn)
        finally:
            await conn.close()
        yield name
        await admin.execute(f'drop database if exists "{name}" with (force)')
    finally:
        await admin.close()


@pytest.fixture
async def empty_dsn(server_dsn: str) -> AsyncIterator[str]:
    """A new, empty database (no migrations applied)."""
    name = f"tp_test_{uuid.uuid4().hex[:12]}"
    if CITUS_URL:
        async with citus.database(server_dsn, name) as url:
            yield url
        return
    admin = await asyncpg.connect(server_dsn)
    try:
        await admin.execute(f'create database "{name}"')
        yield with_database(server_dsn, name)
        await admin.execute(f'drop database if exists "{name}" with (force)')
    finally:
        await admin.close()


@pytest.fixture
async def dsn(server_dsn: str, template_db: str) -> AsyncIterator[str]:
    """A new database with every migration applied."""
    name = f"tp_test_{uuid.uuid4().hex[:12]}"
    if CITUS_URL:
        async with citus.database(server_dsn, name) as url:
            conn = await asyncpg.connect(url)
            try:
                await migrate(conn)
            finally:
                await conn.close()
            yield url
        return
    admin = await asyncpg.connect(server_dsn)
    try:
        await admin.execute(f'create database "{name}" template "{template_db}"')
        yield with_database(server_dsn, name)
        await admin.execute(f'drop database if exists "{name}" with (force)')
    finally:
        await admin.close()


@pytest.fixture
def settings(dsn: str, tmp_path: Path) -> Settings:
    return Settings(
        database_url=SecretStr(dsn),
        master_key=SecretStr(MasterKey.generate_text()),
        data_dir=tmp_path,
        max_body_bytes=262_144,
        job_chunk_size=1000,
        # Not the default: a threshold that failed to reach the service would show.
        clone_max_scans_after_shipping=3,
    )


@pytest.fixture
async def admin_key(settings: Settings) -> str:
    """The first admin key, made by the same bootstrap `transparency serve` runs."""
    _, key = await prepare(settings)
    assert key is not None
    return key


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    async with application.router.lifespan_context(application) as state:
        application.state.lifespan_state = state
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with make_client(app) as http:
        yield http


@pytest.fixture
async def world(client: httpx.AsyncClient, admin_key: str) -> World:
    return await build_world(client, admin_key)


# Speed is measured by the benchmarks, not by tests: no per-example deadline, which a busy
# two-core machine would otherwise trip at random.
hypothesis.settings.register_profile("project", deadline=None)
hypothesis.settings.load_profile("project")


@pytest.fixture
def served(data_home: Path) -> Iterator[tuple[Served, str]]:
    """A real `transparency serve` (embedded PostgreSQL) and its admin key, its data where
    PostgreSQL's own user may read it (data_home), as every other served test's."""
    admin = str(new_api_key())
    service = Served(
        data_home, free_port(), TRANSPARENCY_ADMIN_KEY=admin, TRANSPARENCY_LOG_LEVEL="ERROR"
    )
    try:
        service.wait_ready()
        yield service, admin
    finally:
        code, _, err = service.stop()
        assert code == 0, err


@pytest.fixture(autouse=True)
def _no_service_outlives_its_test() -> Iterator[None]:
    before = list(Served.running)  # services of wider-scoped fixtures stay up
    yield
    for served in [s for s in Served.running if s not in before]:
        if served.proc.poll() is None:
            served.proc.kill()
        served.finish()
