"""Taking a shipped unit back (reversal, return, restock): the lifecycle's rules, each
refused on its own, for every take-back event."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from transparency.domain.errors import InvalidTransition, ReversalRefused
from transparency.domain.lifecycle import (
    TAKING_BACK,
    TRANSITIONS,
    Pass,
    TakeBack,
    UnitEvent,
    UnitState,
    take_back,
)

SITE, ELSEWHERE = uuid.uuid4(), uuid.uuid4()
NOW = datetime(2026, 1, 20, 12, tzinfo=UTC)
WINDOW = timedelta(days=10)
SHIPPED_AT = NOW - timedelta(days=1)
PASSED = Pass(SITE, "ORD-1", SHIPPED_AT)
# The state each take-back applies to.
FROM = {UnitEvent.REVERSE: UnitState.SHIPPED, UnitEvent.RETURN: UnitState.SHIPPED,
        UnitEvent.RESTOCK: UnitState.RETURNED}  # fmt: skip


def test_every_event_that_lets_a_unit_pass_again_is_a_take_back() -> None:
    """Whatever brings a unit that left back to active (directly or through returned)
    is in TAKING_BACK, so none escapes the rules."""
    back_to_shelf = {
        event
        for (state, event), reached in TRANSITIONS.items()
        if state in (UnitState.SHIPPED, UnitState.RETURNED)
        and reached in (UnitState.ACTIVE, UnitState.RETURNED)
    }
    assert back_to_shelf == TAKING_BACK == set(FROM)


@pytest.mark.parametrize("event", sorted(TAKING_BACK), ids=str)
def test_the_site_that_shipped_within_the_window_naming_the_shipment(event: UnitEvent) -> None:
    request = TakeBack(SITE, "ORD-1", NOW, WINDOW)
    assert take_back(FROM[event], event, PASSED, request) == TRANSITIONS[(FROM[event], event)]
    last_moment = TakeBack(SITE, "ORD-1", SHIPPED_AT + WINDOW, WINDOW)
    assert take_back(FROM[event], event, PASSED, last_moment) == TRANSITIONS[(FROM[event], event)]


@pytest.mark.parametrize("event", sorted(TAKING_BACK), ids=str)
@pytest.mark.parametrize(
    ("request_", "says"),
    [
        (TakeBack(ELSEWHERE, "ORD-1", NOW, WINDOW), "only the site"),
        (TakeBack(SITE, "ORD-2", NOW, WINDOW), "another shipment"),
        (TakeBack(SITE, "ORD-1", NOW + timedelta(days=9, seconds=1), WINDOW), "window of 10"),
    ],
    ids=["elsewhere", "another-shipment", "late"],
)
def test_each_rule_refuses_on_its_own(event: UnitEvent, request_: TakeBack, says: str) -> None:
    with pytest.raises(ReversalRefused, match=says):
        take_back(FROM[event], event, PASSED, request_)


def test_a_unit_back_on_the_shelf_has_no_pass_to_undo() -> None:
    with pytest.raises(ReversalRefused):
        take_back(UnitState.SHIPPED, UnitEvent.RETURN, Pass(None, None, None),
                  TakeBack(SITE, "ORD-1", NOW, WINDOW))  # fmt: skip


def test_the_lifecycle_is_asked_first() -> None:
    """A restock of a unit that is not returned is an invalid transition, wherever it is."""
    with pytest.raises(InvalidTransition):
        take_back(UnitState.ACTIVE, UnitEvent.RESTOCK, PASSED, TakeBack(SITE, "ORD-1", NOW, WINDOW))
