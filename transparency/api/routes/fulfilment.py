"""Fulfilment checks (station keys): the hot path, served by lean routes (see ``lean.py``);
and the passes a station reads back, served as ordinary routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

from transparency.api.deps import Pool, StationKey, get_context, station_key
from transparency.api.fastpath.lean import LeanRoute, documented, header_doc, read_body, read_header
from transparency.api.schemas import (
    FulfilmentBatchIn,
    FulfilmentBatchOut,
    FulfilmentIn,
    FulfilmentReply,
    PassOut,
    PassPage,
    PassSummaryOut,
)
from transparency.services import fulfilment, passes

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


Prefix = Annotated[
    str,
    Query(
        max_length=100,
        description="Shipment ids starting with this text (at least 4 characters):"
        " /problems/shipment-prefix-too-short (422) otherwise.",
    ),
]


async def list_passes(
    pool: Pool,
    actor: StationKey,
    shipment_prefix: Prefix,
    cursor: Annotated[str | None, Query(max_length=300)] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> PassPage:
    """The passes recorded at the caller's site for shipments under a prefix, by shipment;
    follow ``next_cursor`` for the next page."""
    found, next_cursor = await passes.page(pool, actor, shipment_prefix, cursor, limit)
    return PassPage(items=[PassOut.model_validate(p) for p in found], next_cursor=next_cursor)


async def pass_summary(pool: Pool, actor: StationKey, shipment_prefix: Prefix) -> PassSummaryOut:
    """How many pass events, distinct units and shipments the caller's site recorded under a
    prefix: a unit passed twice shows as more events than units."""
    return PassSummaryOut.model_validate(await passes.summary(pool, actor, shipment_prefix))


# Reads, not the hot path: FastAPI's own routes (queries parsed and validated for them),
# outside the fast lane, which serves lean routes only.
for path, endpoint, model in (
    ("/passes", list_passes, PassPage),
    ("/passes/summary", pass_summary, PassSummaryOut),
):
    router.add_api_route(
        path, endpoint, methods=["GET"], response_model=model, route_class_override=APIRoute
    )
