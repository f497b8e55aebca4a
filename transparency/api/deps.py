"""Named dependencies: the pool and the authenticated caller, by role."""

from __future__ import annotations

from typing import Annotated

import asyncpg
from fastapi import Depends, Header, Request

from transparency.domain.identity import Principal, Role
from transparency.services.auth import authenticate


def get_pool(request: Request) -> asyncpg.Pool:
    pool: asyncpg.Pool = request.state.pool
    return pool


Pool = Annotated[asyncpg.Pool, Depends(get_pool)]


async def get_principal(
    pool: Pool, authorization: Annotated[str | None, Header(include_in_schema=False)] = None
) -> Principal:
    return await authenticate(pool, authorization)


def _role(*roles: Role) -> object:
    async def check(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
        principal.require(*roles)
        return principal

    return Depends(check)


AnyKey = Annotated[Principal, Depends(get_principal)]
AdminKey = Annotated[Principal, _role(Role.ADMIN)]
BrandKey = Annotated[Principal, _role(Role.BRAND)]
StationKey = Annotated[Principal, _role(Role.STATION)]
