"""Brand endpoints on code batches, and signing keys (brand and public)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal
from urllib.parse import urlencode
from uuid import UUID

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import StreamingResponse

from transparency.api.deps import BrandKey, Keys, Pool, Runner, SettingsDep, SlowResponse
from transparency.api.schemas import (
    BatchIn,
    BatchOut,
    PublicKeyList,
    PublicKeyOut,
    PublicKeyPage,
    RevokeIn,
)
from transparency.domain.codes import MAX_KEY_ID
from transparency.domain.errors import InvalidInput, NotFound
from transparency.domain.imports import ImportKind, ImportMode
from transparency.labels.content import Gs1Symbol, LabelLine, Language
from transparency.labels.sheets import DEFAULT_PRESET, Preset, layout_of
from transparency.services import batches, exports, imports, keys

router = APIRouter(prefix="/v1", tags=["codes"])

_MEDIA = {"csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson"}


@router.post("/products/{product_id}/code-batches", status_code=202, response_model=BatchOut)
async def create_batch(
    product_id: UUID,
    body: BatchIn,
    response: Response,
    pool: Pool,
    keyring: Keys,
    runner: Runner,
    settings: SettingsDep,
    actor: BrandKey,
) -> BatchOut:
    batch = await batches.create_issue_batch(
        pool, keyring, runner, actor, product_id, **body.model_dump(),
        max_jobs=settings.max_jobs_per_brand, max_keys_per_day=settings.max_signing_keys_per_day,
    )  # fmt: skip
    response.headers["Location"] = f"/v1/code-batches/{batch.id}"
    return BatchOut.of(batch)


@router.get("/code-batches/{batch_id}", response_model=BatchOut)
async def get_batch(batch_id: UUID, pool: Pool, actor: BrandKey) -> BatchOut:
    return BatchOut.of(await batches.get_batch(pool, actor, batch_id))


@router.get("/code-batches/{batch_id}/codes.{kind}", response_class=StreamingResponse)
async def download_codes(
    batch_id: UUID,
    kind: str,
    pool: Pool,
    keyring: Keys,
    settings: SettingsDep,
    actor: BrandKey,
) -> StreamingResponse:
    if kind not in _MEDIA:
        raise NotFound(f"no file codes.{kind}")
    stream = await exports.batch_file(pool, keyring, actor, batch_id, settings.public_url, kind)
    disposition = f'attachment; filename="{batch_id}.{kind}"'
    return StreamingResponse(
        stream, media_type=_MEDIA[kind], headers={"Content-Disposition": disposition}
    )


async def get_renders(request: Request) -> exports.Renders:
    renders: exports.Renders = request.app.state.label_renders
    return renders


Renders = Annotated[exports.Renders, Depends(get_renders)]


@router.get("/code-batches/{batch_id}/labels.{kind}", response_class=StreamingResponse)
async def download_labels(
    batch_id: UUID,
    kind: str,
    pool: Pool,
    keyring: Keys,
    renders: Renders,
    settings: SettingsDep,
    actor: BrandKey,
    _: SlowResponse,
    preset: Annotated[Preset, Query(description="Label stock; the fields below change it.")] = (
        DEFAULT_PRESET
    ),
    page: Literal["A4", "Letter", "roll"] | None = None,
    label_width_mm: Annotated[float | None, Query(ge=15, le=300)] = None,
    label_height_mm: Annotated[float | None, Query(ge=15, le=300)] = None,
    columns: Annotated[int | None, Query(ge=0, le=20)] = None,
    rows: Annotated[int | None, Query(ge=0, le=40)] = None,
    cut_marks: bool | None = None,
    images: Literal["png", "svg"] = "png",
    language: Annotated[Language, Query(description="Of the call to action.")] = Language.EN,
    line: Annotated[
        list[LabelLine], Query(description="Lines to print under the code, if the unit has them.")
    ] = [],  # noqa: B006 - FastAPI copies a default list per request
    symbol: Annotated[
        Gs1Symbol,
        Query(
            description="A GS1 batch's symbol: its Digital Link URI in a QR code, or its"
            " element string in a GS1 DataMatrix."
        ),
    ] = Gs1Symbol.QR,
) -> StreamingResponse:
    if kind not in ("pdf", "zip"):
        raise NotFound(f"no file labels.{kind}")
    try:
        layout = layout_of(
            preset, page=page, label_w_mm=label_width_mm, label_h_mm=label_height_mm,
            columns=columns, rows=rows, cut_marks=cut_marks,
        )  # fmt: skip
    except ValueError as exc:
        raise InvalidInput(str(exc), field="layout") from None
    file_kind = "pdf" if kind == "pdf" else f"{images}.zip"
    text = exports.LabelText(language, frozenset(line), symbol)
    stream = await exports.labels_file(
        pool, keyring, renders, actor, batch_id, settings.public_url, file_kind, layout, text
    )
    media = "application/pdf" if kind == "pdf" else "application/zip"
    disposition = f'attachment; filename="{batch_id}-labels.{kind}"'
    return StreamingResponse(stream, media_type=media, headers={"Content-Disposition": disposition})


_EPCIS_MEDIA = {"jsonld": "application/ld+json", "xml": "application/xml"}


@router.get("/code-batches/{batch_id}/epcis.{kind}", response_class=StreamingResponse)
async def download_epcis(
    batch_id: UUID,
    kind: str,
    pool: Pool,
    actor: BrandKey,
    company_prefix_length: Annotated[int | None, Query(ge=6, le=12)] = None,
) -> StreamingResponse:
    """The batch's commissioning events: EPCIS 2.0 JSON-LD (``epcis.jsonld``) or XML
    (``epcis.xml``), the same document."""
    if kind not in _EPCIS_MEDIA:
        raise NotFound(f"no file epcis.{kind}")
    stream = await exports.epcis_file(
        pool, actor, batch_id, company_prefix_length=company_prefix_length,
        now=datetime.now(UTC), xml=kind == "xml",
    )  # fmt: skip
    return StreamingResponse(stream, media_type=_EPCIS_MEDIA[kind])


@router.post(
    "/products/{product_id}/serial-imports",
    status_code=202,
    response_model=BatchOut,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {m: {"schema": {"type": "string"}} for m in imports.MEDIA_TYPES},
        }
    },
)
async def create_import(
    product_id: UUID,
    request: Request,
    response: Response,
    pool: Pool,
    runner: Runner,
    settings: SettingsDep,
    actor: BrandKey,
    mode: ImportMode = ImportMode.ALL_OR_NOTHING,
    kind: ImportKind | None = None,
) -> BatchOut:
    batch, new = await imports.create_import(
        pool, runner, actor, product_id,
        body=request.stream(),
        kind=imports.kind_of(request.headers.get("content-type"), kind),
        mode=mode, max_jobs=settings.max_jobs_per_brand, max_rows=settings.max_import_rows,
    )  # fmt: skip
    response.status_code = 202 if new else 200
    response.headers["Location"] = f"/v1/code-batches/{batch.id}"
    return BatchOut.of(batch)


@router.get("/code-batches/{batch_id}/rejections.csv", response_class=StreamingResponse)
async def import_rejections(batch_id: UUID, pool: Pool, actor: BrandKey) -> StreamingResponse:
    stream = await exports.rejections_file(pool, actor, batch_id)
    return StreamingResponse(stream, media_type="text/csv; charset=utf-8")


_KEYS_PER_PAGE = 1000  # about 190 KB of JSON: a page, not the platform's millions of keys


@router.get("/keys", response_model=PublicKeyPage, tags=["public"])
async def public_keys(
    pool: Pool,
    response: Response,
    after: Annotated[int, Query(ge=0, le=MAX_KEY_ID, description="The last id seen.")] = 0,
    limit: Annotated[int, Query(ge=1, le=_KEYS_PER_PAGE)] = _KEYS_PER_PAGE,
    brand_id: Annotated[UUID | None, Query(description="Only this brand's keys.")] = None,
) -> PublicKeyPage:
    """Every brand's public keys (retired and revoked included) in id order, a page at a
    time: follow ``next``, also sent as a ``Link: <...>; rel="next"`` header."""
    page, last = await keys.public_keys(pool, after=after, limit=limit, brand_id=brand_id)
    following = None
    if last is not None:
        query: dict[str, object] = {"after": last, "limit": limit}
        if brand_id is not None:
            query["brand_id"] = brand_id
        following = f"/v1/keys?{urlencode(query)}"
        response.headers["Link"] = f'<{following}>; rel="next"'
    return PublicKeyPage(keys=[PublicKeyOut.of(k) for k in page], next=following)


@router.get("/signing-keys", response_model=PublicKeyList)
async def list_signing_keys(keyring: Keys, actor: BrandKey) -> PublicKeyList:
    return PublicKeyList(keys=[PublicKeyOut.of(k) for k in await keys.list_keys(keyring, actor)])


@router.post("/signing-keys/rotate", status_code=201, response_model=PublicKeyOut)
async def rotate_signing_key(
    pool: Pool, keyring: Keys, settings: SettingsDep, actor: BrandKey
) -> PublicKeyOut:
    key = await keys.rotate(pool, keyring, actor, max_per_day=settings.max_signing_keys_per_day)
    return PublicKeyOut.of(key)


@router.post("/signing-keys/{key_id}/revoke", response_model=PublicKeyOut)
async def revoke_signing_key(
    key_id: Annotated[int, Path(ge=1, le=MAX_KEY_ID)],
    body: RevokeIn,
    pool: Pool,
    keyring: Keys,
    actor: BrandKey,
) -> PublicKeyOut:
    return PublicKeyOut.of(await keys.revoke(pool, keyring, actor, key_id, body.reason))
