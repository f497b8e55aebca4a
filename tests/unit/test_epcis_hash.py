"""The EPCIS event hash (CBV 2.0 section 8.9) against the reference implementation's
published test vector, and the canonical forms it rests on."""

from __future__ import annotations

import json

import pytest

from tests.support import paths
from transparency.domain.epcis_events import check_event, unit_key_of_epc
from transparency.domain.epcis_hash import canonical, epc_digital_link, event_hash, prehash
from transparency.domain.errors import InvalidCode

VECTORS = paths.DATA / "epcis" / "hash"


def test_the_reference_vector_hashes_as_published() -> None:
    doc = json.loads((VECTORS / "epcisDocWithSingleEvent.jsonld").read_text())
    (event,) = doc["epcisBody"]["eventList"]
    expected = (VECTORS / "epcisDocWithSingleEvent.prehashes").read_text().strip()
    assert prehash(event) == expected
    assert event_hash(event) == (VECTORS / "epcisDocWithSingleEvent.hashes").read_text().strip()


DL_2017 = "https://example.com/01/10614141073464/21/2017"
EPCS = ["urn:epc:id:sgtin:0614141.107346.2017", "urn:epc:id:sgtin:0614141.107346.2018"]
BASE = {"type": "ObjectEvent", "eventTime": "2022-02-16T20:33:31.116-06:00",
        "eventTimeZoneOffset": "-06:00", "action": "OBSERVE", "bizStep": "shipping",
        "epcList": EPCS}  # fmt: skip


@pytest.mark.parametrize(
    "change",
    [
        {"eventTime": "2022-02-17T02:33:31.116Z"},  # the same moment in UTC
        {"eventTime": "2022-02-17T03:33:31.1160+01:00"},
        {"bizStep": "urn:epcglobal:cbv:bizstep:shipping"},
        {"bizStep": "https://ref.gs1.org/cbv/BizStep-shipping"},
        {"epcList": list(reversed(EPCS))},  # a list's order says nothing
        {"epcList": [DL_2017, "https://id.gs1.org/01/10614141073464/21/2018"]},
        {"eventID": "urn:uuid:1", "recordTime": "2030-01-01T00:00:00Z"},  # not facts
    ],
)
def test_the_same_facts_spelled_otherwise_hash_the_same(change: dict[str, object]) -> None:
    assert event_hash({**BASE, **change}) == event_hash(BASE)


@pytest.mark.parametrize(
    "change",
    [
        {"eventTime": "2022-02-16T20:33:31.117-06:00"},
        {"bizStep": "receiving"},
        {"action": "ADD"},
        {"epcList": EPCS[:1]},
        {"disposition": "in_transit"},
        {"example:colour": "red"},  # an extension is part of the event
    ],
)
def test_other_facts_hash_otherwise(change: dict[str, object]) -> None:
    assert event_hash({**BASE, **change}) != event_hash(BASE)


def test_gs1_keys_become_digital_links() -> None:
    assert epc_digital_link("urn:epc:id:sscc:0614141.1234567890") == (
        "https://id.gs1.org/00/106141412345678908"
    )
    assert epc_digital_link("urn:epc:id:sgln:0614141.07346.0") == (
        "https://id.gs1.org/414/0614141073467"
    )
    assert epc_digital_link("urn:epc:class:lgtin:4012345.012345.998877") == (
        "https://id.gs1.org/01/04012345123456/10/998877"
    )
    assert canonical("urn:epc:id:grai:0614141.12345.400") == "urn:epc:id:grai:0614141.12345.400"
    assert canonical("007.50") == "7.5"


def test_a_unit_is_named_by_its_epc_in_every_spelling() -> None:
    key = "(01)10614141073464(21)A/1"
    assert unit_key_of_epc("urn:epc:id:sgtin:0614141.107346.A%2F1") == key
    assert unit_key_of_epc("https://example.org/01/10614141073464/21/A%2F1") == key
    assert unit_key_of_epc("urn:transparency:code:TP0ABC") == "TP0ABC"
    assert unit_key_of_epc("urn:epc:id:sscc:0614141.1234567890") is None


def test_an_event_without_its_id_gets_its_hash_as_one() -> None:
    checked = check_event(0, BASE)
    assert checked.event_id == checked.event_hash == event_hash(BASE)
    assert checked.body["eventID"] == checked.event_id
    assert checked.biz_step == "shipping"


@pytest.mark.parametrize(
    "change",
    [
        {"type": "Event"},
        {"eventTime": "2022-02-16T20:33:31"},  # no zone
        {"eventTimeZoneOffset": None},
        {"action": "MOVE"},
        {"epcList": "urn:epc:id:sgtin:0614141.107346.2017"},
        {"readPoint": "somewhere"},
    ],
)
def test_an_event_that_is_not_one_is_refused(change: dict[str, object]) -> None:
    with pytest.raises(InvalidCode):
        check_event(0, {**BASE, **change})
