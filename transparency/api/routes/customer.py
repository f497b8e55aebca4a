"""Customer verification (no key, rate-limited per address): lean routes (see ``lean.py``).

After the stations' checks, a customer's scan is the request this service answers most.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from transparency.api.deps import customer_limit, get_context, get_settings, thresholds
from transparency.api.fastpath.lean import LeanRoute, documented, query_docs, read_body, read_query
from transparency.api.schemas import CustomerAnswer, CustomerQuery, VerifyIn
from transparency.services import customer

router = APIRouter(prefix="/v1", tags=["verification", "public"], route_class=LeanRoute)


@router.get(
    "/verify",
    response_model=CustomerAnswer,
    openapi_extra=documented(None, *query_docs(CustomerQuery)),
)
async def verify_code(request: Request) -> JSONResponse:
    await customer_limit(request)
    query = await read_query(request, CustomerQuery)
    return await _answer(request, query.code, query.region)


@router.post("/verify", response_model=CustomerAnswer, openapi_extra=documented(VerifyIn))
async def verify_scan(request: Request) -> JSONResponse:
    await customer_limit(request)
    body = await read_body(request, VerifyIn)
    return await _answer(request, body.scan, body.region)


async def _answer(request: Request, scan: str, region: str | None) -> JSONResponse:
    ctx = await get_context(request)
    limits = thresholds(await get_settings(request))
    # The service builds the answer in CustomerAnswer's shape (a test holds it to that).
    return JSONResponse((await customer.verify(ctx, scan, region, limits)).as_json())
