"""GS1 codes in their three written forms, in both directions.

``element_string``  the raw data of a GS1 symbol: AI + value, FNC1 written as GS (0x1D)
``bracketed``       the human readable interpretation: ``(01)09506000134352(21)ABC``
``digital_link``    a GS1 Digital Link URI: ``https://id.gs1.org/01/09506000134352/21/ABC``

biip knows the AI table, each AI's value syntax, check digits and dates. It is lenient
where scanners are sloppy, so this module adds the strictness a verification service
needs: ASCII only, no silently truncated variable-length values, duplicate and
conflicting AIs refused, and the GS1 Digital Link URI rules read from the standard (the
URI is split here because biip ignores unknown or repeated query AIs, and the domain may
not import urllib).

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
_NUMERIC_KEY = re.compile(r"[0-9]{2,4}")

# RFC 3986, appendix B, with the scheme required.
_URI = re.compile(r"([^:/?#]+)://([^/?#]*)([^?#]*)(?:\?([^#]*))?(#.*)?", re.DOTALL)
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOST = re.compile(rf"(?:{_LABEL})(?:\.{_LABEL})*\.?|\[[0-9A-Fa-f:.]+\]")
_PCHAR = r"[A-Za-z0-9\-._~!$&'()*+,;=:@]|%[0-9A-Fa-f]{2}"
_PATH = re.compile(rf"(?:/(?:{_PCHAR})*)*")
_QUERY = re.compile(rf"(?:{_PCHAR}|[/?])*")
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")

# GS1 Digital Link URI syntax: each primary key with its key qualifiers, in the only order
# they may appear in the path.
KEY_QUALIFIERS: dict[str, tuple[str, ...]] = {
    "01": ("22", "10", "21", "235"),
    "8006": ("22", "10", "21"),
    "8010": ("8011",),
    "414": ("254", "7040"),
    "415": ("8020",),
    "417": ("7040",),
    "8017": ("8019",),
    "8018": ("8019",),
    "8004": ("7040",),
    "00": (),
    "253": (),
    "255": (),
    "401": (),
    "402": (),
    "8003": (),
    "8013": (),
}
_CHECKED_KEYS = ("gtin_error", "sscc_error", "gln_error")


@dataclass(frozen=True, slots=True)
class Gs1Code:
    """A parsed GS1 code: every (AI, value) in the order given, and how it was written."""

    ais: Ais
    form: Form
    symbology_identifier: str | None = None

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


def parse_gs1(text: str) -> Gs1Code:
    """Scanned or typed GS1 text in any of the three forms -> a Gs1Code, or InvalidCode."""
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
            return Gs1Code(_parse_digital_link(body), "digital_link", symbology)
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

    Raises ValueError for AIs that no URI can carry: none is a primary key, or one repeats.
    """
    keys = [ai for ai, _ in ais]
    if len(set(keys)) != len(keys):
        raise ValueError("a GS1 Digital Link URI holds each AI once")
    values = dict(ais)
    primary = next((ai for ai in keys if ai in KEY_QUALIFIERS), None)
    if primary is None:
        raise ValueError("a GS1 Digital Link URI needs a primary key such as (01)")
    in_path = [primary, *(ai for ai in KEY_QUALIFIERS[primary] if ai in values)]
    path = "".join(f"/{ai}/{_quote(values[ai])}" for ai in in_path)
    query = "&".join(f"{ai}={_quote(values[ai])}" for ai in keys if ai not in in_path)
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


def _is_ai(ai: str) -> bool:
    try:
        _ai(ai)
    except InvalidCode:
        return False
    return True


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
    if not _is_ai(ai):
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


def _parse_digital_link(uri: str) -> Ais:
    match = _URI.fullmatch(uri)
    if match is None:
        raise InvalidCode("invalid_uri", "not a well-formed URI")
    scheme, authority, path, query, fragment = match.groups()
    if scheme.lower() not in ("http", "https"):
        raise InvalidCode("invalid_uri", f"a GS1 Digital Link URI is http or https, not {scheme}")
    _check_authority(authority)
    if fragment is not None:
        raise InvalidCode("invalid_uri", "a GS1 Digital Link URI has no fragment (#...)")
    if not _PATH.fullmatch(path) or (query is not None and not _QUERY.fullmatch(query)):
        raise InvalidCode("invalid_uri", "the URI has characters that must be percent-encoded")
    segments = path.split("/")[1:]
    if "" in segments:
        raise InvalidCode("invalid_uri", "the URI path has an empty segment")
    in_path = _path_ais(segments)
    ais = in_path + _query_ais(query or "", in_path)
    return tuple(_element(ai, value) for ai, value in ais)


def _check_authority(authority: str) -> None:
    if "@" in authority:
        raise InvalidCode("invalid_uri", "a GS1 Digital Link URI has no user information")
    host, _, port = authority.rpartition(":") if _has_port(authority) else (authority, "", "")
    if not host or len(host) > 253 or not _HOST.fullmatch(host):
        raise InvalidCode("invalid_uri", f"{host!r} is not a valid host name")
    if port and (not port.isdigit() or not port.isascii() or int(port) > 65535):
        raise InvalidCode("invalid_uri", f"{port!r} is not a valid port")


def _has_port(authority: str) -> bool:
    return ":" in authority.rpartition("]")[2]


def _path_ais(segments: list[str]) -> list[tuple[str, str]]:
    start = next(
        (
            index
            for index, segment in enumerate(segments)
            if segment in KEY_QUALIFIERS and (len(segments) - index) % 2 == 0
        ),
        None,
    )
    if start is None:
        if any(segment in KEY_QUALIFIERS for segment in segments):
            raise InvalidCode("invalid_uri", "the URI path does not end in AI/value pairs")
        raise InvalidCode("unknown_format", "the URI path holds no GS1 primary key")
    pairs = segments[start:]
    primary, primary_value = pairs[0], _unquote(pairs[1])
    if primary == "01" and primary_value.isdigit() and len(primary_value) in (8, 12, 13):
        primary_value = primary_value.zfill(14)  # the URI may carry a GTIN-8, -12 or -13
    ais = [(primary, primary_value)]
    allowed = KEY_QUALIFIERS[primary]
    last = -1
    for index in range(2, len(pairs), 2):
        key, value = _unquote(pairs[index]), _unquote(pairs[index + 1])
        _check_key(key)
        if any(key == seen for seen, _ in ais):
            raise InvalidCode("duplicate_ai", f"({key}) appears twice in the URI path")
        if key not in allowed:
            raise InvalidCode(
                "bad_key_qualifier_order",
                f"({key}) is not a key qualifier of ({primary}); data attributes go in the query",
            )
        if allowed.index(key) < last:
            order = " -> ".join(allowed)
            raise InvalidCode(
                "bad_key_qualifier_order",
                f"({key}) is out of order; key qualifiers of ({primary}) follow {order}",
            )
        last = allowed.index(key)
        ais.append((key, value))
    return ais


def _query_ais(query: str, in_path: list[tuple[str, str]]) -> list[tuple[str, str]]:
    path_keys = {ai for ai, _ in in_path}
    ais: list[tuple[str, str]] = []
    for parameter in query.split("&"):
        if not parameter:
            continue
        raw_key, _, raw_value = parameter.partition("=")
        key = _unquote(raw_key)
        if not (key.isascii() and key.isdigit()):
            continue  # the standard lets other parameters through (utm_source, linkType ...)
        _check_key(key)
        if key in path_keys:
            raise InvalidCode("conflicting_ai", f"({key}) is both in the URI path and the query")
        if key in KEY_QUALIFIERS:
            raise InvalidCode("conflicting_ai", f"({key}) is a second primary key in the query")
        if any(key == seen for seen, _ in ais):
            raise InvalidCode("duplicate_ai", f"({key}) appears twice in the query")
        ais.append((key, _unquote(raw_value)))
    return ais


def _check_key(key: str) -> None:
    if not (key.isascii() and key.isdigit()):
        raise InvalidCode("invalid_uri", f"{key!r} is not a numeric GS1 Application Identifier")
    if not (_NUMERIC_KEY.fullmatch(key) and _is_ai(key)):
        raise InvalidCode("invalid_ai", f"({key}) is not a GS1 Application Identifier")


def _unquote(text: str) -> str:
    """Percent-decode one URI component (UTF-8); ``+`` stays a plus, as RFC 3986 says."""
    out = bytearray()
    index = 0
    while index < len(text):
        char = text[index]
        if char == "%":
            pair = text[index + 1 : index + 3]
            if len(pair) != 2 or not all(c in "0123456789abcdefABCDEF" for c in pair):
                raise InvalidCode("invalid_uri", f"bad percent-encoding in {text!r}")
            out.append(int(pair, 16))
            index += 3
        else:
            out.extend(char.encode())
            index += 1
    try:
        return out.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidCode("invalid_uri", f"percent-encoding in {text!r} is not UTF-8") from exc


def _quote(value: str) -> str:
    return "".join(
        char if char in _UNRESERVED else "".join(f"%{byte:02X}" for byte in char.encode())
        for char in value
    )
