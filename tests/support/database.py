"""Where the tests' PostgreSQL lives: a fresh directory for an embedded server, and the URL
of one database on a server."""

from __future__ import annotations

import tempfile
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit


def with_database(dsn: str, name: str) -> str:
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path=f"/{name}"))


def pg_home() -> Path:
    """A fresh directory for an embedded PostgreSQL's data.

    Not under pytest's temporary root: pgserver runs PostgreSQL as its own user, and pytest
    keeps its root private (0700), re-tightening it whenever a worker process starts.
    """
    path = Path(tempfile.mkdtemp(prefix="transparency-test-"))
    path.chmod(0o755)
    return path
