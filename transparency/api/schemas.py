"""Request and response bodies. Requests reject unknown fields."""

from __future__ import annotations

import base64
from datetime import date, datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo, model_validator

from transparency.domain.batches import Batch, BatchStatus, JobKind
from transparency.domain.codes import CodeFormat
from transparency.domain.identity import Role
from transparency.domain.models import ApiKey, Brand, BrandProfile, Product, Site
from transparency.domain.reports import Report
from transparency.domain.signing_keys import KeyStatus, PublicKeyInfo
from transparency.domain.verification import Channel
from transparency.services.admin import IssuedKey

# Validation context set by a caller that checked the raw JSON body for "\u0000", the only
# way JSON text can carry a NUL (the parser refuses raw control characters in strings).
NO_NUL_ESCAPE = "no_nul_escape"


def _no_nul(value: Any) -> Any:
    if isinstance(value, str) and "\x00" in value:
        raise ValueError("text may not contain NUL characters")
    if isinstance(value, dict):
        for key, item in value.items():
            _no_nul(key)
            _no_nul(item)
    elif isinstance(value, list):
        for item in value:
            _no_nul(item)
    return value


class Body(BaseModel):
    """A request body: unknown fields refused, and no NUL in any text (PostgreSQL stores
    none)."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _text_is_storable(cls, data: Any, info: ValidationInfo) -> Any:
        if info.context and info.context.get(NO_NUL_ESCAPE):
            return data  # the caller saw the raw JSON: no escape that could make a NUL
        return _no_nul(data)


class Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


# ----- admin


# A GS1 company prefix as GS1 allocates it, 6 to 12 digits; a U.P.C. company prefix in
# its 13-digit form (with its leading 0).
Gs1Prefix = Annotated[str, Field(pattern=r"^[0-9]{6,12}$", examples=["9506000"])]


class BrandIn(Body):
    name: str = Field(min_length=1, max_length=200)
    gs1_prefixes: list[Gs1Prefix] = Field(
        default_factory=list,
        max_length=100,
        description="GS1 company prefixes assigned to the brand: it may register only GTINs"
        " whose digits after the indicator digit start with one of them.",
    )


def _lower(origin: str | None) -> str | None:
    # Host names are case-insensitive; stored in lower case, as the database requires.
    return None if origin is None else origin.lower().rstrip("/")


class BrandProfileIn(Body):
    """The profile fields to change; a field left out keeps its value, null clears it."""

    display_name: str | None = Field(default=None, min_length=1, max_length=200)
    logo_url: str | None = Field(
        default=None,
        max_length=2000,
        pattern=r"^https://[^\s<>\"']+$",
        description="An https image URL, shown on the customer page.",
    )
    support: str | None = Field(
        default=None,
        max_length=2000,
        pattern=r"^(https://[^\s<>\"']+|[^\s@<>\"']+@[^\s@<>\"']+\.[^\s@<>\"']+)$",
        description="Where customers reach the brand: an https URL or an e-mail address.",
    )
    recall_instructions: str | None = Field(
        default=None,
        min_length=1,
        max_length=2000,
        description="Shown with a recalled unit when the recall gives no instructions.",
    )
    resolver_domain: Annotated[str | None, AfterValidator(_lower)] = Field(
        default=None,
        max_length=300,
        pattern=r"^[Hh][Tt][Tt][Pp][Ss]://[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?(:[0-9]{1,5})?/?$",
        description="The https origin (no path) the brand's GS1 labels print their Digital Link"
        " URIs on, e.g. https://id.brand.example; it must send /01/... on to this service."
        " Null: the service's own public URL.",
        examples=["https://id.brand.example"],
    )

    def changes(self) -> dict[str, str | None]:
        return {name: getattr(self, name) for name in self.model_fields_set}


class BrandProfileOut(Out):
    brand_id: UUID
    name: str
    display_name: str | None
    logo_url: str | None
    support: str | None
    recall_instructions: str | None
    resolver_domain: str | None

    @classmethod
    def of(cls, profile: BrandProfile) -> BrandProfileOut:
        return cls.model_validate(profile)


class Gs1PrefixIn(Body):
    prefix: Gs1Prefix


class Gs1PrefixesOut(BaseModel):
    brand_id: UUID
    gs1_prefixes: list[str]


class BrandOut(Out):
    id: UUID
    name: str
    created_at: datetime

    @classmethod
    def of(cls, brand: Brand) -> BrandOut:
        return cls.model_validate(brand)


class ApiKeyOut(Out):
    id: str
    role: Role
    brand_id: UUID | None
    site_id: UUID | None
    label: str | None
    created_at: datetime
    revoked_at: datetime | None

    @classmethod
    def of(cls, key: ApiKey) -> ApiKeyOut:
        return cls.model_validate(key)


class IssuedKeyOut(ApiKeyOut):
    key: str = Field(description="The key itself. Shown once: only its hash is stored.")

    @classmethod
    def issued(cls, issued: IssuedKey) -> IssuedKeyOut:
        return cls.model_validate(
            {**ApiKeyOut.of(issued.key).model_dump(), "key": str(issued.token)}
        )


class BrandCreated(BaseModel):
    brand: BrandOut
    api_key: IssuedKeyOut
    gs1_prefixes: list[str]


class SiteIn(Body):
    name: str = Field(min_length=1, max_length=200)
    region: str | None = Field(default=None, max_length=100)
    stations: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(
        default_factory=list, max_length=1000
    )


class SiteOut(Out):
    id: UUID
    name: str
    region: str | None
    stations: list[str]
    created_at: datetime

    @classmethod
    def of(cls, site: Site) -> SiteOut:
        return cls.model_validate(site)


class ApiKeyIn(Body):
    role: Role
    brand_id: UUID | None = None
    site_id: UUID | None = None
    label: str | None = Field(default=None, max_length=200)


# ----- products

_CHANNEL = (
    "How the product reaches customers. any: shops and channels with no fulfilment station,"
    " so a customer check of a unit no station shipped is normal (authentic); checked_only:"
    " every genuine unit passes a station first, so such a check is a clone signal"
    " (suspicious, warning not_shipped)."
)


class ProductIn(Body):
    gtin: str = Field(description="GTIN-8, -12, -13 or -14; stored as GTIN-14.", max_length=14)
    name: str = Field(min_length=1, max_length=300)
    attributes: dict[str, Any] = Field(
        default_factory=dict, description="Facts shown to customers who verify a unit."
    )
    image_url: str | None = Field(default=None, max_length=2000)
    requires_check: bool = Field(
        default=True, description="Every unit must be checked at fulfilment."
    )
    channel: Channel = Field(default=Channel.ANY, description=_CHANNEL)


class ProductPatch(Body):
    """The fields to change; a field left out keeps its value (only image_url may be null)."""

    name: str | None = Field(default=None, min_length=1, max_length=300)
    attributes: dict[str, Any] | None = None
    image_url: str | None = Field(default=None, max_length=2000)
    requires_check: bool | None = None
    channel: Channel | None = Field(default=None, description=_CHANNEL)

    @model_validator(mode="after")
    def _no_null_but_image(self) -> ProductPatch:
        for name in self.model_fields_set - {"image_url"}:
            if getattr(self, name) is None:
                raise ValueError(f"{name} may not be null")
        return self

    def changes(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.model_fields_set}


class ProductOut(Out):
    id: UUID
    brand_id: UUID
    gtin: str
    name: str
    attributes: dict[str, Any]
    image_url: str | None
    requires_check: bool
    channel: Channel
    created_at: datetime

    @classmethod
    def of(cls, product: Product) -> ProductOut:
        return cls.model_validate(product)


class ProductPage(BaseModel):
    items: list[ProductOut]
    next_cursor: str | None


# ----- codes


class BatchIn(Body):
    count: int = Field(ge=1, le=10_000_000)
    format: CodeFormat = CodeFormat.TRANSPARENCY
    lot: str | None = Field(default=None, min_length=1, max_length=20)
    expiry: date | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)


class BatchOut(BaseModel):
    id: UUID
    product_id: UUID
    kind: str
    format: CodeFormat
    status: str
    requested: int
    progress: int
    lot: str | None
    expiry: date | None
    attributes: dict[str, Any]
    report: dict[str, Any] | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    error: str | None
    key_id: int | None
    files: dict[str, str]

    @classmethod
    def of(cls, batch: Batch) -> BatchOut:
        base = f"/v1/code-batches/{batch.id}"
        names = ["codes.csv", "codes.jsonl", "labels.pdf", "labels.zip"]
        if batch.kind is JobKind.IMPORT:
            names.append("rejections.csv")
        if batch.format is CodeFormat.GS1:
            names += ["epcis.jsonld", "epcis.xml"]
        files = (
            {name: f"{base}/{name}" for name in names} if batch.status is BatchStatus.DONE else {}
        )
        fields = {k: getattr(batch, k) for k in cls.model_fields if k != "files"}
        return cls(**fields, files=files)


class PublicKeyOut(BaseModel):
    id: int
    brand_id: UUID
    status: KeyStatus
    algorithm: str = "Ed25519"
    public_key: str = Field(description="Raw 32-byte Ed25519 public key, base64url.")
    created_at: datetime

    @classmethod
    def of(cls, key: PublicKeyInfo) -> PublicKeyOut:
        encoded = base64.urlsafe_b64encode(key.public_key).decode().rstrip("=")
        return cls(
            id=key.id,
            brand_id=key.brand_id,
            status=key.status,
            public_key=encoded,
            created_at=key.created_at,
        )


class PublicKeyList(BaseModel):
    keys: list[PublicKeyOut]


class PublicKeyPage(PublicKeyList):
    next: str | None = Field(
        default=None,
        description="The next page's URL (also in the Link header); null on the last page.",
    )


class RevokeIn(Body):
    reason: str = Field(min_length=1, max_length=500)


# ----- verification


class FulfilmentIn(Body):
    scan: str = Field(max_length=4096, description="The raw text the scanner read.")
    gtin: str = Field(max_length=14, description="The product being shipped.")
    shipment_id: str = Field(min_length=1, max_length=100)


class FulfilmentItem(BaseModel):
    # Not a Body: the batch's own check already walks every item for NUL, and a
    # validator per item would run a Python call a thousand times per tote.
    model_config = ConfigDict(extra="forbid")

    scan: str = Field(max_length=4096)
    gtin: str = Field(max_length=14)


class FulfilmentBatchIn(Body):
    shipment_id: str = Field(min_length=1, max_length=100)
    items: list[FulfilmentItem] = Field(min_length=1, max_length=1000)


class FirstShipped(BaseModel):
    at: datetime | None
    site_id: UUID | None


class FulfilmentReply(BaseModel):
    result: Literal["pass", "fail"]
    reason: str | None
    unit: dict[str, Any] | None
    first_shipped: FirstShipped | None


class FulfilmentBatchOut(BaseModel):
    results: list[FulfilmentReply]


class ReversalIn(Body):
    scan: str = Field(max_length=4096)
    shipment_id: str = Field(min_length=1, max_length=100)


class ReturnIn(Body):
    scan: str = Field(max_length=4096)
    action: Literal["return", "restock"]
    shipment_id: str = Field(min_length=1, max_length=100, description="The shipment it left in.")


class UnitStateOut(BaseModel):
    code: str
    state: str


class VerifyIn(Body):
    scan: str = Field(min_length=1, max_length=4096)
    region: str | None = Field(default=None, pattern=r"^[A-Z]{2}$", description="ISO 3166 code")


class CustomerQuery(BaseModel):
    """GET /v1/verify's query; other parameters are ignored, as FastAPI ignores them."""

    code: str = Field(min_length=1, max_length=4096)
    region: str | None = Field(default=None, pattern=r"^[A-Z]{2}$", description="ISO 3166 code")


class BrandFaceOut(BaseModel):
    name: str = Field(description="The brand's display name (its name when it set none).")
    logo_url: str | None = Field(description="An https image URL.")
    support: str | None = Field(description="Where customers reach the brand: a URL or e-mail.")


class NoticeOut(BaseModel):
    reason: str | None = Field(description="Why the brand withdrew or recalled the unit.")
    instructions: str | None = Field(description="What the brand asks customers to do.")


class CustomerAnswer(BaseModel):
    verdict: Literal[
        "authentic", "suspicious", "not_authentic", "revoked", "recalled", "expired"
    ] = Field(
        description="Only authentic is good news. recalled: genuine but recalled by the"
        " brand; expired: genuine but past its expiry date (both come with a notice)."
    )
    code: str | None
    reason: str | None
    product: dict[str, Any] | None
    unit: dict[str, Any]
    warnings: list[str]
    brand: BrandFaceOut | None = Field(
        description="The brand the code names (for a forgery: the owner of the key id it"
        " carries), with its support contact; null when it names none."
    )
    notice: NoticeOut | None = Field(
        description="For revoked, recalled and expired units: the brand's reason and instructions."
    )


# ----- brand operations


class WithdrawIn(Body):
    action: Literal["revoke", "recall", "destroy", "report_stolen"]
    reason: str = Field(min_length=1, max_length=500)
    code: str | None = Field(default=None, max_length=4096)
    batch_id: UUID | None = None
    product_id: UUID | None = None
    lot: str | None = Field(default=None, max_length=20)
    instructions: str | None = Field(
        default=None,
        min_length=1,
        max_length=2000,
        description="A recall's instructions to customers, shown with its reason when they"
        " check a recalled unit (the brand profile's recall_instructions when left out).",
    )


class WithdrawOut(BaseModel):
    action: str
    units: int = Field(description="How many units changed state.")


class ForgedScanOut(Out):
    id: UUID
    scanned_at: datetime
    scanned: str = Field(description="The text as scanned (at most 200 characters).")
    kind: Literal["fulfilment", "customer"]
    site_id: UUID | None = Field(description="The station's site, for a fulfilment check.")
    region: str | None = Field(description="The customer's region, or the site's.")


class ForgedScanPage(BaseModel):
    items: list[ForgedScanOut]
    next_cursor: str | None


class DashboardDayOut(BaseModel):
    product_id: UUID | None = Field(
        description="Null for counts that name no product: a refusal at fulfilment of a code"
        " whose key was revoked, a customer's report on a forgery."
    )
    product_name: str | None
    day: date = Field(description="The day (UTC).")
    issued: int = Field(description="Units created by the batches and imports finished.")
    passed: int = Field(description="Distinct units that passed a fulfilment check.")
    blocked: dict[str, int] = Field(description="Failed fulfilment checks, by reason.")
    customer_scans: int = Field(description="Customers' checks of the brand's units.")
    suspicious: int = Field(description="Units that crossed a clone threshold.")
    reports: int = Field(
        description="Customers' reports on the brand's codes (GET /v1/reports lists them)."
    )


class ForgedCountOut(BaseModel):
    day: date
    kind: Literal["fulfilment", "customer"]
    site_id: UUID | None
    site_name: str | None
    region: str | None
    scans: int = Field(description="Scans naming a key id of the brand with a wrong tag.")


class DashboardOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    brand_id: UUID
    first: date = Field(alias="from", description="The first day counted (UTC).")
    last: date = Field(alias="to", description="The last day counted (UTC).")
    days: list[DashboardDayOut] = Field(description="One row per product and day with counts.")
    forged: list[ForgedCountOut] = Field(
        description="Forged scans of the brand's codes, per day, kind, site and region."
    )


# ----- who am I


class Named(BaseModel):
    id: UUID
    name: str


class MeOut(BaseModel):
    key_id: str
    role: Role
    brand: Named | None = Field(description="The brand of a brand key.")
    site: Named | None = Field(description="The site of a station key.")


# ----- customers' reports


class ReportOut(BaseModel):
    id: UUID
    brand_id: UUID | None
    code: str = Field(description="The unit key when the code names a unit, else as scanned.")
    reason: str | None = Field(description="Why the check refused the code, if it did.")
    unit_state: str | None = Field(description="The unit's state when it was reported.")
    place: str = Field(description="Where it was bought: a shop's name or a web address.")
    region: str | None
    note: str | None
    photo: str | None = Field(description="The photo's URL (brand key), or null.")
    created_at: datetime

    @classmethod
    def of(cls, report: Report) -> ReportOut:
        photo = None if report.photo_type is None else f"/v1/reports/{report.id}/photo"
        fields = {k: getattr(report, k) for k in cls.model_fields if k != "photo"}
        return cls(**fields, photo=photo)


class ReportPage(BaseModel):
    items: list[ReportOut]
    next_cursor: str | None


# ----- passes read back by a station


class PassOut(Out):
    code: str = Field(description="The unit key: a Transparency code's canonical text.")
    shipment_id: str
    passed_at: datetime


class PassPage(BaseModel):
    items: list[PassOut] = Field(description="By shipment id (code-point order), then event.")
    next_cursor: str | None


class PassSummaryOut(Out):
    pass_events: int = Field(description="Pass events in the event log.")
    units: int = Field(description="Distinct units among them: fewer when one passed twice.")
    shipments: int = Field(description="Distinct shipments among them.")
    unit_shipments: int = Field(
        description="Distinct (unit, shipment) pairs: more than units when a unit left in two"
        " shipments (a retry for the same shipment is a pass event again, not a pair)."
    )
