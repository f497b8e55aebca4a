"""The test data file: what ``loadtest prepare`` writes and the locust workers read.

It holds keys (a station key, a brand key): keep it as you would keep them.
"""

from __future__ import annotations

import base64
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from loadtest.errors import DataError


@dataclass(frozen=True, slots=True)
class LoadData:
    api: str
    station_key: str
    brand_key: str
    gtin: str
    codes: tuple[str, ...]  # issued, never claimed: each is claimed once by a run
    shipped: tuple[str, ...]  # claimed while preparing: what customers then check
    forged: tuple[str, ...]  # well-formed, wrong tag: refused without a query
    photos: tuple[bytes, ...] = ()  # JPEG phone photos of shipped codes' labels

    def as_json(self) -> dict[str, Any]:
        raw = asdict(self)
        raw["photos"] = [base64.b64encode(p).decode() for p in self.photos]
        return raw


def share(codes: tuple[str, ...], index: int, workers: int) -> list[str]:
    """Worker ``index``'s share of the fresh codes, disjoint from every other worker's:
    no two workers ever claim one code, so every claim of a fresh code must pass."""
    if not 0 <= index < workers:
        return []
    return list(codes[index::workers])


def write(data: LoadData, path: Path) -> None:
    path.write_text(json.dumps(data.as_json(), indent=1) + "\n")
    path.chmod(0o600)  # it holds keys


def read(path: Path) -> LoadData:
    try:
        raw = json.loads(path.read_text())
        return LoadData(
            api=str(raw["api"]),
            station_key=str(raw["station_key"]),
            brand_key=str(raw["brand_key"]),
            gtin=str(raw["gtin"]),
            codes=tuple(str(c) for c in raw["codes"]),
            shipped=tuple(str(c) for c in raw["shipped"]),
            forged=tuple(str(c) for c in raw["forged"]),
            photos=tuple(base64.b64decode(p) for p in raw.get("photos", [])),
        )
    except OSError as exc:
        raise DataError(f"{path}: cannot read: {exc.strerror}") from exc
    except (ValueError, KeyError, TypeError) as exc:
        raise DataError(f"{path}: not a file made by `loadtest prepare` ({exc!r})") from exc
