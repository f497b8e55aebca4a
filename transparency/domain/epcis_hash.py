"""The EPCIS event hash (CBV 2.0, section 8.9): one event -> ``ni:///sha-256;<hex>?ver=CBV2.0``.

Two captures of the same event (the same facts, however they were spelled: an EPC as a
URN or a GS1 Digital Link, a time in any zone, ``shipping`` or its CBV URN) give the same
hash, so a repository recognises a duplicate. The algorithm (after Ralph Tröger's reference
implementation, github.com/RalphTro/epcis-event-hash-generator, whose test vectors the unit
tests check): the event's fields in a fixed order, each ``name=value`` with the value in a
canonical form (times in UTC to the millisecond, CBV terms as web vocabulary, GS1 keys as
Digital Link URIs on id.gs1.org, numbers without padding), the values of a list sorted,
concatenated with no separator, then the fields the order does not name, sorted; SHA-256 of
the UTF-8 text.

Not done exactly as the reference: its user extensions are keyed by their expanded JSON-LD
IRI (``{https://ns.example.com/}field``); with no JSON-LD processor here they keep their
compact name (``example:field``), so an extension's hash differs from the reference's (a
document's own duplicates are still recognised, as it is always spelled the same way).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from biip.checksums import gs1_standard_check_digit

from transparency.domain.errors import InvalidCode

CBV_BASE = "https://ref.gs1.org/cbv/"
# Bare CBV terms, and the old URNs, as the web vocabulary the hash (and the query) uses.
_URN_VOCABULARY = (
    ("urn:epcglobal:cbv:bizstep:", CBV_BASE + "BizStep-"),
    ("urn:epcglobal:cbv:disp:", CBV_BASE + "Disp-"),
    ("urn:epcglobal:cbv:btt:", CBV_BASE + "BTT-"),
    ("urn:epcglobal:cbv:sdt:", CBV_BASE + "SDT-"),
    ("urn:epcglobal:cbv:er:", CBV_BASE + "ER-"),
)
_DL_GTIN = re.compile(
    r"https?://[^/?#]+(?:/[^?#]*)?/01/([0-9]{8,14})(?:/21/([^/?#]+))?(?:/[^?#]*)?(?:[?#].*)?"
)
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_BARE_TERM = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
VOCABULARY = {"bizStep": "BizStep-", "disposition": "Disp-", "bizTransaction": "BTT-",
              "source": "SDT-", "destination": "SDT-", "errorReason": "ER-"}  # fmt: skip

_EPC_LISTS = ("epcList", "inputEPCList", "childEPCs", "outputEPCList")
_QUANTITY_LISTS = ("quantityList", "childQuantityList", "inputQuantityList", "outputQuantityList")
_TYPED_LISTS = (
    ("bizTransactionList", "bizTransaction"),
    ("sourceList", "source"),
    ("destinationList", "destination"),
)
# Never part of the hash: what a repository adds, and what names the event rather than says it.
_IGNORED = frozenset({"type", "isA", "recordTime", "eventID", "errorDeclaration", "@context"})
_ORDERED = frozenset(
    {"eventTime", "eventTimeZoneOffset", "certificationInfo", "parentID", *_EPC_LISTS,
     *_QUANTITY_LISTS, "action", "transformationID", "bizStep", "disposition",
     "persistentDisposition", "readPoint", "bizLocation", *(name for name, _ in _TYPED_LISTS)}
)  # fmt: skip


def event_hash(event: Mapping[str, Any]) -> str:
    """The event's hash as an ``ni`` URI; InvalidCode("invalid_event") for an event without
    a type or a readable eventTime."""
    text = prehash(event)
    return f"ni:///sha-256;{hashlib.sha256(text.encode()).hexdigest()}?ver=CBV2.0"


def prehash(event: Mapping[str, Any]) -> str:
    """The canonical text the hash is taken of (shown for debugging, as the reference does)."""
    kind = event.get("type", event.get("isA"))
    if not isinstance(kind, str) or not kind:
        raise InvalidCode("invalid_event", "an event names its type")
    parts = [f"eventType={kind.rpartition(':')[2]}"]
    parts.append(_simple("eventTime", utc_millis(event.get("eventTime"))))
    parts.append(_simple("eventTimeZoneOffset", event.get("eventTimeZoneOffset")))
    parts.append(_simple("certificationInfo", event.get("certificationInfo")))
    parts.append(_simple("parentID", event.get("parentID")))
    for name in _EPC_LISTS[:3]:
        parts.append(_epcs(name, event.get(name)))
    for name in _QUANTITY_LISTS[:3]:
        parts.append(_quantities(name, event.get(name)))
    parts.append(_epcs("outputEPCList", event.get("outputEPCList")))
    parts.append(_quantities("outputQuantityList", event.get("outputQuantityList")))
    for name in ("action", "transformationID", "bizStep", "disposition"):
        parts.append(_simple(name, event.get(name)))
    parts.append(_persistent(event.get("persistentDisposition")))
    for name in ("readPoint", "bizLocation"):
        place = event.get(name)
        if isinstance(place, Mapping) and place.get("id"):
            parts.append(f"{name}id={canonical(place['id'])}")
    for name, item in _TYPED_LISTS:
        parts.append(_typed(name, item, event.get(name)))
    rest = {k: v for k, v in event.items() if k not in _ORDERED and k not in _IGNORED}
    return "".join(parts) + _generic(rest)


def utc_millis(value: Any) -> str | None:
    """An ISO 8601 time as UTC to the millisecond (``2022-02-17T02:33:31.116Z``)."""
    if not isinstance(value, str):
        return None
    moment = parse_time(value)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_time(value: str) -> datetime:
    """An EPCIS time (with its zone); InvalidCode("invalid_time") otherwise."""
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise InvalidCode("invalid_time", f"{value[:40]!r} is not an ISO 8601 time") from None
    if moment.tzinfo is None:
        raise InvalidCode("invalid_time", f"{value[:40]!r} has no time zone")
    return moment


def canonical(value: Any, field: str | None = None) -> str:
    """A value as the hash compares it: CBV web vocabulary, GS1 keys as id.gs1.org Digital
    Link URIs, numbers without padding."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return _canonical(str(value).strip(), field)


# A capture names the same places, steps and classes again and again (a read point in
# every event): each is made canonical once.
@lru_cache(maxsize=65_536)
def _canonical(text: str, field: str | None) -> str:
    if field in VOCABULARY and _BARE_TERM.fullmatch(text):
        return CBV_BASE + VOCABULARY[field] + text
    for urn, web in _URN_VOCABULARY:
        if text.startswith(urn):
            return web + text[len(urn) :]
    if text.startswith("urn:epc:"):
        return epc_digital_link(text) or text
    if text.startswith(("http://", "https://")):
        return _digital_link(text) or text
    return _number(text)


def epc_digital_link(urn: str) -> str | None:
    """An EPC URN of a GS1 key as its canonical Digital Link URI; None for other URNs."""
    scheme, _, body = urn.removeprefix("urn:epc:").partition(":")
    kind, _, rest = body.partition(":")
    parts = rest.split(".")
    try:
        if scheme == "id" and kind == "sgtin" and len(parts) >= 3:
            gtin, serial = _gtin(parts[0], parts[1]), _unescape(".".join(parts[2:]))
            return f"https://id.gs1.org/01/{gtin}/21/{_quote(serial)}"
        if scheme == "class" and kind == "lgtin" and len(parts) >= 3:
            gtin, lot = _gtin(parts[0], parts[1]), _unescape(".".join(parts[2:]))
            return f"https://id.gs1.org/01/{gtin}/10/{_quote(lot)}"
        if scheme == "idpat" and kind == "sgtin" and parts[2:] == ["*"]:
            return f"https://id.gs1.org/01/{_gtin(parts[0], parts[1])}"
        if scheme == "id" and kind == "sscc" and len(parts) == 2:
            body18 = parts[1][0] + parts[0] + parts[1][1:]
            return f"https://id.gs1.org/00/{_with_check(body18)}"
        if scheme == "id" and kind in ("sgln", "pgln") and len(parts) in (2, 3):
            gln = _with_check(parts[0] + parts[1])
            ai = "414" if kind == "sgln" else "417"
            extension = parts[2] if len(parts) == 3 and parts[2] != "0" else None
            return f"https://id.gs1.org/{ai}/{gln}" + (f"/254/{extension}" if extension else "")
    except (ValueError, IndexError):
        return None
    return None


def _gtin(company: str, indicator_item: str) -> str:
    if not (company + indicator_item).isdigit() or len(company + indicator_item) != 13:
        raise ValueError(company)
    return _with_check(indicator_item[0] + company + indicator_item[1:])


def _with_check(body: str) -> str:
    """``body`` and its GS1 check digit (mod 10, weights 3 and 1 from the right)."""
    if not (body.isascii() and body.isdigit()):
        raise ValueError(body)
    total = sum(int(d) for d in body[-1::-2]) * 3 + sum(int(d) for d in body[-2::-2])
    return f"{body}{-total % 10}"


def _unescape(text: str) -> str:
    return re.sub(r"%([0-9A-Fa-f]{2})", lambda m: chr(int(m.group(1), 16)), text)


def _digital_link(uri: str) -> str | None:
    """A GS1 Digital Link URI of a GTIN (and serial) on any host, as on id.gs1.org."""
    match = _DL_GTIN.fullmatch(uri)
    if match is None:
        return None
    gtin, serial = match.group(1).zfill(14), match.group(2)
    if gs1_standard_check_digit(gtin[:13]) != int(gtin[13]):
        return None
    link = f"https://id.gs1.org/01/{gtin}"
    return link if serial is None else f"{link}/21/{_quote(unquote(serial))}"


def _quote(value: str) -> str:
    """RFC 3986 percent-encoding of all but the unreserved characters (a Digital Link's
    path segment)."""
    return "".join(
        chr(byte) if chr(byte) in _UNRESERVED else f"%{byte:02X}" for byte in value.encode()
    )


def unquote(text: str) -> str:
    """The text of a percent-encoded URI segment."""
    return re.sub(
        rb"%([0-9A-Fa-f]{2})", lambda m: bytes([int(m.group(1), 16)]), text.encode()
    ).decode("utf-8", errors="replace")


def _number(text: str) -> str:
    try:
        number = float(text)
    except ValueError:
        return text
    if number != number or number in (float("inf"), float("-inf")):
        return text
    return str(int(number)) if number == int(number) else str(number)


def _simple(name: str, value: Any) -> str:
    if value is None or isinstance(value, Mapping | list) or not str(value).strip():
        return ""
    if name == "eventTimeZoneOffset":
        return f"{name}={str(value).strip()}"
    return f"{name}={canonical(value, name)}"


def _epcs(name: str, values: Any) -> str:
    if not isinstance(values, list) or not values:
        return ""
    return name + "".join(sorted(f"epc={canonical(v)}" for v in values if str(v).strip()))


def _quantities(name: str, values: Any) -> str:
    if not isinstance(values, list) or not values:
        return ""
    items = []
    for item in values:
        if isinstance(item, Mapping):
            text = "".join(_simple(key, item.get(key)) for key in ("epcClass", "quantity", "uom"))
            items.append("quantityElement" + text)
    return name + "".join(sorted(items))


def _persistent(value: Any) -> str:
    if not isinstance(value, Mapping):
        return ""
    text = ""
    for key in ("set", "unset"):
        items = value.get(key)
        if isinstance(items, list):
            text += "".join(sorted(f"{key}={canonical(v, 'disposition')}" for v in items))
    return "persistentDisposition" + text if text else ""


def _typed(name: str, item: str, values: Any) -> str:
    if not isinstance(values, list) or not values:
        return ""
    texts = []
    for entry in values:  # document order: the CBV gives these lists an order
        if isinstance(entry, Mapping) and entry.get(item):
            text = f"{item}={canonical(entry[item])}"
            if entry.get("type"):
                text += f"type={canonical(entry['type'], item)}"
            texts.append(text)
    return name + "".join(texts) if texts else ""


def _generic(fields: Mapping[str, Any]) -> str:
    texts = []
    for key, value in fields.items():
        if isinstance(value, Mapping):
            texts.append(key + _generic(value))
        elif isinstance(value, list):
            inner = [
                key + _generic(v) if isinstance(v, Mapping) else f"{key}={canonical(v)}"
                for v in value
            ]
            texts.extend(inner)
        elif value is not None and str(value).strip():
            texts.append(f"{key}={canonical(value)}")
    return "".join(sorted(texts))
