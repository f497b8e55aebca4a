"""Who the caller is: the role of its key and what it is scoped to, with names."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from transparency.db import brands, sites
from transparency.domain.identity import Principal
from transparency.domain.models import Brand, Site


@dataclass(frozen=True, slots=True)
class Me:
    principal: Principal
    brand: Brand | None  # a brand key's brand
    site: Site | None  # a station key's site


async def whoami(pool: asyncpg.Pool, actor: Principal) -> Me:
    """Any valid key may ask (it learns only its own scope); a bad one never gets here."""
    brand = None if actor.brand_id is None else await brands.get(pool, actor.brand_id)
    site = None if actor.site_id is None else await sites.get(pool, actor.site_id)
    return Me(actor, brand, site)
