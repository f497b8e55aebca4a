"""EPCIS 2.0 commissioning: GS1's examples, our own document, rejections, round trip."""

from __future__ import annotations

import copy
import json
import string
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest
from biip.checksums import gs1_standard_check_digit
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support import paths
from transparency.domain.epcis import (
    EPCIS_CONTEXT,
    MAX_DEPTH,
    Commissioned,
    TooManyEntries,
    commissioned_sgtins,
    commissioning_document,
    load_document,
    parse_commissioning,
    sgtin_from_urn,
    sgtin_urn,
)
from transparency.domain.errors import InvalidCode

DATA = paths.DATA / "epcis"
SET_82 = "!\"%&'()*+,-./0123456789:;<=>?ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz"
EVENT_TIME = datetime(2026, 11, 23, 8, 0, tzinfo=timezone(timedelta(hours=1)))


def load(name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((DATA / name).read_text())
    return document


@dataclass(frozen=True)
class Unit:
    gtin: str
    serial: str
    lot: str | None = None
    expiry: date | None = None


def key(unit: Any) -> tuple[str, str, str | None, date | None]:
    return unit.gtin, unit.serial, unit.lot, unit.expiry


def test_a_document_that_only_ships_and_packs_imports_nothing() -> None:
    # Shaped like the GS1 standard's examples: SGTINs shipped, received and packed, never
    # commissioned. (Those examples carry no licence to redistribute, so they are not here.)
    assert parse_commissioning(load("transparency-query.jsonld")) == ([], [])


def test_our_commissioning_document_imports() -> None:
    commissioned, rejected = parse_commissioning(load("transparency-commissioning.jsonld"))
    assert rejected == []
    lot1 = ("LOT1", date(2027, 1, 31))
    assert [(*key(c)[:2], c.lot, c.expiry, c.position) for c in commissioned] == [
        ("10614141073464", "2017", *lot1, "epcisBody.eventList[0].epcList[0]"),
        ("10614141073464", "2018", *lot1, "epcisBody.eventList[0].epcList[1]"),
        ("10614141073464", 'A/B%"', *lot1, "epcisBody.eventList[0].epcList[2]"),
        ("70614141123451", "2019", None, None, "epcisBody.eventList[2].epcList[0]"),
        ("70614141123451", "2020", "LOT2", date(2027, 2, 28), "epcisBody.eventList[2].epcList[1]"),
    ]
    assert [c.event_index for c in commissioned] == [0, 0, 0, 2, 2]
    assert commissioned_sgtins(load("transparency-commissioning.jsonld")) == commissioned


def test_query_documents_report_their_own_positions() -> None:
    document = load("transparency-query.jsonld")
    event = document["epcisBody"]["queryResults"]["resultsBody"]["eventList"][1]
    event.update(action="ADD", bizStep="https://ref.gs1.org/cbv/BizStep-commissioning")
    (unit,), [] = parse_commissioning(document)
    assert unit.position == "epcisBody.queryResults.resultsBody.eventList[1].epcList[0]"
    assert (unit.gtin, unit.serial) == ("10614141073464", "2018")


def commissioning(epcs: list[Any], **extra: Any) -> dict[str, Any]:
    event = {"type": "ObjectEvent", "action": "ADD", "bizStep": "commissioning", "epcList": epcs}
    return {"type": "EPCISDocument", "epcisBody": {"eventList": [event | extra]}}


def test_bad_entries_are_rejected_with_position_and_reason() -> None:
    document = commissioning(
        [
            "urn:epc:id:sgtin:0614141.107346.2017",
            "https://id.gs1.org/01/70614141123452/21/X",  # check digit should be 1
            "urn:epc:id:foo:0614141.1",
            "urn:epc:id:sscc:0614141.1234567890",
            "urn:epc:id:sgtin:0614141.10734.1",  # 12 digits, not 13
            "urn:epc:id:sgtin:0614141.107346.A/B",  # "/" must be escaped
            "urn:epc:id:sgtin:0614141.107346.%41",  # only seven characters are escaped
            "urn:epc:id:sgtin:0614141.107346." + "1" * 21,
            "https://id.gs1.org/01/70614141123451",
            "https://id.gs1.org/01/70614141123451/10/OTHER/21/S",
            "mailto:someone@example.com",
            42,
        ],
        ilmd={"cbvmda:lotNumber": "LOT1"},
    )
    commissioned, rejected = parse_commissioning(document)
    assert [c.serial for c in commissioned] == ["2017"]
    assert [(r.position.removeprefix("epcisBody.eventList[0]."), r.reason) for r in rejected] == [
        ("epcList[1]", "bad_check_digit"),
        ("epcList[2]", "unknown_epc_scheme"),
        ("epcList[3]", "not_sgtin"),
        ("epcList[4]", "invalid_sgtin"),
        ("epcList[5]", "invalid_sgtin"),
        ("epcList[6]", "invalid_sgtin"),
        ("epcList[7]", "invalid_sgtin"),
        ("epcList[8]", "missing_serial"),
        ("epcList[9]", "conflicting_ai"),
        ("epcList[10]", "unknown_epc_scheme"),
        ("epcList[11]", "invalid_epc"),
    ]
    with pytest.raises(InvalidCode) as caught:
        commissioned_sgtins(document)
    assert caught.value.reason == "bad_check_digit"
    assert "eventList[0].epcList[1]" in caught.value.detail


@pytest.mark.parametrize(
    ("ilmd", "reason"),
    [
        ({"cbvmda:lotNumber": "A B"}, "invalid_lot"),
        ({"lotNumber": "L" * 21}, "invalid_lot"),
        ({"cbvmda:itemExpirationDate": "2027-02-30"}, "invalid_expiry"),
        ({"itemExpirationDate": "31.12.2027"}, "invalid_expiry"),
        ("LOT1", "invalid_event"),
    ],
)
def test_bad_ilmd_rejects_every_entry_of_its_event(ilmd: Any, reason: str) -> None:
    document = commissioning(["urn:epc:id:sgtin:0614141.107346.1"] * 2, ilmd=ilmd)
    commissioned, rejected = parse_commissioning(document)
    assert commissioned == []
    assert [r.reason for r in rejected] == [reason, reason]


@pytest.mark.parametrize(
    "event",
    [
        {"action": "OBSERVE"},
        {"action": "DELETE"},
        {"bizStep": "shipping"},
        {"bizStep": "urn:epcglobal:cbv:bizstep:decommissioning"},
        {"type": "AggregationEvent"},
        {"type": "TransformationEvent"},
    ],
)
def test_only_commissioning_add_object_events_count(event: dict[str, Any]) -> None:
    document = commissioning(["urn:epc:id:sgtin:0614141.107346.1"])
    document["epcisBody"]["eventList"][0].update(event)
    assert parse_commissioning(document) == ([], [])


@pytest.mark.parametrize(
    "bizstep",
    [
        "commissioning",
        "urn:epcglobal:cbv:bizstep:commissioning",
        "https://ref.gs1.org/cbv/BizStep-commissioning",
    ],
)
def test_every_spelling_of_commissioning(bizstep: str) -> None:
    document = commissioning(["urn:epc:id:sgtin:0614141.107346.1"], bizStep=bizstep)
    document["epcisBody"]["eventList"][0]["isA"] = document["epcisBody"]["eventList"][0].pop("type")
    assert len(commissioned_sgtins(document)) == 1


@pytest.mark.parametrize(
    "document",
    [
        [],
        "EPCISDocument",
        {},
        {"type": "EPCISDocument"},
        {"type": "EPCISDocument", "epcisBody": {}},
        {"type": "EPCISDocument", "epcisBody": {"eventList": {}}},
        {"type": "EPCISDocument", "epcisBody": []},
        {"type": "EPCISQueryDocument", "epcisBody": {"queryResults": {"resultsBody": []}}},
        {"type": "ObjectEvent", "epcisBody": {"eventList": []}},
        {"epcisBody": {"eventList": []}},
    ],
)
def test_a_document_that_is_not_epcis_is_refused(document: Any) -> None:
    with pytest.raises(InvalidCode) as caught:
        parse_commissioning(document)
    assert caught.value.reason == "invalid_epcis"


def test_a_non_object_event_is_reported() -> None:
    document = commissioning(["urn:epc:id:sgtin:0614141.107346.1"])
    document["epcisBody"]["eventList"].insert(0, "nonsense")
    commissioned, rejected = parse_commissioning(document)
    assert [c.position for c in commissioned] == ["epcisBody.eventList[1].epcList[0]"]
    assert [(r.position, r.reason) for r in rejected] == [
        ("epcisBody.eventList[0]", "invalid_event")
    ]


def test_sgtin_urns() -> None:
    assert sgtin_from_urn("urn:epc:id:sgtin:0614141.107346.2017") == ("10614141073464", "2017")
    assert sgtin_from_urn("urn:epc:id:sgtin:4012345.011111.987") == ("04012345111118", "987")
    assert sgtin_from_urn("urn:epc:id:sgtin:061414112345.0.%2f%3f") == ("00614141123452", "/?")
    urn = sgtin_urn("10614141073464", '"%&/<>?!', 7)
    assert urn == "urn:epc:id:sgtin:0614141.107346.%22%25%26%2F%3C%3E%3F!"
    with pytest.raises(ValueError, match="check digit"):
        sgtin_urn("10614141073465", "1", 7)


def with_check_digit(body: str) -> str:
    return body + str(gs1_standard_check_digit(body))


units = st.builds(
    Unit,
    gtin=st.text(string.digits, min_size=13, max_size=13).map(with_check_digit),
    serial=st.text(SET_82, min_size=1, max_size=20),
    lot=st.none() | st.text(SET_82, min_size=1, max_size=20),
    expiry=st.none() | st.dates(date(2000, 1, 1), date(2099, 12, 31)),
)


@given(st.lists(units, max_size=30), st.integers(6, 12))
@settings(max_examples=200)
def test_export_import_round_trip(batch: list[Unit], company_prefix_length: int) -> None:
    document = commissioning_document(
        batch,
        event_time=EVENT_TIME,
        brand_name="Acme",
        company_prefix_length=company_prefix_length,
    )
    document = json.loads(json.dumps(document))  # what a file holds
    commissioned, rejected = parse_commissioning(document)
    assert rejected == []
    assert sorted(map(key, commissioned), key=repr) == sorted(map(key, batch), key=repr)


def test_exported_document_shape() -> None:
    batch = [
        Unit("10614141073464", "A/1", "L1", date(2027, 1, 31)),
        Unit("10614141073464", "A/2", "L1", date(2027, 1, 31)),
        Unit("10614141073464", "B", None, None),
    ]
    document = commissioning_document(batch, event_time=EVENT_TIME, brand_name="Acme")
    assert document["@context"][0] == EPCIS_CONTEXT
    assert document["type"] == "EPCISDocument"
    assert document["schemaVersion"] == "2.0"
    assert document["creationDate"] == "2026-11-23T08:00:00.000+01:00"
    first, second = document["epcisBody"]["eventList"]
    assert first == {
        "type": "ObjectEvent",
        "eventTime": "2026-11-23T08:00:00.000+01:00",
        "eventTimeZoneOffset": "+01:00",
        "epcList": [
            "urn:epc:id:sgtin:0614141.107346.A%2F1",
            "urn:epc:id:sgtin:0614141.107346.A%2F2",
        ],
        "action": "ADD",
        "bizStep": "commissioning",
        "disposition": "active",
        "ilmd": {"cbvmda:lotNumber": "L1", "cbvmda:itemExpirationDate": "2027-01-31"},
    }
    assert "ilmd" not in second
    assert [c.serial for c in commissioned_sgtins(document)] == ["A/1", "A/2", "B"]


def test_export_refuses_what_it_cannot_write() -> None:
    with pytest.raises(ValueError, match="time zone"):
        commissioning_document([], event_time=datetime(2026, 1, 1), brand_name="Acme")
    with pytest.raises(ValueError, match="company prefix"):
        commissioning_document(
            [Unit("00000000000000", "1")], event_time=datetime.now(UTC), brand_name="Acme"
        )


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=40),
                    lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.text(max_size=12), inner, max_size=4),
                    max_leaves=30))  # fmt: skip
@settings(max_examples=300)
def test_parsing_arbitrary_json_is_total(noise: Any) -> None:
    documents = [
        noise,
        commissioning([noise]),
        commissioning(["x"], ilmd=noise),
        commissioning(["x"], bizStep=noise, action=noise, type=noise),
        {"type": "EPCISDocument", "epcisBody": {"eventList": [noise]}},
        {"type": "EPCISQueryDocument", "epcisBody": {"queryResults": noise}},
    ]
    for document in documents:
        try:
            commissioned, _ = parse_commissioning(copy.deepcopy(document))
        except InvalidCode:
            continue
        assert all(isinstance(c, Commissioned) for c in commissioned)


def refusal(text: str) -> str:
    with pytest.raises(InvalidCode) as refused:
        load_document(text)
    assert refused.value.reason == "invalid_json"
    return refused.value.detail


def test_nesting_deeper_than_json_can_go_is_refused_with_its_place() -> None:
    """200,000 levels: Python's decoder raised a RecursionError that named no place."""
    deep = "[" * 200_000 + "]" * 200_000
    assert refusal(deep) == f"line 1 column {MAX_DEPTH + 1}: nested deeper than 64 levels"
    spread = '{\n "epcisBody": {"eventList": [\n  ' + '{"a": ' * 3000 + "1" + "}" * 3000 + "]}}"
    assert refusal(spread) == "line 3 column 369: nested deeper than 64 levels"


def test_a_number_of_a_hundred_thousand_digits_is_refused_unread() -> None:
    assert refusal('{"n":\n  ' + "9" * 100_000 + "}") == (
        "line 2 column 3: a number of 100000 characters (at most 40)"
    )
    assert refusal('{"n": -1' + "0" * 5_000 + ".5}").startswith("line 1 column 7: a number")
    assert load_document('{"n": 12345678901234567890, "f": 1.5e300}') == {
        "n": 12345678901234567890,
        "f": 1.5e300,
    }


def test_a_key_twice_in_one_object_is_refused_not_silently_the_last() -> None:
    text = '{"type": "EPCISDocument",\n  "epcisBody": {"eventList": []},\n  "type": "x"}'
    assert refusal(text) == 'line 3 column 3: the key "type" appears twice in one object'
    escaped = '{"a": 1, "b": {"a": 2, "\\u0061": 3}}'  # "\u0061" is "a" again
    assert refusal(escaped) == 'line 1 column 24: the key "\\u0061" appears twice in one object'
    assert load_document('{"a": {"a": 1}, "b": [{"a": 2}, {"a": 3}]}')["b"][1] == {"a": 3}


def test_nan_infinity_and_bad_syntax_are_refused_with_their_place() -> None:
    assert refusal('{"x": [1, NaN]}') == "line 1 column 11: NaN is not a JSON number"
    assert refusal('{"x": -Infinity}') == "line 1 column 7: -Infinity is not a JSON number"
    assert refusal('{"x":\n [1,]}') == "line 2 column 5: Expecting value"


def test_entries_past_the_limit_stop_the_reading() -> None:
    document = commissioning_document(
        [Unit("10614141073464", f"S{n}", None, None) for n in range(11)],
        event_time=datetime(2026, 1, 1, tzinfo=UTC),
        brand_name="Acme",
        company_prefix_length=7,
    )
    assert len(parse_commissioning(document, 11)[0]) == 11
    with pytest.raises(TooManyEntries):
        parse_commissioning(document, 10)
