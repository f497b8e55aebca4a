"""EPCIS 1.2 and 2.0 XML in and out (transparency.domain.epcis_xml), checked against GS1's
published schemas (tests/data/epcis-schemas) and against the JSON-LD path."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import pytest
from hypothesis import given
from hypothesis import strategies as st
from lxml import etree

from tests.support import paths
from transparency.domain import epcis
from transparency.domain.epcis_xml import (
    MAX_DEPTH,
    MAX_XML_BYTES,
    document_from_xml,
    document_to_xml,
    events_to_xml,
    xml_parts,
)
from transparency.domain.errors import InvalidCode

DATA = paths.DATA / "epcis"
SCHEMAS = paths.DATA / "epcis-schemas"


@cache
def xsd(name: str) -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(SCHEMAS / name)))


def assert_valid(schema: str, data: bytes) -> None:
    validator = xsd(schema)
    valid = validator.validate(etree.fromstring(data).getroottree())
    assert valid, validator.error_log


EPCIS_2_XSD = "xsd-2.0/EPCglobal-epcis-2_0.xsd"
QUERY_2_XSD = "xsd-2.0/EPCglobal-epcis-query-2_0.xsd"
EPCIS_1_2_XSD = "xsd-1.2/EPCglobal-epcis-1_2.xsd"


@cache
def json_schema() -> jsonschema.Draft7Validator:
    schema = json.loads((SCHEMAS / "EPCIS-JSON-Schema.json").read_text())
    return jsonschema.Draft7Validator(schema, format_checker=jsonschema.FormatChecker())


def assert_json_valid(document: Any) -> None:
    errors = [e.message for e in json_schema().iter_errors(document)]
    assert errors == []


def data(name: str) -> bytes:
    return (DATA / name).read_bytes()


@dataclass(frozen=True)
class Unit:
    gtin: str
    serial: str
    lot: str | None
    expiry: date | None


def commissioning(count: int = 3) -> dict[str, Any]:
    units = [Unit("10614141073464", f"S{i}", "L1" if i % 2 else None, None) for i in range(count)]
    units.append(Unit("10614141073464", "X9", "L2", date(2027, 6, 30)))
    return epcis.commissioning_document(
        units, event_time=datetime(2026, 11, 1, 12, tzinfo=UTC), brand_name="Acme & <Co>",
        company_prefix_length=7,
    )  # fmt: skip


# ---------------------------------------------------------------- our documents are real


@pytest.mark.parametrize(
    ("name", "schema"),
    [
        ("transparency-commissioning-1.2.xml", EPCIS_1_2_XSD),
        ("transparency-commissioning-2.0.xml", EPCIS_2_XSD),
        ("transparency-query-2.0.xml", QUERY_2_XSD),
        ("transparency-masterdata-2.0.xml", "xsd-2.0/EPCglobal-epcis-masterdata-2_0.xsd"),
    ],
)
def test_our_test_documents_are_valid_under_gs1s_schemas(name: str, schema: str) -> None:
    assert_valid(schema, data(name))


def test_our_json_ld_test_document_is_valid_under_the_epcis_json_schema_once_cbv_is_short() -> None:
    # The file spells one event's CBV values as 1.2 URNs, which the JSON Schema refuses;
    # read as XML from 1.2, the same events come out short and valid (next tests).
    document = json.loads(data("transparency-commissioning.jsonld"))
    errors = [e.message for e in json_schema().iter_errors(document)]
    assert any("urn:epcglobal:cbv:bizstep:commissioning" in e for e in errors)


# ---------------------------------------------------------------- reading


@pytest.mark.parametrize(
    "name", ["transparency-commissioning-1.2.xml", "transparency-commissioning-2.0.xml"]
)
def test_xml_commissions_exactly_what_the_json_ld_document_does(name: str) -> None:
    json_ld = json.loads(data("transparency-commissioning.jsonld"))
    from_xml = document_from_xml(data(name))
    assert epcis.parse_commissioning(from_xml) == epcis.parse_commissioning(json_ld)
    commissioned, refused = epcis.parse_commissioning(from_xml)
    assert len(commissioned) == 5
    assert refused == []


@pytest.mark.parametrize(
    "name", ["transparency-commissioning-1.2.xml", "transparency-commissioning-2.0.xml"]
)
def test_a_document_read_from_xml_is_valid_epcis_2_json_ld(name: str) -> None:
    assert_json_valid(document_from_xml(data(name)))


def test_1_2_extension_wrappers_are_unwrapped() -> None:
    events = document_from_xml(data("transparency-commissioning-1.2.xml"))["epcisBody"]["eventList"]
    assert [e["type"] for e in events] == [
        "ObjectEvent", "AggregationEvent", "ObjectEvent", "ObjectEvent", "TransactionEvent",
        "ObjectEvent",  # 1.2's QuantityEvent, which 2.0 has not
        "TransformationEvent",  # inside <EventList><extension> in 1.2
    ]  # fmt: skip
    first, shipped, counted, transformed = events[0], events[3], events[5], events[6]
    assert first["eventID"] == "urn:uuid:6a1bd4a6-4a6f-4d8b-9c3a-000000000001"  # baseExtension
    assert first["ilmd"] == {  # <extension><ilmd>
        "cbvmda:lotNumber": "LOT1",
        "cbvmda:itemExpirationDate": "2027-01-31",
    }
    assert shipped["quantityList"] == [
        {"epcClass": "urn:epc:class:lgtin:0614141.107346.LOT1", "quantity": 12.5, "uom": "KGM"}
    ]
    assert shipped["sourceList"] == [
        {"type": "owning_party", "source": "urn:epc:id:pgln:0614141.00001"}
    ]
    assert shipped["destinationList"] == [
        {"type": "owning_party", "destination": "urn:epc:id:pgln:0614141.00002"}
    ]
    assert counted == {
        "type": "ObjectEvent",
        "eventTime": "2026-11-23T09:45:00.000+01:00",
        "eventTimeZoneOffset": "+01:00",
        "bizStep": "storing",
        "readPoint": {"id": "urn:epc:id:sgln:0614141.07346.1234"},
        "quantityList": [{"epcClass": "urn:epc:idpat:sgtin:0614141.107346.*", "quantity": 200}],
        "action": "OBSERVE",
    }
    assert transformed["errorDeclaration"] == {
        "declarationTime": "2026-11-24T10:00:00.000+01:00",
        "reason": "incorrect_data",
    }
    assert transformed["outputEPCList"] == ["urn:epc:id:sgtin:0614141.107346.3001"]
    assert transformed["ilmd"] == {"cbvmda:lotNumber": "LOT3"}


def test_cbv_values_are_written_as_epcis_2_json_ld_writes_them() -> None:
    events = document_from_xml(data("transparency-commissioning-2.0.xml"))["epcisBody"]["eventList"]
    assert (events[0]["bizStep"], events[0]["disposition"]) == ("commissioning", "active")
    # The 2.0 web URIs shorten the same way as the 1.2 URNs.
    assert (events[1]["bizStep"], events[1]["disposition"]) == ("packing", "in_progress")
    assert events[3]["bizTransactionList"][0]["type"] == "po"
    assert events[3]["persistentDisposition"] == {
        "unset": ["completeness_inferred"],
        "set": ["completeness_verified"],
    }
    assert events[5]["errorDeclaration"]["reason"] == "incorrect_data"
    # What is no CBV value stays whole.
    assert events[3]["bizTransactionList"][0]["bizTransaction"].startswith("urn:epcglobal:cbv:bt:")


def test_epcis_2_fields_sensor_data_and_user_extensions() -> None:
    document = document_from_xml(data("transparency-commissioning-2.0.xml"))
    assert document["@context"] == [
        epcis.EPCIS_CONTEXT,
        {"example": "http://ns.example.com/epcis/"},
    ]
    events = document["epcisBody"]["eventList"]
    shipped = events[3]
    assert shipped["recordTime"] == "2026-11-23T09:00:05.000+01:00"
    assert shipped["certificationInfo"].startswith("https://accreditation.example.org/")
    assert shipped["sensorElementList"] == [
        {
            "sensorMetadata": {
                "time": "2026-11-23T08:55:00.000+01:00",
                "deviceID": "urn:epc:id:giai:0614141.111",
                "example:calibrated": "2026-01-01",
            },
            "sensorReport": [
                {
                    "type": "Temperature",
                    "value": 4.5,
                    "uom": "CEL",
                    "minValue": 3.9,
                    "maxValue": 5.1,
                },
                {"type": "AbsoluteHumidity", "value": 12, "uom": "A93", "booleanValue": False},
            ],
            "example:probe": "P-7",
        }
    ]
    assert shipped["example:carrier"] == "Rail"
    assert shipped["example:seal"] == ["S-1", "S-2"]  # repeated: a list
    assert shipped["example:route"] == {"example:leg": ["Lyon", "Basel"]}
    assert shipped["quantityList"][1] == {
        "epcClass": "urn:epc:idpat:sgtin:0614141.107346.*",
        "quantity": 40,
    }
    assert [e["type"] for e in events[5:]] == ["TransformationEvent", "AssociationEvent"]
    assert events[6]["parentID"] == "urn:epc:id:grai:0614141.12345.7"


def test_a_query_document_reads_as_the_json_ld_query_document_does() -> None:
    document = document_from_xml(data("transparency-query-2.0.xml"))
    assert document["type"] == "EPCISQueryDocument"
    results = document["epcisBody"]["queryResults"]
    assert (results["queryName"], results["subscriptionID"]) == ("SimpleEventQuery", "sub-1")
    assert [e["bizStep"] for e in results["resultsBody"]["eventList"]] == ["shipping", "receiving"]
    assert epcis.parse_commissioning(document) == ([], [])  # nothing to import, no error


def test_a_prefix_clash_gets_a_prefix_of_its_own() -> None:
    xml = b"""<epcis:EPCISDocument xmlns:epcis="urn:epcglobal:epcis:xsd:2" schemaVersion="2.0"
        creationDate="2026-01-01T00:00:00Z"><EPCISBody><EventList><ObjectEvent>
        <eventTime>2026-01-01T00:00:00Z</eventTime><eventTimeZoneOffset>+00:00</eventTimeZoneOffset>
        <action>OBSERVE</action>
        <a:x xmlns:a="urn:one">1</a:x><a:y xmlns:a="urn:two">2</a:y>
        <gs1:z xmlns:gs1="urn:three">3</gs1:z>
        </ObjectEvent></EventList></EPCISBody></epcis:EPCISDocument>"""
    document = document_from_xml(xml)
    context = document["@context"][1]
    event = document["epcisBody"]["eventList"][0]
    found = {context[key.partition(":")[0]]: value for key, value in event.items() if ":" in key}
    assert found == {"urn:one": "1", "urn:two": "2", "urn:three": "3"}
    assert document_from_xml(document_to_xml(document)) == document


# ---------------------------------------------------------------- writing


def test_a_commissioning_export_is_valid_under_the_epcis_2_xsd_and_json_schema() -> None:
    document = commissioning()
    assert_json_valid(document)
    xml = document_to_xml(document)
    assert_valid(EPCIS_2_XSD, xml)
    assert epcis.parse_commissioning(document_from_xml(xml)) == epcis.parse_commissioning(document)
    assert document_from_xml(xml)["transparency:brandName"] == "Acme & <Co>"


@pytest.mark.parametrize(
    ("name", "schema"),
    [
        ("transparency-commissioning-1.2.xml", EPCIS_2_XSD),
        ("transparency-commissioning-2.0.xml", EPCIS_2_XSD),
        ("transparency-query-2.0.xml", QUERY_2_XSD),
    ],
)
def test_xml_to_dict_to_xml_to_dict_is_the_same_dict_and_valid_epcis_2(
    name: str, schema: str
) -> None:
    first = document_from_xml(data(name))
    xml = document_to_xml(first)
    assert_valid(schema, xml)
    assert document_from_xml(xml) == first


def test_the_json_ld_test_document_writes_as_valid_epcis_2_xml() -> None:
    document = json.loads(data("transparency-commissioning.jsonld"))
    xml = document_to_xml(document)
    assert_valid(EPCIS_2_XSD, xml)
    assert epcis.parse_commissioning(document_from_xml(xml)) == epcis.parse_commissioning(document)


def test_a_streamed_document_is_its_head_then_each_parts_events_then_its_tail() -> None:
    whole = commissioning(6)
    head, events, tail = xml_parts(whole)
    assert head.endswith(b"<EventList>")
    assert tail.startswith(b"</EventList>")
    assert head + events + tail == document_to_xml(whole)
    parts = [dict(whole, epcisBody={"eventList": [e]}) for e in whole["epcisBody"]["eventList"]]
    streamed = head + b"".join(events_to_xml(p) for p in parts) + tail
    assert streamed == document_to_xml(whole)
    empty_head, nothing, empty_tail = xml_parts(dict(whole, epcisBody={"eventList": []}))
    assert (empty_head, nothing, empty_tail) == (head, b"", tail)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"type": "QuantityEvent"}, "no event type 'QuantityEvent'"),
        ({"other:field": "x"}, "the prefix 'other' is not defined"),
        ({"action": None}, "needs action"),
    ],
)
def test_what_xml_cannot_carry_is_a_value_error(change: dict[str, Any], message: str) -> None:
    document = commissioning(1)
    event = document["epcisBody"]["eventList"][0]
    event.update(change)
    if change.get("action", "") is None:
        del event["action"]
    with pytest.raises(ValueError, match=message):
        document_to_xml(document)


def test_a_document_without_its_creation_date_is_a_value_error() -> None:
    document = commissioning(1)
    del document["creationDate"]
    with pytest.raises(ValueError, match="needs its creationDate"):
        document_to_xml(document)


_text = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs", "Cc", "Zs", "Zl", "Zp")),
    min_size=1,
    max_size=12,
)
_leaf = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=12)
_name = st.from_regex(r"[a-z][a-zA-Z0-9]{0,6}", fullmatch=True)
_extension: st.SearchStrategy[Any] = st.recursive(
    _leaf,
    lambda inner: st.dictionaries(_name.map(lambda n: f"ex:{n}"), inner, min_size=1, max_size=3),
    max_leaves=6,
)


@given(
    epcs=st.lists(_text, max_size=5),
    quantity=st.one_of(
        st.integers(-(10**12), 10**12), st.floats(-1e6, 1e6).map(lambda f: round(f, 3))
    ),
    step=st.sampled_from(["commissioning", "shipping", "urn:example:step", "https://x.example/s"]),
    ilmd=st.dictionaries(_name.map(lambda n: f"cbvmda:{n}"), _leaf, max_size=3),
    extensions=st.dictionaries(_name.map(lambda n: f"ex:{n}"), _extension, max_size=3),
)
def test_round_trip_over_many_documents(
    epcs: list[str],
    quantity: float,
    step: str,
    ilmd: dict[str, str],
    extensions: dict[str, Any],
) -> None:
    event: dict[str, Any] = {
        "type": "ObjectEvent",
        "eventTime": "2026-11-01T12:00:00.000Z",
        "eventTimeZoneOffset": "+00:00",
        "epcList": epcs,
        "action": "OBSERVE",
        "bizStep": step,
        "quantityList": [
            {"epcClass": "urn:epc:class:lgtin:0614141.107346.L", "quantity": quantity}
        ],
        "ex:always": "there",  # @context lists the namespaces in use, and so one is
        **extensions,
    }
    if ilmd:
        event["ilmd"] = ilmd
    document = {
        "@context": [epcis.EPCIS_CONTEXT, {"ex": "urn:example:"}],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": "2026-11-01T12:00:00.000Z",
        "epcisBody": {"eventList": [event]},
    }
    xml = document_to_xml(document)
    again = document_from_xml(xml)
    assert again == document
    assert document_from_xml(document_to_xml(again)) == again


# ---------------------------------------------------------------- hostile and broken XML


def refusal(xml: bytes) -> str:
    with pytest.raises(InvalidCode) as caught:
        document_from_xml(xml)
    assert caught.value.reason == "invalid_xml"
    return caught.value.detail


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<epcis:EPCISDocument xmlns:epcis="urn:epcglobal:epcis:xsd:2" schemaVersion="2.0"
  creationDate="2026-01-01T00:00:00Z"><EPCISBody><EventList><ObjectEvent>
  <eventTime>2026-01-01T00:00:00Z</eventTime><eventTimeZoneOffset>+00:00</eventTimeZoneOffset>
  <epcList><epc>&lol9;</epc></epcList><action>ADD</action>
  <bizStep>commissioning</bizStep></ObjectEvent></EventList></EPCISBody></epcis:EPCISDocument>
"""


def test_billion_laughs_is_refused_without_expanding() -> None:
    started = time.perf_counter()
    detail = refusal(BILLION_LAUGHS)
    assert time.perf_counter() - started < 1  # a billion "lol"s would take minutes and GBs
    assert detail == "line 3: a DTD that declares entities or elements is refused"


def test_an_external_entity_or_dtd_is_refused_and_its_file_not_shown(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-VALUE")
    for declaration in (
        f'<!DOCTYPE d [<!ENTITY x SYSTEM "file://{secret}">]>',
        f'<!DOCTYPE d [<!ENTITY % p SYSTEM "file://{secret}"> %p;]>',
        f'<!DOCTYPE d SYSTEM "file://{secret}">',
        '<!DOCTYPE d SYSTEM "http://127.0.0.1:9/epcis.dtd">',  # and no network either
    ):
        xml = (
            f'<?xml version="1.0"?>\n{declaration}\n<epcis:EPCISDocument'
            ' xmlns:epcis="urn:epcglobal:epcis:xsd:2"><EPCISBody><EventList><ObjectEvent>'
            "<epc>&x;</epc></ObjectEvent></EventList></EPCISBody></epcis:EPCISDocument>"
        ).encode()
        if "ENTITY x" not in declaration:
            xml = xml.replace(b"&x;", b"")
        assert refusal(xml) == "line 3: a DTD that declares entities or elements is refused"


def test_deep_nesting_is_refused_with_its_line() -> None:
    deep = b"<a>" * 10_000 + b"</a>" * 10_000
    xml = (
        b'<epcis:EPCISDocument xmlns:epcis="urn:epcglobal:epcis:xsd:2">\n<EPCISBody>\n'
        + deep
        + b"</EPCISBody></epcis:EPCISDocument>"
    )
    assert refusal(xml).startswith("line 3")
    within_libxml = b"<a>" * (MAX_DEPTH + 1) + b"</a>" * (MAX_DEPTH + 1)
    assert refusal(xml.replace(deep, within_libxml)) == (
        f"line 3: nested deeper than {MAX_DEPTH} elements"
    )


def test_a_document_over_the_size_limit_is_refused_before_it_is_parsed() -> None:
    big = b"<" * (100 * 1_048_576)  # 100 MB, not even XML: never looked at
    started = time.perf_counter()
    assert refusal(big) == f"an EPCIS XML document holds at most {MAX_XML_BYTES} bytes"
    assert time.perf_counter() - started < 1


@pytest.mark.parametrize(
    ("xml", "detail"),
    [
        (
            b"<a>\n  <b>x</c></a>",
            "line 2 column 11: Opening and ending tag mismatch: b line 2 and c",
        ),
        (
            b'<e:EPCISDocument xmlns:e="urn:epcglobal:epcis:xsd:2">&unknown;</e:EPCISDocument>',
            "line 1 column 63: Entity 'unknown' not defined",
        ),
        (b"", "line 1 column 1: Document is empty"),
        (b"{}", "line 1 column 1: Start tag expected, '<' not found"),
        (b"<a/><b/>", "line 1 column 5: Extra content at the end of the document"),
        (
            b"<EPCISDocument><EPCISBody/></EPCISDocument>",
            "line 1: EPCISDocument is no EPCISDocument or EPCISQueryDocument",
        ),
        (
            b'<e:EPCISDocument xmlns:e="urn:epcglobal:epcis:xsd:2"/>',
            "line 1: the document has no EPCISBody",
        ),
        (
            b'<e:EPCISDocument xmlns:e="urn:epcglobal:epcis:xsd:2"><EPCISBody><EventList>'
            b"<ObjectEvent>\n<quantityList><quantityElement><epcClass>c</epcClass>"
            b"<quantity>12,5</quantity></quantityElement></quantityList></ObjectEvent>"
            b"</EventList></EPCISBody></e:EPCISDocument>",
            "line 2: quantity '12,5' is not a number",
        ),
    ],
)
def test_a_broken_document_is_refused_with_its_place(xml: bytes, detail: str) -> None:
    assert refusal(xml).startswith(detail)


def test_a_master_data_document_is_refused_with_the_reason() -> None:
    assert refusal(data("transparency-masterdata-2.0.xml")) == (
        "line 4: EPCISMasterDataDocument is no EPCISDocument or EPCISQueryDocument"
        " (EPCIS 1.2 or 2.0): it holds no events to import"
    )


def test_xml_names_its_own_encoding() -> None:
    text = data("transparency-commissioning-2.0.xml").decode()
    utf16 = text.replace('encoding="UTF-8"', 'encoding="UTF-16"').encode("utf-16")
    assert document_from_xml(utf16) == document_from_xml(text.encode())


def test_a_large_event_is_read_without_its_tree_standing_whole(tmp_path: Path) -> None:
    """One event of 200,000 SGTINs (about 9 MB of XML), read in a process of its own: the
    memory it takes is about what the resulting dict needs (a str of about 90 bytes and a
    list slot per EPC: 20 MB), not libxml2's tree of every <epc> besides (57 MB more)."""
    path = tmp_path / "large.xml"
    epcs = "".join(f"<epc>urn:epc:id:sgtin:0614141.107346.{i}</epc>\n" for i in range(200_000))
    path.write_text(
        '<e:EPCISDocument xmlns:e="urn:epcglobal:epcis:xsd:2"><EPCISBody><EventList>'
        "<ObjectEvent><eventTime>2026-01-01T00:00:00Z</eventTime><eventTimeZoneOffset>"
        f"+00:00</eventTimeZoneOffset><epcList>{epcs}</epcList><action>ADD</action>"
        "</ObjectEvent></EventList></EPCISBody></e:EPCISDocument>"
    )
    script = f"""
import resource
from transparency.domain.epcis_xml import document_from_xml
data = open({str(path)!r}, "rb").read()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
document = document_from_xml(data)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
assert len(document["epcisBody"]["eventList"][0]["epcList"]) == 200_000
print(after - before)
"""
    grown_kb = int(
        subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, check=True
        ).stdout
    )
    assert grown_kb * 1024 < 40 * 1_048_576, grown_kb
