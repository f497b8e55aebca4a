"""EPCIS 2.0 JSON-LD commissioning events, in both directions.

Reading: the SGTINs that ``ObjectEvent``s with action ``ADD`` and business step
commissioning bring into existence, with lot and expiry from their ILMD. An entry that
cannot be a unit is reported with its JSON position rather than stopping the document.
Writing: a batch's units as such events. ``load_document`` decodes the JSON text, refusing
what JSON allows but no document needs and a hostile one uses (see there); I/O is the
caller's.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Protocol, TypeVar

from biip import BiipException
from biip.checksums import gs1_standard_check_digit
from biip.gs1_element_strings import GS1ElementString
from biip.gtin import Gtin

from transparency.domain import gs1
from transparency.domain.errors import InvalidCode

EPCIS_CONTEXT = "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"
# A URN namespace for our own extension field, so no domain name is claimed.
TRANSPARENCY_NAMESPACE = "urn:transparency:epcis:"

_COMMISSIONING = frozenset(
    {
        "commissioning",
        "urn:epcglobal:cbv:bizstep:commissioning",
        "https://ref.gs1.org/cbv/BizStep-commissioning",
        "https://gs1.org/voc/BizStep-commissioning",
        "cbv:BizStep-commissioning",
        "gs1:BizStep-commissioning",
    }
)
_LOT_KEYS = ("cbvmda:lotNumber", "lotNumber", "urn:epcglobal:cbv:mda:lotNumber")
_EXPIRY_KEYS = (
    "cbvmda:itemExpirationDate",
    "itemExpirationDate",
    "urn:epcglobal:cbv:mda:itemExpirationDate",
)
_EPC_SCHEMES = frozenset(
    {
        "sgtin", "sscc", "sgln", "grai", "giai", "gsrn", "gsrnp", "gdti", "cpi", "sgcn",
        "ginc", "gsin", "itip", "upui", "pgln", "gid", "usdod", "adi", "bic", "imovn", "lgtin",
    }
)  # fmt: skip

# EPC Tag Data Standard: an SGTIN serial is set-82 text in which exactly these seven
# characters are percent-escaped.
_URN_ESCAPES = {'"': "%22", "%": "%25", "&": "%26", "/": "%2F", "<": "%3C", ">": "%3E", "?": "%3F"}
_URN_UNESCAPES = {code: char for char, code in _URN_ESCAPES.items()}
_SGTIN_URN = re.compile(
    r"urn:epc:id:sgtin:([0-9]{6,12})\.([0-9]{1,7})\."
    r"((?:[!'()*+,\-.0-9:;=A-Z_a-z]|%(?:22|25|26|2[Ff]|3[CcEeFf]))+)"
)
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")

T = TypeVar("T")

# An EPCIS document nests about eight deep; Python's decoder gives up near 1,000 with a
# RecursionError that names no place. Numbers are counts and offsets: 40 characters is a
# 128-bit integer with room to spare, while int() of a 100,000-digit one is quadratic.
MAX_DEPTH = 64
MAX_NUMBER_CHARS = 40


class TooManyEntries(Exception):
    """A document commissions more SGTINs (refused ones included) than it may."""


class _Refused(Exception):
    """Something JSON allows and no EPCIS document needs: where is found afterwards."""


@dataclass(frozen=True, slots=True)
class Commissioned:
    """One unit an EPCIS document commissions, and where in the document it was found."""

    gtin: str
    serial: str
    lot: str | None
    expiry: date | None
    event_index: int
    position: str  # e.g. "epcisBody.eventList[3].epcList[12]"


@dataclass(frozen=True, slots=True)
class Rejected:
    """An entry that cannot be a unit: where it is, a stable reason slug, and why."""

    position: str
    reason: str
    detail: str


class Unit(Protocol):
    """What a commissioning document needs to know about a unit."""

    @property
    def gtin(self) -> str: ...
    @property
    def serial(self) -> str: ...
    @property
    def lot(self) -> str | None: ...
    @property
    def expiry(self) -> date | None: ...


# ---------------------------------------------------------------- reading


def load_document(text: str) -> Any:
    """The JSON value of ``text``, or InvalidCode("invalid_json") naming the line and column
    of the first thing refused: bad syntax, nesting deeper than ``MAX_DEPTH``, a number longer
    than ``MAX_NUMBER_CHARS``, NaN or Infinity, or a key twice in one object (json keeps the
    last silently, so the document a reader sees is not the one we would import)."""
    try:
        return json.loads(
            text,
            object_pairs_hook=_unique_keys,
            parse_int=_number(int),
            parse_float=_number(float),
            parse_constant=_constant,
        )
    except json.JSONDecodeError as exc:
        raise InvalidCode(
            "invalid_json", f"line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from None
    except (RecursionError, _Refused):
        # Rare and hostile: find the place by reading the text again, token by token.
        found = _first_refused(text)
        where, why = found if found is not None else (0, "the document is not plain JSON")
        line = text.count("\n", 0, where) + 1
        column = where - (text.rfind("\n", 0, where) + 1) + 1
        raise InvalidCode("invalid_json", f"line {line} column {column}: {why}") from None


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found = dict(pairs)
    if len(found) != len(pairs):
        raise _Refused
    return found


def _number(kind: type[int] | type[float]) -> Any:
    def parse(text: str) -> int | float:
        if len(text) > MAX_NUMBER_CHARS:
            raise _Refused
        return kind(text)

    return parse


def _constant(text: str) -> Any:
    raise _Refused


# A JSON token, or a run of what is no token; strings unrolled so none is read twice.
_TOKEN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{},:]|[^\s"\[\]{},:]+|\s+')


def _first_refused(text: str) -> tuple[int, str] | None:
    """Where ``load_document`` refuses a document that decodes, and why."""
    objects: list[set[str] | None] = []  # per open bracket: an object's keys, None: a list
    key_next = False
    for match in _TOKEN.finditer(text):
        token, at = match.group(), match.start()
        first = token[0]
        if first in "[{":
            objects.append(set() if first == "{" else None)
            if len(objects) > MAX_DEPTH:
                return at, f"nested deeper than {MAX_DEPTH} levels"
            key_next = first == "{"
        elif first in "]}":
            if objects:
                objects.pop()
            key_next = False
        elif first == ",":
            key_next = bool(objects) and objects[-1] is not None
        elif first == '"':
            keys = objects[-1] if objects else None
            if key_next and keys is not None:
                try:
                    key = json.loads(token)
                except ValueError:
                    key = token
                if key in keys:
                    return at, f"the key {token[:40]} appears twice in one object"
                keys.add(key)
            key_next = False
        elif not first.isspace() and first != ":":
            if token in ("NaN", "Infinity", "-Infinity"):
                return at, f"{token} is not a JSON number"
            if len(token) > MAX_NUMBER_CHARS and (first == "-" or first.isdigit()):
                return at, f"a number of {len(token)} characters (at most {MAX_NUMBER_CHARS})"
    return None


def parse_commissioning(
    document: Mapping[str, Any], max_entries: int | None = None
) -> tuple[list[Commissioned], list[Rejected]]:
    """Every SGTIN the document commissions, and every entry refused with its reason.

    Raises InvalidCode("invalid_epcis") only for a document that is not EPCIS at all, and
    TooManyEntries as soon as there are more than ``max_entries`` of both together.
    """
    prefix, events = _event_list(document)
    commissioned: list[Commissioned] = []
    rejected: list[Rejected] = []
    for index, event in enumerate(events):
        if max_entries is not None and len(commissioned) + len(rejected) > max_entries:
            raise TooManyEntries
        position = f"{prefix}[{index}]"
        if not isinstance(event, Mapping):
            rejected.append(Rejected(position, "invalid_event", "an event is a JSON object"))
            continue
        if not _commissions(event):
            continue
        epcs = event.get("epcList", [])
        if not isinstance(epcs, list):
            rejected.append(Rejected(f"{position}.epcList", "invalid_event", "not a list"))
            continue
        try:
            lot, expiry = _ilmd(event.get("ilmd"))
        except InvalidCode as exc:
            rejected.extend(
                Rejected(f"{position}.epcList[{j}]", exc.reason, exc.detail)
                for j in range(len(epcs))
            )
            continue
        for j, epc in enumerate(epcs):
            where = f"{position}.epcList[{j}]"
            try:
                gtin, serial, own_lot, own_expiry = _sgtin(epc)
                unit = Commissioned(
                    gtin,
                    serial,
                    _agree("lot", own_lot, lot),
                    _agree("expiry", own_expiry, expiry),
                    index,
                    where,
                )
            except InvalidCode as exc:
                rejected.append(Rejected(where, exc.reason, exc.detail))
            else:
                commissioned.append(unit)
    if max_entries is not None and len(commissioned) + len(rejected) > max_entries:
        raise TooManyEntries
    return commissioned, rejected


def commissioned_sgtins(document: Mapping[str, Any]) -> list[Commissioned]:
    """Every SGTIN the document commissions; InvalidCode for the first entry refused."""
    commissioned, rejected = parse_commissioning(document)
    if rejected:
        first = rejected[0]
        raise InvalidCode(first.reason, f"{first.position}: {first.detail}")
    return commissioned


def _term(value: Any) -> Any:
    """``"epcis:ObjectEvent"`` and ``"ObjectEvent"`` name the same type."""
    return value.rpartition(":")[2] if isinstance(value, str) else value


def _event_list(document: Mapping[str, Any]) -> tuple[str, list[Any]]:
    if not isinstance(document, Mapping):
        raise InvalidCode("invalid_epcis", "an EPCIS document is a JSON object")
    # "isA" is how drafts of EPCIS 2.0 (and GS1's older examples) spelled "type".
    kind = _term(document.get("type", document.get("isA")))
    if kind not in ("EPCISDocument", "EPCISQueryDocument"):
        raise InvalidCode("invalid_epcis", "type is neither EPCISDocument nor EPCISQueryDocument")
    body = document.get("epcisBody")
    if not isinstance(body, Mapping):
        raise InvalidCode("invalid_epcis", "the document has no epcisBody")
    if "eventList" in body:
        prefix, events = "epcisBody.eventList", body["eventList"]
    else:
        results = body.get("queryResults")
        results_body = results.get("resultsBody") if isinstance(results, Mapping) else None
        if not isinstance(results_body, Mapping) or "eventList" not in results_body:
            raise InvalidCode("invalid_epcis", "the document has no epcisBody.eventList")
        prefix = "epcisBody.queryResults.resultsBody.eventList"
        events = results_body["eventList"]
    if not isinstance(events, list):
        raise InvalidCode("invalid_epcis", f"{prefix} is not a list")
    return prefix, events


def _commissions(event: Mapping[str, Any]) -> bool:
    return (
        _term(event.get("type", event.get("isA"))) == "ObjectEvent"
        and event.get("action") == "ADD"
        and isinstance(step := event.get("bizStep"), str)
        and step in _COMMISSIONING
    )


def _ilmd(ilmd: Any) -> tuple[str | None, date | None]:
    if ilmd is None:
        return None, None
    if not isinstance(ilmd, Mapping):
        raise InvalidCode("invalid_event", "ilmd is not a JSON object")
    lot = next((ilmd[key] for key in _LOT_KEYS if key in ilmd), None)
    if lot is not None and not (isinstance(lot, str) and gs1.is_valid_serial(lot)):
        # AI (10) has the same syntax as a serial: 1-20 characters of set 82.
        raise InvalidCode("invalid_lot", f"lot {lot!r} is not 1-20 characters of GS1 set 82")
    raw = next((ilmd[key] for key in _EXPIRY_KEYS if key in ilmd), None)
    if raw is None:
        return lot, None
    if not isinstance(raw, str) or not _ISO_DATE.fullmatch(raw):
        raise InvalidCode("invalid_expiry", f"expiry {raw!r} is not a date (YYYY-MM-DD)")
    try:
        return lot, date.fromisoformat(raw)
    except ValueError as exc:
        raise InvalidCode("invalid_expiry", f"expiry {raw!r} is not a date") from exc


def _sgtin(epc: Any) -> tuple[str, str, str | None, date | None]:
    """An epcList entry -> (GTIN-14, serial, lot, expiry) or InvalidCode."""
    if not isinstance(epc, str):
        raise InvalidCode("invalid_epc", "an epcList entry is a string")
    if epc.startswith("urn:epc:id:sgtin:"):
        gtin, serial = sgtin_from_urn(epc)
        return gtin, serial, None, None
    if epc.startswith("urn:epc:id:"):
        scheme = epc.removeprefix("urn:epc:id:").partition(":")[0]
        if scheme in _EPC_SCHEMES:
            raise InvalidCode("not_sgtin", f"a {scheme} identifies no trade item unit")
        raise InvalidCode("unknown_epc_scheme", f"unknown EPC scheme {scheme!r}")
    if not epc.lower().startswith(("http://", "https://")):
        raise InvalidCode("unknown_epc_scheme", "neither an EPC URN nor a GS1 Digital Link URI")
    code = gs1.parse_gs1(epc)
    gtin, serial = gs1.require_gtin_serial(code)
    expiry = code.value("17")
    return gtin, serial, code.value("10"), None if expiry is None else _ai_date("17", expiry)


def _ai_date(ai: str, value: str) -> date:
    try:
        parsed = GS1ElementString.parse(ai + value).date
    except BiipException as exc:
        raise InvalidCode("invalid_ai", f"({ai}) {value!r} is not a date") from exc
    if parsed is None:
        raise InvalidCode("invalid_ai", f"({ai}) {value!r} is not a date")
    return parsed


def _agree(name: str, own: T | None, event: T | None) -> T | None:
    if own is not None and event is not None and own != event:
        raise InvalidCode("conflicting_ai", f"the {name} in the URI differs from the event's ILMD")
    return own if own is not None else event


def sgtin_from_urn(urn: str) -> tuple[str, str]:
    """``urn:epc:id:sgtin:0614141.107346.2017`` -> ``("10614141073464", "2017")``."""
    match = _SGTIN_URN.fullmatch(urn)
    if match is None:
        raise InvalidCode("invalid_sgtin", f"{urn!r} is not an SGTIN pure identity URI")
    company_prefix, indicator_item, escaped = match.groups()
    if len(company_prefix) + len(indicator_item) != 13:
        raise InvalidCode(
            "invalid_sgtin", "company prefix and indicator/item reference must make 13 digits"
        )
    body = indicator_item[0] + company_prefix + indicator_item[1:]
    gtin = body + str(gs1_standard_check_digit(body))
    serial = re.sub(r"%[0-9A-Fa-f]{2}", lambda m: _URN_UNESCAPES[m.group().upper()], escaped)
    if not gs1.is_valid_serial(serial):
        raise InvalidCode("invalid_sgtin", f"serial {serial!r} is longer than 20 characters")
    return gtin, serial


def sgtin_urn(gtin: str, serial: str, company_prefix_length: int) -> str:
    """The SGTIN pure identity URI of a GTIN-14 and serial; ValueError if they are invalid."""
    if not (len(gtin) == 14 and gtin.isascii() and gtin.isdigit()):
        raise ValueError(f"{gtin!r} is not a GTIN-14")
    if gs1_standard_check_digit(gtin[:13]) != int(gtin[13]):
        raise ValueError(f"{gtin!r} has a wrong check digit")
    if not 6 <= company_prefix_length <= 12:
        raise ValueError("a GS1 company prefix has 6 to 12 digits")
    if not gs1.is_valid_serial(serial):
        raise ValueError(f"{serial!r} is not a valid GS1 serial")
    company_prefix = gtin[1 : 1 + company_prefix_length]
    indicator_item = gtin[0] + gtin[1 + company_prefix_length : 13]
    escaped = "".join(_URN_ESCAPES.get(char, char) for char in serial)
    return f"urn:epc:id:sgtin:{company_prefix}.{indicator_item}.{escaped}"


# ---------------------------------------------------------------- writing


def commissioning_document(
    units: Iterable[Unit],
    *,
    event_time: datetime,
    brand_name: str,
    company_prefix_length: int | None = None,
    creation_date: datetime | None = None,
    read_point: str | None = None,
) -> dict[str, Any]:
    """An EPCISDocument commissioning ``units``: one ObjectEvent per (lot, expiry).

    ILMD describes a whole event, so units are grouped by lot and expiry, in first-seen
    order. ``company_prefix_length`` is needed for the SGTIN URIs; without it, biip's table
    of GS1 prefixes is asked, and a GTIN it cannot split is a ValueError. ``event_time``
    must carry a time zone; ``creation_date`` defaults to it (the domain reads no clock).
    """
    offset = event_time.utcoffset()
    if offset is None:
        raise ValueError("event_time needs a time zone")
    groups: dict[tuple[str | None, date | None], list[str]] = {}
    for unit in units:
        length = company_prefix_length or _company_prefix_length(unit.gtin)
        urn = sgtin_urn(unit.gtin, unit.serial, length)
        groups.setdefault((unit.lot, unit.expiry), []).append(urn)
    events: list[dict[str, Any]] = []
    for (lot, expiry), epcs in groups.items():
        event: dict[str, Any] = {
            "type": "ObjectEvent",
            "eventTime": _timestamp(event_time),
            "eventTimeZoneOffset": _offset(offset),
            "epcList": epcs,
            "action": "ADD",
            "bizStep": "commissioning",
            "disposition": "active",
        }
        if read_point is not None:
            event["readPoint"] = {"id": read_point}
        ilmd: dict[str, str] = {}
        if lot is not None:
            ilmd["cbvmda:lotNumber"] = lot
        if expiry is not None:
            ilmd["cbvmda:itemExpirationDate"] = expiry.isoformat()
        if ilmd:
            event["ilmd"] = ilmd
        events.append(event)
    return {
        "@context": [EPCIS_CONTEXT, {"transparency": TRANSPARENCY_NAMESPACE}],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": _timestamp(creation_date or event_time),
        "transparency:brandName": brand_name,
        "epcisBody": {"eventList": events},
    }


def _company_prefix_length(gtin: str) -> int:
    try:
        prefix = Gtin.parse(gtin).company_prefix
    except BiipException as exc:
        raise ValueError(f"{gtin!r} is not a GTIN: {exc}") from exc
    if prefix is None:
        raise ValueError(f"the company prefix length of {gtin} is unknown; pass it")
    return len(prefix.value)


def _timestamp(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds")


def _offset(offset: timedelta) -> str:
    minutes = int(offset.total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
