"""Code batches and the jobs that fill them: issued by us, or imported from a brand's file.

A batch is queued ``pending``, taken by one process's job runner (``running``, under a
lease), and ends ``done`` or ``failed``. Its units are not visible to verification until
it is done. The schema's CHECK constraints allow exactly these kinds and statuses.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from transparency.domain.codes import CodeFormat


class JobKind(StrEnum):
    ISSUE = "issue"  # codes generated and signed by us
    IMPORT = "import"  # serials from the brand's own file


class BatchStatus(StrEnum):
    PENDING = "pending"  # queued
    RUNNING = "running"  # a runner holds its lease (or held it, and died)
    DONE = "done"  # its units are visible
    FAILED = "failed"


# The statuses of a batch counted against its brand's cap on jobs at once.
UNFINISHED = frozenset({BatchStatus.PENDING, BatchStatus.RUNNING})


@dataclass(frozen=True, slots=True)
class Batch:
    id: UUID
    brand_id: UUID
    product_id: UUID
    kind: JobKind
    format: CodeFormat
    status: BatchStatus
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
    key_id: int | None  # the key that signs an issued batch's codes


@dataclass(frozen=True, slots=True)
class Job:
    """A running batch as its runner claimed it: the lease token fences every write."""

    batch: Batch
    lease_token: UUID


def issue_options(key_id: int) -> dict[str, Any]:
    """What an issuance job needs beyond its batch's columns (stored as its ``options``)."""
    return {"key_id": key_id}
