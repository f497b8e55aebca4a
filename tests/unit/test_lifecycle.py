"""The unit lifecycle: every (state, event) pair, allowed and forbidden."""

from __future__ import annotations

import itertools

import pytest

from transparency.domain.errors import InvalidTransition
from transparency.domain.lifecycle import (
    TERMINAL,
    TRANSITIONS,
    UnitEvent,
    UnitState,
    next_state,
    states_allowing,
)

# Written out by hand, independently of the table in the domain module.
ALLOWED = {
    ("active", "ship"): "shipped",
    ("shipped", "reverse"): "active",
    ("shipped", "return"): "returned",
    ("returned", "restock"): "active",
}
for live in ("active", "shipped", "returned"):
    ALLOWED[(live, "revoke")] = "revoked"
    ALLOWED[(live, "recall")] = "recalled"
    ALLOWED[(live, "destroy")] = "destroyed"
    ALLOWED[(live, "report_stolen")] = "stolen"

PAIRS = list(itertools.product(UnitState, UnitEvent))


def test_the_table_covers_eight_events_and_seven_states() -> None:
    assert {s.value for s in UnitState} == {
        "active", "shipped", "returned", "revoked", "recalled", "destroyed", "stolen",
    }  # fmt: skip
    assert len(UnitEvent) == 8
    assert len(PAIRS) == 56


def test_every_state_but_the_terminal_ones_is_reached() -> None:
    """No state is dead weight: each is reached by some event, or is where units start."""
    reached = set(TRANSITIONS.values()) | {UnitState.ACTIVE}  # issuance writes units active
    assert reached == set(UnitState)
    assert {event for _, event in TRANSITIONS} == set(UnitEvent)


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
        UnitState.ACTIVE,
        UnitState.SHIPPED,
        UnitState.RETURNED,
    }
