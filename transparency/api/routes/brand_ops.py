"""Brand endpoints after issuance: withdraw units, a unit's history, the dashboard, the
forged scans of the brand's codes."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query

from transparency.api.deps import AnyKey, BrandKey, Keys, Pool
from transparency.api.schemas import (
    DashboardOut,
    ForgedScanOut,
    ForgedScanPage,
    WithdrawIn,
    WithdrawOut,
)
from transparency.services import brand_ops

router = APIRouter(prefix="/v1", tags=["brand operations"])


@router.post("/units/actions", response_model=WithdrawOut)
async def withdraw(body: WithdrawIn, pool: Pool, keyring: Keys, actor: BrandKey) -> WithdrawOut:
    moved = await brand_ops.withdraw(pool, keyring, actor, **body.model_dump())
    return WithdrawOut(action=body.action, units=moved)


@router.get("/codes/{code:path}/history")
async def history(code: str, pool: Pool, keyring: Keys, actor: BrandKey) -> dict[str, Any]:
    return await brand_ops.history(pool, keyring, actor, code)


@router.get("/brands/{brand_id}/dashboard", response_model=DashboardOut)
async def dashboard(
    brand_id: UUID,
    pool: Pool,
    actor: AnyKey,
    first: Annotated[date | None, Query(alias="from")] = None,
    last: Annotated[date | None, Query(alias="to")] = None,
) -> dict[str, Any]:
    """The brand's counts per product and day (UTC), the last 30 days by default: codes
    issued, passed and blocked at fulfilment, customers' checks and reports, suspicious
    units; and the forged scans of its codes."""
    return await brand_ops.dashboard(pool, actor, brand_id, first, last)


@router.get("/forged-scans", response_model=ForgedScanPage)
async def forged_scans(
    pool: Pool,
    actor: BrandKey,
    since: Annotated[
        datetime | None, Query(description="The oldest time to list (with its time zone).")
    ] = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> ForgedScanPage:
    """Scans of codes naming one of the brand's key ids with a wrong tag or signature,
    newest first; follow ``next_cursor`` for older ones."""
    page, next_cursor = await brand_ops.forged_scans(
        pool, actor, since=since, cursor=cursor, limit=limit
    )
    return ForgedScanPage(
        items=[ForgedScanOut.model_validate(f) for f in page], next_cursor=next_cursor
    )
