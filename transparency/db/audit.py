"""The audit log: who did what to which object."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from transparency.db.pool import Conn


async def record(
    conn: Conn,
    *,
    api_key_id: str | None,
    action: str,
    target: str | None = None,
    brand_id: UUID | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    await conn.execute(
        "insert into audit_log (api_key_id, brand_id, action, target, detail)"
        " values ($1, $2, $3, $4, $5)",
        api_key_id,
        brand_id,
        action,
        target,
        detail or {},
    )
