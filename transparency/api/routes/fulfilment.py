"""Fulfilment checks (station keys): the hot path, served by lean routes (see ``lean.py``)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from transparency.api.deps import get_context, station_key
from transparency.api.fastpath.lean import LeanRoute, documented, header_doc, read_body, read_header
from transparency.api.schemas import (
    FulfilmentBatchIn,
    FulfilmentBatchOut,
    FulfilmentIn,
    FulfilmentReply,
)
from transparency.services import fulfilment

router = APIRouter(prefix="/v1/fulfilment", tags=["verification"], route_class=LeanRoute)

IDEMPOTENCY_KEY = "Idempotency-Key"
_KEY_LENGTH = 200
_IDEMPOTENCY_DOC = header_doc(
    IDEMPOTENCY_KEY,
    "A retry with the same key gets the first answer back; the same key with another"
    " request (scan, GTIN or shipment) is refused: /problems/idempotency-key-reused (422).",
    max_length=_KEY_LENGTH,
)


@router.post(
    "/verifications",
    response_model=FulfilmentReply,
    openapi_extra=documented(FulfilmentIn, _IDEMPOTENCY_DOC),
)
async def verify_unit(request: Request) -> JSONResponse:
    actor = await station_key(request)
    body = await read_body(request, FulfilmentIn)
    key = read_header(request, IDEMPOTENCY_KEY, max_length=_KEY_LENGTH)
    claim = fulfilment.Claim(body.scan, body.gtin)
    ctx = await get_context(request)
    # The service builds the reply in FulfilmentReply's shape (a test holds it to that).
    return JSONResponse(await fulfilment.verify_one(ctx, actor, claim, body.shipment_id, key))


@router.post(
    "/verifications/batch",
    response_model=FulfilmentBatchOut,
    openapi_extra=documented(FulfilmentBatchIn),
)
async def verify_units(request: Request) -> JSONResponse:
    actor = await station_key(request)
    body = await read_body(request, FulfilmentBatchIn)
    claims = [fulfilment.Claim(item.scan, item.gtin) for item in body.items]
    ctx = await get_context(request)
    return JSONResponse(
        {"results": await fulfilment.verify_many(ctx, actor, claims, body.shipment_id)}
    )
