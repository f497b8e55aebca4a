"""The test data file: what ``loadtest prepare`` writes and the locustfile reads."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from loadtest.errors import DataError


@dataclass(frozen=True, slots=True)
class LoadData:
    api: str
    station_key: str
    gtin: str
    codes: tuple[str, ...]  # issued, never claimed: each is claimed once by the load test
    shipped: tuple[str, ...]  # claimed while preparing: what customers then check
    forged: tuple[str, ...]  # well-formed, wrong tag: refused without a query

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def write(data: LoadData, path: Path) -> None:
    path.write_text(json.dumps(data.as_json(), indent=1) + "\n")


def read(path: Path) -> LoadData:
    try:
        raw = json.loads(path.read_text())
        return LoadData(
            api=str(raw["api"]),
            station_key=str(raw["station_key"]),
            gtin=str(raw["gtin"]),
            codes=tuple(str(c) for c in raw["codes"]),
            shipped=tuple(str(c) for c in raw["shipped"]),
            forged=tuple(str(c) for c in raw["forged"]),
        )
    except OSError as exc:
        raise DataError(f"{path}: cannot read: {exc.strerror}") from exc
    except (ValueError, KeyError, TypeError) as exc:
        raise DataError(f"{path}: not a file made by `loadtest prepare` ({exc!r})") from exc
