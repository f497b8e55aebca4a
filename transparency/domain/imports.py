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
import codecs
import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from transparency.domain import epcis, gs1
from transparency.domain.codes import gs1_unit_key
from transparency.domain.errors import InvalidCode, InvalidInput

# The rows of one import, counted as they are read. An import's duplicate check keeps every
# accepted serial of the file in a dict, about 150 bytes each: a million rows is about
# 150 MB at most, and a million is what one issuance batch of ours commonly holds. Brands
# with more split their files (each is its own batch, and each is idempotent).
DEFAULT_MAX_ROWS = 1_000_000
# An EPCIS document is decoded whole (JSON is not read a piece at a time): 64 MiB holds a
# commissioning document of about 1.4 million SGTINs, more than the row limit, while the
# decoded objects of a larger one could take gigabytes.
MAX_EPCIS_CHARS = 64 * 1_048_576
# A line of a line file (CSV or GS1) longer than this is no row: GS1 element strings and
# Digital Link URIs are under 1,000 characters. Without it, a file with no line break at
# all would be held whole while waiting for one.
MAX_LINE_CHARS = 65_536


class ImportKind(StrEnum):
    CSV = "csv"
    GS1 = "gs1"
    EPCIS = "epcis"


class ImportMode(StrEnum):
    ALL_OR_NOTHING = "all_or_nothing"  # one refused row refuses the file
    ACCEPT_VALID = "accept_valid"  # register the valid rows, report the others


@dataclass(frozen=True, slots=True)
class Upload:
    """An import's file (its bytes are stored apart), kept until its job has run."""

    kind: ImportKind
    mode: ImportMode
    max_rows: int | None = None  # None: DEFAULT_MAX_ROWS


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


def duplicate_detail(first: str) -> str:
    """What a repeated serial's refusal says: where the file first had it."""
    return f"serial already at {first}"


def _expiry(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidCode("invalid_expiry", f"expiry {text!r} is not a date (YYYY-MM-DD)") from None


def _ai_date(yymmdd: str) -> date:
    """A GS1 date (AI 17): day 00 means the last day of the month."""
    year, month, day = 2000 + int(yymmdd[:2]), int(yymmdd[2:4]), int(yymmdd[4:6])
    return date(year, month, day or calendar.monthrange(year, month)[1])


def _csv_rows(text: str, first_line: int = 1) -> Iterator[tuple[str, list[str]]]:
    reader = csv.reader(io.StringIO(text))
    start = 0  # lines read before this record: a quoted field may hold a line break
    for fields in reader:
        number, start = first_line + start, reader.line_num
        if not fields or all(not f.strip() for f in fields):
            continue
        if number == 1 and fields[0].strip().lower() == "serial":
            continue  # a header
        yield f"line {number}", [f.strip() for f in fields]


def too_many_rows(max_rows: int) -> InvalidInput:
    return InvalidInput(f"an import holds at most {max_rows} rows", field="file")


def decode(content: bytes) -> str:
    try:
        return content.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidInput("the file is not UTF-8 text", field="file") from None


class Decoder:
    """UTF-8 (with or without a byte order mark) decoded as it arrives, in parts."""

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8-sig")()

    def feed(self, data: bytes, final: bool = False) -> str:
        try:
            return self._decoder.decode(data, final)
        except UnicodeDecodeError:
            raise InvalidInput("the file is not UTF-8 text", field="file") from None


class LinePieces:
    """Text arriving in parts, cut into pieces of about ``size`` characters and at most
    ``max_lines`` lines that each end at a line's end and can be read independently, with
    the number of each one's first line. (A piece's rows, refused ones included, are what a
    worker holds and hands back: lines, not characters, set that size.)

    Not splitlines() semantics: GS (0x1D) is a separator, not a break; only \n is. A CSV
    file is cut the same way: no serial, lot or expiry holds a line break, so a quoted one
    is refused wherever the cut falls. The text is cut where it lies, never split into a
    string per line here.
    """

    def __init__(self, size: int, max_lines: int = 16_384) -> None:
        self.size = size
        self.max_lines = max_lines
        self._rest = ""
        self._line = 1

    def feed(self, text: str) -> list[tuple[int, str]]:
        buffer = self._rest + text if self._rest else text
        found, start = [], 0
        while start + self.size < len(buffer):
            end = buffer.find("\n", start + self.size)
            if end == -1:
                break
            if buffer.count("\n", start, end) >= self.max_lines:  # short lines: cut by count
                end = self._line_end(buffer, start)
            found.append(self._piece(buffer[start:end]))
            start = end + 1
        self._rest = buffer[start:]
        if len(self._rest) > self.size + MAX_LINE_CHARS and "\n" not in self._rest[self.size :]:
            where = self._line + self._rest.count("\n", 0, self.size)
            raise InvalidInput(
                f"line {where} is longer than {MAX_LINE_CHARS} characters", field="file"
            )
        return found

    def end(self) -> list[tuple[int, str]]:
        """The last pieces: the text after the last cut (the final one perhaps empty)."""
        rest, self._rest = self._rest, ""
        found, start = [], 0
        while rest.count("\n", start) >= self.max_lines:
            end = self._line_end(rest, start)
            found.append(self._piece(rest[start:end]))
            start = end + 1
        found.append(self._piece(rest[start:]))
        return found

    def _line_end(self, text: str, start: int) -> int:
        """Where the ``max_lines``-th line from ``start`` ends (there are that many)."""
        end = start - 1
        for _ in range(self.max_lines):
            end = text.find("\n", end + 1)
        return end

    def _piece(self, text: str) -> tuple[int, str]:
        first = self._line
        self._line += text.count("\n") + 1
        return first, text


def pieces(
    text: str, kind: ImportKind, size: int = 4_000_000, max_lines: int = 16_384
) -> Iterator[tuple[int, str]]:
    """A whole file cut as ``LinePieces`` cuts it; an EPCIS document is one piece."""
    if kind is ImportKind.EPCIS:
        yield 1, text
        return
    cutter = LinePieces(size, max_lines)
    yield from cutter.feed(text)
    yield from cutter.end()


@dataclass(frozen=True, slots=True)
class Columns:
    """Accepted rows as columns: what a worker process sends back, cheap to pickle and
    cheap to combine with set and zip operations."""

    keys: list[str]
    positions: list[str]
    lots: list[str | None]
    expiries: list[date | None]


def read_for_job(
    content: str, kind: ImportKind, gtin: str, first_line: int, max_rows: int = DEFAULT_MAX_ROWS
) -> tuple[Columns, list[Rejection]]:
    """``read`` for a worker process: accepted rows as columns."""
    rows, rejected = read(content, kind, gtin, first_line, max_rows)
    columns = Columns(
        keys=[r.unit_key(gtin) for r in rows],
        positions=[r.position for r in rows],
        lots=[r.lot for r in rows],
        expiries=[r.expiry for r in rows],
    )
    return columns, rejected


def read(
    content: bytes | str,
    kind: ImportKind,
    gtin: str,
    first_line: int = 1,
    max_rows: int = DEFAULT_MAX_ROWS,
) -> tuple[list[ImportRow], list[Rejection]]:
    """The valid rows of an import file (or piece) for the product ``gtin``, and the refused
    ones. Duplicates are found within what is given; across pieces, by the caller.

    Rows are counted as they are read: InvalidInput as soon as there are over ``max_rows``,
    before a row more is held (a file of five million repeats once grew to 2.6 GB here).
    """
    text = decode(content) if isinstance(content, bytes) else content
    accepted: list[ImportRow] = []
    rejected: list[Rejection] = []
    seen: dict[str, str] = {}
    count = 0

    def counted() -> None:
        nonlocal count
        count += 1
        if count > max_rows:
            raise too_many_rows(max_rows)

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
                Rejection(row.position, "duplicate_in_file", duplicate_detail(seen[row.serial]))
            )
        else:
            seen[row.serial] = row.position
            accepted.append(row)

    if kind is ImportKind.EPCIS:
        if len(text) > MAX_EPCIS_CHARS:
            raise InvalidInput(
                f"an EPCIS document holds at most {MAX_EPCIS_CHARS} characters", field="file"
            )
        try:
            document = epcis.load_document(text)
            commissioned, refused = epcis.parse_commissioning(document, max_rows)
        except InvalidCode as exc:
            raise InvalidInput(exc.detail, field="file") from None
        except epcis.TooManyEntries:
            raise too_many_rows(max_rows) from None
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
            counted()
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
        for position, fields in _csv_rows(text, first_line):
            counted()
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
    return accepted, rejected
