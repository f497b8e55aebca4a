"""GS1 codes in their three written forms, in both directions.

``element_string``  the raw data of a GS1 symbol: AI + value, FNC1 written as GS (0x1D)
``bracketed``       the human readable interpretation: ``(01)09506000134352(21)ABC``
``digital_link``    a GS1 Digital Link URI: ``https://id.gs1.org/01/09506000134352/21/ABC``

biip knows the AI table, each AI's value syntax, check digits and dates. It is lenient
where scanners are sloppy, so this module adds the strictness a verification service
needs: ASCII only, no silently truncated variable-length values, duplicate and
conflicting AIs refused. A Digital Link URI is read by ``digital_link`` (the standard's
rules, gs1-syntax-engine as arbiter), which checks each AI here; this module keeps the
syntax dictionary's Digital Link tables (``PRIMARY_KEYS``, ``NOT_DATA_ATTRIBUTES``) that
both directions use.

``parse_gs1()`` is total: it returns a ``Gs1Code`` or raises ``InvalidCode``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Literal

from biip import BiipException
from biip.checksums import gs1_standard_check_digit
from biip.gs1_application_identifiers import GS1ApplicationIdentifier
from biip.gs1_element_strings import GS1ElementString

from transparency.domain.errors import InvalidCode

Form = Literal["element_string", "bracketed", "digital_link"]
Ais = tuple[tuple[str, str], ...]

GS = "\x1d"
MAX_LENGTH = 4096

# Keyboard-wedge scanners cannot type 0x1D and send one of these instead. "<GS>" is made
# of set-82 characters, so a value really containing "<GS>" cannot be read; no real serial
# does that, and refusing these spellings would refuse those scanners.
_SEPARATOR_SPELLINGS = re.compile(r"<GS>|\{GS\}|\^", re.IGNORECASE)
_SYMBOLOGY_IDENTIFIER = re.compile(r"\][A-Za-z][0-9]")
_BRACKETED_AI = re.compile(r"\(([0-9]{2,4})\)")
_HAS_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")

# RFC 3986 host names and path characters, for digital_link.
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
HOST = re.compile(rf"(?:{_LABEL})(?:\.{_LABEL})*\.?|\[[0-9A-Fa-f:.]+\]")
PCHAR = r"[A-Za-z0-9\-._~!$&'()*+,;=:@]|%[0-9A-Fa-f]{2}"

# From the GS1 Barcode Syntax Dictionary (release 2026-01-27), its ``dlpkey`` attributes:
# each primary key with its alternative sequences of key qualifiers. A path holds the key
# then an ordered subset of ONE sequence.
PRIMARY_KEYS: dict[str, tuple[tuple[str, ...], ...]] = {
    "00": ((),),
    "01": (("22", "10", "21"), ("235",)),
    "253": ((),),
    "255": ((),),
    "401": ((),),
    "402": ((),),
    "414": (("254",), ("7040",)),
    "415": (("8020",),),
    "417": (("7040",),),
    "8003": ((),),
    "8004": (("7040",),),
    "8006": (("22", "10", "21"),),
    "8010": (("8011",),),
    "8013": ((),),
    "8017": (("8019",),),
    "8018": (("8019",),),
}

# The same dictionary's AIs WITHOUT the "?" flag ("permitted as a GS1 Digital Link data
# attribute"): these never appear in a query.
NOT_DATA_ATTRIBUTES = frozenset(
    {"03", "21", "22", "235", "254", "7040", "7041", "8011", "8014", "8019", "8020"}
    | {"8040", "8041", "8042", "8043", "8200"}
)

_CHECKED_KEYS = ("gtin_error", "sscc_error", "gln_error")


@dataclass(frozen=True, slots=True)
class Gs1Code:
    """A parsed GS1 code: every (AI, value) in the order given, and how it was written."""

    ais: Ais
    form: Form
    symbology_identifier: str | None = None
    tolerances: tuple[str, ...] = ()  # printing mistakes accepted (see digital_link)

    @property
    def gtin(self) -> str | None:
        return self.value("01")

    @property
    def serial(self) -> str | None:
        return self.value("21")

    def value(self, ai: str) -> str | None:
        for key, value in self.ais:
            if key == ai:
                return value
        return None


def split_symbology_identifier(text: str) -> tuple[str | None, str]:
    """``"]d2010950..."`` -> ``("]d2", "010950...")``; text without one -> ``(None, text)``."""
    if _SYMBOLOGY_IDENTIFIER.match(text):
        return text[:3], text[3:]
    return None, text


def parse_gs1(text: str, *, strict: bool = False) -> Gs1Code:
    """Scanned or typed GS1 text in any of the three forms -> a Gs1Code, or InvalidCode.

    ``strict`` refuses the printing mistakes a Digital Link URI is otherwise read despite
    (``digital_link.TOLERANCES``); the lenient default lists them in ``tolerances``.
    """
    if not isinstance(text, str):
        raise InvalidCode("unknown_format", "a GS1 code is text")
    stripped = text.strip()
    if len(stripped) > MAX_LENGTH:
        raise InvalidCode("unknown_format", f"longer than {MAX_LENGTH} characters")
    symbology, body = split_symbology_identifier(stripped)
    try:
        if body.startswith("("):
            return Gs1Code(_parse_bracketed(body), "bracketed", symbology)
        if _HAS_SCHEME.match(body):
            # Imported here: digital_link builds on this module's AI checks.
            from transparency.domain.digital_link import parse_digital_link

            link = parse_digital_link(body, strict=strict)
            return Gs1Code(link.ais(), "digital_link", symbology, link.tolerances)
        if body[:1] in tuple("0123456789") or _SEPARATOR_SPELLINGS.match(body) or body[:1] == GS:
            return Gs1Code(_parse_element_string(body), "element_string", symbology)
    except (BiipException, ValueError) as exc:  # UnicodeError is a ValueError
        raise InvalidCode("invalid_ai", str(exc)) from exc
    raise InvalidCode("unknown_format", "not a GS1 element string, bracketed text or URI")


def require_gtin_serial(code: Gs1Code) -> tuple[str, str]:
    """The (GTIN-14, serial) that identify one unit, or InvalidCode if either is absent."""
    if code.gtin is None:
        raise InvalidCode("missing_gtin", "the GS1 code has no GTIN (01)")
    if code.serial is None:
        raise InvalidCode("missing_serial", "the GS1 code has no serial number (21)")
    return code.gtin, code.serial


def is_valid_serial(serial: str) -> bool:
    """Whether ``serial`` is a valid AI (21): 1 to 20 characters of GS1 character set 82."""
    return isinstance(serial, str) and re.fullmatch(_ai("21").pattern, "21" + serial) is not None


# ---------------------------------------------------------------- writing


def element_string(ais: Ais, *, separator: str = GS) -> str:
    """AIs and values concatenated, with ``separator`` (FNC1) only where GS1 requires one.

    GS1 requires FNC1 after every AI outside the predefined-length table, which biip
    records as ``separator_required`` (it includes a few fixed-length AIs such as 7003).
    An AI that GS1 does not define raises InvalidCode("invalid_ai").
    """
    parts: list[str] = []
    for index, (ai, value) in enumerate(ais):
        parts.append(ai + value)
        if index < len(ais) - 1 and _ai(ai).separator_required:
            parts.append(separator)
    return "".join(parts)


def bracketed(ais: Ais) -> str:
    """``(01)09506000134352(21)ABC``; values are not escaped (our unit keys use this form)."""
    return "".join(f"({ai}){value}" for ai, value in ais)


def digital_link(ais: Ais, *, base: str = "https://id.gs1.org") -> str:
    """A GS1 Digital Link URI: primary key and its qualifiers in the path, the rest queried.

    The first primary key leads; of its qualifier sequences, the one the data fills most
    goes in the path (as gs1-syntax-engine's gs1_generateDLuri picks it). Raises ValueError
    for AIs that no URI can carry: none is a primary key, one repeats, or one left for the
    query is not a data attribute (a (21) beside a (235)).
    """
    keys = [ai for ai, _ in ais]
    if len(set(keys)) != len(keys):
        raise ValueError("a GS1 Digital Link URI holds each AI once")
    values = dict(ais)
    primary = next((ai for ai in keys if ai in PRIMARY_KEYS), None)
    if primary is None:
        raise ValueError("a GS1 Digital Link URI needs a primary key such as (01)")
    sequence = max(PRIMARY_KEYS[primary], key=lambda seq: sum(ai in values for ai in seq))
    in_path = [primary, *(ai for ai in sequence if ai in values)]
    # Predefined-length AIs first, as the reference implementation writes them.
    in_query = sorted((ai for ai in keys if ai not in in_path), key=lambda ai: _is_variable(ai))
    if any(ai in NOT_DATA_ATTRIBUTES for ai in in_query):
        raise ValueError(f"({in_query}) cannot all be GS1 Digital Link data attributes")
    path = "".join(f"/{ai}/{quote(values[ai])}" for ai in in_path)
    query = "&".join(f"{ai}={quote(values[ai])}" for ai in in_query)
    return base.rstrip("/") + path + (f"?{query}" if query else "")


# ---------------------------------------------------------------- parsing


@cache
def _ai(ai: str) -> GS1ApplicationIdentifier:
    try:
        found = GS1ApplicationIdentifier.extract(ai)
    except BiipException:
        found = None
    if found is None or found.ai != ai:  # extract() matches a prefix: "2100" would find (21)
        raise InvalidCode("invalid_ai", f"({ai}) is not a GS1 Application Identifier")
    return found


def _is_variable(ai: str) -> bool:
    return bool(_ai(ai).separator_required)


def is_ai(ai: str) -> bool:
    """Whether ``ai`` is a GS1 Application Identifier (exactly, not a prefix of one)."""
    try:
        _ai(ai)
    except InvalidCode:
        return False
    return True


def check_element(ai: str, value: str) -> tuple[str, str]:
    """One (AI, value) checked against the AI's syntax, check digit and date rules."""
    return _element(ai, value)


# The AIs nearly every unit code carries are checked here, against biip's own patterns:
# going through biip costs about 60 µs per element, which would cap an import near 15,000
# rows/s. Anything else, and any case these rules cannot settle, goes through biip.
_GS1_DATA = re.compile("[!-~\x1d]*")
_FAST_FIXED = {"01": 14, "11": 6, "13": 6, "15": 6, "16": 6, "17": 6}
_FAST_VARIABLE = frozenset({"10", "21"})
_DATE_AIS = frozenset({"11", "13", "15", "16", "17"})
_DAYS_IN_MONTH = (0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


@cache
def _fast_pattern(ai: str) -> re.Pattern[str]:
    return re.compile(_ai(ai).pattern, re.ASCII)  # ASCII: \d must not match other digits


@lru_cache(maxsize=4096)
def _gtin_check_digit_ok(gtin: str) -> bool:
    # Cached: the rows of an import nearly all carry their product's one GTIN.
    return bool(gs1_standard_check_digit(gtin[:-1]) == int(gtin[-1]))


def _fast_element(ai: str, value: str) -> tuple[str, str] | None:
    """The element checked without biip, or None when only biip can tell."""
    if _fast_pattern(ai).fullmatch(ai + value) is None:
        raise InvalidCode("invalid_ai", f"({ai}) {value!r} is not valid")
    if ai == "01" and not _gtin_check_digit_ok(value):
        raise InvalidCode("bad_check_digit", f"({ai}) {value}: invalid GTIN check digit")
    if ai in _DATE_AIS:
        month, day = int(value[2:4]), int(value[4:6])
        if (month, day) == (2, 29):
            return None  # whether that day exists depends on the century biip picks
        if not 1 <= month <= 12 or day > _DAYS_IN_MONTH[month]:
            raise InvalidCode("invalid_ai", f"({ai}) {value} is not a valid date")
    return ai, value


def _element(ai: str, value: str, *, fast: bool = True) -> tuple[str, str]:
    """One (AI, value) checked against the AI's syntax, check digit and date rules."""
    if fast and (ai in _FAST_FIXED or ai in _FAST_VARIABLE):
        checked = _fast_element(ai, value)
        if checked is not None:
            return checked
    if not is_ai(ai):
        raise InvalidCode("invalid_ai", f"({ai}) is not a GS1 Application Identifier")
    # biip's patterns use \d, which also matches non-ASCII digits; GS1 data is ASCII.
    if not value.isascii() or not value.isprintable():
        raise InvalidCode("invalid_ai", f"({ai}) has characters outside the GS1 character set")
    try:
        parsed = GS1ElementString.parse(ai + value)
    except BiipException as exc:
        raise InvalidCode("invalid_ai", f"({ai}) {value!r} is not valid: {exc}") from exc
    for attribute in _CHECKED_KEYS:
        error = getattr(parsed, attribute)
        if error:
            reason = "bad_check_digit" if "check digit" in error.lower() else "invalid_ai"
            raise InvalidCode(reason, f"({ai}) {value}: {error}")
    return ai, value


def _refuse_duplicates(ais: list[tuple[str, str]]) -> None:
    # GS1 General Specifications 4.14.1 forbids one AI twice with different values and
    # tolerates an identical repeat. A repeat adds nothing to a code we issue or verify, and
    # accepting "identical" invites comparing values that differ only in how they were
    # written, so both are refused.
    seen: dict[str, str] = {}
    for ai, value in ais:
        if ai in seen:
            same = "the same value" if seen[ai] == value else "different values"
            raise InvalidCode("duplicate_ai", f"({ai}) appears twice, with {same}")
        seen[ai] = value


def _fast_split(chunk: str) -> list[tuple[str, str]] | None:
    """Split a GS-free chunk made only of the common AIs; None when biip must do it."""
    found: list[tuple[str, str]] = []
    rest = chunk
    while rest:
        ai = rest[:2]
        if ai in _FAST_VARIABLE:
            found.append((ai, rest[2:]))  # a variable-length value ends its chunk
            return found
        length = _FAST_FIXED.get(ai)
        if length is None or len(rest) < 2 + length:
            return None
        found.append((ai, rest[2 : 2 + length]))
        rest = rest[2 + length :]
    return found


def _parse_element_string(body: str, *, fast: bool = True) -> Ais:
    data = _SEPARATOR_SPELLINGS.sub(GS, body)
    if _GS1_DATA.fullmatch(data) is None:
        raise InvalidCode("invalid_ai", "the data has characters outside the GS1 character set")
    chunks = data.split(GS)
    # A leading FNC1 (written as GS) marks GS1 data; some encoders also end with one.
    if chunks[0] == "":
        chunks.pop(0)
    if chunks and chunks[-1] == "":
        chunks.pop()
    if not chunks or "" in chunks:
        raise InvalidCode("invalid_ai", "empty element string between separators")
    ais: list[tuple[str, str]] = []
    for chunk in chunks:
        split = _fast_split(chunk) if fast else None
        if split is not None:
            ais.extend(_element(ai, value) for ai, value in split)
            continue
        rest = chunk
        while rest:
            found = GS1ElementString.extract(rest)
            rest = rest[len(found) :]
            if rest and found.ai.separator_required:
                # biip would stop a variable-length value at its maximum length and read
                # the remainder as the next AI; such data is either too long or lacks FNC1.
                raise InvalidCode(
                    "invalid_ai",
                    f"({found.ai.ai}) must be followed by a separator (GS) or end the data",
                )
            ais.append(_element(found.ai.ai, found.value, fast=fast))
    _refuse_duplicates(ais)
    return tuple(ais)


def _parse_bracketed(body: str) -> Ais:
    matches = list(_BRACKETED_AI.finditer(body))
    if not matches or matches[0].start() != 0:
        raise InvalidCode("invalid_ai", "bracketed text must start with an AI such as (01)")
    ais: list[tuple[str, str]] = []
    for match, following in zip(matches, [*matches[1:], None], strict=True):
        end = len(body) if following is None else following.start()
        # Values cannot contain whitespace, so spaces around them are layout.
        ais.append(_element(match.group(1), body[match.end() : end].strip()))
    _refuse_duplicates(ais)
    return tuple(ais)


_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


def quote(value: str) -> str:
    """Percent-encode one URI path segment or query value: only unreserved characters stay."""
    return "".join(
        char if char in _UNRESERVED else "".join(f"%{byte:02X}" for byte in char.encode())
        for char in value
    )
