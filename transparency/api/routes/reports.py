"""Customers' reports: a customer sends one (no key, the customer budget), its brand reads."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, File, Form, Query, Response, UploadFile

from transparency.api.deps import AnyKey, Ctx, CustomerLimit, Pool
from transparency.api.schemas import ReportOut, ReportPage
from transparency.services import reports

router = APIRouter(prefix="/v1/reports", tags=["reports"])


@router.post("", status_code=201, response_model=ReportOut)
async def submit(
    _: CustomerLimit,
    ctx: Ctx,
    code: Annotated[str, Form(max_length=4096)],
    place: Annotated[str, Form(max_length=500)],
    region: Annotated[str | None, Form(max_length=2)] = None,
    note: Annotated[str | None, Form(max_length=2000)] = None,
    photo: Annotated[UploadFile | None, File()] = None,
) -> ReportOut:
    """Report a product whose code did not check out (multipart form; the photo optional)."""
    image = await photo.read() if photo is not None else None
    report = await reports.submit(ctx, code, place=place, region=region, note=note, photo=image)
    return ReportOut.of(report)


@router.get("", response_model=ReportPage)
async def list_reports(
    pool: Pool,
    actor: AnyKey,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> ReportPage:
    """The caller's brand's reports, newest first (an admin key: every report)."""
    page, next_cursor = await reports.list_reports(pool, actor, cursor=cursor, limit=limit)
    return ReportPage(items=[ReportOut.of(r) for r in page], next_cursor=next_cursor)


@router.get("/{report_id}/photo", response_class=Response)
async def photo(report_id: UUID, pool: Pool, actor: AnyKey) -> Response:
    data, media_type = await reports.photo(pool, actor, report_id)
    # The type is the one its bytes showed (reports.photo_type), never the sender's claim.
    return Response(
        data,
        media_type=media_type,
        headers={"X-Content-Type-Options": "nosniff", "Content-Disposition": "attachment"},
    )
