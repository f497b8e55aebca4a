"""Request and response bodies. Requests reject unknown fields."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from transparency.domain.identity import Role
from transparency.domain.models import ApiKey, Brand, Product, Site
from transparency.services.admin import IssuedKey


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


# ----- admin


class BrandIn(Body):
    name: str = Field(min_length=1, max_length=200)


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


class SiteIn(Body):
    name: str = Field(min_length=1, max_length=200)
    region: str | None = Field(default=None, max_length=100)
    stations: list[str] = Field(default_factory=list, max_length=1000)


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


class ProductOut(Out):
    id: UUID
    brand_id: UUID
    gtin: str
    name: str
    attributes: dict[str, Any]
    image_url: str | None
    requires_check: bool
    created_at: datetime

    @classmethod
    def of(cls, product: Product) -> ProductOut:
        return cls.model_validate(product)


class ProductPage(BaseModel):
    items: list[ProductOut]
    next_cursor: str | None
