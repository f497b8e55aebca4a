"""After a run: what the harness was told, checked against what the service recorded.

As Jepsen's checkers do, the harness records every pass it was answered, and afterwards
asks the service, over HTTP only (a remote deployment gives no database access), for the
passes recorded at its site under the run's shipment prefix (``lt-<run id>-``):
``GET /v1/fulfilment/passes`` (every pass event, in keyset pages) and
``GET /v1/fulfilment/passes/summary`` (pass events, distinct units, shipments). Three
invariants follow: every acknowledged pass is recorded; no unit passed twice (left in two
shipments: a retry answered pass again for the same shipment is logged as a pass event but
moves nothing); and the service passed exactly the units the harness saw pass.

A code is compared as the service stores it (its unit key: ``codes.parse``'s canonical
text), so a code recorded as a person typed it (lower case, dashes) still matches.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx

from loadtest.answers import json_object, problem_text
from loadtest.errors import CheckError
from transparency.domain import codes
from transparency.domain.errors import InvalidCode

PASSES = "/v1/fulfilment/passes"
SUMMARY = "/v1/fulfilment/passes/summary"
PAGE = 10_000  # the endpoint's largest page: 100 requests for a million passes
EXAMPLES = 5
# A page of 10,000 passes is read from one index range: well under a second on a laptop.
# Generous, as a service just out of a fault injection may still be catching up.
TIMEOUT = httpx.Timeout(60.0, connect=10.0)

SHIPPED = "every pass the harness saw is shipped in the run's shipments"
ONCE = "no unit passed twice"
COUNTED = "the service counts as many passes as the harness"


@dataclass(frozen=True, slots=True)
class Invariant:
    """One invariant of a run, and what a person needs to judge it."""

    name: str
    ok: bool
    detail: str


def check(
    api: str,
    station_key: str,
    shipment_prefix: str,
    passed: Collection[str],
    *,
    transport: httpx.BaseTransport | None = None,
) -> list[Invariant]:
    """The run's invariants, from the passes the service recorded at the station's site
    under ``shipment_prefix`` and the codes the harness saw pass (``passed``: one entry per
    pass answered; a retry answered with the first pass again may repeat a code)."""
    seen = {canonical(code) for code in passed}
    headers = {"Authorization": f"Bearer {station_key}"}
    with httpx.Client(base_url=api, headers=headers, timeout=TIMEOUT, transport=transport) as http:
        counts = _get(http, SUMMARY, {"shipment_prefix": shipment_prefix})
        pairs = {(p["code"], p["shipment_id"]) for p in _passes(http, shipment_prefix)}
    try:
        events, units = int(counts["pass_events"]), int(counts["units"])
        moves = int(counts["unit_shipments"])
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckError(f"GET {SUMMARY}: not the counts expected: {counts!r:.200}") from exc
    where = f"under {shipment_prefix!r}"

    listed = Counter(code for code, _ in pairs)  # shipments per unit
    missing = seen - listed.keys()
    shipped = Invariant(
        SHIPPED,
        not missing,
        f"{len(missing)} of the {len(seen)} units the harness saw pass are not shipped"
        f" {where}: {_examples(missing)}"
        if missing
        else f"all {len(seen)} units the harness saw pass are shipped {where}",
    )

    # A retry answered pass again for the same shipment is a pass event, not a second move
    # of the unit: a unit passed twice is one shipped in two shipments.
    twice = [code for code, n in listed.items() if n > 1]
    retried = events - moves
    once = Invariant(
        ONCE,
        moves == units and not twice,
        f"{units} units shipped in {moves} (unit, shipment) pairs {where}"
        + (f", {retried} passes repeated for the same shipment (retries)" if retried else "")
        + (f"; in more than one shipment: {_examples(twice)}" if twice else ""),
    )

    unseen = listed.keys() - seen
    counted = Invariant(
        COUNTED,
        units == len(seen),
        f"the service passed {units} units {where}, the harness saw {len(seen)} pass"
        + (
            f"; passed without the harness being told (a timeout?): {_examples(unseen)}"
            if unseen
            else ""
        ),
    )
    return [shipped, once, counted]


def canonical(code: str) -> str:
    """The text the service stores a scanned code under, when the text alone gives it."""
    try:
        parsed = codes.parse(code)
    except InvalidCode:
        return code.strip()
    return parsed.unit_key or parsed.text


def _passes(http: httpx.Client, prefix: str) -> Iterator[dict[str, Any]]:
    params: dict[str, Any] = {"shipment_prefix": prefix, "limit": PAGE}
    while True:
        page = _get(http, PASSES, params)
        items, cursor = page.get("items"), page.get("next_cursor")
        if not isinstance(items, list) or not (cursor is None or isinstance(cursor, str)):
            raise CheckError(f"GET {PASSES}: not a page of passes: {page!r:.200}")
        yield from items
        if cursor is None:
            return
        if cursor == params.get("cursor"):
            raise CheckError(f"GET {PASSES}: the service gave the same cursor twice")
        params["cursor"] = cursor


def _get(http: httpx.Client, path: str, params: dict[str, Any]) -> dict[str, Any]:
    try:
        r = http.get(path, params=params)
    except httpx.HTTPError as exc:
        raise CheckError(f"GET {http.base_url}{path}: no answer ({exc!r})") from exc
    if r.status_code != 200:
        raise CheckError(f"GET {path}: {r.status_code} {problem_text(r)}")
    return json_object(r, CheckError)


def _examples(found: Iterable[str]) -> str:
    ordered = sorted(found)
    more = len(ordered) - EXAMPLES
    return ", ".join(ordered[:EXAMPLES]) + (f" and {more} more" if more > 0 else "")
