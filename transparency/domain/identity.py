"""Who is calling: roles, principals and what each may touch."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from uuid import UUID

from transparency.domain.errors import Forbidden


class Role(StrEnum):
    ADMIN = "admin"  # the operator: creates brands, sites and keys
    BRAND = "brand"  # one brand: its products and codes only
    STATION = "station"  # one warehouse site: fulfilment calls only


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller, as established from its API key."""

    key_id: str
    role: Role
    brand_id: UUID | None = None
    site_id: UUID | None = None

    def require(self, *roles: Role) -> None:
        if self.role not in roles:
            allowed = " or ".join(r.value for r in roles)
            raise Forbidden(f"this operation needs a {allowed} key; this is a {self.role} key")
