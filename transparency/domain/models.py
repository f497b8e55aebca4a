"""The service's records, as the database layer returns them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from uuid import UUID

from transparency.domain.identity import Role
from transparency.domain.verification import Channel


@dataclass(frozen=True, slots=True)
class Brand:
    id: UUID
    name: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class BrandProfile:
    """How a brand presents itself to its customers (every field optional but its name)."""

    brand_id: UUID
    name: str
    display_name: str | None
    logo_url: str | None  # https only: the customer page loads it
    support: str | None  # an https URL or an e-mail address
    recall_instructions: str | None  # said by a recall that gives none of its own
    resolver_domain: str | None = None  # https origin its GS1 labels' Digital Links name


@dataclass(frozen=True, slots=True)
class Site:
    id: UUID
    name: str
    region: str | None
    created_at: datetime
    stations: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: str
    role: Role
    brand_id: UUID | None
    site_id: UUID | None
    label: str | None
    created_at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True, slots=True)
class Credentials:
    """What authenticating a live API key needs: its secret's digest and its scope."""

    secret_sha256: bytes
    role: Role
    brand_id: UUID | None
    site_id: UUID | None


@dataclass(frozen=True, slots=True)
class Product:
    id: UUID
    brand_id: UUID
    gtin: str
    name: str
    attributes: dict[str, Any]
    image_url: str | None
    requires_check: bool
    created_at: datetime
    channel: Channel = Channel.ANY


@dataclass(frozen=True, slots=True)
class DashboardDay:
    """One product's day on its brand's dashboard."""

    # None for refusals that name no product (a revoked key's code at fulfilment) and for
    # reports on codes that name no unit (a forgery carrying one of the brand's key ids)
    product_id: UUID | None
    product_name: str | None
    day: date
    issued: int  # units created by batches finished that day
    passed: int  # distinct units that passed fulfilment
    blocked: dict[str, int]  # failed fulfilment checks, by reason
    customer_scans: int
    suspicious: int  # units that crossed a clone threshold that day
    reports: int  # customers' reports on the brand's codes sent that day
