"""GS1 Digital Link URIs, read as the GS1 Digital Link URI syntax standard says.

Where the standard's text leaves a doubt, GS1's reference implementation decides: the
Digital Link parser of gs1-syntax-engine (``src/c-lib/dl.c``) in its default mode. Its
own test vectors are run against this module (tests/unit/test_digital_link_reference.py).

How a URI is read:

- the scheme is ``http`` or ``https``, all lower or all upper case;
- a fragment (``#...``) is ignored;
- the primary key is found from the END of the path: walking back over ``/AI/value``
  pairs, the first AI that is a primary key starts the GS1 part, and everything before it
  is the stem (``https://brand.example/00/faux/00/006141411234567890`` has the stem
  ``https://brand.example/00/faux``);
- the path's key qualifiers are an ordered subset of one of the primary key's qualifier
  sequences (``/01/../22/../10/../21/..`` or ``/01/../235/..``, never mixed);
- the query carries GS1 data attributes (numeric AIs; one that is not an AI is refused)
  and other parameters (``linkType``, ``utm_source``, singletons), kept in ``extra``; an AI
  that could go in the path (``?10=ABC`` for a GTIN) belongs there and is refused;
- each AI appears once, in the path or the query.

Lenient mode accepts printing mistakes that a brand cannot recall from the shelves and
records each by name in ``DigitalLink.tolerances``; ``strict=True`` refuses them:

``zero_suppressed_gtin``    a GTIN-8, -12 or -13 written for (01), read as its GTIN-14
``mixed_case_scheme``       ``Https://``: browsers open it, the standard does not allow it
``key_qualifier_in_query``  ``?21=S`` or ``?10=L`` for a GTIN: moved to the path

Compressed URIs are not read here.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from transparency.domain import gs1
from transparency.domain.errors import InvalidCode

Pair = tuple[str, str]
_Tolerate = Callable[[str, str], None]

TOLERANCES = ("zero_suppressed_gtin", "mixed_case_scheme", "key_qualifier_in_query")

# The characters dl.c lets into a URI (RFC 3986 reserved + unreserved + "%").
_URI_CHARS = re.compile(r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]*")
_SCHEMES = frozenset({"http://", "https://", "HTTP://", "HTTPS://"})
_SCHEME = re.compile(r"(https?)://", re.IGNORECASE)
_PATH = re.compile(rf"(?:/(?:{gs1.PCHAR})*)*")
_NUMERIC = re.compile(r"[0-9]+")


@dataclass(frozen=True, slots=True)
class DigitalLink:
    """A GS1 Digital Link URI taken apart; ``uri()`` puts it back together canonically."""

    stem: str  # scheme://host[/path prefix] before the primary key; scheme in lower case
    primary: Pair  # (ai, value), e.g. ("01", "09506000134352")
    qualifiers: tuple[Pair, ...]  # key qualifiers from the path, in path order
    attributes: tuple[Pair, ...]  # GS1 data attributes (AIs) from the query string
    extra: tuple[Pair, ...]  # non-AI query parameters (linkType, context, ...)
    tolerances: tuple[str, ...] = ()  # printing mistakes accepted (lenient mode only)

    def ais(self) -> tuple[Pair, ...]:
        """Primary key, key qualifiers, then data attributes."""
        return (self.primary, *self.qualifiers, *self.attributes)

    def uri(self, stem: str | None = None) -> str:
        """The canonical uncompressed URI on ``stem`` (default: this URI's own stem).

        Key and qualifiers in the path, data attributes in the query in the order read;
        ``extra`` parameters are not part of the GS1 data and are left out.
        """
        base = (self.stem if stem is None else stem).rstrip("/")
        in_path = (self.primary, *self.qualifiers)
        path = "".join(f"/{ai}/{gs1.quote(value)}" for ai, value in in_path)
        query = "&".join(f"{ai}={gs1.quote(value)}" for ai, value in self.attributes)
        return base + path + (f"?{query}" if query else "")


def parse_digital_link(uri: str, *, strict: bool = False) -> DigitalLink:
    """A GS1 Digital Link URI -> DigitalLink, or InvalidCode (``invalid_uri``, ...)."""
    if not isinstance(uri, str):
        raise InvalidCode("unknown_format", "a GS1 Digital Link URI is text")
    if len(uri) > gs1.MAX_LENGTH:
        raise InvalidCode("unknown_format", f"longer than {gs1.MAX_LENGTH} characters")
    tolerances: list[str] = []

    def tolerate(name: str, detail: str) -> None:
        if strict:
            raise InvalidCode(name, f"{detail} (accepted only in lenient mode)")
        if name not in tolerances:
            tolerances.append(name)

    if _URI_CHARS.fullmatch(uri) is None:
        raise InvalidCode("invalid_uri", "the URI has characters that must be percent-encoded")
    scheme = _SCHEME.match(uri)
    if scheme is None:
        raise InvalidCode("invalid_uri", "a GS1 Digital Link URI starts with http:// or https://")
    if scheme.group(0) not in _SCHEMES:
        tolerate("mixed_case_scheme", f"the scheme {scheme.group(1)!r} mixes upper and lower case")
    rest = uri[scheme.end() :].partition("#")[0]  # the fragment is the browser's, not data
    rest, has_query, query = rest.partition("?")
    authority, slash, path = rest.partition("/")
    _check_authority(authority)
    if not slash:
        raise InvalidCode("unknown_format", "the URI has no path, so no GS1 primary key")
    path = "/" + path
    if _PATH.fullmatch(path) is None:
        raise InvalidCode("invalid_uri", "the URI path has characters that must be encoded")

    segments = path.split("/")[1:]
    start = _primary_key_index(segments)
    stem = f"{scheme.group(1).lower()}://{authority}" + "".join(f"/{s}" for s in segments[:start])
    pairs = segments[start:]
    path_ais: list[Pair] = []
    for index in range(0, len(pairs), 2):
        ai, raw = pairs[index], pairs[index + 1]
        if not raw:
            raise InvalidCode("invalid_uri", f"({ai}) has an empty value in the URI path")
        path_ais.append((ai, _gtin14(ai, unquote(raw, query=False), tolerate)))
    primary, *qualifiers = path_ais
    _refuse_repeats(path_ais, "in the URI path")
    if not _valid_sequence([ai for ai, _ in path_ais]):
        order = " | ".join("/".join(seq) or "none" for seq in gs1.PRIMARY_KEYS[primary[0]])
        raise InvalidCode(
            "bad_key_qualifier_order",
            f"the path's AIs {'/'.join(ai for ai, _ in path_ais)} are not ({primary[0]}) with "
            f"its key qualifiers in order ({order}); data attributes go in the query",
        )

    attributes, extra = _query(query if has_query else "", tolerate)
    path_keys = {ai for ai, _ in path_ais}
    for ai, _ in attributes:
        if ai in path_keys:
            raise InvalidCode("conflicting_ai", f"({ai}) is both in the URI path and the query")
    _refuse_repeats(attributes, "in the query")
    kept: list[Pair] = []
    for ai, value in attributes:
        position = _qualifier_position([key for key, _ in [primary, *qualifiers]], ai)
        if position is not None:
            tolerate("key_qualifier_in_query", f"({ai}) is a key qualifier: it goes in the path")
            qualifiers.insert(position - 1, (ai, value))
        elif ai in gs1.NOT_DATA_ATTRIBUTES:
            raise InvalidCode(
                "invalid_ai", f"({ai}) is not a GS1 Digital Link data attribute (query) here"
            )
        else:
            kept.append((ai, value))
    checked = [gs1.check_element(ai, value) for ai, value in [primary, *qualifiers, *kept]]
    return DigitalLink(
        stem=stem,
        primary=checked[0],
        qualifiers=tuple(checked[1 : 1 + len(qualifiers)]),
        attributes=tuple(checked[1 + len(qualifiers) :]),
        extra=tuple(extra),
        tolerances=tuple(tolerances),
    )


def unquote(text: str, *, query: bool) -> str:
    """Percent-decode one component (UTF-8); ``+`` is a space in a query, itself in a path."""
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
            continue
        out.extend(b" " if query and char == "+" else char.encode())
        index += 1
    try:
        return out.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidCode("invalid_uri", f"percent-encoding in {text!r} is not UTF-8") from exc


# ---------------------------------------------------------------- internals


def _check_authority(authority: str) -> None:
    if "@" in authority:
        raise InvalidCode("invalid_uri", "a GS1 Digital Link URI has no user information")
    host, _, port = authority.rpartition(":") if _has_port(authority) else (authority, "", "")
    if not host or len(host) > 253 or not gs1.HOST.fullmatch(host):
        raise InvalidCode("invalid_uri", f"{host!r} is not a valid host name")
    if port and (not port.isdigit() or not port.isascii() or int(port) > 65535):
        raise InvalidCode("invalid_uri", f"{port!r} is not a valid port")


def _has_port(authority: str) -> bool:
    return ":" in authority.rpartition("]")[2]


def _is_ai(segment: str) -> bool:
    return 2 <= len(segment) <= 4 and _NUMERIC.fullmatch(segment) is not None and gs1.is_ai(segment)


def _primary_key_index(segments: list[str]) -> int:
    """Where the GS1 part of the path starts: walking back over AI/value pairs from the end,
    the first AI that is a primary key. A segment that is not an AI ends the walk."""
    index = len(segments) - 2
    while index >= 0 and _is_ai(segments[index]):
        if segments[index] in gs1.PRIMARY_KEYS:
            return index
        index -= 2
    if any(segment in gs1.PRIMARY_KEYS for segment in segments):
        raise InvalidCode("invalid_uri", "the URI path does not end in AI/value pairs")
    raise InvalidCode("unknown_format", "the URI path holds no GS1 primary key")


def _valid_sequence(ais: list[str]) -> bool:
    """Whether ``ais`` is a primary key then an ordered subset of one qualifier sequence."""
    key, *rest = ais
    for sequence in gs1.PRIMARY_KEYS.get(key, ()):
        position = 0
        for ai in rest:
            if ai not in sequence[position:]:
                break
            position = sequence.index(ai, position) + 1
        else:
            return True
    return False


def _qualifier_position(path: list[str], ai: str) -> int | None:
    """Where ``ai`` would make a valid path if inserted (1..len), or None."""
    for position in range(1, len(path) + 1):
        if _valid_sequence([*path[:position], ai, *path[position:]]):
            return position
    return None


def _gtin14(ai: str, value: str, tolerate: _Tolerate) -> str:
    if ai == "01" and value.isascii() and value.isdigit() and len(value) in (8, 12, 13):
        tolerate("zero_suppressed_gtin", f"(01) {value} is a GTIN-{len(value)}, not 14 digits")
        return value.zfill(14)
    return value


def _query(query: str, tolerate: _Tolerate) -> tuple[list[Pair], list[Pair]]:
    attributes: list[Pair] = []
    extra: list[Pair] = []
    for parameter in query.split("&"):
        if not parameter:
            continue
        key, equals, raw = parameter.partition("=")
        if not (equals and key.isascii() and key.isdigit()):
            # Other parameters pass through (linkType, utm_source, singletons); they are
            # not GS1 data, so a bad escape in one is kept as written rather than refused.
            extra.append((_lenient_unquote(key), _lenient_unquote(raw)))
            continue
        if not _is_ai(key):
            raise InvalidCode("invalid_ai", f"({key}) in the query is not a GS1 AI")
        if not raw:
            raise InvalidCode("invalid_uri", f"({key}) has an empty value in the query")
        attributes.append((key, _gtin14(key, unquote(raw, query=True), tolerate)))
    return attributes, extra


def _lenient_unquote(text: str) -> str:
    try:
        return unquote(text, query=True)
    except InvalidCode:
        return text


def _refuse_repeats(ais: list[Pair], where: str) -> None:
    seen: set[str] = set()
    for ai, _ in ais:
        if ai in seen:
            raise InvalidCode("duplicate_ai", f"({ai}) appears twice {where}")
        seen.add(ai)
