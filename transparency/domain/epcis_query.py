"""The EPCIS 2.0 simple event query, as the REST binding's ``GET /events`` parameters say it,
and the service's own records written as EPCIS events.

Parameters: ``eventType``, ``GE_eventTime``/``LT_eventTime``, ``GE_recordTime``/
``LT_recordTime``, ``EQ_action``, ``EQ_bizStep``, ``EQ_disposition``, ``EQ_readPoint``,
``EQ_bizLocation``, ``MATCH_epc``/``MATCH_anyEPC`` (the same here: every EPC an event names),
``perPage`` and ``nextPageToken``. A list parameter is repeated or ``|``-separated. Results
come in one order, by record time then a key, so ``nextPageToken`` is a keyset position.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from transparency.domain import epcis
from transparency.domain.epcis_events import (
    EVENT_TYPES,
    epc_key,
    epc_of_unit,
    own_event_id,
    term,
    unit_key_of_epc,
)
from transparency.domain.epcis_hash import parse_time
from transparency.domain.errors import InvalidCode, InvalidInput

DEFAULT_PER_PAGE = 100
MAX_PER_PAGE = 1000
_LISTS = {
    "eventType": "event_types",
    "EQ_action": "actions",
    "EQ_bizStep": "biz_steps",
    "EQ_disposition": "dispositions",
    "EQ_readPoint": "read_points",
    "EQ_bizLocation": "biz_locations",
    "MATCH_epc": "epcs",
    "MATCH_anyEPC": "epcs",
}
_TIMES = {
    "GE_eventTime": "ge_event_time",
    "LT_eventTime": "lt_event_time",
    "GE_recordTime": "ge_record_time",
    "LT_recordTime": "lt_record_time",
}
SITE_EPC = "urn:transparency:site:"


@dataclass(frozen=True, slots=True)
class Position:
    """Where a page ended: the last event's record time, source and key."""

    record_time: datetime
    source: str
    key: str


@dataclass(frozen=True, slots=True)
class EventQuery:
    event_types: tuple[str, ...] | None = None
    actions: tuple[str, ...] | None = None
    biz_steps: tuple[str, ...] | None = None
    dispositions: tuple[str, ...] | None = None
    read_points: tuple[str, ...] | None = None
    biz_locations: tuple[str, ...] | None = None
    epcs: tuple[str, ...] | None = None  # canonical (``epc_key``)
    ge_event_time: datetime | None = None
    lt_event_time: datetime | None = None
    ge_record_time: datetime | None = None
    lt_record_time: datetime | None = None
    per_page: int = DEFAULT_PER_PAGE
    after: Position | None = None

    @property
    def unit_keys(self) -> tuple[str, ...]:
        """The keys of the units the EPCs may name (their own records are found by them)."""
        keys = (unit_key_of_epc(e) for e in self.epcs or ())
        return tuple(k for k in keys if k is not None)


def _query_error(detail: str, name: str) -> InvalidInput:
    return InvalidInput(detail, field=name)


def parse_query(params: Sequence[tuple[str, str]]) -> EventQuery:
    """The query ``params`` (name, value pairs, as sent) ask; InvalidInput for an unknown
    parameter or a value that cannot be one."""
    fields: dict[str, Any] = {}
    for name, value in params:
        if name in _LISTS:
            values = [v for v in value.split("|") if v]
            if not values:
                raise _query_error(f"{name} is empty", name)
            attr = _LISTS[name]
            fields[attr] = (*fields.get(attr, ()), *(_list_value(name, v) for v in values))
        elif name in _TIMES:
            try:
                fields[_TIMES[name]] = parse_time(value)
            except InvalidCode as exc:
                raise _query_error(f"{name}: {exc.detail}", name) from None
        elif name == "perPage":
            if not value.isdigit() or not 1 <= int(value) <= MAX_PER_PAGE:
                raise _query_error(f"perPage is from 1 to {MAX_PER_PAGE}", name)
            fields["per_page"] = int(value)
        elif name == "nextPageToken":
            fields["after"] = decode_token(value)
        else:
            raise _query_error(f"{name} is not a parameter of the simple event query", name)
    return EventQuery(**fields)


def _list_value(name: str, value: str) -> str:
    if name == "eventType":
        if value not in EVENT_TYPES:
            raise _query_error(f"eventType is one of {', '.join(sorted(EVENT_TYPES))}", name)
        return value
    if name == "EQ_bizStep":
        return term(value, "bizStep") or value
    if name == "EQ_disposition":
        return term(value, "disposition") or value
    if name in ("EQ_action",):
        return value
    return epc_key(value)


def encode_token(position: Position) -> str:
    text = f"{position.record_time.isoformat()}|{position.source}|{position.key}"
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_token(token: str) -> Position:
    try:
        padded = token + "=" * (-len(token) % 4)
        at, source, key = base64.urlsafe_b64decode(padded.encode()).decode().split("|", 2)
        when = datetime.fromisoformat(at)
        if when.tzinfo is None:
            raise ValueError(at)
        return Position(when, source, key)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise _query_error(
            "nextPageToken is not one this service gave out", "nextPageToken"
        ) from None


# ---------------------------------------------------------------- the service's own records


@dataclass(frozen=True, slots=True)
class OwnKind:
    """How one kind of the service's own records reads as an EPCIS ObjectEvent."""

    action: str
    biz_step: str | None
    disposition: str | None


# source -> the event it reads as. "issue": a unit's or a batch's commissioning; "pass",
# "reversal", "return", "restock": a station's scan events; the rest: a brand withdrawing
# units (the audit log's ``units.<action>``).
OWN_KINDS: Mapping[str, OwnKind] = {
    "issue": OwnKind("ADD", "commissioning", "active"),
    "pass": OwnKind("OBSERVE", "shipping", "in_transit"),
    "reversal": OwnKind("OBSERVE", "void_shipping", "sellable_accessible"),
    "return": OwnKind("OBSERVE", "receiving", "returned"),
    "restock": OwnKind("OBSERVE", "stocking", "sellable_accessible"),
    "revoke": OwnKind("DELETE", "decommissioning", "inactive"),
    "recall": OwnKind("OBSERVE", "holding", "recalled"),
    "destroy": OwnKind("DELETE", "destroying", "destroyed"),
    "report_stolen": OwnKind("OBSERVE", None, "stolen"),
}


@dataclass(frozen=True, slots=True)
class OwnRecord:
    """One of the service's own records, as the query reads it."""

    source: str  # a key of OWN_KINDS
    key: str  # unique within its source
    at: datetime
    code: str | None  # the unit, for a unit's record
    gtin: str | None  # the product, for a batch's or lot's record
    lot: str | None
    quantity: int | None
    site_id: UUID | None
    shipment_id: str | None


def own_event(record: OwnRecord) -> dict[str, Any]:
    """The EPCIS ObjectEvent a record of the service reads as."""
    kind = OWN_KINDS[record.source]
    offset = record.at.utcoffset()
    event: dict[str, Any] = {
        "type": "ObjectEvent",
        "eventID": own_event_id(record.source, record.key),
        "eventTime": record.at.isoformat(timespec="milliseconds"),
        "eventTimeZoneOffset": "+00:00" if not offset else epcis._offset(offset),
        "recordTime": record.at.isoformat(timespec="milliseconds"),
        "action": kind.action,
    }
    if record.code is not None:
        event["epcList"] = [epc_of_unit(record.code)]
    elif record.gtin is not None:
        epc_class = f"https://id.gs1.org/01/{record.gtin}"
        if record.lot is not None:
            epc_class += f"/10/{record.lot}"
        event["epcList"] = []
        event["quantityList"] = [{"epcClass": epc_class, "quantity": record.quantity or 0}]
    if kind.biz_step is not None:
        event["bizStep"] = kind.biz_step
    if kind.disposition is not None:
        event["disposition"] = kind.disposition
    if record.site_id is not None:
        event["readPoint"] = {"id": f"{SITE_EPC}{record.site_id}"}
    if record.shipment_id is not None:
        event["transparency:shipmentID"] = record.shipment_id
    if record.source == "issue" and record.lot is not None and record.code is not None:
        event["ilmd"] = {"cbvmda:lotNumber": record.lot}
    return event


def query_document(events: list[dict[str, Any]], created: datetime) -> dict[str, Any]:
    """An EPCISQueryDocument of a simple event query's results."""
    return {
        "@context": [epcis.EPCIS_CONTEXT, {"transparency": epcis.TRANSPARENCY_NAMESPACE}],
        "type": "EPCISQueryDocument",
        "schemaVersion": "2.0",
        "creationDate": created.isoformat(timespec="milliseconds"),
        "epcisBody": {
            "queryResults": {
                "queryName": "SimpleEventQuery",
                "resultsBody": {"eventList": events},
            }
        },
    }
