"""Who am I: the calling key's role and scope, so that a brand need not guess its id."""

from __future__ import annotations

from fastapi import APIRouter

from transparency.api.deps import AnyKey, Pool
from transparency.api.schemas import MeOut, Named
from transparency.services import me

router = APIRouter(prefix="/v1", tags=["keys"])


@router.get("/me", response_model=MeOut)
async def whoami(pool: Pool, actor: AnyKey) -> MeOut:
    found = await me.whoami(pool, actor)
    return MeOut(
        key_id=actor.key_id,
        role=actor.role,
        brand=Named(id=found.brand.id, name=found.brand.name) if found.brand else None,
        site=Named(id=found.site.id, name=found.site.name) if found.site else None,
    )
