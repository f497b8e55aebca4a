"""The unit lifecycle: every (state, event) pair, allowed and forbidden."""

from __future__ import annotations

import itertools

import pytest

from transparency.domain.errors import InvalidTransition
from transparency.domain.lifecycle import (
    TERMINAL,
    UnitEvent,
    UnitState,
    next_state,
    states_allowing,
)

# Written out by hand, independently of the table in the domain module.
ALLOWED = {
    ("issued", "activate"): "active",
    ("active", "ship"): "shipped",
    ("shipped", "reverse"): "active",
    ("shipped", "return"): "returned",
    ("returned", "restock"): "active",
}
for live in ("issued", "active", "shipped", "returned"):
    ALLOWED[(live, "revoke")] = "revoked"
    ALLOWED[(live, "recall")] = "recalled"
    ALLOWED[(live, "destroy")] = "destroyed"
    ALLOWED[(live, "report_stolen")] = "stolen"

PAIRS = list(itertools.product(UnitState, UnitEvent))


def test_the_table_covers_nine_events_and_eight_states() -> None:
    assert len(UnitState) == 8
    assert len(UnitEvent) == 9
    assert len(PAIRS) == 72


@pytest.mark.parametrize(("state", "event"), PAIRS, ids=lambda v: str(v))
def test_transition(state: UnitState, event: UnitEvent) -> None:
    expected = ALLOWED.get((state.value, event.value))
    if expected is None:
        with pytest.raises(InvalidTransition) as info:
            next_state(state, event)
        assert info.value.extra == {"state": state.value, "event": event.value}
    else:
        assert next_state(state, event) == UnitState(expected)


def test_terminal_states_have_no_way_out() -> None:
    assert {s.value for s in TERMINAL} == {"revoked", "recalled", "destroyed", "stolen"}
    for state, event in itertools.product(TERMINAL, UnitEvent):
        with pytest.raises(InvalidTransition):
            next_state(state, event)


def test_states_allowing_ship_is_only_active() -> None:
    assert states_allowing(UnitEvent.SHIP) == {UnitState.ACTIVE}
    assert states_allowing(UnitEvent.RECALL) == {
        UnitState.ISSUED,
        UnitState.ACTIVE,
        UnitState.SHIPPED,
        UnitState.RETURNED,
    }
