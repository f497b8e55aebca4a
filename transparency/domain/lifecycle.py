"""The unit lifecycle as data: a transition table and one function that applies it.

Adapted from the EU medicines verification model to retail. A unit is *active* from the
moment its code is written (its batch hides it until the batch is done), *shipped* when a
warehouse station claims it at fulfilment, and *returned* when a customer sends it back.
Brands may end a unit's life as *revoked*, *recalled*, *destroyed* or *stolen*; those states
are terminal. The database mirrors ``UnitState`` as an ENUM, so it refuses any other
state too.
"""

from __future__ import annotations

from enum import StrEnum

from transparency.domain.errors import InvalidTransition


class UnitState(StrEnum):
    ACTIVE = "active"
    SHIPPED = "shipped"
    RETURNED = "returned"
    REVOKED = "revoked"
    RECALLED = "recalled"
    DESTROYED = "destroyed"
    STOLEN = "stolen"


class UnitEvent(StrEnum):
    SHIP = "ship"  # claimed at fulfilment
    REVERSE = "reverse"  # a fulfilment pass undone (order cancelled, unit back on shelf)
    RETURN = "return"  # the customer sent the unit back
    RESTOCK = "restock"  # a returned unit passed inspection
    REVOKE = "revoke"  # the brand withdraws the code
    RECALL = "recall"  # the brand recalls the unit's lot or batch
    DESTROY = "destroy"
    REPORT_STOLEN = "report_stolen"


S, E = UnitState, UnitEvent

_LIVE = (S.ACTIVE, S.SHIPPED, S.RETURNED)
_ENDINGS = {
    E.REVOKE: S.REVOKED,
    E.RECALL: S.RECALLED,
    E.DESTROY: S.DESTROYED,
    E.REPORT_STOLEN: S.STOLEN,
}

TRANSITIONS: dict[tuple[UnitState, UnitEvent], UnitState] = {
    (S.ACTIVE, E.SHIP): S.SHIPPED,
    (S.SHIPPED, E.REVERSE): S.ACTIVE,
    (S.SHIPPED, E.RETURN): S.RETURNED,
    (S.RETURNED, E.RESTOCK): S.ACTIVE,
    **{(state, event): end for state in _LIVE for event, end in _ENDINGS.items()},
}

TERMINAL: frozenset[UnitState] = frozenset(_ENDINGS.values())


def next_state(state: UnitState, event: UnitEvent) -> UnitState:
    """The state a unit in ``state`` reaches through ``event``, or InvalidTransition."""
    try:
        return TRANSITIONS[(state, event)]
    except KeyError:
        raise InvalidTransition(
            f"a unit that is {state.value} cannot take the event {event.value}",
            state=state.value,
            event=event.value,
        ) from None


def states_allowing(event: UnitEvent) -> frozenset[UnitState]:
    """Every state from which ``event`` is allowed (used to build guarded SQL updates)."""
    return frozenset(state for state, ev in TRANSITIONS if ev is event)
