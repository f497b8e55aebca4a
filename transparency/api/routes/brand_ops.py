"""Brand endpoints after issuance: withdraw units, a unit's history, the dashboard."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query

from transparency.api.deps import AnyKey, BrandKey, Keys, Pool
from transparency.api.schemas import WithdrawIn, WithdrawOut
from transparency.services import brand_ops

router = APIRouter(prefix="/v1", tags=["brand operations"])


@router.post("/units/actions", response_model=WithdrawOut)
async def withdraw(body: WithdrawIn, pool: Pool, keyring: Keys, actor: BrandKey) -> WithdrawOut:
    moved = await brand_ops.withdraw(pool, keyring, actor, **body.model_dump())
    return WithdrawOut(action=body.action, units=moved)


@router.get("/codes/{code:path}/history")
async def history(code: str, pool: Pool, keyring: Keys, actor: BrandKey) -> dict[str, Any]:
    return await brand_ops.history(pool, keyring, actor, code)


@router.get("/brands/{brand_id}/dashboard")
async def dashboard(
    brand_id: UUID,
    pool: Pool,
    actor: AnyKey,
    first: Annotated[date | None, Query(alias="from")] = None,
    last: Annotated[date | None, Query(alias="to")] = None,
) -> dict[str, Any]:
    return await brand_ops.dashboard(pool, actor, brand_id, first, last)
