"""EPCIS 2.0 REST binding (capture and the simple event query) under ``/v1/epcis``, for
brand keys: each brand captures and reads its own events only."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlencode
from uuid import UUID

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from transparency.api.deps import BrandKey, Pool, Runner
from transparency.domain.epcis_events import CaptureJob
from transparency.services import epcis

router = APIRouter(prefix="/v1/epcis", tags=["epcis"])
MAX_BYTES = epcis.CAPTURE_FILE_SIZE_LIMIT  # the body limit of /v1/epcis/capture

LIMITS = {
    "GS1-EPCIS-Capture-Limit": str(epcis.CAPTURE_LIMIT),
    "GS1-EPCIS-Capture-File-Size-Limit": str(epcis.CAPTURE_FILE_SIZE_LIMIT),
}
_CAPTURE_BODY = {
    "requestBody": {
        "required": True,
        "content": {m: {"schema": {"type": "object"}} for m in epcis.JSON_TYPES + epcis.XML_TYPES},
    }
}


class CaptureJobOut(BaseModel):
    """The REST binding's capture job."""

    captureID: str
    createdAt: datetime
    finishedAt: datetime | None
    running: bool
    success: bool
    captureErrorBehaviour: str
    errors: list[dict[str, Any]]
    events: int
    captured: int
    duplicates: int

    @classmethod
    def of(cls, job: CaptureJob) -> CaptureJobOut:
        return cls(
            captureID=str(job.id), createdAt=job.created_at, finishedAt=job.finished_at,
            running=job.running, success=job.success, captureErrorBehaviour=job.error_behaviour,
            errors=job.errors, events=job.events, captured=job.captured,
            duplicates=job.duplicates,
        )  # fmt: skip


@router.options("/capture", status_code=204)
async def capture_limits(response: Response) -> None:
    response.headers.update(LIMITS)


@router.post("/capture", status_code=202, response_model=CaptureJobOut, openapi_extra=_CAPTURE_BODY)
async def capture(
    request: Request,
    response: Response,
    pool: Pool,
    runner: Runner,
    actor: BrandKey,
    behaviour: Annotated[str, Header(alias="GS1-Capture-Error-Behaviour")] = "rollback",
) -> CaptureJobOut:
    data = await epcis.read_body(request.stream(), epcis.CAPTURE_FILE_SIZE_LIMIT)
    job = await epcis.start_capture(
        pool, runner, actor, data=data, content_type=request.headers.get("content-type"),
        error_behaviour=behaviour,
    )  # fmt: skip
    response.headers.update({**LIMITS, "Location": f"/v1/epcis/capture/{job.id}"})
    return CaptureJobOut.of(job)


@router.get("/capture", response_model=list[CaptureJobOut])
async def captures(
    pool: Pool,
    actor: BrandKey,
    perPage: Annotated[int, Query(ge=1, le=100)] = 30,
) -> list[CaptureJobOut]:
    return [CaptureJobOut.of(job) for job in await epcis.list_captures(pool, actor, perPage)]


@router.get("/capture/{capture_id}", response_model=CaptureJobOut)
async def capture_job(capture_id: UUID, pool: Pool, actor: BrandKey) -> CaptureJobOut:
    return CaptureJobOut.of(await epcis.get_capture(pool, actor, capture_id))


@router.post("/events", status_code=201)
async def capture_event(request: Request, pool: Pool, actor: BrandKey) -> JSONResponse:
    data = await epcis.read_body(request.stream(), epcis.CAPTURE_FILE_SIZE_LIMIT)
    event_id, new = await epcis.capture_one(pool, actor, data, request.headers.get("content-type"))
    return JSONResponse({"eventID": event_id}, status_code=201 if new else 200)


def _page(request: Request, document: dict[str, Any], token: str | None) -> Response:
    headers = {}
    if token is not None:
        params = [(k, v) for k, v in request.query_params.multi_items() if k != "nextPageToken"]
        link = f"{request.url.path}?{urlencode([*params, ('nextPageToken', token)])}"
        headers["Link"] = f'<{link}>; rel="next"'
    xml, media = epcis.render(document, request.headers.get("accept"))
    if xml is not None:
        return Response(xml, media_type=media, headers=headers)
    return JSONResponse(document, media_type=media, headers=headers)


@router.get("/events")
async def events(request: Request, pool: Pool, actor: BrandKey) -> Response:
    params = request.query_params.multi_items()
    document, token = await epcis.query_events(pool, actor, params)
    return _page(request, document, token)


@router.get("/epcs/{epc:path}/events")
async def epc_events(epc: str, request: Request, pool: Pool, actor: BrandKey) -> Response:
    params = request.query_params.multi_items()
    document, token = await epcis.query_events(pool, actor, params, epc=epc)
    return _page(request, document, token)
