"""Reversals and returns (station keys), and photos of codes (a station or a customer)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field, ValidationError
from python_multipart.multipart import parse_options_header
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import ClientDisconnect

from transparency.api.deps import (
    Ctx,
    OptionalKey,
    SettingsDep,
    StationKey,
    customer_of,
    thresholds,
)
from transparency.api.schemas import (
    ReturnIn,
    ReversalIn,
    UnitStateOut,
)
from transparency.domain.errors import InvalidInput
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
async def take_back(
    body: ReturnIn, ctx: Ctx, actor: StationKey, settings: SettingsDep
) -> dict[str, Any]:
    event = UnitEvent.RETURN if body.action == "return" else UnitEvent.RESTOCK
    window = timedelta(days=settings.reversal_window_days)
    return await fulfilment.take_back(ctx, actor, body.scan, event, body.shipment_id, window)


_PHOTO_FORM: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["image"],
                    "properties": {
                        "image": {"type": "string", "format": "binary"},
                        "gtin": {"type": "string", "maxLength": 14},
                        "shipment_id": {"type": "string", "maxLength": 100},
                        "region": {"type": "string", "pattern": "^[A-Z]{2}$"},
                    },
                }
            }
        },
    }
}


class PhotoFields(BaseModel):
    gtin: str | None = Field(None, max_length=14)
    shipment_id: str | None = Field(None, max_length=100)
    region: str | None = Field(None, pattern=r"^[A-Z]{2}$")


@router.post("/scans", tags=["public"], openapi_extra=_PHOTO_FORM)
async def scan_photo(
    request: Request, ctx: Ctx, settings: SettingsDep, actor: OptionalKey
) -> dict[str, Any]:
    """A photo: every code in it, each checked as a customer (no key) or claimed (station).

    The body is read only once the customer's first token is taken and the decoders' queue
    has room, so a refused photo (429, 503) costs no parsing; each distinct code found
    past the first costs one more token."""
    decoders = request.app.state.scan_workers
    charge = _customer_budget(request) if actor is None else None
    photos.admit(decoders, settings.scan_timeout_seconds)
    content, form = await _read_photo(request)
    found = await photos.scan_photo(
        ctx, decoders, actor, content,
        gtin=form.gtin, shipment_id=form.shipment_id, region=form.region,
        thresholds=thresholds(settings), max_pixels=settings.scan_max_pixels,
        time_limit=settings.scan_timeout_seconds, charge=charge,
    )  # fmt: skip
    return {"codes": found}


def _customer_budget(request: Request) -> Callable[[int], None]:
    """Take the photo's first token now; the returned function takes one more for each
    distinct code found past the first (all or none: 429 refuses the photo)."""
    limiter = request.app.state.customer_limiter
    client = customer_of(request)
    limiter.hit(client)

    def charge(codes: int) -> None:
        if codes > 1:
            limiter.hit(client, tokens=codes - 1)

    return charge


class _PhotoForm(MultiPartParser):
    """A photo form parsed in memory: the image is read whole right after, and the body
    limit bounds it. Starlette spools a file past 1 MB to disk, and read it back: hostile
    photos of 1.3 MB each kept the disk's writeback busy, a core's worth of kernel time
    taken from the claims (bench_faults.py)."""

    spool_max_size = 1 << 40


async def _read_photo(request: Request) -> tuple[bytes, PhotoFields]:
    """The form's image and fields; a bad form raises what FastAPI raises for one."""
    media, _ = parse_options_header(request.headers.get("content-type"))
    try:
        if media == b"multipart/form-data":
            form = await _PhotoForm(
                request.headers, request.stream(), max_files=1, max_fields=10
            ).parse()
        else:  # no photo in it: answered as a form without its image
            form = await request.form(max_files=1, max_fields=10)
    except MultiPartException as exc:  # a malformed multipart body
        raise InvalidInput(f"not a multipart form: {exc.message}", field="image") from exc
    except HTTPException as exc:  # Starlette's answer to a malformed form
        raise InvalidInput(f"not a multipart form: {exc.detail}", field="image") from exc
    except ClientDisconnect as exc:
        raise InvalidInput("the request body was cut off") from exc
    try:
        image = form.get("image")
        if not isinstance(image, UploadFile):
            missing = {"type": "missing", "loc": ("body", "image"), "msg": "Field required"}
            raise RequestValidationError([{**missing, "input": None}])
        texts = {name: value for name, value in form.items() if isinstance(value, str)}
        try:
            fields = PhotoFields.model_validate(texts)
        except ValidationError as exc:
            errors = [{**err, "loc": ("body", *err["loc"])} for err in exc.errors()]
            raise RequestValidationError(errors) from exc
        return await image.read(), fields
    finally:
        await form.close()
