"""Brand use cases on code batches: queue an issuance job, follow it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from uuid import UUID, uuid4

import asyncpg

from transparency.db import audit, batches, products
from transparency.domain.codes import CodeFormat
from transparency.domain.errors import LimitExceeded, NotFound, NotReady
from transparency.domain.identity import Principal, Role
from transparency.domain.models import Product
from transparency.runtime.jobs import JobRunner, options_for_issue
from transparency.runtime.keyring import KeyRing
from transparency.services.keys import ensure_active


@dataclass(frozen=True, slots=True)
class Batch:
    id: UUID
    product_id: UUID
    kind: str
    format: CodeFormat
    status: str
    requested: int
    progress: int
    lot: str | None
    expiry: date | None
    attributes: dict[str, Any]
    report: dict[str, Any] | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    error: str | None
    key_id: int | None
    brand_id: UUID

    @classmethod
    def of(cls, row: asyncpg.Record) -> Batch:
        fields = {k: row[k] for k in cls.__dataclass_fields__ if k in row.keys()}  # noqa: SIM118
        return cls(
            **{**fields, "format": CodeFormat(row["format"])},
            key_id=row["options"].get("key_id"),
        )


async def brand_product(pool: asyncpg.Pool, actor: Principal, product_id: UUID) -> Product:
    actor.require(Role.BRAND)
    product = await products.get(pool, product_id)
    if product is None or product.brand_id != actor.brand_id:
        raise NotFound(f"no product {product_id}")
    return product


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
) -> Batch:
    product = await brand_product(pool, actor, product_id)
    async with pool.acquire() as conn, conn.transaction():
        if await batches.lock_brand_jobs(conn, product.brand_id) >= max_jobs:
            raise LimitExceeded(
                f"this brand already has {max_jobs} batches queued or running; retry when"
                " one is done",
                retry_after=10,
            )
        key = await ensure_active(conn, keyring, product.brand_id)
        row = await batches.insert(
            conn,
            batch_id=uuid4(),
            brand_id=product.brand_id,
            product_id=product.id,
            kind="issue",
            format=format.value,
            requested=count,
            lot=lot,
            expiry=expiry,
            attributes=attributes,
            options=options_for_issue(key.id),
        )
        await audit.record(
            conn, api_key_id=actor.key_id, action="batch.create", target=str(row["id"]),
            brand_id=product.brand_id, detail={"count": count, "format": format.value},
        )  # fmt: skip
    runner.wake()
    return Batch.of(row)


async def get_batch(pool: asyncpg.Pool, actor: Principal, batch_id: UUID) -> Batch:
    actor.require(Role.BRAND)
    row = await batches.get(pool, batch_id)
    if row is None or row["brand_id"] != actor.brand_id:
        raise NotFound(f"no batch {batch_id}")
    return Batch.of(row)


async def finished_batch(pool: asyncpg.Pool, actor: Principal, batch_id: UUID) -> Batch:
    """A batch whose codes can be downloaded, or NotReady while its job runs."""
    batch = await get_batch(pool, actor, batch_id)
    if batch.status != "done":
        raise NotReady(f"batch {batch_id} is {batch.status}; its codes are not ready")
    return batch
