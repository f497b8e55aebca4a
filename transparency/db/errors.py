"""Translation of database errors into domain errors, at the boundary."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import asyncpg

from transparency.domain.errors import AlreadyExists, NotFound


@contextmanager
def translated(what: str) -> Iterator[None]:
    """Turn unique and foreign-key violations on ``what`` into domain errors."""
    try:
        yield
    except asyncpg.UniqueViolationError as exc:
        raise AlreadyExists(f"{what} already exists") from exc
    except asyncpg.ForeignKeyViolationError as exc:
        raise NotFound(f"{what} refers to something that does not exist") from exc
