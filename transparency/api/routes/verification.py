"""Reversals and returns (station keys), and photos of codes (a station or a customer)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request, UploadFile

from transparency.api.deps import (
    Ctx,
    OptionalKey,
    SettingsDep,
    StationKey,
    customer_limit,
    thresholds,
)
from transparency.api.schemas import (
    ReturnIn,
    ReversalIn,
    UnitStateOut,
)
from transparency.domain.lifecycle import UnitEvent
from transparency.services import fulfilment, photos

router = APIRouter(prefix="/v1", tags=["verification"])


@router.post("/fulfilment/reversals", response_model=UnitStateOut)
async def reverse(
    body: ReversalIn, ctx: Ctx, actor: StationKey, settings: SettingsDep
) -> dict[str, Any]:
    window = timedelta(days=settings.reversal_window_days)
    return await fulfilment.reverse(ctx, actor, body.scan, body.shipment_id, window)


@router.post("/fulfilment/returns", response_model=UnitStateOut)
async def take_back(body: ReturnIn, ctx: Ctx, actor: StationKey) -> dict[str, Any]:
    event = UnitEvent.RETURN if body.action == "return" else UnitEvent.RESTOCK
    return await fulfilment.take_back(ctx, actor, body.scan, event)


@router.post("/scans", tags=["public"])
async def scan_photo(
    image: UploadFile,
    request: Request,
    ctx: Ctx,
    settings: SettingsDep,
    actor: OptionalKey,
    gtin: Annotated[str | None, Form(max_length=14)] = None,
    shipment_id: Annotated[str | None, Form(max_length=100)] = None,
    region: Annotated[str | None, Form(pattern=r"^[A-Z]{2}$")] = None,
) -> dict[str, Any]:
    """A photo: every code in it, each checked as a customer (no key) or claimed (station)."""
    if actor is None:
        await customer_limit(request)
    found = await photos.scan_photo(
        ctx, request.app.state.scan_workers.get(), actor, await image.read(),
        gtin=gtin, shipment_id=shipment_id, region=region, thresholds=thresholds(settings),
        max_pixels=settings.scan_max_pixels, time_limit=settings.scan_timeout_seconds,
    )  # fmt: skip
    return {"codes": found}
