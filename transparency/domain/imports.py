"""Brand-native serials: reading an import file into units, and every row it refuses.

Three kinds of file: ``csv`` (a serial per line, optional lot and expiry), ``gs1`` (a GS1
element string, bracketed text or Digital Link URI per line) and ``epcis`` (an EPCIS 2.0
JSON-LD document whose ADD ObjectEvents commission SGTINs). Every row is checked: GTIN
check digit and match with the product, AI syntax, serial characters and length, and
duplicates within the file. Checks against codes already registered need the database and
are the caller's.
"""

from __future__ import annotations

import calendar
import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from transparency.domain import epcis, gs1
from transparency.domain.codes import gs1_unit_key
from transparency.domain.errors import InvalidCode, InvalidInput

MAX_ROWS = 10_000_000


class ImportKind(StrEnum):
    CSV = "csv"
    GS1 = "gs1"
    EPCIS = "epcis"


class ImportMode(StrEnum):
    ALL_OR_NOTHING = "all_or_nothing"  # one refused row refuses the file
    ACCEPT_VALID = "accept_valid"  # register the valid rows, report the others


@dataclass(frozen=True, slots=True)
class Upload:
    """An import's file, kept until its job has run."""

    kind: ImportKind
    mode: ImportMode
    content: bytes


@dataclass(frozen=True, slots=True)
class ImportRow:
    position: str
    serial: str
    lot: str | None
    expiry: date | None

    def unit_key(self, gtin: str) -> str:
        return gs1_unit_key(gtin, self.serial)


@dataclass(frozen=True, slots=True)
class Rejection:
    position: str
    reason: str
    detail: str


def _expiry(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidCode("invalid_expiry", f"expiry {text!r} is not a date (YYYY-MM-DD)") from None


def _ai_date(yymmdd: str) -> date:
    """A GS1 date (AI 17): day 00 means the last day of the month."""
    year, month, day = 2000 + int(yymmdd[:2]), int(yymmdd[2:4]), int(yymmdd[4:6])
    return date(year, month, day or calendar.monthrange(year, month)[1])


def _csv_rows(text: str) -> list[tuple[str, list[str]]]:
    rows = []
    for number, fields in enumerate(csv.reader(io.StringIO(text)), start=1):
        if not fields or all(not f.strip() for f in fields):
            continue
        if number == 1 and fields[0].strip().lower() == "serial":
            continue  # a header
        rows.append((f"line {number}", [f.strip() for f in fields]))
    return rows


def decode(content: bytes) -> str:
    try:
        return content.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidInput("the file is not UTF-8 text", field="file") from None


def pieces(text: str, kind: ImportKind, size: int = 4_000_000) -> Iterator[tuple[int, str]]:
    """The file cut into (first line number, text) pieces that can be read independently,
    of about ``size`` characters, each ending at a line's end.

    Only line-per-code files are cut; a CSV field or a JSON document may span lines. The
    file is cut where it lies, never split into a string per line here.
    """
    if kind is not ImportKind.GS1:
        yield 1, text
        return
    start, line = 0, 1
    while True:
        # not splitlines() semantics: GS (0x1D) is a separator, not a break; only \n is.
        end = text.find("\n", start + size) if start + size < len(text) else -1
        if end == -1:
            yield line, text[start:]
            return
        yield line, text[start:end]
        line += text.count("\n", start, end) + 1
        start = end + 1


@dataclass(frozen=True, slots=True)
class Columns:
    """Accepted rows as columns: what a worker process sends back, cheap to pickle and
    cheap to combine with set and zip operations."""

    keys: list[str]
    positions: list[str]
    lots: list[str | None]
    expiries: list[date | None]


def read_for_job(
    content: str, kind: ImportKind, gtin: str, first_line: int
) -> tuple[Columns, list[Rejection]]:
    """``read`` for a worker process: accepted rows as columns."""
    rows, rejected = read(content, kind, gtin, first_line)
    columns = Columns(
        keys=[r.unit_key(gtin) for r in rows],
        positions=[r.position for r in rows],
        lots=[r.lot for r in rows],
        expiries=[r.expiry for r in rows],
    )
    return columns, rejected


def read(
    content: bytes | str, kind: ImportKind, gtin: str, first_line: int = 1
) -> tuple[list[ImportRow], list[Rejection]]:
    """The valid rows of an import file (or piece) for the product ``gtin``, and the refused
    ones. Duplicates are found within what is given; across pieces, by the caller."""
    text = decode(content) if isinstance(content, bytes) else content
    accepted: list[ImportRow] = []
    rejected: list[Rejection] = []
    seen: dict[str, str] = {}

    def keep(row: ImportRow) -> None:
        if not gs1.is_valid_serial(row.serial):
            rejected.append(
                Rejection(
                    row.position,
                    "invalid_serial",
                    f"serial {row.serial!r} is not 1-20 characters of the GS1 set 82",
                )
            )
        elif row.serial in seen:
            rejected.append(
                Rejection(
                    row.position, "duplicate_in_file", f"serial already at {seen[row.serial]}"
                )
            )
        else:
            seen[row.serial] = row.position
            accepted.append(row)

    if kind is ImportKind.EPCIS:
        try:
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InvalidInput(f"the EPCIS document is not JSON: {exc}", field="file") from None
        if not isinstance(document, dict):
            raise InvalidInput("the EPCIS document must be a JSON object", field="file")
        try:
            commissioned, refused = epcis.parse_commissioning(document)
        except InvalidCode as exc:
            raise InvalidInput(exc.detail, field="file") from None
        rejected.extend(Rejection(r.position, r.reason, r.detail) for r in refused)
        for item in commissioned:
            if item.gtin != gtin:
                rejected.append(
                    Rejection(item.position, "wrong_gtin", f"GTIN {item.gtin} is not {gtin}")
                )
            else:
                keep(ImportRow(item.position, item.serial, item.lot, item.expiry))
    elif kind is ImportKind.GS1:
        # Not splitlines(): it also splits at GS (0x1D), the element-string separator.
        for number, line in enumerate(text.split("\n"), start=first_line):
            line = line.rstrip("\r")
            if not line.strip():
                continue
            position = f"line {number}"
            try:
                code = gs1.parse_gs1(line)
                found_gtin, serial = gs1.require_gtin_serial(code)
                expiry_ai = code.value("17")
                expiry = None if expiry_ai is None else _ai_date(expiry_ai)
            except InvalidCode as exc:
                rejected.append(Rejection(position, exc.reason, exc.detail))
                continue
            except ValueError as exc:
                rejected.append(Rejection(position, "invalid_ai", str(exc)))
                continue
            if found_gtin != gtin:
                rejected.append(
                    Rejection(position, "wrong_gtin", f"GTIN {found_gtin} is not {gtin}")
                )
                continue
            keep(ImportRow(position, serial, code.value("10"), expiry))
    else:
        for position, fields in _csv_rows(text):
            try:
                lot = fields[1] if len(fields) > 1 and fields[1] else None
                expiry = _expiry(fields[2]) if len(fields) > 2 and fields[2] else None
            except InvalidCode as exc:
                rejected.append(Rejection(position, exc.reason, exc.detail))
                continue
            if lot is not None and not gs1.is_valid_serial(lot):  # AI 10 has the same syntax
                rejected.append(Rejection(position, "invalid_lot", f"lot {lot!r} is not valid"))
                continue
            keep(ImportRow(position, fields[0], lot, expiry))
    if len(accepted) + len(rejected) > MAX_ROWS:
        raise InvalidInput(f"an import holds at most {MAX_ROWS} rows", field="file")
    return accepted, rejected
