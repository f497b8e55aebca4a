"""The station's durable queue of claims, in SQLite beside the station.

A claim is written, with the Idempotency-Key it will always be sent with, and committed
before any request is made; it becomes ``sent`` only once a definite answer is stored with it.
So a station killed at any instant loses no claim (it is still ``pending``) and claims no unit
twice (the claim goes again under the same key, and the API answers a repeated key with its
first answer). WAL with ``synchronous=FULL`` makes each commit survive a power cut, not only
a killed process.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

SCHEMA = """
create table if not exists claims (
    seq integer primary key autoincrement,
    idempotency_key text not null unique,
    scan text not null,
    code text not null,
    gtin text not null,
    shipment_id text not null,
    state text not null default 'pending' check (state in ('pending', 'sent')),
    result text check ((state = 'sent') = (result is not null)),
    created_at text not null,
    sent_at text
);
create index if not exists claims_pending on claims (seq) where state = 'pending';
create table if not exists watched_files (
    name text primary key,
    done_at text not null
);
"""

_COLUMNS = "seq, idempotency_key, scan, code, gtin, shipment_id, state, result, created_at"


@dataclass(frozen=True, slots=True)
class Sighting:
    """A code the station decided to claim: ``scan`` is sent, ``code`` is shown."""

    scan: str
    code: str


@dataclass(frozen=True, slots=True)
class Claim:
    seq: int
    idempotency_key: str
    scan: str
    code: str
    gtin: str
    shipment_id: str
    state: str
    result: dict[str, Any] | None
    created_at: str

    @property
    def passed(self) -> bool:
        return self.result is not None and self.result.get("result") == "pass"

    @property
    def reason(self) -> str | None:
        """Why a sent claim failed: the API's reason, or the problem that refused it."""
        if self.result is None or self.passed:
            return None
        problem = self.result.get("problem")
        if isinstance(problem, dict):
            kind = str(problem.get("type") or "about:blank").rstrip("/").rsplit("/", 1)[-1]
            return f"http-{problem.get('status')}" if kind == "about:blank" else kind
        return str(self.result.get("reason") or "unknown")


class ClaimQueue:
    """One connection to the queue file; open one per thread that uses it."""

    def __init__(self, path: Path | str) -> None:
        # isolation_level=None: transactions are the explicit BEGIN IMMEDIATE ones below, so
        # nothing is ever left half-committed by the sqlite3 module's implicit transactions.
        self._db = sqlite3.connect(
            str(path), isolation_level=None, check_same_thread=False, timeout=30.0
        )
        self._db.execute("pragma journal_mode = wal")
        self._db.execute("pragma synchronous = full")
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> ClaimQueue:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def enqueue(
        self,
        sightings: Sequence[Sighting],
        *,
        gtin: str,
        shipment_id: str,
        file: str | None = None,
    ) -> list[Claim]:
        """New pending claims, committed; with ``file``, that file is recorded as done in the
        same transaction, so a restart neither redoes it nor misses its claims."""
        now = _now()
        with self._transaction():
            seqs = [
                self._db.execute(
                    "insert into claims (idempotency_key, scan, code, gtin, shipment_id,"
                    " created_at) values (?, ?, ?, ?, ?, ?) returning seq",
                    (str(uuid.uuid4()), s.scan, s.code, gtin, shipment_id, now),
                ).fetchone()[0]
                for s in sightings
            ]
            if file is not None:
                self._db.execute(
                    "insert or ignore into watched_files (name, done_at) values (?, ?)",
                    (file, now),
                )
        return [self.get(seq) for seq in seqs]

    def next_pending(self) -> Claim | None:
        """The oldest claim without an answer: claims are sent strictly in ``seq`` order."""
        row = self._db.execute(
            f"select {_COLUMNS} from claims where state = 'pending' order by seq limit 1"
        ).fetchone()
        return None if row is None else _claim(row)

    def mark_sent(self, seq: int, result: dict[str, Any]) -> None:
        with self._transaction():
            self._db.execute(
                "update claims set state = 'sent', result = ?, sent_at = ?"
                " where seq = ? and state = 'pending'",
                (json.dumps(result), _now(), seq),
            )

    def get(self, seq: int) -> Claim:
        row = self._db.execute(f"select {_COLUMNS} from claims where seq = ?", (seq,)).fetchone()
        if row is None:
            raise KeyError(seq)
        return _claim(row)

    def claims(self) -> list[Claim]:
        rows = self._db.execute(f"select {_COLUMNS} from claims order by seq").fetchall()
        return [_claim(row) for row in rows]

    def pending_count(self) -> int:
        count: int = self._db.execute(
            "select count(*) from claims where state = 'pending'"
        ).fetchone()[0]
        return count

    def file_done(self, name: str) -> bool:
        row = self._db.execute("select 1 from watched_files where name = ?", (name,)).fetchone()
        return row is not None

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)


class _Transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        # IMMEDIATE takes the write lock up front, so two connections never deadlock
        # upgrading read transactions.
        self._db.execute("begin immediate")

    def __exit__(self, exc_type: type[BaseException] | None, *rest: object) -> None:
        # BaseException too: a Ctrl-C inside the transaction must roll it back, not leave it open.
        self._db.execute("commit" if exc_type is None else "rollback")


def _claim(row: tuple[Any, ...]) -> Claim:
    seq, key, scan, code, gtin, shipment_id, state, result, created_at = row
    return Claim(
        seq, key, scan, code, gtin, shipment_id, state,
        None if result is None else json.loads(result), created_at,
    )  # fmt: skip


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")
