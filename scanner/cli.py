"""The plain functions behind ``scanner``'s subcommands; ``__main__`` maps them to exit codes."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from scanner.errors import ScannerError
from scanner.results import Result
from scanner.scan import DEFAULT_TIME_BUDGET, decode


@dataclass(frozen=True, slots=True)
class DecodeSummary:
    codes: int
    unreadable: int


def result_line(file: str, result: Result) -> dict[str, Any]:
    return {"file": file, **result.as_json()}


def decode_files(
    paths: Sequence[Path],
    *,
    out: TextIO,
    err: TextIO,
    time_budget: float = DEFAULT_TIME_BUDGET,
) -> DecodeSummary:
    """One JSON line on ``out`` per code found; one ``scanner: FILE: REASON`` line on ``err``
    per file that is not a usable image. Every file is processed, whatever the others do."""
    codes = unreadable = 0
    for path in paths:
        try:
            results = decode(path, time_budget=time_budget)
        except ScannerError as exc:
            unreadable += 1
            print(f"scanner: {path}: {exc}", file=err)
            continue
        for result in results:
            # ensure_ascii keeps GS (0x1D) visible as \u001d and the line pure ASCII.
            print(json.dumps(result_line(str(path), result)), file=out)
        codes += len(results)
    return DecodeSummary(codes=codes, unreadable=unreadable)
