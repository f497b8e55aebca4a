"""The unit lifecycle as data: a transition table and one function that applies it.

Adapted from the EU medicines verification model to retail. A unit is *active* from the
moment its code is written (its batch hides it until the batch is done), *shipped* when a
warehouse station claims it at fulfilment, and *returned* when a customer sends it back.
Brands may end a unit's life as *revoked*, *recalled*, *destroyed* or *stolen*; those states
are terminal. The database mirrors ``UnitState`` as an ENUM, so it refuses any other
state too.

A pass at fulfilment is the one moment a unit leaves; every event that brings a shipped
unit back toward the shelf (a reversal, a customer return, the restock after it) lets it
pass again, so each obeys ``TAKE_BACK_RULES``: the EU FMD hubs let a decommissioned pack be
reverted only by the location that decommissioned it, within 10 days. Here the station
also names the shipment the unit left in, as the returned parcel's order number.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from uuid import UUID

from transparency.domain.errors import InvalidTransition, ReversalRefused


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


# The events after which a unit that left can pass fulfilment again.
TAKING_BACK: frozenset[UnitEvent] = frozenset({E.REVERSE, E.RETURN, E.RESTOCK})


@dataclass(frozen=True, slots=True)
class Pass:
    """The fulfilment pass a unit last left with (all None once it is back on the shelf)."""

    site_id: UUID | None
    shipment_id: str | None
    at: datetime | None


@dataclass(frozen=True, slots=True)
class TakeBack:
    """A station bringing a unit back: its site, the shipment it names, now, the window."""

    site_id: UUID
    shipment_id: str
    at: datetime
    window: timedelta


# What a take-back must show, each with the refusal it otherwise gets. Measured from the
# pass, not from the return: a unit that left more than the window ago stays out of stock
# (the FMD rule), whatever was done to it in between.
TAKE_BACK_RULES: tuple[tuple[Callable[[Pass, TakeBack], bool], str], ...] = (
    (lambda p, t: p.site_id == t.site_id, "only the site that shipped the unit can take it back"),
    (lambda p, t: p.shipment_id == t.shipment_id, "the unit left in another shipment"),
    (
        lambda p, t: p.at is not None and t.at <= p.at + t.window,
        "the window of {days} days since the unit shipped has passed",
    ),
)


def take_back(state: UnitState, event: UnitEvent, passed: Pass, request: TakeBack) -> UnitState:
    """The state a shipped unit reaches through a take-back ``event``, or InvalidTransition
    (the lifecycle forbids it) or ReversalRefused (a rule of ``TAKE_BACK_RULES`` fails)."""
    assert event in TAKING_BACK, event
    reached = next_state(state, event)
    for holds, refusal in TAKE_BACK_RULES:
        if not holds(passed, request):
            raise ReversalRefused(refusal.format(days=request.window.days))
    return reached
