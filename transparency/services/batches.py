"""Brand use cases on code batches: queue an issuance job, follow it."""

from __future__ import annotations

from datetime import date
from typing import Any
from uuid import UUID, uuid4

import asyncpg

from transparency.db import audit, batches
from transparency.domain.batches import Batch, BatchStatus, JobKind, issue_options
from transparency.domain.codes import CodeFormat
from transparency.domain.errors import LimitExceeded, NotFound, NotReady
from transparency.domain.identity import Principal, Role
from transparency.runtime.jobs import JobRunner
from transparency.runtime.keyring import KeyRing
from transparency.services.keys import ensure_active
from transparency.services.products import get_product


async def create_issue_batch(
    pool: asyncpg.Pool,
    keyring: KeyRing,
    runner: JobRunner,
    actor: Principal,
    product_id: UUID,
    *,
    count: int,
    format: CodeFormat,
    lot: str | None,
    expiry: date | None,
    attributes: dict[str, Any],
    max_jobs: int,
    max_keys_per_day: int,
) -> Batch:
    product = await get_product(pool, actor, product_id)
    async with pool.acquire() as conn, conn.transaction():
        if await batches.lock_brand_jobs(conn, product.brand_id) >= max_jobs:
            raise LimitExceeded(
                f"this brand already has {max_jobs} batches queued or running; retry when"
                " one is done",
                retry_after=10,
            )
        key = await ensure_active(conn, keyring, product.brand_id, max_per_day=max_keys_per_day)
        batch = await batches.insert(
            conn,
            batch_id=uuid4(),
            brand_id=product.brand_id,
            product_id=product.id,
            kind=JobKind.ISSUE,
            format=format,
            requested=count,
            lot=lot,
            expiry=expiry,
            attributes=attributes,
            options=issue_options(key.id),
        )
        await audit.record(
            conn, api_key_id=actor.key_id, action="batch.create", target=str(batch.id),
            brand_id=product.brand_id, detail={"count": count, "format": format.value},
        )  # fmt: skip
    runner.wake()
    return batch


async def get_batch(pool: asyncpg.Pool, actor: Principal, batch_id: UUID) -> Batch:
    actor.require(Role.BRAND)
    assert actor.brand_id is not None
    batch = await batches.get_owned(pool, actor.brand_id, batch_id)
    if batch is None:
        raise NotFound(f"no batch {batch_id}")
    return batch


async def finished_batch(pool: asyncpg.Pool, actor: Principal, batch_id: UUID) -> Batch:
    """A batch whose codes can be downloaded, or NotReady while its job runs."""
    batch = await get_batch(pool, actor, batch_id)
    if batch.status is not BatchStatus.DONE:
        raise NotReady(f"batch {batch_id} is {batch.status}; its codes are not ready")
    return batch
