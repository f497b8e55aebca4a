"""EPCIS 2.0 events as this repository keeps them: read from a captured document, checked,
hashed, with what the simple query filters on; and the service's own records (issuance,
fulfilment passes, take-backs, brand withdrawals) written as events at read time.

An EPC is kept in one canonical form (``epcis_hash.canonical``: a GS1 key as its id.gs1.org
Digital Link URI), so a query for ``urn:epc:id:sgtin:...`` finds an event that said
``https://example.com/01/.../21/...`` and the reverse. A unit of ours is found under it:
a GS1 unit's key is ``(01)<gtin>(21)<serial>``; a Transparency code's EPC is
``urn:transparency:code:<code>`` (no GS1 key names it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID, uuid5

from transparency.domain import epcis
from transparency.domain.epcis_hash import CBV_BASE, canonical, event_hash, parse_time, unquote
from transparency.domain.errors import InvalidCode
from transparency.domain.lifecycle import UnitEvent

EVENT_TYPES = frozenset(
    {"ObjectEvent", "AggregationEvent", "TransactionEvent", "TransformationEvent",
     "AssociationEvent"}
)  # fmt: skip
ACTIONS = frozenset({"ADD", "OBSERVE", "DELETE"})
_EPC_FIELDS = ("epcList", "childEPCs", "inputEPCList", "outputEPCList")
_OFFSET_CHARS = 6  # "+hh:mm"
OUR_CODE_EPC = "urn:transparency:code:"
_GS1_UNIT = "https://id.gs1.org/01/"
# Event ids of the service's own records: stable, so a query answers the same id twice.
_OWN_EVENTS = UUID("6f1c0b7e-4f0e-5d55-9a57-0b0e8f3f4c2a")


class UnitAction(StrEnum):
    """What a captured event does to the units it names."""

    COMMISSION = "commission"
    SHIP = "ship"
    DECOMMISSION = "decommission"
    DESTROY = "destroy"


# bizStep -> the lifecycle event it applies (commissioning is an import, not a move).
LIFECYCLE = {
    UnitAction.SHIP: UnitEvent.SHIP,
    UnitAction.DECOMMISSION: UnitEvent.REVOKE,
    UnitAction.DESTROY: UnitEvent.DESTROY,
}
_BY_STEP = {
    "shipping": UnitAction.SHIP,
    "decommissioning": UnitAction.DECOMMISSION,
    "destroying": UnitAction.DESTROY,
}


@dataclass(frozen=True, slots=True)
class CaptureJob:
    """A capture as the REST binding reports it (``errors``: its problem bodies)."""

    id: UUID
    error_behaviour: str
    running: bool
    success: bool
    events: int
    captured: int
    duplicates: int
    errors: list[dict[str, Any]]
    created_at: datetime
    finished_at: datetime | None


@dataclass(frozen=True, slots=True)
class EventError:
    """An event refused: its index in the document, a stable reason, and why."""

    index: int
    reason: str
    detail: str


@dataclass(frozen=True, slots=True)
class Captured:
    """One checked event of a capture, ready to store (``body`` has its eventID)."""

    index: int
    event_id: str
    event_hash: str
    type: str
    action: str | None
    event_time: datetime
    biz_step: str | None
    disposition: str | None
    read_point: str | None
    biz_location: str | None
    epcs: tuple[str, ...]
    body: dict[str, Any]
    unit_action: UnitAction | None = None
    # GS1 unit keys the event commissions or moves; commissioning: (key, gtin, lot, expiry)
    unit_keys: tuple[str, ...] = ()
    commissioned: tuple[epcis.Commissioned, ...] = field(default=())


def event_list(document: Any) -> list[Any]:
    """The events of an EPCISDocument (InvalidCode("invalid_epcis") for anything else)."""
    return epcis._event_list(document)[1]


def term(value: Any, field_name: str) -> str | None:
    """A CBV value in the short form stored and queried (``shipping``), any other URI as is."""
    if value is None:
        return None
    text = canonical(value, field_name)
    prefix = CBV_BASE + {"bizStep": "BizStep-", "disposition": "Disp-"}.get(field_name, "")
    return text[len(prefix) :] if text.startswith(prefix) and prefix != CBV_BASE else text


def epc_key(epc: str) -> str:
    """The canonical form an EPC is stored and matched in."""
    return canonical(epc)


def unit_key_of_epc(epc: str) -> str | None:
    """The key of the unit an EPC names (``(01)<gtin>(21)<serial>`` or a Transparency code),
    or None when it can name no unit of ours."""
    key = epc_key(epc)
    if key.startswith(OUR_CODE_EPC):
        return key[len(OUR_CODE_EPC) :] or None
    if key.startswith(_GS1_UNIT):
        gtin, _, rest = key[len(_GS1_UNIT) :].partition("/21/")
        if rest and "/" not in rest and "?" not in rest:
            return f"(01){gtin}(21){unquote(rest)}"
    return None


def epc_of_unit(code: str) -> str:
    """The EPC of a unit key (the inverse of ``unit_key_of_epc``)."""
    if code.startswith("(01)") and "(21)" in code:
        gtin, _, serial = code[4:].partition("(21)")
        return canonical(f"https://id.gs1.org/01/{gtin}/21/{serial}")
    return OUR_CODE_EPC + code


def check_event(index: int, event: Any, *, event_id_prefix: str | None = None) -> Captured:
    """An event of a captured document, checked and hashed; InvalidCode if refused.

    An event without an eventID gets its hash as one (the CBV's recommendation for ids
    filled in by a repository: the same event captured twice gets the same id).
    """
    if not isinstance(event, Mapping):
        raise InvalidCode("invalid_event", "an event is a JSON object")
    kind = event.get("type", event.get("isA"))
    kind = kind.rpartition(":")[2] if isinstance(kind, str) else kind
    if kind not in EVENT_TYPES:
        raise InvalidCode("invalid_event", f"type is not one of {', '.join(sorted(EVENT_TYPES))}")
    raw_time = event.get("eventTime")
    if not isinstance(raw_time, str):
        raise InvalidCode("invalid_event", "an event has an eventTime")
    event_time = parse_time(raw_time)
    offset = event.get("eventTimeZoneOffset")
    if not (isinstance(offset, str) and len(offset) == _OFFSET_CHARS and offset[0] in "+-"):
        raise InvalidCode("invalid_event", "an event has an eventTimeZoneOffset (+hh:mm)")
    action = event.get("action")
    if kind != "TransformationEvent" and action not in ACTIONS:
        raise InvalidCode("invalid_event", "action is one of ADD, OBSERVE, DELETE")
    epcs: list[str] = []
    for name in _EPC_FIELDS:
        values = event.get(name, [])
        if not isinstance(values, list) or not all(isinstance(v, str) and v for v in values):
            raise InvalidCode("invalid_event", f"{name} is a list of EPC URIs")
        epcs.extend(values)
    if isinstance(event.get("parentID"), str):
        epcs.append(event["parentID"])
    places = {}
    for name in ("readPoint", "bizLocation"):
        place = event.get(name)
        if place is not None and not (
            isinstance(place, Mapping) and isinstance(place.get("id"), str)
        ):
            raise InvalidCode("invalid_event", f"{name} is an object with an id")
        places[name] = None if place is None else epc_key(place["id"])
    for name in ("bizStep", "disposition"):
        if event.get(name) is not None and not isinstance(event[name], str):
            raise InvalidCode("invalid_event", f"{name} is a string")
    digest = event_hash(event)
    body = dict(event)
    given = body.get("eventID")
    if given is not None and not (isinstance(given, str) and given):
        raise InvalidCode("invalid_event", "eventID is a URI")
    event_id = given or digest
    body["eventID"] = event_id
    body.pop("recordTime", None)  # the repository's to set
    step = term(event.get("bizStep"), "bizStep")
    unit_action, unit_keys, commissioned = _unit_action(event, kind, action, step)
    return Captured(
        index=index, event_id=event_id, event_hash=digest, type=kind, action=action,
        event_time=event_time, biz_step=step,
        disposition=term(event.get("disposition"), "disposition"),
        read_point=places["readPoint"], biz_location=places["bizLocation"],
        epcs=tuple(dict.fromkeys(epc_key(e) for e in epcs)), body=body,
        unit_action=unit_action, unit_keys=unit_keys, commissioned=commissioned,
    )  # fmt: skip


def _unit_action(
    event: Mapping[str, Any], kind: str, action: Any, step: str | None
) -> tuple[UnitAction | None, tuple[str, ...], tuple[epcis.Commissioned, ...]]:
    if kind != "ObjectEvent":
        return None, (), ()
    if action == "ADD" and step == "commissioning":
        found, refused = epcis.parse_commissioning(
            {"type": "EPCISDocument", "epcisBody": {"eventList": [event]}}
        )
        if refused:
            first = refused[0]
            where = first.position.removeprefix("epcisBody.eventList[0].")
            raise InvalidCode(first.reason, f"{where}: {first.detail}")
        keys = tuple(f"(01){c.gtin}(21){c.serial}" for c in found)
        return UnitAction.COMMISSION, keys, tuple(found)
    unit_action = _BY_STEP.get(step or "")
    if unit_action is None:
        return None, (), ()
    named = [unit_key_of_epc(e) for e in event.get("epcList", [])]
    return unit_action, tuple(k for k in named if k is not None), ()


def own_event_id(source: str, ident: str) -> str:
    """The eventID of one of the service's own records (stable across queries)."""
    return f"urn:uuid:{uuid5(_OWN_EVENTS, f'{source}:{ident}')}"


def problem(error: EventError) -> dict[str, Any]:
    """An event's refusal as the REST binding's capture job lists it (RFC 9457 body)."""
    return {
        "type": "epcisException:ValidationException",
        "title": "Invalid event",
        "status": 400,
        "detail": f"epcisBody.eventList[{error.index}]: {error.reason}: {error.detail}",
        "instance": f"#/epcisBody/eventList/{error.index}",
    }
