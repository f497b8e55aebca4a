"""The code formats, in both directions: encode, parse, sign and verify.

Three formats carry a unit's identity:

``transparency``  ``TP`` + 28 Crockford base32 symbols (30 characters, QR alphanumeric).
                  27 symbols hold 135 bits, most significant first; the last symbol is
                  a GF(32) check symbol, so any single wrong character is caught before
                  any key is looked at. Two versions share that length, the check symbol
                  and the 48-bit tag (HMAC-SHA256 under the brand key's secret); new codes
                  are issued as version 2, version-1 codes keep verifying:

                      bits       2      key id     serial (CSPRNG)   tag
                      version 2  10   | 22       | 63              | 48
                      version 1  01   | 13       | 72              | 48
                      (00 and 11 are refused as unsupported versions)
``offline``       ``TPS`` + 121 symbols: the same 87-bit payload (version | key id |
                  serial, in either version's layout), signed with the brand key's
                  Ed25519 private key (512-bit signature), and a check symbol. Anyone with
                  the public key (GET /v1/keys) can verify it offline. QR version 6 at
                  error correction M holds it.
``gs1``           GS1 (01) GTIN + (21) serial, as element string, bracketed text or GS1
                  Digital Link (parsed by ``gs1.py``). Serials we issue are 20 symbols:
                  13 random (65 bits) | 6 tag (30 bits, HMAC over GTIN and the random part)
                  | a check symbol.

Why version 2 takes key-id bits from the serial. Version 1's 13-bit key id gave the whole
platform 8,191 signing keys, shared by every brand; version 2's 22 bits give 4,194,303
(1,149 brand-years of rotating at a brand's cap of 10 new keys a day; 349,525 brand-years
of monthly rotation). What it costs is safe to give:

- Forgery rests on the tag alone, unchanged at 48 bits: a made-up code passes with
  probability 2**-48 whatever its serial, and the serial needs no secrecy (it is printed).
- The serial only keeps a key's codes apart. n random 63-bit serials under one key hold
  about n**2 / 2**64 colliding pairs: 5e-6 for a 10-million-code batch, 0.05 for a billion
  codes under one key. Codes of different keys never collide (the key id differs), and a
  collision is refused by the units' primary key and its chunk drawn anew
  (services/issuance.py), so two units never share a code.
- The tag and the offline signature are computed over the 11 payload bytes, version bits
  included, so a tag or signature made for one version's payload never verifies the other's.

A unit is stored under one *unit key*: the Transparency code for the first two formats
(an offline code and the Transparency code of the same payload name the same unit), and
the bracketed ``(01)…(21)…`` text for GS1 codes.

``parse()`` is total: it returns a ``ParsedCode`` or raises ``InvalidCode``. People read
codes in groups (``grouped()``: ``TP80 1Q0B 3RY2 ...``); ``parse()`` takes them back with
the spaces or hyphens a person types.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, NamedTuple

from nacl.exceptions import CryptoError
from nacl.signing import SigningKey, VerifyKey

from transparency.domain import crockford, gs1
from transparency.domain.errors import InvalidCode


class CodeFormat(StrEnum):
    TRANSPARENCY = "transparency"
    OFFLINE = "offline"
    GS1 = "gs1"


VERSION = 2  # what new codes are issued as
TAG_BITS = 48
_TAG_MASK = (1 << TAG_BITS) - 1
_VERSION_SHIFT = 85  # the version is the top 2 of the payload's 87 bits in every version
# version -> (key id bits, serial bits): 85 bits between them in every version.
_LAYOUTS = {1: (13, 72), 2: (22, 63)}
KEY_ID_BITS, SERIAL_BITS = _LAYOUTS[VERSION]
MAX_KEY_ID = (1 << KEY_ID_BITS) - 1  # 4,194,303 signing keys for the platform
_V1_SERIAL_BITS = _LAYOUTS[1][1]
_V1_MAX_KEY_ID = (1 << _LAYOUTS[1][0]) - 1  # 8,191

PREFIX = "TP"
OFFLINE_PREFIX = "TPS"
_PAYLOAD_BITS = 2 + KEY_ID_BITS + SERIAL_BITS  # 87
_TP_SYMBOLS = 27  # (87 + 48) / 5
_SIG_BITS = 512
_OFFLINE_SYMBOLS = 120  # ceil((87 + 512) / 5)
TRANSPARENCY_LENGTH = len(PREFIX) + _TP_SYMBOLS + 1  # 30
_PREFIX_DIGITS = PREFIX.encode().translate(crockford.DIGITS)  # TP in either case
_TP_SYNDROME = crockford.syndrome_masks(_TP_SYMBOLS)
OFFLINE_LENGTH = len(OFFLINE_PREFIX) + _OFFLINE_SYMBOLS + 1  # 124

GS1_RANDOM_SYMBOLS = 13
GS1_TAG_SYMBOLS = 6
GS1_SERIAL_LENGTH = GS1_RANDOM_SYMBOLS + GS1_TAG_SYMBOLS + 1  # 20

# These name the construction, not the code version: the version bits are in the message.
_TP_DOMAIN = b"transparency/v1/tag"
_OFFLINE_DOMAIN = b"transparency/v1/offline"
_GS1_DOMAIN = b"transparency/v1/gs1"

# A Transparency or offline code at the end of a URL path: .../t/TP...
_URL_CODE = re.compile(r"^https?://[^/?#\s]+(?:/[^?#\s]*)?/t/([0-9A-Za-z-]+)/?(?:[?#].*)?$", re.I)


@dataclass(frozen=True, slots=True)
class Payload:
    """What a Transparency or offline code says: which key issued it, and its serial."""

    key_id: int
    serial: int
    version: int = VERSION

    def __post_init__(self) -> None:
        if self.version not in _LAYOUTS:
            raise ValueError(f"no code version {self.version}")
        key_bits, serial_bits = _LAYOUTS[self.version]
        if not 1 <= self.key_id < 1 << key_bits:
            raise ValueError(f"key id must be 1..{(1 << key_bits) - 1} in version {self.version}")
        if not 0 <= self.serial < 1 << serial_bits:
            raise ValueError(f"serial must fit {serial_bits} bits in version {self.version}")

    def packed(self) -> int:
        serial_bits = _LAYOUTS[self.version][1]
        return (self.version << _VERSION_SHIFT) | (self.key_id << serial_bits) | self.serial

    def to_bytes(self) -> bytes:
        return self.packed().to_bytes(11, "big")

    @property
    def serial_text(self) -> str:
        return crockford.encode_int(self.serial, 15)  # one width for both versions' serials

    @classmethod
    def unpack(cls, value: int) -> Payload:
        version = value >> _VERSION_SHIFT
        if version not in _LAYOUTS:
            raise InvalidCode("unsupported_version", f"code version {version} is not supported")
        key_bits, serial_bits = _LAYOUTS[version]
        key_id = (value >> serial_bits) & ((1 << key_bits) - 1)
        if key_id == 0:
            raise InvalidCode("malformed", "code names no key")
        return cls(key_id=key_id, serial=value & ((1 << serial_bits) - 1), version=version)


@dataclass(frozen=True, slots=True)
class ParsedCode:
    """A well-formed code of one of our formats (not yet verified against a key)."""

    format: CodeFormat
    text: str  # canonical text
    payload: Payload | None = None
    tag: int | None = None
    signature: bytes | None = None
    ais: tuple[tuple[str, str], ...] = ()
    symbology_identifier: str | None = None
    form: str | None = None  # GS1: element_string, bracketed or digital_link

    @property
    def key_id(self) -> int | None:
        return None if self.payload is None else self.payload.key_id

    @property
    def gtin(self) -> str | None:
        return dict(self.ais).get("01")

    @property
    def serial(self) -> str | None:
        if self.payload is not None:
            return self.payload.serial_text
        return dict(self.ais).get("21")

    @property
    def unit_key(self) -> str | None:
        """The key the unit is stored under, when it follows from the text alone.

        An offline code's unit key needs the brand's HMAC secret: see ``unit_key_of_offline``.
        """
        if self.format is CodeFormat.TRANSPARENCY:
            return self.text
        if self.format is CodeFormat.GS1 and self.gtin and self.serial:
            return gs1_unit_key(self.gtin, self.serial)
        return None

    def as_json(self) -> dict[str, Any]:
        return {
            "format": self.format.value,
            "code": self.text,
            "gtin": self.gtin,
            "serial": self.serial,
            "key_id": self.key_id,
            "ais": [list(pair) for pair in self.ais],
            "symbology_identifier": self.symbology_identifier,
        }


# ---------------------------------------------------------------- Transparency codes


def tag_of(payload: Payload, secret: bytes) -> int:
    return _tag(payload.packed(), secret)


def _tag(packed: int, secret: bytes) -> int:
    return int.from_bytes(_tag_digest(packed.to_bytes(11, "big"), secret)[: TAG_BITS // 8], "big")


def encode_transparency(payload: Payload, tag: int) -> str:
    return _encode_transparency(payload.packed(), tag)


def _encode_transparency(packed: int, tag: int) -> str:
    value = (packed << TAG_BITS) | tag
    # The check symbol encoded with the rest: one encoding of 28 symbols.
    value = value << 5 | crockford.check_value(value, _TP_SYMBOLS)
    return PREFIX + crockford.encode_int(value, _TP_SYMBOLS + 1)


def sign_transparency(payload: Payload, secret: bytes) -> str:
    packed = payload.packed()
    return _encode_transparency(packed, _tag(packed, secret))


def sign_serials(key_id: int, serials: list[int], secret: bytes) -> list[str]:
    """The codes of ``serials`` under key ``key_id`` in the current version, as
    ``sign_transparency`` makes them: issuance makes millions, and a Payload apiece (its
    checks, its packing) was a third of the cost of each (235,000 -> 329,000 a second)."""
    if serials and (min(serials) < 0 or max(serials) >> SERIAL_BITS):
        raise ValueError(f"serial must fit {SERIAL_BITS} bits in version {VERSION}")
    first = Payload(key_id, 0).packed()  # the key id checked once
    return [_encode_transparency(first | s, _tag(first | s, secret)) for s in serials]


def verify_tag(code: ParsedCode, secret: bytes) -> bool:
    """Whether a Transparency code's tag is the one ``secret`` makes (constant time)."""
    if code.format is not CodeFormat.TRANSPARENCY or code.payload is None or code.tag is None:
        return False
    return tag_matches(code.payload.to_bytes(), code.tag, secret)


def tag_matches(payload: bytes, tag: int, secret: bytes) -> bool:
    """Whether ``tag`` is the one ``secret`` makes for ``payload`` (constant time)."""
    digest = _tag_digest(payload, secret)
    return hmac.compare_digest(digest[: TAG_BITS // 8], tag.to_bytes(TAG_BITS // 8, "big"))


# HMAC (RFC 2104) is H((K ^ opad) || H((K ^ ipad) || message)). For a given key, the
# hashes' states after the padded key, and the inner one's after the tag's domain too,
# are the same for every code: made once per secret and copied for each code, they save
# two of the four SHA-256 compressions and OpenSSL's digest and key set-up on each call
# (hmac.digest makes them anew each time): 1.26 -> 0.53 us a tag here.
_BLOCK = 64  # SHA-256's block: a longer key is hashed first, a shorter one zero-padded
_KEYED_MAX = 1024  # secrets kept; past that the table starts over (rebuilt in ~5 us each)
_keyed: dict[bytes, tuple[Any, Any]] = {}


def _tag_digest(payload: bytes, secret: bytes) -> bytes:
    """HMAC-SHA256 under ``secret`` of the tag's domain + ``payload``."""
    states = _keyed.get(secret) or _keyed_states(secret)
    inner = states[0].copy()
    inner.update(payload)
    outer = states[1].copy()
    outer.update(inner.digest())
    return outer.digest()  # type: ignore[no-any-return]


def _keyed_states(secret: bytes) -> tuple[Any, Any]:
    key = hashlib.sha256(secret).digest() if len(secret) > _BLOCK else secret
    key = key.ljust(_BLOCK, b"\0")
    inner = hashlib.sha256(bytes(b ^ 0x36 for b in key) + _TP_DOMAIN)
    outer = hashlib.sha256(bytes(b ^ 0x5C for b in key))
    if len(_keyed) >= _KEYED_MAX:
        _keyed.clear()
    _keyed[secret] = (inner, outer)
    return inner, outer


class BareCode(NamedTuple):
    """A Transparency code as scanned, read just far enough to check its tag."""

    text: str  # canonical
    key_id: int
    payload: bytes  # Payload.to_bytes()
    tag: int


def read_bare(text: str) -> BareCode | None:
    """The hot path of every check: a bare, well-formed Transparency code, read without
    building a ParsedCode; None for anything else (``parse`` then says what it is).

    Its 30 characters have no room for the spaces or hyphens ``parse`` also takes, so
    reading each byte through a table (either case, the aliases I, L and O) is all the
    normalising it needs.
    """
    # ASCII only: upper() of some other letters is longer (ß -> SS), and would slip a
    # 31-character text past the length check.
    if len(text) != TRANSPARENCY_LENGTH or not text.isascii():
        return None
    raw = text.encode()
    digits = raw.translate(crockford.DIGITS)
    if digits[:2] != _PREFIX_DIGITS:
        return None
    try:
        value = int(digits[2:], 32)  # the 27 symbols, then the check symbol's 5 bits
    except ValueError:  # a character outside the alphabet and its aliases
        return None
    m0, m1, m2, m3, m4 = _TP_SYNDROME  # unrolled: every check of every scan comes here
    if (
        (value & m0).bit_count()
        | (value & m1).bit_count()
        | (value & m2).bit_count()
        | (value & m3).bit_count()
        | (value & m4).bit_count()
    ) & 1:  # an odd parity: the check symbol is wrong
        return None
    value >>= 5
    packed = value >> TAG_BITS
    version = packed >> _VERSION_SHIFT
    if version == VERSION:  # the layouts unrolled: no look-up for the codes we issue
        key_id = (packed >> SERIAL_BITS) & MAX_KEY_ID
    elif version == 1:
        key_id = (packed >> _V1_SERIAL_BITS) & _V1_MAX_KEY_ID
    else:
        return None
    if key_id == 0:
        return None
    canonical = raw.translate(crockford.CANONICAL)  # upper case, aliases read
    return BareCode(
        text if canonical == raw else canonical.decode(),
        key_id,
        packed.to_bytes(11, "big"),
        value & _TAG_MASK,
    )


def _parse_transparency(symbols: str, symbology: str | None = None) -> ParsedCode:
    body, check = symbols[:-1], symbols[-1]
    value = crockford.decode_int(body)
    if crockford.check_symbol(value, _TP_SYMBOLS) != check:
        raise InvalidCode("bad_check_character", "the code has a wrong character (check failed)")
    payload = Payload.unpack(value >> TAG_BITS)
    tag = value & ((1 << TAG_BITS) - 1)
    return ParsedCode(
        CodeFormat.TRANSPARENCY,
        PREFIX + symbols,
        payload=payload,
        tag=tag,
        symbology_identifier=symbology,
    )


# ---------------------------------------------------------------- offline codes


def _offline_message(payload: Payload) -> bytes:
    return _OFFLINE_DOMAIN + payload.to_bytes()


def encode_offline(payload: Payload, signature: bytes) -> str:
    value = (payload.packed() << _SIG_BITS) | int.from_bytes(signature, "big")
    value <<= _OFFLINE_SYMBOLS * 5 - _PAYLOAD_BITS - _SIG_BITS  # one spare bit, zero
    return (
        OFFLINE_PREFIX
        + crockford.encode_int(value, _OFFLINE_SYMBOLS)
        + crockford.check_symbol(value, _OFFLINE_SYMBOLS)
    )


def sign_offline(payload: Payload, private_key: SigningKey) -> str:
    return encode_offline(payload, private_key.sign(_offline_message(payload)).signature)


def verify_offline(code: ParsedCode, public_key: bytes) -> bool:
    if code.format is not CodeFormat.OFFLINE or code.payload is None or code.signature is None:
        return False
    try:
        VerifyKey(public_key).verify(_offline_message(code.payload), code.signature)
    except CryptoError:  # a wrong signature, or a key of the wrong size
        return False
    return True


def unit_key_of_offline(code: ParsedCode, secret: bytes) -> str:
    """The Transparency code naming the same unit as an offline code."""
    assert code.payload is not None
    return sign_transparency(code.payload, secret)


def _parse_offline(symbols: str, symbology: str | None = None) -> ParsedCode:
    body, check = symbols[:-1], symbols[-1]
    value = crockford.decode_int(body)
    if crockford.check_symbol(value, _OFFLINE_SYMBOLS) != check:
        raise InvalidCode("bad_check_character", "the code has a wrong character (check failed)")
    if value & 1:
        raise InvalidCode("malformed", "the offline code's padding bit is set")
    value >>= 1
    signature = (value & ((1 << _SIG_BITS) - 1)).to_bytes(64, "big")
    payload = Payload.unpack(value >> _SIG_BITS)
    return ParsedCode(
        CodeFormat.OFFLINE,
        OFFLINE_PREFIX + symbols,
        payload=payload,
        signature=signature,
        symbology_identifier=symbology,
    )


# ---------------------------------------------------------------- GS1 serials we issue


def gs1_unit_key(gtin: str, serial: str) -> str:
    return f"(01){gtin}(21){serial}"


def _gs1_tag(gtin: str, random_part: str, secret: bytes) -> str:
    digest = hmac.digest(secret, _GS1_DOMAIN + gtin.encode() + random_part.encode(), "sha256")
    value = int.from_bytes(digest[:4], "big") >> (32 - GS1_TAG_SYMBOLS * 5)
    return crockford.encode_int(value, GS1_TAG_SYMBOLS)


def make_gs1_serial(gtin: str, random_value: int, secret: bytes) -> str:
    """A 20-character serial: 13 random symbols, a 6-symbol tag and a check symbol."""
    random_part = crockford.encode_int(random_value, GS1_RANDOM_SYMBOLS)
    body = random_part + _gs1_tag(gtin, random_part, secret)
    return body + crockford.check_symbol(crockford.decode_int(body), len(body))


def verify_gs1_serial(gtin: str, serial: str, secret: bytes) -> bool:
    """Whether ``serial`` is one we issued for ``gtin`` under ``secret``."""
    if len(serial) != GS1_SERIAL_LENGTH or not crockford.is_symbols(serial):
        return False
    body, check = serial[:-1], serial[-1]
    if crockford.check_symbol(crockford.decode_int(body), len(body)) != check:
        return False
    random_part, tag = body[:GS1_RANDOM_SYMBOLS], body[GS1_RANDOM_SYMBOLS:]
    return hmac.compare_digest(_gs1_tag(gtin, random_part, secret), tag)


def is_issued_gs1_serial_shape(serial: str) -> bool:
    """Whether a serial has the shape and check symbol of one we issue (no key needed)."""
    if len(serial) != GS1_SERIAL_LENGTH or not crockford.is_symbols(serial):
        return False
    body = serial[:-1]
    return crockford.check_symbol(crockford.decode_int(body), len(body)) == serial[-1]


# ---------------------------------------------------------------- human-readable text

GROUP = 4
"""Symbols read aloud at a time: four, as card numbers and licence keys are printed."""
_GS1_ELEMENT = re.compile(r"\(\d{2,4}\)[^(]*")


def grouped(code: str) -> str:
    """A code as printed for people: Transparency and offline codes in groups of four
    (``TP80 1Q0B 3RY2 ...``), GS1 bracketed text with a space between element strings
    (``(01)09506000134352 (21)ABC``); anything else as given. ``parse()`` reads the result
    back to the same code."""
    if code.startswith(PREFIX) and crockford.is_symbols(code[len(PREFIX) :]):
        return " ".join(code[i : i + GROUP] for i in range(0, len(code), GROUP))
    if code.startswith("(") and "".join(_GS1_ELEMENT.findall(code)) == code:
        # A space may end an element string: GS1 serials and lots never hold one.
        return " ".join(_GS1_ELEMENT.findall(code))
    return code


# ---------------------------------------------------------------- parsing


def parse(text: str) -> ParsedCode:
    """Any text a scanner or a person produces -> a ParsedCode, or InvalidCode."""
    if not isinstance(text, str):
        raise InvalidCode("malformed", "a code is text")
    bare = read_bare(text)
    if bare is not None:
        payload = Payload.unpack(int.from_bytes(bare.payload, "big"))
        return ParsedCode(CodeFormat.TRANSPARENCY, bare.text, payload=payload, tag=bare.tag)
    stripped = text.strip()
    if not stripped:
        raise InvalidCode("empty", "no code")
    if len(stripped) > 4096:
        raise InvalidCode("malformed", "too long to be a code")
    symbology, rest = gs1.split_symbology_identifier(stripped)
    match = _URL_CODE.match(rest)
    if match:
        rest = match.group(1)
    if crockford.normalize(rest[:3]).startswith(PREFIX):
        return _parse_ours(rest, symbology)
    g = gs1.parse_gs1(stripped)
    return ParsedCode(
        CodeFormat.GS1,
        gs1.bracketed(g.ais),
        ais=g.ais,
        symbology_identifier=g.symbology_identifier,
        form=g.form,
    )


def _parse_ours(raw: str, symbology: str | None) -> ParsedCode:
    normal = crockford.normalize(raw)
    # The prefix is read before aliasing would turn an S or P into anything else.
    if normal.startswith(OFFLINE_PREFIX) and len(normal) == OFFLINE_LENGTH:
        symbols = normal[len(OFFLINE_PREFIX) :]
        parse_symbols = _parse_offline
    elif normal.startswith(PREFIX) and len(normal) == TRANSPARENCY_LENGTH:
        symbols = normal[len(PREFIX) :]
        parse_symbols = _parse_transparency
    else:
        raise InvalidCode(
            "bad_length",
            f"a Transparency code has {TRANSPARENCY_LENGTH} characters and an offline code "
            f"{OFFLINE_LENGTH}; this has {len(normal)}",
        )
    if not crockford.is_symbols(symbols):
        raise InvalidCode("bad_character", "the code has a character outside its alphabet")
    return parse_symbols(symbols, symbology)
