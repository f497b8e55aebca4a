"""The simple event query's parameters, page tokens, and the service's own records as
EPCIS events."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

import pytest

from transparency.domain.epcis_query import (
    OWN_KINDS,
    OwnRecord,
    Position,
    decode_token,
    encode_token,
    own_event,
    parse_query,
)
from transparency.domain.errors import InvalidInput


def test_parameters_are_read_in_their_canonical_forms() -> None:
    query = parse_query([
        ("eventType", "ObjectEvent|AggregationEvent"),
        ("EQ_bizStep", "urn:epcglobal:cbv:bizstep:shipping"),
        ("EQ_bizStep", "https://ref.gs1.org/cbv/BizStep-receiving"),
        ("EQ_disposition", "in_transit"),
        ("MATCH_epc", "urn:epc:id:sgtin:0614141.107346.2017"),
        ("GE_eventTime", "2026-01-01T00:00:00+01:00"),
        ("perPage", "5"),
    ])  # fmt: skip
    assert query.event_types == ("ObjectEvent", "AggregationEvent")
    assert query.biz_steps == ("shipping", "receiving")
    assert query.dispositions == ("in_transit",)
    assert query.epcs == ("https://id.gs1.org/01/10614141073464/21/2017",)
    assert query.unit_keys == ("(01)10614141073464(21)2017",)
    assert query.ge_event_time == datetime(2025, 12, 31, 23, tzinfo=UTC)
    assert query.per_page == 5


@pytest.mark.parametrize(
    "params",
    [
        [("EQ_colour", "red")],
        [("eventType", "Event")],
        [("perPage", "0")],
        [("perPage", "100000")],
        [("LT_recordTime", "2026-01-01")],  # no zone
        [("nextPageToken", "not-a-token")],
        [("EQ_bizStep", "")],
    ],
)
def test_a_parameter_that_cannot_be_is_refused(params: list[tuple[str, str]]) -> None:
    with pytest.raises(InvalidInput):
        parse_query(params)


def test_a_page_token_round_trips() -> None:
    position = Position(datetime(2026, 3, 1, 10, 0, 0, 123456, tzinfo=UTC), "captured", "0042")
    assert decode_token(encode_token(position)) == position


def test_every_own_record_reads_as_an_object_event_with_a_stable_id() -> None:
    at = datetime(2026, 3, 1, tzinfo=UTC)
    site = uuid4()
    for source, kind in OWN_KINDS.items():
        record = OwnRecord(source, "k1", at, "TP0ABC", None, None, None, site, "S-1")
        event = own_event(record)
        assert event["type"] == "ObjectEvent"
        assert event["action"] == kind.action
        assert event["epcList"] == ["urn:transparency:code:TP0ABC"]
        assert event["eventID"] == own_event(record)["eventID"]
    batch = own_event(OwnRecord("issue", "b1", at, None, "09506000134352", "L1", 40, None, None))
    assert batch["quantityList"] == [
        {"epcClass": "https://id.gs1.org/01/09506000134352/10/L1", "quantity": 40}
    ]
